"""Time and size the spine: the standard pipeline called directly through scanpy, then through Session.run.

Prints one JSON object: per-step and total seconds of both paths, the session's overhead
(its time outside the tools' own functions: inspection, working copy, snapshot, commit)
as a share of the scanpy time, the bytes the snapshot of a step adding one obs column
writes against the size of a full .h5ad, and the size of the whole stored history
against one .h5ad of the final state.

Usage::

    python -m benchmarks.spine [--cells 50000] [--genes 20000] [--seed 0]

Targets (issue 3): overhead <= 10 % of the scanpy time; a one-column step's snapshot
< 1 % of the .h5ad; the 9-step history <= 1.5x one .h5ad of the final state.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PIPELINE = [
    "qc_metrics",
    "filter_cells",
    "normalize",
    "hvg",
    "pca",
    "neighbors",
    "leiden",
    "umap",
    "markers",
]


def _mad_outliers(values: np.ndarray, nmads: float, upper_only: bool = False) -> np.ndarray:
    from scipy.stats import median_abs_deviation

    med, mad = np.median(values), median_abs_deviation(values)
    if upper_only:
        return values > med + nmads * mad
    return (values < med - nmads * mad) | (values > med + nmads * mad)


def scanpy_pipeline(adata) -> dict[str, float]:
    """The same nine steps as the core tools' defaults, called directly; seconds per step."""
    import scanpy as sc

    times: dict[str, float] = {}

    def timed(name: str):
        class _Timer:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                times[name] = time.perf_counter() - self.start

        return _Timer()

    with timed("qc_metrics"):
        names = adata.var_names.str.upper()
        adata.var["mt"] = names.str.startswith("MT-")
        adata.var["ribo"] = names.str.startswith(("RPS", "RPL"))
        adata.var["hb"] = names.str.match(r"^HB(A\d?|B|D|E\d|G\d|M|Q\d|Z)$")
        sc.pp.calculate_qc_metrics(
            adata, qc_vars=["mt", "ribo", "hb"], percent_top=[20], log1p=True, inplace=True
        )
    with timed("filter_cells"):
        obs = adata.obs
        outlier = (
            _mad_outliers(np.log1p(obs["total_counts"].to_numpy()), 5)
            | _mad_outliers(np.log1p(obs["n_genes_by_counts"].to_numpy()), 5)
            | _mad_outliers(obs["pct_counts_in_top_20_genes"].to_numpy(), 5)
            | _mad_outliers(obs["pct_counts_mt"].to_numpy(), 3, upper_only=True)
            | (obs["pct_counts_mt"].to_numpy() > 8.0)
        )
        adata._inplace_subset_obs(~outlier)
    with timed("normalize"):
        adata.layers["counts"] = adata.X.copy()
        adata.X = adata.layers["counts"].astype(np.float32)
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
    with timed("hvg"):
        sc.pp.highly_variable_genes(adata, n_top_genes=2000, flavor="seurat_v3", layer="counts")
    with timed("pca"):
        sc.pp.pca(
            adata, n_comps=50, mask_var="highly_variable", svd_solver="arpack", random_state=0
        )
    with timed("neighbors"):
        sc.pp.neighbors(adata, n_neighbors=15, use_rep="X_pca", random_state=0)
    with timed("leiden"):
        sc.tl.leiden(
            adata, resolution=1.0, flavor="igraph", n_iterations=2, directed=False, random_state=0
        )
    with timed("umap"):
        sc.tl.umap(adata, random_state=0)
    with timed("markers"):
        sc.tl.rank_genes_groups(adata, "leiden", method="wilcoxon", use_raw=False)
    return times


def h5ad_bytes(adata, folder: Path, name: str) -> int:
    """Size of ``adata`` written as a plain (uncompressed, anndata's default) .h5ad."""
    path = folder / name
    adata.write_h5ad(path)
    size = path.stat().st_size
    path.unlink()
    return size


