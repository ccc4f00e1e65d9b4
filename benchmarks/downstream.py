"""Score the downstream tools against simulated truth: pseudobulk vs cell-level DE, a null, and composition.

1. Two conditions, replicated samples, known DE genes (``simulate(n_conditions=2, ...)``):
   pseudobulk DESeq2 (``pseudobulk_de``) and cell-level Wilcoxon (condition vs condition
   within each cell type, the pseudoreplicated analysis) are scored side by side: recall
   of the true DE genes at FDR 0.05 and the false discovery proportion (FDP) of the calls.
2. The same design with no true DE gene: the share of genes each method calls at p < 0.05
   (about 5 % is the nominal rate).
3. Composition: each sample simulated on its own with cell-type shares drawn around its
   condition's shares (Dirichlet; biological variation between replicates), one rare
   type's share tripled in ``stim``; propeller (``composition``) must find that type at
   FDR 0.1 and no other. The first dataset decides ``composition_pass``; the rates over
   several datasets (and over as many with no shift) show how often that holds.

Both DE datasets carry extra sample-to-sample variation (per sample and gene, log-normal
with sigma ``--sample-sigma``, applied by binomial thinning so the counts stay counts):
real replicates differ more than the simulator's own sample effect (sigma 0.1), and that
variation is what cell-level tests mistake for condition effects.

Usage::

    python -m benchmarks.downstream [--quick] [--seed 0]

Prints progress lines, then one JSON object as the last line with at least
``pseudobulk_fdp``, ``pseudobulk_recall``, ``cell_level_fdp``, ``null_fraction_called`` and
the composition results. Targets (issue 9): pseudobulk FDP <= 0.1; null calls <= 5 % of
genes at p < 0.05; the shifted type found at FDR 0.1 and no other.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def add_sample_noise(adata, sigma: float, seed: int):
    """Scale each (sample, gene) by a log-normal factor through binomial thinning (counts stay integers)."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    samples = adata.obs["sample"].astype(str).to_numpy()
    levels = sorted(set(samples))
    factors = np.exp(rng.normal(0.0, sigma, size=(len(levels), adata.n_vars)))
    factors /= factors.max()  # thinning can only lower counts
    X = sparse.csr_matrix(adata.X)
    row_sample = np.searchsorted(levels, samples)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    keep = factors[row_sample[rows], X.indices]
    X.data = rng.binomial(X.data.astype(np.int64), keep).astype(np.float32)
    X.eliminate_zeros()
    out = adata.copy()
    out.X = X
    return out


def cell_level_wilcoxon(adata, groupby: str, reference: str, test: str) -> pd.DataFrame:
    """The pseudoreplicated analysis: Wilcoxon of test vs reference cells within each cell type."""
    import scanpy as sc

    work = adata.copy()
    sc.pp.normalize_total(work, target_sum=1e4)
    sc.pp.log1p(work)
    frames = []
    for group in work.obs[groupby].astype(str).unique():
        sub = work[work.obs[groupby].astype(str) == group].copy()
        counts = sub.obs["condition"].astype(str).value_counts()
        if counts.get(reference, 0) < 3 or counts.get(test, 0) < 3:
            continue
        sub.obs["condition"] = sub.obs["condition"].astype(str).astype("category")
        sc.tl.rank_genes_groups(
            sub, "condition", groups=[test], reference=reference, method="wilcoxon"
        )
        df = sc.get.rank_genes_groups_df(sub, group=test)
        df["group"] = group
        frames.append(df.rename(columns={"names": "gene", "pvals": "pvalue", "pvals_adj": "padj"}))
    return pd.concat(frames, ignore_index=True)


def score_calls(table: pd.DataFrame, truth: set[str], n_types: int, alpha: float = 0.05) -> dict:
    """FDP and recall of (cell type, gene) calls at adjusted p < alpha (scagent.data.truth)."""
    from scagent.data.truth import score_de_calls

    s = score_de_calls(table, truth, n_groups=n_types, alpha=alpha)
    return {"n_called": s["calls"], "n_false": s["false_calls"], "fdp": s["fdp"],
            "recall": s["recall_pairs"] if truth else float("nan")}  # fmt: skip


