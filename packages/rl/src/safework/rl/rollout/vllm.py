"""The ``vllm`` rollout backend: sampling in a vLLM engine that runs in its own venv, weights synced by file.

vLLM pins a transformers the trainer's venv cannot share, so the engine runs as a separate process
(:mod:`safework.rl.rollout.vllm_server`, started with ``.venv-vllm/bin/python``, which ``make test-vllm``
builds) and this client speaks to it over an authenticated local ``multiprocessing`` connection. Only token
ids cross: prompts are built here exactly as the ``hf`` backend builds them (same chat template, same
per-response ``sample_seed``, same stop set), so the two backends train on the same kind of rollouts and the
trainer rescores every sampled token itself before an update.

Weight sync here is the one-box CPU form: ``sync(model)`` writes the trainer's ``state_dict`` to a
safetensors file in the engine's private temp dir and the server loads it in place (vLLM's worker
``reload_weights``, which re-packs the CPU kernels' weights) and clears its prefix cache. On a GPU cluster
the same interface syncs over NCCL instead, as other RL trainers built on vLLM do: at start-up the engine's
workers and trainer rank 0 join one process group (a worker extension reached through
``collective_rpc``); ``sync`` then sends each tensor's name, dtype and shape over this control connection
and broadcasts the tensor itself from rank 0 into the workers, which feed it to the same in-place reload,
with no file and no host copy. Either way the sync ends with the parity probe: the engine's log-probs of a
fixed exchange against the trainer's, so a sync that silently missed stops the run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from multiprocessing.connection import Client, Connection
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from safework.core.errors import ConfigError
from safework.core.models.generation import stop_ids
from safework.core.models.loader import LoadedModel
from safework.rl.rollout.base import PromptItem, Rollout, RolloutSettings, SyncReport, encode_requests
from safework.rl.rollout.parity import PROBE_TOLERANCE, probe_logprobs, probe_rows

SERVER_SCRIPT = Path(__file__).with_name("vllm_server.py")
AUTHKEY_ENV = "SAFEWORK_VLLM_AUTHKEY"  # the server reads the connection secret from here
PYTHON_ENV = "SAFEWORK_VLLM_PYTHON"
SETUP_HINT = (
    "run `make test-vllm` once to build .venv-vllm (vLLM for CPU in its own venv), or set "
    f"{PYTHON_ENV} to a python that can import vllm"
)


def vllm_python(python: str | None = None) -> str:
    """The interpreter that runs the server: the argument, else $SAFEWORK_VLLM_PYTHON, else the repo's
    ``.venv-vllm`` found by walking up from this file (an editable install lives inside the repo)."""
    chosen = python or os.environ.get(PYTHON_ENV)
    if chosen:
        if not Path(chosen).is_file():
            raise ConfigError(f"the vLLM python {chosen!r} does not exist; {SETUP_HINT}")
        return chosen
    for folder in Path(__file__).resolve().parents:
        candidate = folder / ".venv-vllm" / "bin" / "python"
        if candidate.is_file():
            return str(candidate)  # not resolved: the venv's own path is what selects its site-packages
    raise ConfigError(f"rollout.backend = 'vllm' needs a python with vLLM and none was found; {SETUP_HINT}")


class _Server:
    """The server process and its resources; kept apart from the engine so a finalizer can close it."""

    def __init__(self, workdir: Path, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.workdir, self.process, self.log = workdir, process, log
        self.connection: Connection | None = None

    def log_tail(self, chars: int = 3000) -> str:
        self.log.flush()
        try:
            return (self.workdir / "server.log").read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def close(self) -> None:
        """Ask the server to exit, then terminate and kill it if it does not; remove the temp dir."""
        if self.connection is not None:
            try:
                self.connection.send({"op": "close"})
                if self.connection.poll(10):
                    self.connection.recv()
            except (OSError, EOFError):
                pass
            self.connection.close()
            self.connection = None
        for stop, wait in ((None, 30.0), (self.process.terminate, 10.0), (self.process.kill, 10.0)):
            if self.process.poll() is not None:
                break
            if stop is not None:
                stop()
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        self.log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class VLLMRolloutEngine:
    """A :class:`~safework.rl.rollout.base.RolloutEngine` backed by a vLLM server process."""

    name = "vllm"

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        python: str | None = None,
        max_model_len: int = 1024,
        dtype: str = "float32",
        startup_timeout: float = 600,
    ) -> None:
        interpreter = vllm_python(python)
        if max_model_len < 2:
            raise ConfigError(f"max_model_len must be >= 2 (got {max_model_len})")
        self.loaded = loaded
        # vLLM refuses a length beyond the model's positions; the model could not use one anyway.
        positions = getattr(getattr(loaded.model, "config", None), "max_position_embeddings", None)
        self.max_model_len = min(max_model_len, positions) if isinstance(positions, int) else max_model_len
        self.last_logprobs: list[list[float]] = []  # the engine's log-probs of the last generate's tokens
        start = time.perf_counter()
        workdir = Path(tempfile.mkdtemp(prefix="safework-vllm-"))
        try:
            loaded.model.save_pretrained(workdir / "model")
            loaded.tokenizer.save_pretrained(workdir / "model")
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        authkey = secrets.token_bytes(32)
        address = workdir / "address"
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB: vLLM's CPU default (4) is too much for tests
        env.pop("PYTHONPATH", None)  # the trainer venv's paths must not shadow the vLLM venv's packages
        log = (workdir / "server.log").open("wb")
        command = [interpreter, str(SERVER_SCRIPT), "--model", str(workdir / "model"), "--dtype", dtype]
        command += ["--max-model-len", str(self.max_model_len), "--address-file", str(address)]
        env[AUTHKEY_ENV] = authkey.hex()  # the environment, not argv: `ps` shows argv to every local user
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self._server = _Server(workdir, process, log)
        self._finalizer = weakref.finalize(self, self._server.close)  # also runs at interpreter exit
        try:
            host, port = self._wait_for_address(address, startup_timeout)
            self._server.connection = Client((host, port), authkey=authkey)
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.perf_counter() - start

    def _wait_for_address(self, address: Path, timeout: float) -> tuple[str, int]:
        deadline = time.monotonic() + timeout
        while not address.is_file():
            code = self._server.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"the vLLM server exited ({code}) before it was ready; its log ends:\n"
                    f"{self._server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the vLLM server was not ready after {timeout:g}s (raise startup_timeout on a slow "
                    f"machine); its log ends:\n{self._server.log_tail()}"
                )
            time.sleep(0.2)
        host, port = address.read_text(encoding="utf-8").split()[:2]
        return host, int(port)

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request/response round; a server-side failure is raised here with its message."""
        connection = self._server.connection
        if connection is None:
            raise RuntimeError("the vLLM rollout engine is closed")
        try:
            connection.send(request)
            reply: dict[str, Any] = connection.recv()
        except (OSError, EOFError) as exc:
            raise RuntimeError(
                f"lost the vLLM server during {request['op']!r} ({exc}); its log ends:\n"
                f"{self._server.log_tail()}"
            ) from exc
        if "error" in reply:
            raise RuntimeError(f"the vLLM server failed {request['op']!r}: {reply['error']}")
        return reply

    def generate(
        self, items: Sequence[PromptItem], settings: RolloutSettings, seed: int, step: int
    ) -> list[Rollout]:
        if not items:
            raise ConfigError("no prompts to roll out; the stage's data yielded none")
        tokenizer = self.loaded.tokenizer
        encoded, seeds = encode_requests(items, settings, tokenizer, seed, step)
        longest = max(len(ids) for ids in encoded.values())
        if longest + settings.max_new_tokens > self.max_model_len:
            # vLLM would cut such a response at max_model_len, earlier than the hf backend would.
            raise ConfigError(
                f"a prompt of {longest} tokens plus rollout.max_new_tokens = {settings.max_new_tokens} "
                f"exceeds the vLLM engine's max_model_len = {self.max_model_len}; raise max_model_len"
            )
        samples = settings.samples
        reply = self._call(
            {
                "op": "generate",
                "prompts": [list(encoded[item.prompt]) for item in items for _ in range(samples)],
                "seeds": seeds,
                "max_tokens": settings.max_new_tokens,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "stop_token_ids": sorted(stop_ids(self.loaded)),
            }
        )
        rollouts = []
        for index, out in enumerate(reply["outputs"]):
            group, sample = divmod(index, samples)
            ids = tuple(int(t) for t in out["token_ids"])
            body = ids[:-1] if out["finish_reason"] == "stop" else ids
            rollouts.append(
                Rollout(
                    group=group,
                    sample=sample,
                    item=items[group],
                    text=str(tokenizer.decode(list(body), skip_special_tokens=True)),
                    prompt_ids=encoded[items[group].prompt],
                    response_ids=ids,
                    finish_reason=out["finish_reason"],
                )
            )
        self.last_logprobs = [[float(x) for x in out["logprobs"]] for out in reply["outputs"]]
        return rollouts

    def sync(self, model: Any) -> SyncReport:
        """Load ``model``'s weights into the engine, then compare the probe's log-probs on both sides."""
        start = time.perf_counter()
        self._load(self._write_weights(model))
        return self._parity(model, start)

    def _write_weights(self, model: Any) -> Path:
        """The state dict as safetensors. A tied weight (``lm_head`` = ``embed_tokens``) is written once:
        safetensors refuses shared storage, and vLLM ties the pair itself from the config."""
        from safetensors.torch import save_file

        tensors, seen = {}, set()
        for name, tensor in model.state_dict().items():
            key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
            if key not in seen:
                seen.add(key)
                tensors[name] = tensor.detach().to("cpu").contiguous()
        path = self._server.workdir / "weights.safetensors"
        save_file(tensors, str(path))
        return path

    def _load(self, path: Path) -> float:
        return float(self._call({"op": "load_weights", "path": str(path)})["seconds"])

    def _parity(self, model: Any, start: float) -> SyncReport:
        tokenizer = self.loaded.tokenizer
        rows = probe_rows(tokenizer)
        engine = self._call({"op": "score", "rows": [[list(c), list(t)] for c, t in rows]})["logprobs"]
        theirs = [float(x) for row in engine for x in row]
        ours = probe_logprobs(model, tokenizer)
        if len(theirs) != len(ours):
            raise RuntimeError(f"the vLLM server scored {len(theirs)} probe tokens, the trainer {len(ours)}")
        diff = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
        return SyncReport(diff, PROBE_TOLERANCE, time.perf_counter() - start)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> VLLMRolloutEngine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
