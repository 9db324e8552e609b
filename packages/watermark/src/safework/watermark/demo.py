"""``safework demo``: the CredID protocol end to end, as separate processes on 127.0.0.1.

A TTP and three vendors start (:mod:`safework.watermark.local_network`), each vendor with its own keys and
the third on another model family (Gemma-3-270M). Each vendor answers real chat requests for a piece of
writing (AlpacaEval, WritingBench) through its chat template at the settings a chat user picks
(temperature 0.7, top-p 0.9 by default); the TTP then attributes every answer, and human passages, across
all vendors. The result is the identification table: answers attributed to the right vendor and seed,
to the wrong one, to none or ambiguous; human passages attributed to anyone. CredID (Li et al. 2024),
multi-party setting, §3.
"""

from __future__ import annotations

import functools
import json
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safework.watermark.local_network import LocalNetwork, VendorSpec, start_network
from safework.watermark.metrics import rate_summary

PROMPT_SETS = ("alpacaeval-gpt4", "writingbench-en")
WRITING_REQUEST = re.compile(  # requests for a piece of writing: the user wants more than a line
    r"^(please |can you |could you )?(write|explain|describe|create|compose|draft|tell me about|"
    r"tell me a story|give me a detailed|generate an? (story|poem|essay|blog|article|letter|speech))",
    re.IGNORECASE,
)
MIN_REFERENCE_WORDS = 120  # AlpacaEval's reference answer to the request is long too
MAX_PROMPT_CHARS = 500
HUMAN_OFFSET = 2100  # the last ~440 catalogue passages: past those calibration and the benchmarks use
HUMAN_WORDS = 160  # about 200 tokens, the length of a vendor's answer
BATCH = 16  # prompts per GenerateBatch call
FULL_ANSWER_TOKENS = 150  # "an answer of ~200 tokens": what the identification bar is about


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs; defaults are the issue's acceptance run."""

    n: int = 30  # answers per vendor
    human: int = 100  # human passages attributed
    max_new_tokens: int = 200
    temperature: float = 0.7
    top_p: float = 0.9
    alpha: float = 1e-3  # family-wise level of the TTP's decision
    second_model: str = "gemma-3-270m"  # the third vendor's model; "default" keeps all on SmolLM2
    seed: int = 0
    robustness: bool = False  # also attribute each answer after 10 % word substitution and a paraphrase


@dataclass(frozen=True)
class Answer:
    vendor: str
    seed_id: str
    prompt: str
    text: str
    tokens: int


def identified(answer: Answer, result: Any) -> bool:
    """The TTP named the vendor and the very grant (seed) that produced the answer."""
    return bool(
        result.decision == "vendor" and result.vendor_id == answer.vendor and result.seed_id == answer.seed_id
    )


def misattributed(answer: Answer, result: Any) -> bool:
    """The TTP named another vendor: the error attribution must never make."""
    return bool(result.decision == "vendor" and result.vendor_id != answer.vendor)


def _rate(k: int, n: int) -> tuple[float, list[float]]:
    """A count as (rate, [low, high] 95 % Wilson interval)."""
    summary = rate_summary(k, n)
    return float(summary["rate"]), [float(summary["ci_low"]), float(summary["ci_high"])]


def chat_prompts(n: int, seed: int) -> list[str]:
    """``n`` real chat requests for a piece of writing (AlpacaEval, WritingBench), in a seeded order."""
    from safework.core.data import get_dataset

    alpaca, writing = (list(get_dataset(name).records()) for name in PROMPT_SETS)
    chosen = [
        str(r["prompt"]).strip()
        for r in alpaca
        if len(str(r["prompt"])) <= MAX_PROMPT_CHARS
        and len(str(r["response"]).split()) >= MIN_REFERENCE_WORDS
        and WRITING_REQUEST.match(str(r["prompt"]).strip())
    ]
    chosen += [str(r["prompt"]).strip() for r in writing if len(str(r["prompt"])) <= MAX_PROMPT_CHARS]
    random.Random(seed).shuffle(chosen)
    if len(chosen) < n:
        raise ValueError(
            f"only {len(chosen)} suitable chat requests in {' and '.join(PROMPT_SETS)}; ask for fewer answers"
        )
    return chosen[:n]


def human_passages(n: int) -> list[str]:
    """``n`` human passages (news, Wikipedia, dialogue), cut to about a vendor answer's length."""
    from safework.watermark.evaluation import passages

    return [" ".join(p.split()[:HUMAN_WORDS]) for p in passages(n, offset=HUMAN_OFFSET)]


