"""SAE benchmark: planted-truth recovery, pbmc68k enrichment vs a random-direction null,
CPU training throughput against a plain-PyTorch TopK baseline, and peak memory when
training streams from a 5M x 512 on-disk cache. Prints one JSON object.

Run from the repository root: ``python -m benchmarks.sae`` (``--quick`` for a smaller
memory test, ``--skip-memory`` to leave it out).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def planted_truth() -> dict:
    from scagent.sae.train import evaluate, make_config, train_sae

    rng = np.random.default_rng(0)
    n, d_in, n_dir, k_true = 20000, 64, 128, 4
    directions = rng.standard_normal((n_dir, d_in))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    idx = np.argsort(rng.random((n, n_dir)), axis=1)[:, :k_true]
    X = np.einsum("nk,nkd->nd", rng.uniform(0.5, 2.0, (n, k_true)), directions[idx])
    X = (X + 0.02 * rng.standard_normal(X.shape)).astype(np.float32)
    t = time.perf_counter()
    cfg = make_config(
        d_sae=256, k=8, steps=1500, batch_size=512, lr=3e-3, warmup_steps=50, dead_after=20000
    )
    sae = train_sae(X, cfg).sae
    W = sae.W_dec.detach().numpy()
    cos = (directions @ (W / np.linalg.norm(W, axis=1, keepdims=True)).T).max(axis=1)
    ev = evaluate(sae, X)
    return {
        "n_rows": n,
        "d_in": d_in,
        "n_planted": n_dir,
        "d_sae": 256,
        "k": 8,
        "mean_best_cosine": float(cos.mean()),
        "min_best_cosine": float(cos.min()),
        "share_recovered_0.9": float((cos >= 0.9).mean()),
        "fvu": ev["fvu"],
        "seconds": time.perf_counter() - t,
        "pass": bool(cos.mean() >= 0.9 and ev["fvu"] < 0.1),
    }


def pbmc_enrichment() -> dict:
    import scanpy as sc

    from scagent.sae.activations import cache_activations, parse_source
    from scagent.sae.features import compute_features
    from scagent.sae.train import make_config, train_sae
    from scagent.sae.validate import validate_features

    adata = sc.datasets.pbmc68k_reduced()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec, steps in (("obsm:X_pca", 800), ("raw", 1500)):
            for gene_score in ("decoder", "correlation"):
                cache = cache_activations(
                    parse_source(spec), adata, Path(tmp) / spec.replace(":", "_")
                )
                cfg = make_config(
                    d_sae=128,
                    k=8,
                    steps=steps,
                    batch_size=256,
                    lr=2e-3,
                    warmup_steps=50,
                    dead_after=20000,
                    threads=1,
                )
                trained = train_sae(cache, cfg)
                feats = compute_features(
                    trained.sae,
                    cache,
                    adata,
                    groupby="bulk_labels",
                    gene_score=gene_score,
                    key_added=None,
                )
                s = validate_features(feats, trained.sae, cache, adata).summary
                out[f"{spec}/{gene_score}"] = {
                    "fvu": trained.metrics["final"]["fvu"],
                    "share_significant": s["share_significant"],
                    "null_share_significant": s["null_share_significant"],
                    "margin": s["margin"],
                    "share_specific_above_null": s["share_specific_above_null"],
                    "null_share_specific_above_null": s["null_share_specific_above_null"],
                }
    return out


def throughput(
    d_in: int = 512,
    d_sae: int = 8192,
    k: int = 64,
    batch: int = 4096,
    steps: int = 5,
    rounds: int = 2,
) -> dict:
    import torch

    from scagent.sae.activations import ActivationBatch, write_cache
    from scagent.sae.train import make_config, train_sae

    rng = np.random.default_rng(0)
    n_rows = batch * (steps + 2)
    with tempfile.TemporaryDirectory() as tmp:
        cache = write_cache(
            (
                ActivationBatch(
                    np.arange(s, s + batch).astype(str),
                    rng.standard_normal((batch, d_in), dtype=np.float32),
                )
                for s in range(0, n_rows, batch)
            ),
            Path(tmp) / "c",
        )
        x = torch.from_numpy(rng.standard_normal((batch, d_in), dtype=np.float32))

        def baseline() -> float:
            # The plain PyTorch TopK SAE step everyone writes first.
            torch.manual_seed(0)
            W_enc = torch.nn.Parameter(torch.randn(d_in, d_sae) / d_in**0.5)
            b_enc = torch.nn.Parameter(torch.zeros(d_sae))
            W_dec = torch.nn.Parameter(W_enc.data.T.clone())
            b_dec = torch.nn.Parameter(torch.zeros(d_in))
            opt = torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=1e-4)
            times = []
            for _ in range(steps + 1):
                t = time.perf_counter()
                pre = (x - b_dec) @ W_enc + b_enc
                v, i = pre.topk(k, dim=-1)
                acts = torch.zeros_like(pre).scatter_(-1, i, v.relu())
                loss = (acts @ W_dec + b_dec - x).pow(2).sum(-1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - t)
            return batch / float(np.median(times[1:]))

        def ours() -> float:
            cfg = make_config(
                d_sae=d_sae, k=k, batch_size=batch, steps=steps + 1, log_every=1, warmup_steps=1
            )
            hist = train_sae(cache, cfg).metrics["history"]
            return float(np.median([h["acts_per_s"] for h in hist[1:]]))

        base, mine = [], []
        for _ in range(rounds):  # interleaved, so that load from other processes hits both alike
            base.append(baseline())
            mine.append(ours())
    return {
        "d_in": d_in,
        "d_sae": d_sae,
        "k": k,
        "batch_size": batch,
        "threads": torch.get_num_threads(),
        "baseline_acts_per_s": max(base),
        "scagent_acts_per_s": max(mine),
        "ratio": max(mine) / max(base),
        "pass": max(mine) / max(base) >= 0.9,
        "note": "scagent includes reading batches from the disk cache, AuxK bookkeeping, decoder-norm projection",
    }


# Peak RSS of this process's memory (VmHWM): ru_maxrss would include the parent's peak,
# which a child inherits across fork on Linux.
_HWM = """
def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
"""

_WRITE = (
    _HWM
    + """
