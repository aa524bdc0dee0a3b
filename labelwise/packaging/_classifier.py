"""``Classifier``: a classifier runtime with scikit-learn's estimator contract."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..core import LabelwiseError
from ._errors import ProbabilitiesUnavailable
from ._outcomes import Prediction, probability_matrix
from ._runtime import ClassifierRuntime
from ._techniques import technique_for

__all__ = ["Classifier", "NoLabel"]


class NoLabel(LabelwiseError, ValueError):
    """Raised by ``predict`` when a text got no label and no ``abstain_label`` was set."""


class Classifier(ClassifierMixin, BaseEstimator, ClassifierRuntime):  # type: ignore[misc]
    """An LLM-based text classifier loaded from an artifact.

    A pre-trained scikit-learn classifier: ``get_params``/``set_params``/``clone`` work, ``fit``
    only checks that it is loaded, ``predict`` returns members of ``classes_`` and
    ``predict_proba`` rows sum to 1. Close it when done (``with``/``async with``, ``close()``,
    ``aclose()``): that releases the connections of its backend and embedder.

    Parameters
    ----------
    artifact : ClassifierArtifact, default=None
        The packaged classifier; ``Classifier.load(tag)`` loads and verifies it from the store.
    backend : Backend, default=None
        Where completions (or embeddings) come from; by default the one the spec names.
    http_client : httpx.AsyncClient, default=None
        Handed to the SDK client of the default backend (tests inject faults through it).
    max_concurrency : int, default=8
        How many requests are in flight at once.
    random_state : int, default=None
        Seeds the jitter of retry backoff.
    on_retry : callable, default=None
        Called as ``on_retry(error, wait_s)`` before each retry (metrics count them).
    rate_limiter : RateLimiter, default=None
        Waited on before every request (retries included), for requests/tokens-per-minute quotas.
    abstain_label : str, default=None
        What ``predict`` returns for a text without a label (an abstention, unreadable output,
        an empty text). ``None``: the most probable label where probabilities exist, else
        ``predict`` raises ``NoLabel``. ``classify`` always tells the outcome as it is.
    use_cache : bool, default=True
        Reuse embeddings stored for the same text and model. ``False`` asks the backend every
        time: the provider canary must see what the provider answers now.

    Examples
    --------
    >>> with Classifier.load("yelp-few-shot:latest", abstain_label="3") as clf:  # doctest: +SKIP
    ...     clf.predict(["The food was cold and the waiter was rude."])
    array(['1'], dtype=object)
    """

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.artifact_.spec.task.labels, dtype=object)

    def __sklearn_is_fitted__(self) -> bool:
        return self.artifact is not None

    def fit(self, X: Any = None, y: Any = None) -> Classifier:  # noqa: N803 (scikit-learn's names)
        """Nothing to learn: the artifact is already fitted. Checks that one is loaded."""
        self.artifact_  # noqa: B018 (raises when there is none)
        return self

    def set_params(self, **params: Any) -> Classifier:
        # The runtime was made from the old parameters: make it again on next use.
        self.__dict__.pop("technique_", None)
        return super().set_params(**params)  # type: ignore[no-any-return]

    def predict(self, X: Iterable[str]) -> np.ndarray:  # noqa: N803 (scikit-learn's names)
        """Labels, shape (n_samples,), each a member of ``classes_`` (see ``abstain_label``)."""
        predictions = self.classify(X)
        labels = [self._label_of(p) for p in predictions]
        missing = [p for p, label in zip(predictions, labels, strict=True) if label is None]
        if missing:
            reasons = sorted({str(p.reason) for p in missing})
            raise NoLabel(
                f"{len(missing)} of {len(labels)} texts got no label ({', '.join(reasons)}); set "
                "abstain_label to the label to give them, or use classify() to see each outcome"
            )
        return np.asarray(labels, dtype=object)

    def _label_of(self, prediction: Prediction) -> str | None:
        if prediction.label is not None:
            return prediction.label
        if self.abstain_label is not None:
            if self.abstain_label not in self.artifact_.spec.task.labels:
                raise LabelwiseError(
                    f"abstain_label {self.abstain_label!r} is not a label of {self.tag_}; "
                    f"labels: {', '.join(self.artifact_.spec.task.labels)}"
                )
            return self.abstain_label
        if prediction.probabilities:
            return max(prediction.probabilities, key=prediction.probabilities.__getitem__)
        return None

    def predict_proba(self, X: Iterable[str]) -> np.ndarray:  # noqa: N803 (scikit-learn's names)
        """Probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        For techniques and scoring modes that give probabilities. A text without any (an empty
        text, an answer with no label token) gets the uniform row: nothing is known about it.
        """
        spec = self.artifact_.spec
        if not technique_for(spec).gives_probabilities(spec):
            raise ProbabilitiesUnavailable(
                f"{self.tag_} uses scoring: {spec.scoring}, which gives no probabilities; "
                "package it with scoring: logprobs"
            )
        predictions = self.classify(X)
        proba = probability_matrix([p.probabilities for p in predictions], list(self.classes_))
        proba[np.isnan(proba).any(axis=1)] = 1.0 / len(self.classes_)
        return proba.reshape(len(predictions), len(self.classes_))
