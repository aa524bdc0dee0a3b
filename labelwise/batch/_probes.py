"""Robustness probes: does the label survive changes that should not change it?

Text probes perturb a seeded sample of inputs (typos, casing, whitespace, truncation); prompt
probes change the prompt around the same inputs (the order of few-shot examples, the order in
which labels are listed). Each reports the share of predictions that flipped, with a Wilson
interval and examples of flips, and the accuracy before and after where true labels are known.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..core import wilson_interval
from ..evaluation import accuracy
from ..packaging import ClassifierArtifact, ClassifierRuntime, ClassifierSpec, Template, technique_for
from ._rai import snippet

__all__ = ["ProbeResult", "prompt_probes", "run_probes", "TEXT_PROBES"]

Perturbation = Callable[[str, random.Random], str]
_WORD = re.compile(r"[^\W\d_]{4,}")


def add_typos(text: str, rng: random.Random) -> str:
    """Swap two neighbouring inner letters in about one word of four letters or more in five."""
    words = list(_WORD.finditer(text))
    if not words:
        return text
    chosen = [w for w in words if rng.random() < 0.2] or [rng.choice(words)]
    out = list(text)
    for word in chosen:
        i = rng.randrange(word.start() + 1, word.end() - 2)
        out[i], out[i + 1] = out[i + 1], out[i]
    return "".join(out)


def truncate_half(text: str, rng: random.Random) -> str:
    words = text.split()
    return " ".join(words[: max(1, len(words) // 2)])


TEXT_PROBES: dict[str, Perturbation] = {
    "typos": add_typos,
    "lowercase": lambda text, rng: text.lower(),
    "uppercase": lambda text, rng: text.upper(),
    "whitespace": lambda text, rng: "  ".join(text.split()) + "\n",
    "truncation": truncate_half,
}


def _uses_labels(spec: ClassifierSpec) -> bool:
    technique = spec.technique
    prompts = [technique.prompt_template, getattr(technique, "system", None)]
    return any(p and {"labels", "label_descriptions"} & set(Template(p).vars()) for p in prompts)


def prompt_probes(spec: ClassifierSpec) -> dict[str, ClassifierSpec]:
    """Variants of the spec whose prompts say the same thing in another order."""
    probes = technique_for(spec).prompt_variants(spec)
    if _uses_labels(spec):
        task = spec.task.model_copy(update={"labels": spec.task.labels[::-1]})
        probes["label_order"] = spec.model_copy(update={"task": task})
    return probes


@dataclass(frozen=True)
class ProbeResult:
    probe: str
    kind: str  # "text" or "prompt"
    items: int
    flips: int
    flip_rate: float
    low: float
    high: float
    accuracy_before: float | None
    accuracy_after: float | None
    examples: list[dict[str, str | None]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _result(
    probe: str,
    kind: str,
    texts: Sequence[str],
    changed: Sequence[str],
    before: Sequence[str | None],
    after: Sequence[str | None],
    truth: Sequence[str] | None,
    examples: int,
) -> ProbeResult:
    flipped = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b != a]
    low, high = wilson_interval(len(flipped), len(texts)) or (0.0, 1.0)

    shown = [
        {"text": snippet(texts[i]), "changed": snippet(changed[i]), "before": before[i], "after": after[i]}
        for i in flipped[:examples]
    ]
    return ProbeResult(
        probe=probe,
        kind=kind,
        items=len(texts),
        flips=len(flipped),
        flip_rate=len(flipped) / len(texts),
        low=low,
        high=high,
        accuracy_before=None if truth is None else accuracy(truth, before),
        accuracy_after=None if truth is None else accuracy(truth, after),
        examples=shown,
    )


def run_probes(
    artifact: ClassifierArtifact,
    texts: Sequence[str],
    truth: Sequence[str] | None = None,
    *,
    sample: int = 100,
    seed: int = 0,
    examples: int = 3,
    classifier_factory: Callable[[ClassifierArtifact], ClassifierRuntime] | None = None,
) -> list[ProbeResult]:
    """Every text probe and every prompt probe that applies, on one seeded sample of ``texts``."""
    factory = classifier_factory or (lambda a: ClassifierRuntime(artifact=a, max_concurrency=16))
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(texts)), min(sample, len(texts))))
    sampled = [texts[i] for i in chosen]
    sampled_truth = [truth[i] for i in chosen] if truth is not None else None
    classifier = factory(artifact)
    before = [p.label for p in classifier.classify(sampled)]
    results = []
    for name, perturb in TEXT_PROBES.items():
        probe_rng = random.Random(f"{seed}:{name}")
        changed = [perturb(text, probe_rng) for text in sampled]
        after = [p.label for p in classifier.classify(changed)]
        results.append(_result(name, "text", sampled, changed, before, after, sampled_truth, examples))
    for name, spec in prompt_probes(artifact.spec).items():
        variant = factory(
            ClassifierArtifact(
                spec=spec, label_tokens=artifact.label_tokens, model_files=artifact.model_files
            )
        )
        after = [p.label for p in variant.classify(sampled)]
        results.append(_result(name, "prompt", sampled, sampled, before, after, sampled_truth, examples))
    return results
