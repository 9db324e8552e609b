"""Compiling ``csrc/`` into torch extensions, once per machine, shared by every process.

Why a builder of our own around ``torch.utils.cpp_extension.load``: the build folder must be keyed by torch
version and CPU/CUDA flavour (a module built against another torch crashes at import), it must live in the
safework cache so ``safework ops build`` ahead of time makes every later just-in-time load instant, and a
failed build has to become a :class:`NativeOpError` that says what the compiler said and what to do.

Concurrency: torch's ``load`` already serialises builders of one folder with a lock *file* (``FileBaton``),
but a process killed mid-build leaves that file behind and every later load then waits forever. We hold an
``fcntl.flock`` on ``.safework-build.lock`` around the whole load instead; the kernel drops it when its owner
dies, and under it any torch ``lock`` file can only be stale, so we remove it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from safework.core.errors import ConfigError, NativeOpError
from safework.core.ops.sources import find_source_root


@dataclass(frozen=True)
class OpSpec:
    """One native op: the sources (relative to ``csrc/``) of the extension module that implements it."""

    name: str
    description: str
    cpp_sources: tuple[str, ...]
    cuda_sources: tuple[str, ...] = ()


OPS: dict[str, OpSpec] = {
    "prf": OpSpec(
        name="prf",
        description="SipHash-2-4 keyed PRF (watermark green lists): siphash24, siphash24_suffix",
        cpp_sources=("core/prf_cpu.cpp", "core/bindings.cpp"),
        cuda_sources=("core/prf_cuda.cu",),
    ),
    "fused_score": OpSpec(
        name="fused_score",
        description="fused verifier scoring: logits -> label probabilities -> mapped scores -> reward -> "
        "group advantage",
        cpp_sources=("verifiers/fused_score_cpu.cpp", "verifiers/bindings.cpp"),
        cuda_sources=("verifiers/fused_score_cuda.cu",),
    ),
    "credid": OpSpec(
        name="credid",
        description="CredID watermark green lists: green_mask, green_bias, green_table, candidate_counts",
        cpp_sources=("watermark/credid_cpu.cpp", "watermark/bindings.cpp"),
        cuda_sources=("watermark/credid_cuda.cu",),
    ),
}

CXX_FLAGS = ("-O3", "-fopenmp", "-Wfatal-errors")
CUDA_FLAGS = ("-O3", "-DSAFEWORK_WITH_CUDA")
LD_FLAGS = ("-fopenmp",)
TAIL_LINES = 40


def op_spec(name: str) -> OpSpec:
    """The spec of op ``name``, or a ConfigError listing the known ops."""
    try:
        return OPS[name]
    except KeyError:
        raise ConfigError(f"unknown native op {name!r}; known ops: {', '.join(sorted(OPS))}") from None


def cuda_build_available() -> bool:
    """Whether builds here include the CUDA sources: torch has CUDA, a GPU is visible and nvcc is found."""
    if torch.version.cuda is None or not torch.cuda.is_available():
        return False
    from torch.utils.cpp_extension import CUDA_HOME

    return CUDA_HOME is not None


def compiler_available() -> bool:
    """Whether a C++ compiler and ninja are on this machine (a build can at least be attempted)."""
    from torch.utils.cpp_extension import is_ninja_available

    return shutil.which(os.environ.get("CXX", "c++")) is not None and is_ninja_available()


def build_tag(with_cuda: bool) -> str:
    """Folder name that keeps builds for different torch versions / flavours / Pythons apart."""
    flavour = f"cu{torch.version.cuda}" if with_cuda and torch.version.cuda else "cpu"
    raw = f"torch{torch.__version__}-{flavour}-py{sys.version_info.major}{sys.version_info.minor}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)


def _ops_cache(tag: str) -> Path:
    try:
        from safework.core.paths import cache_dir
    except ImportError:  # minimal environments (GPU check script) without platformdirs
        base = os.environ.get("SAFEWORK_CACHE_DIR") or str(Path.home() / ".cache" / "safework")
        path = Path(base).expanduser() / "ops" / tag
        path.mkdir(parents=True, exist_ok=True)
        return path
    return cache_dir("ops", tag)


@contextlib.contextmanager
def _notice(text: str) -> Iterator[None]:
    """A spinner while a build runs (rich on a terminal; one stderr line otherwise)."""
    try:
        from safework.core.console import err_console, progress
    except ImportError:
        sys.stderr.write(f"safework: {text}\n")
        yield
        return
    if not err_console.is_terminal:
        sys.stderr.write(f"safework: {text}\n")
        yield
        return
    with progress() as bar:
        bar.add_task(text, total=None)
        yield


@contextlib.contextmanager
def _build_lock(build_dir: Path, name: str) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on torch's own lock file
        yield
        return
    with open(build_dir / ".safework-build.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with _notice(f"waiting for another process that is building native op {name!r}"):
                fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            (build_dir / "lock").unlink(missing_ok=True)  # stale torch FileBaton (see module docstring)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _failure(spec: OpSpec, build_dir: Path, exc: BaseException) -> NativeOpError:
    lines = str(exc).strip().splitlines()
    tail = "\n".join(lines[-TAIL_LINES:])
    if not compiler_available():
        fix = "install a C++ compiler with OpenMP (e.g. `apt install g++`) and ninja (`pip install ninja`)"
    else:
        fix = f"fix the error above, then run `safework ops build {spec.name}`"
    return NativeOpError(
        f"building native op {spec.name!r} failed (build folder {build_dir}).\n"
        f"--- build output (last {TAIL_LINES} lines) ---\n{tail}\n---\n"
        f"Fix: {fix}; or set SAFEWORK_OPS=reference to use the pure-torch reference implementation."
    )


def first_error_line(error: NativeOpError) -> str:
    """The most telling line of a build failure (for one-line warnings)."""
    for line in str(error).splitlines():
        if "error" in line.lower() and "build output" not in line and not line.startswith("building"):
            return line.strip()
    return str(error).splitlines()[0]


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` did: where the library is, whether it has CUDA, how long it took, and whether a
    library was already in the cache (a load rather than a compile)."""

    name: str
    library: Path
    with_cuda: bool
    seconds: float
    was_cached: bool


