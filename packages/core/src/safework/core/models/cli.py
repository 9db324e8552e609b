"""``safework model``: chat with, inspect and pre-convert causal LMs.

torch and transformers are imported inside the commands (through the loader) so that building the CLI,
and ``safework --help``, costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from safework.core.console import err_console, print_json, print_table
from safework.core.models.embedded import EMBEDDED_SPEC

if TYPE_CHECKING:
    import torch

    from safework.core.models.loader import LoadedModel

DTYPES = ("float32", "bfloat16")

model_option = click.option(
    "--model",
    "spec",
    default=EMBEDDED_SPEC,
    show_default=True,
    envvar="SAFEWORK_MODEL",
    help="'default' (embedded SmolLM2-135M-Instruct), a Hugging Face folder, or a .gguf file.",
)
dtype_option = click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    default="float32",
    show_default=True,
    help="Compute dtype (bfloat16 is faster on CPUs with bf16 support, float32 is exact).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")


def _torch_dtype(name: str) -> torch.dtype:
    import torch

    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype)
    return dtype


def _load(spec: str, dtype: str) -> LoadedModel:
    from safework.core.models.loader import load_causal_lm

    # The one slow case, a first GGUF conversion, shows its own progress bar.
    return load_causal_lm(spec, dtype=_torch_dtype(dtype))


def _describe(loaded: LoadedModel) -> dict[str, Any]:
    from safework.core.models.vocab import logits_width

    return {
        "name": loaded.name,
        "kind": loaded.kind,
        "source": str(loaded.source) if loaded.source else None,
        "architecture": type(loaded.model).__name__,
        "parameters": loaded.num_parameters,
        "vocab_size": len(loaded.tokenizer),
        "logits_width": logits_width(loaded.model),
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "chat_template": bool(getattr(loaded.tokenizer, "chat_template", None)),
        "cache_path": str(loaded.cache_path) if loaded.cache_path else None,
        "cache_hit": loaded.cache_hit,
    }


@click.group("model")
def model_group() -> None:
    """Causal LMs: the embedded default (SmolLM2-135M-Instruct, offline), local folders, GGUF files."""


@model_group.command("chat")
@click.argument("prompt")
@model_option
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0.0),
    default=0.0,
    show_default=True,
    help="0 decodes greedily (deterministic); above 0 samples.",
)
@click.option("--seed", type=int, default=None, help="Seed for sampling (ignored when greedy).")
@click.option("--system", default=None, help="System message (default: the chat template's own).")
@dtype_option
@json_option
def chat_command(
    prompt: str,
    spec: str,
    max_new_tokens: int,
    temperature: float,
    seed: int | None,
    system: str | None,
    dtype: str,
    as_json: bool,
) -> None:
    """Answer PROMPT with the model, using its chat template."""
    from safework.core.models.conversation import chat_result

    loaded = _load(spec, dtype)
    result = chat_result(
        loaded, prompt, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, system=system
    )
    if as_json:
        print_json(
            {
                "model": loaded.name,
                "source": str(loaded.source) if loaded.source else None,
                "prompt": prompt,
                "text": result.text,
                "prompt_tokens": result.prompt_tokens,
                "new_tokens": result.new_tokens,
                "seconds": round(result.seconds, 3),
                "tokens_per_second": round(result.tokens_per_second, 2),
                "cache_hit": loaded.cache_hit,
            }
        )
        return
    click.echo(result.text)
    err_console.print(
        f"[dim]{loaded.name}: {result.new_tokens} tokens in {result.seconds:.2f} s "
        f"({result.tokens_per_second:.1f} tok/s)[/]",
        highlight=False,
    )


@model_group.command("info")
@model_option
@dtype_option
@json_option
def info_command(spec: str, dtype: str, as_json: bool) -> None:
    """Show a model's name, source, size, vocabulary and cache location."""
    info = _describe(_load(spec, dtype))
    if as_json:
        print_json(info)
        return
    rows = [(key, "" if value is None else value) for key, value in info.items()]
    print_table(f"model {info['name']}", ["field", "value"], rows)


@model_group.command("convert")
@model_option
@click.option("--force", is_flag=True, help="Convert again even when the cached copy is up to date.")
@json_option
def convert_command(spec: str, force: bool, as_json: bool) -> None:
    """Convert a GGUF model (default: the embedded one) into the cache now, so later loads take seconds."""
    from safework.core.models.loader import convert_model

    done = convert_model(spec, force=force)
    if as_json:
        print_json(done)
        return
    if done["kind"] == "hf-dir":
        click.echo(f"{done['name']}: a Hugging Face folder loads in place; nothing to convert")
    elif done["converted"]:
        click.echo(f"{done['name']}: converted in {done['seconds']:.1f} s to {done['cache_path']}")
    else:
        click.echo(f"{done['name']}: already cached at {done['cache_path']}")
