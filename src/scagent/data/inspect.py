"""The inspector: read any AnnData and say what it is, where its counts are and what was done to it.

Every tool consults the inspector instead of assuming it produced the data. Matrix checks run
on a bounded random sample of rows, sparse-aware, so the cost does not grow with the
number of cells beyond slicing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from scagent.data.state import Breadcrumbs, ColumnInfo, DataState, DEResult, XState

__all__ = ["classify_matrix", "design_column", "inspect_adata", "summarize_state"]

#: Rows sampled to classify a matrix; enough to see integer-ness, signs and row structure.
SAMPLE_ROWS = 1000
#: Values at or above this in a non-integer matrix rule out log1p of per-cell normalized counts.
LOG_MAX = 20.0

_COUNT_LAYER_NAMES = ("counts", "raw_counts", "umi", "umis", "raw", "X_counts", "spliced_counts")

_QC_COLUMNS = {
    "total_counts",
    "n_genes_by_counts",
    "pct_counts_mt",
    "pct_counts_mito",
    "pct_counts_ribo",
    "pct_counts_hb",
    "n_counts",
    "n_genes",
    "percent_mito",
    "percent.mt",
    "nCount_RNA",
    "nFeature_RNA",
    "log1p_total_counts",
}
# Outputs of doublet detectors (scrublet, scDblFinder, DoubletFinder); not truth flags.
_DOUBLET_COLUMNS = (
    "doublet_score",
    "predicted_doublet",
    "scrublet_score",
    "scDblFinder.score",
    "scDblFinder.class",
    "doublet_class",
)
_PSEUDOTIME_COLUMNS = ("dpt_pseudotime", "pseudotime", "palantir_pseudotime", "latent_time")

# Column-name vocabularies, matched on normalised tokens (lower case, separators dropped).
_CLUSTER_WORDS = ("leiden", "louvain", "cluster", "clust", "kmeans", "consensus", "snn")
_CELLTYPE_WORDS = (
    "celltype",
    "cell_type",
    "cell_ontology_class",
    "annotation",
    "annot",
    "label",
    "majority_voting",
    "identity",
    "lineage",
)
_SAMPLE_WORDS = ("sample", "orig_ident", "library", "channel", "gem")
_BATCH_WORDS = ("batch", "run", "lane", "plate", "chemistry", "technology", "assay")
_CONDITION_WORDS = (
    "condition",
    "treatment",
    "disease",
    "status",
    "stim",
    "genotype",
    "perturbation",
    "timepoint",
    "time",
    "group",
    "stage",
    "diagnosis",
)
_DONOR_WORDS = ("donor", "patient", "individual", "subject", "mouse", "animal", "participant")

#: Last name tokens of columns that describe a label rather than hold one.
_NOT_A_LABEL = {"status", "confidence", "conf", "score", "id", "agreement", "prob", "probability"}

_HUMAN_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]*(?:[-.][A-Z0-9]+)*$")
_MOUSE_SYMBOL = re.compile(r"^[A-Z][a-z0-9]+(?:[-.][A-Za-z0-9]+)*$")
_ENSEMBL_HUMAN = re.compile(r"^ENSG\d{6,}(\.\d+)?$")
_ENSEMBL_MOUSE = re.compile(r"^ENSMUSG\d{6,}(\.\d+)?$")
_ENSEMBL_ANY = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
_RIBO = re.compile(r"^RP[SL]\d+[A-Z]?\d*$", re.IGNORECASE)


# --------------------------------------------------------------------------- matrix state


def _sample_rows(matrix: Any, n_rows: int, rng: np.random.Generator) -> Any:
    """A random subset of at most ``n_rows`` rows, still sparse when the input is."""
    n = matrix.shape[0]
    if n <= n_rows:
        return matrix
    # Sorted indices: required by h5py-backed matrices, and faster for CSR.
    idx = np.sort(rng.choice(n, size=n_rows, replace=False))
    return matrix[idx]


def _row_values(sample: Any) -> list[np.ndarray]:
    """Nonzero values of each sampled row, as float64."""
    if sparse.issparse(sample):
        csr = sparse.csr_matrix(sample)
        data = np.asarray(csr.data, dtype=np.float64)
        return [data[csr.indptr[i] : csr.indptr[i + 1]] for i in range(csr.shape[0])]
    dense = np.asarray(sample, dtype=np.float64)
    return [row[row != 0] for row in dense]


def _discrete_level_share(rows: list[np.ndarray], transform: str) -> float:
    """Share of nonzero values that are integer multiples of their row's smallest value.

    Per-cell normalized counts take the values ``k * s_i`` (k = 1, 2, ...) within cell i; after
    log1p they take ``log1p(k * s_i)``. This holds even when genes were subset (unlike
    row sums), so it identifies a normalization without knowing the target sum.
    """
    hits = total = 0
    for values in rows:
        if values.size < 3:
            continue
        base = np.expm1(values) if transform == "log" else values
        smallest = base.min()
        if smallest <= 0:
            continue
        # A row without a count of 1 has its smallest value at k units (k = 2, 3): try those
        # units too. Scaling does not raise the chance hit rate (fractional parts stay uniform).
        best = 0
        for k in (1, 2, 3):
            ratio = base * (k / smallest)
            ratio = ratio[ratio <= 300]  # float32 round-off grows with the value
            best = max(best, int(np.count_nonzero(np.abs(ratio - np.round(ratio)) < 0.02)))
        hits += best
        total += int(np.count_nonzero(base * (3 / smallest) <= 300))
    return hits / total if total else 0.0


def _relative_spread(row_sums: np.ndarray) -> float:
    row_sums = row_sums[row_sums > 0]
    if row_sums.size < 2:
        return np.inf
    return float(np.std(row_sums) / np.mean(row_sums))


def classify_matrix(
    matrix: Any,
    *,
    has_log1p_uns: bool = False,
    expects_log1p_breadcrumb: bool = True,
    seed: int = 0,
    n_rows: int = SAMPLE_ROWS,
) -> tuple[XState, str, list[str]]:
    """Classify what the values of ``matrix`` are.

    Rules, in priority order: negative values -> ``scaled``; all integers -> ``raw_counts``;
    per-cell totals equal, or values on a per-cell integer lattice -> ``normalized``;
    ``uns['log1p']`` present -> ``log_normalized``; max < 20 and ``expm1`` of the values
    on a per-cell lattice (or with equal totals) -> ``log_normalized``; else
    ``transformed_unknown``.

    Parameters
    ----------
    matrix
        Dense or sparse cells x genes matrix (only a sample of rows is read).
    has_log1p_uns
        Whether ``uns['log1p']`` is present (scanpy's breadcrumb of ``sc.pp.log1p``).
    expects_log1p_breadcrumb
        Warn when the matrix looks log-normalized without ``uns['log1p']`` (only X has one).
    seed
        Seed of the row sample, for reproducible reports.
    n_rows
        Number of rows sampled.

    Returns
    -------
    The state, the evidence in words, and warnings.
    """
    rng = np.random.default_rng(seed)
    sample = _sample_rows(matrix, n_rows, rng)
    rows = _row_values(sample)
    values = np.concatenate(rows) if rows else np.empty(0)
    warnings: list[str] = []
    if values.size == 0:
        return "transformed_unknown", "the sampled rows hold no nonzero values", warnings
    finite = np.isfinite(values)
    if not finite.all():
        warnings.append(f"{int((~finite).sum())} NaN/Inf values in a sample of {len(rows)} rows")
        values = values[finite]
        rows = [r[np.isfinite(r)] for r in rows]
    vmin, vmax = float(values.min()), float(values.max())
    if vmin < 0:
        return "scaled", f"negative values (min {vmin:.3g}): centred, e.g. by sc.pp.scale", warnings
    if np.all(values == np.round(values)):
        return "raw_counts", f"non-negative integers (max {vmax:.0f})", warnings
    sums = np.array([r.sum() for r in rows])
    spread = _relative_spread(sums)
    if spread < 1e-3:
        target = float(np.median(sums))
        return (
            "normalized",
            f"per-cell totals all {target:,.4g} without log (e.g. CP10k/CPM)",
            warnings,
        )
    if vmax >= LOG_MAX and _discrete_level_share(rows, "linear") > 0.95:
        return "normalized", "values are per-cell multiples of one unit: scaled counts", warnings
    if has_log1p_uns and vmax < 50:
        return "log_normalized", "uns['log1p'] present (scanpy's log1p breadcrumb)", warnings
    if vmax < LOG_MAX:
        exp_sums = np.array([np.expm1(r).sum() for r in rows])
        if _relative_spread(exp_sums) < 1e-3:
            target = float(np.median(exp_sums))
            return "log_normalized", f"max {vmax:.3g} and expm1 totals all {target:,.4g}", warnings
        if _discrete_level_share(rows, "log") > 0.95:
            if expects_log1p_breadcrumb:
                warnings.append(
                    "looks log-normalized (expm1 values are per-cell multiples of one unit) "
                    "but uns['log1p'] is missing; check how it was made"
                )
            return (
                "log_normalized",
                f"max {vmax:.3g}; expm1 values are per-cell count multiples",
                warnings,
            )
    return (
        "transformed_unknown",
        f"non-negative non-integer values (max {vmax:.3g}) that match no known transform",
        warnings,
    )


# --------------------------------------------------------------------------- breadcrumbs


def _tokens(name: str) -> list[str]:
    """Lower-case word tokens of a column name: 'predicted.celltype.l2' -> [predicted, celltype, l2]."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1_\2", str(name))  # camelCase -> camel_Case
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _matches(name: str, words: Iterable[str]) -> bool:
    """Whether a column name contains one of ``words``.

    Multi-part words ('cell_type') match anywhere in the name with separators removed;
    single words match a whole token, or a token's start for words of 4+ letters
    ('clusters' matches 'cluster'), so 'run' does not match 'truncated'.
    """
    tokens = _tokens(name)
    squashed = "".join(tokens)
    for word in words:
        if "_" in word:
            if word.replace("_", "") in squashed:
                return True
        elif any(t == word or (len(word) >= 4 and t.startswith(word)) for t in tokens):
            return True
    return False


