"""Atomic file writes: a reader (or a driver killed mid-write) sees the old file or the new one, never half.

The bytes go to a temporary file in the same folder, which then replaces the target with
one ``rename`` (atomic on POSIX file systems); a failed write leaves no temporary behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, payload: bytes | str) -> None:
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
