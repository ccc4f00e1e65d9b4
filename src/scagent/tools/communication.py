"""Cell-cell communication: LIANA+'s consensus of ligand-receptor methods between every pair of cell types.

LIANA+ (Dimitrov et al. 2024) scores each ligand-receptor pair of a resource for every
(sender, receiver) pair of groups with CellPhoneDB, Connectome, log2FC, NATMI,
SingleCellSignalR and a CellChat-like method, and aggregates their ranks (robust rank
aggregation) into ``magnitude_rank`` (how strongly the pair is expressed) and
``specificity_rank`` (how specific it is to this sender and receiver). This module adds
what the library leaves to the caller: it finds the cell-type column, gives LIANA
log-normalised expression however the data is stored, maps gene ids to symbols, reads a
user's resource file, and refuses, with the reason, data whose genes barely meet the
resource (ids instead of symbols, mouse genes against a human resource).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from scagent.errors import (
    InputNotFoundError,
    InvalidDataError,
    InvalidParameterError,
    KnowledgeError,
    MissingDependencyError,
)
from scagent.tools._data import claim_key, mark_owned, obs_column, ready_for, state_of
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from scagent.data.state import DataState

__all__ = [
    "COMMUNICATION",
    "CommunicationParams",
    "check_communication_inputs",
    "communication",
    "communication_results",
    "covered_interactions",
    "export_communication",
    "gene_overlap_problem",
    "load_resource",
    "plot_communication",
    "resolve_groupby",
    "shipped_resources",
    "symbols_for",
]

#: Column names a resource file may use for the ligand and the receptor (lower case).
#: OmniPath uses source/target_genesymbol, CellPhoneDB-style tables partner_a/b.
LIGAND_ALIASES = (
    "ligand", "ligand_complex", "ligand_genesymbol", "ligand_symbol", "ligand_gene",
    "source_genesymbol", "source", "genesymbol_intercell_source", "partner_a", "gene_a",
)  # fmt: skip
RECEPTOR_ALIASES = (
    "receptor", "receptor_complex", "receptor_genesymbol", "receptor_symbol", "receptor_gene",
    "target_genesymbol", "target", "genesymbol_intercell_target", "partner_b", "gene_b",
)  # fmt: skip
#: Fewer ligand-receptor pairs than this with every gene in the data: the genes do not
#: match the resource (ids, other species), and LIANA's ranks would mean nothing.
MIN_COVERED_INTERACTIONS = 10
#: The order of interactions in tables, plots and truth scoring: specific first.
RANK_ORDER = ["specificity_rank", "magnitude_rank"]
#: Most sender-receiver columns a dot plot shows.
_MAX_COLUMNS = 40
DIMITROV_2024 = (
    "Dimitrov et al. (2024) LIANA+ provides an all-in-one framework for cell-cell "
    "communication inference. Nat Cell Biol 26:1613-1622; Dimitrov et al. (2022) Comparison "
    "of methods and resources for cell-cell communication inference from single-cell "
    "RNA-Seq data. Nat Commun 13:3224"
)


class CommunicationParams(ParamsModel):
    groupby: str = Field(
        "auto",
        description="obs column of the cell types (senders and receivers); 'auto' takes the "
        "inspector's first cell-type column (e.g. annotation_label), else the first clustering.",
    )
    resource: str = Field(
        "consensus",
        description="Ligand-receptor resource: a name LIANA ships ('consensus', "
        "'mouseconsensus', 'cellphonedb', 'cellchatdb', ...) or a CSV/TSV path with ligand "
        "and receptor columns (complexes as subunits joined by '_').",
    )
    expr_prop: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Share of a group's cells that must express every subunit of a ligand or "
        "receptor; 0.1 is LIANA's default.",
    )
    min_cells: int = Field(
        5, ge=1, description="Groups with fewer cells are left out (LIANA's default 5)."
    )
    n_perms: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Permutations of CellPhoneDB's specificity test, whose p-values enter "
        "specificity_rank (without them LIANA gives no specificity_rank); 100 is quick and "
        "enough for ranking, LIANA's default 1000 refines the p-values.",
    )
    seed: int = Field(0, ge=0, description="Seed of the permutations.")
    rank_cutoff: float = Field(
        0.01,
        gt=0.0,
        le=1.0,
        description="An interaction counts as significant when its aggregate rank "
        "(magnitude_rank / specificity_rank) is at most this.",
    )
    top_n: int = Field(
        20, ge=1, le=1000, description="Interactions in tables['top_interactions'] and the plot."
    )
    key_added: str = Field(
        "liana_res",
        description="uns key of the results (LIANA's own key, so liana.plotting reads it); "
        "the resolved parameters go to uns['<key_added>_params'].",
    )
    export_dir: str | None = Field(
        None,
        description="Folder for the results CSV and a dot plot (PNG and SVG); None writes "
        "no files.",
    )
    overwrite: bool = Field(False, description="Replace a uns[key_added] not written by scagent.")


# ----------------------------------------------------------------------------- resources


def _import_liana() -> Any:
    try:
        import liana
    except ImportError:
        raise MissingDependencyError(
            "communication needs LIANA+ (liana), which is not installed",
            remedy="pip install 'scagent[communication]'",
        ) from None
    return liana


def shipped_resources() -> list[str]:
    """Names of the ligand-receptor resources that LIANA ships (no network needed)."""
    return list(_import_liana().resource.show_resources())


def load_resource(resource: str) -> pd.DataFrame:
    """A ligand-receptor table with columns ``ligand`` and ``receptor``, from a name or a file.

    Parameters
    ----------
    resource
        A resource LIANA ships (:func:`shipped_resources`), or the path of a CSV/TSV file
        whose columns include a ligand and a receptor column (also accepted:
        ``source_genesymbol``/``target_genesymbol``, ``source``/``target``,
        ``partner_a``/``partner_b`` and the like, any case). Complexes are subunits joined
        by ``_``.

    Raises
    ------
    InvalidParameterError
        A name LIANA does not ship (the message lists those it does).
    InputNotFoundError
        A path that does not exist.
    KnowledgeError
        A file without ligand/receptor columns, or without a single pair.
    """
    text = str(resource).strip()
    shipped = shipped_resources()
    if text.lower() in shipped:  # LIANA's names are lower case; 'CellPhoneDB' means the same
        text = text.lower()
    if text in shipped:
        table = _import_liana().resource.select_resource(text)
        return table[["ligand", "receptor"]].reset_index(drop=True)
    path = Path(text).expanduser()
    looks_like_path = path.suffix.lower() in (".csv", ".tsv", ".txt", ".gz") or (
        os.sep in text or "/" in text
    )
    if not looks_like_path:
        raise InvalidParameterError(
            f"resource '{text}' is not a resource LIANA ships nor a file path",
            remedy=f"use one of: {', '.join(shipped)}; or the path of a CSV/TSV file with "
            "ligand and receptor columns",
        )
    if not path.is_file():
        raise InputNotFoundError(
            f"resource file '{path}' does not exist",
            remedy=f"check the path, or use a shipped resource ({', '.join(shipped[:6])}, ...)",
        )
    return _read_resource_file(path)


def _read_resource_file(path: Path) -> pd.DataFrame:
    try:
        # sep=None sniffs comma, tab or semicolon.
        table = pd.read_csv(path, sep=None, engine="python", dtype=str)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise KnowledgeError(
            f"resource file '{path}' cannot be read as CSV/TSV: {exc}",
            remedy="save it as a comma- or tab-separated table with a header row",
        ) from None
    lower = {str(c).strip().lower(): c for c in table.columns}
    ligand = next((lower[a] for a in LIGAND_ALIASES if a in lower), None)
    receptor = next((lower[a] for a in RECEPTOR_ALIASES if a in lower), None)
    if ligand is None or receptor is None:
        missing = [n for n, c in (("ligand", ligand), ("receptor", receptor)) if c is None]
        raise KnowledgeError(
            f"resource file '{path}' has no {' and no '.join(missing)} column "
            f"(columns: {', '.join(map(str, table.columns[:12]))})",
            remedy="name the columns 'ligand' and 'receptor' (gene symbols; complexes as "
            "subunits joined by '_')",
        )
    out = pd.DataFrame(
        {"ligand": table[ligand].str.strip(), "receptor": table[receptor].str.strip()}
    )
    out = out.replace("", np.nan).dropna().drop_duplicates().reset_index(drop=True)
    if out.empty:
        raise KnowledgeError(
            f"resource file '{path}' holds no ligand-receptor pair",
            remedy="fill the ligand and receptor columns with gene symbols",
        )
    return out


# ------------------------------------------------------------------------------- genes


def symbols_for(adata: AnnData) -> pd.Index:
    """Gene symbols of ``adata``'s genes (Ensembl ids mapped through a symbol column of var)."""
    from scagent.knowledge.genes import symbols_from_var

    return symbols_from_var(adata)


