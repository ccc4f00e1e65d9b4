"""The session: the one way to run an analysis step on a project, with checks, a snapshot and provenance.

``Session.run`` is the spine every front door calls: inspect the data -> check the
tool's prerequisites (plan and run the missing steps with ``auto=True``) -> validate the
parameters -> run the tool on a working copy -> output checks -> write a snapshot ->
move the branch. Everything happens under the project lock.

Crash safety rests on one commit point, the compare-and-set of the branch ref:

1. snapshots are written first; until a ref points at them they are invisible
   (an interrupted step leaves at most unreachable objects in the store);
2. the ref moves (atomic rename) -- the step is now committed;
3. ``provenance.jsonld`` is rebuilt from the committed snapshots and ``log.jsonl``
   gets the step. Both are derived from the store; if the process dies between 2 and 3,
   the next write operation sees a branch head that the log does not know and rebuilds
   both (:meth:`Session.recover`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scagent._atomic import atomic_path, atomic_write_text
from scagent.errors import (
    DataStateError,
    InvalidParameterError,
    MissingPrerequisiteError,
    ProjectError,
    RefNotFoundError,
    ScagentError,
    StepInterruptedError,
)
from scagent.session import provenance as prov
from scagent.session.context import ExperimentContext, load_context, validate_context
from scagent.session.project import Project

if TYPE_CHECKING:
    from anndata import AnnData
    from prov.model import ProvDocument

    from scagent.data.state import DataState
    from scagent.tools.base import Tool, ToolResult

__all__ = ["RunRecord", "Session", "StepRecord"]


@dataclass(frozen=True)
class StepRecord:
    """One step along a branch: the snapshot it made and how (from the snapshot's meta)."""

    step: int
    snapshot_id: str
    parent: str | None
    tool_id: str
    params: dict[str, Any]
    kind: str = "step"
    deterministic: bool = True
    requested_by: str = "user"
    request_text: str | None = None
    started: str | None = None
    ended: str | None = None
    summary: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    planned: bool = False
    activity_id: str | None = None

    @classmethod
    def from_manifest(cls, step: int, manifest: Any) -> StepRecord:
        meta = dict(manifest.meta or {})
        return cls(
            step=step,
            snapshot_id=manifest.id,
            parent=manifest.parent,
            tool_id=meta.get("tool_id", "?"),
            params=dict(meta.get("params") or {}),
            kind=meta.get("kind", "step"),
            deterministic=bool(meta.get("deterministic", True)),
            requested_by=meta.get("requested_by", "user"),
            request_text=meta.get("request_text"),
            started=meta.get("started"),
            ended=meta.get("ended"),
            summary=meta.get("summary", ""),
            metrics=dict(meta.get("metrics") or {}),
            warnings=list(meta.get("warnings") or []),
            versions=dict(meta.get("versions") or {}),
            planned=bool(meta.get("planned", False)),
            activity_id=meta.get("activity_id"),
        )


@dataclass
class RunRecord:
    """What :meth:`Session.run` did: the steps it committed (planned ones first) and the result."""

    branch: str
    steps: list[StepRecord]
    result: ToolResult
    snapshot_id: str
    bytes_written: int = 0
    #: Seconds spent per stage, summed over the run's steps: inspect, copy, tool,
    #: snapshot, commit (ref + provenance + log).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def step(self) -> StepRecord:
        """The requested step (the last one)."""
        return self.steps[-1]


@contextlib.contextmanager
def _deferred_sigint() -> Iterator[None]:
    """Hold Ctrl-C while the commit and its bookkeeping run; deliver it afterwards.

    Between the ref move and the rebuilt provenance an interrupt would not lose data
    (recovery rebuilds it) but would make the next command do that work; holding it for
    these milliseconds keeps the common case clean. Only the main thread gets signals.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def _lock_timeout() -> float:
    try:
        return float(os.environ.get("SCAGENT_LOCK_TIMEOUT", "0"))
    except ValueError:
        return 0.0


class Session:
    """A project opened for analysis: its branches, their data, and the way to run steps.

    Create one with :meth:`init` (a new project) or :meth:`open` (an existing one).

    Parameters
    ----------
    project
        The opened project folder.
    lock_timeout
        Seconds a write waits for another process's lock before
        :class:`~scagent.errors.ProjectLockedError`; default ``$SCAGENT_LOCK_TIMEOUT`` or 0.
    """

    def __init__(self, project: Project, *, lock_timeout: float | None = None) -> None:
        from scagent.session.refs import Refs
        from scagent.session.store import SnapshotStore

        self.project = project
        self.store = SnapshotStore(project.store_dir)
        self.refs = Refs(project.refs_dir)
        self.lock_timeout = _lock_timeout() if lock_timeout is None else lock_timeout
        self._cached: tuple[str, AnnData] | None = None
        self._cached_state: tuple[str, DataState] | None = None
        # Whether the cached AnnData was given to the caller (``.adata``): then a step must
        # run on a copy, so that the caller's object never changes under them.
        self._handed_out = False

    # ------------------------------------------------------------------ create / open
    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str] = ".",
        *,
        paradigm: str | None = None,
        context: ExperimentContext | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        data: AnnData | str | os.PathLike[str] | None = None,
        requested_by: str = "user",
        lock_timeout: float | None = None,
        lazy: bool = False,
    ) -> Session:
        """Create a project in ``path`` (``.scagent/``) and, with ``data``, import it on ``main``.

        Parameters
        ----------
        path
            The project folder (created if missing).
        paradigm
            One of :data:`scagent.session.project.PARADIGMS`.
        context
            The experiment context: an :class:`ExperimentContext`, a mapping, or a JSON/YAML file.
        data
            A file scagent reads (:func:`scagent.data.read`) or an AnnData; becomes step 0
            ("import") of branch ``main``.
        lazy
            Open a ``.h5ad``/``.zarr`` file lazily (:func:`scagent.scale.read_lazy`): X and
            the layers stay on disk as dask arrays and are snapshotted one row block at a
            time; run ``preprocess_lazy`` on it.
        """
        if isinstance(context, (str, os.PathLike)):
            context = load_context(context)
        else:
            context = validate_context(context)
        prov.check_requested_by(requested_by)
        # Read the data before creating anything: a file that cannot be read must not
        # leave a half-made project behind.
        prepared = _read_input(data, lazy=lazy) if data is not None else None
        Path(path).mkdir(parents=True, exist_ok=True)
        project = Project.create(path, paradigm=paradigm, context=context)
        session = cls(project, lock_timeout=lock_timeout)
        if prepared is not None:
            session.import_data(prepared, requested_by=requested_by)
        return session

    @classmethod
    def open(
        cls, path: str | os.PathLike[str] = ".", *, lock_timeout: float | None = None
    ) -> Session:
        """Open the project at or above ``path``."""
        return cls(Project.open(path), lock_timeout=lock_timeout)

    def _lock(self):
        from scagent.session.lock import ProjectLock

        return ProjectLock(self.project.lock_path, timeout=self.lock_timeout)

    # ------------------------------------------------------------------ branches and data
    @property
    def branch(self) -> str:
        """The current branch."""
        return self.refs.current_branch

    def head(self, branch: str | None = None) -> str:
        """The snapshot id at the head of ``branch`` (default: the current branch)."""
        return self.refs.get(branch or self.branch)

    def _load(self, snapshot_id: str) -> AnnData:
        if self._cached is None or self._cached[0] != snapshot_id:
            lazy = self._imported_lazily(snapshot_id)
            self._cached = (snapshot_id, self.store.read_snapshot(snapshot_id, lazy=lazy))
            self._handed_out = False
        return self._cached[1]

    def _imported_lazily(self, snapshot_id: str) -> bool:
        """Whether the branch's data was imported with ``lazy=True`` (then X stays on disk)."""
        root = self.store.history(snapshot_id)[0]
        source = (root.meta or {}).get("source") or {}
        return bool(source.get("lazy"))

    @property
    def adata(self) -> AnnData:
        """The data at the head of the current branch (loaded once, then cached).

        Treat it as read-only: a change made here is not a recorded step. Use
        :meth:`checkout` for a copy to play with, or :meth:`run` to change the data.
        Later steps never modify the object returned here.
        """
        adata = self._load(self.head())
        self._handed_out = True
        return adata

    def _forget_cache(self) -> None:
        self._cached = None
        self._cached_state = None
        self._handed_out = False

    @property
    def state(self) -> DataState:
        """The inspector's :class:`DataState` of :attr:`adata`."""
        head = self.head()
        if self._cached_state is None or self._cached_state[0] != head:
            self._cached_state = (head, _inspect(self._load(head)))
        return self._cached_state[1]

    def history(self, branch: str | None = None) -> list[StepRecord]:
        """The steps of ``branch`` from its import (step 0) to its head."""
        return [
            StepRecord.from_manifest(i, m)
            for i, m in enumerate(self.store.history(self.head(branch)))
        ]

    def resolve(self, ref: str) -> str:
        """A snapshot id from ``BRANCH``, ``BRANCH@STEP`` (0 = import) or a snapshot id.

        Raises
        ------
        RefNotFoundError
            No such branch, step or snapshot.
        """
        ref = ref.strip()
        if "@" in ref:
            branch, _, step_text = ref.partition("@")
            try:
                step = int(step_text)
            except ValueError:
                raise RefNotFoundError(
                    f"{ref!r}: the step after '@' must be a number (0 = import)"
                ) from None
            chain = self.store.history(self.refs.get(branch or self.branch))
            if not 0 <= step < len(chain):
                raise RefNotFoundError(
                    f"branch {branch!r} has steps 0..{len(chain) - 1}; there is no step {step}",
                    remedy=f"run `scagent status` or `scagent branch list` to see {branch!r}'s steps",
                )
            return chain[step].id
        if ref in self.refs.list():
            return self.refs.get(ref)
        try:
            return self.store.resolve(ref)
        except (RefNotFoundError, InvalidParameterError):
            known = ", ".join(sorted(self.refs.list())) or "none"
            raise RefNotFoundError(
                f"{ref!r} is neither a branch (branches: {known}), BRANCH@STEP, nor a snapshot id"
            ) from None

    def checkout(self, ref: str, out: str | os.PathLike[str] | None = None) -> AnnData:
        """The data at ``ref`` (a fresh copy); with ``out``, also written there as .h5ad."""
        adata = self.store.read_snapshot(self.resolve(ref))
        if out is not None:
            with atomic_path(out, suffix=".h5ad") as tmp:
                adata.write_h5ad(tmp)
        return adata

    def branches(self) -> dict[str, str]:
        """Branch name -> head snapshot id."""
        return self.refs.list()

    def create_branch(self, name: str, from_ref: str | None = None, *, switch: bool = False) -> str:
        """Create branch ``name`` at ``from_ref`` (default: the current head); returns its head."""
        with self._lock():
            self.recover()
            snapshot = self.resolve(from_ref) if from_ref else self.head()
            self.refs.create(name, snapshot)
            if switch:
                self.refs.switch(name)
            self.project.append_log(
                {"event": "branch_create", "branch": name, "snapshot": snapshot, "from": from_ref}
            )
            self._write_provenance()
        return snapshot

    def switch_branch(self, name: str) -> None:
        """Make ``name`` the current branch."""
        with self._lock():
            self.refs.switch(name)
            self.project.append_log({"event": "branch_switch", "branch": name})

    def delete_branch(self, name: str) -> None:
        """Delete branch ``name`` (its snapshots stay in the store and in provenance)."""
        with self._lock():
            head = self.refs.get(name)
            self.refs.delete(name)
            self.project.append_log({"event": "branch_delete", "branch": name, "snapshot": head})
            self._write_provenance()

    def undo(self, branch: str | None = None) -> StepRecord:
        """Move ``branch`` back one step; returns the step undone. Nothing is deleted."""
        with self._lock():
            self.recover()
            branch = branch or self.branch
            head = self.refs.get(branch)
            chain = self.store.history(head)
            if len(chain) < 2:
                raise RefNotFoundError(
                    f"branch {branch!r} is at step 0 (the import); there is no step to undo",
                    remedy="nothing to do; `scagent branch list` shows the branches",
                )
            undone = StepRecord.from_manifest(len(chain) - 1, chain[-1])
            self.refs.set(branch, chain[-2].id, expected=head)
            self.project.append_log(
                {
                    "event": "undo",
                    "branch": branch,
                    "from": head,
                    "to": chain[-2].id,
                    "tool_id": undone.tool_id,
                }
            )
            self._write_provenance()
            return undone

    # ------------------------------------------------------------------ import
    def import_data(
        self,
        data: AnnData | str | os.PathLike[str],
        *,
        branch: str = "main",
        requested_by: str = "user",
        request_text: str | None = None,
    ) -> StepRecord:
        """Make step 0 of a new branch from a file or an AnnData (provenance records the file's checksum)."""
        prov.check_requested_by(requested_by)
        started = prov.now_iso()
        adata, source, params = _read_input(data)
        with self._lock():
            self.recover()
            if branch in self.refs.list():
                raise ProjectError(
                    f"branch {branch!r} already exists; an import starts a new branch",
                    remedy="import onto another branch name, or start a new project",
                )
            meta = prov.step_meta(
                tool_id="import",
                params=params,
                versions=prov.library_versions(["scanpy", "h5py"]),
                started=started,
                ended=prov.now_iso(),
                requested_by=requested_by,
                request_text=request_text,
                framework="anndata",
                summary=f"imported {adata.n_obs} cells x {adata.n_vars} genes",
                kind="import",
                source=source,
            )
            info = self.store.write_snapshot(adata, parent=None, meta=meta)
            with _deferred_sigint():
                self.refs.create(branch, info.id)
                if not self._has_current_branch():
                    self.refs.switch(branch)
                self._cached = (info.id, adata)
                self._handed_out = False
                self._cached_state = None
                self._write_provenance()
                self.project.append_log(
                    {
                        "event": "import",
                        "branch": branch,
                        "snapshot": info.id,
                        "step": 0,
                        "tool_id": "import",
                        "source": source,
                        "requested_by": requested_by,
                    }
                )
        return StepRecord.from_manifest(0, self.store.manifest(info.id))

    def _has_current_branch(self) -> bool:
        try:
            return self.refs.current_branch in self.refs.list()
        except (RefNotFoundError, FileNotFoundError):
            return False

    # ------------------------------------------------------------------ run
    def _context_defaults(self, tool: Tool, params: dict[str, Any]) -> dict[str, Any]:
        """Fill a tool's ``species`` / ``tissue`` parameters from the experiment context.

        One rule for every tool, so that no tool needs to know about projects: a parameter
        the user gave always wins; the defaults used are recorded with the other params.
        """
        fields = tool.params.model_fields
        context = self.project.config.context
        filled = dict(params)
        if "tissue" in fields and filled.get("tissue") is None and context.tissue is not None:
            filled["tissue"] = context.tissue.label
        if "species" in fields and filled.get("species") is None and context.organism is not None:
            from scagent.knowledge.genes import normalize_species

            # Only species the marker knowledge covers; others leave the tool's default.
            with contextlib.suppress(InvalidParameterError):
                filled["species"] = normalize_species(context.organism.taxon_id)
        return filled

    def run(
        self,
        tool_id: str,
        *,
        auto: bool = False,
        requested_by: str = "user",
        request_text: str | None = None,
        branch: str | None = None,
        **params: Any,
    ) -> RunRecord:
        """Run one tool on the head of a branch and commit the result as a new step.

        Parameters
        ----------
        tool_id
            A registered tool (``scagent tools`` lists them).
        auto
            When prerequisites are missing, plan them (:func:`scagent.plan.plan_steps`)
            and run them first, each recorded as its own step; otherwise raise. The
            branch moves once, after the last step: a failure commits none of them.
        requested_by
            Who asked: ``user``, ``cli``, ``agent`` or ``llm:<model>`` (recorded).
        request_text
            The request in words, if any (recorded).
        branch
            The branch to run on (default: the current branch).
        **params
            The tool's parameters; unknown or out-of-range ones raise before anything runs.

        Returns
        -------
        RunRecord
            The committed steps and the tool's result.

        Raises
        ------
        UnknownToolError, InvalidParameterError
            Bad tool id or parameter.
        MissingPrerequisiteError
            Prerequisites missing and ``auto`` is False (the message lists them).
        DataStateError
            The data cannot serve the tool (e.g. normalize on scaled data without counts).
        StepInterruptedError
            Ctrl-C during the step; nothing was committed.
        ProjectLockedError
            Another process is writing the project.
        """
        from scagent.plan import check_prerequisites, plan_steps
        from scagent.tools import get_tool

        prov.check_requested_by(requested_by)
        tool = get_tool(tool_id)
        params = self._context_defaults(tool, params)
        validated = tool.validate_params(params)
        timings = dict.fromkeys(("inspect", "copy", "tool", "snapshot", "commit"), 0.0)

        with self._lock():
            self.recover()
            branch = branch or self.branch
            head = self.refs.get(branch)
            current = self._load(head)

            t = time.perf_counter()
            state = _inspect(current)
            timings["inspect"] += time.perf_counter() - t
            check = check_prerequisites(tool_id, state)
            chain: list[tuple[Tool, Any, bool]] = []
            if not check.ok:
                if check.missing and not auto:
                    raise MissingPrerequisiteError(
                        f"{tool_id} needs {', '.join(check.missing)} first"
                        + (f" ({'; '.join(check.problems)})" if check.problems else ""),
                        remedy=f"run them first, or pass --auto (auto=True) to run "
                        f"{' -> '.join([*check.missing, tool_id])}",
                    )
                if not check.missing:
                    raise DataStateError(
                        f"{tool_id} cannot run on this data: {'; '.join(check.problems)}"
                    )
                for planned in plan_steps(tool_id, state):
                    if planned.tool_id == tool_id:
                        continue
                    step_tool = get_tool(planned.tool_id)
                    chain.append((step_tool, step_tool.validate_params({}), True))
            chain.append((tool, validated, False))

            # The working copy. When nobody outside holds the cached head object, the step
            # runs on it directly (saving a full copy of X per step); if the step fails,
            # the cache is dropped and the head is read back from the store, which is
            # untouched until the commit.
            in_place = not self._handed_out
            try:
                t = time.perf_counter()
                work = current if in_place else current.copy()
                timings["copy"] += time.perf_counter() - t
                parent = head
                steps_meta: list[tuple[str, dict]] = []
                bytes_written = 0
                result = None
                for index, (step_tool, step_params, planned) in enumerate(chain):
                    if index > 0:  # the first step was checked above, on the same data
                        t = time.perf_counter()
                        step_state = _inspect(work)
                        timings["inspect"] += time.perf_counter() - t
                        step_check = check_prerequisites(step_tool.id, step_state)
                        if not step_check.ok:
                            raise MissingPrerequisiteError(
                                f"the plan for {tool_id} left {step_tool.id} without "
                                f"{', '.join(step_check.missing) or '; '.join(step_check.problems)}",
                                remedy="run the steps one by one and report this plan",
                            )
                    started = prov.now_iso()
                    t = time.perf_counter()
                    result = _execute(step_tool, work, step_params)
                    timings["tool"] += time.perf_counter() - t
                    meta = prov.step_meta(
                        tool_id=step_tool.id,
                        params=step_params.model_dump(mode="json"),
                        versions=prov.library_versions(step_tool.captures),
                        started=started,
                        ended=prov.now_iso(),
                        requested_by=requested_by,
                        request_text=request_text,
                        deterministic=step_tool.deterministic,
                        framework=step_tool.framework,
                        summary=result.summary,
                        metrics=result.metrics,
                        warnings=result.warnings,
                        written=result.written,
                        planned=planned,
                    )
                    t = time.perf_counter()
                    info = self.store.write_snapshot(work, parent=parent, meta=meta)
                    timings["snapshot"] += time.perf_counter() - t
                    bytes_written += int(getattr(info, "bytes_written", 0) or 0)
                    steps_meta.append((info.id, meta))
                    parent = info.id
            except BaseException as exc:
                if in_place:
                    self._forget_cache()
                if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, StepInterruptedError):
                    raise StepInterruptedError(
                        f"{tool_id} was interrupted; branch {branch!r} is still at its "
                        "previous step"
                    ) from None
                raise

            t = time.perf_counter()
            with _deferred_sigint():
                # The commit point: until here nothing visible has changed.
                try:
                    self.refs.set(branch, parent, expected=head)
                except BaseException:
                    if in_place:
                        self._forget_cache()
                    raise
                self._cached = (parent, work)
                self._handed_out = False
                self._cached_state = None
                first_step = len(self.store.history(head))
                records = [
                    StepRecord.from_manifest(first_step + i, self.store.manifest(sid))
                    for i, (sid, _) in enumerate(steps_meta)
                ]
                self._write_provenance()
                self.project.append_log(*(_log_record(branch, r) for r in records))
            timings["commit"] += time.perf_counter() - t

        assert result is not None
        return RunRecord(
            branch=branch,
            steps=records,
            result=result,
            snapshot_id=parent,
            bytes_written=bytes_written,
            timings=timings,
        )

    # ------------------------------------------------------------------ plans
    def plan(self, goal: str) -> list[Any]:
        """The steps (``PlannedStep``) that make ``goal`` runnable on the current data, goal last."""
        from scagent.plan import plan_steps
        from scagent.tools import get_tool

        get_tool(goal)
        return plan_steps(goal, self.state)

    def next_steps(self, limit: int = 5) -> list[str]:
        """Suggested next tools: the paradigm plan's next steps, else the dependency graph's."""
        from scagent.plan import get_paradigm, suggest_next

        state = self.state
        paradigm = self.project.config.paradigm
        if paradigm:
            plan = get_paradigm(paradigm)
            plan.mark_precomputed_from_state(state)
            done = {s.tool_id for s in self.history()}
            for step in plan.steps:
                if step.status == "pending" and step.tool_id in done:
                    plan.mark(step.id, "done")
            return [s.tool_id for s in plan.next_steps()][:limit]
        return suggest_next(state)[:limit]

    # ------------------------------------------------------------------ provenance
    def committed_manifests(self) -> list[Any]:
        """Manifests of every committed snapshot, in commit order (log order, then branch heads)."""
        seen: dict[str, Any] = {}
        for record in self.project.read_log():
            sid = record.get("snapshot")
            if record.get("event") in ("import", "step") and sid and sid not in seen:
                with contextlib.suppress(RefNotFoundError, FileNotFoundError, KeyError):
                    seen[sid] = self.store.manifest(sid)
        for head in self.refs.list().values():
            for manifest in self.store.history(head):
                seen.setdefault(manifest.id, manifest)
        return list(seen.values())

    def provenance(self) -> ProvDocument:
        """The W3C PROV document of every committed step of the project."""
        return prov.build_document(self.committed_manifests(), self.refs.list())

    def export_provenance(self, format: str = "jsonld") -> str:
        """The provenance as PROV-JSON-LD (``jsonld``), PROV-N (``provn``) or PROV-JSON (``json``)."""
        return prov.export_document(self.provenance(), format)  # type: ignore[arg-type]

    def _write_provenance(self) -> None:
        atomic_write_text(self.project.provenance_path, self.export_provenance("jsonld"))

    def recover(self) -> list[str]:
        """Finish the bookkeeping of steps committed by a process that died before it.

        A branch head the log does not know was committed (its ref moved) but its log
        and provenance were not written. Walks back from each such head to the first
        logged snapshot, logs the missing steps as recovered, and rebuilds provenance.
        Returns the recovered snapshot ids.
        """
        logged = {r.get("snapshot") for r in self.project.read_log()}
        recovered: list[tuple[str, StepRecord]] = []
        for name, head in self.refs.list().items():
            if head in logged:
                continue
            chain = self.store.history(head)
            for index in range(len(chain) - 1, -1, -1):
                if chain[index].id in logged:
                    break
                recovered.append((name, StepRecord.from_manifest(index, chain[index])))
                logged.add(chain[index].id)
        if recovered:
            recovered.sort(key=lambda item: item[1].step)
            self.project.append_log(
                *({**_log_record(name, r), "recovered": True} for name, r in recovered)
            )
        if recovered or (self.refs.list() and not self.project.provenance_path.exists()):
            self._write_provenance()
        return [r.snapshot_id for _, r in recovered]

    # ------------------------------------------------------------------ replay / compare
    def replay(self, branch: str | None = None, **kwargs: Any):
        """Re-run ``branch`` from its import; see :func:`scagent.session.replay.replay_branch`."""
        from scagent.session.replay import replay_branch

        return replay_branch(self, branch or self.branch, **kwargs)

    def compare(self, a: str, b: str):
        """Compare two branches; see :func:`scagent.session.compare.compare_branches`."""
        from scagent.session.compare import compare_branches

        return compare_branches(self, a, b)