def vendor_specs(second_model: str) -> list[VendorSpec]:
    from safework.watermark.oracle import DEFAULT_ORACLE, model_source

    model_id = DEFAULT_ORACLE if second_model == DEFAULT_ORACLE else "second"
    second = VendorSpec("initech", str(model_source(second_model)), model_id)
    return [VendorSpec("acme"), VendorSpec("globex"), second]


def _generate(
    net: LocalNetwork,
    vendor: str,
    prompts: Sequence[str],
    settings: DemoSettings,
    advance: Callable[[int], None],
) -> tuple[list[Answer], float]:
    from safework.core.rpc.gen.watermark.v1 import vendor_pb2, vendor_pb2_grpc
    from safework.watermark.client import Party

    party = Party.load(net.folder, "auditor", net.key_file("auditor"))
    sampling = vendor_pb2.SamplingParams(
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        sampling_seed=settings.seed,
    )
    answers, started = [], time.perf_counter()
    with party.channel(net.vendors[vendor], timeout_s=3600) as channel:
        stub = vendor_pb2_grpc.VendorServiceStub(channel)
        for start in range(0, len(prompts), BATCH):
            chunk = list(prompts[start : start + BATCH])
            sampling.sampling_seed = settings.seed + start
            request = vendor_pb2.GenerateBatchRequest(prompts=chunk, chat=True, sampling=sampling)
            for prompt, out in zip(chunk, stub.GenerateBatch(request).responses, strict=True):
                answers.append(Answer(vendor, out.seed_id, prompt, out.text, out.generated_tokens))
            advance(len(chunk))
    return answers, time.perf_counter() - started


def substituted(texts: Sequence[str], seed: int) -> list[str]:
    """Each text with 10 % of its words replaced (the engine's ``substitution`` attack)."""
    from safework.watermark.attacks import BUILTIN_ATTACKS

    rng = random.Random(seed)
    return [BUILTIN_ATTACKS["substitution"](t, 0.1, rng) for t in texts]


def paraphrased(texts: Sequence[str], model: str, seed: int, advance: Callable[[int], None]) -> list[str]:
    """Each text rewritten by another model (no watermark), asked through its chat template."""
    from safework.core.models import load_causal_lm
    from safework.core.models.generation import Decoding, generate_chat
    from safework.watermark.oracle import model_source

    loaded = load_causal_lm(model_source(model))
    asks = [f"Rewrite the following text in your own words, keeping its meaning:\n\n{t}" for t in texts]
    decoding = Decoding(max_new_tokens=256, temperature=0.7, top_p=0.9, seed=seed)
    return [g.text for g in generate_chat(loaded, asks, decoding, batch_size=16, on_batch=advance)]


def _attribute_all(
    net: LocalNetwork, texts: Sequence[str], alpha: float, advance: Callable[[int], None]
) -> tuple[list[Any], list[float]]:
    from safework.watermark.client import Party, TtpClient

    party = Party.load(net.folder, "auditor", net.key_file("auditor"))
    with TtpClient(net.ttp, party) as client:

        def one(text: str) -> tuple[Any, float]:
            started = time.perf_counter()
            result = client.attribute(text, alpha=alpha)
            advance(1)
            return result, time.perf_counter() - started

        with ThreadPoolExecutor(max_workers=4) as pool:
            done = list(pool.map(one, texts))
    return [r for r, _ in done], [s for _, s in done]


