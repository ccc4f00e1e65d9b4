"""Projects and sessions: experiment context, snapshots and branches, provenance, replay and comparison."""

from __future__ import annotations

from typing import Any

from scagent.session.context import ExperimentContext, load_context, validate_context
from scagent.session.project import PARADIGMS, Project, ProjectConfig
from scagent.session.session import RunRecord, Session, StepRecord

#: The experiment context of a project (minSCe); the same class as ExperimentContext.
ProjectContext = ExperimentContext

__all__ = [
    "PARADIGMS",
    "ExperimentContext",
    "Project",
    "ProjectConfig",
    "ProjectContext",
    "ProjectLock",
    "Refs",
    "RunRecord",
    "Session",
    "SnapshotStore",
    "StepRecord",
    "load_context",
    "validate_context",
]

_LAZY = {
    "SnapshotStore": "scagent.session.store",
    "Refs": "scagent.session.refs",
    "ProjectLock": "scagent.session.lock",
}


def __getattr__(name: str) -> Any:
    # The store, refs and lock load on first use: opening a project for its context
    # alone should not import the storage layer.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scagent.session' has no attribute {name!r}")
