"""Reward server: dynamic (cross-call) batching vs the client-batched baseline, in one run.

Usage: .venv/bin/python benchmarks/reward_server_vs_client_batched.py [--verifier safety] [--clients 8]
           [--group 8] [--group-requests 6] [--single-requests 12] [--rounds 3] [--max-batch 32]
           [--max-wait-ms 20] [--torch-threads N] [--text long|short] [--no-client-process] [--json]

The baseline is the shape of peers' reward servers (OpenRLHF's ``serve_rm``): a request carries a list of
items and that list is scored as one forward pass, with no batching across requests. Here it is the same
server with ``ServerConfig(cross_request=False)``, so only the batching policy differs. Four modes, same
verifier instance, same items, ``--clients`` concurrent callers (in a separate process by default, as an
RL trainer would be), alternating round by round so drift in the machine's load hits all alike:

  (a) dynamic batching, GRPO groups of ``--group`` items per request;
  (b) client-batched baseline, same groups (each request's list = one forward pass);
  (c) dynamic batching, single-item requests;
  (d) no batching, single-item requests (max batch 1; also what (b) is for single items).

Reports items/s and per-request p50/p99 latency (each mode's median-throughput round) and the medians of
the per-round ratios (a)/(b) and (c)/(d).
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict

import torch
from benchlib import machine_label
from reward_server_throughput import Result, make_items, random_encoder, run_mode

from safework.verifiers import Verifier, available_verifiers, get_verifier
from safework.verifiers.server import ServerConfig
from safework.verifiers.server.probe import SafetyProbe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--verifier", default=None, help="registered verifier (default: safety, else the probe)"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--group", type=int, default=8, help="items per request in modes (a) and (b)")
    parser.add_argument("--group-requests", type=int, default=6, help="requests per client, modes (a), (b)")
    parser.add_argument("--single-requests", type=int, default=12, help="requests per client, (c), (d)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    parser.add_argument("--text", choices=["long", "short"], default="long")
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--encoder-dir", default=None, help="MiniLM config+tokenizer folder (random weights)")
    parser.add_argument("--client-process", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.max_batch < args.group:
        parser.error("--max-batch must hold a whole group, or the baseline would split requests")
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    name = args.verifier or ("safety" if "safety" in available_verifiers() else "probe-safety")
    verifier: Verifier
    if name == "probe-safety":
        verifier = SafetyProbe(random_encoder(args.encoder_dir) if args.encoder_dir else None, "cpu")
    else:
        verifier = get_verifier(name)
    items = make_items(256, args.text)
    dynamic = ServerConfig(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    modes: list[tuple[str, ServerConfig, int, int]] = [
        (f"(a) dynamic, groups of {args.group}", dynamic, args.group, args.group_requests),
        (
            f"(b) client-batched, groups of {args.group}",
            ServerConfig(max_batch=args.max_batch, max_wait_ms=0.0, cross_request=False),
            args.group,
            args.group_requests,
        ),
        ("(c) dynamic, single items", dynamic, 1, args.single_requests),
        ("(d) unbatched, single items", ServerConfig(max_batch=1, max_wait_ms=0.0), 1, args.single_requests),
    ]
    rounds: list[list[Result]] = []
    for _ in range(max(1, args.rounds)):
        rounds.append(
            [
                run_mode(m, verifier, name, c, args.clients, n, None, items, args.client_process, group=g)
                for m, c, g, n in modes
            ]
        )
    best = [
        sorted((r[k] for r in rounds), key=lambda res: res.items_per_s)[len(rounds) // 2]
        for k in range(len(modes))
    ]
    vs_client = [r[0].items_per_s / r[1].items_per_s for r in rounds]
    vs_single = [r[2].items_per_s / r[3].items_per_s for r in rounds]
    env = {
        "verifier": name,
        "clients": args.clients,
        "group": args.group,
        "text": args.text,
        "client_process": args.client_process,
        "machine": machine_label(torch.get_num_threads()),
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
    }
    if args.json:
        doc = {
            "env": env,
            "results": [asdict(r) for r in best],
            "ratio_dynamic_vs_client_batched": statistics.median(vs_client),
            "ratio_dynamic_vs_single_unbatched": statistics.median(vs_single),
            "round_ratios": {"vs_client_batched": vs_client, "vs_single_unbatched": vs_single},
        }
        print(json.dumps(doc, indent=2))
        return
    print(
        f"reward server, verifier {name}: {args.clients} concurrent clients; {env['machine']}; "
        f"{len(rounds)} rounds (each mode's median-throughput round shown)"
    )
    print(f"{'mode':<36}{'items':>7}{'items/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'mean batch':>12}")
    for r in best:
        print(
            f"{r.mode:<36}{r.items:>7}{r.items_per_s:>10.1f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}"
            f"{r.mean_batch:>12.1f}"
        )
    print(
        f"dynamic vs client-batched (a)/(b): median {statistics.median(vs_client):.2f}x "
        f"(rounds: {', '.join(f'{x:.2f}' for x in vs_client)})"
    )
    print(
        f"dynamic vs unbatched single items (c)/(d): median {statistics.median(vs_single):.2f}x "
        f"(rounds: {', '.join(f'{x:.2f}' for x in vs_single)})"
    )


if __name__ == "__main__":
    main()
