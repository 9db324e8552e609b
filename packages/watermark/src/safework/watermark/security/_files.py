"""Writing key and certificate files safely: a private key is never readable by others, even briefly."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from safework.core.errors import SafeworkError


def write_files(
    files: Sequence[tuple[Path, bytes, int]], *, overwrite: bool, error: type[SafeworkError], flag: str
) -> None:
    """Write ``(path, data, mode)`` triples after checking every target first; each file is created with its
    final mode in a temporary file and renamed into place, so a crash leaves the old file or the new one.

    ``flag`` is how the caller spells "overwrite" (``--overwrite``), for the refusal message.
    """
    existing = [str(path) for path, _, _ in files if path.exists() or path.is_symlink()]
    if existing and not overwrite:
        raise error(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; pass {flag} to replace "
            f"{'it' if len(existing) == 1 else 'them'} (what it held is lost), or choose another path."
        )
    for path, _, _ in files:
        if path.exists() and not path.is_file():
            raise error(f"{path} exists and is not a regular file; remove it or choose another path.")
    for path, data, mode in files:
        folder = path.parent
        try:
            if not folder.exists():
                folder.mkdir(parents=True, mode=0o700)
            elif not folder.is_dir():
                raise error(f"{folder} is a file, not a folder; choose another path.")
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
            try:
                os.fchmod(fd, mode)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise error(
                f"cannot write {path} ({exc.strerror or exc}); check that {folder} is writable."
            ) from exc
