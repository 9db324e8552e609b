"""The native-op builder: source discovery, cache layout, CLI, CUDA source alone, concurrent builds."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from safework.core.errors import ConfigError, NativeOpError
from safework.core.ops.builder import OPS, OpBuilder, build_tag, default_builder, op_spec
from safework.core.ops.cli import ops_group
from safework.core.ops.sources import find_source_root

REPO = Path(__file__).resolve().parents[2]
CSRC = REPO / "csrc"


# ----------------------------------------------------------------------------------- sources


def test_editable_checkout_finds_repo_csrc() -> None:
    assert find_source_root() == CSRC.resolve()


def test_installed_wheel_layout_finds_package_data(tmp_path: Path) -> None:
    core = tmp_path / "site-packages" / "safework" / "core"
    shutil.copytree(CSRC, core / "csrc")
    assert find_source_root(core) == core / "csrc"


def test_package_data_wins_over_a_checkout_above(tmp_path: Path) -> None:
    shutil.copytree(CSRC, tmp_path / "csrc")  # a stray checkout above site-packages
    core = tmp_path / "venv" / "site-packages" / "safework" / "core"
    shutil.copytree(CSRC, core / "csrc")
    assert find_source_root(core) == core / "csrc"


def test_checkout_layout_walks_up(tmp_path: Path) -> None:
    shutil.copytree(CSRC, tmp_path / "csrc")
    core = tmp_path / "packages" / "core" / "src" / "safework" / "core"
    core.mkdir(parents=True)
    assert find_source_root(core) == tmp_path / "csrc"


def test_missing_sources_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "csrc").mkdir()  # a csrc without the marker file is not ours
    core = tmp_path / "safework" / "core"
    core.mkdir(parents=True)
    with pytest.raises(NativeOpError, match="SAFEWORK_OPS=reference"):
        find_source_root(core)


def test_every_declared_source_exists() -> None:
    spec = op_spec("prf")
    for rel in (*spec.cpp_sources, *spec.cuda_sources):
        assert (CSRC / rel).is_file(), rel


def test_unknown_op_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="known ops: credid, fused_score, prf"):
        op_spec("nope")


# ------------------------------------------------------------------------------- cache layout


def test_build_folder_is_keyed_by_torch_and_flavour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEWORK_CACHE_DIR", str(tmp_path))
    builder = OpBuilder(with_cuda=False)
    tag = build_tag(False)
    assert torch.__version__.split("+")[0] in tag and "-cpu-" in tag
    assert builder.build_dir("prf") == tmp_path / "ops" / tag / "prf"
    assert build_tag(True) != tag or torch.version.cuda is None
    assert not builder.is_built("prf")
    assert builder.library_path("prf").parent == builder.build_dir("prf")


# -------------------------------------------------------------------------------------- CUDA


def _local_includes(path: Path) -> list[str]:
    return re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', path.read_text(), flags=re.MULTILINE)


def test_cuda_source_depends_only_on_cuda_headers_and_stdint() -> None:
    allowed_system = {"cuda_runtime.h", "stdint.h", "cstdint"}
    seen: set[Path] = set()
    pending = [CSRC / "core" / "prf_cuda.cu"]
    while pending:
        current = pending.pop()
        for inc in _local_includes(current):
            local = current.parent / inc
            if local.is_file():
                if local not in seen:
                    seen.add(local)
                    pending.append(local)
            else:
                assert inc in allowed_system, f"{current.name} includes {inc}"
    assert {p.name for p in seen} == {"prf.h", "siphash.h", "rounded.h"}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_cuda_source_compiles_with_nvcc(tmp_path: Path) -> None:
    nvcc = shutil.which("nvcc")
    assert nvcc is not None
    out = tmp_path / "prf_cuda.o"
    proc = subprocess.run(
        [nvcc, "-std=c++17", "-arch=sm_80", "-c", str(CSRC / "core" / "prf_cuda.cu"), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


# --------------------------------------------------------------------------------------- CLI


def test_ops_list_json_reports_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFEWORK_OPS", raising=False)
    default_builder().load("prf")
    result = CliRunner().invoke(ops_group, ["list", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    row = next(r for r in doc["ops"] if r["name"] == "prf")
    assert doc["mode"] == "auto"
    assert row["name"] == "prf" and row["built"] is True and row["in_use"] == "native"
    assert row["compiler"] is True


def test_ops_list_in_reference_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "reference")
    result = CliRunner().invoke(ops_group, ["list"])
    assert result.exit_code == 0, result.output
    assert "reference" in result.output and "prf" in result.output


def test_ops_build_reuses_the_cache() -> None:
    for name in OPS:  # built once (just in time) if this test runs alone on a cold cache
        default_builder().load(name)
    result = CliRunner().invoke(ops_group, ["build", "--all", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sorted(row["name"] for row in rows) == sorted(OPS)
    for row in rows:
        assert Path(row["library"]).is_file()
        assert row["was_cached"] is True  # a load from the cache, not a compile


def test_ops_build_needs_a_name_or_all() -> None:
    result = CliRunner().invoke(ops_group, ["build"])
    assert isinstance(result.exception, ConfigError)
    assert "--all" in str(result.exception)


# ----------------------------------------------------------------------------- concurrency

_CHILD = textwrap.dedent(
    """
    import torch
    from safework.core.ops.builder import default_builder
    from safework.core.ops.prf import key_from_bytes, siphash24
    words = torch.arange(30, dtype=torch.int64).view(10, 3)
    out = siphash24(key_from_bytes(bytes(range(16))), words)
    print(default_builder().library_path("prf"))
    print(",".join(str(v) for v in out.tolist()))
    """
)


@pytest.mark.slow
def test_two_processes_build_one_cold_cache_safely(tmp_path: Path) -> None:
    """Two processes start a cold build at once, over a stale torch lock file left by a killed build."""
    stale = tmp_path / "ops" / build_tag(False) / "prf" / "lock"
    stale.parent.mkdir(parents=True)
    stale.touch()
    env = {**os.environ, "SAFEWORK_CACHE_DIR": str(tmp_path), "SAFEWORK_OPS": "native", "MAX_JOBS": "2"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs, logs = [], []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr.decode()
        outputs.append(stdout.decode().split())
        logs.append(stderr.decode())
    # Exactly one compiled; the other waited on the lock and then loaded the finished library.
    assert sum("safework: building native op 'prf'" in log for log in logs) == 1, logs
    assert sum("waiting for another process" in log for log in logs) == 1, logs
    assert outputs[0] == outputs[1]
    library = Path(outputs[0][0])
    assert library.is_file() and library.is_relative_to(tmp_path)
    assert not stale.exists()
    words = torch.arange(30, dtype=torch.int64).view(10, 3)
    from safework.core.ops.prf import key_from_bytes
    from safework.core.ops.prf_reference import siphash24_reference

    want = siphash24_reference(key_from_bytes(bytes(range(16))), words).tolist()
    assert outputs[0][1] == ",".join(str(v) for v in want)
