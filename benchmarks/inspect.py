"""Inspector time and peak memory on large simulated data; prints JSON.

Usage: python -m benchmarks.inspect [--cells 100000,1000000] [--genes 20000]

For each size: the inspector's wall time and its peak of newly allocated memory
(tracemalloc, which sees numpy buffers), beside a baseline that checks the same
property ("are these integer counts?") by a full pass over X.data, as a naive
tool would. Targets at 1M cells: under 2 s and under 1 GB beyond the data.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc

import numpy as np

from scagent.data import inspect_adata, simulate


def _measure(fn):
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def run(n_cells: int, n_genes: int) -> dict:
    t0 = time.perf_counter()
    adata = simulate(n_cells, n_genes, n_batches=2, n_conditions=2, seed=0)
    simulate_s = time.perf_counter() - t0
    X = adata.X
    data_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    inspect_adata(adata)  # warm imports and caches
    state, seconds, peak = _measure(lambda: inspect_adata(adata))
    _, full_seconds, full_peak = _measure(lambda: bool(np.all(X.data == np.round(X.data))))
    return {
        "n_cells": n_cells,
        "n_genes": n_genes,
        "nnz": int(X.nnz),
        "data_bytes": int(data_bytes),
        "simulate_s": round(simulate_s, 2),
        "inspect_s": round(seconds, 4),
        "inspect_peak_bytes": int(peak),
        "inspect_peak_mib": round(peak / 2**20, 1),
        "baseline_full_integer_check_s": round(full_seconds, 4),
        "baseline_full_integer_check_peak_mib": round(full_peak / 2**20, 1),
        "ratio_inspect_vs_full_check": round(seconds / full_seconds, 3) if full_seconds else None,
        "x_state": state.x_state,
        "targets_met": {"time_under_2s": seconds < 2.0, "memory_under_1GB": peak < 2**30},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", default="100000,1000000")
    parser.add_argument("--genes", type=int, default=20000)
    args = parser.parse_args()
    results = [run(int(n), args.genes) for n in args.cells.split(",")]
    print(
        json.dumps(
            {"benchmark": "inspect", "machine": platform.machine(), "results": results}, indent=2
        )
    )


if __name__ == "__main__":
    main()