def run_demo(settings: DemoSettings, folder: Path | None = None) -> dict[str, Any]:
    """Start the network, generate, attribute, and return the report (see :func:`report_rows`)."""
    from safework.core.console import err_console, progress

    if settings.n < 1 or settings.human < 0:
        raise ValueError("need n >= 1 answers per vendor and human >= 0 passages")
    began = time.perf_counter()
    specs = vendor_specs(settings.second_model)
    prompts = chat_prompts(settings.n * len(specs), settings.seed)
    humans = human_passages(settings.human)
    with tempfile.TemporaryDirectory(prefix="safework-demo-") as scratch:
        where = folder or Path(scratch) / "credid"
        err_console.print(
            f"starting a TTP and {len(specs)} vendors on 127.0.0.1 (credentials in {where}) ..."
        )
        # The demo's auditor is the TTP's only client: let it attribute as fast as the vendors extract.
        rate = ("--attribution-rate", "50", "--attribution-burst", "50")
        with start_network(where, specs, threads_per_vendor=1, ttp_args=rate) as net:
            started_s = time.perf_counter() - began
            answers: list[Answer] = []
            generate_s: dict[str, float] = {}
            err_console.print(f"each vendor answers {settings.n} chat requests (minutes on a small CPU) ...")
            with progress() as bar, ThreadPoolExecutor(max_workers=len(specs)) as pool:
                tasks = {
                    s.name: bar.add_task(f"{s.name} answers ({s.model_id})", total=settings.n) for s in specs
                }
                futures = {
                    s.name: pool.submit(
                        _generate,
                        net,
                        s.name,
                        prompts[i * settings.n : (i + 1) * settings.n],
                        settings,
                        functools.partial(bar.advance, tasks[s.name]),
                    )
                    for i, s in enumerate(specs)
                }
                for name, future in futures.items():
                    got, generate_s[name] = future.result()
                    answers.extend(got)
            texts = [a.text for a in answers] + humans
            attributing = time.perf_counter()
            err_console.print(f"the TTP attributes {len(answers)} answers and {len(humans)} human texts ...")
            with progress() as bar:
                task = bar.add_task("attributing at the TTP", total=len(texts))
                results, latencies = _attribute_all(
                    net, texts, settings.alpha, functools.partial(bar.advance, task)
                )
            attribute_s = time.perf_counter() - attributing
            robust: dict[str, Any] = {}
            if settings.robustness:
                robust = _robustness(net, specs, answers, settings)
    report = report_rows(specs, answers, results[: len(answers)], results[len(answers) :])
    if folder is not None:  # every text with its decision, for a look at what failed
        with (folder / "attributions.jsonl").open("w", encoding="utf-8") as handle:
            sources = [(a.vendor, a.prompt, a.tokens) for a in answers] + [("human", "", 0)] * len(humans)
            for (source, prompt, tokens), text, result in zip(sources, texts, results, strict=True):
                row = {"source": source, "prompt": prompt, "tokens": tokens, "text": text, **result.to_json()}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    if robust:
        report["robustness"] = robust
    report["settings"] = {
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_new_tokens": settings.max_new_tokens,
        "alpha": settings.alpha,
        "prompts": list(PROMPT_SETS),
        "chat_template": True,
    }
    report["timings"] = {
        "start_s": round(started_s, 1),
        "generate_s": {k: round(v, 1) for k, v in generate_s.items()},
        "attribute_s": round(attribute_s, 1),
        "attribute_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "total_s": round(time.perf_counter() - began, 1),
    }
    return report


def _robustness(
    net: LocalNetwork, specs: Sequence[VendorSpec], answers: Sequence[Answer], settings: DemoSettings
) -> dict[str, Any]:
    """Identification accuracy of the answers after each attack (reported, not a bar). Paraphrases come
    from another model family than the answer's: Gemma-3-270M rewrites SmolLM2's answers, SmolLM2 the rest."""
    from safework.core.console import progress

    texts = [a.text for a in answers]
    smol = {s.name for s in specs if s.model == "default"}
    paraphrases = list(texts)
    out: dict[str, Any] = {}
    with progress() as bar:
        task = bar.add_task("paraphrasing with another model", total=len(texts))
        for model, of_smol in (("gemma-3-270m", True), ("default", False)):
            rows = [i for i, a in enumerate(answers) if (a.vendor in smol) == of_smol]
            if rows:
                done = paraphrased(
                    [texts[i] for i in rows], model, settings.seed, functools.partial(bar.advance, task)
                )
                for i, text in zip(rows, done, strict=True):
                    paraphrases[i] = text
        attacked = {"substitution_10pct": substituted(texts, settings.seed), "paraphrase": paraphrases}
        for name, variants in attacked.items():
            task = bar.add_task(f"attributing ({name})", total=len(variants))
            results, _ = _attribute_all(net, variants, settings.alpha, functools.partial(bar.advance, task))
            pairs = list(zip(answers, results, strict=True))
            accuracy, interval = _rate(sum(identified(a, r) for a, r in pairs), len(pairs))
            out[name] = {
                "identification_accuracy": accuracy,
                "identification_accuracy_ci": interval,
                "wrong_vendor": sum(misattributed(a, r) for a, r in pairs),
            }
    return out


