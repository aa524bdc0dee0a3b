"""Request and response bodies of the service's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..core import Reason
from ..monitoring import ArtifactSummary, ConfusionMatrix, FeedbackSummary, LabelSummary
from ..store import OVERRIDDEN, Bucket

__all__ = [
    "ArtifactSummary",
    "ClassifyBatchRequest",
    "ClassifyBatchResponse",
    "ClassifyRequest",
    "ClassifyResponse",
    "ConfusionMatrix",
    "EstimateRequest",
    "FeedbackRequest",
    "FeedbackResponse",
    "FeedbackSummary",
    "LabelSummary",
    "ServiceMetadata",
    "SummaryRequest",
]

MetadataValue = str | int | float | bool | None
_MAX_METADATA_KEYS = 32
_MAX_METADATA_KEY_CHARS = 64
_MAX_METADATA_VALUE_CHARS = 512


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassifyRequest(_Request):
    text: str = Field(min_length=1, description="The text to classify.")
    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict,
        description="Attributes stored with the prediction, e.g. cohorts for later analysis.",
    )

    @field_validator("metadata")
    @classmethod
    def _bounded(cls, value: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
        if len(value) > _MAX_METADATA_KEYS:
            raise ValueError(f"at most {_MAX_METADATA_KEYS} keys")
        for key, item in value.items():
            if not key or len(key) > _MAX_METADATA_KEY_CHARS:
                raise ValueError(f"key {key[:80]!r} must have 1 to {_MAX_METADATA_KEY_CHARS} characters")
            if isinstance(item, str) and len(item) > _MAX_METADATA_VALUE_CHARS:
                raise ValueError(f"value of {key!r} is longer than {_MAX_METADATA_VALUE_CHARS} characters")
        return value


class ClassifyResponse(BaseModel):
    prediction_id: str = Field(description="Send it back with /feedback.")
    label: str | None = Field(description="None when the model's output was not a label; see reason.")
    probabilities: dict[str, float] | None = None
    reason: Reason | None = Field(default=None, description="Why there is no label (for code).")
    message: str | None = Field(default=None, description="The same, for people.")
    artifact_tag: str
    model: str
    latency_s: float


class ClassifyBatchRequest(_Request):
    items: list[ClassifyRequest] = Field(min_length=1)


class ClassifyBatchResponse(BaseModel):
    predictions: list[ClassifyResponse]


SIGNAL_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class FeedbackRequest(_Request):
    """Explicit feedback (thumbs) or an implicit signal (accepted, overridden, clicked, ...)."""

    prediction_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="From the /classify response.")
    thumbs: Literal["up", "down"] | None = Field(default=None, description="Explicit feedback.")
    signal: str | None = Field(
        default=None,
        pattern=SIGNAL_PATTERN,
        description="An implicit signal, one of the service's LABELWISE_FEEDBACK_SIGNALS.",
    )
    value: float | None = Field(default=None, allow_inf_nan=False, description="A value sent with a signal.")
    correct_label: str | None = Field(
        default=None, description="The right label, when known: with thumbs, or with the overridden signal."
    )
    comment: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one_kind(self) -> FeedbackRequest:
        if (self.thumbs is None) == (self.signal is None):
            raise ValueError("send either thumbs (explicit feedback) or signal (an implicit one), not both")
        if self.signal is not None and self.comment is not None:
            raise ValueError("comment: only taken with thumbs")
        if self.thumbs is not None and self.value is not None:
            raise ValueError("value: only taken with a signal")
        if self.signal not in (None, OVERRIDDEN) and self.correct_label is not None:
            raise ValueError(f"correct_label: only taken with thumbs or the {OVERRIDDEN!r} signal")
        return self


class FeedbackResponse(BaseModel):
    prediction_id: str
    thumbs: Literal["up", "down"] | None = None
    signal: str | None = None
    value: float | None = None
    correct_label: str | None
    comment: str | None = None
    created: bool = Field(
        description="False when thumbs replaced earlier thumbs; a signal always adds an event."
    )


class SummaryRequest(_Request):
    since: datetime | None = Field(default=None, description="Only predictions made since then.")
    bucket: Bucket = Field(default="day", description="Time series buckets: hour, day or (ISO) week, UTC.")
    artifact_tag: str | None = Field(default=None, description="Only this artifact version's predictions.")


class EstimateRequest(_Request):
    window: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Latest predictions to estimate on (LABELWISE_ESTIMATE_WINDOW).",
    )


class ServiceMetadata(BaseModel):
    artifact_tag: str
    requested_tag: str
    technique: str
    scoring: str = Field(description="generate, logprobs, json_schema, or classifier_head (embedding).")
    provider: str
    model: str
    labels: list[str]
    ordinal: bool
    content_hash: str
    lineage: dict[str, Any] | None
    labelwise_version: str
    store: str = Field(description="The store's database kind (sqlite, postgresql); never its URL.")
    auth: bool
    max_text_chars: int
    log_text: bool
    adaptive_batching: bool = Field(
        description="Whether texts are classified by the embedding runner, which batches concurrent requests."
    )