class OpBuilder:
    """Builds and loads the native ops; remembers loaded modules and failures for the process lifetime.

    ``source_root`` and ``build_root`` are injectable so tests can build a broken tree (a real failed
    compile) or an isolated cache; by default they are the discovered ``csrc/`` and the safework cache.
    """

    def __init__(
        self,
        source_root: Path | None = None,
        build_root: Path | None = None,
        with_cuda: bool | None = None,
        verbose: bool = False,
    ) -> None:
        self._source_root = source_root
        self._build_root = build_root
        self.with_cuda = cuda_build_available() if with_cuda is None else with_cuda
        self.verbose = verbose
        self._modules: dict[str, ModuleType] = {}
        self._failures: dict[str, NativeOpError] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    @property
    def source_root(self) -> Path:
        if self._source_root is None:
            self._source_root = find_source_root()
        return self._source_root

    @property
    def build_root(self) -> Path:
        if self._build_root is None:
            self._build_root = _ops_cache(build_tag(self.with_cuda))
        return self._build_root

    def build_dir(self, name: str) -> Path:
        return self.build_root / op_spec(name).name

    def module_name(self, name: str) -> str:
        # Unique per build folder: torch's in-process versioner renames a module whose inputs changed, so
        # two builders (e.g. a test's isolated cache) sharing one name would force needless rebuilds.
        digest = hashlib.sha1(str(self.build_dir(name)).encode()).hexdigest()[:8]
        return f"safework_{name}_{digest}"

    def library_path(self, name: str) -> Path:
        suffix = ".pyd" if sys.platform == "win32" else ".so"
        return self.build_dir(name) / f"{self.module_name(name)}{suffix}"

    def is_built(self, name: str) -> bool:
        return name in self._modules or self.library_path(name).is_file()

    def failure(self, name: str) -> NativeOpError | None:
        """The remembered build failure of ``name`` in this process, if any."""
        return self._failures.get(name)

    def warn_once(self, key: str) -> bool:
        """True the first time ``key`` is seen (so a fallback warning is given once per builder)."""
        with self._lock:
            if key in self._warned:
                return False
            self._warned.add(key)
            return True

    def load(self, name: str) -> ModuleType:
        """The extension module of op ``name``, building it on first use. Raises NativeOpError on failure.

        A failure is remembered: later calls re-raise it without recompiling (use :meth:`build` to retry).
        """
        with self._lock:
            if name in self._modules:
                return self._modules[name]
            if name in self._failures:
                raise self._failures[name]
            try:
                module = self._compile(op_spec(name))
            except NativeOpError as exc:
                self._failures[name] = exc
                raise
            self._modules[name] = module
            return module

    def build(self, name: str) -> BuildResult:
        """Build (or confirm up to date) op ``name`` now, retrying a remembered failure."""
        with self._lock:
            self._failures.pop(name, None)
        was_cached = self.is_built(name)
        start = time.perf_counter()
        module = self.load(name)
        return BuildResult(
            name=name,
            library=self.library_path(name),
            with_cuda=bool(module.with_cuda()),
            seconds=time.perf_counter() - start,
            was_cached=was_cached,
        )

    def _compile(self, spec: OpSpec) -> ModuleType:
        root = self.source_root
        sources = [root / s for s in spec.cpp_sources]
        if self.with_cuda:
            sources += [root / s for s in spec.cuda_sources]
        missing = [str(s) for s in sources if not s.is_file()]
        if missing:
            raise NativeOpError(
                f"native op {spec.name!r}: source files missing: {', '.join(missing)}. Reinstall "
                "safework-core (its wheel ships csrc/), or set SAFEWORK_OPS=reference."
            )
        build_dir = self.build_dir(spec.name)
        build_dir.mkdir(parents=True, exist_ok=True)
        cflags = list(CXX_FLAGS) + (["-DSAFEWORK_WITH_CUDA"] if self.with_cuda else [])
        flavour = "C++/OpenMP + CUDA" if self.with_cuda else "C++/OpenMP"
        try:
            from torch.utils.cpp_extension import load

            with _build_lock(build_dir, spec.name):
                fresh = not self.library_path(spec.name).is_file()
                notice = (
                    f"building native op {spec.name!r} ({flavour}; first use only, cached in {build_dir})"
                    if fresh
                    else f"loading native op {spec.name!r}"
                )
                with _notice(notice) if fresh else contextlib.nullcontext():
                    module = load(
                        name=self.module_name(spec.name),
                        sources=[str(s) for s in sources],
                        extra_cflags=cflags,
                        extra_cuda_cflags=list(CUDA_FLAGS) if self.with_cuda else None,
                        extra_ldflags=list(LD_FLAGS),
                        extra_include_paths=[str(root)],
                        build_directory=str(build_dir),
                        with_cuda=self.with_cuda,
                        verbose=self.verbose,
                    )
        except NativeOpError:
            raise
        except Exception as exc:  # torch raises RuntimeError/OSError/ImportError with the compiler output
            raise _failure(spec, build_dir, exc) from exc
        if not isinstance(module, ModuleType):
            raise NativeOpError(f"torch returned {module!r} instead of a module for op {spec.name!r}")
        return module


_default: OpBuilder | None = None
_default_lock = threading.Lock()


def default_builder() -> OpBuilder:
    """The process-wide builder the op dispatchers use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = OpBuilder()
        return _default


@contextlib.contextmanager
def use_builder(builder: OpBuilder) -> Iterator[OpBuilder]:
    """Make ``builder`` the process-wide one for the duration (tests, custom source trees)."""
    global _default
    with _default_lock:
        previous, _default = _default, builder
    try:
        yield builder
    finally:
        with _default_lock:
            _default = previous
