"""Parsed records cached as JSONL under ``cache_dir("data")``, so a warm read skips unzip and parsing.

The file name carries a key over the data set's name and revision and its carrier's sha256 (or installed
version), so a new pin or a changed reader never serves stale records. A sidecar ``.meta.json`` holds the
record count (``safework data list`` shows it without reading the records) and a sha256 of the records.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safework.core.paths import cache_dir

if TYPE_CHECKING:
    from safework.core.data.dataset import Dataset

FORMAT = "1"  # bump when the record layout of every reader changes


def cache_key(dataset: Dataset, carrier_id: str) -> str:
    raw = "\0".join((FORMAT, dataset.name, dataset.revision, carrier_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def records_path(dataset: Dataset, carrier_id: str) -> Path:
    return cache_dir("data") / f"{dataset.name}-{cache_key(dataset, carrier_id)}.jsonl"


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".meta.json")


def read_meta(path: Path) -> dict[str, Any] | None:
    meta = _meta_path(path)
    if not (path.is_file() and meta.is_file()):
        return None
    try:
        data: dict[str, Any] = json.loads(meta.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("r", encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def records_digest(records: Iterable[dict[str, Any]]) -> str:
    """sha256 over the canonical JSON of each record: a content fingerprint tests can assert on."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def write_records(path: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Write records and meta atomically (temp file + rename); returns the meta."""
    meta = {"count": len(records), "sha256": records_digest(records)}
    fd, tmp = tempfile.mkstemp(prefix=".records-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    fd, tmp = tempfile.mkstemp(prefix=".meta-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(meta, handle)
    os.replace(tmp, _meta_path(path))
    return meta
