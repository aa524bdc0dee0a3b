"""Request and response bodies of the service's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..packaging import Reason

__all__ = [
    "ArtifactSummary",
    "ClassifyBatchRequest",
    "ClassifyBatchResponse",
    "ClassifyRequest",
    "ClassifyResponse",
    "ConfusionMatrix",
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


class FeedbackRequest(_Request):
    prediction_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="From the /classify response.")
    thumbs: Literal["up", "down"]
    correct_label: str | None = Field(default=None, description="The right label, when known.")
    comment: str | None = Field(default=None, max_length=2000)


class FeedbackResponse(BaseModel):
    prediction_id: str
    thumbs: Literal["up", "down"]
    correct_label: str | None
    comment: str | None
    created: bool = Field(description="False when this replaced earlier feedback on the prediction.")


class SummaryRequest(_Request):
    since: datetime | None = Field(default=None, description="Only predictions made since then.")


class ConfusionMatrix(BaseModel):
    labels: list[str]
    matrix: list[list[int]] = Field(description="Rows: the true label; columns: the predicted label.")


class LabelSummary(BaseModel):
    label: str
    predictions: int
    feedback: int
    thumbs_up: int
    thumbs_down: int
    precision: float | None = Field(description="Of labelled predictions of this label, the share right.")
    recall: float | None = Field(description="Of labelled items truly of this label, the share found.")


class ArtifactSummary(BaseModel):
    artifact_tag: str
    predictions: int
    feedback: int
    feedback_share: float | None = Field(description="Share of predictions that received feedback.")
    thumbs_up: int
    thumbs_down: int
    thumbs_up_rate: float | None
    labelled: int = Field(description="Feedback whose true label is known (thumbs up, or a correct_label).")
    accuracy: float | None
    confusion_matrix: ConfusionMatrix
    per_label: list[LabelSummary]


class FeedbackSummary(BaseModel):
    overall: ArtifactSummary
    by_artifact: list[ArtifactSummary]
    warning: str


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
