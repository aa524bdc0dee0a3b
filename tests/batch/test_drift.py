"""Drift checks on the Yelp data: quiet on a same-distribution split, loud on clear shifts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from labelwise.monitoring._drift import categorical_drift, numeric_drift
from tests.conftest import YELP_CSV


@pytest.fixture(scope="module")
def yelp() -> pd.DataFrame:
    frame = pd.read_csv(YELP_CSV)
    frame["stars"] = frame["stars"].astype(str)
    frame["length"] = frame["text"].str.len()
    return frame


def _split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = frame.sample(frac=0.5, random_state=seed)
    return reference, frame.drop(reference.index)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_false_alarm_on_a_same_distribution_split(yelp: pd.DataFrame, seed: int) -> None:
    reference, current = _split(yelp, seed)
    checks = categorical_drift(reference["stars"].tolist(), current["stars"].tolist())
    checks += numeric_drift(reference["length"], current["length"], feature="text_length")
    assert [c for c in checks if c.drifted] == []


def test_only_low_star_reviews_is_label_drift(yelp: pd.DataFrame) -> None:
    reference, current = _split(yelp, 0)
    shifted = current[current["stars"].isin(["1", "2"])]
    checks = {c.test: c for c in categorical_drift(reference["stars"].tolist(), shifted["stars"].tolist())}
    assert checks["chi_square"].drifted and checks["chi_square"].p_value is not None
    assert checks["psi"].drifted and checks["psi"].statistic > 1
    assert checks["jensen_shannon"].drifted


def test_only_long_reviews_is_length_drift(yelp: pd.DataFrame) -> None:
    reference, current = _split(yelp, 0)
    long_ones = current[current["length"] > current["length"].quantile(0.75)]
    checks = {
        c.test: c for c in numeric_drift(reference["length"], long_ones["length"], feature="text_length")
    }
    assert checks["kolmogorov_smirnov"].drifted and checks["wasserstein"].drifted
    assert checks["wasserstein"].statistic > checks["wasserstein"].threshold


def test_abstentions_are_a_category_of_their_own() -> None:
    reference = ["a"] * 50 + ["b"] * 50
    current = ["a"] * 30 + [None] * 70
    checks = {c.test: c for c in categorical_drift(reference, current)}
    assert checks["psi"].drifted and checks["jensen_shannon"].drifted
    assert checks["chi_square"].current_n == 100


def test_numeric_checks_skip_missing_values() -> None:
    checks = numeric_drift([0.5, float("nan"), 0.7], [float("nan")], feature="confidence")
    assert checks == []


def test_text_domain_drift(yelp: pd.DataFrame) -> None:
    from labelwise.monitoring._drift import text_domain_drift

    reference, current = _split(yelp, 0)
    same = text_domain_drift(
        reference["text"].tolist(), current["text"].tolist(), max_per_side=400, permutations=5
    )
    assert not same.drifted and same.statistic < 0.6
    # Another domain: product support tickets instead of restaurant reviews.
    tickets = [
        f"Ticket {i}: my {item} stopped working after the firmware update, please send a replacement unit."
        for i, item in enumerate(["router", "printer", "laptop", "phone", "camera"] * 80)
    ]
    other = text_domain_drift(reference["text"].tolist(), tickets, max_per_side=400, permutations=5)
    assert other.drifted and other.statistic > 0.9


def _scored(frame: pd.DataFrame, path: Path) -> Path:
    """A file shaped like `labelwise batch score` output (stars stand in for predictions)."""
    import json

    out = frame.assign(
        label=frame["stars"],
        probabilities=[
            json.dumps({s: (0.6 if s == star else 0.1) for s in "12345"}) for star in frame["stars"]
        ],
    )[["text", "label", "probabilities"]]
    out.to_csv(path, index=False)
    return path


def test_drift_command_writes_json_and_html(yelp: pd.DataFrame, tmp_path: Path) -> None:
    import json

    from tests.test_cli import labelwise

    reference, current = _split(yelp.sample(n=1200, random_state=0), 0)
    low = current[current["stars"].isin(["1", "2"])]
    ref_path = _scored(reference, tmp_path / "reference.csv")
    cur_path = _scored(low, tmp_path / "current.csv")
    result = labelwise(
        "batch",
        "drift",
        "--reference",
        str(ref_path),
        "--current",
        str(cur_path),
        "--out",
        str(tmp_path / "drift.html"),
    )
    assert "drift" in result.stdout
    report = json.loads((tmp_path / "drift.json").read_text())
    assert report["drifted"] is True
    by_test = {(c["feature"], c["test"]): c for c in report["checks"]}
    assert by_test[("predicted_label", "psi")]["drifted"]
    assert ("text", "domain_classifier_auc") in by_test
    html = (tmp_path / "drift.html").read_text()
    assert html.count("data:image/png;base64,") == 3  # labels, confidence, length


def test_drift_on_the_service_prediction_log(yelp: pd.DataFrame, tmp_path: Path) -> None:
    from labelwise.batch._drift_data import load_drift_data
    from labelwise.packaging import Prediction
    from labelwise.store import PredictionStore

    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = PredictionStore.from_url(url)
    for text, star in zip(yelp["text"].head(30), yelp["stars"].head(30), strict=True):
        prediction = Prediction(label=star, artifact_tag="m:1", probabilities={star: 0.7})
        store.log_predictions([store.prediction_row(prediction, text=text, metadata={}, keep_text=True)])
    store.close()
    data = load_drift_data(url)
    assert len(data.labels) == 30 and data.texts is not None and data.confidence[0] == pytest.approx(0.7)


def test_no_false_alarm_on_small_same_distribution_samples(yelp: pd.DataFrame) -> None:
    alarms = 0
    for seed in range(10):
        sample = yelp.sample(n=600, random_state=seed)
        lengths = sample["length"]
        checks = numeric_drift(lengths.iloc[:300], lengths.iloc[300:], feature="text_length")
        checks += categorical_drift(sample["stars"].iloc[:300].tolist(), sample["stars"].iloc[300:].tolist())
        alarms += any(c.drifted for c in checks)
    assert alarms <= 1  # at the 1% levels, about 0.5 expected over 10 pairs of samples


def _stars_by_length(prompt: str) -> str:
    """A fake classifier whose predicted stars follow review length, so drift in length shows."""
    return str(min(5, 1 + len(prompt) // 400))


@pytest.mark.slow
def test_reference_profile_recorded_at_packaging_is_the_default_reference(
    yelp: pd.DataFrame, tmp_path: Path
) -> None:
    import json

    import yaml

    from tests.conftest import fake_server_spec
    from tests.fake_openai import FakeOpenAIServer
    from tests.test_cli import labelwise

    eval_rows = yelp.sample(n=300, random_state=1)
    eval_rows.to_csv(tmp_path / "eval.csv", index=False)
    long_rows = yelp[yelp["text"].str.len() > 1200].sample(n=200, random_state=2)
    with FakeOpenAIServer(answer=_stars_by_length) as server:
        spec = fake_server_spec("profiled", server.base_url, template="{text}").model_dump(
            mode="json", exclude_none=True
        )
        spec["task"] = {"labels": ["1", "2", "3", "4", "5"], "ordinal": True}
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
        packaged = json.loads(
            labelwise("package", str(tmp_path / "spec.yaml"), "--eval", str(tmp_path / "eval.csv"),
                      "--label-col", "stars", "--json").stdout
        )  # fmt: skip
        tag = packaged["tag"]
        assert packaged["attachments"] == ["eval_card.json", "golden_set.json", "reference_profile.json"]
        for name, rows in (("same", yelp.sample(n=300, random_state=3)), ("long", long_rows)):
            rows.to_csv(tmp_path / f"{name}.csv", index=False)
            # A prefix changes the output's column names, not what drift reads from them.
            prefix = ["--prefix", "lw_"] if name == "long" else []
            scored = str(tmp_path / f"{name}-s.csv")
            labelwise("batch", "score", tag, str(tmp_path / f"{name}.csv"), "--out", scored, *prefix)
    verdicts = {}
    for name in ("same", "long"):
        out = tmp_path / f"drift-{name}.html"
        printed = labelwise(
            "batch", "drift", "--model", tag, "--current", str(tmp_path / f"{name}-s.csv"), "--out", str(out),
            columns=160,
        ).stdout  # fmt: skip
        report = json.loads(out.with_suffix(".json").read_text())
        # A test's p-value is printed beside its rule, never a statistic beside a p threshold.
        chi = next(c for c in report["checks"] if c["test"] == "chi_square")
        row = next(line for line in printed.splitlines() if "chi_square" in line)
        assert f"{chi['p_value']:.3g}" in row and "p < 0.01 and Jensen-Shannon > 0.05" in row
        assert report["reference"].startswith("reference profile (eval.csv, 300 predictions)")
        verdicts[name] = {(c["feature"], c["test"]): c["drifted"] for c in report["checks"]}
    assert not any(verdicts["same"].values())
    assert (
        verdicts["long"][("text_length", "kolmogorov_smirnov")]
        and verdicts["long"][("predicted_label", "psi")]
    )
    assert ("text", "domain_classifier_auc") not in verdicts["long"]  # the profile keeps no texts
    neither = labelwise(
        "batch", "drift", "--current", str(tmp_path / "long-s.csv"), "--out", "x.html", check=False
    )
    assert neither.returncode == 2 and "--model TAG" in neither.stderr


@pytest.mark.slow
def test_embedding_domain_drift(yelp: pd.DataFrame) -> None:
    """The same domain check on sentence embeddings: hotel reviews are not restaurant reviews."""
    from labelwise.backends import BackendSpec, Embedder
    from labelwise.monitoring._drift import text_domain_drift

    embed = Embedder.with_default_cache(
        BackendSpec(provider="sentence_transformers", model="all-MiniLM-L6-v2")
    ).embed
    reference, current = _split(yelp.sample(n=400, random_state=5), 0)
    same = text_domain_drift(
        reference["text"].tolist(), current["text"].tolist(), permutations=5, embed=embed
    )
    assert same.feature == "text_embedding" and not same.drifted
    rooms = ["room", "suite", "bed", "pool", "lobby"]
    hotels = [
        f"Stayed {i % 7 + 1} nights. The {rooms[i % 5]} was clean and check-in was quick." for i in range(200)
    ]
    other = text_domain_drift(reference["text"].tolist(), hotels, permutations=5, embed=embed)
    assert other.drifted and other.statistic > 0.9