def _levels(series: pd.Series) -> pd.Index:
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.categories[series.cat.categories.isin(series.unique())]
    return pd.Index(series.dropna().unique())


def _column_info(name: str, series: pd.Series) -> ColumnInfo:
    levels = _levels(series)
    return ColumnInfo(
        name=str(name), n_levels=len(levels), levels=[str(x) for x in list(levels[:20])]
    )


def _is_discrete(series: pd.Series) -> bool:
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(series.dtype)
        or pd.api.types.is_string_dtype(series.dtype)
        or pd.api.types.is_integer_dtype(series.dtype)
        or pd.api.types.is_bool_dtype(series.dtype)
    )


def _n_levels(series: pd.Series, cache: dict[str, int], name: str) -> int:
    if name not in cache:
        cache[name] = len(_levels(series))
    return cache[name]


def _truth_columns(adata: AnnData) -> set[str]:
    """The simulator's ground-truth obs columns (``uns['simulation']['truth_columns']``).

    Truth is not an analysis result: a true cell type or pseudotime must not read as an
    annotation or a trajectory already computed.
    """
    simulation = adata.uns.get("simulation", {})
    if not isinstance(simulation, Mapping):
        return set()
    return {str(c) for c in simulation.get("truth_columns", ())}


def _obs_columns(adata: AnnData) -> dict[str, list[ColumnInfo]]:
    """Sort discrete obs columns into clusterings, cell types and design columns."""
    n = adata.n_obs
    max_clusters = max(2, n // 10)
    out: dict[str, list[ColumnInfo]] = {
        k: [] for k in ("clusterings", "cell_types", "samples", "batches", "conditions", "donors")
    }
    cache: dict[str, int] = {}
    truth = _truth_columns(adata)
    for name in adata.obs.columns:
        series = adata.obs[name]
        if not _is_discrete(series) or name in _QC_COLUMNS:
            continue
        if pd.api.types.is_bool_dtype(series.dtype) or name in _DOUBLET_COLUMNS:
            continue
        n_levels = _n_levels(series, cache, name)
        if n_levels > min(n, 100_000) or (n_levels == n and n > 1):
            continue  # an identifier, not a grouping
        if name in truth and (_matches(name, _CELLTYPE_WORDS) or _matches(name, _CLUSTER_WORDS)):
            continue
        if set(_tokens(name)[-1:]) & _NOT_A_LABEL:
            # 'annotation_status', 'celltype_score', 'cell_type_ontology_id': about a label,
            # not a label; a design column such as 'sample_id' is still matched below.
            if _matches(name, _CELLTYPE_WORDS) or _matches(name, _CLUSTER_WORDS):
                continue
        if _matches(name, _CELLTYPE_WORDS) and 1 <= n_levels <= max(2, n // 2):
            out["cell_types"].append(_column_info(name, series))
        elif _matches(name, _CLUSTER_WORDS) and 2 <= n_levels <= max_clusters:
            out["clusterings"].append(_column_info(name, series))
        elif _matches(name, _DONOR_WORDS) and n_levels <= max(1, n // 2):
            out["donors"].append(_column_info(name, series))
        elif _matches(name, _SAMPLE_WORDS) and n_levels <= max(1, n // 2):
            out["samples"].append(_column_info(name, series))
        elif _matches(name, _BATCH_WORDS) and n_levels <= max(1, n // 2):
            out["batches"].append(_column_info(name, series))
        elif _matches(name, _CONDITION_WORDS) and n_levels <= max(1, n // 2):
            out["conditions"].append(_column_info(name, series))
        elif (
            isinstance(series.dtype, pd.CategoricalDtype)
            and 2 <= n_levels <= max_clusters
            and all(str(c).isdigit() for c in series.cat.categories)
        ):
            # Unnamed clusterings usually have labels "0", "1", ...
            out["clusterings"].append(_column_info(name, series))
    return out


def _de_results(uns: Mapping[str, Any]) -> list[DEResult]:
    found = []
    for key, value in uns.items():
        if isinstance(value, Mapping) and "names" in value and "params" in value:
            params = value["params"]
            names = value["names"]
            n_groups = len(names.dtype.names or ()) if hasattr(names, "dtype") else 0
            found.append(
                DEResult(
                    key=str(key),
                    groupby=str(params.get("groupby")) if "groupby" in params else None,
                    method=str(params.get("method")) if "method" in params else None,
                    n_groups=n_groups,
                )
            )
    return found


def _breadcrumbs(adata: AnnData) -> Breadcrumbs:
    crumbs = Breadcrumbs()
    crumbs.qc_metrics = [c for c in adata.obs.columns if c in _QC_COLUMNS]
    crumbs.log1p = "log1p" in adata.uns
    if "highly_variable" in adata.var.columns:
        crumbs.hvg = "highly_variable"
        crumbs.n_hvg = int(np.asarray(adata.var["highly_variable"], dtype=bool).sum())
    obsm = list(adata.obsm.keys())
    if "X_pca" in adata.obsm:
        crumbs.pca = "X_pca"
        crumbs.n_pcs = int(adata.obsm["X_pca"].shape[1])
    crumbs.harmony = next((k for k in obsm if "harmony" in k.lower()), None)
    for key in ("X_umap", "X_tsne", "X_diffmap"):
        if key in adata.obsm:
            setattr(crumbs, key[2:], key)
    if "neighbors" in adata.uns or "connectivities" in adata.obsp:
        crumbs.neighbors = "neighbors"
    crumbs.neighbors_obsp = [
        k for k in adata.obsp.keys() if "connectivities" in k or "distances" in k
    ]
    truth = _truth_columns(adata)
    crumbs.pseudotime = next(
        (c for c in _PSEUDOTIME_COLUMNS if c in adata.obs.columns and c not in truth), None
    )
    crumbs.paga = "paga" in adata.uns
    crumbs.doublets = next((c for c in _DOUBLET_COLUMNS if c in adata.obs.columns), None)
    crumbs.de = _de_results(adata.uns)
    return crumbs


def _steps(state: DataState) -> list[str]:
    """Canonical step names implied by the state and the breadcrumbs."""
    crumbs = state.breadcrumbs
    steps: list[str] = []
    add = steps.append
    if crumbs.qc_metrics:
        add("qc_metrics")
    if crumbs.doublets:
        add("doublets")
    if state.x_state in ("normalized", "log_normalized", "scaled"):
        add("normalize")
    if (
        crumbs.log1p
        or state.x_state == "log_normalized"
        or (state.x_state == "scaled" and state.raw_state == "log_normalized")
    ):
        add("log1p")
    if crumbs.hvg and crumbs.n_hvg > 0:
        add("hvg")
    if state.x_state == "scaled":
        add("scale")
    if crumbs.pca:
        add("pca")
    if crumbs.harmony:
        add("harmony")
    if crumbs.neighbors and crumbs.neighbors_obsp:
        add("neighbors")
    if crumbs.umap:
        add("umap")
    if crumbs.tsne:
        add("tsne")
    if crumbs.diffmap:
        add("diffmap")
    if crumbs.pseudotime:
        add("diffusion_pseudotime")
    if crumbs.paga:
        add("paga")
    names = [c.name.lower() for c in crumbs.clusterings]
    if any(n.startswith("leiden") for n in names):
        add("leiden")
    if any(n.startswith("louvain") for n in names):
        add("louvain")
    if crumbs.clusterings:
        add("clustering")
    if crumbs.cell_types:
        add("cell_types")
    if crumbs.de:
        add("markers")
    return steps


# --------------------------------------------------------------------------- genes


def _genes(var_names: pd.Index, var: pd.DataFrame) -> dict[str, Any]:
    names = pd.Index(var_names.astype(str))
    n = max(len(names), 1)
    ens_h = int(names.str.match(_ENSEMBL_HUMAN.pattern).sum())
    ens_m = int(names.str.match(_ENSEMBL_MOUSE.pattern).sum())
    ens_any = int(names.str.match(_ENSEMBL_ANY.pattern).sum())
    upper = int(names.str.match(_HUMAN_SYMBOL.pattern).sum())
    title = int(names.str.match(_MOUSE_SYMBOL.pattern).sum())
    mito_h = int(names.str.startswith("MT-").sum())
    mito_m = int(names.str.startswith("mt-").sum())
    n_mito = int(names.str.lower().str.startswith("mt-").sum())
    n_ribo = int(names.str.match(_RIBO.pattern, case=False).sum())

    if ens_any / n > 0.9:
        id_type = "ensembl"
    elif ens_any / n > 0.1:
        id_type = "mixed"
    elif (upper + title) / n > 0.5:
        id_type = "symbol"
    else:
        id_type = "unknown"

    # Ensembl ids in var (e.g. var['gene_ids']) back up a symbol-based guess.
    ens_col_h = ens_col_m = 0
    for col in ("gene_ids", "gene_id", "ensembl_id", "ensembl", "feature_id"):
        if col in var.columns:
            ids = pd.Index(var[col].astype(str))
            ens_col_h = int(ids.str.match(_ENSEMBL_HUMAN.pattern).sum())
            ens_col_m = int(ids.str.match(_ENSEMBL_MOUSE.pattern).sum())
            break

    species, evidence = "unknown", "gene names match neither human nor mouse conventions"
    if ens_h + ens_col_h > 0.5 * n and ens_h + ens_col_h > ens_m + ens_col_m:
        species, evidence = "human", f"{max(ens_h, ens_col_h):,} human Ensembl ids (ENSG)"
    elif ens_m + ens_col_m > 0.5 * n:
        species, evidence = "mouse", f"{max(ens_m, ens_col_m):,} mouse Ensembl ids (ENSMUSG)"
    elif mito_h > mito_m and upper > title:
        species, evidence = "human", f"upper-case symbols ({upper / n:.0%}) and {mito_h} MT- genes"
    elif mito_m > mito_h and title > upper:
        species, evidence = "mouse", f"title-case symbols ({title / n:.0%}) and {mito_m} mt- genes"
    elif upper / n > 0.6 and title / n < 0.2:
        species, evidence = "human", f"upper-case symbols ({upper / n:.0%}); no MT- genes"
    elif title / n > 0.6:
        species, evidence = "mouse", f"title-case symbols ({title / n:.0%}); no mt- genes"
    return {
        "species": species,
        "species_evidence": evidence,
        "gene_id_type": id_type,
        "n_mito_genes": n_mito,
        "n_ribo_genes": n_ribo,
    }


# --------------------------------------------------------------------------- entry point


def _counts_location(
    x_state: XState, layer_states: dict[str, XState], raw_state: XState | None
) -> str | None:
    named = [n for n in _COUNT_LAYER_NAMES if layer_states.get(n) == "raw_counts"]
    if named:
        return f"layers/{named[0]}"
    other = [n for n, s in layer_states.items() if s == "raw_counts"]
    if other:
        return f"layers/{other[0]}"
    if raw_state == "raw_counts":
        return "raw"
    if x_state == "raw_counts":
        return "X"
    return None


def _first_block_of_lazy(adata: AnnData) -> AnnData | None:
    """The first row block of a dask-backed AnnData, in memory; None when nothing is dask."""
    from scagent.data.memory import is_dask_array

    if not any(is_dask_array(m) for m in (adata.X, *adata.layers.values())):
        return None
    n = int(adata.X.chunks[0][0]) if is_dask_array(adata.X) else min(adata.n_obs, 10_000)
    head = adata[:n]
    return head.to_memory() if hasattr(head, "to_memory") else head.copy()


def inspect_adata(adata: AnnData, *, seed: int = 0) -> DataState:
    """Describe what ``adata`` is and what was already done to it.

    Never modifies ``adata`` and never densifies a whole matrix: value checks read a random
    sample of at most 1,000 rows of X, of each layer and of ``.raw``.

    Parameters
    ----------
    adata
        Any AnnData, from scagent or elsewhere.
    seed
        Seed of the row sample.

    Returns
    -------
    A :class:`~scagent.data.state.DataState`: the state of X (raw counts, normalized,
    log-normalized, scaled or unknown) with the evidence, where raw counts live, the
    breadcrumbs of earlier steps, species and gene-id type, and candidate
    sample / batch / condition / donor columns.
    """
    head = _first_block_of_lazy(adata)
    if head is not None:
        # Judge the values from the first row block (as the scale pipeline's count check
        # does): a random row sample of a dask array would read every chunk of the file.
        state = inspect_adata(head, seed=seed)
        x_sparse = sparse.issparse(getattr(adata.X, "_meta", adata.X))
        return state.model_copy(update={"n_obs": adata.n_obs, "x_sparse": x_sparse})
    warnings: list[str] = []
    if adata.n_obs == 0 or adata.n_vars == 0:
        x_state: XState = "transformed_unknown"
        evidence = f"empty matrix ({adata.n_obs} x {adata.n_vars})"
        warnings.append(evidence)
    else:
        x_state, evidence, warn = classify_matrix(
            adata.X, has_log1p_uns="log1p" in adata.uns, seed=seed
        )
        warnings += [f"X: {w}" for w in warn]

    layer_states: dict[str, XState] = {}
    for name in adata.layers.keys():
        state, _, warn = classify_matrix(
            adata.layers[name], expects_log1p_breadcrumb=False, seed=seed
        )
        layer_states[str(name)] = state
        warnings += [f"layers['{name}']: {w}" for w in warn]
        if str(name).lower() in {"counts", "raw_counts", "umi", "umis"} and state == "scaled":
            warnings.append(f"layers['{name}'] is named like counts but holds negative values")

    raw_state: XState | None = None
    if adata.raw is not None:
        raw_state, _, warn = classify_matrix(adata.raw.X, expects_log1p_breadcrumb=False, seed=seed)
        warnings += [f".raw: {w}" for w in warn]

    if not adata.obs_names.is_unique:
        warnings.append("cell names (obs_names) are not unique")
    if not adata.var_names.is_unique:
        warnings.append("gene names (var_names) are not unique")

    crumbs = _breadcrumbs(adata)
    columns = _obs_columns(adata)
    crumbs.clusterings = columns["clusterings"]
    crumbs.cell_types = columns["cell_types"]
    X = adata.X
    state = DataState(
        n_obs=adata.n_obs,
        n_vars=adata.n_vars,
        x_state=x_state,
        x_state_evidence=evidence,
        x_sparse=bool(sparse.issparse(X)),
        x_dtype=str(getattr(X, "dtype", "unknown")),
        raw_state=raw_state,
        layer_states=layer_states,
        counts_location=_counts_location(x_state, layer_states, raw_state),
        breadcrumbs=crumbs,
        sample_columns=columns["samples"],
        batch_columns=columns["batches"],
        condition_columns=columns["conditions"],
        donor_columns=columns["donors"],
        warnings=warnings,
        **_genes(adata.var_names, adata.var),
    )
    state.steps = _steps(state)
    return state


# --------------------------------------------------------------------------- summary

_X_STATE_WORDS = {
    "raw_counts": "raw counts",
    "normalized": "per-cell normalized (not log-transformed)",
    "log_normalized": "log-normalized",
    "scaled": "z-scored (scaled)",
    "transformed_unknown": "transformed in an unknown way",
}


def describe_location(location: str) -> str:
    """``'layers/counts'`` -> ``"layers['counts']"``, for messages."""
    if location.startswith("layers/"):
        return f"layers['{location.split('/', 1)[1]}']"
    return ".raw" if location == "raw" else location


def summarize_state(state: DataState) -> str:
    """One short paragraph describing ``state`` for people.

    Example: ``"6,420 cells x 19,918 genes (mouse). X is z-scored (scaled); raw counts in
    layers['raw_counts']. Clusters: obs['leiden'] (12). Cell types: obs['cell_type'] (8)."``
    """
    species = "" if state.species == "unknown" else f" ({state.species})"
    parts = [f"{state.n_obs:,} cells x {state.n_vars:,} genes{species}."]
    x_text = f"X is {_X_STATE_WORDS[state.x_state]}"
    if state.counts_location == "X":
        parts.append(f"{x_text}.")
    elif state.counts_location:
        parts.append(f"{x_text}; raw counts in {describe_location(state.counts_location)}.")
    else:
        parts.append(f"{x_text}; no raw counts anywhere.")
    if state.raw_state and state.counts_location != "raw":
        parts.append(f".raw is {_X_STATE_WORDS[state.raw_state]}.")
    done = [s for s in state.steps if s not in ("clustering", "cell_types", "normalize")]
    if done:
        parts.append(f"Done: {', '.join(done)}.")
    crumbs = state.breadcrumbs
    if crumbs.clusterings:
        parts.append(
            "Clusters: "
            + ", ".join(f"obs['{c.name}'] ({c.n_levels})" for c in crumbs.clusterings)
            + "."
        )
    if crumbs.cell_types:
        parts.append(
            "Cell types: "
            + ", ".join(f"obs['{c.name}'] ({c.n_levels})" for c in crumbs.cell_types)
            + "."
        )
    design = [
        (label, cols)
        for label, cols in (
            ("Samples", state.sample_columns),
            ("Batches", state.batch_columns),
            ("Conditions", state.condition_columns),
            ("Donors", state.donor_columns),
        )
        if cols
    ]
    for label, cols in design:
        parts.append(
            f"{label}: " + ", ".join(f"obs['{c.name}'] ({c.n_levels})" for c in cols) + "."
        )
    return " ".join(parts)


#: Which inspector columns stand for a design role, in the order they are tried.
_ROLE_COLUMNS = {
    "batch": ("batch_columns", "sample_columns", "donor_columns"),
    "sample": ("sample_columns", "donor_columns", "batch_columns"),
    "donor": ("donor_columns", "sample_columns"),
    "condition": ("condition_columns",),
}


def design_column(adata: AnnData, role: str, state: DataState | None = None) -> str | None:
    """The obs column that plays ``role`` in the design: the inspector's first candidate
    with two or more levels (a column with one level separates nothing).

    ``role`` is ``"batch"`` (batch, else sample, else donor columns), ``"sample"``
    (sample, donor, batch), ``"donor"`` (donor, sample) or ``"condition"``. None when no
    candidate has two levels.
    """
    if role not in _ROLE_COLUMNS:
        from scagent.errors import InvalidParameterError

        raise InvalidParameterError(
            f"unknown design role {role!r}", remedy=f"use one of: {', '.join(_ROLE_COLUMNS)}"
        )
    state = state or inspect_adata(adata)
    for attr in _ROLE_COLUMNS[role]:
        for info in getattr(state, attr):
            if info.name in adata.obs and adata.obs[info.name].nunique() > 1:
                return info.name
    return None
