"""``ClassifierSpec``: what a data scientist writes (as YAML) to describe a classifier.

Every model forbids unknown keys, so a typo is an error that names the key, and validation
messages say what to fix. Input values are kept out of error messages: a spec may wrongly hold a
secret, and errors end up in logs.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from ..backends import (
    BACKENDS,
    Backend,
    BackendSpec,
    CompletionBackend,
    EmbeddingBackend,
    ScoringMode,
    backend_class,
    is_azure_fine_tuned,
    providers_speaking,
    speaks,
)
from ..core import LabelwiseError, SpecError, StrictModel
from ._labels import normalize
from ._prompts import Template
from ._tag import validate_name

__all__ = [
    "Calibration",
    "ClassifierSpec",
    "DecodingSpec",
    "Embedding",
    "EmbeddingHead",
    "Example",
    "FewShot",
    "FineTuneProvenance",
    "FineTuned",
    "Hyperparameters",
    "IsotonicCurve",
    "LocalFineTuned",
    "LocalTrainingProvenance",
    "TaskSpec",
    "TrainingData",
    "ZeroShot",
    "format_validation_error",
    "read_yaml_model",
]

_SECRET_WORDS = ("key", "secret", "token", "password")


class Example(StrictModel):
    """One labelled example shown to the model in a few-shot prompt."""

    text: str = Field(min_length=1)
    label: str


class TaskSpec(StrictModel):
    """What is being classified: the ordered label set and how labels may be written."""

    description: str = ""
    labels: list[str] = Field(min_length=2)
    label_descriptions: dict[str, str] = Field(default_factory=dict)
    synonyms: dict[str, str] = Field(
        default_factory=dict,
        description="Other ways the model may write a label: 'five stars' -> '5'.",
    )
    ordinal: bool = False

    @field_validator("labels")
    @classmethod
    def _labels_distinct(cls, labels: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for label in labels:
            if not label.strip():
                raise ValueError("labels must not be empty strings")
            key = normalize(label)
            if key in seen:
                raise ValueError(
                    f"label {label!r} duplicates {seen[key]!r} (labels are compared ignoring "
                    "case, spaces and punctuation): list each label once"
                )
            seen[key] = label
        return labels

    @model_validator(mode="after")
    def _references_known_labels(self) -> TaskSpec:
        unknown = [k for k in self.label_descriptions if k not in self.labels]
        if unknown:
            raise ValueError(f"label_descriptions names unknown labels {unknown}; labels are {self.labels}")
        label_keys = {normalize(label) for label in self.labels}
        for synonym, label in self.synonyms.items():
            if label not in self.labels:
                raise ValueError(
                    f"synonym {synonym!r} maps to {label!r}, which is not a label; labels are {self.labels}"
                )
            if normalize(synonym) in label_keys and normalize(synonym) != normalize(label):
                raise ValueError(f"synonym {synonym!r} is itself another label")
        return self


def _check_template(source: str, *, field: str, required: set[str], allowed: set[str]) -> str:
    names = set(Template(source).vars())
    missing = required - names
    if missing:
        raise ValueError(f"{field} must contain {', '.join('{' + n + '}' for n in sorted(missing))}")
    unknown = names - allowed
    if unknown:
        raise ValueError(
            f"{field} uses unknown placeholder(s) {', '.join('{' + n + '}' for n in sorted(unknown))}; "
            f"available: {', '.join('{' + n + '}' for n in sorted(allowed))}"
        )
    return source


_PROMPT_VARS = {"text", "labels", "label_descriptions"}


def _completing_backend(spec: ClassifierSpec) -> type[Backend]:
    backend = backend_class(spec.backend.provider)
    if not speaks(backend, CompletionBackend):
        raise ValueError(f"provider {spec.backend.provider} gives embeddings only: use technique embedding")
    return backend


class _TechniqueSpec(StrictModel):
    """What every technique answers about itself; ``_techniques`` maps kinds to behaviour."""

    max_text_chars: int | None = Field(default=None, gt=0)

    @property
    def prompt_template(self) -> str | None:
        """The template the input text is rendered into; ``None`` for techniques without a prompt."""
        return None

    @property
    def served_model(self) -> str | None:
        """The model this technique calls whatever the backend names (a fine-tuned model id)."""
        return None

    @property
    def own_scoring(self) -> str | None:
        """How this technique scores whatever ``scoring`` says (an embedding head); ``None``: as it says."""
        return None

    @property
    def reported_metrics(self) -> dict[str, float]:
        """Metrics a provider reported for the model (fine-tuning), to compare with measured ones."""
        return {}

    @property
    def job_provenance(self) -> FineTuneProvenance | None:
        """The fine-tuning job that made the model; ``None`` for techniques that call no such model."""
        return None

    def check(self, spec: ClassifierSpec) -> None:
        """Raise ``ValueError`` when this technique does not fit the rest of ``spec``."""
        backend = _completing_backend(spec)
        if not spec.backend.model and backend.fixed_model is None:
            raise ValueError(
                f"backend.model is required for provider {spec.backend.provider} "
                "(e.g. gpt-4o-mini, or the Azure deployment name)"
            )


class ZeroShot(_TechniqueSpec):
    """A prompt with instructions and the input text, no examples."""

    kind: Literal["zero_shot"]
    system: str | None = None
    template: str

    @property
    def prompt_template(self) -> str:
        return self.template

    @field_validator("template")
    @classmethod
    def _template_vars(cls, value: str) -> str:
        return _check_template(value, field="template", required={"text"}, allowed=_PROMPT_VARS)


class FewShot(_TechniqueSpec):
    """A prompt with chosen labelled examples, rendered in the order given."""

    kind: Literal["few_shot"]
    system: str | None = None
    template: str
    examples: list[Example] = Field(default_factory=list)
    examples_file: str | None = Field(
        default=None, description="JSONL or YAML file of examples, relative to the spec file."
    )
    example_template: str = "Text: {text}\nLabel: {label}"
    example_separator: str = "\n\n"
    selection: Literal["fixed", "nearest"] = Field(
        default="fixed",
        description="fixed: every example, in order; nearest: the k examples most similar to the input.",
    )
    k: int | None = Field(default=None, gt=0, description="nearest: how many examples go in the prompt.")
    embedder: BackendSpec | None = Field(default=None, description="nearest: where embeddings come from.")

    @property
    def prompt_template(self) -> str:
        return self.template

    def check(self, spec: ClassifierSpec) -> None:
        super().check(spec)
        if self.selection == "nearest":
            if self.embedder is None or self.k is None:
                raise ValueError("technique.selection nearest needs technique.k and technique.embedder")
            if self.examples and self.k > len(self.examples):
                raise ValueError(f"technique.k is {self.k} but there are only {len(self.examples)} examples")
        if self.examples and self.examples_file:
            raise ValueError("technique: give examples or examples_file, not both")
        if not self.examples and not self.examples_file:
            raise ValueError("technique few_shot needs examples (or examples_file)")
        for i, example in enumerate(self.examples):
            if example.label not in spec.task.labels:
                raise ValueError(
                    f"technique.examples[{i}] has label {example.label!r}, which is not in "
                    f"task.labels {spec.task.labels}"
                )

    @field_validator("template")
    @classmethod
    def _template_vars(cls, value: str) -> str:
        return _check_template(
            value,
            field="template",
            required={"text", "examples"},
            allowed=_PROMPT_VARS | {"examples"},
        )

    @field_validator("example_template")
    @classmethod
    def _example_template_vars(cls, value: str) -> str:
        return _check_template(
            value, field="example_template", required={"text", "label"}, allowed={"text", "label"}
        )


class Hyperparameters(StrictModel):
    n_epochs: int | None = Field(default=None, gt=0)
    batch_size: int | None = Field(default=None, gt=0)
    learning_rate_multiplier: float | None = Field(default=None, gt=0)


class FineTuneProvenance(StrictModel):
    """Where a fine-tuned model came from, as the fine-tuning service reported it.

    Written by hand for a model tuned elsewhere, or read from the service's job by
    ``labelwise finetune start`` / ``import`` (then every field the job tells is filled in).
    """

    base_model: str = Field(min_length=1)
    job_id: str | None = None
    seed: int | None = None
    training_file_id: str | None = None
    validation_file_id: str | None = None
    training_file_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    validation_file_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    training_rows: int | None = Field(default=None, ge=0)
    validation_rows: int | None = Field(default=None, ge=0)
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    reported_metrics: dict[str, float] = Field(default_factory=dict)
    reported_metrics_source: str | None = Field(
        default=None, description="Where reported_metrics were read: the result file and its step."
    )
    trained_tokens: int | None = Field(default=None, ge=0)
    estimated_cost_usd: float | None = Field(default=None, ge=0)
    created_at: str | None = Field(default=None, description="When the job was created (UTC, ISO 8601).")
    finished_at: str | None = Field(default=None, description="When it finished (UTC, ISO 8601).")


class FineTuned(_TechniqueSpec):
    """A fine-tuned provider model called with the exact prompt format it was trained on."""

    kind: Literal["fine_tuned"]
    model_id: str = Field(min_length=1)
    system: str | None = None
    prompt_format: str = "{text}"
    provenance: FineTuneProvenance

    @property
    def prompt_template(self) -> str:
        return self.prompt_format

    @property
    def served_model(self) -> str:
        return self.model_id

    @property
    def reported_metrics(self) -> dict[str, float]:
        return dict(self.provenance.reported_metrics)

    @property
    def job_provenance(self) -> FineTuneProvenance:
        return self.provenance

    def check(self, spec: ClassifierSpec) -> None:
        backend = _completing_backend(spec)
        if spec.backend.model and spec.backend.model != self.model_id:
            raise ValueError(
                "backend.model differs from technique.model_id: a fine_tuned classifier calls "
                "its model_id; remove backend.model"
            )
        if backend.fixed_model is not None:
            raise ValueError(
                f"technique fine_tuned needs a provider that serves the model id, not {spec.backend.provider}"
            )
        needs_deployment = backend.serves_through_deployments and is_azure_fine_tuned(self.model_id)
        if needs_deployment and not spec.backend.deployment:
            raise ValueError(
                f"{spec.backend.provider} calls fine-tuned model {self.model_id} only through a deployment: "
                "set backend.deployment (labelwise finetune import JOB --deploy NAME makes one)"
            )

    @field_validator("prompt_format")
    @classmethod
    def _prompt_vars(cls, value: str) -> str:
        return _check_template(value, field="prompt_format", required={"text"}, allowed=_PROMPT_VARS)


class EmbeddingHead(StrictModel):
    """What training chose: the scikit-learn family and settings (the fitted head is head.skops)."""

    family: str
    params: dict[str, Any] = Field(default_factory=dict)
    cv_weighted_f1: float | None = None
    training_rows: int | None = None


class Embedding(_TechniqueSpec):
    """Embeddings of the text (from ``backend``) and a scikit-learn classifier on top."""

    kind: Literal["embedding"]
    head: EmbeddingHead

    @property
    def own_scoring(self) -> str:
        return "classifier_head"

    def check(self, spec: ClassifierSpec) -> None:
        if not speaks(backend_class(spec.backend.provider), EmbeddingBackend):
            able = ", ".join(providers_speaking(EmbeddingBackend))
            raise ValueError(
                f"technique embedding needs a backend.provider that embeds ({able}), "
                f"not {spec.backend.provider}"
            )
        if not spec.backend.model:
            raise ValueError(f"backend.model is required for provider {spec.backend.provider}")
        if spec.scoring != "generate":
            raise ValueError("scoring does not apply to technique embedding (its head gives probabilities)")


class TrainingData(StrictModel):
    """The rows a local fine-tune was made from: the file, and each split's size and hash."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    rows: int = Field(ge=0)
    text_col: str
    label_col: str
    duplicates_removed: int = Field(default=0, ge=0)
    splits: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="train, validation and test: rows, labels and the SHA-256 of their sorted text keys.",
    )


