"""SipHash-2-4 PRF: official vectors, native == reference bit for bit, validation, SAFEWORK_OPS modes."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from safework.core.errors import ConfigError, NativeOpError
from safework.core.ops.builder import OpBuilder, default_builder, use_builder
from safework.core.ops.dispatch import NativeOpFallbackWarning
from safework.core.ops.prf import OpInputError, key_from_bytes, siphash24, siphash24_suffix
from safework.core.ops.prf_reference import (
    siphash24_bytes,
    siphash24_reference,
    siphash24_suffix_reference,
    siphash24_words_scalar,
    to_int64,
)
from safework.core.ops.sources import find_source_root

# Official SipHash-2-4 test vectors (veorq/SipHash, vectors.h, vectors_sip64): key = bytes 00..0f,
# message = bytes 00..(len-1); entry `len` is the 8 output bytes in order (uint64 little-endian).
SIPHASH24_VECTORS = [
    "310e0edd47db6f72",
    "fd67dc93c539f874",
    "5a4fa9d909806c0d",
    "2d7efbd796666785",
    "b7877127e09427cf",
    "8da699cd64557618",
    "cee3fe586e46c9cb",
    "37d1018bf50002ab",
    "6224939a79f5f593",
    "b0e4a90bdf82009e",
    "f3b9dd94c5bb5d7a",
    "a7ad6b22462fb3f4",
    "fbe50e86bc8f1e75",
    "903d84c02756ea14",
    "eef27a8e90ca23f7",
    "e545be4961ca29a1",
    "db9bc2577fcc2a3f",
    "9447be2cf5e99a69",
    "9cd38d96f0b3c14b",
    "bd6179a71dc96dbb",
    "98eea21af25cd6be",
    "c7673b2eb0cbf2d0",
    "883ea3e395675393",
    "c8ce5ccd8c030ca8",
    "94af49f6c650adb8",
    "eab8858ade92e1bc",
    "f315bb5bb835d817",
    "adcf6b0763612e2f",
    "a5c91da7acaa4dde",
    "716595876650a2a6",
    "28ef495c53a387ad",
    "42c341d8fa92d832",
    "ce7cf2722f512771",
    "e37859f94623f3a7",
    "381205bb1ab0e012",
    "ae97a10fd434e015",
    "b4a31508beff4d31",
    "81396229f0907902",
    "4d0cf49ee5d4dcca",
    "5c73336a76d8bf9a",
    "d0a704536ba93e0e",
    "925958fcd6420cad",
    "a915c29bc8067318",
    "952b79f3bc0aa6d4",
    "f21df2e41d4535f9",
    "87577519048f53a9",
    "10a56cf5dfcd9adb",
    "eb75095ccd986cd0",
    "51a9cb9ecba312e6",
    "96afadfc2ce666c7",
    "72fe52975a4364ee",
    "5a1645b276d592a1",
    "b274cb8ebf87870a",
    "6f9bb4203de7b381",
    "eaecb2a30b22a87f",
    "9924a43cc1315724",
    "bd838d3aafbf8db7",
    "0b1a2a3265d51aea",
    "135079a3231ce660",
    "932b2846e4d70666",
    "e1915f5cb1eca46c",
    "f325965ca16d629f",
    "575ff28e60381be5",
    "724506eb4c328a95",
]
OFFICIAL_KEY = bytes(range(16))


def expected(length: int) -> int:
    return int.from_bytes(bytes.fromhex(SIPHASH24_VECTORS[length]), "little")


def official_rows(lengths: list[int]) -> torch.Tensor:
    """One row per whole-word length: the words of message bytes 00..(len-1)."""
    width = max(lengths) // 8
    rows = []
    for length in lengths:
        data = bytes(range(length))
        rows.append([to_int64(int.from_bytes(data[i : i + 8], "little")) for i in range(0, length, 8)])
    assert all(len(r) == len(rows[0]) for r in rows) or width == 0
    return torch.tensor(rows, dtype=torch.int64)


WHOLE_WORD_LENGTHS = [0, 8, 16, 24, 32, 40, 48, 56]


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "native")


def random_words(rows: int, width: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-(2**63), 2**63 - 1, (rows, width), dtype=torch.int64, generator=gen)


# ------------------------------------------------------------------------------------------ golden


def test_vector_table_is_complete() -> None:
    assert len(SIPHASH24_VECTORS) == 64
    assert expected(0) == 0x726FDB47DD0E0E31  # the paper's first vector


@pytest.mark.parametrize("length", range(64))
def test_scalar_reference_matches_official_vectors(length: int) -> None:
    assert siphash24_bytes(OFFICIAL_KEY, bytes(range(length))) == expected(length)


@pytest.mark.parametrize("length", WHOLE_WORD_LENGTHS)
def test_torch_reference_and_native_match_official_vectors(length: int, native: None) -> None:
    key = key_from_bytes(OFFICIAL_KEY)
    words = official_rows([length])
    want = torch.tensor([to_int64(expected(length))])
    assert torch.equal(siphash24_reference(key, words), want)
    assert torch.equal(siphash24(key, words), want)


def test_key_layout_is_little_endian() -> None:
    key = key_from_bytes(OFFICIAL_KEY)
    assert key.tolist() == [0x0706050403020100, 0x0F0E0D0C0B0A0908]


# ------------------------------------------------------------------------- reference == scalar


@pytest.mark.parametrize("width", [0, 1, 2, 3, 4, 7, 33])
def test_torch_reference_equals_scalar(width: int) -> None:
    key = key_from_bytes(bytes(range(100, 116)))
    words = random_words(64, width, seed=width)
    # Extremes: the sign bit and all-ones words exercise the emulated logical shifts.
    if width:
        words[0].fill_(-1)
        words[1].fill_(-(2**63))
    got = siphash24_reference(key, words).tolist()
    k0, k1 = key.tolist()
    assert got == [siphash24_words_scalar(k0, k1, row) for row in words.tolist()]


def test_suffix_reference_equals_hashing_concatenated_rows() -> None:
    key = key_from_bytes(bytes(range(16, 32)))
    prefix = random_words(5, 3, seed=1)
    n = 777
    rows = torch.cat([prefix.repeat_interleave(n, 0), torch.arange(n).repeat(5).unsqueeze(1)], dim=1)
    want = siphash24_reference(key, rows).view(5, n)
    assert torch.equal(siphash24_suffix_reference(key, prefix, n), want)
    k0, k1 = key.tolist()
    assert int(want[2, 500]) == siphash24_words_scalar(k0, k1, [*prefix[2].tolist(), 500])


# ---------------------------------------------------------------------- native == reference


def test_native_equals_reference_on_two_million_rows(native: None) -> None:
    key = key_from_bytes(bytes.fromhex("0123456789abcdeffedcba9876543210"))
    words = random_words(1 << 21, 3, seed=7)
    got = siphash24(key, words)
    assert got.shape == (1 << 21,) and got.dtype == torch.int64
    assert torch.equal(got, siphash24_reference(key, words))
    # A PRF output should look uniform: each of the 64 bits set about half the time.
    sample = got[: 1 << 16]
    bits = torch.stack([(sample >> b) & 1 for b in range(64)]).float().mean(dim=1)
    assert bool(((bits - 0.5).abs() < 0.01).all())  # 0.01 is five standard deviations at 2^16 samples


@pytest.mark.parametrize("width", [0, 1, 5, 31, 32])
def test_native_equals_reference_other_widths(width: int, native: None) -> None:
    key = key_from_bytes(bytes(range(1, 17)))
    words = random_words(70_001, width, seed=width + 11)
    assert torch.equal(siphash24(key, words), siphash24_reference(key, words))


def test_native_suffix_equals_reference_over_a_vocabulary(native: None) -> None:
    key = key_from_bytes(bytes.fromhex("00112233445566778899aabbccddeeff"))
    prefix = random_words(8, 3, seed=3)
    got = siphash24_suffix(key, prefix, 49152)
    assert got.shape == (8, 49152)
    assert torch.equal(got, siphash24_suffix_reference(key, prefix, 49152))
    # Same contract as hashing the rows [prefix..., j] directly.
    j = torch.tensor([0, 1, 4095, 4096, 49151])
    rows = torch.cat([prefix[6].expand(len(j), 3), j.unsqueeze(1)], dim=1).contiguous()
    assert torch.equal(got[6, j], siphash24(key, rows))


def test_native_handles_empty_shapes(native: None) -> None:
    key = key_from_bytes(bytes(16))
    assert siphash24(key, torch.empty(0, 3, dtype=torch.int64)).shape == (0,)
    assert siphash24_suffix(key, torch.empty(0, 2, dtype=torch.int64), 10).shape == (0, 10)
    assert siphash24_suffix(key, torch.zeros(3, 2, dtype=torch.int64), 0).shape == (3, 0)
    empty_rows = siphash24(key, torch.empty(4, 0, dtype=torch.int64))
    assert torch.equal(empty_rows, siphash24_reference(key, torch.empty(4, 0, dtype=torch.int64)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu(native: None) -> None:
    key = key_from_bytes(bytes(range(16)))
    words = random_words(1 << 20, 3, seed=5)
    assert torch.equal(siphash24(key.cuda(), words.cuda()).cpu(), siphash24(key, words))
    prefix = random_words(8, 3, seed=6)
    assert torch.equal(
        siphash24_suffix(key.cuda(), prefix.cuda(), 49152).cpu(), siphash24_suffix(key, prefix, 49152)
    )


# --------------------------------------------------------------------------------- validation

KEY = key_from_bytes(bytes(16))
GOOD = torch.zeros(4, 3, dtype=torch.int64)


@pytest.mark.parametrize(
    ("key", "words", "message"),
    [
        (KEY, GOOD.to(torch.int32), "words must be int64"),
        (KEY, GOOD[:, 0], "must be 2-D"),
        (KEY, GOOD.t(), "contiguous"),
        (KEY.to(torch.int32), GOOD, r"shape \(2,\)"),
        (torch.zeros(3, dtype=torch.int64), GOOD, r"shape \(2,\)"),
        (KEY.to("meta"), GOOD, "move both to one device"),
        ([1, 2], GOOD, "must be torch tensors"),
    ],
)
def test_siphash24_rejects_bad_input(key: object, words: torch.Tensor, message: str) -> None:
    with pytest.raises(OpInputError, match=message):
        siphash24(key, words)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [-1, 2.0, True])
def test_suffix_rejects_bad_n(n: object) -> None:
    with pytest.raises(OpInputError, match="non-negative int"):
        siphash24_suffix(KEY, GOOD, n)  # type: ignore[arg-type]


def test_input_errors_are_config_and_value_errors() -> None:
    with pytest.raises(ConfigError):
        siphash24(KEY, GOOD.float())
    with pytest.raises(ValueError, match="exactly 16 bytes"):
        key_from_bytes(b"short")


# ------------------------------------------------------------------------------ SAFEWORK_OPS


@pytest.fixture(scope="module")
def broken_builder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpBuilder]:
    """A builder over a copy of csrc/ with a real syntax error: its compile genuinely fails."""
    root = tmp_path_factory.mktemp("broken")
    source = root / "csrc"
    shutil.copytree(find_source_root(), source)
    bindings = source / "core" / "bindings.cpp"
    bindings.write_text("int this is not C++ ;\n" + bindings.read_text())
    yield OpBuilder(source_root=source, build_root=root / "build", with_cuda=False)


def test_reference_mode_never_builds(monkeypatch: pytest.MonkeyPatch, broken_builder: OpBuilder) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "reference")
    fresh = OpBuilder(source_root=broken_builder.source_root, build_root=broken_builder.build_root / "unused")
    words = random_words(100, 3, seed=9)
    with use_builder(fresh), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = siphash24(KEY, words)
    assert torch.equal(got, siphash24_reference(KEY, words))
    assert fresh.failure("prf") is None and not fresh.is_built("prf")


def test_native_mode_raises_with_compiler_output(
    monkeypatch: pytest.MonkeyPatch, broken_builder: OpBuilder
) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "native")
    with use_builder(broken_builder), pytest.raises(NativeOpError) as info:
        siphash24(KEY, GOOD)
    text = str(info.value)
    assert "bindings.cpp" in text and "error" in text  # the compiler's own words
    assert "SAFEWORK_OPS=reference" in text and "build output" in text


def test_auto_mode_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, broken_builder: OpBuilder
) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "auto")
    words = random_words(1000, 3, seed=10)
    with use_builder(broken_builder), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = siphash24(KEY, words)
        second = siphash24_suffix(KEY, words[:2], 50)
    fallbacks = [w for w in caught if issubclass(w.category, NativeOpFallbackWarning)]
    assert len(fallbacks) == 1, [str(w.message) for w in caught]
    assert "could not be built" in str(fallbacks[0].message)
    assert torch.equal(first, siphash24_reference(KEY, words))
    assert torch.equal(second, siphash24_suffix_reference(KEY, words[:2], 50))
    assert broken_builder.failure("prf") is not None


def test_unsupported_device_falls_back_in_auto_and_fails_in_native(monkeypatch: pytest.MonkeyPatch) -> None:
    key, words = KEY.to("meta"), GOOD[:, :1].contiguous().to("meta")
    monkeypatch.setenv("SAFEWORK_OPS", "native")
    with pytest.raises(NativeOpError, match="no kernel for device meta"):
        siphash24(key, words)
    monkeypatch.setenv("SAFEWORK_OPS", "auto")
    with use_builder(OpBuilder()), pytest.warns(NativeOpFallbackWarning, match="device meta"):
        out = siphash24(key, words)
    assert out.shape == (4,) and out.device.type == "meta"


def test_unknown_mode_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEWORK_OPS", "fast")
    with pytest.raises(ConfigError, match="SAFEWORK_OPS='fast' is not a valid value"):
        siphash24(KEY, GOOD)


def test_auto_mode_uses_the_native_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFEWORK_OPS", raising=False)
    siphash24(KEY, GOOD)
    assert default_builder().is_built("prf")


def test_source_path_exists() -> None:
    assert (Path(find_source_root()) / "core" / "siphash.h").is_file()