def _scipy_compat() -> None:
    """Give scipy's csr_array the ``getnnz`` that scanpy 1.11's neighbors still calls.

    scipy 1.17 dropped ``csr_array.getnnz``; pynndescent returns a csr_array, so
    ``sc.pp.neighbors`` fails on 8192 cells or more. The shim applies to both paths alike.
    """
    import scipy.sparse as sp

    if not hasattr(sp.csr_array, "getnnz"):
        sp.csr_array.getnnz = lambda self, axis=None: self._getnnz(axis=axis)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="Scratch folder (default: a temp dir)."
    )
    args = parser.parse_args(argv)

    import scanpy as sc

    from scagent.data import simulate
    from scagent.session import Session

    sc.settings.verbosity = 0
    _scipy_compat()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="scagent-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    raw = simulate(n_cells=args.cells, n_genes=args.genes, seed=args.seed)
    simulate_s = time.perf_counter() - t

    # Warm numba / pynndescent / igraph once on a subset so that neither path pays JIT
    # compilation; 10,000 cells, because below 8192 scanpy's neighbors use brute force
    # and pynndescent would be compiled inside the first timed run.
    scanpy_pipeline(raw[: min(10_000, raw.n_obs)].copy())

    direct = raw.copy()
    scanpy_times = scanpy_pipeline(direct)
    direct_clusters = int(direct.obs["leiden"].nunique())
    del direct
    gc.collect()

    t = time.perf_counter()
    session = Session.init(workdir / "project", data=raw)
    import_s = time.perf_counter() - t
    del raw
    gc.collect()

    steps = []
    for tool_id in PIPELINE:
        t = time.perf_counter()
        record = session.run(tool_id)
        wall = time.perf_counter() - t
        outside_tool = wall - record.timings["tool"]
        manifest = session.store.manifest(record.snapshot_id)
        parent = session.store.manifest(manifest.parent)
        changed = sorted(k for k, v in manifest.parts.items() if parent.parts.get(k) != v)
        steps.append(
            {
                "tool": tool_id,
                "wall_s": wall,
                "tool_s": record.timings["tool"],
                "overhead_s": outside_tool,
                "stages_s": record.timings,
                "bytes_written": record.bytes_written,
                "parts_changed": len(changed),
                "parts_total": len(manifest.parts),
            }
        )
        if tool_id == "leiden":
            after_leiden = session.adata
            leiden_snapshot_bytes = record.bytes_written
            leiden_parts = changed
            h5ad_after_leiden = h5ad_bytes(after_leiden, workdir, "after_leiden.h5ad")
            del after_leiden

    final = session.adata
    h5ad_final = h5ad_bytes(final, workdir, "final.h5ad")
    history = session.history()
    store_bytes = session.store.stored_bytes([s.snapshot_id for s in history])
    steps_only = session.store.stored_bytes([s.snapshot_id for s in history[1:]])

    scanpy_total = sum(scanpy_times.values())
    session_total = sum(s["wall_s"] for s in steps)
    overhead_total = sum(s["overhead_s"] for s in steps)
    stage_totals = {
        k: sum(s["stages_s"][k] for s in steps) for k in ("inspect", "copy", "snapshot", "commit")
    }
    result = {
        "cells": args.cells,
        "genes": args.genes,
        "cells_after_filter": int(final.n_obs),
        "clusters": {"scanpy": direct_clusters, "session": int(final.obs["leiden"].nunique())},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "simulate_s": simulate_s,
        "import_s": import_s,
        "scanpy_s": scanpy_times,
        "scanpy_total_s": scanpy_total,
        "session_steps": steps,
        "session_total_s": session_total,
        "session_vs_scanpy": session_total / scanpy_total - 1.0,
        "overhead_total_s": overhead_total,
        "overhead_by_stage_s": stage_totals,
        "overhead_ratio": overhead_total / scanpy_total,
        "overhead_target_met": overhead_total / scanpy_total <= 0.10,
        "one_column_step": {
            "step": "leiden",
            "parts_changed": leiden_parts,
            "snapshot_bytes": leiden_snapshot_bytes,
            "h5ad_bytes": h5ad_after_leiden,
            "ratio": leiden_snapshot_bytes / h5ad_after_leiden,
            "target_met": leiden_snapshot_bytes / h5ad_after_leiden < 0.01,
        },
        "history": {
            "snapshots": len(history),
            "store_bytes_with_import": store_bytes,
            "store_bytes_9_steps": steps_only,
            "h5ad_final_bytes": h5ad_final,
            "ratio": store_bytes / h5ad_final,
            "target_met": store_bytes / h5ad_final <= 1.5,
        },
        "workdir": str(workdir),
    }
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
