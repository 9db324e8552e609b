"""The committed gRPC stubs match proto/, the staleness check catches edits, and the contracts hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from safework.core.errors import ConfigError, RpcError
from safework.core.rpc import codegen

PROTO_ROOT = codegen.default_proto_root()
GEN_ROOT = codegen.default_out_root()
VERIFIER_PROTO = Path("safework/verifier/v1/verifier.proto")


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safework.core.rpc.codegen", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_committed_stubs_are_current() -> None:
    stale = codegen.stale_files(PROTO_ROOT, GEN_ROOT)
    assert stale == [], f"stale gRPC stubs: {stale}; {codegen.FIX_HINT}"


def test_check_cli_passes_on_the_committed_tree() -> None:
    done = _run_cli("--check")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of proto/ and of the committed gen/ that a test may edit."""
    protos, gen = tmp_path / "proto", tmp_path / "gen"
    shutil.copytree(PROTO_ROOT, protos)
    shutil.copytree(GEN_ROOT, gen, ignore=shutil.ignore_patterns("__pycache__"))
    return protos, gen


def test_edited_proto_is_detected_and_regeneration_fixes_it(tree: tuple[Path, Path]) -> None:
    protos, gen = tree
    proto = protos / VERIFIER_PROTO
    text = proto.read_text()
    anchor = "  string task_label = 6;\n}"
    assert anchor in text
    proto.write_text(
        text.replace(anchor, "  string task_label = 6;\n  // A new field.\n  string tenant = 7;\n}")
    )

    stale = codegen.stale_files(protos, gen)
    assert "verifier/v1/verifier_pb2.py (out of date)" in stale
    assert "verifier/v1/verifier_pb2.pyi (out of date)" in stale
    assert not any(line.startswith("watermark/") for line in stale), stale

    done = _run_cli("--check", "--proto-root", str(protos), "--out-root", str(gen))
    assert done.returncode == 1
    assert "verifier/v1/verifier_pb2.py (out of date)" in done.stderr
    assert "make proto" in done.stderr

    changed = codegen.generate(protos, gen)
    assert Path("verifier/v1/verifier_pb2.py") in changed
    assert codegen.stale_files(protos, gen) == []
    assert "tenant" in (gen / "verifier/v1/verifier_pb2.pyi").read_text()


def test_removed_and_missing_files_are_reported(tree: tuple[Path, Path]) -> None:
    protos, gen = tree
    (protos / "safework/watermark/v1/ttp.proto").unlink()
    (gen / "verifier/v1/verifier_pb2_grpc.py").unlink()
    stale = codegen.stale_files(protos, gen)
    assert "watermark/v1/ttp_pb2.py (no longer generated; delete it)" in stale
    assert "verifier/v1/verifier_pb2_grpc.py (missing)" in stale
    codegen.generate(protos, gen)
    assert not (gen / "watermark/v1/ttp_pb2.py").exists()
    assert codegen.stale_files(protos, gen) == []


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    codegen.generate(PROTO_ROOT, first)
    codegen.generate(PROTO_ROOT, second)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    assert codegen.generate(PROTO_ROOT, first) == []  # a re-run over its own output changes nothing


def test_broken_proto_gives_protoc_message(tree: tuple[Path, Path]) -> None:
    protos, gen = tree
    proto = protos / VERIFIER_PROTO
    proto.write_text(proto.read_text().replace("string prompt = 2;", "strin prompt = 2;", 1))
    with pytest.raises(
        RpcError, match=r"(?s)protoc failed.*verifier.proto:\d+:\d+: \"strin\" is not defined"
    ):
        codegen.stale_files(protos, gen)


def test_misplaced_proto_is_refused(tmp_path: Path) -> None:
    (tmp_path / "safework").mkdir()
    (tmp_path / "safework/loose.proto").write_text('syntax = "proto3";\n')
    with pytest.raises(ConfigError, match=r"safework/<area>/v<N>"):
        codegen.find_protos(tmp_path)


def test_stubs_live_under_core_but_keep_wire_names() -> None:
    from safework.core.rpc.gen.verifier.v1 import verifier_pb2, verifier_pb2_grpc
    from safework.core.rpc.gen.watermark.v1 import ttp_pb2, vendor_pb2

    assert verifier_pb2.DESCRIPTOR.package == "safework.verifier.v1"
    assert ttp_pb2.DESCRIPTOR.package == "safework.watermark.v1"
    assert verifier_pb2.ScoreRequest.__module__ == "safework.core.rpc.gen.verifier.v1.verifier_pb2"
    assert verifier_pb2_grpc.VerifierServiceStub.__module__.startswith("safework.core.rpc.gen.")
    service = verifier_pb2.DESCRIPTOR.services_by_name["VerifierService"]
    assert {m.name for m in service.methods} == {"Score", "ScoreSteps", "ListVerifiers"}
    steps = service.methods_by_name["ScoreSteps"]
    assert steps.client_streaming and steps.server_streaming
    # ttp.proto reuses vendor.proto's report: the cross-file import resolved under the new module path.
    finding = ttp_pb2.VendorFinding.DESCRIPTOR.fields_by_name["report"].message_type
    assert finding is vendor_pb2.SignedExtractionReport.DESCRIPTOR


def test_ttp_contract_never_carries_a_prompt() -> None:
    """Design rule (DESIGN.md §4): the user's prompt never reaches the TTP — not even as an optional field."""
    from safework.core.rpc.gen.watermark.v1 import ttp_pb2

    ttp = ttp_pb2.DESCRIPTOR
    for message in ttp.message_types_by_name.values():
        for fld in message.fields:
            assert "prompt" not in fld.name, f"{message.name}.{fld.name} would carry a prompt to the TTP"
    issue = ttp.services_by_name["TtpService"].methods_by_name["IssueSeed"].input_type
    assert [f.name for f in issue.fields] == ["vendor_id", "identity", "nonce", "signature"]


def test_every_message_and_field_is_commented() -> None:
    """The protos are the public contract for third-party clients; each message and field says what it is."""
    for proto in sorted(PROTO_ROOT.rglob("*.proto")):
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            declares = stripped.startswith(("message ", "enum ", "rpc ", "service ", "oneof ")) or (
                stripped.endswith(";") and "=" in stripped and not stripped.startswith(("syntax", "//"))
            )
            if declares:
                assert lines[i - 1].strip().startswith("//"), (
                    f"{proto.name}:{i + 1} has no comment: {stripped}"
                )
