from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelwise.core import SpecError
from labelwise.packaging import (
    ArtifactTag,
    ClassifierSpec,
    FewShot,
    LabelParser,
    MissingVariables,
    Template,
    prompt_scorer,
)
from tests.conftest import EXAMPLES

# --- tags -------------------------------------------------------------------

_part = st.from_regex(r"[a-z0-9]([-._a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


@given(_part, _part)
def test_tag_round_trips(name: str, version: str) -> None:
    tag = ArtifactTag.from_str(f"{name}:{version}")
    assert (tag.name, tag.version) == (name, version)
    assert ArtifactTag.from_str(str(tag)) == tag


@pytest.mark.parametrize("bad", ["Yelp", "yelp:", "-yelp", "yelp:v 1", "a" * 64, ""])
def test_invalid_tags_say_what_to_fix(bad: str) -> None:
    with pytest.raises(SpecError, match="lower-case|empty version"):
        ArtifactTag.from_str(bad)


def test_tags_order_by_name_then_version() -> None:
    tags = [ArtifactTag.from_str(t) for t in ["b:1", "a:2", "a:1", "a"]]
    assert [str(t) for t in sorted(tags)] == ["a", "a:1", "a:2", "b:1"]
    assert ArtifactTag.from_str("a").is_latest and ArtifactTag.from_str("a:latest").is_latest


# --- templates --------------------------------------------------------------


def test_template_declares_and_fills_its_variables() -> None:
    template = Template('Answer as {"label": ...}. Labels: {labels}\n{text}')
    assert template.vars() == ["labels", "text"]
    assert template.render({"labels": "a, b", "text": "hi"}) == 'Answer as {"label": ...}. Labels: a, b\nhi'
    with pytest.raises(MissingVariables, match="text"):
        template.render({"labels": "a, b"})


def test_input_text_is_never_treated_as_a_template() -> None:
    template = Template("{text} / {labels}")
    assert template.render({"text": "{labels} {0}", "labels": "x"}) == "{labels} {0} / x"


@pytest.mark.parametrize("name", ["yelp-zero-shot", "yelp-few-shot", "yelp-fine-tuned"])
def test_every_shipped_template_renders(name: str) -> None:
    spec = ClassifierSpec.from_yaml(EXAMPLES / f"{name}.yaml")
    tokens = None
    if spec.scoring == "logprobs":
        from labelwise.backends import LabelToken

        tokens = {label: LabelToken(i, label) for i, label in enumerate(spec.task.labels)}
    prompt = prompt_scorer(spec, label_tokens=tokens).prompt("Great tacos, slow service.")
    assert "Great tacos, slow service." in prompt
    assert "{" not in prompt.replace('{"', "")
    if isinstance(spec.technique, FewShot):
        for example in spec.technique.examples:
            assert example.text[:50] in prompt
        # The examples keep the order they were given in.
        positions = [prompt.index(e.text[:50]) for e in spec.technique.examples]
        assert positions == sorted(positions)
        assert prompt.endswith("Review: Great tacos, slow service.\nStars: ")


def test_max_text_chars_truncates_the_input() -> None:
    spec = ClassifierSpec.from_yaml(EXAMPLES / "yelp-zero-shot.yaml")
    prompt = prompt_scorer(spec).prompt("x" * 5000)
    assert "x" * 600 in prompt and "x" * 601 not in prompt


# --- label parsing ----------------------------------------------------------

STARS = LabelParser(["1", "2", "3", "4", "5"], {"five stars": "5", "one star": "1"})


@pytest.mark.parametrize(
    ("output", "label"),
    [
        ("4", "4"),
        (" 4\n", "4"),
        ('"5".', "5"),
        ("**3**", "3"),
        ("4 stars", "4"),
        ("4 out of 5", "4"),
        ("Five Stars!", "5"),
        ("Rating: 2", "2"),
        ("I would give it one star.", "1"),
    ],
)
def test_parses_labels(output: str, label: str) -> None:
    assert STARS.parse(output).label == label


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("", "empty_output"),
        ("  \n", "empty_output"),
        ("0", "no_label"),
        ("great food", "no_label"),
        ("between 3 and 4", "ambiguous"),
        ("45", "no_label"),
    ],
)
def test_never_guesses(output: str, reason: str) -> None:
    parsed = STARS.parse(output)
    assert parsed.label is None
    assert parsed.reason == reason and parsed.message


def test_word_labels_ignore_case_and_punctuation() -> None:
    parser = LabelParser(["negative", "neutral", "positive"])
    assert parser.parse("Positive.").label == "positive"
    assert parser.parse("The sentiment is NEGATIVE").label == "negative"
    assert parser.parse("positively glowing").label is None  # not the word "positive"


_decoration = st.sampled_from(["", " ", "\n", '"', "'", "*", "**", "`", "(", "."])


@given(
    label=st.sampled_from(["negative", "neutral", "positive"]),
    before=_decoration,
    after=_decoration,
    upper=st.booleans(),
    tail=st.sampled_from(["", ". The text is upbeat.", "\nBecause it says so.", " - sure"]),
)
def test_decorated_labels_parse_back(label: str, before: str, after: str, upper: bool, tail: str) -> None:
    parser = LabelParser(["negative", "neutral", "positive"])
    written = label.upper() if upper else label
    assert parser.parse(f"{before}{written}{after}{tail}").label == label


@given(st.text(alphabet=string.ascii_letters + string.punctuation + " \n", max_size=40))
def test_text_without_digits_gives_no_star_label(text: str) -> None:
    parsed = LabelParser(["1", "2", "3", "4", "5"]).parse(text)
    assert parsed.label is None and parsed.reason