def _subunits(names: pd.Series) -> list[list[str]]:
    return [str(n).split("_") for n in names]


def covered_interactions(genes: pd.Index | set[str], table: pd.DataFrame) -> pd.Series:
    """Boolean per resource row: every subunit of its ligand and receptor is among ``genes``."""
    present = set(map(str, genes))
    return pd.Series(
        [
            all(g in present for g in (*lig, *rec))
            for lig, rec in zip(
                _subunits(table["ligand"]), _subunits(table["receptor"]), strict=True
            )
        ],
        index=table.index,
    )


def gene_overlap_problem(
    genes: pd.Index, table: pd.DataFrame, resource: str
) -> tuple[str, str] | None:
    """``(message, remedy)`` when ``genes`` cover too few pairs of the resource, else None.

    Says why where it can tell: Ensembl ids instead of symbols, or a species other than
    the resource's.
    """
    from scagent.knowledge.genes import detect_gene_id_type, guess_species_from_symbols

    covered = int(covered_interactions(genes, table).sum())
    if covered >= MIN_COVERED_INTERACTIONS:
        return None
    resource_genes = {g for col in ("ligand", "receptor") for n in table[col] for g in n.split("_")}
    shared = len(resource_genes & set(map(str, genes)))
    message = (
        f"only {covered} of the {len(table)} ligand-receptor pairs of resource '{resource}' "
        f"have all their genes in the data ({shared} of its {len(resource_genes)} genes are "
        f"present; at least {MIN_COVERED_INTERACTIONS} pairs are needed)"
    )
    id_type = detect_gene_id_type(list(genes))
    if id_type.startswith("ensembl"):
        return (
            message + "; the gene names are Ensembl ids, the resource uses symbols",
            "add gene symbols as var['gene_symbols'] (or make them the var_names)",
        )
    species = guess_species_from_symbols(genes)
    resource_species = guess_species_from_symbols(sorted(resource_genes)[:2000])
    if species == "mouse" and resource_species == "human":
        return (
            message + "; the genes look like mouse symbols and the resource is human",
            "pass resource='mouseconsensus'",
        )
    if species == "human" and resource_species == "mouse":
        return (
            message + "; the genes look like human symbols and the resource is mouse",
            "pass resource='consensus'",
        )
    return (message, "check that var_names are gene symbols of the resource's species")


