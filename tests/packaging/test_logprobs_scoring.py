"""Logprobs scoring never claims a certainty the model did not give.

A server returns the top alternatives of the first token, and may add the sampled token wherever
it ranks; a label absent from them has at most the smallest probability returned, not zero.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelwise.backends import Completion, LabelToken
from labelwise.core import Reason
from labelwise.packaging import ClassifierSpec
from labelwise.packaging._scoring import Scorer

LABELS = ["negative", "neutral", "positive"]


def _scorer(
    *, api: str = "completions", lead: str = " ", template: str = "Review: {text}\nSentiment: "
) -> Scorer:
    spec = ClassifierSpec.from_dict(
        {
            "name": "words",
            "task": {"labels": LABELS},
            "technique": {"kind": "zero_shot", "template": template},
            "backend": {
                "provider": "openai_compatible",
                "model": "m",
                "base_url": "http://127.0.0.1:1/v1",
                "api": api,
            },
            "scoring": "logprobs",
        }
    )
    tokens = {label: LabelToken(100 + i, lead + label) for i, label in enumerate(LABELS)}
    return Scorer(spec, template=template, system=None, label_tokens=tokens)


def _outcome(scorer: Scorer, alternatives: list[tuple[str, float]]):
    return scorer.outcome(Completion(text="", model="m", top_logprobs=alternatives))


def test_a_missing_label_counts_at_the_smallest_probability_returned() -> None:
    outcome = _outcome(
        _scorer(), [(" negative", math.log(0.5)), ("!", math.log(0.2)), (" positive", math.log(0.05))]
    )
    assert outcome.probabilities is not None
    # neutral was not returned: it has at most the mass left (0.25) and the smallest other (0.2).
    assert outcome.probabilities["neutral"] == pytest.approx(0.2 / 0.75)
    # All the mass returned: a missing label then has none, as the model said.
    full = _outcome(_scorer(), [(" negative", math.log(0.5)), (" positive", math.log(0.5))])
    assert full.probabilities is not None and full.probabilities["neutral"] == 0.0
    assert outcome.label == "negative"


def test_a_sampled_label_below_the_list_abstains_instead_of_claiming_certainty() -> None:
    # What llama.cpp answered after "Sentiment: " before the fix: digits on top, the sampled
    # (biased) label appended far below them, the other labels absent.
    alternatives = [("5", -1.35), ("4", -1.39), ("1", -1.98), (" ", -9.0), ("neutral", -16.4)]
    outcome = _outcome(_scorer(lead=""), alternatives)
    assert outcome.label is None and outcome.reason is Reason.NO_LABEL_TOKEN
    assert "negative" in (outcome.message or "")


@given(
    found=st.dictionaries(st.sampled_from(LABELS), st.floats(-30, -0.8), min_size=1),
    others=st.lists(st.floats(-30, -1.5), max_size=3),
)
def test_probabilities_are_never_certain_when_a_label_is_missing(found, others) -> None:
    # Alternatives that leave some probability mass unreturned, as a top-k list does.
    alternatives = [(f" {label}", lp) for label, lp in found.items()] + [
        (f"w{i}", lp) for i, lp in enumerate(others)
    ]
    outcome = _outcome(_scorer(), alternatives)
    if outcome.probabilities is None:
        assert outcome.reason is Reason.NO_LABEL_TOKEN
        return
    assert sum(outcome.probabilities.values()) == pytest.approx(1.0)
    if len(found) < len(LABELS):
        assert all(0.0 < p < 1.0 for p in outcome.probabilities.values())


@pytest.mark.parametrize("ending", [" ", "  ", "\t", ""])
def test_a_trailing_space_moves_into_the_space_led_label(ending: str) -> None:
    template = "Review: {text}\nSentiment:" + ending
    request = _scorer(template=template).request("so so")
    assert request.prompt == "Review: so so\nSentiment:"


def test_bare_labels_and_chat_keep_the_prompt_as_written() -> None:
    assert _scorer(lead="").request("x").prompt.endswith("Sentiment: ")
    assert _scorer(api="chat", lead="").request("x").prompt.endswith("Sentiment: ")
