"""The CredID services as a user runs them: separate processes started through the CLI on 127.0.0.1.

A TTP (`safework watermark ttp serve`, recording every request it receives) and two vendors (`vendor serve`
on the embedded model) with certificates and keys made by `pki`; an integrator generates through each
vendor's Generate RPC and attributes with `safework watermark attribute --json`. Then the privacy check:
in everything the TTP process received, neither the user's prompt text nor its token ids appear."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from credid_cli import free_port, make_parties, run, start, ttp_serve_args

from safework.core.rpc.recording import read_records

pytestmark = pytest.mark.slow
VENDORS = ("acme", "globex")
PROMPTS = {  # long-answer requests: a short answer carries too few marked tokens to attribute
    "acme": "Write a detailed essay of several paragraphs about the history of tea and how it is made.",
    "globex": "Write a long, detailed essay of several paragraphs about why the sky looks blue.",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("credid-procs")
    roles = {"ttp": "ttp", "admin": "admin", "auditor": "client", **dict.fromkeys(VENDORS, "vendor")}
    public = make_parties(folder, roles)
    record = folder / "ttp-received.bin"
    procs: list[subprocess.Popen[str]] = []
    try:
        requester = ("--requester", f"auditor={public['auditor']}", "--record-requests", str(record))
        ttp, ttp_addr = start(
            ttp_serve_args(folder, public, *requester),
            folder / "ttp.log",
        )
        procs.append(ttp)

        def party(name: str) -> list[str]:
            return ["--pki", str(folder), "--name", name, "--signing-key", str(folder / f"{name}.sign")]

        vendor_addr, endpoints = {}, {name: f"127.0.0.1:{free_port()}" for name in VENDORS}
        for name, endpoint in endpoints.items():
            run(
                "watermark",
                "ttp",
                "register-vendor",
                "--ttp",
                ttp_addr,
                *party("admin"),
                "--vendor-id",
                name,
                "--vendor-key",
                public[name],
                "--endpoint",
                endpoint,
            )
            run("watermark", "keygen", "--out", str(folder / f"{name}.wm"))
        for name in VENDORS:
            proc, vendor_addr[name] = start(
                [
                    "watermark",
                    "vendor",
                    "serve",
                    "--listen",
                    endpoints[name],
                    "--ttp",
                    ttp_addr,
                    *party(name),
                    "--ttp-key",
                    public["ttp"],
                    "--watermark-secret",
                    str(folder / f"{name}.wm"),
                    "--grants",
                    str(folder / f"{name}.grants"),
                ],
                folder / f"{name}.log",
            )
            procs.append(proc)
        yield {"folder": folder, "ttp": ttp_addr, "vendors": vendor_addr, "record": record, "party": party}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_generate_then_attribute_across_processes_and_the_ttp_never_sees_the_prompt(
    world: dict[str, Any],
) -> None:
    from safework.core.models import load_tokenizer
    from safework.core.rpc import connect
    from safework.core.rpc.gen.watermark.v1 import vendor_pb2, vendor_pb2_grpc
    from safework.watermark.security.pki import client_tls

    folder: Path = world["folder"]
    texts = {}
    for name, target in world["vendors"].items():
        with connect(target, tls=client_tls(folder, "auditor"), default_timeout=600) as channel:
            # Keys are fresh each run, so the sampled answer is too; the chat model sometimes stops after a
            # sentence, and a short answer carries too few marked tokens to attribute. Ask again then.
            for sampling_seed in range(3, 9):
                sampling = vendor_pb2.SamplingParams(
                    max_new_tokens=200, temperature=1.0, top_p=1.0, sampling_seed=sampling_seed
                )
                out = vendor_pb2_grpc.VendorServiceStub(channel).Generate(
                    vendor_pb2.GenerateRequest(prompt=PROMPTS[name], chat=True, sampling=sampling)
                )
                if out.generated_tokens >= 150:
                    break
        assert out.generated_tokens >= 150, f"{name} answered in {out.generated_tokens} tokens: {out.text!r}"
        texts[name] = out.text
    jsonl = folder / "texts.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts.values()))
    out = run(
        "watermark",
        "attribute",
        "--ttp",
        world["ttp"],
        *world["party"]("auditor"),
        "--texts-jsonl",
        str(jsonl),
        "--json",
    )
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["decision"] for r in results] == ["vendor", "vendor"], results
    assert [r["vendor"] for r in results] == list(texts)
    assert all(r["identity"]["model_id"] == "default" and r["p_value"] < 0.01 for r in results)

    received = b"".join(data for _, data in read_records(world["record"]))
    methods = {method for method, _ in read_records(world["record"])}
    assert {
        "/safework.watermark.v1.TtpService/IssueSeed",
        "/safework.watermark.v1.TtpService/Attribute",
    } <= methods
    tokenizer = load_tokenizer("default")
    for prompt in PROMPTS.values():
        assert prompt.encode() not in received
        for fragment in (prompt[:24], prompt[-24:]):
            assert fragment.encode() not in received
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        for width, order in ((4, "little"), (4, "big"), (8, "little")):
            packed = b"".join(i.to_bytes(width, order) for i in ids[:8])
            assert packed not in received
        assert _varints(ids[:8]) not in received
    assert texts["acme"].encode() in received  # the suspect texts did arrive: the recorder works


def _varints(values: list[int]) -> bytes:
    out = bytearray()
    for value in values:
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                break
    return bytes(out)


def test_audit_verify_command_checks_the_chain(world: dict[str, Any]) -> None:
    out = json.loads(
        run("watermark", "ttp", "audit", "verify", "--db", str(world["folder"] / "ttp.db"), "--json")
    )
    assert out["ok"] and out["entries"] >= 4  # 2 registrations + 2 grants, then attributions