# ------------------------------------------------------------------------------- tool


def resolve_groupby(adata: AnnData, groupby: str, state: DataState | None = None) -> str:
    """The obs column of the cell types: ``groupby`` itself, or the inspector's choice for 'auto'."""
    crumbs = (state if state is not None else state_of(adata)).breadcrumbs
    column = obs_column(
        adata,
        groupby,
        lambda: [c.name for c in (*crumbs.cell_types, *crumbs.clusterings)],
        missing=InvalidParameterError(
            "communication found no cell-type or cluster column to use as senders and receivers",
            remedy="run leiden (and annotate) first, or pass groupby=<obs column of cell types>",
        ),
    )
    assert column is not None  # missing is given, so obs_column raised instead
    return column


def communication(adata: AnnData, **params: Any) -> ToolResult:
    """Ligand-receptor interactions between cell types with LIANA+'s consensus ranking.

    Runs :func:`liana.mt.rank_aggregate` (CellPhoneDB, Connectome, log2FC, NATMI,
    SingleCellSignalR, CellChat-like; robust rank aggregation) on log-normalised
    expression grouped by ``groupby``. Log-normalised values come from wherever they
    are (``X``, ``.raw``) or are derived from raw counts on a copy (normalise to 10,000
    per cell, log1p); ``adata`` itself is not normalised. Ensembl ids are mapped to
    symbols through a symbol column of ``var`` when there is one.

    Parameters
    ----------
    adata
        The data; ``uns[key_added]`` and ``uns[key_added + '_params']`` are added.
    **params
        See :class:`CommunicationParams`.

    Returns
    -------
    ToolResult
        Writes ``uns[key_added]``: LIANA's results (one row per source, target, ligand,
        receptor: ``lr_means, cellphone_pvals, expr_prod, scaled_weight, lr_logfc,
        spec_weight, lrscore, magnitude_rank, specificity_rank``), ordered by
        ``specificity_rank`` then ``magnitude_rank``; ``uns[key_added + '_params']``: the
        resolved parameters. ``tables['top_interactions']`` holds the ``top_n`` first rows;
        metrics count the interactions tested and those at or under ``rank_cutoff``.

    Raises
    ------
    InvalidParameterError
        ``groupby`` is not an obs column or none can be found; ``resource`` is neither a
        shipped resource nor a file path.
    InputNotFoundError
        The resource file does not exist.
    KnowledgeError
        The resource file lacks ligand/receptor columns.
    InvalidDataError
        Fewer than two groups with ``min_cells`` cells, or the genes share too few pairs
        with the resource (ids instead of symbols, the wrong species).
    DataStateError
        Neither log-normalised expression nor raw counts exist.
    """
    import anndata as ad

    liana = _import_liana()
    p = parse_params(CommunicationParams, params, "communication")
    state = state_of(adata)
    groupby = resolve_groupby(adata, p.groupby, state)
    table = load_resource(p.resource)
    params_key = f"{p.key_added}_params"
    warnings_out = [
        w
        for key in (p.key_added, params_key)
        if (w := claim_key(adata, "uns", key, "communication", overwrite=p.overwrite))
    ]

    symbols = symbols_for(adata)
    problem = gene_overlap_problem(symbols, table, p.resource)
    if problem is not None:
        raise InvalidDataError(*problem)

    labels = adata.obs[groupby]
    sizes = labels.astype(str)[labels.notna().to_numpy()].value_counts()
    kept = sizes[sizes >= p.min_cells]
    if len(kept) < 2:
        raise InvalidDataError(
            f"obs['{groupby}'] has {len(kept)} group(s) with at least {p.min_cells} cells "
            f"({', '.join(f'{k}: {v}' for k, v in sizes.head(6).items())}); communication "
            "needs a sender and a receiver",
            remedy="group by a column with at least two cell types, or lower min_cells",
        )
    if len(kept) < len(sizes):
        small = ", ".join(f"{k} ({v})" for k, v in sizes[sizes < p.min_cells].items())
        warnings_out.append(f"groups with fewer than {p.min_cells} cells were left out: {small}")

    work = ready_for(adata, state, "log_normalized")
    if work is not adata and state.x_state != "log_normalized":
        source = work.uns.get("scagent_prepared_from", "the raw counts")
        warnings_out.append(
            f"X is {state.x_state}; LIANA ran on log-normalised values made on a copy from "
            f"{source} (run normalize to keep them in X)"
        )
    # LIANA gets a lean AnnData: only what it reads, so it cannot touch the user's object,
    # and gene symbols as var_names (the first of duplicated symbols is kept).
    keep_cells = labels.notna().to_numpy() & labels.astype(str).isin(kept.index).to_numpy()
    keep_genes = ~pd.Index(symbols).duplicated()
    lean = ad.AnnData(
        X=work.X[keep_cells][:, keep_genes],
        obs=pd.DataFrame(
            {"group": pd.Categorical(labels.astype(str)[keep_cells])},
            index=adata.obs_names[keep_cells],
        ),
    )
    lean.var_names = pd.Index(symbols[keep_genes])
    with warnings.catch_warnings():
        # LIANA warns about genes it drops and unfiltered groups; the metrics say what it kept.
        warnings.simplefilter("ignore")
        liana.mt.rank_aggregate(
            lean,
            groupby="group",
            resource=table,
            expr_prop=p.expr_prop,
            min_cells=p.min_cells,
            use_raw=False,
            n_perms=p.n_perms,
            seed=p.seed,
            key_added="liana_res",
            verbose=False,
            n_jobs=1,
        )
    res = lean.uns["liana_res"]
    if res is None or len(res) == 0:
        raise InvalidDataError(
            f"LIANA found no ligand-receptor pair expressed in at least {p.expr_prop:.0%} of "
            f"a group's cells (resource '{p.resource}', groups of obs['{groupby}'])",
            remedy="lower expr_prop, or check that the resource's genes are expressed",
        )
    res = _tidy(res)
    adata.uns[p.key_added] = res
    adata.uns[params_key] = {
        "groupby": groupby,
        "resource": p.resource,
        "expr_prop": p.expr_prop,
        "min_cells": p.min_cells,
        "n_perms": p.n_perms,
        "seed": p.seed,
        "rank_cutoff": p.rank_cutoff,
        "method": "liana.mt.rank_aggregate",
        "liana_version": str(getattr(liana, "__version__", "")),
        "expression_from": str(work.uns.get("scagent_prepared_from", "X"))
        if work is not adata
        else "X",
    }
    written = [
        f"uns/{p.key_added}",
        f"uns/{params_key}",
        mark_owned(adata, "communication", ("uns", p.key_added), ("uns", params_key)),
    ]

    cut = p.rank_cutoff
    magnitude = res["magnitude_rank"].to_numpy(float) <= cut
    specific = res["specificity_rank"].to_numpy(float) <= cut
    n_pairs = res[["ligand_complex", "receptor_complex"]].drop_duplicates().shape[0]
    metrics: dict[str, float | int | str] = {
        "groupby": groupby,
        "resource": p.resource,
        "n_groups": len(kept),
        "n_interactions": len(res),
        "n_lr_pairs": n_pairs,
        "n_resource_pairs_covered": int(covered_interactions(symbols, table).sum()),
        "n_significant_magnitude": int(magnitude.sum()),
        "n_significant_specificity": int(specific.sum()),
        "n_significant_both": int((magnitude & specific).sum()),
    }
    if p.export_dir is not None:
        files = export_communication(adata, p.export_dir, key=p.key_added, top_n=p.top_n)
        metrics["export_dir"] = str(p.export_dir)
        metrics["n_files"] = len(files)
    top = res.head(p.top_n)
    best = top.iloc[0] if len(top) else None
    lead = (
        f"; most specific: {best['source']} -> {best['target']} "
        f"{best['ligand_complex']}->{best['receptor_complex']}"
        if best is not None
        else ""
    )
    return ToolResult(
        summary=f"LIANA+ consensus on {len(res)} interactions between {len(kept)} groups of "
        f"obs['{groupby}'] (resource '{p.resource}'): {metrics['n_significant_both']} with "
        f"magnitude and specificity rank <= {cut:g}{lead}; results in uns['{p.key_added}']",
        metrics=metrics,
        warnings=warnings_out,
        written=written,
        tables={"top_interactions": _records(top)},
    )