def de_benchmark(args, quick: bool) -> dict:
    from scagent.data import simulate
    from scagent.tools.pseudobulk import PSEUDOBULK_DE

    types = ["CD4 naive T cell", "classical monocyte", "B cell", "NK cell"]
    n_cells, n_genes, n_de = (3000, 1000, 50) if quick else (8000, 2000, 100)
    if not quick:
        types = None  # the eight default PBMC types
    out: dict = {}
    for label, de_genes in (("de", n_de), ("null", 0)):
        adata = simulate(
            n_cells,
            n_genes,
            cell_types=types,
            n_conditions=2,
            samples_per_condition=3,
            n_de_genes=de_genes,
            de_log2fc=1.0,
            seed=args.seed + (0 if label == "de" else 1),
        )
        adata = add_sample_noise(adata, args.sample_sigma, args.seed + 7)
        truth = set(adata.uns["simulation"]["de_genes"].get("stim", {}))
        t = time.perf_counter()
        result = PSEUDOBULK_DE(adata, groupby="cell_type", n_cpus=args.n_cpus)
        pb_seconds = time.perf_counter() - t
        pb = adata.uns["pseudobulk_de"]["results"]
        n_types = int(result.metrics["n_groups_tested"])
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cl = cell_level_wilcoxon(adata, "cell_type", "ctrl", "stim")
        cl_seconds = time.perf_counter() - t
        _log(
            f"{label}: pseudobulk {pb_seconds:.1f} s on {n_types} types, "
            f"cell-level wilcoxon {cl_seconds:.1f} s"
        )
        if label == "de":
            s_pb = score_calls(pb, truth, n_types)
            s_cl = score_calls(cl, truth, n_types)
            out.update(
                pseudobulk_fdp=round(s_pb["fdp"], 4),
                pseudobulk_recall=round(s_pb["recall"], 4),
                pseudobulk_n_called=s_pb["n_called"],
                pseudobulk_n_false=s_pb["n_false"],
                cell_level_fdp=round(s_cl["fdp"], 4),
                cell_level_recall=round(s_cl["recall"], 4),
                cell_level_n_called=s_cl["n_called"],
                cell_level_n_false=s_cl["n_false"],
                de_n_true_genes=len(truth),
                de_n_types=n_types,
                pseudobulk_seconds=round(pb_seconds, 2),
            )
            _log(f"  {'':12s} {'FDP':>7s} {'recall':>7s} {'called':>7s} {'false':>6s}")
            for name, s in (("pseudobulk", s_pb), ("cell-level", s_cl)):
                _log(
                    f"  {name:12s} {s['fdp']:7.3f} {s['recall']:7.3f} {s['n_called']:7d} "
                    f"{s['n_false']:6d}"
                )
        else:
            tested = pb.dropna(subset=["pvalue"])
            out["null_fraction_called"] = round(float((tested["pvalue"] < 0.05).mean()), 4)
            out["null_fraction_fdr05"] = round(float((pb["padj"] < 0.05).mean()), 4)
            out["null_cell_level_fraction_called"] = round(float((cl["pvalue"] < 0.05).mean()), 4)
            out["null_cell_level_fraction_fdr05"] = round(float((cl["padj"] < 0.05).mean()), 4)
            _log(
                f"  null, share of genes at p < 0.05: pseudobulk {out['null_fraction_called']:.3f}, "
                f"cell-level {out['null_cell_level_fraction_called']:.3f}"
            )
    return out


