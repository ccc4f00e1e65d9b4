"""Immune repertoire steps on scirpy's AnnData mode: chain-pairing QC, clonotypes, clonal expansion, overlap between samples.

The receptor chains of each cell live in ``obsm['airr']`` (an awkward array, attached by
:func:`scagent.data.vdj.attach_vdj`); scirpy (Sturm et al. 2020) does the biology: which
chains form a cell's receptor (``index_chains``), its pairing class (``chain_qc``),
CDR3 distances (``ir_dist``), clonotypes as connected cells of equal (or near) CDR3s
(``define_clonotype_clusters``), expansion (``clonal_expansion``) and overlap
(``repertoire_overlap``). The tools here pick the obs columns, check what they got, and
turn scirpy's outputs into tables a reader can check: expanded share per cell type,
clonotypes shared between samples.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from scagent.data.vdj import AIRR_KEY, receptor_cells
from scagent.errors import (
    InvalidDataError,
    InvalidParameterError,
    MissingDependencyError,
    MissingPrerequisiteError,
)
from scagent.tools._data import claim_key, mark_owned, obs_column, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "AIRR_QC",
    "CLONAL_EXPANSION",
    "CLONOTYPES",
    "REPERTOIRE_OVERLAP",
    "airr_qc",
    "check_repertoire_inputs",
    "clonal_expansion",
    "clonotypes",
    "repertoire_overlap",
]

STURM_2020 = (
    "Sturm et al. (2020) Scirpy: a Scanpy extension for analyzing single-cell T-cell "
    "receptor-sequencing data. Bioinformatics 36:4817-4818"
)
#: obs columns scirpy's chain_qc writes.
QC_COLUMNS = ("receptor_type", "receptor_subtype", "chain_pairing")
CHAIN_INDICES = "chain_indices"
#: Cell-type labels that carry a TCR / a BCR (matched case-insensitively in a label).
#: Whole words only (underscores separate words too), so 'Mast cell', 'Goblet cell' and
#: 'Club cell' are not T or B labels.
_L, _R = r"(?<![a-z0-9])", r"(?![a-z0-9])"
_T_LABEL = re.compile(
    rf"{_L}(?:T|T[ _-]?cells?|CD[48][a-z+]*|tregs?|MAIT|NKT|thymocytes?|gd[ _-]?T){_R}", re.I
)
_B_LABEL = re.compile(rf"{_L}(?:B|B[ _-]?cells?|plasma[ _-]?cells?|plasmablasts?){_R}", re.I)
#: A non-T/B group is flagged when more of its cells than this carry a receptor.
_FOREIGN_RECEPTOR_SHARE = 0.3


def _scirpy() -> Any:
    try:
        import scirpy
    except ImportError as exc:  # pragma: no cover - part of the repertoire extra
        raise MissingDependencyError(
            "the repertoire tools need scirpy", remedy="pip install 'scagent[repertoire]'"
        ) from exc
    return scirpy


def check_repertoire_inputs(adata: AnnData) -> None:
    """Raise :class:`InvalidDataError` saying what ``adata`` lacks for a repertoire analysis.

    Needs ``obsm['airr']`` (scirpy's awkward array of chains, one list per cell) with at
    least one cell carrying a chain.
    """
    if AIRR_KEY not in adata.obsm:
        raise InvalidDataError(
            "no immune receptor data: obsm['airr'] is absent, so there are no V(D)J chains "
            "to define clonotypes from",
            remedy="pass the Cell Ranger contig file with --vdj (filtered_contig_annotations"
            ".csv), or call scagent.data.vdj.attach_vdj(adata, read_vdj(path))",
        )
    value = adata.obsm[AIRR_KEY]
    try:
        has = receptor_cells(adata)
    except Exception as exc:  # anything but an awkward list array
        raise InvalidDataError(
            f"obsm['airr'] is a {type(value).__name__}, not scirpy's awkward array of chains",
            remedy="read the contigs with scagent.data.vdj.read_vdj and attach_vdj",
        ) from exc
    if not has.any():
        raise InvalidDataError(
            "obsm['airr'] holds no chain for any cell",
            remedy="check that the V(D)J barcodes match the expression cells (attach_vdj "
            "reports the match rate)",
        )


def _ensure_chain_indices(adata: AnnData) -> list[str]:
    """scirpy's chain indices (which chains are a cell's primary/secondary VJ and VDJ), recomputed.

    Indices left by an earlier run may point into other chain lists (receptor data
    replaced, cells subset and reordered) and nothing in them proves otherwise; computing
    them takes well under a second, so they are always computed from ``obsm['airr']``.
    """
    _scirpy().pp.index_chains(adata)
    return [f"obsm/{CHAIN_INDICES}", f"uns/{CHAIN_INDICES}"]


def _cell_type_column(adata: AnnData, value: str | None, *, clusters: bool) -> str | None:
    if value is None:
        return None

    def labels() -> Iterable[str]:
        crumbs = state_of(adata).breadcrumbs
        names = [c.name for c in crumbs.cell_types]
        if clusters:
            names += [c.name for c in crumbs.clusterings]
        return names

    return obs_column(adata, value, labels, missing=None)


def _sample_column(adata: AnnData, value: str) -> str | None:
    def samples() -> Iterable[str]:
        state = state_of(adata)
        cols = (*state.sample_columns, *state.donor_columns, *state.batch_columns)
        return [c.name for c in cols]

    return obs_column(adata, value, samples, param="sample_key", missing=None)


def _claim(adata: AnnData, slot: str, keys: Iterable[str], tool: str, overwrite: bool) -> list[str]:
    return [w for k in keys if (w := claim_key(adata, slot, k, tool, overwrite=overwrite))]


# ---------------------------------------------------------------------------------- airr_qc
class AirrQCParams(ParamsModel):
    groupby: str | None = Field(
        "auto",
        description="obs column of cell-type labels, to flag receptors on cells annotated as "
        "neither T nor B; 'auto' takes the inspector's first cell-type column; None skips it.",
    )
    overwrite: bool = Field(
        False,
        description="Replace receptor_type/receptor_subtype/chain_pairing not written by scagent.",
    )


def _share(mask: pd.Series | np.ndarray, of: int) -> float:
    return round(float(np.sum(mask)) / of, 4) if of else 0.0


def airr_qc(adata: AnnData, **params: Any) -> ToolResult:
    """Classify every cell's receptor chains (scirpy ``chain_qc``) and report the pairing mix.

    Parameters
    ----------
    adata
        Data with ``obsm['airr']``; modified in place.
    **params
        See :class:`AirrQCParams`.

    Returns
    -------
    ToolResult
        Writes ``obs['receptor_type']`` (TCR, BCR, ambiguous, multichain, no IR),
        ``obs['receptor_subtype']``, ``obs['chain_pairing']`` (single pair, orphan VJ/VDJ,
        extra VJ/VDJ, two full chains, multichain...) and ``obsm['chain_indices']``.
        Metrics: ``share_with_receptor`` (of all cells) and, of the cells with a receptor,
        ``share_single_pair``, ``share_orphan``, ``share_extra``, ``share_multichain``,
        ``share_ambiguous``. ``tables['chain_pairing']``; ``tables['by_group']`` per
        cell type when a label column is found.
    """
    p = parse_params(AirrQCParams, params, "airr_qc")
    check_repertoire_inputs(adata)
    ir = _scirpy()
    warnings_out = _claim(adata, "obs", QC_COLUMNS, "airr_qc", p.overwrite)
    written = _ensure_chain_indices(adata)
    ir.tl.chain_qc(adata)
    obs = adata.obs
    pairing = obs["chain_pairing"].astype(str)
    rtype = obs["receptor_type"].astype(str)
    has = (rtype != "no IR").to_numpy()
    n_ir = int(has.sum())
    pr = pairing[has]
    metrics: dict[str, float | int | str] = {
        "n_cells": adata.n_obs,
        "n_with_receptor": n_ir,
        "share_with_receptor": _share(has, adata.n_obs),
        "share_single_pair": _share(pr == "single pair", n_ir),
        "share_orphan": _share(pr.str.startswith("orphan"), n_ir),
        "share_extra": _share(pr.str.startswith("extra") | (pr == "two full chains"), n_ir),
        "share_multichain": _share(pr == "multichain", n_ir),
        "share_ambiguous": _share(pr == "ambiguous", n_ir),
        "n_tcr": int((rtype == "TCR").sum()),
        "n_bcr": int((rtype == "BCR").sum()),
    }
    if metrics["share_with_receptor"] < 0.05:
        warnings_out.append(
            f"only {metrics['share_with_receptor']:.1%} of cells carry a receptor chain; "
            "check the V(D)J barcode match"
        )
    if metrics["share_multichain"] > 0.05:
        warnings_out.append(
            f"{metrics['share_multichain']:.1%} of receptor cells are multichain (more than "
            "two VJ or VDJ chains): likely doublets; consider removing them"
        )
    if metrics["share_ambiguous"] > 0.02:
        warnings_out.append(
            f"{metrics['share_ambiguous']:.1%} of receptor cells carry both TCR and BCR "
            "chains (ambiguous): T-B doublets or contamination"
        )
    tables = {
        "chain_pairing": pairing.value_counts().rename_axis("chain_pairing")
        .reset_index(name="n_cells").to_dict("records")
    }  # fmt: skip
    groupby = _cell_type_column(adata, p.groupby, clusters=False)
    if groupby is not None:
        labels = obs[groupby].astype(str)
        by = pd.DataFrame({"group": labels, "receptor": has, "TCR": rtype == "TCR",
                           "BCR": rtype == "BCR"})  # fmt: skip
        table = by.groupby("group", observed=True).agg(
            n_cells=("receptor", "size"),
            share_receptor=("receptor", "mean"),
            share_TCR=("TCR", "mean"),
            share_BCR=("BCR", "mean"),
        )
        table = table.round(4).reset_index()
        tables["by_group"] = table.to_dict("records")
        named = labels.unique()
        # Only a column of lineage names can say which groups should lack receptors.
        if any(_T_LABEL.search(x) or _B_LABEL.search(x) for x in named):
            foreign = table[
                ~table["group"].map(lambda g: bool(_T_LABEL.search(g) or _B_LABEL.search(g)))
                & (table["share_receptor"] > _FOREIGN_RECEPTOR_SHARE)
                & (table["n_cells"] >= 10)
            ]
            for row in foreign.itertuples():
                warnings_out.append(
                    f"{row.share_receptor:.0%} of the {row.n_cells} cells annotated "
                    f"'{row.group}' ({groupby}) carry a receptor although the label is "
                    "neither T nor B: check the annotation or doublets"
                )
            metrics["n_groups_receptor_mismatch"] = len(foreign)
        metrics["groupby"] = groupby
    return ToolResult(
        summary=f"chain QC: {metrics['share_with_receptor']:.1%} of {adata.n_obs:,} cells carry "
        f"a receptor ({metrics['n_tcr']:,} TCR, {metrics['n_bcr']:,} BCR); of these "
        f"{metrics['share_single_pair']:.1%} single pair, {metrics['share_orphan']:.1%} orphan, "
        f"{metrics['share_extra']:.1%} extra chain, {metrics['share_multichain']:.1%} multichain",
        metrics=metrics,
        warnings=warnings_out,
        written=[
            *(f"obs/{c}" for c in QC_COLUMNS),
            *written,
            mark_owned(adata, "airr_qc", *(("obs", c) for c in QC_COLUMNS)),
        ],
        tables=tables,
    )


# ------------------------------------------------------------------------------ clonotypes
Metric = Literal[
    "identity", "levenshtein", "hamming", "normalized_hamming", "tcrdist", "alignment",
    "fastalignment",
]  # fmt: skip


class ClonotypesParams(ParamsModel):
    sequence: Literal["nt", "aa"] = Field(
        "nt",
        description="Compare CDR3 nucleotide ('nt') or amino-acid ('aa') sequences; "
        "identical nucleotides define a clonotype in the strict sense (one V(D)J "
        "recombination), amino acids with a distance metric define clonotype clusters that "
        "likely recognise the same antigen.",
    )
    metric: Metric = Field(
        "identity",
        description="CDR3 distance: 'identity' (exact match), 'levenshtein'/'hamming' (edit "
        "distance up to cutoff), 'tcrdist', 'alignment' (BLOSUM62, aa only).",
    )
    cutoff: int | None = Field(
        None,
        ge=0,
        le=100,
        description="Largest distance that still joins two CDR3s; None takes scirpy's default "
        "(0 for identity, 2 for levenshtein/hamming, 10 for alignment).",
    )
    receptor_arms: Literal["all", "any", "VJ", "VDJ"] = Field(
        "all",
        description="Which chains must match: 'all' (VJ and VDJ, scirpy's default), 'any', "
        "or only 'VJ' / 'VDJ'.",
    )
    dual_ir: Literal["any", "all", "primary_only"] = Field(
        "any",
        description="Cells with a second VJ/VDJ chain: match on 'any' pair (default), 'all' "
        "pairs, or the 'primary_only' pair.",
    )
    same_v_gene: bool = Field(False, description="Also require the same V genes.")
    within_group: str | None = Field(
        "receptor_type",
        description="obs column clonotypes may not cross (default: T and B cells are never "
        "one clonotype); None for no constraint.",
    )
    key_added: str = Field(
        "clone_id", description="obs column of the clonotype ids; its size goes to <key>_size."
    )
    overwrite: bool = Field(False, description="Replace columns not written by scagent.")


def clonotypes(adata: AnnData, **params: Any) -> ToolResult:
    """Define clonotypes from CDR3 distances (scirpy ``ir_dist`` + ``define_clonotype_clusters``).

    Parameters
    ----------
    adata
        Data with ``obsm['airr']``; modified in place.
    **params
        See :class:`ClonotypesParams`.

    Returns
    -------
    ToolResult
        Writes ``obs[key_added]`` (clonotype id; missing for cells without a usable
        receptor), ``obs[key_added + '_size']`` (cells in that clonotype),
        ``uns[key_added]`` (scirpy's clonotype distance record), ``uns['ir_dist_<sequence>_<metric>']``
        (CDR3 distances) and, when absent, ``obsm['chain_indices']`` and the QC columns.
        ``tables['top_clonotypes']``: the largest clonotypes with their CDR3s, cell types
        and samples.
    """
    p = parse_params(ClonotypesParams, params, "clonotypes")
    check_repertoire_inputs(adata)
    ir = _scirpy()
    size_key = f"{p.key_added}_size"
    warnings_out = _claim(adata, "obs", (p.key_added, size_key), "clonotypes", p.overwrite)
    warnings_out += _claim(adata, "uns", (p.key_added,), "clonotypes", p.overwrite)
    if p.metric in ("alignment", "fastalignment", "tcrdist") and p.sequence == "nt":
        raise InvalidParameterError(
            f"metric '{p.metric}' compares amino acids; it cannot run on sequence='nt'",
            remedy="pass sequence='aa'",
        )
    written = _ensure_chain_indices(adata)
    if p.within_group is not None and p.within_group not in adata.obs:
        if p.within_group in ("receptor_type", "receptor_subtype"):
            warnings_out += _claim(adata, "obs", QC_COLUMNS, "clonotypes", p.overwrite)
            ir.tl.chain_qc(adata)  # scirpy groups by these; they come from chain QC
            written += [f"obs/{c}" for c in QC_COLUMNS]
            mark_owned(adata, "clonotypes", *(("obs", c) for c in QC_COLUMNS))
        else:
            raise InvalidParameterError(
                f"within_group '{p.within_group}' is not an obs column",
                remedy="pass an existing obs column, 'receptor_type', or None",
            )
    distance_key = f"ir_dist_{p.sequence}_{p.metric}"
    ir.pp.ir_dist(
        adata, metric=p.metric, sequence=p.sequence, cutoff=p.cutoff, key_added=distance_key,
        n_jobs=1,
    )  # fmt: skip
    ir.tl.define_clonotype_clusters(
        adata,
        sequence=p.sequence,
        metric=p.metric,
        receptor_arms=p.receptor_arms,
        dual_ir=p.dual_ir,
        same_v_gene=p.same_v_gene,
        within_group=p.within_group,
        key_added=p.key_added,
        distance_key=distance_key,
        n_jobs=1,
    )
    clone = adata.obs[p.key_added]
    has = clone.notna()
    if not has.any():
        raise InvalidDataError(
            "no cell got a clonotype: no cell has a productive chain with a CDR3 for "
            f"receptor_arms='{p.receptor_arms}'",
            remedy="check airr_qc's chain pairing, or use receptor_arms='any'",
        )
    sizes = clone[has].value_counts()
    expanded = sizes[sizes >= 2]
    top = _top_clonotypes(adata, p.key_added, sizes.head(20).index)
    metrics: dict[str, float | int | str] = {
        "n_clonotypes": len(sizes),
        "n_cells_with_clonotype": int(has.sum()),
        "n_expanded_clonotypes": len(expanded),
        "share_cells_expanded": round(float(expanded.sum() / has.sum()), 4),
        "largest_clonotype": str(sizes.index[0]),
        "largest_size": int(sizes.iloc[0]),
        "definition": f"{p.sequence} {p.metric} cutoff={p.cutoff}, arms={p.receptor_arms}, "
        f"dual_ir={p.dual_ir}",
    }
    return ToolResult(
        summary=f"{len(sizes):,} clonotypes ({p.sequence} {p.metric}) among "
        f"{int(has.sum()):,} cells with a receptor; {len(expanded):,} expanded (2+ cells), "
        f"the largest with {int(sizes.iloc[0])} cells",
        metrics=metrics,
        warnings=warnings_out,
        written=[
            f"obs/{p.key_added}",
            f"obs/{size_key}",
            f"uns/{p.key_added}",
            f"uns/{distance_key}",
            *written,
            mark_owned(
                adata,
                "clonotypes",
                ("obs", p.key_added),
                ("obs", size_key),
                ("uns", p.key_added),
                ("uns", distance_key),
            ),
        ],
        tables={"top_clonotypes": top.to_dict("records")},
    )


def _top_clonotypes(adata: AnnData, clone_key: str, ids: Iterable[Any]) -> pd.DataFrame:
    """One row per clonotype: size, CDR3s of its first cell, majority cell type and samples."""
    ir = _scirpy()
    ids = list(ids)
    obs = adata.obs
    clone = obs[clone_key].astype(object)
    cdr3 = ir.get.airr(adata, "junction_aa", ["VJ_1", "VDJ_1"])
    label = _cell_type_column(adata, "auto", clusters=True)
    sample = _sample_column(adata, "auto")
    rows = []
    for cid in ids:
        cells = clone == cid
        first = cdr3.loc[cells].iloc[0]
        row: dict[str, Any] = {
            "clone_id": str(cid),
            "size": int(cells.sum()),
            "cdr3_vj": str(first.iloc[0]) if pd.notna(first.iloc[0]) else "",
            "cdr3_vdj": str(first.iloc[1]) if pd.notna(first.iloc[1]) else "",
        }
        if label is not None:
            row["cell_type"] = str(obs.loc[cells, label].astype(str).value_counts().index[0])
        if sample is not None:
            row["samples"] = ",".join(sorted(obs.loc[cells, sample].astype(str).unique()))
        rows.append(row)
    return pd.DataFrame(rows)


def _require_clones(adata: AnnData, key: str, tool: str) -> pd.Series:
    if key not in adata.obs:
        check_repertoire_inputs(adata)
        raise MissingPrerequisiteError(
            f"{tool} needs clonotypes in obs['{key}'], which is absent",
            remedy="run the clonotypes tool first",
        )
    clone = adata.obs[key]
    if clone.notna().sum() == 0:
        raise InvalidDataError(f"obs['{key}'] holds no clonotype for any cell")
    return clone


# ------------------------------------------------------------------------ clonal_expansion
class ClonalExpansionParams(ParamsModel):
    clone_key: str = Field("clone_id", description="obs column of the clonotype ids.")
    groupby: str = Field(
        "auto",
        description="obs column to summarise expansion by; 'auto' takes the first cell-type "
        "column, else the first clustering.",
    )
    expanded_in: str | None = Field(
        "auto",
        description="Count clonotype sizes within each level of this obs column (the sample, "
        "so a clone split over samples is not called expanded by pooling); 'auto' takes the "
        "sample column when there is one; None counts over the whole dataset.",
    )
    breakpoints: list[int] = Field(
        default_factory=lambda: [1, 2],
        description="Size classes: with [1, 2] a cell is in a clonotype of size 1, 2 or >2.",
    )
    min_size: int = Field(
        2, ge=2, le=1000, description="Clonotype size from which a cell counts as expanded."
    )
    key_added: str = Field(
        "clonal_expansion", description="obs column of the size class; uns key of the table."
    )
    overwrite: bool = Field(False, description="Replace keys not written by scagent.")


def clonal_expansion(adata: AnnData, **params: Any) -> ToolResult:
    """Which clonotypes are expanded (scirpy ``clonal_expansion``), and how much of each cell type is.

    Parameters
    ----------
    adata
        Data with clonotypes (the clonotypes tool); modified in place.
    **params
        See :class:`ClonalExpansionParams`.

    Returns
    -------
    ToolResult
        Writes ``obs[key_added]`` (size class of each cell's clonotype, e.g. ``<= 1``,
        ``<= 2``, ``> 2``) and ``uns[key_added]`` with ``by_group`` (per group: cells,
        cells with a clonotype, expanded cells, ``expanded_share`` of the cells with a
        clonotype, clonotypes, expanded clonotypes, the largest) and ``params``.
    """
    p = parse_params(ClonalExpansionParams, params, "clonal_expansion")
    clone = _require_clones(adata, p.clone_key, "clonal_expansion")
    groupby = _cell_type_column(adata, p.groupby, clusters=True)
    if groupby is None:
        raise InvalidParameterError(
            "clonal_expansion found no cell-type or cluster column to summarise by",
            remedy="pass groupby=<obs column>, or run leiden/annotate first",
        )
    expanded_in = None if p.expanded_in is None else _sample_column(adata, p.expanded_in)
    breakpoints = sorted({int(b) for b in p.breakpoints})
    if not breakpoints or breakpoints[0] < 1:
        raise InvalidParameterError(f"breakpoints {p.breakpoints} must be positive integers")
    warnings_out = _claim(adata, "obs", (p.key_added,), "clonal_expansion", p.overwrite)
    warnings_out += _claim(adata, "uns", (p.key_added,), "clonal_expansion", p.overwrite)
    _scirpy().tl.clonal_expansion(
        adata,
        target_col=p.clone_key,
        expanded_in=expanded_in,
        breakpoints=tuple(breakpoints),
        key_added=p.key_added,
    )
    obs = adata.obs
    unit = [p.clone_key] if expanded_in is None else [expanded_in, p.clone_key]
    frame = obs[unit].astype(object).dropna()
    size = frame.groupby(unit, observed=True)[p.clone_key].transform("size")
    cell_size = pd.Series(np.nan, index=obs.index)
    cell_size.loc[frame.index] = size.to_numpy()
    is_expanded = cell_size >= p.min_size
    table = pd.DataFrame(
        {
            "group": obs[groupby].astype(str),
            "has": clone.notna(),
            "expanded": is_expanded,
            "clone": clone.astype(object),
        }
    )
    rows = []
    for group, part in table.groupby("group", observed=True):
        with_clone = part[part["has"]]
        n_clone = len(with_clone)
        n_exp = int(part["expanded"].sum())
        per_clone = with_clone["clone"].value_counts()
        rows.append({
            "group": str(group), "n_cells": len(part), "n_with_clonotype": n_clone,
            "n_expanded": n_exp, "expanded_share": round(n_exp / n_clone, 4) if n_clone else 0.0,
            "n_clonotypes": len(per_clone),
            "n_expanded_clonotypes": int(part.loc[part["expanded"], "clone"].nunique()),
            "largest_clonotype": str(per_clone.index[0]) if len(per_clone) else "",
            "largest_size": int(per_clone.iloc[0]) if len(per_clone) else 0,
        })  # fmt: skip
    by_group = pd.DataFrame(rows).sort_values("expanded_share", ascending=False)
    by_group = by_group.reset_index(drop=True)
    adata.uns[p.key_added] = {
        "by_group": by_group,
        "params": {
            "clone_key": p.clone_key,
            "groupby": groupby,
            "expanded_in": expanded_in or "",
            "breakpoints": breakpoints,
            "min_size": p.min_size,
        },
    }
    n_exp = int(is_expanded.sum())
    n_clone = int(clone.notna().sum())
    top = by_group[by_group["n_with_clonotype"] >= 5].head(1)
    most = (
        f"; most expanded: {top['group'].iloc[0]} ({top['expanded_share'].iloc[0]:.1%})"
        if len(top)
        else ""
    )
    return ToolResult(
        summary=f"{n_exp:,} of {n_clone:,} cells with a clonotype ({n_exp / n_clone:.1%}) are in "
        f"clonotypes of {p.min_size}+ cells"
        + (f" within a {expanded_in}" if expanded_in else "")
        + f", by '{groupby}'{most}",
        metrics={
            "groupby": groupby,
            "expanded_in": expanded_in or "",
            "n_expanded_cells": n_exp,
            "expanded_share": round(n_exp / n_clone, 4),
            "most_expanded_group": str(top["group"].iloc[0]) if len(top) else "",
        },
        warnings=warnings_out,
        written=[
            f"obs/{p.key_added}",
            f"uns/{p.key_added}",
            mark_owned(adata, "clonal_expansion", ("obs", p.key_added), ("uns", p.key_added)),
        ],
        tables={"expansion_by_group": by_group.to_dict("records")},
    )


# ---------------------------------------------------------------------- repertoire_overlap
class RepertoireOverlapParams(ParamsModel):
    sample_key: str = Field(
        "auto",
        description="obs column of the samples to compare; 'auto' takes the inspector's "
        "sample (else donor, else batch) column.",
    )
    clone_key: str = Field("clone_id", description="obs column of the clonotype ids.")
    key_added: str = Field("repertoire_overlap", description="uns key of the results.")
    overwrite: bool = Field(False, description="Replace a uns[key_added] not written by scagent.")


def repertoire_overlap(adata: AnnData, **params: Any) -> ToolResult:
    """Clonotypes shared between samples: Jaccard index and overlap per pair (scirpy ``repertoire_overlap``).

    Parameters
    ----------
    adata
        Data with clonotypes; ``uns[key_added]`` is added.
    **params
        See :class:`RepertoireOverlapParams`.

    Returns
    -------
    ToolResult
        Writes ``uns[key_added]`` with ``pairs`` (per pair of samples: clonotypes in each,
        shared, ``jaccard`` = shared / union, ``overlap`` = shared / the smaller),
        ``jaccard_matrix`` (samples x samples), ``shared_clonotypes`` (each clonotype found
        in two or more samples, its cells per sample and cell type) and ``params``.
    """
    p = parse_params(RepertoireOverlapParams, params, "repertoire_overlap")
    _require_clones(adata, p.clone_key, "repertoire_overlap")
    sample_key = _sample_column(adata, p.sample_key)
    if sample_key is None:
        raise InvalidParameterError(
            "repertoire_overlap found no sample column",
            remedy="pass sample_key=<obs column of the samples>",
        )
    samples = adata.obs[sample_key].astype(str)
    if samples.nunique() < 2:
        raise InvalidDataError(
            f"obs['{sample_key}'] has one level; overlap compares two or more samples",
            remedy="pass sample_key=<a column with several samples>",
        )
    warnings_out = _claim(adata, "uns", (p.key_added,), "repertoire_overlap", p.overwrite)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scirpy's DataFrame.applymap
        weighted, distance, _ = _scirpy().tl.repertoire_overlap(
            adata, sample_key, target_col=p.clone_key, overlap_measure="jaccard", inplace=False
        )
    from scipy.spatial.distance import squareform

    presence = weighted > 0
    names = [str(s) for s in presence.index]
    jaccard = pd.DataFrame(1 - squareform(distance), index=names, columns=names)
    counts = presence.sum(axis=1)
    rows = []
    for i, a in enumerate(presence.index):
        for b in presence.index[i + 1 :]:
            shared = int((presence.loc[a] & presence.loc[b]).sum())
            n_a, n_b = int(counts[a]), int(counts[b])
            rows.append({
                "sample_a": str(a), "sample_b": str(b), "n_clonotypes_a": n_a,
                "n_clonotypes_b": n_b, "n_shared": shared,
                "jaccard": round(float(jaccard.loc[str(a), str(b)]), 6),
                "overlap": round(shared / min(n_a, n_b), 6) if min(n_a, n_b) else 0.0,
            })  # fmt: skip
    pairs = pd.DataFrame(rows)
    in_many = presence.columns[presence.sum(axis=0) >= 2]
    label = _cell_type_column(adata, "auto", clusters=True)
    shared_rows = []
    for cid in in_many:
        cells = weighted[cid]
        row = {
            "clone_id": str(cid),
            "n_samples": int((cells > 0).sum()),
            "n_cells": int(cells.sum()),
            "samples": ",".join(str(s) for s in cells.index[cells > 0]),
            "cells_per_sample": ",".join(f"{s}:{int(n)}" for s, n in cells.items() if n > 0),
        }
        if label is not None:
            mask = adata.obs[p.clone_key].astype(object) == cid
            row["cell_type"] = str(adata.obs.loc[mask, label].astype(str).value_counts().index[0])
        shared_rows.append(row)
    shared_df = pd.DataFrame(
        shared_rows,
        columns=["clone_id", "n_samples", "n_cells", "samples", "cells_per_sample"]
        + (["cell_type"] if label is not None else []),
    ).sort_values("n_cells", ascending=False, ignore_index=True)
    adata.uns[p.key_added] = {
        "pairs": pairs,
        "jaccard_matrix": jaccard.reset_index(names="sample"),
        "shared_clonotypes": shared_df,
        "params": {"sample_key": sample_key, "clone_key": p.clone_key, "measure": "jaccard"},
    }
    named = ", ".join(shared_df["clone_id"].head(5))
    mean_j = float(pairs["jaccard"].mean()) if len(pairs) else 0.0
    return ToolResult(
        summary=f"{len(shared_df):,} clonotype(s) shared between {len(names)} samples of "
        f"'{sample_key}' (mean Jaccard {mean_j:.4f})" + (f": {named}" if named else ""),
        metrics={
            "sample_key": sample_key,
            "n_samples": len(names),
            "n_shared_clonotypes": len(shared_df),
            "shared_clonotypes": ", ".join(shared_df["clone_id"])[:500],
            "mean_jaccard": round(mean_j, 6),
        },
        warnings=warnings_out,
        written=[
            f"uns/{p.key_added}",
            mark_owned(adata, "repertoire_overlap", ("uns", p.key_added)),
        ],
        tables={
            "overlap_pairs": pairs.to_dict("records"),
            "shared_clonotypes": shared_df.to_dict("records"),
        },
    )


# ------------------------------------------------------------------------------- registry
_CAPTURES = ("scirpy", "awkward", "anndata", "pandas", "numpy")

AIRR_QC = register(
    Tool(
        id="airr_qc",
        name="Receptor chain QC (scirpy)",
        category="repertoire",
        framework="scirpy",
        fn=airr_qc,
        params=AirrQCParams,
        captures=_CAPTURES,
        reference=STURM_2020,
        description="Classify each cell's immune receptor chains (TCR/BCR, single pair, "
        "orphan, extra chain, multichain) and flag receptors on non-T/B cells.",
    )
)
CLONOTYPES = register(
    Tool(
        id="clonotypes",
        name="Clonotypes (scirpy)",
        category="repertoire",
        framework="scirpy",
        fn=clonotypes,
        params=ClonotypesParams,
        captures=_CAPTURES,
        reference=STURM_2020,
        description="Group cells into clonotypes by CDR3 identity (or a distance cutoff) of "
        "their VJ and VDJ chains.",
    )
)
CLONAL_EXPANSION = register(
    Tool(
        id="clonal_expansion",
        name="Clonal expansion (scirpy)",
        category="repertoire",
        framework="scirpy",
        fn=clonal_expansion,
        params=ClonalExpansionParams,
        captures=_CAPTURES,
        reference=STURM_2020,
        description="Mark cells of expanded clonotypes and tabulate the expanded share per "
        "cell type or cluster.",
    )
)
REPERTOIRE_OVERLAP = register(
    Tool(
        id="repertoire_overlap",
        name="Repertoire overlap between samples (scirpy)",
        category="repertoire",
        framework="scirpy",
        fn=repertoire_overlap,
        params=RepertoireOverlapParams,
        captures=_CAPTURES,
        reference=STURM_2020,
        description="Jaccard index and overlap of clonotypes between samples; names the "
        "shared clonotypes.",
    )
)
