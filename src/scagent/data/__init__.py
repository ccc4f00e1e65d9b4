"""Reading data, the inspector, bringing data into the state a step needs, and the simulator."""

from __future__ import annotations

from scagent.data.inspect import inspect_adata, summarize_state
from scagent.data.io import read, read_many
from scagent.data.modalities import (
    modality_counts,
    read_with_feature_types,
    set_modality_counts,
    split_feature_types,
)
from scagent.data.prepare import ensure_ready_for, get_counts
from scagent.data.simulate import simulate, simulator_cell_types
from scagent.data.state import Breadcrumbs, ColumnInfo, DataState, DEResult, XState

__all__ = [
    "Breadcrumbs",
    "ColumnInfo",
    "DEResult",
    "DataState",
    "XState",
    "ensure_ready_for",
    "get_counts",
    "inspect_adata",
    "modality_counts",
    "read",
    "read_many",
    "read_with_feature_types",
    "set_modality_counts",
    "simulate",
    "simulator_cell_types",
    "split_feature_types",
    "summarize_state",
]
