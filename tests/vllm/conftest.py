"""The vLLM tests run only in the vLLM venv (`make test-vllm`); elsewhere the whole folder is one skip."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

REASON = "vllm is not installed here: run `make test-vllm` (its own venv)"


def _has_vllm() -> bool:
    # A submodule, not `vllm` itself: with tests/ on sys.path (pytest's rootdir conftest), this folder is an
    # importable namespace package named `vllm` wherever the real one is missing.
    try:
        return importlib.util.find_spec("vllm.sampling_params") is not None
    except ImportError:
        return False


if not _has_vllm():

    class _SkippedModule(pytest.File):
        def collect(self) -> Iterable[pytest.Item]:
            pytest.skip(REASON)

    def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.File:
        """Each test module of this folder is one skip instead of an import error (its imports need vllm)."""
        return _SkippedModule.from_parent(parent, path=module_path)


def _vllm_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that runs vLLM on the CPU, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEWORK_WATERMARK_")}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VLLM_CPU_KVCACHE_SPACE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env.update(extra)
    return env


@pytest.fixture
def vllm_env() -> Callable[..., dict[str, str]]:
    """Build the environment of a vLLM subprocess: ``vllm_env(SAFEWORK_WATERMARK_SCHEME="credid", ...)``."""
    return _vllm_env


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The embedded SmolLM2 as a Hugging Face folder (what vLLM loads), converted by `safework model convert`.

    The conversion goes to its own cache root: the converted-folder marker names the source GGUF by path,
    and this venv's copy of the GGUF is not the main venv's, so sharing one root would make the two venvs
    reconvert over each other.
    """
    from safework.core.paths import cache_root

    env = _vllm_env(SAFEWORK_CACHE_DIR=str(cache_root() / "vllm-env"))
    safework = Path(sys.executable).with_name("safework")
    done = subprocess.run(
        [str(safework), "model", "convert", "--json"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = Path(json.loads(done.stdout)["cache_path"])
    assert (folder / "config.json").is_file()
    return folder
