"""QC -> normalize -> HVG -> PCA out of core (dask) at 1M cells vs in-memory scanpy; JSON out.

Each case runs in a fresh Python process; its peak memory is the peak of the summed RSS of
that process and all its descendants (LocalCluster workers included), sampled every 0.2 s.
The dataset is simulated once, in pieces of ``--piece`` cells (each piece its own seed,
like samples of an atlas), and joined on disk with ``anndata.experimental.concat_on_disk``
into a .zarr under ``--data-dir`` (default /tmp), so that writing it never needs the whole
matrix in memory either.

    python -m benchmarks.scale                      # 1M x 20k (500k if < 14 GiB is free)
    python -m benchmarks.scale --cells 100000 --inmem-cells 50000 --cluster-cells 100000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

GIB = 2**30


class PeakRSS:
    """Peak of the summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self._proc, *self._proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # a worker that exited between listing and reading
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def make_dataset(n_cells: int, n_genes: int, piece: int, folder: Path) -> Path:
    """Simulate ``n_cells`` in pieces and join them on disk into one .zarr (cached)."""
    from anndata.experimental import concat_on_disk

    from scagent.data import simulate

    target = folder / f"sim_{n_cells}x{n_genes}.zarr"
    if (target / "zarr.json").exists() or (target / ".zgroup").exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    pieces = []
    for i, start in enumerate(range(0, n_cells, piece)):
        path = folder / f"piece_{n_genes}_{i}_{min(piece, n_cells - start)}.h5ad"
        if not path.exists():
            adata = simulate(min(piece, n_cells - start), n_genes, seed=i)
            adata.obs_names = [f"p{i}_{name}" for name in adata.obs_names]
            adata.write_h5ad(path)
            del adata
        pieces.append(path)
    tmp = target.with_name(target.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        concat_on_disk(pieces, tmp, max_loaded_elems=50_000_000)
    tmp.rename(target)
    return target


def _slice_dataset(source: Path, n_cells: int) -> Path:
    """The first ``n_cells`` of ``source`` as an .h5ad (for the in-memory case)."""
    import anndata as ad

    from scagent.scale import read_lazy

    target = source.with_name(f"{source.stem}_first{n_cells}.h5ad")
    if target.exists():
        return target
    lazy = read_lazy(source)[:n_cells]
    X = lazy.X.compute()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(X=X, obs=lazy.obs.copy(), var=lazy.var.copy()).write_h5ad(target)
    return target


def run_case(
    mode: str, path: Path, workers: int, chunk_cells: int, n_top: int, n_comps: int
) -> dict:
    """One measurement, in this (fresh) process."""
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    with PeakRSS() as rss:
        if mode == "memory":
            import anndata as ad
            import scanpy as sc

            from scagent.tools.qc import qc_metrics

            t = time.perf_counter()
            adata = ad.read_h5ad(path)
            steps = {"read": time.perf_counter() - t}
            t = time.perf_counter()
            qc_metrics(adata)
            steps["qc"] = time.perf_counter() - t
            t = time.perf_counter()
            adata.layers["counts"] = adata.X.copy()
            sc.pp.normalize_total(adata, target_sum=1e4)
            sc.pp.log1p(adata)
            steps["normalize"] = time.perf_counter() - t
            t = time.perf_counter()
            sc.pp.highly_variable_genes(adata, n_top_genes=n_top, flavor="seurat")
            steps["hvg"] = time.perf_counter() - t
            t = time.perf_counter()
            sc.pp.pca(adata, n_comps=n_comps, mask_var="highly_variable")
            steps["pca"] = time.perf_counter() - t
            summary = {
                "n_cells": adata.n_obs,
                "n_genes": adata.n_vars,
                "variance_ratio": [float(v) for v in adata.uns["pca"]["variance_ratio"][:5]],
                "seconds": {k: round(v, 2) for k, v in steps.items()},
            }
        else:
            from scagent.scale import preprocess_lazy, read_lazy, use_cluster

            with use_cluster(workers=workers or None):
                adata = read_lazy(path, chunk_cells=chunk_cells)
                summary = preprocess_lazy(adata, n_top_genes=n_top, n_comps=n_comps)
    seconds = time.perf_counter() - start
    return {
        "mode": mode
        if mode == "memory"
        else ("dask-threads" if not workers else "dask-localcluster"),
        "workers": workers,
        "input": str(path),
        **summary,
        "total_seconds": round(seconds, 1),
        "peak_rss_gib": round(rss.peak / GIB, 2),
    }


def _child(args: argparse.Namespace, mode: str, path: Path, workers: int) -> dict:
    cmd = [
        sys.executable, "-m", "benchmarks.scale", "--one", mode, "--path", str(path),
        "--workers", str(workers), "--chunk-cells", str(args.chunk_cells),
        "--n-top-genes", str(args.n_top_genes), "--n-comps", str(args.n_comps),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return {"mode": mode, "workers": workers, "error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=None, help="default 1M (500k if RAM is short)")
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--inmem-cells", type=int, default=200_000)
    parser.add_argument("--cluster-cells", type=int, default=None, help="default: --cells")
    parser.add_argument("--piece", type=int, default=100_000)
    parser.add_argument("--chunk-cells", type=int, default=10_000)
    parser.add_argument("--n-top-genes", type=int, default=2000)
    parser.add_argument("--n-comps", type=int, default=50)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/scagent_scale_bench"))
    parser.add_argument("--skip", nargs="*", default=[], help="memory, threads, cluster1, cluster2")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = run_case(
            args.one, args.path, args.workers, args.chunk_cells, args.n_top_genes, args.n_comps
        )
        print(json.dumps(result))
        return

    import psutil

    available = psutil.virtual_memory().available
    n_cells = args.cells
    note = None
    if n_cells is None:
        n_cells = 1_000_000 if available >= 14 * GIB else 500_000
        if n_cells < 1_000_000:
            note = f"only {available / GIB:.1f} GiB available (< 14): ran 500k cells, not 1M"
    t = time.perf_counter()
    data = make_dataset(n_cells, args.genes, args.piece, args.data_dir)
    make_seconds = time.perf_counter() - t
    cases = []
    if "threads" not in args.skip:
        cases.append(_child(args, "dask", data, 0))
    cluster_cells = args.cluster_cells or n_cells
    cluster_data = data if cluster_cells == n_cells else _slice_dataset(data, cluster_cells)
    for w in (1, 2):
        if f"cluster{w}" not in args.skip:
            cases.append(_child(args, "dask", cluster_data, w))
    if "memory" not in args.skip:
        cases.append(_child(args, "memory", _slice_dataset(data, args.inmem_cells), 0))
    print(
        json.dumps(
            {
                "benchmark": "scale",
                "machine": {
                    "cpus": psutil.cpu_count(),
                    "total_gib": round(psutil.virtual_memory().total / GIB, 1),
                    "available_gib_at_start": round(available / GIB, 1),
                },
                "dataset": {"path": str(data), "n_cells": n_cells, "n_genes": args.genes,
                            "make_seconds": round(make_seconds, 1)},
                "note": note,
                "cases": cases,
            },
            indent=2,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
