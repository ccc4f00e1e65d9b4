"""Time the knowledge layer: candidate scoring per ranked list on a 100k-row DB, and the build.

Prints one JSON object. The real PanglaoDB + ScType tables hold about 20k rows, so the
scoring DB is the real rows replicated into distinct synthetic sources and tissues (the
cell types and genes stay real) until it reaches ``--rows``; this keeps the gene and
cell-type distribution of real data while reaching the size asked for.

Usage::

    python -m benchmarks.knowledge [--data ../shared/data] [--rows 100000] [--lists 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--lists", type=int, default=1000)
    ap.add_argument("--list-length", type=int, default=50)
    args = ap.parse_args(argv)
    data = Path(args.data)
    os.environ.setdefault("SCAGENT_HOME", tempfile.mkdtemp(prefix="scagent_bench_"))

    from scagent.knowledge import MarkerDB
    from scagent.knowledge.build import build_knowledge

    out: dict = {"rows_requested": args.rows}
    # Build: PanglaoDB + ScType into SCAGENT_HOME, then the default DB (bundled + built).
    t0 = time.perf_counter()
    res = build_knowledge(
        panglaodb=data / "PanglaoDB_markers_27_Mar_2020.tsv", sctype=data / "ScTypeDB_full.xlsx"
    )
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    db = MarkerDB.default()
    t_default = time.perf_counter() - t0
    t0 = time.perf_counter()
    db.prepare(["human", "mouse"])
    t_index = time.perf_counter() - t0
    out["build"] = {
        "build_seconds": round(t_build, 3),
        "load_default_seconds": round(t_default, 3),
        "index_seconds": round(t_index, 3),
        "built_rows": res.n_rows,
        "default_rows": len(db),
        "bundled_rows": len(MarkerDB.bundled()),
        "note": "build_seconds includes the first ontology load and label index (~0.5 s)",
    }

    # Scoring DB of >= rows: replicate the real rows under synthetic sources/tissues.
    base = db.table.astype(object)
    copies = max(1, int(np.ceil(args.rows / len(base))))
    tissues = ["blood", "lung", "liver", "brain", "kidney", "heart", "skin", "gi tract"]
    frames = []
    rng = np.random.default_rng(0)
    for i in range(copies):
        f = base.copy()
        f["source"] = f["source"].astype(str) + f"_rep{i}"
        if i:
            f["tissue"] = tissues[i % len(tissues)]
            f["uberon_id"] = ""
            f["weight"] = np.clip(f["weight"].astype(float) * rng.uniform(0.7, 1.0, len(f)), 0, 1)
        frames.append(f)
    big = MarkerDB(pd.concat(frames, ignore_index=True).iloc[: max(args.rows, len(base))])
    t0 = time.perf_counter()
    big.prepare(["human"])
    t_big_index = time.perf_counter() - t0
    human_genes = big.table.loc[big.table["species"] == "human", "gene"].astype(str).unique()
    # Ranked lists: mostly marker genes plus unrelated symbols, as a cluster's DE list would be.
    noise = [f"NOISE{i}" for i in range(5000)]
    lists = []
    for _ in range(args.lists):
        k = args.list_length
        real = list(rng.choice(human_genes, k // 2, replace=False))
        fake = list(rng.choice(noise, k - k // 2, replace=False))
        mixed = real + fake
        rng.shuffle(mixed)
        lists.append(mixed)
    big.score_candidates(lists[0], species="human")  # warm caches
    times = []
    for genes in lists:
        t0 = time.perf_counter()
        big.score_candidates(genes, species="human", tissue="lung", top_k=10)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    out["scoring"] = {
        "db_rows": len(big),
        "db_note": f"real PanglaoDB+ScType(+bundled) rows replicated x{copies} under synthetic sources/tissues",
        "cell_types_human": len(big._index("human").type_keys),
        "genes_human": len(big._index("human").genes),
        "index_seconds": round(t_big_index, 3),
        "lists": args.lists,
        "list_length": args.list_length,
        "median_ms": round(float(np.median(ms)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "max_ms": round(float(ms.max()), 3),
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
