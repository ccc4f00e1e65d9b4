"""Gene-set enrichment of DE results: over-representation of the DE genes, and rank-based ULM and GSEA.

The DE results may come from ``pseudobulk_de``, ``de_within_cluster`` or any
``rank_genes_groups`` table (``markers``). Gene sets come from a GMT file, a dict, or the
marker database (one signature per cell type). Three questions, three methods:

- ORA: are a set's genes over-represented among the significant genes (up or down)?
  One-sided hypergeometric test against the genes that were tested.
- ULM (decoupler): does the DE statistic of a set's genes differ from the others'
  (univariate linear model; its t value is the score)?
- GSEA prerank (decoupler): are a set's genes concentrated at the top or bottom of the
  ranking (running-sum enrichment score, permutation p-value)?

p-values are adjusted by Benjamini-Hochberg within each group and method.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_validator

from scagent.errors import (
    InvalidDataError,
    InvalidParameterError,
    MissingDependencyError,
    MissingPrerequisiteError,
)
from scagent.tools._data import claim_key, mark_owned, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["EnrichmentParams", "de_table", "enrichment", "resolve_gene_sets"]

#: DE result keys looked for, in order, when ``de_key='auto'``.
_AUTO_KEYS = ("pseudobulk_de", "de_within", "rank_genes_groups")


class EnrichmentParams(ParamsModel):
    de_key: str = Field(
        "auto",
        description="uns key of the DE results (pseudobulk_de, de_within_cluster or a "
        "rank_genes_groups table); 'auto' takes the first of pseudobulk_de, de_within, "
        "rank_genes_groups present.",
    )
    groups: list[str] | None = Field(
        None,
        description="Groups (cell types / clusters) of the DE results to test; None tests all.",
    )
    gene_sets: str | dict[str, list[str]] = Field(
        "markerdb",
        description="A GMT file path, a {set: [genes]} mapping, or 'markerdb' for one positive "
        "marker signature per cell type from the marker database.",
    )
    species: Literal["auto", "human", "mouse"] = Field(
        "auto", description="Species of the marker-database signatures; 'auto' asks the inspector."
    )
    tissue: str | None = Field(
        None, description="Restrict marker-database signatures to a tissue (and related ones)."
    )
    methods: list[Literal["ora", "ulm", "gsea"]] = Field(
        default_factory=lambda: ["ora", "ulm", "gsea"], description="Methods to run."
    )
    de_alpha: float = Field(
        0.05,
        gt=0.0,
        lt=1.0,
        description="Adjusted p-value below which a gene counts as DE for ORA.",
    )
    min_abs_lfc: float = Field(
        0.0, ge=0.0, description="ORA: a DE gene also needs |log2 fold change| of at least this."
    )
    min_size: int = Field(
        5,
        ge=1,
        le=1000,
        description="Smallest gene set (genes among those tested) kept; 5-15 is usual "
        "(Subramanian et al. 2005 used 15).",
    )
    max_size: int = Field(500, ge=2, le=20_000, description="Largest gene set kept.")
    permutations: int = Field(
        1000,
        ge=100,
        le=100_000,
        description="GSEA permutations (p-value resolution 1/permutations).",
    )
    fdr: float = Field(0.05, gt=0.0, lt=1.0, description="FDR level of the calls.")
    seed: int = Field(0, ge=0, description="Seed of the GSEA permutations.")
    key_added: str = Field("enrichment", description="uns key of the results.")
    export_dir: str | None = Field(
        None, description="Folder for the results CSV and the dot plot (PNG, SVG)."
    )
    overwrite: bool = Field(False, description="Replace a uns[key_added] not written by scagent.")

    @field_validator("methods", "groups", mode="before")
    @classmethod
    def _split_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


def de_table(adata: AnnData, key: str) -> pd.DataFrame:
    """DE results under ``uns[key]`` as one long table: ``group, gene, stat, lfc, pvalue, padj``.

    Reads the tables of ``pseudobulk_de`` / ``de_within_cluster`` and scanpy's
    ``rank_genes_groups`` structure.

    Raises
    ------
    MissingPrerequisiteError
        If ``uns[key]`` holds no DE result scagent can read.
    """
    import scanpy as sc

    entry = adata.uns.get(key)
    if isinstance(entry, dict) and isinstance(entry.get("results"), pd.DataFrame):
        t = entry["results"]
        if "stat" in t:  # pseudobulk_de
            out = t.rename(columns={"log2FoldChange": "lfc"})
        elif "score" in t:  # de_within_cluster
            out = t.rename(columns={"score": "stat", "logfoldchange": "lfc"})
        else:
            raise MissingPrerequisiteError(f"uns['{key}'] holds results of no DE method")
    elif isinstance(entry, dict) and "names" in entry:
        out = sc.get.rank_genes_groups_df(adata, group=None, key=key)
        if "group" not in out:
            out.insert(0, "group", entry["names"].dtype.names[0])
        out = out.rename(
            columns={
                "names": "gene",
                "scores": "stat",
                "logfoldchanges": "lfc",
                "pvals": "pvalue",
                "pvals_adj": "padj",
            }
        )
    else:
        raise MissingPrerequisiteError(
            f"uns['{key}'] holds no DE results",
            remedy="run pseudobulk_de, de_within_cluster or markers first, or pass de_key=",
        )
    for col in ("lfc", "pvalue", "padj"):
        if col not in out:
            out[col] = np.nan
    out = out[["group", "gene", "stat", "lfc", "pvalue", "padj"]].copy()
    out["group"] = out["group"].astype(str)
    out["gene"] = out["gene"].astype(str)
    return out


def _find_de_key(adata: AnnData, key: str) -> str:
    if key != "auto":
        if key not in adata.uns:
            raise MissingPrerequisiteError(
                f"uns['{key}'] does not exist", remedy="run a DE tool first, or pass another de_key"
            )
        return key
    for candidate in _AUTO_KEYS:
        if candidate in adata.uns:
            return candidate
    state = state_of(adata)
    if state.breadcrumbs.de:
        return state.breadcrumbs.de[0].key
    raise MissingPrerequisiteError(
        "enrichment found no DE results in uns",
        remedy="run pseudobulk_de (conditions), de_within_cluster (subtypes) or markers first",
    )


def resolve_gene_sets(
    gene_sets: str | dict[str, list[str]], species: str, tissue: str | None = None
) -> tuple[dict[str, list[str]], str]:
    """Gene sets from a GMT path, a mapping or ``'markerdb'``; returns (sets, a description)."""
    from scagent.knowledge.genesets import read_gmt

    if isinstance(gene_sets, dict):
        return {str(k): [str(g) for g in v] for k, v in gene_sets.items()}, "given gene sets"
    if gene_sets.lower() == "markerdb":
        from scagent.knowledge import MarkerDB

        db = MarkerDB.default()
        if species in ("human", "mouse"):
            db = db.subset(species=species)
        if tissue is not None:
            db = db.subset(tissue=tissue)
        t = db.table
        t = t[t["polarity"].astype(str) == "positive"]
        sets = {
            str(ct): list(dict.fromkeys(g.astype(str)))
            for ct, g in t.groupby("cell_type", observed=True)["gene"]
        }
        return sets, f"marker database ({species}{', ' + tissue if tissue else ''})"
    path = Path(gene_sets)
    if path.suffix.lower() != ".gmt":
        raise InvalidParameterError(
            f"gene_sets='{gene_sets}' is neither 'markerdb' nor a .gmt file",
            remedy="pass a GMT file path, a {set: [genes]} mapping, or 'markerdb'",
        )
    return read_gmt(path), f"GMT file {path.name}"


def _overlap(
    sets: dict[str, list[str]],
    universe: pd.Index,
    var_names: pd.Index,
    min_size: int,
    max_size: int,
) -> dict[str, list[str]]:
    """Sets restricted to ``universe``; an error that says the overlap when none is usable."""
    in_universe = set(universe)
    kept = {}
    for name, genes in sets.items():
        shared = [g for g in dict.fromkeys(genes) if g in in_universe]
        if min_size <= len(shared) <= max_size:
            kept[name] = shared
    if kept:
        return kept
    all_genes = {g for genes in sets.values() for g in genes}
    in_var = all_genes & set(var_names)
    in_tested = all_genes & in_universe
    upper = {g.upper() for g in var_names}
    case_only = {g for g in all_genes - in_var if g.upper() in upper}
    best = max((len([g for g in genes if g in in_universe]) for genes in sets.values()), default=0)
    hint = ""
    if case_only:
        hint = (
            f" {len(case_only)} set genes match var_names only when case is ignored (e.g. "
            f"{sorted(case_only)[:3]}): the gene sets are probably of another species"
        )
    example = sorted(all_genes)[:3]
    raise InvalidDataError(
        f"the {len(sets)} gene sets ({len(all_genes)} genes, e.g. {example}) share "
        f"{len(in_var)} genes with var_names and {len(in_tested)} with the {len(universe)} "
        f"tested genes; the largest set has {best} tested genes, and a set needs "
        f"{min_size} to {max_size}.{hint}",
        remedy="use gene sets of this species and gene-id type (symbols vs Ensembl ids), "
        "convert them (scagent.knowledge.genesets.convert_sets), or lower min_size",
    )


def _ora(
    de: pd.DataFrame, sets: dict[str, list[str]], alpha: float, min_lfc: float
) -> pd.DataFrame:
    """Over-representation of the up- and of the down-regulated genes among the tested genes."""
    from scagent.knowledge.genesets import overrepresentation

    tested = de.dropna(subset=["padj"])
    sig = (tested["padj"] < alpha) & (tested["lfc"].abs().fillna(np.inf) >= min_lfc)
    queries = {
        "up": tested.loc[sig & (tested["lfc"] > 0), "gene"].tolist(),
        "down": tested.loc[sig & (tested["lfc"] < 0), "gene"].tolist(),
    }
    res = overrepresentation(queries, sets, tested["gene"].tolist())
    return pd.DataFrame(
        {
            "direction": res["query"],
            "source": res["gene_set"],
            "score": res["log2_enrichment"],
            "pvalue": res["pvalue"],
            "set_size": res["set_size"],
            "n_hits": res["overlap"],
            "genes": [",".join(g.split(",")[:50]) if g else "" for g in res["genes"]],
        }
    )


def _rank_method(
    method: str,
    de: pd.DataFrame,
    sets: dict[str, list[str]],
    min_size: int,
    permutations: int,
    seed: int,
) -> pd.DataFrame:
    """decoupler's ULM or GSEA on the DE statistic of one group (one row: the contrast)."""
    import decoupler as dc

    from scagent.knowledge.genesets import to_long

    stat = de.dropna(subset=["stat"]).drop_duplicates("gene").set_index("gene")["stat"]
    stat = stat[np.isfinite(stat)]
    mat = pd.DataFrame([stat.to_numpy(float)], index=["contrast"], columns=stat.index)
    net = to_long(sets)
    net = net[net["target"].isin(stat.index)]
    kwargs: dict[str, Any] = {"tmin": min_size}
    if method == "gsea":
        # decoupler 2.2 shuffles only when ``seed`` is truthy (``if seed:``): with seed=0
        # every "permutation" is the identity, so every p-value is 1. Shift by one.
        kwargs.update(times=permutations, seed=seed + 1)
    fn = dc.mt.ulm if method == "ulm" else dc.mt.gsea
    try:
        es, padj = fn(mat, net, **kwargs)
    except AssertionError as exc:  # decoupler validates with assert
        raise InvalidDataError(f"decoupler {method} rejected the input: {exc}") from None
    sizes = net.groupby("source").size()
    out = pd.DataFrame(
        {
            "source": es.columns.astype(str),
            "score": es.iloc[0].to_numpy(float),
            "padj_decoupler": padj.iloc[0].to_numpy(float),
        }
    )
    out["set_size"] = out["source"].map(sizes).fillna(0).astype(int)
    return out


