"""One writer per project: an exclusive ``flock`` on ``<project>/.scagent/lock`` that names its holder.

The kernel drops an flock when its process ends, however it ends, so a crashed writer
never leaves a stale lock behind; the holder's pid, command and start time are written
into the file only so that the process that has to wait can say who it waits for.
(flock is not reliable on some network file systems; keep projects on a local disk.)
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from scagent.errors import InvalidParameterError, ProjectError, ProjectLockedError

__all__ = ["ProjectLock", "read_lock_holder"]

# Locks held by this process, by resolved path: re-entering a lock the same thread already
# holds must not deadlock (flock conflicts between two descriptors of one process too).
_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


class _Held:
    __slots__ = ("count", "fd", "pid", "thread")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.count = 1
        self.pid = os.getpid()
        self.thread = threading.get_ident()


def read_lock_holder(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What the holder wrote into the lock file (``pid``, ``command``, ``host``, ``since``).

    Returns ``None`` if the file is absent, empty or unreadable; this does not tell
    whether the lock is held right now.
    """
    try:
        text = Path(path).read_text()
        info = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "another process"
    where = (
        f" on {info['host']}" if info.get("host") and info["host"] != socket.gethostname() else ""
    )
    parts = [f"pid {info.get('pid', '?')}{where}"]
    if info.get("command"):
        parts.append(f"running {info['command']!r}")
    if info.get("since"):
        parts.append(f"since {info['since']}")
    return ", ".join(parts)


class ProjectLock:
    """Exclusive lock of a project, as a context manager.

    Parameters
    ----------
    path
        The lock file, ``<project>/.scagent/lock`` (its folder must exist).
    timeout
        Seconds to wait for another holder to finish; 0 fails at once.
    command
        What this process is doing, shown to a process that has to wait (default: the
        command line).
    poll_interval
        Seconds between attempts while waiting.

    Raises
    ------
    ProjectLockedError
        (on entry) The lock is still held by another process after ``timeout`` seconds;
        the message names its pid and command.

    Examples
    --------
    >>> with ProjectLock(project / ".scagent" / "lock", timeout=10):  # doctest: +SKIP
    ...     write_a_step()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        timeout: float = 0.0,
        *,
        command: str | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        if timeout < 0:
            raise InvalidParameterError(f"lock timeout must be >= 0, got {timeout}")
        self.path = Path(path)
        self.timeout = float(timeout)
        self.command = (
            command
            if command is not None
            else " ".join(
                [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
            )[:200]
        )
        self.poll_interval = poll_interval
        self._key: str | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._key is not None

    def acquire(self) -> ProjectLock:
        """Take the lock, waiting up to ``timeout`` seconds; returns ``self``."""
        if self._key is not None:
            raise ProjectError(f"this ProjectLock on {self.path} is already held")
        if not self.path.parent.is_dir():
            raise ProjectError(f"no scagent project folder at {self.path.parent}")
        key = str(self.path.resolve())
        me = threading.get_ident()
        deadline = time.monotonic() + self.timeout
        while True:
            with _HELD_GUARD:
                held = _HELD.get(key)
                if held is not None and held.pid != os.getpid():
                    del _HELD[key]  # inherited through fork: the child does not own it
                    held = None
                if held is not None and held.thread == me:
                    held.count += 1
                    self._key = key
                    return self
                if held is None:
                    fd = self._try_lock()
                    if fd is not None:
                        _HELD[key] = _Held(fd)
                        self._key = key
                        return self
            # held by another process, or by another thread of this one
            if time.monotonic() >= deadline:
                info = read_lock_holder(self.path)
                if held is not None:
                    info = {"pid": os.getpid(), "command": "another thread of this process"}
                waited = f" after waiting {self.timeout:g} s" if self.timeout > 0 else ""
                raise ProjectLockedError(
                    f"the project {self.path.parent.parent} is locked by {_describe(info)}{waited}",
                    remedy="wait for that scagent process to finish, or pass a longer lock "
                    "timeout (SCAGENT_LOCK_TIMEOUT / --lock-timeout)",
                )
            time.sleep(min(self.poll_interval, max(deadline - time.monotonic(), 0.0)))

    def _try_lock(self) -> int | None:
        """One non-blocking attempt; the fd on success (holder info written), else None."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ProjectError(
                f"cannot open the project lock {self.path}: {e.strerror}",
                remedy="check that the project folder is writable by you",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        info = {
            "pid": os.getpid(),
            "command": self.command,
            "host": socket.gethostname(),
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        return fd

    def release(self) -> None:
        """Release the lock (a no-op if not held)."""
        key, self._key = self._key, None
        if key is None:
            return
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is None or held.pid != os.getpid():
                return
            held.count -= 1
            if held.count > 0:
                return
            del _HELD[key]
            try:
                os.ftruncate(held.fd, 0)  # the holder info is stale from now on
            finally:
                os.close(held.fd)  # closing the descriptor releases the flock

    def __enter__(self) -> ProjectLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"ProjectLock({str(self.path)!r}, timeout={self.timeout:g}, held={self.held})"
