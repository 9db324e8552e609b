"""Load on the CredID TTP: concurrent clients mixing seed requests and attributions for a fixed time.

    .venv/bin/python benchmarks/credid_services_load.py [--clients 16] [--seconds 60]

Everything is real and on 127.0.0.1: a TTP (SQLite store, mTLS, signed requests) and two vendors serving
the embedded model. Each client loops: with probability ``--seed-share`` a vendor asks for a seed (one of
a few model versions, so most answers are the cached grant, as in production), otherwise an auditor asks
to attribute one of a pool of texts (watermarked by either vendor, or human). Prints errors (the target is
zero), p50/p99 latency per kind and throughput; the attribution decisions are checked against the truth.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch
from benchlib import machine_label

from safework.core.rpc import build_server, connect
from safework.core.rpc.gen.watermark.v1 import ttp_pb2, ttp_pb2_grpc, vendor_pb2, vendor_pb2_grpc
from safework.watermark.engine import load_watermarker
from safework.watermark.keys import WatermarkKey
from safework.watermark.security.pki import client_tls, init_ca, issue, server_tls
from safework.watermark.security.signing import SigningKey
from safework.watermark.ttp.attribution import GrpcVendorCaller
from safework.watermark.ttp.seeds import SeedIssuer
from safework.watermark.ttp.service import TtpConfig, TtpServicer, sign_as
from safework.watermark.ttp.sqlite_store import SQLiteStore
from safework.watermark.vendor.grants import GrantBook
from safework.watermark.vendor.service import VendorConfig, VendorServicer

VENDORS = ("acme", "globex")
PROMPTS = (
    "Write a short paragraph about the history of the bicycle.",
    "Explain in a few sentences how bread rises.",
    "Describe a quiet morning at a lake in a short paragraph.",
)
HUMAN = (
    "The council voted on Thursday to extend the opening hours of the public library during the winter "
    "months, after residents asked for a warm place to read and study in the evenings. The change will "
    "cost little, the librarian said, because volunteers have offered to staff the extra hours."
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed-share", type=float, default=0.5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="credid-load-"))
    init_ca(folder)
    for name, role in (
        ("ttp", "ttp"),
        ("admin", "admin"),
        ("auditor", "client"),
        *((v, "vendor") for v in VENDORS),
    ):
        issue(folder, name, role=role)  # type: ignore[arg-type]
    keys = {name: SigningKey.generate() for name in ("ttp", "admin", "auditor", *VENDORS)}
    store = SQLiteStore(folder / "ttp.db")
    config = TtpConfig(
        key=keys["ttp"],
        issuer=SeedIssuer(bytes(range(32))),
        admins={"admin": {keys["admin"].key_id: keys["admin"].public_bytes()}},
        requesters={"auditor": {keys["auditor"].key_id: keys["auditor"].public_bytes()}},
        require_mtls=True,
        attribution_rate_per_s=1000.0,  # the load test measures the service, not the per-client limiter
        attribution_burst=1000.0,
    )
    caller = GrpcVendorCaller(client_tls(folder, "ttp"))
    ttp = build_server(
        "127.0.0.1:0",
        [(ttp_pb2_grpc.add_TtpServiceServicer_to_server, TtpServicer(store, config, caller))],
        tls=server_tls(folder, "ttp"),
        max_workers=32,
    )
    base = load_watermarker("credid", WatermarkKey(bytes(16)), bits=16)
    servers, texts = [], []
    for i, name in enumerate(VENDORS):
        vendor = VendorServicer(
            VendorConfig(name, keys[name], bytes([i + 1]) * 32, keys["ttp"].public_bytes()),
            base,
            GrantBook(folder / f"{name}.grants"),
        )
        server = build_server(
            "127.0.0.1:0",
            [(vendor_pb2_grpc.add_VendorServiceServicer_to_server, vendor)],
            tls=server_tls(folder, name),
        )
        servers.append(server)
        request = ttp_pb2.RegisterVendorRequest(
            vendor_id=name,
            keys=[ttp_pb2.VendorKey(key_id=keys[name].key_id, public_key=keys[name].public_bytes())],
            model_ids=["default"],
            endpoint=server.target,
        )
        with connect(ttp.target, tls=client_tls(folder, "admin")) as channel:
            ttp_pb2_grpc.TtpServiceStub(channel).RegisterVendor(
                sign_as(request, "RegisterVendor", keys["admin"], "admin")
            )
        with connect(ttp.target, tls=client_tls(folder, name)) as channel:
            vendor.request_grant(ttp_pb2_grpc.TtpServiceStub(channel))
        for k, prompt in enumerate(PROMPTS):
            sampling = vendor_pb2.SamplingParams(
                max_new_tokens=200, temperature=1.0, top_p=1.0, sampling_seed=k
            )
            with connect(server.target, tls=client_tls(folder, "auditor"), default_timeout=600) as channel:
                out = vendor_pb2_grpc.VendorServiceStub(channel).Generate(
                    vendor_pb2.GenerateRequest(prompt=prompt, chat=True, sampling=sampling)
                )
            texts.append((out.text, name))
    texts.append((HUMAN, ""))
    print(f"{len(texts)} texts ready; {args.clients} clients for {args.seconds:g} s", flush=True)

    latencies: dict[str, list[float]] = {"seed": [], "attribute": []}
    errors: list[str] = []
    wrong: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds

    def client(index: int) -> None:
        rng = random.Random(index)
        channels = {
            n: connect(ttp.target, tls=client_tls(folder, n), default_timeout=300)
            for n in (*VENDORS, "auditor")
        }
        stubs = {n: ttp_pb2_grpc.TtpServiceStub(c) for n, c in channels.items()}
        try:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    if rng.random() < args.seed_share:
                        vendor = rng.choice(VENDORS)
                        identity = ttp_pb2.IdentityMessage(
                            model_id="default", model_version=f"1.{rng.randrange(4)}"
                        )
                        request = ttp_pb2.IssueSeedRequest(vendor_id=vendor, identity=identity)
                        stubs[vendor].IssueSeed(sign_as(request, "IssueSeed", keys[vendor], vendor))
                        kind = "seed"
                    else:
                        text, truth = rng.choice(texts)
                        request = ttp_pb2.AttributeRequest(text=text)
                        answer = stubs["auditor"].Attribute(
                            sign_as(request, "Attribute", keys["auditor"], "auditor")
                        )
                        if answer.vendor_id != truth:
                            with lock:
                                wrong.append(f"{truth or 'human'} -> {answer.vendor_id or 'none'}")
                        kind = "attribute"
                except Exception as exc:  # counted: the target is zero
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                with lock:
                    latencies[kind].append(time.perf_counter() - started)
        finally:
            for channel in channels.values():
                channel.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    print(f"machine: {machine_label(torch.get_num_threads())}")
    print(f"{args.clients} clients, {elapsed:.1f} s, errors {len(errors)}, wrong attributions {len(wrong)}")
    for kind, values in latencies.items():
        if values:
            print(
                f"{kind:9s} n={len(values):5d}  {len(values) / elapsed:7.2f}/s  "
                f"p50 {1000 * statistics.median(values):8.1f} ms  "
                f"p99 {1000 * percentile(values, 0.99):8.1f} ms"
            )
    for line in sorted(set(errors))[:5]:
        print("error:", line)
    for line in sorted(set(wrong))[:5]:
        print("wrong:", line)
    for server in (ttp, *servers):
        server.stop(0)
    caller.close()
    store.close()


if __name__ == "__main__":
    main()