def _tidy(res: pd.DataFrame) -> pd.DataFrame:
    """LIANA's table with plain string and float columns, most specific interactions first."""
    out = res.copy()
    for col in ("source", "target", "ligand_complex", "receptor_complex"):
        out[col] = out[col].astype(str)
    for col in out.columns:
        if col not in ("source", "target", "ligand_complex", "receptor_complex"):
            out[col] = pd.to_numeric(out[col], errors="coerce").astype(np.float64)
    out = out.sort_values(RANK_ORDER, kind="stable").reset_index(drop=True)
    return out


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for rec in table.to_dict("records"):
        rows.append(
            {
                k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in rec.items()
            }
        )
    return rows


def communication_results(adata: AnnData, key: str = "liana_res") -> pd.DataFrame:
    """A copy of the results of :func:`communication` (or of LIANA itself) under ``uns[key]``.

    Raises
    ------
    InvalidParameterError
        If ``uns[key]`` holds no LIANA results.
    """
    table = adata.uns.get(key)
    needed = {"source", "target", "ligand_complex", "receptor_complex", *RANK_ORDER}
    if not isinstance(table, pd.DataFrame) or not needed <= set(table.columns):
        raise InvalidParameterError(
            f"uns['{key}'] holds no LIANA rank_aggregate results",
            remedy="run the communication tool first (or pass the key it wrote)",
        )
    return table.copy()


