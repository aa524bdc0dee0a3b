"""From an input text to a request, and from a completion to a label.

The three scoring modes differ only here:

- ``generate``: parse the completion text into a label (names and synonyms);
- ``logprobs``: one output token; a distribution over the labels from the first token's top
  logprobs, renormalised over the labels;
- ``json_schema``: output constrained to ``{"label": <label>}`` and read as JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

import numpy as np

from ..backends import Completion, CompletionRequest, LabelToken
from ..core import Reason, SpecError
from ._labels import LabelParser
from ._outcomes import Outcome
from ._prompts import Template, render_label_descriptions, render_labels, truncate
from ._spec import Calibration, ClassifierSpec

__all__ = ["Scorer", "calibrate", "check_label_tokens", "decide"]

# Added to every label token's logit in logprobs mode so that all labels appear among the top
# alternatives; the same shift for each leaves their relative probabilities unchanged.
_LABEL_BIAS = 100.0
_MAX_TOKENS = {"generate": 16, "logprobs": 1, "json_schema": 64}


def decide(probabilities: Mapping[str, float], calibration: Calibration | None) -> Outcome:
    """The outcome a label distribution gives: calibrated, then the top label or an abstention."""
    if calibration is not None:
        probabilities = calibrate(probabilities, calibration)
    probabilities = dict(probabilities)
    label = max(probabilities, key=probabilities.__getitem__)
    if calibration is not None and calibration.abstain_below is not None:
        if probabilities[label] < calibration.abstain_below:
            message = f"abstained: confidence {probabilities[label]:.2f} is below {calibration.abstain_below}"
            return Outcome(None, probabilities, Reason.BELOW_THRESHOLD, message)
    return Outcome(label, probabilities)


def check_label_tokens(tokens: Mapping[str, list[LabelToken]]) -> dict[str, LabelToken]:
    """Each label's first token, refusing labels that share one (logprobs could not tell them apart)."""
    first: dict[str, LabelToken] = {}
    owner: dict[int, str] = {}
    for label, label_tokens in tokens.items():
        if not label_tokens:
            raise SpecError(f"label {label!r} has no tokens; logprobs scoring cannot read it")
        token = label_tokens[0]
        if token.token_id in owner:
            raise SpecError(
                f"labels {owner[token.token_id]!r} and {label!r} share their first token "
                f"{token.piece!r}, so scoring: logprobs cannot tell them apart; rename one of "
                "them (or add a distinct first word) or use scoring: generate or json_schema"
            )
        owner[token.token_id] = label
        first[label] = token
    return first


def calibrate(probabilities: Mapping[str, float], calibration: Calibration) -> dict[str, float]:
    """Apply a fitted calibration to a label distribution (the result sums to 1)."""
    if calibration.method == "temperature" and calibration.temperature:
        # Dividing logits by T is raising probabilities to 1/T and renormalising.
        scaled = {k: max(p, 1e-12) ** (1.0 / calibration.temperature) for k, p in probabilities.items()}
    elif calibration.method == "isotonic" and calibration.isotonic:
        curves = calibration.isotonic
        scaled = {k: float(np.interp(p, curves[k].x, curves[k].y)) for k, p in probabilities.items()}
    else:
        return dict(probabilities)
    total = sum(scaled.values())
    if total <= 0:
        return {k: 1.0 / len(scaled) for k in scaled}
    return {k: v / total for k, v in scaled.items()}