def _read_input(
    data: Any, *, lazy: bool = False
) -> tuple[AnnData, dict[str, Any] | None, dict[str, Any]]:
    """``(adata, source, params)`` of an import: a file read with its checksum, or a copy of an AnnData."""
    if isinstance(data, tuple):  # already prepared by Session.init
        return data
    if lazy:
        if not isinstance(data, (str, os.PathLike)):
            raise InvalidParameterError(
                "lazy=True opens a file; an AnnData in memory is already loaded",
                remedy="pass the .h5ad/.zarr path, or drop lazy",
            )
        from scagent.scale import read_lazy

        return read_lazy(data), {"path": str(data), "lazy": True}, {"path": str(data), "lazy": True}
    if isinstance(data, (str, os.PathLike)):
        from scagent.data import read

        adata = read(data)
        source = dict((adata.uns.get("scagent") or {}).get("source") or {})
        source.setdefault("path", str(data))
        if "size" in source:
            source["bytes"] = source["size"]
        return adata, source, {"path": str(data)}
    return data.copy(), None, {"path": None}


def _inspect(adata: AnnData) -> DataState:
    from scagent.data import inspect_adata

    return inspect_adata(adata)


def _execute(tool: Tool, work: AnnData, params: Any) -> ToolResult:
    """Run ``tool`` with already-validated ``params``; foreign exceptions become ScagentError."""
    try:
        return tool(work, **params.model_dump())
    except (ScagentError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:
        raise ScagentError(
            f"{tool.id} failed: {type(exc).__name__}: {exc}",
            remedy="nothing was committed; re-run with --debug for the traceback",
        ) from exc


def _log_record(branch: str, record: StepRecord) -> dict[str, Any]:
    return {
        "event": "import" if record.kind == "import" else "step",
        "branch": branch,
        "step": record.step,
        "snapshot": record.snapshot_id,
        "parent": record.parent,
        "tool_id": record.tool_id,
        "params": record.params,
        "requested_by": record.requested_by,
        "planned": record.planned,
    }
