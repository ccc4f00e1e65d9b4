"""Time and size the simulator: one JSON line per case (time, peak RSS, non-zeros, bytes).

Each case runs in a fresh Python process, so its peak resident memory is its own.

    python -m benchmarks.simulate            # 10k and 100k cells x 20k genes
    python -m benchmarks.simulate --full     # ... and 1M cells x 20k genes
    python -m benchmarks.simulate --cells 50000 --genes 5000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def run_case(n_cells: int, n_genes: int, chunk_size: int, seed: int) -> dict:
    """Simulate once in this process and measure it."""
    from scagent.data.simulate import simulate

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_start = time.process_time()
    start = time.perf_counter()
    adata = simulate(n_cells, n_genes, chunk_size=chunk_size, seed=seed)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # wall time suffers on a shared machine
    X = adata.X
    matrix_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "n_cells": n_cells,
        "n_genes": n_genes,
        "chunk_size": chunk_size,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "cells_per_second": round(n_cells / seconds),
        "nnz": int(X.nnz),
        "nnz_per_cell": round(X.nnz / n_cells, 1),
        "total_counts_per_cell": round(float(X.sum()) / n_cells, 1),
        "matrix_bytes": int(matrix_bytes),
        "matrix_gib": round(matrix_bytes / 2**30, 3),
        "peak_rss_gib": round(peak / 2**20, 3),
        "rss_after_imports_gib": round(rss_before / 2**20, 3),
        "peak_over_matrix": round(peak * 1024 / matrix_bytes, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run 1,000,000 cells")
    parser.add_argument("--cells", type=int, nargs="*", help="cell counts to run instead")
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()

    if args.one is not None:
        print(json.dumps(run_case(args.one, args.genes, args.chunk_size, args.seed)))
        return
    cells = args.cells or ([10_000, 100_000] + ([1_000_000] if args.full else []))
    for n in cells:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.simulate", "--one", str(n), "--genes", str(args.genes),
             "--chunk-size", str(args.chunk_size), "--seed", str(args.seed)],
            capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        if out.returncode != 0:
            print(json.dumps({"n_cells": n, "error": out.stderr.strip().splitlines()[-1:]}))
        else:
            print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
