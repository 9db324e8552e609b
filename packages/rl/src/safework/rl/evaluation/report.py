"""The report of a run: ``report.json`` (the record ``--compare`` reads), ``report.md`` (for people) and
``chart.png`` (headline rates with their 95 % intervals, one bar per decoding)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safework.rl.evaluation.metrics import HEADLINE

REPORT_JSON, REPORT_MD, CHART_PNG = "report.json", "report.md", "chart.png"
LINE_EXTRAS = ("mean_length", "well_formed_rate", "well_formed_rate_ci", "truncated_rate")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _with_ci(entry: dict[str, Any], name: str) -> str:
    low, high = entry[f"{name}_ci"]
    return f"{_pct(entry[name])} [{_pct(low)}, {_pct(high)}]"


def suite_line(report: dict[str, Any], suite: str) -> dict[str, Any]:
    """One suite as one flat JSON object: the headline decoding's rates at top level, every decoding below."""
    data = report["suites"][suite]
    line: dict[str, Any] = {"suite": suite, "model": report["model"]["spec"], "n": data.get("n")}
    if data.get("kind") == "reward-probes":
        line.update(
            passed=data["passed"],
            labels={k: v["passed"] for k, v in data["labels"].items()},
            failures=data["failures"],
        )
        return line
    headline = data["headline_decoding"]
    line["decoding"] = headline

    def rates(entry: dict[str, Any]) -> dict[str, Any]:
        names = [n for n in HEADLINE[data["kind"]]]
        keys = [k for name in names for k in (name, f"{name}_ci")] + list(LINE_EXTRAS)
        return {k: entry[k] for k in keys if k in entry}

    line.update(rates(data["decodings"][headline]))
    line["judge_agreement"] = data["decodings"][headline]["judge_agreement"]["value"]
    line["disagreements"] = data["decodings"][headline]["disagreements"]
    line["decodings"] = {name: rates(entry) for name, entry in data["decodings"].items()}
    return line


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def write_report(report: dict[str, Any], out: Path, *, final: bool) -> None:
    """report.json and report.md (after every suite, so a cut-short run keeps them); chart.png at the end."""
    _write_atomic(out / REPORT_JSON, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _write_atomic(out / REPORT_MD, markdown(report))
    if final:
        chart(report, out / CHART_PNG)


def markdown(report: dict[str, Any]) -> str:
    model, settings = report["model"], report["settings"]
    lines = [
        f"# safework rl eval: {model['name']}",
        "",
        f"Model `{model['spec']}` ({model['kind']}, {model['parameters']:,} parameters, {model['dtype']} on "
        f"{model['device']}), fingerprint `{model['fingerprint']}`. Decodings: "
        + ", ".join(f"`{d['name']}`" for d in settings["decodings"])
        + f" (headline: `{settings['headline_decoding']}`), max {settings['max_new_tokens']} new tokens, "
        f"batch {settings['batch_size']}, n = {settings['n']} per suite.",
        "",
        "Rates in %, with Wilson 95 % intervals. *Verifier* = the project's verifiers (the reward); *second* "
        "= rules sharing no weights with it. ⚠ marks a rate where the two judges differ by more than 10 "
        "points.",
        "",
        "| suite | decoding | n | rate | verifier | second judge | agreement | mean length | well-formed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for suite, data in report["suites"].items():
        if data.get("kind") == "reward-probes":
            continue
        for decoding, entry in data["decodings"].items():
            flagged = {d["rate"] for d in entry["disagreements"]}
            for name in HEADLINE[data["kind"]]:
                mark = " ⚠" if name in flagged else ""
                lines.append(
                    f"| {suite} | {decoding} | {entry['n']} | {name} | {_with_ci(entry, name)}{mark} | "
                    f"{_with_ci(entry['second_judge'], name)} | {_pct(entry['judge_agreement']['value'])} | "
                    f"{entry['mean_length']:.1f} | {_pct(entry['well_formed_rate'])} |"
                )
    lines += ["", "## Breakdown", ""]
    for suite, data in report["suites"].items():
        if data.get("kind") == "reward-probes":
            continue
        names = HEADLINE[data["kind"]]
        lines += [
            f"**{suite}**",
            "",
            "| decoding | group | n | " + " | ".join(names) + " | mean length |",
            "|---|---|---|" + "---|" * len(names) + "---|",
        ]
        for decoding, groups in data["groups"].items():
            for group, entry in groups.items():
                cells = " | ".join(_with_ci(entry, name) for name in names)
                lines.append(
                    f"| {decoding} | {group} | {entry['n']} | {cells} | {entry['mean_length']:.1f} |"
                )
        lines.append("")
    accuracy = report.get("second_judge_accuracy")
    if accuracy:
        lines += [
            "## Second judge on human labels",
            "",
            "The keyword judge against human-labelled pyrit pairs (how far its votes can be trusted):",
            "",
        ]
        for name, entry in accuracy.items():
            lines.append(
                f"- {name} ({entry['task']}): accuracy {_pct(entry['value'])} % "
                f"[{_pct(entry['ci'][0])}, {_pct(entry['ci'][1])}], n = {entry['n']}"
            )
        lines.append("")
    probes = report["suites"].get("reward-probes")
    if probes:
        lines += [
            f"## Reward probes: {'PASSED' if probes['passed'] else 'FAILED'}",
            "",
            "| label | n | good mean | passed | failing policies (margin) |",
            "|---|---|---|---|---|",
        ]
        for label, entry in probes["labels"].items():
            failing = ", ".join(
                f"{p} ({v['margin']:+.3f})" for p, v in entry["policies"].items() if not v["passed"]
            )
            lines.append(
                f"| {label} | {entry['n']} | {entry['good_mean']:.3f} | "
                f"{'yes' if entry['passed'] else '**no**'} | {failing or '—'} |"
            )
        lines.append("")
    judges = report.get("judges")
    if judges:
        lines += ["## Judges", ""]
        for name, entry in judges.items():
            version = f", head {entry['version']}" if "version" in entry else ""
            lines.append(f"- `{name}`: {entry['class']}{version}")
        lines.append("")
    timing = report["timing"]
    lines += [
        "## Timing",
        "",
        ", ".join(f"{k}: {v} s" for k, v in timing.items()),
        "",
        f"Machine: {report['machine']}",
        "",
    ]
    return "\n".join(lines)


def chart(report: dict[str, Any], path: Path) -> None:
    """Headline rates per suite, one bar per decoding, with 95 % interval whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars: list[tuple[str, dict[str, tuple[float, float, float]]]] = []
    decodings: list[str] = []
    for suite, data in report["suites"].items():
        if data.get("kind") == "reward-probes":
            continue
        for name in HEADLINE[data["kind"]]:
            values = {}
            for decoding, entry in data["decodings"].items():
                decodings = decodings if decoding in decodings else [*decodings, decoding]
                values[decoding] = (entry[name], *entry[f"{name}_ci"])
            bars.append((f"{suite}\n{name.removesuffix('_rate')}", values))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.4 * len(bars)), 4.0))
    width = 0.8 / max(1, len(decodings))
    for offset, decoding in enumerate(decodings):
        xs: list[float] = []
        ys: list[float] = []
        errors: list[list[float]] = [[], []]
        for x, (_, values) in enumerate(bars):
            if decoding in values:
                value, low, high = values[decoding]
                xs.append(x + (offset - (len(decodings) - 1) / 2) * width)
                ys.append(value)
                errors[0].append(value - low)
                errors[1].append(high - value)
        axes.bar(xs, ys, width, yerr=errors, capsize=3, label=decoding)
    axes.set_xticks(range(len(bars)), [label for label, _ in bars], fontsize=8)
    axes.set_ylim(0, 1)
    axes.set_ylabel("rate (95 % Wilson interval)")
    axes.set_title(f"safework rl eval: {report['model']['name']}")
    if decodings:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
