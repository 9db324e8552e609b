"""The ``safework watermark`` command contract: keygen, embed and extract through the real CLI entry point,
and every bad input named in the issue exits non-zero with a message that says what to fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from safework.core.cli import main


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, tiny: Any) -> Path:
    folder = tmp_path_factory.mktemp("tiny-model")
    tiny.model.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    code, out, _ = _cli(capsys, "watermark", "keygen", "--out", str(tmp_path / "key.json"), "--json")
    assert code == 0 and json.loads(out)["key_file"].endswith("key.json")
    return tmp_path / "key.json"


def test_embed_then_extract_round_trip(
    tmp_path: Path, key_file: Path, tiny_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Once upon a time"}\n{"text": "The river flows"}\n')
    common = [
        "--scheme",
        "mpac",
        "--key-file",
        str(key_file),
        "--bits",
        "8",
        "--model",
        str(tiny_dir),
        "--delta",
        "6",
    ]
    code, out, err = _cli(
        capsys,
        "watermark",
        "embed",
        *common,
        "--payload",
        "a5",
        "--prompts-jsonl",
        str(prompts),
        "--max-new-tokens",
        "60",
        "--min-new-tokens",
        "60",
        "--json",
    )
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["payload"] for r in records] == ["a5", "a5"] and all(r["text"] for r in records)
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in records))
    code, out, err = _cli(
        capsys,
        "watermark",
        "extract",
        *common,
        "--texts-jsonl",
        str(texts),
        "--json",
        "--html",
        str(tmp_path / "views"),
    )
    assert code == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    for result in results:
        assert result["payload"] == "a5" and result["p_value"] < 1e-3
        assert {"z", "bit_confidence"} <= set(result) and len(result["bit_confidence"]) == 8
        assert "<span" in Path(result["html"]).read_text()


def test_bad_inputs_exit_non_zero_with_clear_messages(
    tmp_path: Path, key_file: Path, tiny_dir: Path, tiny: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["watermark", "extract", "--key-file", str(key_file), "--bits", "16", "--model", str(tiny_dir)]
    cases: list[tuple[list[str], str]] = [
        ([*base, "--scheme", "credid", "--text", "  "], "--text is empty"),
        ([*base, "--scheme", "credid", "--text", "Too short."], "warm-up"),
        ([*base, "--scheme", "nope", "--text", "x " * 50], "unknown watermark scheme 'nope'"),
    ]
    short_key = tmp_path / "short.json"
    short_key.write_text('{"format": "safework-watermark-key", "version": 1, "key": "0011"}')
    cases.append(
        (
            [
                "watermark",
                "extract",
                "--scheme",
                "kgw",
                "--bits",
                "0",
                "--key-file",
                str(short_key),
                "--model",
                str(tiny_dir),
                "--text",
                "x " * 50,
            ],
            "exactly 16 bytes",
        )
    )
    empty_file = tmp_path / "empty.jsonl"
    empty_file.write_text('{"text": ""}\n')
    cases.append(([*base, "--scheme", "credid", "--texts-jsonl", str(empty_file)], "line 1"))
    for args, message in cases:
        code, _, err = _cli(capsys, *args)
        assert code != 0 and message in " ".join(err.split()), (args, err)


def test_vocabulary_mismatch_is_refused(
    tmp_path: Path, key_file: Path, tiny: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from safework.core.models import tiny_causal_lm

    folder = tmp_path / "small-vocab"
    tiny_causal_lm(vocab_size=1000).save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    code, _, err = _cli(
        capsys,
        "watermark",
        "extract",
        "--scheme",
        "kgw",
        "--bits",
        "0",
        "--key-file",
        str(key_file),
        "--model",
        str(folder),
        "--text",
        "hello " * 40,
    )
    assert code != 0 and "logits for only 1000 ids" in " ".join(err.split())


def test_keygen_refuses_to_overwrite(key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "watermark", "keygen", "--out", str(key_file))
    assert code != 0 and "--force" in err


def test_schemes_and_attacks_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "watermark", "schemes", "--json")
    assert code == 0 and {r["name"] for r in json.loads(out)} == {"credid", "kgw", "mpac", "ctwl-hash"}
    code, out, _ = _cli(capsys, "watermark", "attacks", "--json")
    names = {r["name"] for r in json.loads(out)}
    assert names == {"substitution", "deletion", "insertion", "copy-paste", "truncation"}
