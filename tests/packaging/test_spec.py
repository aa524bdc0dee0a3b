from __future__ import annotations

import copy
from pathlib import Path

import pytest

from labelwise.core import SpecError
from labelwise.packaging import ClassifierSpec, FewShot, FineTuned
from tests.conftest import EXAMPLES, spec_dict


def _error(data: dict[str, object]) -> str:
    with pytest.raises(SpecError) as info:
        ClassifierSpec.from_dict(data)
    return str(info.value)


@pytest.mark.parametrize("name", ["yelp-zero-shot", "yelp-few-shot", "yelp-fine-tuned"])
def test_shipped_examples_are_valid(name: str) -> None:
    spec = ClassifierSpec.from_yaml(EXAMPLES / f"{name}.yaml")
    assert spec.name == name
    assert spec.task.labels == ["1", "2", "3", "4", "5"]


def test_few_shot_examples_come_from_the_file_in_order() -> None:
    spec = ClassifierSpec.from_yaml(EXAMPLES / "yelp-few-shot.yaml")
    assert isinstance(spec.technique, FewShot)
    assert [e.label for e in spec.technique.examples] == ["5", "2", "4", "1", "3"]
    assert spec.technique.examples_file is None


def test_fine_tuned_keeps_provenance() -> None:
    spec = ClassifierSpec.from_yaml(EXAMPLES / "yelp-fine-tuned.yaml")
    assert isinstance(spec.technique, FineTuned)
    assert spec.model_name.startswith("ft:gpt-4o-mini")
    assert spec.technique.provenance.hyperparameters.n_epochs == 3
    assert spec.technique.provenance.reported_metrics["weighted_f1"] == pytest.approx(0.66)


def test_unknown_key_is_named_with_a_suggestion() -> None:
    data = spec_dict()
    data["technique"] = {"kind": "zero_shot", "templte": "{text}"}
    message = _error(data)
    assert "technique.templte: unknown key (did you mean 'template'?)" in message


def test_unknown_top_level_key() -> None:
    message = _error(spec_dict(scorng="logprobs"))
    assert "did you mean 'scoring'?" in message


def test_duplicated_labels() -> None:
    message = _error(spec_dict(task={"labels": ["positive", "negative", "Positive"]}))
    assert "task.labels: label 'Positive' duplicates 'positive'" in message


def test_template_without_text() -> None:
    message = _error(spec_dict(technique={"kind": "zero_shot", "template": "Classify: {labels}"}))
    assert "technique.template: template must contain {text}" in message


def test_template_with_unknown_placeholder() -> None:
    message = _error(spec_dict(technique={"kind": "zero_shot", "template": "{txt} {text}"}))
    assert "unknown placeholder(s) {txt}" in message


def test_example_label_outside_label_set() -> None:
    technique = {
        "kind": "few_shot",
        "template": "{examples}\n{text}",
        "examples": [{"text": "great", "label": "positive"}, {"text": "meh", "label": "mixed"}],
    }
    message = _error(spec_dict(technique=technique))
    assert "technique.examples[1] has label 'mixed', which is not in task.labels" in message


def test_missing_fine_tuned_model_id() -> None:
    technique = {"kind": "fine_tuned", "provenance": {"base_model": "gpt-4o-mini"}}
    message = _error(spec_dict(technique=technique))
    assert "technique.model_id: Field required" in message


def test_missing_backend_model() -> None:
    message = _error(spec_dict(backend={"provider": "openai"}))
    assert "backend.model is required for provider openai" in message


@pytest.mark.parametrize(
    "value", ["sk-proj-abc123def456ghi789", "AKIAIOSFODNN7EXAMPLE", "openai_api_key", "MY KEY"]
)
def test_key_env_must_be_a_name_and_is_never_echoed(value: str) -> None:
    message = _error(spec_dict(backend={"provider": "openai", "model": "m", "api_key_env": value}))
    assert "api_key_env must be the NAME of an environment variable" in message
    assert value not in message


def test_inline_key_is_refused_without_echo() -> None:
    secret = "sk-live-0123456789abcdef"
    message = _error(spec_dict(backend={"provider": "openai", "model": "m", "api_key": secret}))
    assert "secrets never go in a spec" in message
    assert secret not in message


def test_base_url_with_credentials_is_refused() -> None:
    backend = {"provider": "openai_compatible", "model": "m", "base_url": "http://u:pw@host/v1"}
    message = _error(spec_dict(backend=backend))
    assert "must not carry credentials" in message
    assert "pw" not in message.replace("openai_compatible", "")


def test_several_problems_are_all_reported() -> None:
    data = spec_dict(task={"labels": ["a", "a"]}, scoring="sometimes")
    message = _error(data)
    assert "task.labels" in message and "scoring" in message


def test_bad_yaml_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        ClassifierSpec.from_yaml(tmp_path / "bad.yaml")
    with pytest.raises(SpecError, match="does not exist"):
        ClassifierSpec.from_yaml(tmp_path / "missing.yaml")
    few_shot = copy.deepcopy(spec_dict())
    few_shot["technique"] = {
        "kind": "few_shot",
        "template": "{examples}{text}",
        "examples_file": "nope.jsonl",
    }
    import yaml

    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(few_shot))
    with pytest.raises(SpecError, match="examples_file .*nope.jsonl does not exist"):
        ClassifierSpec.from_yaml(tmp_path / "spec.yaml")


def test_spec_equality_and_frozen() -> None:
    a = ClassifierSpec.from_dict(spec_dict())
    b = ClassifierSpec.from_dict(spec_dict())
    assert a == b
    with pytest.raises(Exception, match="frozen"):
        a.name = "other"  # type: ignore[misc]
