"""How a payload becomes symbols: optional CRC-8, then b-bit symbols, one per position slot.

A payload of N bits (+ 8 CRC bits when enabled) is cut into J = ceil(M / b) symbols of b bits, most
significant first; the last symbol is zero-padded. Each generated position is allocated to one slot by a
keyed hash of its context (see :mod:`safework.watermark.hashing`), so an edit only disturbs the positions it
touches instead of shifting every later segment (the reference toolkit's fixed blocks do).
"""

from __future__ import annotations

from dataclasses import dataclass

from safework.core.types import WatermarkPayload
from safework.watermark.errors import WatermarkInputError

CRC_BITS = 8
MAX_BITS = 256
CRC8_POLY = 0x07  # x^8 + x^2 + x + 1 (CRC-8/SMBUS): detects every 1- and 2-bit error in short messages


def crc8(value: int, bits: int) -> int:
    """CRC-8 (poly 0x07, init 0) over the ``bits``-bit big-endian value."""
    crc = 0
    for i in range(bits - 1, -1, -1):
        top = ((crc >> 7) & 1) ^ ((value >> i) & 1)
        crc = (crc << 1) & 0xFF
        if top:
            crc ^= CRC8_POLY
    return crc


@dataclass(frozen=True)
class SymbolLayout:
    """The shape of a payload on the wire: payload bits, CRC, symbol width and slot count."""

    bits: int
    symbol_bits: int
    crc: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 0 <= self.bits <= MAX_BITS:
            raise WatermarkInputError(f"--bits must be between 0 and {MAX_BITS}, got {self.bits!r}")
        if self.bits and not 1 <= self.symbol_bits <= 12:
            raise WatermarkInputError(
                f"symbol width must be 1..12 bits (2..4096 candidates per slot), got {self.symbol_bits}"
            )

    @property
    def total_bits(self) -> int:
        return self.bits + (CRC_BITS if self.crc and self.bits else 0)

    @property
    def slots(self) -> int:
        """J: how many symbols (1 for a zero-bit scheme, which still has one presence slot)."""
        return max(1, -(-self.total_bits // self.symbol_bits)) if self.bits else 1

    @property
    def candidates(self) -> int:
        """C: values one slot can take."""
        return 1 << self.symbol_bits if self.bits else 1

    def encode(self, payload: WatermarkPayload) -> list[int]:
        """The J symbols that carry ``payload`` (and its CRC)."""
        if payload.bits != self.bits:
            raise WatermarkInputError(
                f"payload has {payload.bits} bits but the scheme was set up for --bits {self.bits}"
            )
        if not self.bits:
            return [0]
        word = payload.value
        if self.crc:
            word = (word << CRC_BITS) | crc8(payload.value, self.bits)
        padded = self.slots * self.symbol_bits
        word <<= padded - self.total_bits
        mask = (1 << self.symbol_bits) - 1
        return [(word >> (padded - (j + 1) * self.symbol_bits)) & mask for j in range(self.slots)]

    def decode(self, symbols: list[int]) -> tuple[WatermarkPayload, bool | None]:
        """The payload carried by ``symbols`` and whether its CRC holds (None without CRC)."""
        if len(symbols) != self.slots:
            raise WatermarkInputError(f"expected {self.slots} symbols, got {len(symbols)}")
        word = 0
        for symbol in symbols:
            word = (word << self.symbol_bits) | symbol
        word >>= self.slots * self.symbol_bits - self.total_bits
        if not self.crc:
            return WatermarkPayload(word, self.bits), None
        value, check = word >> CRC_BITS, word & ((1 << CRC_BITS) - 1)
        return WatermarkPayload(value, self.bits), crc8(value, self.bits) == check

    def bit_slots(self) -> list[tuple[int, int]]:
        """For each payload bit (MSB first): (slot, bit index inside the symbol, from its MSB)."""
        return [divmod(i, self.symbol_bits) for i in range(self.bits)]
