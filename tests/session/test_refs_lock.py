"""Branch refs (compare-and-set, names) and the project lock across processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import scagent.session.lock
from scagent.errors import (
    InvalidParameterError,
    ProjectError,
    ProjectLockedError,
    RefNotFoundError,
    StoreCorruptionError,
)
from scagent.session.lock import ProjectLock, read_lock_holder
from scagent.session.refs import DEFAULT_BRANCH, Refs

A, B, C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
def refs(tmp_path: Path) -> Refs:
    return Refs(tmp_path / "refs")


# --------------------------------------------------------------------------- refs


def test_branches_create_get_list_switch_delete(refs: Refs) -> None:
    assert refs.list() == {} and refs.current_branch == DEFAULT_BRANCH and refs.head() is None
    refs.create("main", A)
    refs.create("res-0.8", B)
    assert refs.get("main") == A and refs.list() == {"main": A, "res-0.8": B}
    assert "res-0.8" in refs and "nope" not in refs and "a..b" not in refs
    refs.switch("res-0.8")
    assert refs.current_branch == "res-0.8" and refs.head() == B
    assert Refs(refs.root).current_branch == "res-0.8"  # HEAD is on disk
    with pytest.raises(InvalidParameterError, match="current branch"):
        refs.delete("res-0.8")
    refs.switch("main")
    refs.delete("res-0.8")
    assert refs.list() == {"main": A}
    with pytest.raises(InvalidParameterError, match="already exists"):
        refs.create("main", B)
    assert refs.get("main") == A


def test_missing_branch_names_the_known_ones(refs: Refs) -> None:
    refs.create("main", A)
    with pytest.raises(RefNotFoundError, match=r"'feature'.*main") as err:
        refs.get("feature")
    assert err.value.exit_code == 14
    with pytest.raises(RefNotFoundError):
        refs.switch("feature")
    with pytest.raises(RefNotFoundError):
        refs.delete("feature")


def test_compare_and_set(refs: Refs) -> None:
    refs.set("main", A, expected=None)
    refs.set("main", B, expected=A)
    assert refs.get("main") == B
    with pytest.raises(ProjectLockedError, match="moved"):
        refs.set("main", C, expected=A)  # a writer that started from A lost the race
    assert refs.get("main") == B
    with pytest.raises(ProjectLockedError):
        refs.set("main", C, expected=None)  # it exists already
    with pytest.raises(ProjectLockedError, match="deleted"):
        refs.set("gone", C, expected=A)
    refs.set("main", C)  # unconditional
    assert refs.get("main") == C


def test_compare_and_set_has_one_winner_among_concurrent_writers(refs: Refs) -> None:
    refs.create("main", A)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def writer(k: int) -> None:
        start.wait()
        try:
            refs.set("main", f"{k:x}" * 64, expected=A)
            outcomes.append("won")
        except ProjectLockedError:
            outcomes.append("lost")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert refs.get("main") != A


@pytest.mark.parametrize(
    "name", ["", "a/b", "..", "a..b", "../main", ".hidden", "x.lock", "HEAD", "a b", "é", "x" * 101,
             "main.", "-x", "a@1"],
)  # fmt: skip
def test_invalid_branch_names_are_refused(refs: Refs, name: str) -> None:
    with pytest.raises(InvalidParameterError, match="branch name"):
        refs.create(name, A)
    assert refs.list() == {}
    assert not any(p.name != ".lock" for p in refs.root.rglob("*") if p.is_file())


def test_bad_ids_and_damaged_refs(refs: Refs) -> None:
    with pytest.raises(InvalidParameterError, match="snapshot id"):
        refs.create("main", "abc")
    refs.create("main", A)
    (refs.heads_dir / "main").write_text("garbage\n")
    with pytest.raises(StoreCorruptionError, match="main"):
        refs.get("main")


# --------------------------------------------------------------------------- lock

_HOLDER = textwrap.dedent(
    """
    import importlib.util, sys, time
    from pathlib import Path
    # load lock.py alone: importing scagent.session would pull in anndata (seconds)
    spec = importlib.util.spec_from_file_location("scagent_lock", sys.argv[3])
    lock = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock)
    ProjectLock = lock.ProjectLock
    path, release = Path(sys.argv[1]), Path(sys.argv[2])
    with ProjectLock(path, command="test-holder run leiden"):
        print("locked", flush=True)
        while not release.exists():
            time.sleep(0.01)
    print("released", flush=True)
    """
)


def _start_holder(lock_path: Path, release: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock_path), str(release), scagent.session.lock.__file__],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = proc.stdout.readline().strip()
    assert line == "locked", proc.stderr.read()
    return proc


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    (tmp_path / ".scagent").mkdir()
    return tmp_path / ".scagent" / "lock"


def test_second_process_fails_then_waits(lock_path: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    holder = _start_holder(lock_path, release)
    try:
        assert read_lock_holder(lock_path)["pid"] == holder.pid
        with pytest.raises(ProjectLockedError) as err:
            ProjectLock(lock_path, timeout=0).acquire()
        assert f"pid {holder.pid}" in err.value.message and "test-holder" in err.value.message
        assert err.value.exit_code == 11

        t0 = time.monotonic()
        with pytest.raises(ProjectLockedError, match=r"after waiting 0\.3 s"):
            ProjectLock(lock_path, timeout=0.3).acquire()
        assert time.monotonic() - t0 >= 0.3

        # a waiter gets the lock as soon as the holder lets go
        threading.Timer(0.5, release.touch).start()
        t0 = time.monotonic()
        with ProjectLock(lock_path, timeout=30, command="waiter") as lock:
            waited = time.monotonic() - t0
            assert lock.held and read_lock_holder(lock_path)["pid"] == os.getpid()
            assert read_lock_holder(lock_path)["command"] == "waiter"
        assert 0.4 <= waited < 30
        assert holder.wait(timeout=30) == 0
    finally:
        release.touch()
        holder.kill()
        holder.wait()
    assert read_lock_holder(lock_path) is None  # released: holder info cleared


def test_lock_of_a_killed_process_is_free(lock_path: Path, tmp_path: Path) -> None:
    holder = _start_holder(lock_path, tmp_path / "never")
    with pytest.raises(ProjectLockedError):
        ProjectLock(lock_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with ProjectLock(lock_path, timeout=5) as lock:  # the kernel dropped the flock
        assert lock.held


def test_lock_is_released_on_exceptions_and_reentrant(lock_path: Path) -> None:
    with pytest.raises(RuntimeError), ProjectLock(lock_path):
        raise RuntimeError("step failed")
    with ProjectLock(lock_path) as outer:
        with ProjectLock(lock_path) as inner:  # same thread: nested use does not deadlock
            assert inner.held
        assert outer.held
        # another thread of this process is another writer
        errors: list[BaseException] = []
        t = threading.Thread(target=lambda: _try(lock_path, errors))
        t.start()
        t.join()
        assert len(errors) == 1 and isinstance(errors[0], ProjectLockedError)
    # fully released: a new process-level lock is free again
    free = ProjectLock(lock_path).acquire()
    free.release()
    assert not free.held


def _try(lock_path: Path, errors: list[BaseException]) -> None:
    try:
        with ProjectLock(lock_path, timeout=0):
            pass
    except BaseException as e:
        errors.append(e)


def test_lock_outside_a_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProjectError):
        ProjectLock(tmp_path / "nope" / ".scagent" / "lock").acquire()
    with pytest.raises(InvalidParameterError):
        ProjectLock(tmp_path / "lock", timeout=-1)