# ------------------------------------------------------------------------------ plots


def plot_communication(
    adata: AnnData, *, top_n: int = 20, key: str = "liana_res", ax: Axes | None = None
) -> Figure:
    """Dot plot of the most specific interactions: sender -> receiver by ligand -> receptor.

    The rows are the ``top_n`` ligand-receptor pairs with the best rows (by
    ``specificity_rank``, then ``magnitude_rank``); the columns are the sender-receiver
    pairs where they are tested, at most 40, in order of their best row. Dot size is
    ``-log10(specificity_rank)``, colour ``-log10(magnitude_rank)`` (bigger and darker is
    more specific and stronger).

    Parameters
    ----------
    adata
        Data with results under ``uns[key]``.
    top_n
        Ligand-receptor pairs (rows) shown.
    key
        The results key.
    ax
        Axes to draw on; a new figure is made when None.

    Returns
    -------
    The figure drawn on.
    """
    from scagent.report.plots import new_figure

    table = communication_results(adata, key).sort_values(RANK_ORDER, kind="stable")
    table["interaction"] = table["ligand_complex"] + " -> " + table["receptor_complex"]
    table["pair"] = table["source"] + " -> " + table["target"]
    rows = list(dict.fromkeys(table["interaction"]))[: max(1, int(top_n))]
    shown = table[table["interaction"].isin(rows)]
    # Every sender-receiver pair, as LIANA's dotplot shows, but at most _MAX_COLUMNS: those
    # where the shown interactions rank best.
    columns = list(dict.fromkeys(shown["pair"]))[:_MAX_COLUMNS]
    shown = shown[shown["pair"].isin(columns)]
    if ax is None:
        fig = new_figure(max(4.5, 3.0 + 0.22 * len(columns)), max(3.0, 1.8 + 0.26 * len(rows)))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    if shown.empty:
        ax.text(0.5, 0.5, "no interaction to show", ha="center", va="center")
        ax.set_axis_off()
        return fig
    floor = np.finfo(float).tiny
    spec = -np.log10(np.clip(shown["specificity_rank"].to_numpy(float), floor, 1.0))
    mag = -np.log10(np.clip(shown["magnitude_rank"].to_numpy(float), floor, 1.0))
    top = max(float(spec.max()), 1e-12)

    def area(value: np.ndarray | float) -> np.ndarray | float:
        return 6 + 120 * np.asarray(value) / top

    points = ax.scatter(
        shown["pair"].map({c: i for i, c in enumerate(columns)}).to_numpy(),
        shown["interaction"].map({r: i for i, r in enumerate(rows)}).to_numpy(),
        s=area(spec),
        c=mag,
        cmap="viridis",
        edgecolors="#333333",
        linewidths=0.3,
    )
    ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=6)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("source -> target")
    ax.set_ylabel("ligand -> receptor")
    ax.grid(True, color="#eeeeee", lw=0.5, zorder=0)
    ax.set_axisbelow(True)
    fig.colorbar(points, ax=ax, label="-log10 magnitude rank", shrink=0.5, anchor=(0.0, 1.0))
    # Size key: three reference dots of the specificity scale.
    handles = [
        ax.scatter([], [], s=area(v), c="#999999", edgecolors="#333333", linewidths=0.3)
        for v in (top / 4, top / 2, top)
    ]
    labels = [f"{v:.1f}" for v in (top / 4, top / 2, top)]
    fig.legend(
        handles,
        labels,
        title="-log10 specificity rank",
        fontsize=6,
        title_fontsize=6,
        loc="outside right lower",
        frameon=False,
    )
    ax.set_title(f"cell-cell communication (top {len(rows)} by specificity)", fontsize=9)
    return fig


