"""Key files and payload layout: the parts of a watermark a user handles directly."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from safework.core.types import WatermarkPayload
from safework.watermark.errors import KeyFileError, WatermarkInputError
from safework.watermark.keys import WatermarkKey
from safework.watermark.payload import SymbolLayout, crc8


def test_key_file_round_trip_is_private(tmp_path: Path) -> None:
    key = WatermarkKey.generate()
    path = key.to_file(tmp_path / "k.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert WatermarkKey.from_file(path) == key
    assert json.loads(path.read_text())["format"] == "safework-watermark-key"
    assert key.fingerprint() != WatermarkKey.generate().fingerprint()


def test_key_file_is_never_overwritten_silently(tmp_path: Path) -> None:
    first = WatermarkKey.generate()
    first.to_file(tmp_path / "k.json")
    with pytest.raises(KeyFileError, match="--force"):
        WatermarkKey.generate().to_file(tmp_path / "k.json")
    assert WatermarkKey.from_file(tmp_path / "k.json") == first


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"format": "safework-watermark-key", "version": 1, "key": "00ff"}', "exactly 16 bytes"),
        ("zz" * 16, "not hexadecimal"),
        ("{not json", "not valid JSON"),
        ('{"format": "other", "key": "00"}', "not a safework watermark key file"),
    ],
)
def test_bad_key_files_say_what_is_wrong(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "k.json"
    path.write_text(body)
    with pytest.raises(KeyFileError, match=message):
        WatermarkKey.from_file(path)


def test_missing_key_file_names_keygen(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="safework watermark keygen"):
        WatermarkKey.from_file(tmp_path / "absent.json")


def test_bare_hex_key_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "k.hex"
    path.write_text("00112233445566778899aabbccddeeff\n")
    assert WatermarkKey.from_file(path).secret == bytes.fromhex("00112233445566778899aabbccddeeff")


@pytest.mark.parametrize(
    ("bits", "width", "crc"), [(16, 4, False), (32, 4, False), (16, 3, True), (5, 8, True), (1, 1, False)]
)
def test_layout_round_trip(bits: int, width: int, crc: bool) -> None:
    layout = SymbolLayout(bits, width, crc)
    assert layout.slots == -(-(bits + (8 if crc else 0)) // width)
    for value in (0, 1, (1 << bits) - 1, 0x5A5A5A5A & ((1 << bits) - 1)):
        payload = WatermarkPayload(value, bits)
        symbols = layout.encode(payload)
        assert all(0 <= s < layout.candidates for s in symbols)
        decoded, ok = layout.decode(symbols)
        assert decoded == payload
        assert ok is (True if crc else None)


def test_crc_catches_every_single_bit_error() -> None:
    layout = SymbolLayout(16, 4, crc=True)
    symbols = layout.encode(WatermarkPayload(0xBEEF, 16))
    for slot in range(layout.slots):
        for bit in range(4):
            flipped = list(symbols)
            flipped[slot] ^= 1 << bit
            _, ok = layout.decode(flipped)
            assert ok is False


def test_crc8_known_value() -> None:
    assert crc8(0x31, 8) == 0x97  # CRC-8/SMBUS of b"1" (check value of the catalogue: 0xF4 for "123456789")
    assert crc8(int.from_bytes(b"123456789", "big"), 72) == 0xF4


def test_layout_rejects_mismatched_payload_and_bad_widths() -> None:
    with pytest.raises(WatermarkInputError, match="--bits 16"):
        SymbolLayout(16, 4).encode(WatermarkPayload(1, 8))
    with pytest.raises(WatermarkInputError, match=r"1\.\.12"):
        SymbolLayout(16, 13)
    with pytest.raises(WatermarkInputError, match="between 0 and"):
        SymbolLayout(1000, 4)
