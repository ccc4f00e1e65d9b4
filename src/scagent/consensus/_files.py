"""Checksums and small table readers shared by the consensus run and its interpretation."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["sha256_path"]


def sha256_path(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (relative path and bytes, sorted).

    Unlike the reader's source record this always hashes every byte: a typed run's
    checksums are a tamper check, not a change hint.
    """
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            h.update(f.relative_to(p).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
    return h.hexdigest()