def report_rows(
    specs: Sequence[VendorSpec], answers: Sequence[Answer], results: Sequence[Any], human: Sequence[Any]
) -> dict[str, Any]:
    """Per-vendor identification counts, the overall accuracy and the human false-attribution rate."""
    rows = []
    for spec in specs:
        pairs = [(a, r) for a, r in zip(answers, results, strict=True) if a.vendor == spec.name]
        rows.append(
            {
                "vendor": spec.name,
                "model": spec.model_id,
                "answers": len(pairs),
                "mean_tokens": round(statistics.mean(a.tokens for a, _ in pairs), 1) if pairs else 0,
                "identified": sum(identified(a, r) for a, r in pairs),
                "wrong_vendor": sum(misattributed(a, r) for a, r in pairs),
                "none": sum(r.decision == "none" for _, r in pairs),
                "ambiguous": sum(r.decision == "ambiguous" for _, r in pairs),
                "median_p_value": statistics.median(r.p_value for _, r in pairs) if pairs else None,
            }
        )
    full = [(a, r) for a, r in zip(answers, results, strict=True) if a.tokens >= FULL_ANSWER_TOKENS]
    accuracy, interval = _rate(sum(r["identified"] for r in rows), len(answers))
    full_accuracy, full_interval = (
        _rate(sum(identified(a, r) for a, r in full), len(full)) if full else (None, None)
    )
    human_rate, human_interval = (
        _rate(sum(r.decision != "none" for r in human), len(human)) if human else (None, None)
    )
    return {
        "vendors": rows,
        "answers": len(answers),
        "identification_accuracy": accuracy,
        "identification_accuracy_ci": interval,
        # the acceptance population: answers of about the requested length (a one-line answer carries
        # too few marked tokens for any watermark to attribute)
        "full_answers": len(full),
        "full_answer_identification_accuracy": full_accuracy,
        "full_answer_identification_accuracy_ci": full_interval,
        "human_passages": len(human),
        "human_false_attribution_rate": human_rate,
        "human_false_attribution_rate_ci": human_interval,
        "partial_decisions": sum(r.partial for r in [*results, *human]),
        "short_answers": sum(a.tokens < FULL_ANSWER_TOKENS for a in answers),
    }


def print_report(report: dict[str, Any]) -> None:
    from safework.core.console import out_console, print_table

    s, t = report["settings"], report["timings"]
    print_table(
        f"CredID identification: {report['answers']} chat answers (T {s['temperature']}, top-p {s['top_p']}, "
        f"<= {s['max_new_tokens']} tokens), alpha {s['alpha']:g}",
        [
            "vendor",
            "model",
            "answers",
            "mean tokens",
            "identified",
            "wrong vendor",
            "none",
            "ambiguous",
            "median p",
            "generate s",
        ],
        [
            [
                r["vendor"],
                r["model"],
                r["answers"],
                r["mean_tokens"],
                r["identified"],
                r["wrong_vendor"],
                r["none"],
                r["ambiguous"],
                f"{r['median_p_value']:.1e}",
                t["generate_s"][r["vendor"]],
            ]
            for r in report["vendors"]
        ],
    )
    low, high = report["identification_accuracy_ci"]
    out_console.print(
        f"identification accuracy {report['identification_accuracy']:.1%} (95 % CI {low:.1%}-{high:.1%}); "
        f"{report['short_answers']} answers under {FULL_ANSWER_TOKENS} tokens"
    )
    if report["full_answers"]:
        low, high = report["full_answer_identification_accuracy_ci"]
        out_console.print(
            f"answers of {FULL_ANSWER_TOKENS}+ tokens: {report['full_answer_identification_accuracy']:.1%} "
            f"identified of {report['full_answers']} (95 % CI {low:.1%}-{high:.1%})"
        )
    if report["human_passages"]:
        low, high = report["human_false_attribution_rate_ci"]
        out_console.print(
            f"human passages attributed to a vendor: {report['human_false_attribution_rate']:.1%} of "
            f"{report['human_passages']} (95 % CI {low:.1%}-{high:.1%})"
        )
    for name, figures in report.get("robustness", {}).items():
        low, high = figures["identification_accuracy_ci"]
        out_console.print(
            f"after {name}: identification accuracy {figures['identification_accuracy']:.1%} "
            f"({low:.1%}-{high:.1%}), wrong vendor {figures['wrong_vendor']}"
        )
    out_console.print(
        f"timings: start {t['start_s']} s, attribution {t['attribute_s']} s "
        f"(p50 {t['attribute_p50_s']} s per text, 4 at a time), total {t['total_s']} s; "
        f"partial decisions {report['partial_decisions']}"
    )
