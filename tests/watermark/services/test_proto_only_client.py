"""The watermark protos are enough to integrate identification: a client generated afresh from
``proto/safework/watermark/v1/*.proto`` by ``grpc_tools.protoc``, using no safework code (only the generated
modules, ``grpcio`` and ``cryptography``; see ``proto_only_client.py``), signs Attribute requests as
common.proto describes, talks mTLS to a real TTP on 127.0.0.1, and gets a vendor's generated text attributed
to that vendor and a human passage to no vendor, with TTP signatures it can check itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from safework.core.rpc.gen.watermark.v1 import vendor_pb2, vendor_pb2_grpc

if TYPE_CHECKING:
    from conftest import Net  # the shared network (fixture `net`) lives in conftest.py

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
PROTO_ROOT = REPO / "proto"
PROTOS = [f"safework/watermark/v1/{name}.proto" for name in ("common", "ttp", "vendor")]
CLIENT = Path(__file__).with_name("proto_only_client.py")
VENDOR = "globex"
PROMPT = "Describe in a long, detailed paragraph how a small coastal town prepares for its summer festival."
HUMAN = (
    "Our neighbour spent most of Saturday repairing the fence that the storm had knocked over in March. "
    "He borrowed a post-hole digger from the hardware shop, set three new posts in concrete and waited for "
    "them to cure before nailing the old boards back on. By evening the children had painted half of it "
    "green, and the dog had already found the one gap he had missed near the compost heap."
)


def _generate_client(out: Path) -> Path:
    """Compile the three protos into ``out`` the way any Python integrator would, outside safework."""
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/timestamp.proto
    out.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *PROTOS,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    package = out / "safework" / "watermark" / "v1"
    for name in ("common", "ttp", "vendor"):
        assert (package / f"{name}_pb2.py").is_file()
    # protoc writes no __init__.py; regular packages here shadow the monorepo's `safework` namespace package.
    for folder in (out / "safework", out / "safework" / "watermark", package):
        (folder / "__init__.py").touch()
    return out


def test_a_client_generated_from_the_protos_alone_attributes_texts_over_mtls(
    net: Net, tmp_path: Path
) -> None:
    gen = _generate_client(tmp_path / "gen")
    stub = vendor_pb2_grpc.VendorServiceStub(net.channel("auditor", net.vendors[VENDOR].target))
    sampling = vendor_pb2.SamplingParams(max_new_tokens=160, temperature=1.0, top_p=1.0, sampling_seed=7)
    out = stub.Generate(vendor_pb2.GenerateRequest(prompt=PROMPT, chat=True, sampling=sampling), timeout=600)
    assert out.generated_tokens > 60, out.text

    key_file = net.keys["auditor"].save(tmp_path / "auditor.ed25519.pem")  # PKCS#8 PEM, as `pki keygen`
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps([out.text, HUMAN]))
    audit = net.store.audit_length()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [
            sys.executable,
            "-I",  # no PYTHONPATH, no script folder: only site-packages and the generated code
            str(CLIENT),
            "--gen",
            str(gen),
            "--target",
            net.ttp.target,
            "--pki",
            str(net.folder),
            "--name",
            "auditor",
            "--signing-key",
            str(key_file),
            "--ttp-public-key",
            net.keys["ttp"].public_bytes().hex(),
            "--texts",
            str(texts),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    generated, human = (json.loads(line) for line in done.stdout.splitlines())

    for answer in (generated, human):
        assert answer["method"] == "/safework.watermark.v1.TtpService/Attribute"
        assert answer["ttp_signature_valid"], answer
        assert not answer["partial"], answer
        modules = answer["modules"]
        assert "safework.watermark.v1.ttp_pb2" in modules and "safework.watermark.v1.common_pb2" in modules
        assert all(Path(path).is_relative_to(gen.resolve()) for path in modules.values()), modules
    assert generated["decision"] == "DECISION_ATTRIBUTED", (generated, out.text)
    assert generated["vendor_id"] == VENDOR and generated["seed_id"] == out.seed_id
    assert generated["model_id"] == "default"
    assert human["decision"] == "DECISION_NONE" and human["vendor_id"] == "", human
    # The TTP accepted both signed requests as the auditor and recorded them.
    entries = net.store.read_audit(audit, 10)
    assert [e.kind for e in entries] == ["attribution", "attribution"]
    assert all(e.payload["actor"] == "auditor" for e in entries)
