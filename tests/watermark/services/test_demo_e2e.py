"""The acceptance run of the CredID services: `safework demo` as a user runs it.

A TTP and three vendors (two on the embedded SmolLM2, one on Gemma-3-270M) as separate processes on
127.0.0.1; 30 chat answers per vendor sampled at temperature 0.7 / top-p 0.9 (AlpacaEval and WritingBench
writing requests, through each model's chat template) and 100 human passages, attributed by the TTP.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from credid_cli import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("demo") / "net"
    done = subprocess.run(
        cli("demo", "--n", "30", "--human", "100", "--json", "--keep", str(folder)),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_demo_attributes_at_chat_settings_and_never_to_the_wrong_vendor(report: dict[str, Any]) -> None:
    assert report["settings"]["temperature"] == 0.7 and report["settings"]["top_p"] == 0.9
    assert [v["answers"] for v in report["vendors"]] == [30, 30, 30]
    assert {v["model"] for v in report["vendors"]} == {"default", "gemma-3-270m"}
    assert report["partial_decisions"] == 0
    assert all(v["wrong_vendor"] == 0 for v in report["vendors"]), report["vendors"]
    assert report["human_false_attribution_rate"] <= 0.01, report
    # Measured 87.8 % (79.4-93.0 %, benchmarks/RESULTS.md); a floor below the interval, not the goal.
    assert report["identification_accuracy"] >= 0.75, report["vendors"]


@pytest.mark.xfail(
    strict=True,
    reason="measured 87.8 % of 90 answers: code answers and Gemma-3-270M's degenerate lists carry too little "
    "entropy at T 0.7 / top-p 0.9 (benchmarks/RESULTS.md, 'CredID services — the demo')",
)
def test_the_demo_meets_the_98_percent_identification_bar(report: dict[str, Any]) -> None:
    assert report["identification_accuracy"] >= 0.98
