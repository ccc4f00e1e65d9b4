"""Branches as named pointers to snapshots: ``heads/<branch>`` files and a ``HEAD`` naming the current one.

Layout under ``root`` (``<project>/.scagent/refs``)::

    HEAD            the current branch name
    heads/<name>    the snapshot id the branch points at
    .lock           taken (flock) for the instant of a compare-and-set

Every update is a compare-and-set: :meth:`Refs.set` with ``expected=`` the id the writer
started from fails if another process moved the branch in between, so two writers can
never silently overwrite each other's step. Files are replaced atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path

from scagent._atomic import atomic_write_text
from scagent.errors import (
    InvalidParameterError,
    ProjectLockedError,
    RefNotFoundError,
    StoreCorruptionError,
)

__all__ = ["DEFAULT_BRANCH", "Refs", "validate_branch_name"]

#: The branch a new project starts on (HEAD names it before it has a snapshot).
DEFAULT_BRANCH = "main"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ID_RE = re.compile(r"^[0-9a-f]{64}$")


class _Unset:
    def __repr__(self) -> str:
        return "<any>"


_ANY = _Unset()


def validate_branch_name(name: str) -> str:
    """Return ``name`` if it is a valid branch name, else raise InvalidParameterError.

    Valid: 1–100 characters from letters, digits, ``.``, ``_`` and ``-``, starting with a
    letter or digit; no ``..``, not ending in ``.`` or ``.lock``, not ``HEAD``.
    """
    if (
        not isinstance(name, str)
        or not _NAME_RE.match(name)
        or ".." in name
        or name.endswith((".", ".lock"))
        or name == "HEAD"
    ):
        raise InvalidParameterError(
            f"invalid branch name {name!r}",
            remedy="use letters, digits, '.', '_' and '-' (no '/', no '..', at most 100 "
            "characters), e.g. 'res-0.8'",
        )
    return name


def _validate_id(snapshot_id: str) -> str:
    if not isinstance(snapshot_id, str) or not _ID_RE.match(snapshot_id):
        raise InvalidParameterError(
            f"{snapshot_id!r} is not a full snapshot id (64 hex digits)",
            remedy="resolve a short id with SnapshotStore.resolve first",
        )
    return snapshot_id


class Refs:
    """The branches of a project.

    Parameters
    ----------
    root
        Folder of the refs, ``<project>/.scagent/refs``; created if absent.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.heads_dir = self.root / "heads"
        self.heads_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.heads_dir / validate_branch_name(name)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # A short exclusive flock makes read-compare-write one step across processes
        # (and threads: each call opens its own file description).
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _read(self, name: str) -> str | None:
        path = self._path(name)
        try:
            value = path.read_text().strip()
        except FileNotFoundError:
            return None
        if not _ID_RE.match(value):
            raise StoreCorruptionError(f"branch {name!r} holds {value[:80]!r}, not a snapshot id")
        return value

    # -- branches -----------------------------------------------------------------------
    def get(self, branch: str) -> str:
        """The snapshot id ``branch`` points at.

        Raises
        ------
        RefNotFoundError
            No such branch (the message lists the branches there are).
        """
        value = self._read(branch)
        if value is None:
            known = ", ".join(sorted(self.list())) or "none yet"
            raise RefNotFoundError(f"no branch {branch!r} (branches: {known})")
        return value

    def set(self, branch: str, snapshot_id: str, *, expected: str | _Unset | None = _ANY) -> None:
        """Point ``branch`` at ``snapshot_id``, atomically.

        Parameters
        ----------
        branch
            Branch name (created if it does not exist and ``expected`` allows it).
        snapshot_id
            Full snapshot id.
        expected
            Compare-and-set guard: the id the branch must still hold (``None``: the branch
            must not exist yet). Left out, the branch is set unconditionally.

        Raises
        ------
        ProjectLockedError
            The branch moved since the caller read it (another process wrote a step).
        """
        _validate_id(snapshot_id)
        path = self._path(branch)
        with self._locked():
            if not isinstance(expected, _Unset):
                current = self._read(branch)
                if current != expected:
                    was = "did not exist" if expected is None else f"was at {expected[:12]}"
                    now = "has been deleted" if current is None else f"is now at {current[:12]}"
                    raise ProjectLockedError(
                        f"branch {branch!r} moved while this step ran: it {was} and {now}",
                        remedy="another scagent process wrote to this branch; reload it and "
                        "run the step again",
                    )
            atomic_write_text(path, snapshot_id + "\n")

    def create(self, name: str, snapshot_id: str) -> None:
        """Create branch ``name`` at ``snapshot_id``; InvalidParameterError if it exists."""
        validate_branch_name(name)
        if self._read(name) is not None:
            raise InvalidParameterError(
                f"branch {name!r} already exists",
                remedy="choose another name, or delete the branch first",
            )
        try:
            self.set(name, snapshot_id, expected=None)
        except ProjectLockedError:  # created by someone else in between
            raise InvalidParameterError(
                f"branch {name!r} already exists", remedy="choose another name"
            ) from None

    def delete(self, name: str) -> None:
        """Delete branch ``name`` (its snapshots stay in the store).

        Raises
        ------
        RefNotFoundError
            No such branch.
        InvalidParameterError
            ``name`` is the current branch (switch to another one first).
        """
        self.get(name)
        if name == self.current_branch:
            raise InvalidParameterError(
                f"cannot delete branch {name!r}: it is the current branch",
                remedy="switch to another branch first (`scagent branch switch NAME`)",
            )
        with self._locked():
            self._path(name).unlink(missing_ok=True)

    def list(self) -> dict[str, str]:
        """``{branch: snapshot id}`` of every branch, sorted by name."""
        out = {}
        for path in sorted(self.heads_dir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                value = self._read(path.name)
                if value is not None:
                    out[path.name] = value
        return out

    def __contains__(self, name: object) -> bool:
        try:
            return isinstance(name, str) and self._path(name).is_file()
        except InvalidParameterError:
            return False

    # -- HEAD ---------------------------------------------------------------------------
    @property
    def current_branch(self) -> str:
        """The branch HEAD names (``main`` in a project that has none yet)."""
        try:
            name = (self.root / "HEAD").read_text().strip()
        except FileNotFoundError:
            return DEFAULT_BRANCH
        try:
            return validate_branch_name(name)
        except InvalidParameterError:
            raise StoreCorruptionError(f"HEAD holds {name[:80]!r}, not a branch name") from None

    def switch(self, name: str) -> None:
        """Make ``name`` the current branch; RefNotFoundError if it does not exist."""
        self.get(name)
        atomic_write_text(self.root / "HEAD", name + "\n")

    def head(self) -> str | None:
        """Snapshot id of the current branch, or ``None`` if it has no snapshot yet."""
        return self._read(self.current_branch)

    def __repr__(self) -> str:
        return f"Refs({str(self.root)!r})"
