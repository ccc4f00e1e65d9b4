"""Session.run: the spine's checks, snapshots, branches, and that a failed step changes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scagent.errors import (
    DataStateError,
    InvalidParameterError,
    MissingPrerequisiteError,
    ProjectLockedError,
    RefNotFoundError,
    ScagentError,
    StepInterruptedError,
    StoreCorruptionError,
    UnknownToolError,
)
from scagent.session import Session


def _snapshot_of_project(session: Session) -> dict:
    """Everything a failed step must leave as it was."""
    project = session.project
    return {
        "refs": dict(session.refs.list()),
        "branch": session.branch,
        "provenance": project.provenance_path.read_bytes(),
        "log": project.log_path.read_bytes(),
    }


def test_init_imports_step_zero(session, counts_data):
    history = session.history()
    assert [s.tool_id for s in history] == ["import"]
    assert history[0].step == 0 and history[0].kind == "import"
    assert session.branch == "main"
    assert session.adata.shape == counts_data.shape
    assert session.state.x_state == "raw_counts"
    assert json.loads(session.project.provenance_path.read_text())["@graph"]


def test_run_records_a_step_and_moves_the_branch(session, test_tools):
    before = session.head()
    record = session.run("test_add", value=2.0, requested_by="agent", request_text="add it")
    assert record.branch == "main"
    assert record.snapshot_id == session.head() != before
    step = session.history()[-1]
    assert step.step == 1 and step.parent == before
    assert step.params == {"value": 2.0, "key_added": "test_col"}  # defaults recorded too
    assert step.requested_by == "agent" and step.request_text == "add it"
    assert step.versions["scagent"] and step.started <= step.ended
    np.testing.assert_array_equal(
        session.adata.obs["test_col"], np.arange(session.adata.n_obs) * 2.0
    )
    # reopening the project from disk gives the same head and data
    again = Session.open(session.project.root)
    assert again.head() == record.snapshot_id
    assert "test_col" in again.adata.obs
    log = session.project.read_log()
    assert [r["event"] for r in log] == ["import", "step"]
    assert log[-1]["snapshot"] == record.snapshot_id


def test_adding_one_column_writes_only_that_column(session, test_tools):
    record = session.run("test_add")
    info = session.store.manifest(record.snapshot_id)
    parent = session.store.manifest(info.parent)
    changed = {k for k in info.parts if parent.parts.get(k) != info.parts[k]}
    assert changed == {"obs/test_col"}
    assert record.bytes_written < 50_000  # the column and a manifest, not a copy of X


@pytest.mark.parametrize(
    ("tool", "params", "error"),
    [
        ("no_such_tool", {}, UnknownToolError),
        ("test_add", {"valeu": 1}, InvalidParameterError),
        ("test_add", {"value": 11}, InvalidParameterError),
        ("test_fail", {}, ScagentError),
    ],
)
def test_bad_requests_change_nothing(session, test_tools, tool, params, error):
    before = _snapshot_of_project(session)
    cached = session.adata
    with pytest.raises(error) as info:
        session.run(tool, **params)
    assert _snapshot_of_project(session) == before
    assert "half_written" not in cached.obs  # the branch's AnnData was never touched
    if tool == "no_such_tool":
        assert "scagent tools" in info.value.remedy
    if params.get("value") == 11:
        assert "value" in info.value.message and "<= 10" in info.value.message
    if params.get("valeu"):
        assert "did you mean 'value'" in info.value.message


def test_ctrl_c_in_a_step_leaves_the_project_as_it_was(session, test_tools):
    before = _snapshot_of_project(session)
    x_before = session.adata.X.copy()
    with pytest.raises(StepInterruptedError) as info:
        session.run("test_interrupt")
    assert info.value.exit_code == 130
    assert _snapshot_of_project(session) == before
    assert (session.adata.X != x_before).nnz == 0
    assert "half_written" not in session.adata.obs
    assert "half_written" not in Session.open(session.project.root).adata.obs


@pytest.mark.parametrize("tool", ["test_fail", "test_interrupt"])
def test_failed_step_run_without_a_copy_leaves_no_trace(session, test_tools, tool):
    """Nobody holds the head object, so the step runs on it in place; failure must not leak."""
    head = session.head()
    with pytest.raises((ScagentError, KeyboardInterrupt)):
        session.run(tool)
    assert session.head() == head
    assert "half_written" not in session.adata.obs  # read back from the store
    assert session.adata.X.sum() > 0
    session.run("test_add")  # and the session goes on normally
    assert "half_written" not in session.adata.obs


def test_crash_before_the_ref_moves_leaves_nothing_visible(session, test_tools, monkeypatch):
    before = _snapshot_of_project(session)
    n_snapshots = len(session.store.list_snapshots())

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process were killed right before the commit

    monkeypatch.setattr(type(session.refs), "set", crash)
    with pytest.raises(KeyboardInterrupt):
        session.run("test_add")
    monkeypatch.undo()
    # the snapshot was written but nothing points at it: invisible, and the project is unchanged
    assert len(session.store.list_snapshots()) == n_snapshots + 1
    assert _snapshot_of_project(session) == before
    reopened = Session.open(session.project.root)
    assert reopened.recover() == []
    assert [s.tool_id for s in reopened.history()] == ["import"]
    assert len(json.loads(reopened.export_provenance())["@graph"]) == len(
        json.loads(before["provenance"])["@graph"]
    )


def test_crash_after_the_ref_moves_is_recovered(session, test_tools, monkeypatch):
    from scagent.session import session as session_module

    def crash(self):
        raise OSError("disk full while writing provenance")

    monkeypatch.setattr(session_module.Session, "_write_provenance", crash)
    with pytest.raises(OSError):
        session.run("test_add")
    monkeypatch.undo()
    # the step is committed (the ref moved) but its bookkeeping is missing ...
    head = session.head()
    assert session.history()[-1].tool_id == "test_add"
    assert head not in {r.get("snapshot") for r in session.project.read_log()}
    assert head not in session.project.provenance_path.read_text()
    # ... until the next writer recovers it
    reopened = Session.open(session.project.root)
    assert reopened.recover() == [head]
    log = reopened.project.read_log()
    assert log[-1]["snapshot"] == head and log[-1]["recovered"] is True
    assert head in reopened.project.provenance_path.read_text()
    assert reopened.recover() == []  # idempotent


def test_missing_prerequisites_without_and_with_auto(session):
    with pytest.raises(MissingPrerequisiteError) as info:
        session.run("leiden")
    assert "neighbors" in info.value.message and "--auto" in info.value.remedy
    assert [s.tool_id for s in session.history()] == ["import"]

    record = session.run("leiden", auto=True, resolution=0.5)
    tools = [s.tool_id for s in record.steps]
    assert tools[-1] == "leiden" and "neighbors" in tools and "pca" in tools
    assert tools.index("normalize") < tools.index("pca") < tools.index("neighbors")
    assert all(s.planned for s in record.steps[:-1]) and not record.steps[-1].planned
    assert record.steps[-1].params["resolution"] == 0.5
    history = session.history()
    assert [s.tool_id for s in history[1:]] == tools  # one recorded step each
    assert [s.step for s in history] == list(range(len(history)))
    assert session.adata.obs["leiden"].nunique() >= 2


def test_normalize_on_scaled_data_without_counts(tmp_path, pbmc68k):
    session = Session.init(tmp_path / "p", data=pbmc68k.copy())
    before = dict(session.refs.list())
    with pytest.raises(DataStateError) as info:
        session.run("normalize")
    assert "counts" in info.value.message and info.value.exit_code == 7
    assert session.refs.list() == before


def test_foreign_data_plan_reuses_pca_and_neighbors(tmp_path, pbmc68k):
    session = Session.init(tmp_path / "p", data=pbmc68k.copy())
    assert session.state.has("pca") and session.state.has("neighbors")
    assert [s.tool_id for s in session.plan("leiden")] == ["leiden"]
    assert [s.tool_id for s in session.plan("umap")] == ["umap"]
    x_pca = session.adata.obsm["X_pca"].copy()
    record = session.run("leiden", auto=True, key_added="leiden_scagent")
    assert [s.tool_id for s in record.steps] == ["leiden"]  # nothing recomputed
    np.testing.assert_array_equal(session.adata.obsm["X_pca"], x_pca)
    head = session.store.manifest(session.head())
    parent = session.store.manifest(head.parent)
    assert head.parts["obsm/X_pca"] == parent.parts["obsm/X_pca"]
    assert head.parts["obsp/connectivities"] == parent.parts["obsp/connectivities"]


def test_two_writers(session, test_tools, held_elsewhere):
    other = Session.open(session.project.root, lock_timeout=0)
    before = _snapshot_of_project(session)
    with held_elsewhere(session.project.lock_path):
        with pytest.raises(ProjectLockedError) as info:
            other.run("test_add")
    assert info.value.exit_code == 11
    assert _snapshot_of_project(session) == before
    other.run("test_add")  # the lock is free again
    # the first session notices that the branch moved and builds on the new head
    record = session.run("test_add", key_added="second")
    assert session.history()[-2].tool_id == "test_add"
    assert {"test_col", "second"} <= set(Session.open(session.project.root).adata.obs)
    assert record.steps[0].step == 2


def test_branch_moved_under_a_step_is_refused(session, test_tools):
    """Compare-and-set: if the branch moves while a step runs, the step is not committed."""
    from scagent.tools import get_tool

    other = Session.open(session.project.root)
    tool = get_tool("test_add")
    original = tool.fn

    def racing(adata, **params):
        # a writer that ignored the lock moves the branch while this step runs
        snapshot = other.store.write_snapshot(adata, parent=other.head(), meta={"racer": True})
        other.refs.set("main", snapshot.id)
        return original(adata, **params)

    object.__setattr__(tool, "fn", racing)  # Tool is frozen
    try:
        with pytest.raises(ProjectLockedError, match="moved"):
            session.run("test_add")
    finally:
        object.__setattr__(tool, "fn", original)
    assert session.store.manifest(session.head()).meta == {"racer": True}
    assert "test_col" not in Session.open(session.project.root).adata.obs


def test_two_writers_in_processes(session, test_tools):
    """A second process waiting on the lock: both steps land, one after the other."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import time
        from scagent.session.lock import ProjectLock
        with ProjectLock({str(session.project.lock_path)!r}):
            print("locked", flush=True)
            time.sleep(1.5)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(ProjectLockedError):
        Session.open(session.project.root, lock_timeout=0).run("test_add")
    waiting = Session.open(session.project.root, lock_timeout=30)
    waiting.run("test_add")  # waits for the other process, then runs
    holder.wait(timeout=30)
    assert [s.tool_id for s in waiting.history()] == ["import", "test_add"]


