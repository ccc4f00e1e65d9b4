"""Out-of-core and distributed single-cell preprocessing: lazy reads, a dask pipeline, clusters."""

from __future__ import annotations

from scagent.scale.cluster import connect, local_cluster, use_cluster
from scagent.scale.lazy import (
    available_memory,
    check_fits_in_memory,
    estimate_in_memory_bytes,
    is_lazy,
    read_checked,
    read_lazy,
    write_lazy,
)
from scagent.scale.pipeline import lazy_qc_metrics, preprocess_lazy

__all__ = [
    "available_memory",
    "check_fits_in_memory",
    "connect",
    "estimate_in_memory_bytes",
    "is_lazy",
    "lazy_qc_metrics",
    "local_cluster",
    "preprocess_lazy",
    "read_checked",
    "read_lazy",
    "use_cluster",
    "write_lazy",
]