def export_communication(
    adata: AnnData,
    out_dir: str | os.PathLike[str],
    *,
    key: str = "liana_res",
    top_n: int = 20,
    plots: bool = True,
) -> list[Path]:
    """Write ``<key>.csv`` (all interactions) and, with ``plots``, ``<key>_dotplot.png``/``.svg``.

    Every file is written atomically. Returns the paths written.
    """
    from scagent._atomic import atomic_write_text
    from scagent.report.plots import save_figure

    table = communication_results(adata, key)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{key}.csv"
    atomic_write_text(target, table.to_csv(index=False))
    written = [target]
    if plots:
        fig = plot_communication(adata, top_n=top_n, key=key)
        written.extend(save_figure(fig, out / f"{key}_dotplot"))
    return written


def _check_communication(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    key = p.key_added  # type: ignore[attr-defined]
    table = adata.uns.get(key)
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise InvalidDataError(f"communication finished but uns['{key}'] holds no results")
    for col in RANK_ORDER:
        values = table[col].dropna().to_numpy(float)
        if len(values) and ((values < 0) | (values > 1)).any():
            raise InvalidDataError(f"communication produced {col} outside [0, 1] in uns['{key}']")
    out = []
    if int(result.metrics.get("n_significant_specificity", 0)) == 0:
        out.append(
            "no interaction reaches the specificity rank cutoff: the groups may not differ in "
            "ligand or receptor expression, or the labels may not be cell types"
        )
    return out


def check_communication_inputs(
    adata: AnnData,
    *,
    groupby: str | None = "auto",
    resource: str = "consensus",
    min_cells: int = 5,
) -> None:
    """Raise :class:`InvalidDataError` naming what ``adata`` lacks for cell-cell communication.

    Checks that there are cells and genes, expression values (raw counts or log-normalised
    data), gene symbols that share enough genes with the ligand-receptor ``resource`` and,
    unless ``groupby`` is None, at least two groups of at least ``min_cells`` cells.

    Parameters
    ----------
    adata
        The data.
    groupby
        obs column of the cell types; ``'auto'`` takes the inspector's first cell-type
        column, else its first clustering. ``None`` skips the label check, for data that
        the pipeline will cluster and annotate before the communication step.
    resource
        A resource LIANA ships or a CSV/TSV path (see ``communication``).
    min_cells
        Smallest group size that counts.

    Raises
    ------
    InvalidDataError
        Naming what is missing and what to do.
    """
    from scagent.tools._data import state_of
    from scagent.tools.communication import (
        gene_overlap_problem,
        load_resource,
        resolve_groupby,
        symbols_for,
    )

    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InvalidDataError(
            f"the data has {adata.n_obs} cells and {adata.n_vars} genes",
            remedy="load a non-empty expression matrix",
        )
    state = state_of(adata)
    if state.counts_location is None and state.x_state != "log_normalized":
        if state.raw_state != "log_normalized":
            raise InvalidDataError(
                f"communication needs raw counts or log-normalised expression, but X is "
                f"{state.x_state} and no counts or log-normalised .raw exist",
                remedy="load the raw count matrix into layers['counts']",
            )
    try:
        table = load_resource(resource)
    except InvalidParameterError as exc:
        raise InvalidDataError(exc.message, remedy=exc.remedy) from None
    problem = gene_overlap_problem(symbols_for(adata), table, resource)
    if problem is not None:
        raise InvalidDataError(*problem)
    if groupby is None:
        return
    try:
        column = resolve_groupby(adata, groupby, state)
    except InvalidParameterError as exc:
        raise InvalidDataError(exc.message, remedy=exc.remedy) from None
    sizes = adata.obs[column].astype(str).value_counts()
    usable = sizes[sizes >= min_cells]
    if len(usable) < 2:
        raise InvalidDataError(
            f"obs['{column}'] has {len(usable)} group(s) with >= {min_cells} cells "
            f"({', '.join(f'{k}: {v}' for k, v in sizes.head(5).items())}); communication "
            "needs at least two cell types",
            remedy="cluster at a finer resolution or group by another cell-type column",
        )


COMMUNICATION = register(
    Tool(
        id="communication",
        name="Cell-cell communication (LIANA+)",
        category="communication",
        framework="liana",
        fn=communication,
        params=CommunicationParams,
        needs="log_normalized",
        checks=_check_communication,
        captures=("liana", "scanpy", "anndata", "numpy", "pandas"),
        reference=DIMITROV_2024,
        description="Ligand-receptor interactions between cell types: LIANA+'s consensus "
        "(CellPhoneDB, Connectome, log2FC, NATMI, SingleCellSignalR, CellChat) ranks of "
        "magnitude and specificity.",
    )
)