import sys, numpy as np, time
from pathlib import Path
from scagent.sae.activations import ActivationBatch, write_cache
n, d, folder = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
def gen():
    rng = np.random.default_rng(0)
    dirs = rng.standard_normal((256, d)).astype(np.float32)
    for s in range(0, n, 65536):
        m = min(65536, n - s)
        idx = rng.integers(0, 256, (m, 4))
        x = dirs[idx].sum(1) + 0.05 * rng.standard_normal((m, d), dtype=np.float32)
        yield ActivationBatch(np.arange(s, s + m).astype(str), x)
t = time.perf_counter()
write_cache(gen(), folder, chunk_rows=65536)
print(time.perf_counter() - t, hwm_kb())
"""
)

_TRAIN = (
    _HWM
    + """
import sys, time
from scagent.sae.activations import ActivationCache
from scagent.sae.train import make_config, train_sae
cache = ActivationCache(sys.argv[1])
steps = cache.n_rows // 4096
t = time.perf_counter()
r = train_sae(cache, make_config(d_sae=512, k=32, batch_size=4096, steps=steps, log_every=max(1, steps // 5)))
print(time.perf_counter() - t, hwm_kb(), r.metrics["final"]["fvu"], steps)
"""
)


def memory(n_rows: int = 5_000_000, d_in: int = 512) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cache"
        w = subprocess.run(
            [sys.executable, "-c", _WRITE, str(n_rows), str(d_in), str(folder)],
            capture_output=True,
            text=True,
            check=True,
        )
        w_s, w_rss = w.stdout.split()
        disk = sum(p.stat().st_size for p in folder.iterdir())
        t = subprocess.run(
            [sys.executable, "-c", _TRAIN, str(folder)], capture_output=True, text=True, check=True
        )
        t_s, t_rss, fvu, steps = t.stdout.split()
    return {
        "n_rows": n_rows,
        "d_in": d_in,
        "cache_bytes": disk,
        "write_seconds": float(w_s),
        "write_peak_rss_gb": int(w_rss) / 2**20,
        "train_steps": int(steps),
        "train_rows_seen": int(steps) * 4096,
        "train_seconds": float(t_s),
        "train_peak_rss_gb": int(t_rss) / 2**20,
        "train_fvu": float(fvu),
        "pass": int(t_rss) / 2**20 < 4.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="500k rows for the memory test")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--only", default="planted,pbmc,throughput,memory", help="comma-separated parts to run"
    )
    args = parser.parse_args()
    parts = set(args.only.split(","))
    result: dict = {}
    if "planted" in parts:
        result["planted_truth"] = planted_truth()
    if "pbmc" in parts:
        result["pbmc68k_enrichment"] = pbmc_enrichment()
    if "throughput" in parts:
        result["throughput_cpu"] = throughput()
    if "memory" in parts and not args.skip_memory:
        result["memory"] = memory(500_000 if args.quick else 5_000_000)
    result["peak_rss_gb_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
