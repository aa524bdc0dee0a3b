"""The scikit-learn contract and the lifecycle of ``Classifier``, over an injected fake backend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelwise.backends import BackendUnavailable, Completion, LabelToken
from labelwise.core import Reason
from labelwise.packaging import (
    Classifier,
    ClassifierArtifact,
    ClassifierSpec,
    NoLabel,
    ProbabilitiesUnavailable,
)
from tests.conftest import FakeBackend, spec_dict

LABELS = ["negative", "neutral", "positive"]


def _classifier(backend: FakeBackend, *, scoring: str = "generate", **params: object) -> Classifier:
    fast_retries = {"provider": "openai", "model": "gpt-4o-mini", "max_retries": 2, "backoff_initial_s": 0.01}
    spec = ClassifierSpec.from_dict(spec_dict(scoring=scoring, backend=fast_retries))
    tokens = (
        {label: LabelToken(i, label) for i, label in enumerate(LABELS)} if scoring == "logprobs" else None
    )
    return Classifier(artifact=ClassifierArtifact(spec=spec, label_tokens=tokens), backend=backend, **params)


def test_init_only_stores_parameters(fake_backend: FakeBackend) -> None:
    classifier = _classifier(fake_backend, max_concurrency=3)
    assert classifier.max_concurrency == 3 and classifier.backend is fake_backend
    assert fake_backend.history == []
    assert "max_concurrency=3" in repr(classifier)


@pytest.mark.parametrize(
    "form", [list, np.array, pd.Series, tuple], ids=["list", "ndarray", "Series", "tuple"]
)
def test_predict_accepts_array_likes(fake_backend: FakeBackend, form: type) -> None:
    fake_backend.enqueue("positive", "Negative!", "no idea")
    predicted = _classifier(fake_backend, abstain_label="neutral").predict(form(["a", "b", "c"]))
    assert isinstance(predicted, np.ndarray) and predicted.dtype == object
    assert predicted.tolist() == ["positive", "negative", "neutral"]
    assert [r.prompt.splitlines()[-2] for r in fake_backend.history] == ["Text: a", "Text: b", "Text: c"]


def test_classes_follow_the_label_order(fake_backend: FakeBackend) -> None:
    assert _classifier(fake_backend).classes_.tolist() == LABELS


def test_a_single_string_is_refused(fake_backend: FakeBackend) -> None:
    with pytest.raises(TypeError, match="list of texts"):
        _classifier(fake_backend).predict("just one")  # type: ignore[arg-type]


def test_empty_text_is_not_sent(fake_backend: FakeBackend) -> None:
    [prediction] = _classifier(fake_backend).classify(["   "])
    assert prediction.label is None and prediction.reason is Reason.EMPTY_TEXT
    assert fake_backend.history == []


def test_predict_proba_columns_follow_classes(fake_backend: FakeBackend) -> None:
    import math

    fake_backend.enqueue(
        Completion("neutral", "fake", top_logprobs=[("neutral", math.log(0.5)), ("positive", math.log(0.5))]),
        Completion("x", "fake", top_logprobs=[("Sure", 0.0)]),
    )
    proba = _classifier(fake_backend, scoring="logprobs").predict_proba(["a", "b"])
    assert proba.shape == (2, 3)
    assert proba[0].tolist() == pytest.approx([0.0, 0.5, 0.5])
    # No label token among the answer's logprobs: nothing is known, so the row is uniform.
    assert proba[1].tolist() == pytest.approx([1 / 3] * 3)


def test_predict_proba_needs_logprobs(fake_backend: FakeBackend) -> None:
    classifier = _classifier(fake_backend)
    with pytest.raises(ProbabilitiesUnavailable, match="scoring: logprobs"):
        classifier.predict_proba(["a"])
    assert issubclass(ProbabilitiesUnavailable, AttributeError)  # as in scikit-learn


def test_concurrency_is_bounded(fake_backend: FakeBackend) -> None:
    _classifier(fake_backend, max_concurrency=4).classify([f"text {i}" for i in range(20)])
    assert len(fake_backend.history) == 20
    assert fake_backend.max_in_flight == 4


@pytest.mark.anyio
async def test_aclassify_in_a_running_loop(fake_backend: FakeBackend) -> None:
    fake_backend.enqueue("neutral")
    [prediction] = await _classifier(fake_backend).aclassify(["meh"])
    assert prediction.label == "neutral"
    # The sync API also works from inside an event loop (as in a notebook).
    fake_backend.enqueue("positive")
    assert _classifier(fake_backend).predict(["yay"]).tolist() == ["positive"]


def test_persistent_backend_errors_propagate_after_retries(fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(*[BackendUnavailable("down")] * 3, "positive")
    with pytest.raises(BackendUnavailable):
        _classifier(fake_backend).classify(["x"])
    assert len(fake_backend.history) == 3  # the first try and max_retries=2 retries


def test_transient_backend_errors_are_retried(fake_backend: FakeBackend) -> None:
    fake_backend.enqueue(BackendUnavailable("blip"), "positive")
    assert _classifier(fake_backend).predict(["x"]).tolist() == ["positive"]


def test_predict_without_abstain_label_refuses_to_invent_a_label(fake_backend: FakeBackend) -> None:
    fake_backend.enqueue("positive", "no idea")
    with pytest.raises(NoLabel, match="1 of 2 texts got no label \\(no_label\\); set abstain_label"):
        _classifier(fake_backend).predict(["a", "b"])


def test_predict_takes_the_most_probable_label_when_abstaining(fake_backend: FakeBackend) -> None:
    import math

    from labelwise.packaging import Calibration

    fake_backend.enqueue(
        Completion("x", "fake", top_logprobs=[("neutral", math.log(0.4)), ("positive", math.log(0.35))])
    )
    classifier = _classifier(fake_backend, scoring="logprobs")
    spec = classifier.artifact_.spec.model_copy(update={"calibration": Calibration(abstain_below=0.6)})
    classifier.set_params(
        artifact=ClassifierArtifact(spec=spec, label_tokens=classifier.artifact_.label_tokens)
    )
    [prediction] = classifier.classify(["x"])
    assert prediction.label is None and prediction.reason is Reason.BELOW_THRESHOLD
    fake_backend.enqueue(
        Completion("x", "fake", top_logprobs=[("neutral", math.log(0.4)), ("positive", math.log(0.35))])
    )
    assert classifier.predict(["x"]).tolist() == ["neutral"]


def test_an_abstain_label_outside_the_label_set_is_refused(fake_backend: FakeBackend) -> None:
    fake_backend.enqueue("no idea")
    from labelwise.core import LabelwiseError

    with pytest.raises(LabelwiseError, match="abstain_label 'maybe' is not a label"):
        _classifier(fake_backend, abstain_label="maybe").predict(["a"])


def test_clone_and_accuracy_score(fake_backend: FakeBackend) -> None:
    from sklearn.base import clone, is_classifier
    from sklearn.metrics import accuracy_score

    original = _classifier(fake_backend, max_concurrency=2, abstain_label="neutral")
    copy = clone(original)
    assert copy is not original and copy.get_params()["max_concurrency"] == 2
    assert is_classifier(copy) and copy.fit(["a"], ["neutral"]) is copy
    copy.backend.enqueue("positive", "negative", "no idea")
    texts, truth = ["a", "b", "c"], ["positive", "positive", "neutral"]
    assert accuracy_score(truth, copy.predict(texts)) == pytest.approx(2 / 3)
    copy.backend.enqueue("positive", "negative", "no idea")
    assert copy.score(texts, truth) == pytest.approx(2 / 3)
    assert copy.set_params(max_concurrency=5).max_concurrency == 5


def test_an_empty_classifier_says_how_to_load_one() -> None:
    from labelwise.core import LabelwiseError

    with pytest.raises(LabelwiseError, match="Classifier.load"):
        Classifier().fit()


def test_context_managers_close_the_backend(fake_backend: FakeBackend) -> None:
    closed: list[str] = []

    async def aclose() -> None:
        closed.append("closed")

    fake_backend.aclose = aclose  # type: ignore[method-assign]
    with _classifier(fake_backend) as classifier:
        classifier.classify(["a"])
    assert closed  # a sync call closes at its end, and leaving the block closes again

    closed.clear()

    async def run() -> None:
        async with _classifier(fake_backend) as clf:
            await clf.aclassify(["a"])
            assert closed == []  # connections stay open inside the block
        assert closed == ["closed"]

    import asyncio

    asyncio.run(run())


def test_never_more_requests_in_flight_than_the_backend_serves() -> None:
    """The embedded llama.cpp server computes one completion at a time: asking for 16 sends 1, so
    no request waits in its queue while its timeout runs."""
    from labelwise.packaging import ClassifierArtifact, ClassifierSpec

    local = ClassifierSpec.from_dict(spec_dict(name="one-at-a-time", backend={"provider": "local"}))
    remote = ClassifierSpec.from_dict(spec_dict(name="many-at-a-time"))
    assert (
        Classifier(
            artifact=ClassifierArtifact(spec=local), max_concurrency=16
        ).technique_.options.max_concurrency
        == 1
    )
    assert (
        Classifier(
            artifact=ClassifierArtifact(spec=remote), max_concurrency=16
        ).technique_.options.max_concurrency
        == 16
    )
