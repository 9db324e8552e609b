"""``--compare A B``: how run B differs from run A, rate by rate, with an interval for each difference.

A difference counts as real only when its 95 % interval (Newcombe) excludes zero. Runs are comparable when
they asked the same prompts the same way; settings that differ (n, token budget, system prompt, split) are
listed first, because a "gain" produced by a larger token budget is not a training gain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safework.core.errors import ConfigError
from safework.rl.evaluation.metrics import RATES
from safework.rl.evaluation.report import REPORT_JSON
from safework.rl.evaluation.stats import newcombe_difference

COMPARED_SETTINGS = ("n", "max_new_tokens", "split_seed", "jailbreak", "think_system_prompt")


def load_report(path: Path) -> dict[str, Any]:
    """A report from its folder or its report.json, checked to be one."""
    file = path / REPORT_JSON if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(
            f"{path} holds no {REPORT_JSON}; pass the --out folder of a finished `safework rl eval` run "
            "(or its report.json)"
        )
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{file} is not valid JSON ({exc}); rerun `safework rl eval` to rewrite it"
        ) from None
    if not isinstance(report, dict) or "suites" not in report or "model" not in report:
        raise ConfigError(
            f"{file} is not a `safework rl eval` report (no 'suites' / 'model'); pass the right file"
        )
    return report


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Differences B − A for every rate both runs measured, plus the settings that differ."""
    settings = [
        {"setting": key, "a": a["settings"].get(key), "b": b["settings"].get(key)}
        for key in COMPARED_SETTINGS
        if a["settings"].get(key) != b["settings"].get(key)
    ]
    rows: list[dict[str, Any]] = []
    for suite, data_a in a["suites"].items():
        data_b = b["suites"].get(suite)
        if data_b is None or data_a.get("kind") not in RATES:
            continue
        for decoding, entry_a in data_a["decodings"].items():
            entry_b = data_b["decodings"].get(decoding)
            if entry_b is None:
                continue
            for name in RATES[data_a["kind"]]:
                if name not in entry_a["counts"] or name not in entry_b["counts"]:
                    continue
                (k1, n1), (k2, n2) = entry_a["counts"][name], entry_b["counts"][name]
                diff, (low, high) = newcombe_difference(k1, n1, k2, n2)
                rows.append(
                    {
                        "suite": suite,
                        "decoding": decoding,
                        "rate": name,
                        "a": round(k1 / n1, 4) if n1 else None,
                        "b": round(k2 / n2, 4) if n2 else None,
                        "difference": round(diff, 4),
                        "ci": [round(low, 4), round(high, 4)],
                        "significant": low > 0 or high < 0,
                    }
                )
    probes = {}
    for label in set(a["suites"].get("reward-probes", {}).get("labels", {})) | set(
        b["suites"].get("reward-probes", {}).get("labels", {})
    ):
        passed = [
            r["suites"].get("reward-probes", {}).get("labels", {}).get(label, {}).get("passed")
            for r in (a, b)
        ]
        probes[label] = {"a": passed[0], "b": passed[1]}
    return {
        "a": a["model"],
        "b": b["model"],
        "settings_differ": settings,
        "differences": rows,
        "reward_probes": probes,
    }
