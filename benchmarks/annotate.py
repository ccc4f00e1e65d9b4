"""Benchmark cluster annotation: accuracy (dev set, simulated, pbmc68k) and speed (50k cells, cached LLM re-run).

Prints one JSON object. The dev set (``annotation_dev.csv``) is a held-out benchmark: it
is scored with the README's rule (:func:`scagent.knowledge.score_prediction`) and never
used to choose labels.

Usage::

    python -m benchmarks.annotate [--data ../shared/data] [--cells 50000] [--skip-speed]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

# benchmarks/inspect.py would shadow the standard library's inspect module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

#: bulk_labels of pbmc68k_reduced -> CL term (the truth side of the pbmc68k benchmark).


def score_dev_set(dev: pd.DataFrame, predict) -> dict:
    """Score ``predict(genes, species, tissue) -> CL id or None`` on the dev set (README rule)."""
    from scagent.knowledge import score_prediction

    scores = []
    for row in dev.itertuples():
        genes = [g.strip() for g in str(row.markers).split(",") if g.strip()]
        scores.append(
            score_prediction(predict(genes, row.species, row.tissue), row.cl_id, row.broad_type)
        )
    s = pd.Series(scores)
    return {
        "n": len(s),
        "mean": round(float(s.mean()), 4),
        "share_1": round(float((s == 1.0).mean()), 4),
        "share_0.5": round(float((s == 0.5).mean()), 4),
        "share_0": round(float((s == 0.0).mean()), 4),
    }


def dev_benchmarks(data: Path) -> dict:
    from scagent.annotate import OfflineAnnotator, OfflineSettings
    from scagent.knowledge import MarkerDB

    dev = pd.read_csv(data / "annotation_dev.csv")
    bundled = MarkerDB.bundled()
    merged = bundled.merge(MarkerDB.load(data / "PanglaoDB_markers_27_Mar_2020.tsv")).merge(
        MarkerDB.load(data / "ScTypeDB_full.xlsx")
    )
    panglao = MarkerDB.load(data / "PanglaoDB_markers_27_Mar_2020.tsv")
    out: dict = {"reference": {"gpt4": 0.47, "gpt35": 0.41, "panglaodb_overlap_baseline": 0.43}}

    def offline(db, **kw):
        ann = OfflineAnnotator(db, OfflineSettings(**kw))

        def predict(genes, species, tissue):
            return ann.predict(genes, species=species, tissue=tissue).ontology_id

        return predict

    def top1(db, use_tissue=True):
        def predict(genes, species, tissue):
            c = db.score_candidates(genes, species=species, tissue=tissue if use_tissue else None)
            return str(c["cell_ontology_id"].iloc[0]) or None if len(c) else None

        return predict

    t0 = time.perf_counter()
    out["offline_bundled"] = score_dev_set(dev, offline(bundled))
    out["offline_bundled"]["seconds"] = round(time.perf_counter() - t0, 3)
    out["offline_bundled_panglaodb_sctype"] = score_dev_set(dev, offline(merged))
    out["offline_panglaodb_only"] = score_dev_set(dev, offline(panglao))
    # Ablations: what each part of the engine adds.
    out["ablation"] = {
        "no_tissue": score_dev_set(
            dev, lambda g, s, t, a=OfflineAnnotator(bundled): a.predict(g, species=s).ontology_id
        ),
        "top1_scorer_only_with_tissue": score_dev_set(dev, top1(bundled)),
        "top1_scorer_only_no_tissue": score_dev_set(dev, top1(bundled, use_tissue=False)),
        "no_tissue_type_preference": score_dev_set(
            dev, offline(bundled, prefer_tissue_types=False)
        ),
    }
    # Calibration: mean score per confidence band (does confidence mean anything?).
    ann = OfflineAnnotator(bundled)
    from scagent.knowledge import score_prediction

    conf, sc = [], []
    for row in dev.itertuples():
        genes = [g.strip() for g in str(row.markers).split(",")]
        p = ann.predict(genes, species=row.species, tissue=row.tissue)
        conf.append(p.confidence)
        sc.append(score_prediction(p.ontology_id, row.cl_id, row.broad_type))
    frame = pd.DataFrame({"conf": conf, "score": sc})
    frame["band"] = pd.cut(frame["conf"], [-0.01, 0.05, 0.25, 0.5, 0.75, 1.0])
    out["calibration"] = {
        str(k): {"n": len(g), "mean_score": round(float(g["score"].mean()), 3)}
        for k, g in frame.groupby("band", observed=True)
    }
    return out


def simulated_benchmark() -> dict:
    from scagent.annotate import OfflineAnnotator
    from scagent.annotate.markers import markers_from_adata
    from scagent.data import simulate
    from scagent.data._celltypes import simulator_cell_types
    from scagent.knowledge import MarkerDB
    from scagent.knowledge import ontology as onto

    ann = OfflineAnnotator(MarkerDB.bundled())
    out = {}
    for species in ("human", "mouse"):
        types = simulator_cell_types(species)
        truth = dict(zip(types["cell_type"], types["cell_ontology_id"], strict=True))
        adata = simulate(3000, 2000, cell_types=list(truth), species=species, seed=0)
        markers, _ = markers_from_adata(adata, "cell_type")
        right = exact = 0
        wrong = []
        for m in markers:
            p = ann.predict(m.genes, species=species, negative_genes=m.negative_genes)
            t = truth[m.cluster_id]
            d = onto.distance(p.ontology_id, t) if p.ontology_id else None
            ok = p.ontology_id == t or (
                d is not None and d <= 3 and not onto.is_generic(p.ontology_id)
            )
            right += ok
            exact += p.ontology_id == t
            if not ok:
                wrong.append(f"{m.cluster_id} -> {p.label}")
        out[species] = {
            "clusters": len(markers),
            "right_share": round(right / len(markers), 4),
            "exact_share": round(exact / len(markers), 4),
            "wrong": wrong,
            "definition": "right = the true CL term, or an ancestor/descendant within 3 steps",
        }
    return out


def pbmc68k_benchmark() -> dict:
    from scagent.annotate.evaluate import pbmc68k_broad_agreement

    result = pbmc68k_broad_agreement("louvain")
    result["broad_type_agreement_cells"] = round(result["broad_type_agreement_cells"], 4)
    return result


def speed_benchmark(n_cells: int) -> dict:
    import scanpy as sc

    from scagent.annotate import annotate_anndata
    from scagent.data import simulate
    from scagent.data._celltypes import simulator_cell_types
    from scagent.llm import get_client
    from scagent.llm.testing import ScriptedLLMServer, json_reply

    types = list(simulator_cell_types("human")["cell_type"])
    adata = simulate(n_cells, 2000, cell_types=types, seed=0)
    # 30 clusters: split 8 of the 22 types in two, as an over-clustering would.
    rng = np.random.default_rng(0)
    ct = adata.obs["cell_type"].astype(str).to_numpy()
    split = np.isin(ct, types[:8]) & (rng.random(adata.n_obs) < 0.5)
    adata.obs["cluster"] = pd.Categorical(np.where(split, [f"{c} b" for c in ct], ct))
    out: dict = {"cells": int(adata.n_obs), "clusters": int(adata.obs["cluster"].nunique())}
    t0 = time.perf_counter()
    work = adata.copy()
    sc.pp.normalize_total(work, target_sum=1e4)
    sc.pp.log1p(work)
    sc.tl.rank_genes_groups(work, "cluster", method="wilcoxon", n_genes=None)
    adata.uns["rank_genes_groups"] = work.uns["rank_genes_groups"]
    out["marker_computation_s"] = round(time.perf_counter() - t0, 3)
    del work
    t0 = time.perf_counter()
    report = annotate_anndata(adata, "cluster", species="human")
    total = time.perf_counter() - t0
    out["offline_total_s"] = round(total, 3)
    out["offline_beyond_markers_s"] = round(total - report.stats.timings["markers_s"], 3)
    out["offline_timings"] = report.stats.timings

    def answer(request):
        import re

        text = json.dumps(request.body)
        ids = list(dict.fromkeys(re.findall(r'\\"cluster_id\\": \\"([^\\"]+)\\"', text)))
        return json_reply(
            "openai",
            {
                "clusters": [
                    {
                        "cluster_id": i,
                        "label": "B cell",
                        "confidence": 0.5,
                        "supporting_markers": [],
                    }
                    for i in ids
                ]
            },
        )

    cache = Path(tempfile.mkdtemp(prefix="scagent_annot_cache_"))
    with ScriptedLLMServer() as server:
        server.enqueue("openai", *[answer] * 10)
        spec = "openai-compatible:bench-model"
        first = annotate_anndata(
            adata,
            "cluster",
            species="human",
            llm=get_client(spec, base_url=server.openai_base_url, cache_dir=cache),
            key_added="llm_annotation",
        )
        t0 = time.perf_counter()
        again = annotate_anndata(
            adata,
            "cluster",
            species="human",
            llm=get_client(spec, base_url=server.openai_base_url, cache_dir=cache),
            key_added="llm_annotation",
        )
        t_cached = time.perf_counter() - t0
    out["llm_first_run_requests"] = first.stats.llm_requests
    out["llm_cached_rerun_requests"] = again.stats.llm_requests
    out["llm_cached_rerun_cache_hits"] = again.stats.cache_hits
    out["llm_cached_rerun_s"] = round(t_cached, 3)
    out["llm_cached_rerun_beyond_markers_s"] = round(t_cached - again.stats.timings["markers_s"], 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--cells", type=int, default=50_000)
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("SCAGENT_HOME", tempfile.mkdtemp(prefix="scagent_bench_"))
    warnings.filterwarnings("ignore")
    data = Path(args.data)
    out: dict = {}
    if (data / "annotation_dev.csv").is_file():
        out["dev_set"] = dev_benchmarks(data)
    out["simulated"] = simulated_benchmark()
    out["pbmc68k_louvain"] = pbmc68k_benchmark()
    if not args.skip_speed:
        out["speed"] = speed_benchmark(args.cells)
    print(json.dumps(out, indent=2, default=str))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
