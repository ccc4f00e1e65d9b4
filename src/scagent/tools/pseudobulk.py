"""Cross-condition differential expression done right: DESeq2 on counts summed per (sample, cell type).

Cells of one sample are not independent replicates; testing them one by one across
conditions (a Wilcoxon test per cell) calls every sample-to-sample difference significant
(Squair et al. 2021). The replicate is the sample: counts are summed per sample and cell
type (decoupler's pseudobulk), lowly expressed genes are filtered as edgeR's
``filterByExpr`` does, and PyDESeq2 fits a negative-binomial GLM with the condition and
optional sample-level covariates (e.g. batch) per cell type. Unreplicated designs are
refused with the reason and what to do.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_validator

from scagent.errors import InvalidDataError, InvalidParameterError, MissingDependencyError
from scagent.tools._data import claim_key, mark_owned, obs_column, require_counts, state_of
from scagent.tools._design import SQUAIR_2021, confounded_terms, model_matrix, resolve_design
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["PseudobulkParams", "export_pseudobulk", "pseudobulk_de", "pseudobulk_results"]

#: Columns of every per-gene result row, in order.
RESULT_COLUMNS = [
    "group",
    "gene",
    "baseMean",
    "log2FoldChange",
    "lfcSE",
    "stat",
    "pvalue",
    "padj",
]


class PseudobulkParams(ParamsModel):
    groupby: str | None = Field(
        "auto",
        description="obs column of the cell types (one test per type); 'auto' takes the "
        "inspector's first cell-type column, else the first clustering; None pools all cells.",
    )
    sample_key: str = Field(
        "auto",
        description="obs column of the biological samples (the replicates); 'auto' takes the "
        "inspector's first sample or donor column.",
    )
    condition_key: str = Field(
        "auto", description="obs column of the condition; 'auto' takes the inspector's first."
    )
    reference: str | None = Field(
        None, description="Reference level of the condition (default: its first level)."
    )
    test_level: str | None = Field(
        None,
        description="Level compared with the reference (default: the other level when there "
        "are two). log2 fold changes are test over reference.",
    )
    covariates: list[str] = Field(
        default_factory=list,
        description="Sample-level obs columns adjusted for in the design, e.g. ['batch'] "
        "(design ~ covariates + condition). Each must be constant within a sample.",
    )
    min_cells: int = Field(
        10,
        ge=1,
        le=10_000,
        description="A (sample, cell type) pseudobulk with fewer cells is dropped; 10 is "
        "decoupler's default, counts from fewer cells are too noisy (Squair et al. 2021).",
    )
    min_counts: int = Field(
        1000, ge=0, description="A pseudobulk sample with fewer total counts is dropped."
    )
    min_replicates: int = Field(
        2,
        ge=2,
        le=100,
        description="Samples each compared condition needs; fewer is pseudoreplication and is "
        "refused (3 or more per condition is recommended).",
    )
    min_count: int = Field(
        10,
        ge=0,
        description="edgeR filterByExpr: a gene needs this count (scaled to the median library) "
        "in at least the smallest condition's number of samples.",
    )
    min_total_count: int = Field(
        15, ge=0, description="edgeR filterByExpr: minimum total count of a gene."
    )
    alpha: float = Field(
        0.05,
        gt=0.0,
        lt=1.0,
        description="FDR level of the calls and of DESeq2's independent filtering.",
    )
    n_cpus: int = Field(1, ge=1, le=128, description="Processes PyDESeq2 may use.")
    key_added: str = Field("pseudobulk_de", description="uns key of the results.")
    export_dir: str | None = Field(
        None,
        description="Folder for one CSV per cell type plus volcano plots (PNG and SVG); "
        "None writes no files.",
    )
    overwrite: bool = Field(False, description="Replace a uns[key_added] not written by scagent.")

    @field_validator("covariates", mode="before")
    @classmethod
    def _split_text(cls, value: Any) -> Any:
        # The CLI passes "batch,donor"; the API passes a list.
        if isinstance(value, str):
            return [v for v in value.replace(" ", ",").split(",") if v]
        return value


def _groupby(adata: AnnData, value: str | None, state: Any) -> str | None:
    if value is None:
        return None
    crumbs = state.breadcrumbs
    return obs_column(
        adata,
        value,
        lambda: [c.name for c in (*crumbs.cell_types, *crumbs.clusterings)],
        missing=InvalidParameterError(
            "pseudobulk_de found no cell-type or cluster column to test within",
            remedy="pass groupby=<obs column of cell types>, or groupby=None to pool all cells",
        ),
    )


def _deseq2(
    counts: pd.DataFrame, meta: pd.DataFrame, formula: str, n_cpus: int, alpha: float
) -> pd.DataFrame:
    """PyDESeq2 Wald test of ``test`` over ``ref`` in column ``scagent_condition``."""
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats
    from threadpoolctl import threadpool_limits

    inference = DefaultInference(n_cpus=n_cpus)
    # PyDESeq2 fits each gene with scipy's L-BFGS-B on vectors of a few samples; with a
    # multi-threaded OpenBLAS every tiny BLAS call wakes the thread pool, which made the
    # fits 3-4x slower than on one thread (measured: 11.4 s vs 3.2 s for 2 x 380 genes).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # PyDESeq2 warns about genes it drops or dispersion fits it falls back on; the
        # result table says what it did (NaN padj), so the warnings are noise here.
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(
            counts=counts, metadata=meta, design=formula, inference=inference, quiet=True
        )
        dds.deseq2()
        stats = DeseqStats(
            dds,
            contrast=["scagent_condition", "test", "ref"],
            alpha=alpha,
            inference=inference,
            quiet=True,
        )
        stats.summary()
    return stats.results_df


def pseudobulk_de(adata: AnnData, **params: Any) -> ToolResult:
    """Differential expression between two conditions per cell type, on pseudobulk counts (PyDESeq2).

    Raw counts are taken from wherever the inspector finds them (``X``, a layer, ``.raw``)
    and summed per (sample, cell type) with :func:`decoupler.pp.pseudobulk`. Per cell
    type, pseudobulk samples with fewer than ``min_cells`` cells or ``min_counts`` counts
    are dropped, genes are filtered with edgeR's ``filterByExpr`` rule
    (:func:`decoupler.pp.filter_by_expr`), and PyDESeq2 fits ``~ covariates + condition``
    and tests ``test_level`` against ``reference`` (Wald test, Benjamini-Hochberg FDR with
    independent filtering). Only samples of the two compared conditions enter the model.

    Parameters
    ----------
    adata
        The data; ``uns[key_added]`` is added.
    **params
        See :class:`PseudobulkParams`.

    Returns
    -------
    ToolResult
        Writes ``uns[key_added]`` with ``results`` (one row per cell type and gene:
        ``group, gene, baseMean, log2FoldChange, lfcSE, stat, pvalue, padj``), ``groups``
        (one row per cell type: samples per condition, genes tested, genes significant,
        ``status`` ``tested`` or why it was skipped) and ``params`` (the resolved design).
        ``tables['groups']`` repeats the per-type summary.

    Raises
    ------
    DataStateError
        No raw counts anywhere.
    InvalidDataError
        A compared condition has fewer than ``min_replicates`` samples (pseudoreplication,
        Squair et al. 2021), a sample spans two conditions, or no cell type can be tested.
    InvalidParameterError
        A named column or level does not exist.
    """
    import anndata as ad
    from scipy import sparse

    try:
        import decoupler as dc
        import pydeseq2  # noqa: F401
    except ImportError as exc:  # pragma: no cover - both are core dependencies
        raise MissingDependencyError(
            f"pseudobulk_de needs {exc.name}", remedy="pip install pydeseq2 decoupler"
        ) from None

    p = parse_params(PseudobulkParams, params, "pseudobulk_de")
    state = state_of(adata)
    counts = require_counts(adata, "pseudobulk_de", state)
    groupby = _groupby(adata, p.groupby, state)
    design = resolve_design(
        adata,
        state,
        sample_key=p.sample_key,
        condition_key=p.condition_key,
        reference=p.reference,
        test_level=p.test_level,
        covariates=tuple(p.covariates),
        min_replicates=p.min_replicates,
        tool_id="pseudobulk_de",
    )
    if groupby is not None and groupby in (design.sample_key, design.condition_key):
        raise InvalidParameterError(
            f"groupby '{groupby}' is the sample or condition column",
            remedy="pass the obs column of the cell types as groupby",
        )
    warnings_out: list[str] = []
    if (
        w := claim_key(adata, "uns", p.key_added, "pseudobulk_de", overwrite=p.overwrite)
    ) is not None:
        warnings_out.append(w)

    # decoupler sums per (sample, group) and keeps obs columns constant within each.
    obs = pd.DataFrame(index=adata.obs_names.copy())
    obs["scagent_sample"] = adata.obs[design.sample_key].astype(str).to_numpy()
    obs["scagent_group"] = (
        adata.obs[groupby].astype(str).to_numpy() if groupby is not None else "all cells"
    )
    matrix = counts if sparse.issparse(counts) else sparse.csr_matrix(np.asarray(counts))
    work = ad.AnnData(X=sparse.csr_matrix(matrix, dtype=np.float64), obs=obs)
    work.var_names = adata.var_names.copy()
    pdata = dc.pp.pseudobulk(work, sample_col="scagent_sample", groups_col="scagent_group")
    samples = design.samples
    pdata.obs["scagent_condition"] = samples.loc[
        pdata.obs["scagent_sample"], design.condition_key
    ].to_numpy()

    compared = (design.reference, design.test)
    group_sizes = obs["scagent_group"].value_counts()
    results: list[pd.DataFrame] = []
    summary: list[dict[str, Any]] = []
    for group in group_sizes.index:
        sub = pdata[pdata.obs["scagent_group"] == group]
        sub = sub[sub.obs["scagent_condition"].isin(compared)]
        # decoupler may keep (sample, type) pairs with no cells; those are not present.
        has_cells = sub.obs["psbulk_cells"].to_numpy() > 0
        present = {
            c: int(((sub.obs["scagent_condition"] == c).to_numpy() & has_cells).sum())
            for c in compared
        }
        keep = (sub.obs["psbulk_cells"] >= p.min_cells) & (sub.obs["psbulk_counts"] >= p.min_counts)
        sub = sub[keep.to_numpy()].copy()
        kept = {c: int((sub.obs["scagent_condition"] == c).sum()) for c in compared}
        row: dict[str, Any] = {
            "group": str(group),
            "n_cells": int(group_sizes[group]),
            f"n_samples_{design.reference}": kept[design.reference],
            f"n_samples_{design.test}": kept[design.test],
            "n_genes_tested": 0,
            "n_significant": 0,
            "status": "tested",
        }
        absent = [c for c in compared if present[c] == 0]
        if absent:
            row["status"] = f"absent in {absent[0]}"
            warnings_out.append(
                f"cell type '{group}' has no cells in condition '{absent[0]}'; it cannot be "
                "compared across conditions and was skipped"
            )
            summary.append(row)
            continue
        if min(kept.values()) < p.min_replicates:
            row["status"] = "too few samples"
            warnings_out.append(
                f"cell type '{group}': only {kept[design.reference]} '{design.reference}' and "
                f"{kept[design.test]} '{design.test}' samples have >= {p.min_cells} cells and "
                f">= {p.min_counts} counts (need {p.min_replicates} each); skipped"
            )
            summary.append(row)
            continue
        meta = pd.DataFrame(index=sub.obs_names.copy())
        meta["scagent_condition"] = np.where(
            sub.obs["scagent_condition"].to_numpy() == design.test, "test", "ref"
        )
        rows = samples.loc[sub.obs["scagent_sample"]]
        matrix_x, names = model_matrix(
            rows.assign(**{design.condition_key: meta["scagent_condition"].to_numpy()}),
            design.condition_key,
            "ref",
            design.covariates,
        )
        bad = confounded_terms(matrix_x, names)
        if bad or matrix_x.shape[0] <= matrix_x.shape[1]:
            row["status"] = "confounded design"
            why = (
                f"{', '.join(bad)} confounded with the condition or each other"
                if bad
                else f"{matrix_x.shape[0]} samples for {matrix_x.shape[1]} coefficients"
            )
            warnings_out.append(
                f"cell type '{group}': the design cannot be estimated ({why}); skipped"
            )
            summary.append(row)
            continue
        terms = []
        for i, cov in enumerate(design.covariates):
            values = rows[cov]
            if values.nunique() < 2:
                continue  # constant within this cell type's samples
            name = f"scagent_cov{i}"
            meta[name] = (
                values.to_numpy(float)
                if pd.api.types.is_numeric_dtype(values)
                else ("v_" + values.astype(str)).to_numpy()
            )
            terms.append(name)
        genes = dc.pp.filter_by_expr(
            sub,
            group="scagent_condition",
            min_count=p.min_count,
            min_total_count=p.min_total_count,
            inplace=False,
        )
        genes = [g for g in sub.var_names if g in set(genes)]
        if len(genes) < 2:
            row["status"] = "no expressed genes"
            warnings_out.append(
                f"cell type '{group}': fewer than 2 genes pass the expression filter; skipped"
            )
            summary.append(row)
            continue
        X = sub[:, genes].X
        X = X.toarray() if sparse.issparse(X) else np.asarray(X)
        table = pd.DataFrame(np.rint(X).astype(np.int64), index=sub.obs_names, columns=genes)
        formula = "~" + " + ".join([*terms, "scagent_condition"])
        res = _deseq2(table, meta, formula, p.n_cpus, p.alpha)
        res = res.reset_index(names="gene")
        res.insert(0, "group", str(group))
        res = res[RESULT_COLUMNS]
        row["n_genes_tested"] = len(genes)
        row["n_significant"] = int((res["padj"] < p.alpha).sum())
        results.append(res)
        summary.append(row)

    if not results:
        statuses = "; ".join(f"{r['group']}: {r['status']}" for r in summary[:10])
        raise InvalidDataError(
            f"pseudobulk_de could test no cell type ({statuses})",
            remedy=f"lower min_cells (now {p.min_cells}) or min_counts (now {p.min_counts}), "
            "group cells into broader types, or add samples",
        )
    long = pd.concat(results, ignore_index=True)
    long["group"] = long["group"].astype(str)
    long["gene"] = long["gene"].astype(str)
    groups_df = pd.DataFrame(summary)
    adata.uns[p.key_added] = {
        "results": long,
        "groups": groups_df,
        "params": {
            "method": "pydeseq2",
            "groupby": groupby or "",
            "sample_key": design.sample_key,
            "condition_key": design.condition_key,
            "reference": design.reference,
            "test_level": design.test,
            "covariates": list(design.covariates),
            "design": "~" + " + ".join([*design.covariates, design.condition_key]),
            "alpha": p.alpha,
            "min_cells": p.min_cells,
            "min_counts": p.min_counts,
            "counts_from": state.counts_location or "",
        },
    }
    written = [f"uns/{p.key_added}", mark_owned(adata, "pseudobulk_de", ("uns", p.key_added))]
    tested = groups_df[groups_df["status"] == "tested"]
    files: list[str] = []
    if p.export_dir is not None:
        files = [str(f) for f in export_pseudobulk(adata, p.export_dir, key=p.key_added)]
    metrics: dict[str, float | int | str] = {
        "contrast": f"{design.test} vs {design.reference}",
        "n_groups_tested": len(tested),
        "n_groups_skipped": len(groups_df) - len(tested),
        "n_significant": int(tested["n_significant"].sum()),
        "n_samples": len(samples),
    }
    if files:
        metrics["export_dir"] = str(p.export_dir)
    return ToolResult(
        summary=f"pseudobulk DESeq2 of {design.test} vs {design.reference} in {len(tested)} "
        f"cell type(s) of '{groupby or 'all cells'}' across {len(samples)} samples: "
        f"{metrics['n_significant']} gene-type pairs at FDR {p.alpha} in uns['{p.key_added}']",
        metrics=metrics,
        warnings=warnings_out,
        written=written,
        tables={"groups": groups_df.to_dict("records")},
    )


def pseudobulk_results(
    adata: AnnData, key: str = "pseudobulk_de", group: str | None = None
) -> pd.DataFrame:
    """The per-gene results of :func:`pseudobulk_de`, for one cell type or all.

    Raises
    ------
    InvalidParameterError
        If ``uns[key]`` holds no pseudobulk results or ``group`` was not tested.
    """
    entry = adata.uns.get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("results"), pd.DataFrame):
        raise InvalidParameterError(
            f"uns['{key}'] holds no pseudobulk_de results", remedy="run pseudobulk_de first"
        )
    table = entry["results"]
    if group is None:
        return table.copy()
    out = table[table["group"] == str(group)]
    if out.empty:
        raise InvalidParameterError(
            f"cell type '{group}' has no results in uns['{key}']",
            remedy=f"tested: {', '.join(sorted(table['group'].unique())[:20])}",
        )
    return out.reset_index(drop=True)


def _file_stem(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return safe or "group"


def export_pseudobulk(
    adata: AnnData,
    out_dir: str | os.PathLike[str],
    *,
    key: str = "pseudobulk_de",
    plots: bool = True,
) -> list[Path]:
    """Write one CSV per cell type (and volcano plots as PNG and SVG) of ``uns[key]``.

    Files: ``<out_dir>/<key>_<group>.csv`` (sorted by p-value), ``<key>_groups.csv`` and,
    with ``plots``, ``<key>_<group>_volcano.png`` / ``.svg``. Every file is written atomically.

    Returns
    -------
    The paths written.
    """
    from scagent._atomic import atomic_write_text
    from scagent.report import plots as plotting

    table = pseudobulk_results(adata, key)
    entry = adata.uns[key]
    alpha = float(entry.get("params", {}).get("alpha", 0.05))
    contrast = f"{entry['params'].get('test_level', '')} vs {entry['params'].get('reference', '')}"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    target = out / f"{key}_groups.csv"
    atomic_write_text(target, entry["groups"].to_csv(index=False))
    written.append(target)
    used: set[str] = set()
    for group, rows in table.groupby("group", sort=True):
        stem = _file_stem(f"{key}_{group}")
        while stem in used:  # two names that clean to the same stem
            stem += "_"
        used.add(stem)
        target = out / f"{stem}.csv"
        atomic_write_text(target, rows.sort_values("pvalue").to_csv(index=False))
        written.append(target)
        if plots:
            fig = plotting.volcano(rows, alpha=alpha, title=f"{group}: {contrast}")
            written.extend(plotting.save_figure(fig, out / f"{stem}_volcano"))
    return written


def _check_pseudobulk(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    key = p.key_added  # type: ignore[attr-defined]
    table = adata.uns.get(key, {}).get("results")
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise InvalidDataError(f"pseudobulk_de finished but uns['{key}'] holds no results")
    out = []
    p_ok = table["pvalue"].dropna()
    if len(p_ok) and ((p_ok < 0) | (p_ok > 1)).any():
        raise InvalidDataError(f"pseudobulk_de produced p-values outside [0, 1] in uns['{key}']")
    # Nearly every tested gene significant means a broken design or mislabelled samples.
    frac = float((table["padj"] < 0.05).mean())
    if frac > 0.5:
        out.append(
            f"{frac:.0%} of tested genes are significant: check that the samples are "
            "biological replicates and the condition labels are right"
        )
    return out


PSEUDOBULK_DE = register(
    Tool(
        id="pseudobulk_de",
        name="Pseudobulk differential expression",
        category="differential_expression",
        framework="pydeseq2",
        fn=pseudobulk_de,
        params=PseudobulkParams,
        needs="raw_counts",
        checks=_check_pseudobulk,
        captures=("pydeseq2", "decoupler", "anndata", "numpy", "pandas"),
        reference=SQUAIR_2021 + "; Muzellec et al. (2023) PyDESeq2: a python package for bulk "
        "RNA-seq differential expression analysis. Bioinformatics 39:btad547; Love, Huber & "
        "Anders (2014) Genome Biol 15:550",
        description="Condition DE per cell type on counts summed per sample (PyDESeq2, design "
        "with covariates); refuses unreplicated designs (pseudoreplication).",
    )
)