def composition_data(
    seed: int,
    shift_type: str,
    fold: float,
    n_per_sample: int,
    samples_per_condition: int,
    concentration: float,
):
    """Each sample simulated on its own, shares drawn around its condition's shares."""
    import anndata as ad

    from scagent.data import simulate

    types = ["CD4 naive T cell", "CD8 T cell", "classical monocyte", "B cell", "NK cell", "pDC"]
    base = np.array([0.30, 0.16, 0.25, 0.13, 0.12, 0.04])
    shifted = base.copy()
    shifted[types.index(shift_type)] *= fold
    shifted /= shifted.sum()
    rng = np.random.default_rng(seed)
    parts = []
    for cond, shares in (("ctrl", base), ("stim", shifted)):
        for i in range(samples_per_condition):
            props = rng.dirichlet(concentration * shares)
            part = simulate(
                n_per_sample,
                300,
                cell_types=types,
                proportions=props,
                samples_per_condition=1,
                seed=int(rng.integers(1 << 30)),
            )
            part.obs["sample"] = f"{cond}_{i + 1}"
            part.obs["condition"] = cond
            part.obs_names = [f"{cond}{i}_{n}" for n in part.obs_names]
            parts.append(part)
    adata = ad.concat(parts, join="inner")
    adata.obs["condition"] = pd.Categorical(adata.obs["condition"], categories=["ctrl", "stim"])
    return adata, types


def composition_benchmark(args, quick: bool) -> dict:
    from scagent.tools.abundance import COMPOSITION

    # A rare type tripled: the other types' shares drop by ~6% (the compositional effect),
    # within their replicate-to-replicate variation (Dirichlet concentration 300).
    shift_type, fold, samples, concentration = "pDC", 3.0, 3, 300.0
    n_datasets = 5 if quick else 20
    outcomes = []
    null_calls = 0
    for k in range(n_datasets):
        for label, f in (("shift", fold), ("null", 1.0)):
            adata, _ = composition_data(
                args.seed + 1000 * k + (0 if label == "shift" else 7),
                shift_type,
                f,
                800,
                samples,
                concentration,
            )
            COMPOSITION(adata, groupby="cell_type", sample_key="sample", condition_key="condition")
            res = adata.uns["composition"]["results"].set_index("cell_type")
            called = set(res.index[res["fdr"] < 0.1])
            if label == "shift":
                outcomes.append(
                    (
                        shift_type in called,
                        sorted(called - {shift_type}),
                        float(res.loc[shift_type, "fdr"]),
                    )
                )
            else:
                null_calls += len(called)
    found = sum(o[0] for o in outcomes)
    exact = sum(o[0] and not o[1] for o in outcomes)
    first_found, first_others, first_fdr = outcomes[0]
    _log(
        f"composition: {shift_type} x{fold:g} found in {found}/{n_datasets} datasets, alone in "
        f"{exact}/{n_datasets}; {null_calls} calls on {n_datasets} null datasets"
    )
    return {
        "composition_method": "propeller (asin sqrt, empirical-Bayes moderated t, BH)",
        "composition_shifted_type": shift_type,
        "composition_fold": fold,
        "composition_found": bool(first_found),
        "composition_other_types_called": first_others,
        "composition_shifted_fdr": round(first_fdr, 6),
        "composition_pass": bool(first_found and not first_others),
        "composition_datasets": n_datasets,
        "composition_found_rate": round(found / n_datasets, 4),
        "composition_exact_rate": round(exact / n_datasets, 4),
        "composition_null_types_called": null_calls,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data (about a minute)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sample-sigma",
        type=float,
        default=0.2,
        help="sd (natural log) of extra per-sample, per-gene variation",
    )
    parser.add_argument("--n-cpus", type=int, default=1, help="processes for PyDESeq2")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    result = {"quick": bool(args.quick), "seed": args.seed, "sample_sigma": args.sample_sigma}
    result.update(de_benchmark(args, args.quick))
    result.update(composition_benchmark(args, args.quick))
    result["targets_met"] = bool(
        result["pseudobulk_fdp"] <= 0.1
        and result["null_fraction_called"] <= 0.05
        and result["composition_pass"]
    )
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
