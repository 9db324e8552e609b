"""``safework rl eval``: run the evaluation harness on a model, or compare two finished runs.

Importing this module stays cheap (no torch, no data): the CLI imports it to build ``safework --help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from safework.core.cli import split_choices
from safework.core.console import err_console, print_json, print_table
from safework.core.errors import ConfigError
from safework.rl.evaluation.decodings import DECODINGS, DEFAULT_DECODINGS
from safework.rl.evaluation.suites import KINDS, SUITES

DEFAULT_OUT = Path("rl-eval")


@click.command("eval")
@click.option(
    "--model",
    default="default",
    show_default=True,
    help="Model under test: default (embedded SmolLM2), a Hugging Face folder / checkpoint, or a .gguf.",
)
@click.option(
    "--suite",
    "suites",
    default=None,
    metavar="|".join((*SUITES, "all")),
    help="Suites to run (comma-separated), or all.",
)
@click.option(
    "--prompts-jsonl",
    type=click.Path(path_type=Path),
    default=None,
    help='Your own prompts, one {"prompt": ...} per line (qa: plus "answers"); needs --kind.',
)
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default=None,
    help="How to judge --prompts-jsonl answers: harmful (safety rates), benign (refusal), qa.",
)
@click.option(
    "--n",
    default=100,
    show_default=True,
    help="Prompts per suite (safety asks each twice: plain and jailbreak-wrapped).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per suite on stdout.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Folder for report.json, report.md, chart.png and the resumable generations.jsonl.",
)
@click.option(
    "--compare",
    nargs=2,
    type=click.Path(path_type=Path),
    default=None,
    metavar="A B",
    help="Compare two runs (their --out folders or report.json files) instead of evaluating.",
)
@click.option(
    "--decodings",
    default=",".join(DEFAULT_DECODINGS),
    show_default=True,
    help=f"Comma-separated, the first is the headline: {', '.join(DECODINGS)}.",
)
@click.option("--max-new-tokens", default=None, type=int, help="Token budget per answer (default 160).")
@click.option("--batch-size", default=None, type=int, help="Prompts decoded together (default 64).")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    show_default=True,
    help="auto: bfloat16 where the CPU/GPU computes it natively, else float32.",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option(
    "--threads", type=int, default=None, help="CPU threads (default: 1 on a busy machine, else all)."
)
@click.option("--no-jailbreak", is_flag=True, help="Safety suite: ask the plain prompts only.")
def eval_command(
    model: str,
    suites: str | None,
    prompts_jsonl: Path | None,
    kind: str | None,
    n: int,
    as_json: bool,
    out: Path,
    compare: tuple[Path, Path] | None,
    decodings: str,
    max_new_tokens: int | None,
    batch_size: int | None,
    dtype: str,
    device: str,
    threads: int | None,
    no_jailbreak: bool,
) -> None:
    """Measure a model: safety, over-refusal, knowledge, math and reward probes, judged twice."""
    if compare is not None:
        if suites is not None or prompts_jsonl is not None:
            raise ConfigError(
                "--compare reads two finished runs; drop --suite / --prompts-jsonl, or --compare"
            )
        _compare(compare[0], compare[1], as_json)
        return
    from safework.rl.evaluation.harness import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_MAX_NEW_TOKENS,
        EvalConfig,
        run_evaluation,
    )

    config = EvalConfig(
        model=model,
        suites=split_choices(suites, (*SUITES, "all"), "--suite") if suites is not None else [],
        prompts_jsonl=prompts_jsonl,
        kind=kind,
        n=n,
        out=out,
        decodings=split_choices(decodings, tuple(DECODINGS), "--decodings"),
        max_new_tokens=DEFAULT_MAX_NEW_TOKENS if max_new_tokens is None else max_new_tokens,
        batch_size=DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
        dtype=dtype,
        device=device,
        threads=threads,
        jailbreak=not no_jailbreak,
    )
    report = run_evaluation(config, on_suite=print_json if as_json else None)
    if not as_json:
        _print_summary(report)
        err_console.print(f"report: {out / 'report.md'} (and report.json, chart.png)")


def _print_summary(report: dict[str, Any]) -> None:
    from safework.rl.evaluation.report import suite_line

    rows = []
    for suite in report["suites"]:
        line = suite_line(report, suite)
        if "passed" in line:
            rows.append((suite, "-", line["n"], "passed", "yes" if line["passed"] else "NO", "", ""))
            continue
        for key, value in line.items():
            if key.endswith("_rate") or key == "accuracy":
                if key in ("well_formed_rate", "truncated_rate"):
                    continue
                low, high = line[f"{key}_ci"]
                rows.append(
                    (
                        suite,
                        line["decoding"],
                        line["n"],
                        key,
                        f"{value:.3f}",
                        f"[{low:.3f}, {high:.3f}]",
                        f"{line['mean_length']:.0f}",
                    )
                )
    print_table(
        "safework rl eval", ["suite", "decoding", "n", "rate", "value", "95% CI", "mean length"], rows
    )


def _compare(a: Path, b: Path, as_json: bool) -> None:
    from safework.rl.evaluation.compare import compare, load_report

    result = compare(load_report(a), load_report(b))
    if as_json:
        print_json(result)
        return
    for item in result["settings_differ"]:
        err_console.print(
            f"[yellow]warning:[/] runs differ in {item['setting']}: {item['a']!r} vs {item['b']!r}"
        )
    rows = [
        (
            r["suite"],
            r["decoding"],
            r["rate"],
            r["a"],
            r["b"],
            f"{r['difference']:+.3f}",
            f"[{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]",
            "yes" if r["significant"] else "",
        )
        for r in result["differences"]
    ]
    print_table(
        f"B − A: {result['b']['name']} ({result['b']['fingerprint'][:8]}) vs {result['a']['name']} "
        f"({result['a']['fingerprint'][:8]})",
        ["suite", "decoding", "rate", "A", "B", "B − A", "95% CI", "significant"],
        rows,
    )
    for label, passed in result["reward_probes"].items():
        if passed["a"] != passed["b"]:
            err_console.print(f"reward probe {label}: passed {passed['a']} in A, {passed['b']} in B")
