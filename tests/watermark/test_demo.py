"""`safework demo`'s parts that need no running network: the requests it asks, the human passages it
attributes, the identification table it computes, and the folder checks of the local network."""

from __future__ import annotations

from pathlib import Path

import pytest

from safework.watermark.client import Attribution
from safework.watermark.demo import Answer, chat_prompts, human_passages, report_rows
from safework.watermark.local_network import NetworkStartError, VendorSpec, start_network


def _result(decision: str, vendor: str = "", seed: str = "", p: float = 0.5) -> Attribution:
    return Attribution(decision, vendor, seed, {}, p, False, [], None)


def test_chat_prompts_are_distinct_writing_requests_in_a_seeded_order() -> None:
    prompts = chat_prompts(90, seed=0)
    assert len(set(prompts)) == 90 and all(0 < len(p) <= 500 for p in prompts)
    assert chat_prompts(90, seed=0) == prompts and chat_prompts(90, seed=1) != prompts
    with pytest.raises(ValueError, match="ask for fewer answers"):
        chat_prompts(10_000, seed=0)


def test_human_passages_are_distinct_and_about_an_answer_long() -> None:
    texts = human_passages(50)
    assert len(set(texts)) == 50 and all(100 <= len(t.split()) <= 160 for t in texts)


def test_report_counts_right_vendor_and_seed_only() -> None:
    specs = [VendorSpec("acme"), VendorSpec("initech", "x.gguf", "gemma-3-270m")]
    answers = [
        Answer("acme", "s1", "p", "t", 200),
        Answer("acme", "s1", "p", "t", 50),
        Answer("initech", "s2", "p", "t", 190),
        Answer("initech", "s2", "p", "t", 180),
    ]
    results = [
        _result("vendor", "acme", "s1", 1e-9),
        _result("vendor", "acme", "s-other", 1e-9),  # right vendor, wrong seed: not identified
        _result("vendor", "acme", "s1", 1e-9),  # wrong vendor
        _result("none"),
    ]
    human = [_result("none"), _result("ambiguous"), _result("none"), _result("none")]
    report = report_rows(specs, answers, results, human)
    acme, initech = report["vendors"]
    assert (acme["identified"], acme["wrong_vendor"], acme["answers"]) == (1, 0, 2)
    assert (initech["identified"], initech["wrong_vendor"], initech["none"]) == (0, 1, 1)
    assert report["identification_accuracy"] == 0.25 and report["short_answers"] == 1
    assert report["full_answers"] == 3 and report["full_answer_identification_accuracy"] == 1 / 3
    assert report["human_false_attribution_rate"] == 0.25  # ambiguous counts as attributed to someone
    low, high = report["identification_accuracy_ci"]
    assert low < 0.25 < high


def test_the_network_refuses_a_used_folder_and_clashing_names(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(NetworkStartError, match="not empty"):
        start_network(tmp_path / "used", [VendorSpec("acme")])
    with pytest.raises(NetworkStartError, match="distinct"):
        start_network(tmp_path / "fresh", [VendorSpec("acme"), VendorSpec("acme")])
    with pytest.raises(NetworkStartError, match="distinct"):
        start_network(tmp_path / "fresh2", [VendorSpec("ttp")])
