"""Replay: re-run a branch's recorded steps from its first snapshot and compare the results part by part.

Each step is re-run with its recorded (fully resolved) parameters on the output of the
previous replayed step, written into a scratch snapshot store, and the part hashes of
the new snapshot are compared with the recorded ones. Deterministic tools must
reproduce every part; non-deterministic ones are reported as such, match or not.
After a step whose result differs, the replay continues from that step's *recorded*
snapshot, so that each later step is judged on the input it had when it was recorded
(a UMAP drawn differently must not make every later step look broken).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from scagent.errors import ScagentError

if TYPE_CHECKING:
    from scagent.session.session import Session

__all__ = ["ReplayReport", "ReplayStep", "replay_branch"]

Status = Literal[
    "match", "mismatch", "nondeterministic_match", "nondeterministic_differs", "failed", "not_run"
]


@dataclass
class ReplayStep:
    """The replay of one recorded step."""

    step: int
    tool_id: str
    deterministic: bool
    recorded: str
    status: Status
    replayed: str | None = None
    differing: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def matched(self) -> bool:
        return self.status in ("match", "nondeterministic_match")


@dataclass
class ReplayReport:
    """Per step, whether replaying the branch reproduced the recorded snapshot."""

    branch: str
    head: str
    steps: list[ReplayStep]
    scratch: str | None = None

    @property
    def ok(self) -> bool:
        """Every deterministic step reproduced its recorded parts, and no step failed."""
        return all(s.status not in ("mismatch", "failed", "not_run") for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _differing(recorded: dict[str, str], replayed: dict[str, str]) -> list[str]:
    return sorted(k for k in set(recorded) | set(replayed) if recorded.get(k) != replayed.get(k))


def replay_branch(
    session: Session,
    branch: str,
    *,
    scratch: str | Path | None = None,
    keep: bool = False,
) -> ReplayReport:
    """Re-run the steps of ``branch`` from its step 0 and compare result hashes.

    Parameters
    ----------
    session
        The project's session (read only: the project is not changed).
    branch
        The branch to replay.
    scratch
        Folder for the replayed snapshots (default: a temporary folder).
    keep
        Keep the scratch folder (its path is in the report) instead of deleting it.

    Returns
    -------
    ReplayReport
        Step 0 (the import) is the starting point and is not re-run; each later step has
        a status: ``match``, ``mismatch`` (a deterministic step whose parts differ; the
        differing slot paths are listed), ``nondeterministic_match`` /
        ``nondeterministic_differs``, ``failed`` (the tool raised; the error is kept) or
        ``not_run`` (after a failure).
    """
    from scagent.session.store import SnapshotStore
    from scagent.tools import get_tool

    head = session.head(branch)
    chain = session.store.history(head)
    folder = (
        Path(scratch) if scratch is not None else Path(tempfile.mkdtemp(prefix="scagent-replay-"))
    )
    try:
        scratch_store = SnapshotStore(folder / "store")
        adata = session.store.read_snapshot(chain[0].id)
        parent = scratch_store.write_snapshot(adata, parent=None, meta=dict(chain[0].meta)).id
        steps: list[ReplayStep] = []
        failed = False
        for index, manifest in enumerate(chain[1:], start=1):
            meta = manifest.meta or {}
            tool_id = meta.get("tool_id", "?")
            deterministic = bool(meta.get("deterministic", True))
            step = ReplayStep(index, tool_id, deterministic, manifest.id, "not_run")
            steps.append(step)
            if failed:
                continue
            start = time.perf_counter()
            try:
                get_tool(tool_id)(adata, **(meta.get("params") or {}))
            except ScagentError as err:
                step.status, step.error, failed = "failed", err.one_line(), True
                continue
            except Exception as err:  # a tool's own failure is a replay finding, not a crash
                step.status, step.error, failed = "failed", f"{type(err).__name__}: {err}", True
                continue
            finally:
                step.seconds = time.perf_counter() - start
            info = scratch_store.write_snapshot(
                adata, parent=parent, meta={**meta, "replay_of": manifest.id}
            )
            parent = step.replayed = info.id
            step.differing = _differing(
                dict(manifest.parts), dict(scratch_store.manifest(info.id).parts)
            )
            same = not step.differing
            if not same:  # re-anchor on the recorded result (see the module docstring)
                adata = session.store.read_snapshot(manifest.id)
            if deterministic:
                step.status = "match" if same else "mismatch"
            else:
                step.status = "nondeterministic_match" if same else "nondeterministic_differs"
        return ReplayReport(branch, head, steps, str(folder) if keep else None)
    finally:
        if not keep and scratch is None:
            shutil.rmtree(folder, ignore_errors=True)
