"""The ``<think>…</think> answer`` format: its three shapes, the format rule, and build/split agreeing."""

from __future__ import annotations

import pytest

from safework.core import answer_format
from safework.core.answer_format import build, final_answer, split, think_part, thinking_prefix, well_formed


# -- the three shapes ----------------------------------------------------------------------------------
def test_closed_think_block_then_answer() -> None:
    parts = split("<think>Paris? Lyon?</think>  Lyon ")
    assert (parts.think, parts.answer, parts.closed, parts.truncated) == ("Paris? Lyon?", "Lyon", True, False)
    assert final_answer("<think>Paris? Lyon?</think>  Lyon ") == "Lyon"
    assert think_part("<think>Paris? Lyon?</think>  Lyon ") == "Paris? Lyon?"


def test_truncated_reasoning_has_an_empty_answer() -> None:
    """Cut off before ``</think>``: the reasoning is not the answer (it used to be judged as one)."""
    parts = split("<think>The capital is Paris, so the answer")
    assert parts.think == "The capital is Paris, so the answer"
    assert parts.answer == "" and parts.closed is False and parts.truncated is True
    assert final_answer("<think>The capital is Paris") == ""
    assert split("<think>").think == "" and split("<think>").truncated


def test_plain_answer_without_tags() -> None:
    parts = split("  Paris is the capital.\n")
    assert (parts.think, parts.answer, parts.closed, parts.truncated) == (
        None,
        "Paris is the capital.",
        False,
        False,
    )
    assert think_part("just an answer") is None
    assert split("") == answer_format.SplitResponse(None, "", closed=False)


def test_text_before_the_think_block_is_neither_think_nor_answer() -> None:
    parts = split("preamble <think>reason</think> answer")
    assert (parts.think, parts.answer) == ("reason", "answer")


# -- several </think> ----------------------------------------------------------------------------------
def test_answer_follows_the_last_close_and_think_spans_to_it() -> None:
    parts = split("<think>a</think> draft <think>b</think> final")
    assert parts.answer == "final"
    assert parts.think == "a</think> draft <think>b"  # first <think> to last </think>, kept verbatim
    assert final_answer("<think>a</think></think>  ") == ""


def test_close_without_open_counts_as_closed_reasoning() -> None:
    """A chat template that pre-fills ``<think>`` leaves only the close tag in the generated text."""
    parts = split("reasoning here</think> the answer")
    assert (parts.think, parts.answer, parts.closed) == ("reasoning here", "the answer", True)


def test_whitespace_around_parts_is_stripped() -> None:
    parts = split("<think>\n\n  step one\n\n</think>\n\n\t answer \n")
    assert (parts.think, parts.answer) == ("step one", "answer")
    assert split("<think> \n </think> \n").answer == "" and split("<think> \n </think>").think == ""


# -- the paper's format rule ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "ok"),
    [
        ("<think>Two and two make four.</think> The answer is 4.", True),
        ("preamble <think>x</think>y", True),  # anything may precede the think block
        ("<think>a</think><think>b</think> c", True),
        ("<think>multi\nline\nreasoning</think>\nanswer", True),  # content may span lines
        ("<think>   </think> answer", False),  # empty think content
        ("<think>reasoning</think>   \n", False),  # no non-space character after the block
        ("<think>reasoning without close tag", False),  # truncated: never answered
        ("just an answer", False),
        ("reasoning</think> answer", False),  # no <think> at all
        ("</think><think>x", False),  # tags in the wrong order
        ("", False),
    ],
)
def test_well_formed_is_the_spec_format_rule(response: str, ok: bool) -> None:
    """Spec §4: anything, then ``<think>`` with non-empty content ``</think>``, then >= 1 non-space char."""
    assert well_formed(response) is ok


# -- building --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("think", "answer"),
    [
        ("Two and two make four.", "The answer is 4."),
        ("step one\n\nstep two", "done"),
        ("  padded  ", "  also padded "),
        (None, "a plain answer"),
    ],
)
def test_build_then_split_round_trips(think: str | None, answer: str) -> None:
    text = build(think, answer)
    parts = split(text)
    assert parts.think == (None if think is None else think.strip())
    assert parts.answer == answer.strip()
    assert well_formed(text) is (think is not None)


def test_build_layout() -> None:
    assert build("why", "what") == "<think>\nwhy\n</think>\nwhat"
    assert build(None, "what") == "what"


def test_thinking_prefix_is_truncated_until_final() -> None:
    steps = ["First, check the facts.", "Then answer."]
    partial, final = thinking_prefix(steps, final=False), thinking_prefix(steps, final=True)
    assert partial == "<think>\nFirst, check the facts.\n\nThen answer."
    assert final == partial + "\n</think>"
    assert split(partial).truncated and split(partial).think == "First, check the facts.\n\nThen answer."
    assert split(final).closed and split(final).answer == "" and not well_formed(final)