class LocalTrainingProvenance(StrictModel):
    """How a model fine-tuned here was made: enough to make it again and to judge it."""

    base_model: str = Field(min_length=1)
    base_model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    mode: Literal["end_to_end", "few_labels"] = "end_to_end"
    data: TrainingData
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    curve: list[dict[str, float]] = Field(
        default_factory=list,
        description="Each evaluation: step, epoch, train_loss, valid_loss, valid_accuracy.",
    )
    best_step: int | None = None
    stopped_early: bool = False
    device: str = Field(
        default="cpu", description="Where it trained: weights differ a little between devices."
    )
    validation_metrics: dict[str, float] = Field(
        default_factory=dict, description="What the training loop measured on validation at the kept step."
    )


class LocalFineTuned(_TechniqueSpec):
    """An encoder fine-tuned here (``labelwise finetune start --local``): its weights are in the artifact.

    ``backend`` names the base model and how the weights run: ``provider: sentence_transformers``,
    ``runtime: torch | onnx_int8``, ``max_tokens``.
    """

    kind: Literal["local_fine_tuned"]
    normalize: bool = Field(default=False, description="L2-normalise the pooled vector before the head.")
    provenance: LocalTrainingProvenance

    @property
    def own_scoring(self) -> str:
        return "encoder_head"

    @property
    def reported_metrics(self) -> dict[str, float]:
        return dict(self.provenance.validation_metrics)

    def check(self, spec: ClassifierSpec) -> None:
        if not backend_class(spec.backend.provider).runs_weights_here:
            able = ", ".join(name for name, cls in BACKENDS.items() if cls.runs_weights_here)
            raise ValueError(
                f"technique local_fine_tuned runs its weights in this process: backend.provider must be "
                f"one that does ({able}), not {spec.backend.provider}"
            )
        if not spec.backend.model or not spec.backend.max_tokens:
            raise ValueError(
                "technique local_fine_tuned needs backend.model (the base) and backend.max_tokens"
            )
        if spec.scoring != "generate":
            raise ValueError(
                "scoring does not apply to technique local_fine_tuned (its head gives probabilities)"
            )