class Scorer:
    """Renders a prompt technique's prompts and turns completions into outcomes.

    ``template`` and ``system`` come from the technique; ``fixed`` holds values that are the
    same for every input (a fixed few-shot block), rendered once.
    """

    def __init__(
        self,
        spec: ClassifierSpec,
        *,
        template: str,
        system: str | None,
        label_tokens: Mapping[str, LabelToken] | None,
        fixed: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.system = system
        self.label_tokens = dict(label_tokens or {})
        self.parser = LabelParser(spec.task.labels, spec.task.synonyms)
        self.max_text_chars = spec.technique.max_text_chars
        self._template = Template(template)
        self._fixed = {
            "labels": render_labels(spec.task.labels),
            "label_descriptions": render_label_descriptions(spec.task.labels, spec.task.label_descriptions),
            **(fixed or {}),
        }
        # Logprobs are read by token text; the model may write a label with a leading space.
        self._label_by_piece = {t.piece.strip(): label for label, t in self.label_tokens.items()}
        self._space_led_labels = (
            spec.backend.api_kind == "completions"
            and bool(self.label_tokens)
            and all(t.piece[:1].isspace() for t in self.label_tokens.values())
        )

    def prompt(self, text: str, values: Mapping[str, str] | None = None) -> str:
        """The prompt for ``text``; ``values`` fill per-input variables (nearest-selected examples)."""
        return self._template.render(
            {**self._fixed, **(values or {}), "text": truncate(text, self.max_text_chars)}
        )

    def text_pattern(self) -> re.Pattern[str]:
        """A regex whose group ``text`` recovers the input from a prompt this scorer rendered."""
        parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", self._template.source)
        pattern = ""
        for part in parts:
            name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
            if name == "text":
                pattern += "(?P<text>.*)"
            elif name in self._fixed:
                pattern += re.escape(self._fixed[name])
            else:
                pattern += re.escape(part)
        return re.compile(f"^{pattern}$", re.DOTALL)

    def request(self, text: str, values: Mapping[str, str] | None = None) -> CompletionRequest:
        return self.request_for(self.prompt(text, values), system=self.system)

    def request_for(self, prompt: str, *, system: str | None) -> CompletionRequest:
        """A request for an already rendered prompt, with the spec's decoding and scoring settings."""
        spec, decoding = self.spec, self.spec.decoding
        logprobs = spec.scoring == "logprobs"
        if logprobs and not self.label_tokens:
            raise SpecError("scoring: logprobs needs the label tokens recorded at packaging")
        if logprobs and self._space_led_labels:
            # The labels were measured with their leading space (see _label_forms): a trailing
            # space of the prompt belongs to the label's token ("token healing").
            prompt = prompt.rstrip(" \t")
        return CompletionRequest(
            prompt=prompt,
            system=system,
            max_tokens=1 if logprobs else decoding.max_tokens or _MAX_TOKENS[spec.scoring],
            temperature=decoding.temperature,
            top_p=decoding.top_p,
            seed=decoding.seed,
            stop=tuple(decoding.stop),
            top_logprobs=min(20, len(spec.task.labels)) if logprobs else None,
            logit_bias=({t.token_id: _LABEL_BIAS for t in self.label_tokens.values()} if logprobs else None),
            label_enum=spec.task.labels if spec.scoring == "json_schema" else None,
        )

    def outcome(self, completion: Completion) -> Outcome:
        if self.spec.scoring == "logprobs":
            return self._from_logprobs(completion)
        if self.spec.scoring == "json_schema":
            return self._from_json(completion.text)
        return self.parser.parse(completion.text)

    def _from_logprobs(self, completion: Completion) -> Outcome:
        alternatives = completion.top_logprobs
        if not alternatives:
            return Outcome(None, None, Reason.NO_LOGPROBS, "the backend returned no logprobs")
        mass = dict.fromkeys(self.spec.task.labels, 0.0)
        for token, logprob in alternatives:
            label = self._label_by_piece.get(token.strip())
            if label is not None:
                mass[label] += math.exp(logprob)
        missing = [label for label, found in mass.items() if found <= 0.0]
        if len(missing) == len(mass):
            return Outcome(None, None, Reason.NO_LABEL_TOKEN, "no label token among the top logprobs")
        if missing:
            # A label below the alternatives returned has at most the smallest probability
            # among them, and at most the mass they leave: count it at that bound rather than
            # at zero, which would claim a certainty the model never gave. Label tokens are left
            # out of the smallest: a server adds the sampled token wherever it ranks.
            others = [lp for token, lp in alternatives if token.strip() not in self._label_by_piece]
            left = max(0.0, 1.0 - sum(math.exp(lp) for _, lp in alternatives))
            bound = min(math.exp(min(others or [lp for _, lp in alternatives])), left)
            if max(mass.values()) < bound:
                message = (
                    f"labels {', '.join(missing)} are not among the {len(alternatives)} top logprobs "
                    "and may be likelier than those that are"
                )
                return Outcome(None, None, Reason.NO_LABEL_TOKEN, message)
            mass.update(dict.fromkeys(missing, bound))
        total = sum(mass.values())
        return decide({label: p / total for label, p in mass.items()}, self.spec.calibration)

    def _from_json(self, text: str) -> Outcome:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            message = f"output is not JSON (cut short by decoding.max_tokens or stop?): {text[:80]!r}"
            return Outcome(None, None, Reason.NOT_JSON, message)
        label = value.get("label") if isinstance(value, dict) else None
        if label in self.spec.task.labels:
            return Outcome(str(label))
        return Outcome(None, None, Reason.NO_LABEL, f"output names no label: {text[:80]!r}")