def enrichment(adata: AnnData, **params: Any) -> ToolResult:
    """Enrichment of gene sets in DE results: ORA (hypergeometric), ULM and GSEA prerank (decoupler).

    Parameters
    ----------
    adata
        The data with DE results in ``uns``; ``uns[key_added]`` is added.
    **params
        See :class:`EnrichmentParams`.

    Returns
    -------
    ToolResult
        Writes ``uns[key_added]`` with ``results`` (one row per group, method, direction and
        gene set: ``group, method, direction, source, score, pvalue, padj, set_size,
        n_hits, genes``; ``direction`` is ``up``/``down`` for ORA and ``both`` for the rank
        methods, whose sign of ``score`` gives the direction) and ``params``.
        ``tables['top']`` lists the significant sets.

    Raises
    ------
    MissingPrerequisiteError
        No DE results.
    InvalidDataError
        No gene set shares enough genes with the tested genes; the message gives the overlap
        with var_names and with the tested genes, and flags a species (case) mismatch.
    """
    from scipy.stats import false_discovery_control

    p = parse_params(EnrichmentParams, params, "enrichment")
    if "gsea" in p.methods or "ulm" in p.methods:
        try:
            import decoupler  # noqa: F401
        except ImportError:  # pragma: no cover - decoupler is a core dependency
            raise MissingDependencyError(
                "enrichment's ulm and gsea need decoupler", remedy="pip install decoupler"
            ) from None
    key = _find_de_key(adata, p.de_key)
    de = de_table(adata, key)
    if p.groups is not None:
        unknown = [g for g in p.groups if g not in set(de["group"])]
        if unknown:
            raise InvalidParameterError(
                f"groups {unknown} have no DE results in uns['{key}']",
                remedy=f"choose from: {', '.join(sorted(de['group'].unique())[:30])}",
            )
        de = de[de["group"].isin(p.groups)]
    species = p.species
    if species == "auto":
        species = state_of(adata).species
    sets_all, described = resolve_gene_sets(p.gene_sets, species, p.tissue)
    universe = pd.Index(de.dropna(subset=["padj"])["gene"].unique())
    if universe.empty:
        universe = pd.Index(de["gene"].unique())
    sets = _overlap(sets_all, universe, adata.var_names, p.min_size, p.max_size)
    warnings = []
    if (w := claim_key(adata, "uns", p.key_added, "enrichment", overwrite=p.overwrite)) is not None:
        warnings.append(w)
    dropped = len(sets_all) - len(sets)
    if dropped:
        warnings.append(
            f"{dropped} of {len(sets_all)} gene sets have fewer than {p.min_size} or more than "
            f"{p.max_size} tested genes and were left out"
        )

    frames = []
    for group, rows in de.groupby("group", sort=False):
        for method in p.methods:
            if method == "ora":
                if rows["padj"].isna().all():
                    warnings.append(f"group '{group}': no adjusted p-values, ORA skipped")
                    continue
                res = _ora(rows, sets, p.de_alpha, p.min_abs_lfc)
                res["padj"] = np.nan
                for idx in res.groupby("direction").groups.values():
                    res.loc[idx, "padj"] = false_discovery_control(
                        res.loc[idx, "pvalue"].to_numpy(), method="bh"
                    )
            else:
                res = _rank_method(method, rows, sets, p.min_size, p.permutations, p.seed)
                # decoupler returns BH-adjusted p-values across the sets of one contrast.
                res = res.rename(columns={"padj_decoupler": "padj"})
                if method == "gsea":
                    # A permutation p-value is never below 1/permutations; decoupler reports 0.
                    res["padj"] = res["padj"].clip(lower=1.0 / p.permutations)
                res["pvalue"] = np.nan
                res["direction"] = "both"
                res["n_hits"] = np.nan
                res["genes"] = ""
            res.insert(0, "method", method)
            res.insert(0, "group", str(group))
            frames.append(res)
    if not frames:
        raise InvalidDataError("enrichment produced no results (no group could be tested)")
    columns = [
        "group",
        "method",
        "direction",
        "source",
        "score",
        "pvalue",
        "padj",
        "set_size",
        "n_hits",
        "genes",
    ]
    results = pd.concat(frames, ignore_index=True)[columns]
    results["n_hits"] = results["n_hits"].astype(float)
    results["set_size"] = results["set_size"].astype(int)
    results = results.sort_values(["group", "method", "padj"], kind="stable").reset_index(drop=True)
    adata.uns[p.key_added] = {
        "results": results,
        "params": {
            "de_key": key,
            "gene_sets": described,
            "n_sets": len(sets),
            "methods": list(p.methods),
            "de_alpha": p.de_alpha,
            "fdr": p.fdr,
            "min_size": p.min_size,
            "max_size": p.max_size,
            "permutations": p.permutations,
            "seed": p.seed,
        },
    }
    hits = results[results["padj"] < p.fdr]
    metrics: dict[str, float | int | str] = {
        "de_key": key,
        "n_sets": len(sets),
        "n_groups": int(results["group"].nunique()),
        "n_significant": len(hits),
        "top": "; ".join(
            f"{r.group}/{r.method}: {r.source}"
            for r in hits.groupby(["group", "method"]).head(1).itertuples()
        )[:500],
    }
    if p.export_dir is not None:
        files = export_enrichment(adata, p.export_dir, key=p.key_added, fdr=p.fdr)
        metrics["export_dir"] = str(p.export_dir)
        metrics["n_files"] = len(files)
    return ToolResult(
        summary=f"{', '.join(p.methods)} of {len(sets)} gene sets ({described}) in "
        f"{metrics['n_groups']} group(s) of uns['{key}']: {len(hits)} significant at FDR {p.fdr} "
        f"in uns['{p.key_added}']",
        metrics=metrics,
        warnings=warnings,
        written=[f"uns/{p.key_added}", mark_owned(adata, "enrichment", ("uns", p.key_added))],
        tables={
            "top": hits.groupby(["group", "method"])
            .head(5)[["group", "method", "direction", "source", "score", "padj"]]
            .to_dict("records")
        },
    )


