"""On-disk response cache: one JSON file per answer, named by the hash of everything the
answer depends on, written atomically; a bad entry is a miss, an unwritable folder a warning."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scagent._atomic import atomic_write_text

__all__ = ["CACHE_FORMAT", "LLMCacheWarning", "ResponseCache", "cache_key", "default_cache_dir"]

#: Bump when the entry layout changes: old entries then simply stop matching.
CACHE_FORMAT = 1


class LLMCacheWarning(UserWarning):
    """The response cache could not be used as asked (corrupt entry, unwritable folder)."""


def scagent_home() -> Path:
    """``$SCAGENT_HOME``, default ``~/.cache/scagent``."""
    return Path(os.environ.get("SCAGENT_HOME") or "~/.cache/scagent").expanduser()


def default_cache_dir() -> Path:
    """Default folder of the LLM response cache: ``$SCAGENT_HOME/cache/llm``."""
    return scagent_home() / "cache" / "llm"


def cache_key(backend: str, model: str, payload: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of (format, backend, model, request payload)."""
    blob = json.dumps(
        {"format": CACHE_FORMAT, "backend": backend, "model": model, **payload},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A folder of cached answers.

    Reads never raise: a missing, unreadable or corrupt entry is a miss (corrupt ones warn
    with :class:`LLMCacheWarning`). If the folder cannot be written, the cache warns once
    and goes on read-only, so a run never fails because of its cache.

    Parameters
    ----------
    folder
        Where entries live (created on first write); default :func:`default_cache_dir`.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.corrupt = 0
        self.writable = True
        self.disabled_reason: str | None = None
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer for ``key``, or ``None`` (a miss)."""
        path = self._path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._miss()
        except OSError:
            return self._miss()
        try:
            entry = json.loads(text)
            if entry.get("format") != CACHE_FORMAT or entry.get("key") != key:
                raise ValueError("format or key mismatch")
            response = entry["response"]
            if not isinstance(response, dict):
                raise ValueError("no response object")
        except (ValueError, KeyError, AttributeError) as exc:
            self.report_bad_entry(key, f"is corrupt ({exc})")
            return self._miss()
        with self._lock:
            self.hits += 1
        return response

    def report_bad_entry(self, key: str, why: str, *, was_hit: bool = False) -> None:
        """Warn about an unusable entry (a miss); the next answer overwrites it.

        ``was_hit`` turns a hit that :meth:`get` already counted into a miss (the caller
        found the entry readable but not fitting the request).
        """
        with self._lock:
            self.corrupt += 1
            if was_hit:
                self.hits -= 1
                self.misses += 1
        warnings.warn(
            f"LLM cache entry {self._path(key)} {why}; treating it as a miss",
            LLMCacheWarning,
            stacklevel=3,
        )

    def _miss(self) -> None:
        with self._lock:
            self.misses += 1
        return None

    def put(self, key: str, response: dict[str, Any]) -> bool:
        """Store an answer atomically; returns False when the folder is not writable."""
        if not self.writable:
            return False
        entry = {
            "format": CACHE_FORMAT,
            "key": key,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "response": response,
        }
        try:
            atomic_write_text(self._path(key), json.dumps(entry, ensure_ascii=False, default=str))
        except OSError as exc:
            with self._lock:
                first = self.writable
                self.writable = False
                self.disabled_reason = str(exc)
            if first:
                warnings.warn(
                    f"LLM cache folder {self.folder} is not writable ({exc}); "
                    "running without caching new answers",
                    LLMCacheWarning,
                    stacklevel=3,
                )
            return False
        with self._lock:
            self.writes += 1
        return True

    def stats(self) -> dict[str, Any]:
        """Counters for reports: hits, misses, writes, corrupt entries, writability."""
        with self._lock:
            return {
                "folder": str(self.folder),
                "hits": self.hits,
                "misses": self.misses,
                "writes": self.writes,
                "corrupt": self.corrupt,
                "writable": self.writable,
            }