TechniqueSpec = Annotated[
    ZeroShot | FewShot | FineTuned | Embedding | LocalFineTuned, Field(discriminator="kind")
]

FewShot.model_rebuild()  # its embedder is a BackendSpec, defined after it


class DecodingSpec(StrictModel):
    """Sampling settings; the defaults are deterministic."""

    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = 0
    stop: list[str] = Field(default_factory=list)


class IsotonicCurve(StrictModel):
    """A fitted monotone map from a label's raw probability to a calibrated one."""

    x: list[float] = Field(min_length=2)
    y: list[float] = Field(min_length=2)

    @model_validator(mode="after")
    def _monotone(self) -> IsotonicCurve:
        if len(self.x) != len(self.y):
            raise ValueError("x and y must have the same length")
        if any(b < a for a, b in zip(self.x, self.x[1:], strict=False)):
            raise ValueError("x must be increasing")
        return self


class Calibration(StrictModel):
    """Probability calibration fitted on held-out data, and an optional abstain threshold."""

    method: Literal["none", "temperature", "isotonic"] = "none"
    temperature: float | None = Field(default=None, gt=0)
    isotonic: dict[str, IsotonicCurve] | None = None
    abstain_below: float | None = Field(
        default=None, gt=0, lt=1, description="No label when the top probability is below this."
    )
    fitted_on: str | None = Field(default=None, description="The data it was fitted on (name and hash).")

    @model_validator(mode="after")
    def _parameters(self) -> Calibration:
        if self.method == "temperature" and self.temperature is None:
            raise ValueError("method temperature needs temperature")
        if self.method == "isotonic" and not self.isotonic:
            raise ValueError("method isotonic needs isotonic curves, one per label")
        return self