def export_enrichment(
    adata: AnnData,
    out_dir: str | os.PathLike[str],
    *,
    key: str = "enrichment",
    fdr: float = 0.05,
    n_top: int = 10,
) -> list[Path]:
    """Write ``<key>.csv`` and one dot plot per method (``<key>_<method>_dotplot.png/.svg``)."""
    from scagent._atomic import atomic_write_text
    from scagent.report import plots as plotting

    entry = adata.uns.get(key)
    if not isinstance(entry, dict) or "results" not in entry:
        raise InvalidParameterError(f"uns['{key}'] holds no enrichment results")
    results = entry["results"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{key}.csv"]
    atomic_write_text(written[0], results.to_csv(index=False))
    for method, rows in results.groupby("method", sort=False):
        if method == "ora":
            rows = rows.assign(group=rows["group"] + " " + rows["direction"])
        fig = plotting.enrichment_dotplot(
            rows, n_top=n_top, title=f"{method}: top gene sets (size: -log10 adjusted p)"
        )
        written.extend(plotting.save_figure(fig, out / f"{key}_{method}_dotplot"))
    return written


def _check_enrichment(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    table = adata.uns[p.key_added]["results"]  # type: ignore[attr-defined]
    padj = table["padj"].dropna()
    if ((padj < 0) | (padj > 1)).any():
        raise InvalidDataError("enrichment produced adjusted p-values outside [0, 1]")
    return []


ENRICHMENT = register(
    Tool(
        id="enrichment",
        name="Gene-set enrichment",
        category="enrichment",
        framework="decoupler",
        fn=enrichment,
        params=EnrichmentParams,
        checks=_check_enrichment,
        captures=("decoupler", "scipy", "pandas", "anndata"),
        reference="Badia-i-Mompel et al. (2022) decoupleR: ensemble of computational methods "
        "to infer biological activities from omics data. Bioinform Adv 2:vbac016; Subramanian "
        "et al. (2005) PNAS 102:15545-15550 (GSEA)",
        description="ORA, ULM and GSEA prerank of DE results against GMT gene sets or marker-DB "
        "signatures, with BH FDR.",
    )
)
