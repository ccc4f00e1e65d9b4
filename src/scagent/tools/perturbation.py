"""Pooled CRISPR screens (Perturb-seq): test each perturbation against the controls and check its knockdown.

``guide_assignment`` (:mod:`scagent.tools.guides`, re-exported here) turns guide UMI
counts into one perturbation per cell (or 'multiple' / 'unassigned'); ``perturbation_de`` compares the cells of each perturbation
with the non-targeting controls, on pseudobulk counts per replicate lane with PyDESeq2
(the machinery of :mod:`scagent.tools.pseudobulk`) when lanes or donors replicate the
screen, and checks that each target gene was in fact knocked down.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import sparse

from scagent.errors import InvalidDataError, InvalidParameterError, MissingPrerequisiteError
from scagent.tools._data import claim_key, mark_owned, ready_for, require_counts, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.guides import (
    CONTROL_LABEL,
    GUIDE_ASSIGNMENT,
    REPLOGLE_2022,
    GuideAssignmentParams,
    check_perturbation_inputs,
    guide_assignment,
)
from scagent.tools.pseudobulk import RESULT_COLUMNS as PSEUDOBULK_COLUMNS
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "GUIDE_ASSIGNMENT",
    "PERTURBATION_DE",
    "GuideAssignmentParams",
    "PerturbationDEParams",
    "check_perturbation_inputs",
    "guide_assignment",
    "perturbation_de",
]


# ---------------------------------------------------------------------------------------------
# perturbation DE


class PerturbationDEParams(ParamsModel):
    perturbation_key: str = Field(
        "perturbation", description="obs column of each cell's perturbation (guide_assignment)."
    )
    control: str = Field(
        "auto",
        description="Level of the controls; 'auto' takes guide_assignment's control label "
        "('non-targeting').",
    )
    method: Literal["auto", "pseudobulk", "wilcoxon"] = Field(
        "auto",
        description="'pseudobulk': PyDESeq2 on counts summed per (replicate, perturbation), "
        "design ~ replicate + perturbation; 'wilcoxon': cells as replicates (not replicated; "
        "only for screens without lanes or donors); 'auto': pseudobulk when sample_key finds "
        "at least 2 replicates.",
    )
    sample_key: str | None = Field(
        "auto",
        description="obs column of the replicates (lanes, donors, samples); 'auto' takes the "
        "inspector's first sample or donor column with 2+ levels; None tests cells.",
    )
    perturbations: list[str] | None = Field(
        None, description="Perturbations to test (default: all but the controls)."
    )
    min_cells: int = Field(
        20,
        ge=2,
        le=100_000,
        description="A perturbation with fewer single-guide cells is skipped with a warning.",
    )
    min_cells_pseudobulk: int = Field(
        10, ge=1, description="A (replicate, perturbation) pseudobulk with fewer cells is dropped."
    )
    min_counts: int = Field(
        1000, ge=0, description="A pseudobulk with fewer total counts is dropped."
    )
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="FDR level of DE calls.")
    knockdown_lfc: float = Field(
        -0.5,
        lt=0.0,
        description="log2 fold change of the target a 'knocked down' call needs (with "
        "padj < alpha); -0.5 is a ~30% reduction.",
    )
    n_cpus: int = Field(1, ge=1, le=128, description="Processes PyDESeq2 may use.")
    key_added: str = Field("perturbation_de", description="uns key of the results.")
    overwrite: bool = Field(False, description="Replace a uns[key_added] not written by scagent.")


#: Columns of every per-gene result row, in order.
#: pseudobulk_de's columns, with the perturbation in place of the cell type.
RESULT_COLUMNS = ["perturbation", *PSEUDOBULK_COLUMNS[1:]]


def _replicates(adata: AnnData, value: str | None, cells: np.ndarray) -> str | None:
    if value is None:
        return None
    if value != "auto":
        if value not in adata.obs:
            raise InvalidParameterError(
                f"sample_key '{value}' is not an obs column",
                remedy=f"choose one of: {', '.join(map(str, adata.obs.columns[:20]))}",
            )
        return value
    state = state_of(adata)
    for col in (*state.sample_columns, *state.donor_columns):
        if adata.obs[col.name][cells].nunique() >= 2:
            return col.name
    return None


def _pseudobulk_one(
    counts: Any,
    adata: AnnData,
    cells: np.ndarray,
    labels: np.ndarray,
    lanes: np.ndarray,
    pert: str,
    control: str,
    p: Any,
) -> tuple[pd.DataFrame | None, list[str]]:
    """DESeq2 of one perturbation vs the controls through :func:`pseudobulk_de`.

    A pseudobulk sample is one (replicate, perturbation) pair: the replicate is the unit
    of replication, and the replicate enters the design as a covariate (paired design).
    """
    import anndata as ad

    from scagent.tools.pseudobulk import pseudobulk_de

    obs = pd.DataFrame(index=adata.obs_names[cells].copy())
    obs["scagent_arm"] = labels[cells]
    obs["scagent_lane"] = lanes[cells]
    obs["scagent_unit"] = obs["scagent_lane"] + "|" + obs["scagent_arm"]
    matrix = counts[cells]
    work = ad.AnnData(
        X=sparse.csr_matrix(matrix, dtype=np.float32)
        if not sparse.issparse(matrix)
        else matrix.tocsr(),
        obs=obs,
    )
    work.var_names = adata.var_names.copy()
    covariates = ["scagent_lane"] if obs["scagent_lane"].nunique() > 1 else []
    result = pseudobulk_de(
        work,
        groupby=None,
        sample_key="scagent_unit",
        condition_key="scagent_arm",
        reference=control,
        test_level=pert,
        covariates=covariates,
        min_cells=p.min_cells_pseudobulk,
        min_counts=p.min_counts,
        alpha=p.alpha,
        n_cpus=p.n_cpus,
    )
    table = work.uns["pseudobulk_de"]["results"].drop(columns="group")
    table.insert(0, "perturbation", pert)
    return table, result.warnings


def _wilcoxon(
    adata: AnnData, cells: np.ndarray, labels: np.ndarray, perts: list[str], control: str
) -> pd.DataFrame:
    import scanpy as sc

    work = ready_for(adata, None, "log_normalized")[cells].copy()
    work.obs = pd.DataFrame({"scagent_arm": pd.Categorical(labels[cells])}, index=work.obs_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scanpy's fragmentation / log1p notes
        sc.tl.rank_genes_groups(
            work,
            "scagent_arm",
            groups=perts,
            reference=control,
            method="wilcoxon",
            key_added="scagent_rgg",
            use_raw=False,
        )
    tables = []
    for pert in perts:
        df = sc.get.rank_genes_groups_df(work, group=pert, key="scagent_rgg")
        tables.append(
            pd.DataFrame(
                {
                    "perturbation": pert,
                    "gene": df["names"].astype(str).to_numpy(),
                    "baseMean": np.nan,
                    "log2FoldChange": df["logfoldchanges"].to_numpy(float),
                    "lfcSE": np.nan,
                    "stat": df["scores"].to_numpy(float),
                    "pvalue": df["pvals"].to_numpy(float),
                    "padj": df["pvals_adj"].to_numpy(float),
                }
            )
        )
    return pd.concat(tables, ignore_index=True)


def _knockdown_table(
    adata: AnnData,
    counts: Any,
    labels: np.ndarray,
    results: pd.DataFrame,
    perts: list[str],
    tested: set[str],
    control: str,
    p: Any,
) -> pd.DataFrame:
    """Per perturbation: is its target gene lower than in the controls?

    Targets are gene symbols (guide names); with Ensembl ids as var_names they are found
    through the symbol column of var (:func:`scagent.knowledge.genes.symbols_from_var`).
    """
    from scagent.knowledge.genes import symbols_from_var

    totals = np.asarray(counts.sum(axis=1)).ravel().astype(float)
    totals[totals == 0] = 1.0
    ctrl = labels == control
    var_names = adata.var_names.astype(str)
    column: dict[str, int] = {}
    for i, symbol in enumerate(symbols_from_var(adata)):
        column.setdefault(str(symbol), i)  # the first of a duplicated symbol
    # A var_name is itself the gene it names, before any symbol that maps elsewhere.
    column.update({name: i for i, name in reversed(list(enumerate(var_names)))})
    rows = []
    for pert in perts:
        target = pert  # guide_assignment names each perturbation by its target gene
        row: dict[str, Any] = {
            "perturbation": pert,
            "target": target,
            "gene_id": "",
            "n_cells": int((labels == pert).sum()),
            "log2FoldChange": np.nan,
            "pvalue": np.nan,
            "padj": np.nan,
            "share_below_control_median": np.nan,
            "status": "target not measured",
            "note": "",
        }
        col = column.get(target)
        if col is None:
            row["note"] = "the target gene is not among the measured genes"
            rows.append(row)
            continue
        gene_id = str(var_names[col])  # the DE results name genes by var_names
        row["gene_id"] = gene_id
        expr = np.asarray(
            counts[:, col].todense() if sparse.issparse(counts) else counts[:, col]
        ).ravel()
        cp10k = expr / totals * 1e4
        median = float(np.median(cp10k[ctrl]))
        if median > 0:
            row["share_below_control_median"] = float((cp10k[labels == pert] < median).mean())
        if pert not in tested:
            row["status"] = "not tested"
            row["note"] = "the perturbation was skipped (too few cells or replicates)"
            rows.append(row)
            continue
        hit = results[(results["perturbation"] == pert) & (results["gene"] == gene_id)]
        if hit.empty:
            row["note"] = "the target is too lowly expressed to be tested"
            rows.append(row)
            continue
        lfc, pval, padj = (float(hit.iloc[0][c]) for c in ("log2FoldChange", "pvalue", "padj"))
        row.update(log2FoldChange=lfc, pvalue=pval, padj=padj)
        if padj < p.alpha and lfc <= p.knockdown_lfc:
            row["status"] = "knocked down"
        elif lfc < 0 and (padj < p.alpha or pval < p.alpha):
            row["status"] = "weak"
            row["note"] = "the target is lower, but less than the knockdown_lfc or not at FDR alpha"
        else:
            row["status"] = "no knockdown"
            row["note"] = "the target is not lower than in the controls: guide inactive or escaped"
        rows.append(row)
    return pd.DataFrame(rows)


def perturbation_de(adata: AnnData, **params: Any) -> ToolResult:
    """Test each perturbation against the non-targeting controls and check its knockdown.

    Cells with one perturbation (no multiplets, no unassigned cells) enter the test. With
    replicates (lanes, donors or samples in ``sample_key``), counts are summed per
    (replicate, perturbation) and PyDESeq2 tests each perturbation against the controls with
    the replicate as a covariate, through :func:`scagent.tools.pseudobulk.pseudobulk_de`.
    Without replicates, a Wilcoxon test per cell (scanpy ``rank_genes_groups`` with the
    controls as reference) is run with a warning: cells are not independent replicates.

    Parameters
    ----------
    adata
        Data after ``guide_assignment``, with raw counts somewhere.
    **params
        See :class:`PerturbationDEParams`.

    Returns
    -------
    ToolResult
        Writes ``uns[key_added]`` with ``results`` (one row per perturbation and gene:
        ``perturbation, gene, baseMean, log2FoldChange, lfcSE, stat, pvalue, padj``),
        ``knockdown`` (per perturbation: target, ``gene_id`` (its var_name), its log2FoldChange/pvalue/padj, share of
        cells with the target below the control median, ``status`` 'knocked down' /
        'weak' / 'no knockdown' / 'target not measured' / 'not tested'), ``perturbations``
        (cells, status and significant genes per perturbation) and ``params``.
        ``tables`` repeats ``knockdown`` and ``perturbations``.

    Raises
    ------
    MissingPrerequisiteError
        No ``obs[perturbation_key]`` (run guide_assignment first).
    InvalidDataError
        No control cells, or no perturbation could be tested.
    """
    p = parse_params(PerturbationDEParams, params, "perturbation_de")
    if p.perturbation_key not in adata.obs:
        raise MissingPrerequisiteError(
            f"perturbation_de needs obs['{p.perturbation_key}'] with each cell's perturbation "
            "(written by guide_assignment)",
            remedy="run guide_assignment first, or pass perturbation_key=<obs column>",
        )
    out_warnings: list[str] = []
    if (
        w := claim_key(adata, "uns", p.key_added, "perturbation_de", overwrite=p.overwrite)
    ) is not None:
        out_warnings.append(w)
    assignment = adata.uns.get("guide_assignment", {})
    assign_params = assignment.get("params", {}) if isinstance(assignment, dict) else {}
    control = (
        str(assign_params.get("control_label", CONTROL_LABEL)) if p.control == "auto" else p.control
    )
    labels = adata.obs[p.perturbation_key].astype(str).to_numpy()
    if not (labels == control).any():
        raise InvalidDataError(
            f"no control cells: no cell has obs['{p.perturbation_key}'] == '{control}'",
            remedy="check that control guides were called (guide_assignment's control_pattern) "
            "or pass control=<the control level>",
        )
    usable = ~np.isin(labels, ["multiple", "unassigned", "nan", ""])
    if "guide_multiplet" in adata.obs:
        usable &= ~adata.obs["guide_multiplet"].to_numpy(bool)
    sizes = pd.Series(labels[usable]).value_counts()
    candidates = p.perturbations or [str(x) for x in sizes.index if x != control]
    unknown = [x for x in candidates if x not in sizes.index]
    if unknown:
        raise InvalidParameterError(
            f"perturbations {unknown[:5]} have no single-guide cells in obs['{p.perturbation_key}']",
            remedy=f"choose from: {', '.join(sorted(sizes.index)[:20])}",
        )
    candidates = sorted(candidates)
    perts = [x for x in candidates if sizes[x] >= p.min_cells]
    skipped = {x: "too few cells" for x in candidates if sizes[x] < p.min_cells}
    for x in skipped:
        out_warnings.append(
            f"perturbation '{x}' has {int(sizes[x])} single-guide cells (< min_cells="
            f"{p.min_cells}); skipped"
        )
    if sizes[control] < p.min_cells:
        raise InvalidDataError(
            f"only {int(sizes[control])} control cells (< min_cells={p.min_cells})",
            remedy="lower min_cells, or check the control guide calls",
        )

    state = state_of(adata)
    counts = require_counts(adata, "perturbation_de", state)
    counts = counts.tocsr() if sparse.issparse(counts) else np.asarray(counts)
    sample_key = _replicates(adata, p.sample_key, usable) if p.method != "wilcoxon" else None
    method = p.method
    if method == "auto":
        method = "pseudobulk" if sample_key is not None else "wilcoxon"
    if method == "pseudobulk" and sample_key is None:
        raise InvalidDataError(
            "pseudobulk perturbation DE needs replicates, but no sample, lane or donor column "
            "with 2 or more levels was found",
            remedy="pass sample_key=<obs column of lanes/donors>, or method='wilcoxon'",
        )
    tables: list[pd.DataFrame] = []
    status: dict[str, str] = dict(skipped)
    if method == "pseudobulk":
        assert sample_key is not None
        lanes = adata.obs[sample_key].astype(str).to_numpy()
        for pert in perts:
            cells = usable & np.isin(labels, [pert, control])
            try:
                table, notes = _pseudobulk_one(
                    counts, adata, cells, labels, lanes, pert, control, p
                )
            except InvalidDataError as exc:
                status[pert] = "too few replicates"
                out_warnings.append(f"perturbation '{pert}' was not tested: {exc.message}")
                continue
            out_warnings.extend(f"{pert}: {n}" for n in notes)
            status[pert] = "tested"
            tables.append(table)
    elif perts:
        out_warnings.append(
            "no replicates (lanes, donors or samples): cells were tested as if independent "
            "(Wilcoxon), which overstates significance (pseudoreplication); treat p-values as "
            "a ranking, and add replicate lanes or donors for a calibrated test"
        )
        tables.append(_wilcoxon(adata, usable, labels, perts, control))
        status.update(dict.fromkeys(perts, "tested"))
    if not tables:
        why = "; ".join(f"{k}: {v}" for k, v in list(status.items())[:10]) or "nothing to test"
        raise InvalidDataError(
            f"perturbation_de could test no perturbation ({why})",
            remedy=f"lower min_cells (now {p.min_cells}) or min_cells_pseudobulk, or add cells",
        )
    results = pd.concat(tables, ignore_index=True)[RESULT_COLUMNS]
    tested = {k for k, v in status.items() if v == "tested"}
    knock = _knockdown_table(adata, counts, labels, results, candidates, tested, control, p)
    summary_rows = []
    for pert in candidates:
        sub = results[results["perturbation"] == pert]
        summary_rows.append(
            {
                "perturbation": pert,
                "n_cells": int(sizes[pert]),
                "status": status.get(pert, "not tested"),
                "n_genes_tested": len(sub),
                "n_significant": int((sub["padj"] < p.alpha).sum()),
            }
        )
    per_pert = pd.DataFrame(summary_rows)
    adata.uns[p.key_added] = {
        "results": results,
        "knockdown": knock,
        "perturbations": per_pert,
        "params": {
            "method": method,
            "perturbation_key": p.perturbation_key,
            "control": control,
            "sample_key": sample_key or "",
            "design": f"~ {sample_key} + perturbation" if method == "pseudobulk" else "cells",
            "alpha": p.alpha,
            "knockdown_lfc": p.knockdown_lfc,
            "min_cells": p.min_cells,
            "counts_from": state.counts_location or "",
        },
    }
    written = [f"uns/{p.key_added}", mark_owned(adata, "perturbation_de", ("uns", p.key_added))]
    n_kd = int((knock["status"] == "knocked down").sum())
    metrics: dict[str, float | int | str] = {
        "method": method,
        "n_perturbations_tested": len(tested),
        "n_perturbations_skipped": len(candidates) - len(tested),
        "n_knocked_down": n_kd,
        "n_weak_knockdown": int((knock["status"] == "weak").sum()),
        "n_no_knockdown": int((knock["status"] == "no knockdown").sum()),
        "n_significant": int((results["padj"] < p.alpha).sum()),
        "n_control_cells": int(sizes[control]),
    }
    failed = knock.loc[knock["status"].isin(["no knockdown", "weak"]), "perturbation"].tolist()
    if failed:
        out_warnings.append(
            f"target not clearly knocked down in {', '.join(failed[:10])}: their DE genes may "
            "reflect guide-independent effects; check the guides"
        )
    return ToolResult(
        summary=f"perturbation DE ({method}) of {len(tested)} perturbation(s) vs '{control}' "
        f"({int(sizes[control])} control cells): {n_kd} with the target knocked down, "
        f"{metrics['n_significant']} perturbation-gene pairs at FDR {p.alpha} in "
        f"uns['{p.key_added}']",
        metrics=metrics,
        warnings=out_warnings,
        written=written,
        tables={
            "knockdown": knock.to_dict("records"),
            "perturbations": per_pert.to_dict("records"),
        },
    )


def _check_de(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    key = p.key_added  # type: ignore[attr-defined]
    table = adata.uns.get(key, {}).get("results")
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise InvalidDataError(f"perturbation_de finished but uns['{key}'] holds no results")
    pv = table["pvalue"].dropna()
    if len(pv) and ((pv < 0) | (pv > 1)).any():
        raise InvalidDataError(f"perturbation_de produced p-values outside [0, 1] in uns['{key}']")
    return []


PERTURBATION_DE = register(
    Tool(
        id="perturbation_de",
        name="Perturbation differential expression",
        category="perturbation",
        framework="pydeseq2",
        fn=perturbation_de,
        params=PerturbationDEParams,
        needs="raw_counts",
        checks=_check_de,
        captures=("pydeseq2", "decoupler", "scanpy", "anndata", "numpy", "pandas"),
        reference=REPLOGLE_2022 + "; Squair et al. (2021) Nat Commun 12:5692; Muzellec et al. "
        "(2023) PyDESeq2. Bioinformatics 39:btad547",
        description="Each perturbation vs the non-targeting controls (pseudobulk PyDESeq2 over "
        "replicate lanes, else a cell-level Wilcoxon with a warning) plus a knockdown check of "
        "each target gene.",
    )
)
