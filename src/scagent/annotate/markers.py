"""A cluster's ranked marker genes, from whichever place they live: a rank_genes_groups result, a fresh test, or a marker table.

Every input becomes a list of :class:`ClusterMarkers`, the one shape the annotators read:
genes best first with their effect sizes, plus the genes most depleted in the cluster
(negative evidence) when expression data was available.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scagent.errors import (
    CorruptInputError,
    InputNotFoundError,
    InvalidDataError,
    InvalidParameterError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "ClusterMarkers",
    "is_uninformative_gene",
    "markers_from_adata",
    "markers_from_mapping",
    "markers_from_rank_genes_groups",
    "read_marker_table",
]

# Mitochondrial, ribosomal and similar genes top many DE lists for technical reasons
# (stress, library size) and mark no cell type; they are dropped before annotation.
_UNINFORMATIVE = re.compile(
    r"^(MT-.*|mt-.*|M?RP[LS]\d+[A-Z]?\d*|RPLP\d|M?Rp[ls]\d+[a-z]?\d*|MALAT1|Malat1)$"
)


def is_uninformative_gene(gene: str) -> bool:
    """Whether ``gene`` is mitochondrial, ribosomal or MALAT1 (never a cell-type marker)."""
    return bool(_UNINFORMATIVE.match(str(gene)))


@dataclass
class ClusterMarkers:
    """The markers of one cluster, best first.

    Attributes
    ----------
    cluster_id
        The cluster's name (a level of ``groupby``, or the table's cluster value).
    genes
        Marker genes, best first.
    scores
        Effect size per gene (log fold change where known, else the test score), or empty.
    n_cells
        Cells in the cluster (``None`` for a marker table).
    negative_genes
        Genes most depleted in the cluster, most depleted first (empty without expression).
    tissue, species
        Per-cluster context from a marker table (override the run's).
    """

    cluster_id: str
    genes: list[str]
    scores: list[float] = field(default_factory=list)
    n_cells: int | None = None
    negative_genes: list[str] = field(default_factory=list)
    tissue: str | None = None
    species: str | None = None
    note: str = ""

    def top(self, n: int) -> list[str]:
        """The first ``n`` genes."""
        return self.genes[:n]

    def as_prompt_rows(self, n: int) -> list[dict[str, Any]]:
        """Genes with their effect sizes, for the LLM prompt."""
        rows = []
        for i, g in enumerate(self.genes[:n]):
            row: dict[str, Any] = {"gene": g}
            if i < len(self.scores) and np.isfinite(self.scores[i]):
                row["effect"] = round(float(self.scores[i]), 2)
            rows.append(row)
        return rows


def _clean(genes: Sequence[Any]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for g in genes:
        if g is None or (isinstance(g, float) and np.isnan(g)):
            continue
        s = str(g).strip()
        if s and s not in seen and not is_uninformative_gene(s):
            seen.add(s)
            out.append(s)
    return out


# ---------------------------------------------------------------------------- AnnData


def markers_from_rank_genes_groups(
    adata: AnnData, key: str, groupby: str, *, n_genes: int = 100, n_negative: int = 20
) -> list[ClusterMarkers]:
    """Read ``adata.uns[key]`` (a :func:`scanpy.tl.rank_genes_groups` result) into :class:`ClusterMarkers`.

    Genes with a non-positive log fold change are not markers and are skipped; the
    bottom of each group's list (when the result holds every gene) gives the negatives.
    """
    res = adata.uns[key]
    names = res["names"]
    groups = list(names.dtype.names)
    sizes = adata.obs[groupby].astype(str).value_counts() if groupby in adata.obs else None
    out = []
    for grp in groups:
        g_names = [str(x) for x in names[grp]]
        lfc = np.asarray(res["logfoldchanges"][grp], float) if "logfoldchanges" in res else None
        score = np.asarray(res["scores"][grp], float) if "scores" in res else None
        effect = lfc if lfc is not None else score
        keep_pos, keep_eff = [], []
        for i, g in enumerate(g_names):
            if len(keep_pos) >= n_genes:
                break
            if effect is not None and not (effect[i] > 0):
                continue
            if is_uninformative_gene(g):
                continue
            keep_pos.append(g)
            keep_eff.append(float(effect[i]) if effect is not None else float("nan"))
        negatives: list[str] = []
        if score is not None and len(g_names) > 2 * n_genes:
            # Only a full ranking says which genes are depleted; a top-100 list cannot.
            order = np.argsort(score)
            negatives = [
                g_names[i]
                for i in order[: n_negative * 3]
                if (lfc is None or lfc[i] < -1.0) and not is_uninformative_gene(g_names[i])
            ][:n_negative]
        out.append(
            ClusterMarkers(
                cluster_id=str(grp),
                genes=keep_pos,
                scores=keep_eff,
                n_cells=int(sizes.get(str(grp), 0)) if sizes is not None else None,
                negative_genes=negatives,
            )
        )
    return out


def rank_genes_groups_matches(adata: AnnData, key: str, groupby: str) -> bool:
    """Whether ``adata.uns[key]`` is a rank_genes_groups result for ``groupby`` covering its groups."""
    res = adata.uns.get(key)
    if not isinstance(res, Mapping) or "names" not in res or "params" not in res:
        return False
    if str(res["params"].get("groupby", "")) != groupby:
        return False
    if str(res["params"].get("reference", "rest")) != "rest":
        return False
    groups = set(getattr(res["names"].dtype, "names", None) or ())
    levels = set(adata.obs[groupby].astype(str).unique())
    big = {lv for lv in levels if (adata.obs[groupby].astype(str) == lv).sum() >= 2}
    return big <= groups


def markers_from_adata(
    adata: AnnData,
    groupby: str,
    *,
    key: str = "rank_genes_groups",
    n_genes: int = 100,
    n_negative: int = 20,
    recompute: bool = False,
) -> tuple[list[ClusterMarkers], str]:
    """Markers per level of ``obs[groupby]``: from ``uns[key]`` when it matches, else a Wilcoxon test.

    The test runs on log-normalized values brought ready by the inspector from whatever
    state ``X`` is in (counts, ``.raw``, log); ``adata`` is not modified. Clusters of one
    cell cannot be tested and come back with no genes and a note.

    Returns
    -------
    (markers, source)
        ``source`` is ``"uns['<key>']"`` or ``"computed"``.

    Raises
    ------
    InvalidParameterError
        If ``groupby`` is not an obs column.
    DataStateError
        If there is no expression data that can be log-normalized.
    """
    import scanpy as sc

    from scagent.data import ensure_ready_for, inspect_adata

    if groupby not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:20])) or "(none)"
        raise InvalidParameterError(
            f"groupby {groupby!r} is not an obs column",
            remedy=f"choose one of: {cols}",
        )
    labels = adata.obs[groupby].astype(str)
    if labels.isin(["nan", "None", ""]).all():
        raise InvalidDataError(f"obs[{groupby!r}] holds no cluster labels")
    sizes = labels.value_counts()
    if not recompute and rank_genes_groups_matches(adata, key, groupby):
        found = markers_from_rank_genes_groups(
            adata, key, groupby, n_genes=n_genes, n_negative=n_negative
        )
        return _add_missing(found, sizes), f"uns['{key}']"
    if adata.n_vars == 0 or adata.n_obs == 0:
        raise InvalidDataError(
            f"the data has {adata.n_obs} cells and {adata.n_vars} genes: no expression to test",
            remedy="give a marker table instead (scagent annotate markers.csv)",
        )
    testable = sizes[sizes >= 2].index.tolist()
    if len(testable) < 2:
        raise InvalidDataError(
            f"obs[{groupby!r}] needs at least 2 clusters of 2 or more cells to find markers; "
            f"found {len(testable)}",
            remedy="cluster the cells first, or give a marker table",
        )
    work = ensure_ready_for(adata, inspect_adata(adata), "log_normalized")
    # A light copy: the test needs only X and the cluster column; the user's object is untouched.
    import anndata as ad

    light = ad.AnnData(X=work.X, obs=pd.DataFrame({"g": labels.to_numpy()}, index=work.obs_names))
    light.var_names = work.var_names
    light.obs["g"] = pd.Categorical(light.obs["g"])
    with warnings.catch_warnings():
        # scanpy's own DataFrame building warns about fragmentation; nothing to act on.
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        sc.tl.rank_genes_groups(
            light,
            "g",
            groups=testable if len(testable) < len(sizes) else "all",
            method="wilcoxon",
            n_genes=None,
            key_added="_markers",
            use_raw=False,
        )
    found = markers_from_rank_genes_groups(
        light, "_markers", "g", n_genes=n_genes, n_negative=n_negative
    )
    return _add_missing(found, sizes), "computed"


def _add_missing(found: list[ClusterMarkers], sizes: pd.Series) -> list[ClusterMarkers]:
    have = {m.cluster_id for m in found}
    for m in found:
        if m.n_cells is None or m.n_cells == 0:
            m.n_cells = int(sizes.get(m.cluster_id, 0))
    for cid, n in sizes.items():
        if str(cid) not in have:
            found.append(
                ClusterMarkers(
                    cluster_id=str(cid),
                    genes=[],
                    n_cells=int(n),
                    note=f"cluster of {int(n)} cell(s): too small to test for markers",
                )
            )
    order = {str(c): i for i, c in enumerate(sizes.sort_index().index)}
    return sorted(found, key=lambda m: (_natural_key(m.cluster_id), order.get(m.cluster_id, 0)))


def _natural_key(text: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text)))


# ---------------------------------------------------------------------------- tables

# Not "label" or "cell_type": a table may carry the expert's answer there.
_CLUSTER_COLS = ("cluster", "cluster_id", "group", "clusters", "ident", "seurat_clusters")
_GENE_COLS = ("gene", "names", "gene_symbol", "symbol", "feature", "genes", "markers")
_LIST_COLS = ("genes", "markers", "marker_genes", "top_markers")
_RANK_COLS = ("rank",)
_SCORE_COLS = ("avg_log2fc", "avg_logfc", "logfoldchanges", "log2fc", "logfc", "scores", "score")
_P_COLS = ("p_val_adj", "pvals_adj", "padj", "fdr")


def _find(cols: Mapping[str, str], names: Sequence[str]) -> str | None:
    for n in names:
        if n in cols:
            return cols[n]
    return None


def _split_list(text: Any) -> list[str]:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    return [g.strip() for g in re.split(r"[,;\s]+", str(text)) if g.strip()]


def read_marker_table(
    table: str | os.PathLike[str] | pd.DataFrame,
    *,
    cluster_column: str | None = None,
    n_genes: int = 100,
) -> list[ClusterMarkers]:
    """Read a marker table into :class:`ClusterMarkers`, one per cluster.

    Accepted layouts (column names are matched case-insensitively):

    - wide: ``cluster`` and ``genes`` (or ``markers``), genes best first, comma-separated;
    - long: one row per (cluster, gene), e.g. Seurat ``FindAllMarkers`` (``cluster``,
      ``gene``, ``avg_log2FC``, ``p_val_adj``) or scanpy ``rank_genes_groups_df``
      (``group``, ``names``, ``scores``, ``logfoldchanges``): genes are ordered by
      ``rank`` when given, else kept in file order within each cluster (both tools write
      them best first); rows with a negative fold change are not markers.

    Optional ``tissue`` and ``species`` columns give per-cluster context.

    Raises
    ------
    InputNotFoundError, UnsupportedFormatError, CorruptInputError
        For a missing, unreadable or unparseable file.
    InvalidDataError
        For an empty table or one without cluster and gene columns.
    """
    if isinstance(table, pd.DataFrame):
        df = table.copy()
        where = "the marker table"
    else:
        path = Path(table)
        where = str(path)
        if not path.exists():
            raise InputNotFoundError(f"marker table {where!r} does not exist")
        suffix = "".join(path.suffixes[-2:]).lower()
        sep = "\t" if (".tsv" in suffix or ".txt" in suffix) else ","
        if not any(s in suffix for s in (".csv", ".tsv", ".txt")):
            raise UnsupportedFormatError(
                f"{where!r} is not a marker table (.csv, .tsv or .txt) or .h5ad",
                remedy="give a .h5ad file, or a CSV/TSV with columns cluster and genes",
            )
        if path.stat().st_size == 0:
            raise InvalidDataError(
                f"marker table {where!r} is empty",
                remedy="the table needs columns cluster and genes (or cluster, gene)",
            )
        try:
            df = pd.read_csv(path, sep=sep, comment=None)
        except pd.errors.EmptyDataError:
            raise InvalidDataError(f"marker table {where!r} is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise CorruptInputError(f"cannot parse marker table {where!r}: {exc}") from None
    if df.empty:
        raise InvalidDataError(
            f"{where} has no rows",
            remedy="the table needs one row per cluster (cluster, genes) or per (cluster, gene)",
        )
    cols = {str(c).strip().lower().replace(".", "_"): c for c in df.columns}
    # Seurat writes the gene in the row names; read_csv gives it an unnamed first column.
    if "gene" not in cols and "unnamed: 0" in cols and "cluster" in cols:
        cols["gene"] = cols.pop("unnamed: 0")
    ccol = df.columns[df.columns.get_loc(cluster_column)] if cluster_column else None
    if cluster_column and cluster_column not in df.columns:
        raise InvalidParameterError(f"cluster column {cluster_column!r} is not in {where}")
    ccol = ccol or _find(cols, _CLUSTER_COLS)
    list_col = _find(cols, _LIST_COLS)
    gene_col = _find(cols, ("gene", "names", "gene_symbol", "symbol", "feature"))
    tissue_col = _find(cols, ("tissue", "organ"))
    species_col = _find(cols, ("species", "organism"))
    if (ccol is None and list_col is None) or (list_col is None and gene_col is None):
        raise InvalidDataError(
            f"{where} needs a cluster column and a genes column; found {list(df.columns)}",
            remedy="name them 'cluster' and 'genes' (comma-separated) or 'cluster' and 'gene'",
        )
    out: list[ClusterMarkers] = []
    if gene_col is None or (list_col is not None and _is_list_column(df[list_col])):
        # Wide layout: one row per cluster.
        for idx, row in df.iterrows():
            cid = row[ccol] if ccol is not None else idx
            cid = str(idx) if cid is None or (isinstance(cid, float) and np.isnan(cid)) else cid
            out.append(
                ClusterMarkers(
                    cluster_id=str(cid),
                    genes=_clean(_split_list(row[list_col]))[:n_genes],
                    tissue=_opt(row, tissue_col),
                    species=_opt(row, species_col),
                )
            )
        if len({m.cluster_id for m in out}) < len(out):
            # Repeated ids (e.g. a benchmark with one row per labelled cluster): number them.
            for i, m in enumerate(out):
                m.cluster_id = f"{m.cluster_id}#{i}"
    else:
        score_col = _find(cols, _SCORE_COLS)
        rank_col = _find(cols, _RANK_COLS)
        df = df[df[gene_col].notna()]
        if score_col is not None:
            eff = pd.to_numeric(df[score_col], errors="coerce")
            df = df[~(eff <= 0)]
        for cid, grp in df.groupby(ccol, sort=False, observed=True):
            if rank_col is not None:
                grp = grp.sort_values(rank_col, kind="stable")
            genes = [str(g) for g in grp[gene_col]]
            scores = (
                pd.to_numeric(grp[score_col], errors="coerce").astype(float).tolist()
                if score_col
                else []
            )
            keep = [i for i, g in enumerate(genes) if not is_uninformative_gene(g)]
            seen: set[str] = set()
            gl, sl = [], []
            for i in keep:
                if genes[i] in seen:
                    continue
                seen.add(genes[i])
                gl.append(genes[i])
                if scores:
                    sl.append(scores[i])
            first = grp.iloc[0]
            out.append(
                ClusterMarkers(
                    cluster_id=str(cid),
                    genes=gl[:n_genes],
                    scores=sl[:n_genes],
                    tissue=_opt(first, tissue_col),
                    species=_opt(first, species_col),
                )
            )
    if not out:
        raise InvalidDataError(f"{where} has no usable (cluster, gene) rows")
    return out


def _is_list_column(col: pd.Series) -> bool:
    sample = col.dropna().astype(str).head(20)
    return bool(len(sample)) and bool(sample.str.contains(r"[,;]").any())


def _opt(row: Any, col: str | None) -> str | None:
    if col is None:
        return None
    v = row[col]
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    s = str(v).strip()
    return s or None


def markers_from_mapping(
    markers: Mapping[str, Sequence[str] | str], *, n_genes: int = 100
) -> list[ClusterMarkers]:
    """``{cluster: [genes best first]}`` (or comma-separated strings) into :class:`ClusterMarkers`."""
    if not markers:
        raise InvalidDataError(
            "the marker mapping is empty", remedy="give {cluster: [genes best first]}"
        )
    out = []
    for cid, genes in markers.items():
        gl = _split_list(genes) if isinstance(genes, str) else list(genes)
        out.append(ClusterMarkers(cluster_id=str(cid), genes=_clean(gl)[:n_genes]))
    return out