class ClassifierSpec(StrictModel):
    """A classifier: the task, the technique, the backend and how outputs become labels."""

    name: str
    description: str = ""
    task: TaskSpec
    technique: TechniqueSpec
    backend: BackendSpec = Field(default_factory=BackendSpec)
    decoding: DecodingSpec = Field(default_factory=DecodingSpec)
    scoring: ScoringMode = "generate"
    calibration: Calibration | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        try:
            return validate_name(value)
        except SpecError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> ClassifierSpec:
        self.technique.check(self)
        self._model_serves_scoring()
        if self.calibration is not None:
            if self.scoring != "logprobs":
                raise ValueError("calibration needs scoring: logprobs (the only mode with probabilities)")
            curves = self.calibration.isotonic or {}
            if curves and set(curves) != set(self.task.labels):
                raise ValueError("calibration.isotonic needs one curve per label of task.labels")
        return self

    def _model_serves_scoring(self) -> None:
        if self.technique.own_scoring is not None:
            return  # the technique scores by itself (an embedding classifier's head)
        model = self.model_name
        capabilities = self.backend.capabilities_of(model)
        instead = " or ".join(["json_schema"] * capabilities.json_schema + ["generate"])
        override = f"; use scoring: {instead} (if the model does, say so with backend.capabilities)"
        if self.scoring == "logprobs" and not capabilities.logprobs:
            family = "a reasoning model" if capabilities.reasoning else "this model"
            raise ValueError(
                f"{model} is {family} and returns no logprobs, so scoring: logprobs cannot read it{override}"
            )
        if self.scoring == "json_schema" and not capabilities.json_schema:
            raise ValueError(f"{model} takes no json_schema response format (structured outputs){override}")

    @property
    def scored_by(self) -> str:
        """How labels and probabilities are really produced, for people and ``/metadata``."""
        return self.technique.own_scoring or self.scoring

    @property
    def model_name(self) -> str:
        """The model the backend is asked for."""
        return (
            self.technique.served_model
            or self.backend.model
            or str(backend_class(self.backend.provider).fixed_model)
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> ClassifierSpec:
        """Read and validate a spec file; ``examples_file`` is read relative to it."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpecError(f"spec file {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise SpecError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise SpecError(f"{path} must hold a mapping of keys (name, task, technique, ...)")
        technique = data.get("technique")
        if isinstance(technique, dict) and technique.get("examples_file"):
            examples_path = path.parent / str(technique["examples_file"])
            data["technique"] = {
                **{k: v for k, v in technique.items() if k != "examples_file"},
                "examples": read_examples(examples_path),
            }
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "spec") -> ClassifierSpec:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc, source=source)) from None


def read_examples(path: Path) -> list[dict[str, Any]]:
    """Read few-shot examples from a JSONL or YAML file, as plain dicts to validate."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"examples_file {path} does not exist") from None
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        else:
            rows = yaml.safe_load(raw)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"examples_file {path} cannot be read: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise SpecError(f"examples_file {path} must hold a list of {{text, label}} objects")
    return rows


def _location(loc: tuple[int | str, ...]) -> str:
    # Pydantic puts the discriminator value ("few_shot") into the path: leave it out.
    parts = [p for p in loc if p not in _TECHNIQUES]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# Derived from the union, so a new technique is listed everywhere at once.
_TECHNIQUES: dict[str, type[BaseModel]] = {
    get_args(cls.model_fields["kind"].annotation)[0]: cls for cls in get_args(get_args(TechniqueSpec)[0])
}


def _allowed_keys(loc: tuple[int | str, ...], root: type[BaseModel]) -> list[str]:
    """The keys the model at ``loc`` (an error location ending in the bad key) accepts."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # a list index: the model stays that of the list's items
        if part in _TECHNIQUES:
            model = _TECHNIQUES[part]
        elif part == "examples":
            model = Example
        elif model is not None:
            field = model.model_fields.get(part)
            annotation = field.annotation if field else None
            model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return sorted(model.model_fields) if model else []


def format_validation_error(
    exc: ValidationError, *, source: str, root: type[BaseModel] | None = None, what: str = "classifier spec"
) -> str:
    """One line per problem, each naming the field and what to do about it."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        where = _location(loc) or "spec"
        if error["type"] == "extra_forbidden":
            key = str(loc[-1])
            if any(word in key.lower() for word in _SECRET_WORDS):
                lines.append(
                    f"{where}: secrets never go in a spec; put the key in an environment variable "
                    "and give its name as backend.api_key_env"
                )
                continue
            allowed = _allowed_keys(loc, root or ClassifierSpec)
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            lines.append(f"{where}: unknown key{suggestion}; allowed keys: {', '.join(allowed)}")
        elif error["type"] == "union_tag_invalid" or error["type"] == "union_tag_not_found":
            lines.append(f"{where}: kind must be one of {', '.join(_TECHNIQUES)}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {message}")
    return f"{source} is not a valid {what}:\n  " + "\n  ".join(lines)


_Model = TypeVar("_Model", bound=BaseModel)


def read_yaml_model(model: type[_Model], path: Path, *, what: str) -> _Model:
    """A ``model`` read from the YAML file at ``path``; what is wrong with it as a ``LabelwiseError``.

    An empty file is the model with its defaults.
    """
    try:
        return model.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except FileNotFoundError:
        raise LabelwiseError(f"{what} file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise LabelwiseError(f"{path} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise LabelwiseError(format_validation_error(exc, source=str(path), root=model, what=what)) from None