def test_branches_steps_and_undo(session, test_tools):
    session.run("test_add", value=1.0)
    session.run("test_add", value=2.0, key_added="b")
    assert session.resolve("main@0") == session.history()[0].snapshot_id
    assert session.resolve("main@2") == session.head()
    session.create_branch("alt", "main@1", switch=True)
    assert session.branch == "alt"
    session.run("test_add", value=3.0, key_added="c")
    assert [s.tool_id for s in session.history("alt")] == ["import", "test_add", "test_add"]
    assert "b" not in session.adata.obs and "c" in session.adata.obs
    assert "c" not in session.checkout("main").obs

    with pytest.raises(RefNotFoundError, match="no step 9"):
        session.resolve("main@9")
    with pytest.raises(RefNotFoundError, match="nope"):
        session.resolve("nope")
    with pytest.raises(RefNotFoundError):
        session.switch_branch("nope")

    head = session.head("main")
    undone = session.undo("main")
    assert undone.step == 2 and undone.snapshot_id == head
    assert session.head("main") == session.history("main")[1].snapshot_id
    assert session.store.has_snapshot(head)  # nothing deleted
    assert head in session.export_provenance()  # and still in provenance
    session.switch_branch("main")
    session.delete_branch("alt")
    assert set(session.branches()) == {"main"}
    session.undo()
    with pytest.raises(RefNotFoundError, match="no step to undo"):
        session.undo()


def test_corrupted_object_is_named(session, test_tools):
    record = session.run("test_add")
    part_hash = session.store.manifest(record.snapshot_id).parts["obs/test_col"]
    path = session.store._object_path(part_hash)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    fresh = Session.open(session.project.root)
    with pytest.raises(StoreCorruptionError, match="obs/test_col"):
        fresh.adata  # noqa: B018
    with pytest.raises(StoreCorruptionError):
        fresh.run("test_add", key_added="more")


def test_species_and_tissue_come_from_the_experiment_context(tmp_path, pbmc68k):
    """Tools with species/tissue parameters get them from project.json unless given."""
    from scagent.session import Session

    session = Session.init(
        tmp_path / "ctx", data=pbmc68k.copy(), context={"organism": "human", "tissue": "blood"}
    )
    record = session.run("annotate", groupby="bulk_labels")
    params = session.history()[-1].params
    assert params["tissue"] == "blood" and params["species"] == "human"
    assert record.result.metrics["n_clusters"] == pbmc68k.obs["bulk_labels"].nunique()
    session.run("annotate", groupby="bulk_labels", tissue="bone marrow", overwrite=True)
    assert session.history()[-1].params["tissue"] == "bone marrow"  # the user's value wins
