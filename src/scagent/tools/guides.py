"""Which guide each cell of a pooled CRISPR screen carries: guide counts, guide-to-target maps and guide calling.

Guide UMI counts live in ``obsm['guide_counts']`` (cells x guides, the layout of
:mod:`scagent.data.modalities`). Every guide leaks into every droplet as ambient
background, so a cell's guide is called per guide by separating a Poisson background
from a Gaussian foreground on ``log2(count + 1)`` (Replogle et al. 2022; Cell Ranger's
protospacer calling works the same way), or by a plain UMI threshold.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

from scagent.errors import InputNotFoundError, InvalidDataError, InvalidParameterError
from scagent.tools._data import claim_key, mark_owned
from scagent.tools.base import ParamsModel, Tool, ToolResult, parse_params
from scagent.tools.registry import register

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "CONTROL_LABEL",
    "CONTROL_PATTERN",
    "GUIDE_ASSIGNMENT",
    "GUIDE_FEATURE_TYPE",
    "GuideAssignmentParams",
    "call_guides",
    "check_perturbation_inputs",
    "fit_poisson_gauss",
    "guide_assignment",
    "guide_counts",
    "guide_target_map",
    "measured_genes",
]

#: 10x feature type of guide counts in a combined matrix.
GUIDE_FEATURE_TYPE = "CRISPR Guide Capture"
#: The perturbation level every control guide collapses to.
CONTROL_LABEL = "non-targeting"
#: Control guide or target names: NT_1, NTC-3, non-targeting_2, Non-Targeting, safe-targeting_1,
#: control_4, ctrl1, negative_ctrl.
CONTROL_PATTERN = (
    r"(?i)(^|[_\-. ])(nt|ntc|non[-_ ]?targeting|nontarget\w*|safe[-_ ]?targeting|"
    r"safe|control|ctrl|neg|negative)\d*([_\-. ]|$)"
)
#: Guide names end in a guide number: CD81_1, CD81-g2, CD81.sg3, CD81_guide4.
_GUIDE_SUFFIX = re.compile(r"^(?P<target>.+?)[_\-. ](?:g|sg|sgrna|guide|grna)?\d+$", re.I)
#: A guide-name prefix some libraries put before the gene: sgCD81, sgRNA-CD81, sgRNA_CD81.
_GUIDE_PREFIX = re.compile(r"^(?:sgrna[_\-. ]?|sg[_\-. ]?)", re.I)


def guide_counts(
    adata: AnnData, guides_key: str = "guide_counts"
) -> tuple[pd.DataFrame, str | None]:
    """The cells x guides UMI counts of ``adata``, from ``obsm[guides_key]`` or from ``X``.

    When ``obsm[guides_key]`` is absent and ``var['feature_types']`` marks guide features
    (``'CRISPR Guide Capture'``), every non-gene feature type is first moved out of ``X``
    with :func:`scagent.data.split_feature_types` (``adata`` changes in place).

    Returns
    -------
    The counts table and, when features were split out of ``X``, a sentence saying so.

    Raises
    ------
    InvalidDataError
        No guide counts anywhere, a misaligned table, negative or non-integer counts.
    """
    from scagent.data.modalities import modality_counts, split_feature_types

    moved_note = None
    if guides_key not in adata.obsm:
        types = adata.var.get("feature_types")
        if types is not None and (types.astype(str) == GUIDE_FEATURE_TYPE).any():
            moved = split_feature_types(adata)
            moved_note = "moved " + ", ".join(
                f"'{t}' features to obsm['{k}']" for t, k in moved.items()
            )
            if guides_key not in adata.obsm:
                guides_key = moved.get(GUIDE_FEATURE_TYPE, guides_key)
        else:
            kinds = (
                f"var['feature_types'] holds only {sorted(set(types.astype(str)))}"
                if types is not None
                else "var has no 'feature_types' column"
            )
            raise InvalidDataError(
                f"no guide counts: obsm['{guides_key}'] is absent and {kinds}; a CRISPR screen "
                f"needs obsm['{guides_key}'] (cells x guides UMI counts) or features of type "
                f"'{GUIDE_FEATURE_TYPE}'",
                remedy="read the Cell Ranger output with all feature types (gex_only=False), or "
                "attach a guide count table with scagent.data.set_modality_counts(adata, "
                f"'{guides_key}', table)",
            )
    table = modality_counts(adata, guides_key, what="guides")
    values = table.to_numpy()
    if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
        raise InvalidDataError(
            f"obsm['{guides_key}'] holds non-integer values; guide calling needs UMI counts",
            remedy="store the raw guide UMI counts, not normalised values",
        )
    return table, moved_note


def _read_mapping(path: str) -> dict[str, str]:
    """Guide -> target from a CSV: Cell Ranger's feature reference or two columns."""
    file = Path(path)
    if not file.is_file():
        raise InputNotFoundError(f"guide_targets file '{path}' does not exist")
    try:
        table = pd.read_csv(file, sep=None, engine="python", dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidDataError(f"guide_targets file '{path}' cannot be read: {exc}") from None
    cols = {c.lower(): c for c in table.columns}
    guide_col = next(
        (cols[c] for c in ("guide", "name", "id", "feature", "sgrna", "guide_id") if c in cols),
        None,
    )
    target_col = next(
        (
            cols[c]
            for c in ("target_gene_name", "target", "gene", "target_gene", "target_gene_id")
            if c in cols
        ),
        None,
    )
    if guide_col is None or target_col is None:
        if table.shape[1] != 2:
            raise InvalidDataError(
                f"guide_targets file '{path}' has columns {list(table.columns)}; cannot tell "
                "which holds the guide and which the target",
                remedy="use columns 'guide,target' or Cell Ranger's feature reference "
                "(id/name, target_gene_name)",
            )
        guide_col, target_col = table.columns
    pairs = table[[guide_col, target_col]].dropna()
    return dict(zip(pairs[guide_col].astype(str), pairs[target_col].astype(str), strict=True))


def _parse_target(guide: str, genes: Collection[str] | None) -> str:
    """The target gene in a guide name, preferring a reading that names a measured gene.

    A gene name can itself end like a guide number (NKX2-1, NKX2-5, HLA-A): without the
    measured genes the trailing number is taken as the guide number (CD81_1 -> CD81); with
    them, the whole name is kept when it is a gene, the number is stripped when that gives
    a gene (or the whole name is none), and a leading 'sg' / 'sgRNA-' is dropped when
    only that gives a gene (sgCD81_2 -> CD81).
    """
    match = _GUIDE_SUFFIX.match(guide)
    stripped = match.group("target") if match else guide
    if genes is None:
        return stripped
    candidates = [guide, stripped]
    candidates += [_GUIDE_PREFIX.sub("", c, count=1) for c in (guide, stripped)]
    return next((c for c in candidates if c and c in genes), stripped)


def guide_target_map(
    guides: list[str],
    guide_targets: Mapping[str, str] | str | None = None,
    control_pattern: str = CONTROL_PATTERN,
    control_label: str = CONTROL_LABEL,
    genes: Collection[str] | None = None,
) -> dict[str, str]:
    """Each guide's target gene, with every control guide mapped to ``control_label``.

    Parameters
    ----------
    guides
        Guide names (columns of the guide counts).
    guide_targets
        ``{guide: target}``, a CSV path (two columns, or Cell Ranger's feature reference),
        or None to parse names such as ``CD81_1``, ``CD81-g2`` (the part before the
        guide number). Guides missing from a given mapping fall back to parsing.
    control_pattern
        Regular expression matched against the guide name and its target; a match
        makes the guide a control.
    control_label
        The target every control guide gets.
    genes
        The measured genes (symbols and ids). When given, a parsed name prefers the
        reading that is a measured gene: ``NKX2-1`` stays ``NKX2-1`` (not ``NKX2`` with
        guide number 1), ``sgCD81_2`` becomes ``CD81``.

    Raises
    ------
    InvalidParameterError
        If ``control_pattern`` is not a valid regular expression.
    """
    try:
        control = re.compile(control_pattern)
    except re.error as exc:
        raise InvalidParameterError(
            f"control_pattern {control_pattern!r} is not a regular expression: {exc}"
        ) from None
    given: dict[str, str] = {}
    if isinstance(guide_targets, str):
        given = _read_mapping(guide_targets)
    elif guide_targets is not None:
        given = {str(k): str(v) for k, v in guide_targets.items()}
    out = {}
    for guide in guides:
        target = given.get(guide)
        if target is None:
            target = _parse_target(guide, genes)
        if control.search(guide) or control.search(target):
            target = control_label
        out[guide] = target
    return out


def measured_genes(adata: AnnData) -> set[str]:
    """The gene ids and symbols of ``adata``'s expression features (guides and antibodies left out)."""
    from scagent.knowledge.genes import symbols_from_var

    keep = np.ones(adata.n_vars, dtype=bool)
    types = adata.var.get("feature_types")
    if types is not None:
        keep = (types.astype(str) == "Gene Expression").to_numpy()
    names = adata.var_names.astype(str)[keep]
    symbols = symbols_from_var(adata)[keep]
    return set(names) | {str(s) for s in symbols}


def fit_poisson_gauss(
    counts: np.ndarray, *, max_iter: int = 200, tol: float = 1e-7
) -> dict[str, float]:
    """Fit a Poisson background + Gaussian-on-log2(count+1) foreground to one guide's counts by EM.

    Both components are probabilities of a whole count: the foreground is the Gaussian's
    mass on ``[log2(c + 0.5), log2(c + 1.5)]``, so the two are on one scale. Written here
    because pertpy's version (numpyro MCMC, jax) is an optional heavy dependency and
    scikit-learn has no mixture of a discrete and a continuous component.

    Returns
    -------
    dict
        ``poisson_rate``, ``gauss_mean``, ``gauss_sd`` (log2 units), ``weight`` (share
        foreground), ``threshold`` (smallest count whose posterior favours the
        foreground; ``inf`` when there is no foreground), ``n_iter``, ``converged``.
    """
    values, freq = np.unique(np.asarray(counts, dtype=np.int64), return_counts=True)
    freq = freq.astype(float)
    y = np.log2(values + 1.0)
    lo = np.log2(values + 0.5)
    hi = np.log2(values + 1.5)
    lo[values == 0] = -np.inf
    # Start from a two-means split of log2 counts: far apart when a foreground exists.
    split = (y.min() + y.max()) / 2
    for _ in range(50):
        left, right = y <= split, y > split
        if not right.any() or not left.any():
            break
        new = (
            np.average(y[left], weights=freq[left]) + np.average(y[right], weights=freq[right])
        ) / 2
        if abs(new - split) < 1e-9:
            break
        split = new
    fg = y > split
    if not fg.any() or values.max() < 1:
        return _no_foreground(values, freq)
    lam = max(float(np.average(values[~fg], weights=freq[~fg])) if (~fg).any() else 0.1, 1e-3)
    mu = float(np.average(y[fg], weights=freq[fg]))
    sd = max(float(np.sqrt(np.average((y[fg] - mu) ** 2, weights=freq[fg]))), 0.25)
    pi = float(freq[fg].sum() / freq.sum())
    previous = -np.inf
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007  (n_iter is reported after the loop)
        log_bg = np.log1p(-pi) + stats.poisson.logpmf(values, lam)
        mass = stats.norm.cdf(hi, mu, sd) - stats.norm.cdf(lo, mu, sd)
        log_fg = np.log(pi) + np.log(np.maximum(mass, 1e-300))
        total = np.logaddexp(log_bg, log_fg)
        loglik = float((freq * total).sum())
        r = np.exp(log_fg - total)
        w_fg, w_bg = freq * r, freq * (1 - r)
        if w_fg.sum() < 1e-9 or w_bg.sum() < 1e-9:
            break
        pi = float(np.clip(w_fg.sum() / freq.sum(), 1e-6, 1 - 1e-6))
        lam = max(float((w_bg * values).sum() / w_bg.sum()), 1e-3)
        mu = float((w_fg * y).sum() / w_fg.sum())
        # A floor on the spread keeps the foreground from collapsing onto one count.
        sd = max(float(np.sqrt((w_fg * (y - mu) ** 2).sum() / w_fg.sum())), 0.25)
        if loglik - previous < tol * abs(loglik):
            converged = True
            break
        previous = loglik
    # A foreground must sit clearly above the background (a typical count of at least 4 and
    # 5x the ambient rate), or the "foreground" is only the Poisson tail of the background.
    if mu < np.log2(max(5 * lam, 4.0) + 1) or pi <= 1e-5:
        return _no_foreground(values, freq, lam=lam, n_iter=n_iter)
    grid = np.arange(0, int(values.max()) + 2)
    log_bg = np.log1p(-pi) + stats.poisson.logpmf(grid, lam)
    mass = stats.norm.cdf(np.log2(grid + 1.5), mu, sd) - stats.norm.cdf(
        np.where(grid == 0, -np.inf, np.log2(grid + 0.5)), mu, sd
    )
    log_fg = np.log(pi) + np.log(np.maximum(mass, 1e-300))
    above = np.flatnonzero((log_fg > log_bg) & (grid > lam))
    threshold = float(grid[above[0]]) if above.size else float("inf")
    return {
        "poisson_rate": lam,
        "gauss_mean": mu,
        "gauss_sd": sd,
        "weight": pi,
        "threshold": threshold,
        "n_iter": n_iter,
        "converged": converged,
    }


def _no_foreground(
    values: np.ndarray, freq: np.ndarray, *, lam: float | None = None, n_iter: int = 0
) -> dict[str, float]:
    rate = lam if lam is not None else float(np.average(values, weights=freq))
    return {
        "poisson_rate": rate,
        "gauss_mean": float("nan"),
        "gauss_sd": float("nan"),
        "weight": 0.0,
        "threshold": float("inf"),
        "n_iter": n_iter,
        "converged": False,
    }


def _pertpy_guides(table: pd.DataFrame, method: str, min_umi: int) -> np.ndarray | None:
    """Binary cells x guides calls from pertpy's GuideAssignment, or None if pertpy is absent.

    pertpy is optional (it pulls in jax and needs statsmodels<0.15), so the same two
    methods are implemented here as the fallback.
    """
    try:
        import anndata as ad
        import pertpy as pt
    except ImportError:
        return None
    gdo = ad.AnnData(X=table.to_numpy(dtype=np.float32))
    gdo.obs_names = table.index.astype(str)
    gdo.var_names = table.columns.astype(str)
    try:
        assigner = pt.pp.GuideAssignment()
        if method == "threshold":
            calls = assigner.assign_by_threshold(gdo.X, assignment_threshold=min_umi)
            return np.asarray(calls) > 0
        calls = assigner.assign_mixture_model(gdo, only_return_results=True)
    except (AttributeError, TypeError) as exc:
        # pertpy's API has moved between releases; a mismatch must not stop the screen.
        warnings.warn(
            f"pertpy's GuideAssignment could not be called ({exc}); using scagent's own "
            "Poisson-Gaussian mixture instead",
            stacklevel=3,
        )
        return None
    out = np.zeros(table.shape, dtype=bool)
    index = {g: j for j, g in enumerate(gdo.var_names)}
    counts = table.to_numpy()
    for i, call in enumerate(np.asarray(calls, dtype=str)):
        if call == "multiple":
            # pertpy names no guide for a cell above its max_assignments_per_cell: it carries
            # many, so every guide at min_umi or more is called and the cell is a multiplet.
            out[i] = counts[i] >= min_umi
            continue
        for guide in call.split("+"):
            if guide in index:
                out[i, index[guide]] = True
    return out


def call_guides(
    table: pd.DataFrame, *, method: str = "mixture", min_umi: int = 3, use_pertpy: bool = True
) -> tuple[np.ndarray, pd.DataFrame, str]:
    """Call which guides each cell carries.

    Parameters
    ----------
    table
        Cells x guides UMI counts.
    method
        ``"mixture"``: per guide, :func:`fit_poisson_gauss`; a cell carries the guide when
        the foreground is more likely and the count is at least ``min_umi``.
        ``"threshold"``: a cell carries every guide with at least ``min_umi`` UMIs
        (pertpy's ``assign_by_threshold``).
    min_umi
        Minimum UMI count of a call, for both methods.

    Returns
    -------
    The boolean cells x guides calls, one row per guide of fitted parameters, and the
    backend used (``"pertpy"`` or ``"scagent"``). A cell pertpy calls ``"multiple"``
    (more guides than its ``max_assignments_per_cell``) gets every guide with ``min_umi``
    or more UMIs.
    """
    counts = table.to_numpy(dtype=np.int64)
    rows = []
    calls = _pertpy_guides(table, method, min_umi) if use_pertpy else None
    backend = "pertpy" if calls is not None else "scagent"
    if calls is None:
        calls = np.zeros(counts.shape, dtype=bool)
        for j in range(counts.shape[1]):
            if method == "threshold":
                calls[:, j] = counts[:, j] >= min_umi
                continue
            fit = fit_poisson_gauss(counts[:, j])
            calls[:, j] = counts[:, j] >= max(fit["threshold"], min_umi)
            rows.append({"guide": str(table.columns[j]), **fit})
    calls &= counts >= min_umi
    fits = pd.DataFrame(rows)
    if fits.empty:
        fits = pd.DataFrame({"guide": table.columns.astype(str)})
    fits["n_cells_called"] = calls.sum(axis=0)
    fits["total_umis"] = counts.sum(axis=0)
    return calls, fits, backend


def check_perturbation_inputs(
    adata: AnnData,
    *,
    guides_key: str = "guide_counts",
    guide_targets: Mapping[str, str] | str | None = None,
    control_pattern: str = CONTROL_PATTERN,
) -> None:
    """Raise :class:`InvalidDataError` saying what is missing for a CRISPR screen analysis.

    Checks (without changing ``adata``) that guide counts exist (``obsm[guides_key]`` or
    ``'CRISPR Guide Capture'`` features in ``X``), are aligned to the cells and are counts,
    that some guides are non-targeting controls and some target a gene, and that the
    expression matrix has raw counts.
    """
    from scagent.tools._data import counts_of

    probe = adata
    if guides_key not in adata.obsm:
        types = adata.var.get("feature_types")
        if types is not None and (types.astype(str) == GUIDE_FEATURE_TYPE).any():
            probe = adata.copy()  # splitting moves features out of X: check on a copy
    table, _ = guide_counts(probe, guides_key)
    mapping = guide_target_map(
        list(table.columns.astype(str)),
        guide_targets,
        control_pattern,
        genes=measured_genes(probe),
    )
    controls = [g for g, t in mapping.items() if t == CONTROL_LABEL]
    if not controls:
        raise InvalidDataError(
            f"none of the {len(mapping)} guides ({', '.join(list(mapping)[:6])}...) is a "
            "non-targeting control; perturbations are compared with control cells",
            remedy="name control guides like 'NT_1' / 'non-targeting_2', pass control_pattern=<regex> "
            "matching them, or map them to 'non-targeting' in guide_targets",
        )
    if len(controls) == len(mapping):
        raise InvalidDataError(
            "every guide is a control; there is no targeting guide to analyse",
            remedy="check control_pattern: it should match only the control guides",
        )
    if (table.to_numpy().sum(axis=1) > 0).mean() < 0.05:
        raise InvalidDataError(
            f"fewer than 5% of cells have any guide UMI in obsm['{guides_key}']",
            remedy="check that the guide table belongs to these cells (same barcodes)",
        )
    if counts_of(probe) is None:
        raise InvalidDataError(
            "no raw gene counts in X, layers['counts'] or .raw; perturbation DE needs them",
            remedy="load the raw count matrix (the 10x filtered_feature_bc_matrix)",
        )


# ---------------------------------------------------------------------------------------------
# the tool

REPLOGLE_2022 = (
    "Replogle et al. (2022) Mapping information-rich genotype-phenotype landscapes with "
    "genome-scale Perturb-seq. Cell 185:2559"
)
#: obs columns guide_assignment writes.
GUIDE_COLUMNS = ("guide", "perturbation", "n_guides", "guide_multiplet")


class GuideAssignmentParams(ParamsModel):
    guides_key: str = Field(
        "guide_counts",
        description="obsm key of the cells x guides UMI counts; when absent, features with "
        "var['feature_types'] == 'CRISPR Guide Capture' are moved there from X.",
    )
    guides_file: str | None = Field(
        None,
        description="CSV/TSV of guide UMI counts (rows: cell barcodes, columns: guides) to "
        "attach as obsm[guides_key] first; cells absent from it get zeros.",
    )
    method: Literal["mixture", "threshold"] = Field(
        "mixture",
        description="'mixture': per guide a Poisson (ambient) + Gaussian on log2(count+1) "
        "(cells carrying it) mixture fitted by EM, as Replogle et al. 2022 and Cell Ranger; "
        "'threshold': every guide with at least min_umi UMIs (pertpy's assign_by_threshold).",
    )
    min_umi: int = Field(
        3,
        ge=1,
        le=10_000,
        description="Minimum UMIs of a guide call (the threshold of method='threshold'; a "
        "floor under the mixture's own cut-off). 3-10 is usual for direct-capture guides.",
    )
    guide_targets: dict[str, str] | str | None = Field(
        None,
        description="Guide -> target gene: a dict or a CSV path (columns guide,target or Cell "
        "Ranger's feature reference). None parses names like 'CD81_1', 'CD81-g2', "
        "preferring a reading that is a measured gene ('NKX2-1' stays NKX2-1, 'sgCD81_2' "
        "is CD81).",
    )
    control_pattern: str = Field(
        CONTROL_PATTERN,
        description="Regex matching control guides (by guide or target name): NT, NTC, "
        "non-targeting, safe-targeting, control, ctrl.",
    )
    control_label: str = Field(
        CONTROL_LABEL, description="The one perturbation level all control guides collapse to."
    )
    use_pertpy: bool = Field(True, description="Use pertpy's GuideAssignment when it is installed.")
    overwrite: bool = Field(
        False, description="Replace obs columns guide/perturbation/... not written by scagent."
    )


def _attach_guides_file(adata: AnnData, p: Any) -> str | None:
    """Read a cells x guides count table and attach it to ``obsm[guides_key]`` by barcode."""
    from scagent.data.modalities import read_counts_table, set_modality_counts

    path = Path(p.guides_file)
    table = read_counts_table(path)
    note = claim_key(adata, "obsm", p.guides_key, "guide_assignment", overwrite=p.overwrite)
    # Guide capture misses some cells, but a table matching few of them belongs to others.
    # Checked before anything is attached, so a refusal leaves an existing table in place.
    rate = float(adata.obs_names.isin(table.index).mean()) if adata.n_obs else 0.0
    if rate < 0.5:
        raise InvalidDataError(
            f"guides_file '{path}' has rows for only {rate:.0%} of the cells; cells look like "
            f"{list(adata.obs_names[:2])}, its rows like {list(table.index[:2])}",
            remedy="use the guide counts of the same cells (same barcodes and suffixes like '-1')",
        )
    set_modality_counts(adata, p.guides_key, table, match="fill")
    mark_owned(adata, "guide_assignment", ("obsm", p.guides_key))
    return note


def _refuse_no_controls(guides: list[str], control_label: str) -> None:
    raise InvalidDataError(
        f"none of the {len(guides)} guides ({', '.join(guides[:6])}) is a non-targeting "
        "control guide; perturbations are compared with control cells",
        remedy="pass control_pattern=<regex matching your control guides>, or map them to "
        f"'{control_label}' in guide_targets",
    )


def guide_assignment(adata: AnnData, **params: Any) -> ToolResult:
    """Call the guide(s) each cell carries and its perturbation, from guide UMI counts.

    Every guide is called on its own (ambient guide reads reach every droplet), with a
    Poisson-Gaussian mixture on ``log2(count + 1)`` or a UMI threshold. A cell with one
    called guide is assigned that guide; guides of one target (a dual-guide vector) count
    as one perturbation; guides of several targets make a multiplet.

    Parameters
    ----------
    adata
        Cells with guide counts in ``obsm[guides_key]`` (or as 'CRISPR Guide Capture'
        features in ``X``, which are moved to ``obsm`` first).
    **params
        See :class:`GuideAssignmentParams`.

    Returns
    -------
    ToolResult
        Writes ``obs['guide']`` (the guide; ``g1+g2`` for guides of one target;
        ``multiple``; ``unassigned``), ``obs['perturbation']`` (target gene, the control
        label, ``multiple`` or ``unassigned``), ``obs['n_guides']``,
        ``obs['guide_multiplet']`` and ``uns['guide_assignment']`` (``guides``: per guide
        its target, fit and cells called; ``params``). Metrics: share assigned, multiplet
        rate, cells per perturbation min/median.

    Raises
    ------
    InvalidDataError
        No guide counts, no control guides, or no cell carries a guide.
    """
    p = parse_params(GuideAssignmentParams, params, "guide_assignment")
    out_warnings: list[str] = []
    for col in GUIDE_COLUMNS:
        if (
            w := claim_key(adata, "obs", col, "guide_assignment", overwrite=p.overwrite)
        ) is not None:
            out_warnings.append(w)
    if w := claim_key(adata, "uns", "guide_assignment", "guide_assignment", overwrite=p.overwrite):
        out_warnings.append(w)
    attached = _attach_guides_file(adata, p) if p.guides_file is not None else None
    if attached is not None:
        out_warnings.append(attached)
    split = p.guides_key not in adata.obsm
    if split and "feature_types" in adata.var:
        # Check the guides while they are still features of X: a refusal must not leave the
        # caller's data split.
        is_guide = (adata.var["feature_types"].astype(str) == GUIDE_FEATURE_TYPE).to_numpy()
        names = [str(g) for g in adata.var_names[is_guide]]
        early = guide_target_map(
            names, p.guide_targets, p.control_pattern, p.control_label, measured_genes(adata)
        )
        if names and p.control_label not in early.values():
            guide_counts(adata.copy(), p.guides_key)  # the precise error when counts are bad
            _refuse_no_controls(names, p.control_label)
    table, moved = guide_counts(adata, p.guides_key)
    guides_key = p.guides_key if p.guides_key in adata.obsm else "guide_counts"
    guides = [str(g) for g in table.columns]
    genes = measured_genes(adata)
    mapping = guide_target_map(guides, p.guide_targets, p.control_pattern, p.control_label, genes)
    controls = [g for g in guides if mapping[g] == p.control_label]
    if not controls:
        _refuse_no_controls(guides, p.control_label)
    unmeasured = sorted({t for t in mapping.values() if t != p.control_label and t not in genes})
    if unmeasured:
        out_warnings.append(
            f"{len(unmeasured)} guide target(s) are not measured genes: "
            f"{', '.join(unmeasured[:8])}; their knockdown cannot be checked (map guides to "
            "genes with guide_targets if the names were parsed wrongly)"
        )
    calls, fits, backend = call_guides(
        table, method=p.method, min_umi=p.min_umi, use_pertpy=p.use_pertpy
    )
    fits.insert(1, "target", [mapping[g] for g in fits["guide"]])
    fits.insert(2, "is_control", [mapping[g] == p.control_label for g in fits["guide"]])
    for row in fits.itertuples():
        if p.method == "mixture" and backend == "scagent" and not np.isfinite(row.threshold):
            out_warnings.append(
                f"guide '{row.guide}': no population of cells stands above its ambient "
                "background; no cell was assigned it"
            )

    names = np.asarray(guides, dtype=object)
    targets = np.asarray([mapping[g] for g in guides], dtype=object)
    n_guides = calls.sum(axis=1).astype(np.int64)
    guide_col = np.full(adata.n_obs, "unassigned", dtype=object)
    pert_col = np.full(adata.n_obs, "unassigned", dtype=object)
    multiplet = np.zeros(adata.n_obs, dtype=bool)
    for i in np.flatnonzero(n_guides > 0):
        hit = np.flatnonzero(calls[i])
        hit_targets = set(targets[hit])
        if len(hit_targets) == 1:
            guide_col[i] = "+".join(names[hit])
            pert_col[i] = targets[hit[0]]
        else:
            guide_col[i] = pert_col[i] = "multiple"
            multiplet[i] = True
    adata.obs["guide"] = pd.Categorical(guide_col)
    order = [p.control_label, *sorted(set(pert_col) - {p.control_label, "multiple", "unassigned"})]
    order += [lv for lv in ("multiple", "unassigned") if lv in set(pert_col)]
    adata.obs["perturbation"] = pd.Categorical(
        pert_col, categories=[lv for lv in order if lv in set(pert_col)]
    )
    adata.obs["n_guides"] = n_guides
    adata.obs["guide_multiplet"] = multiplet
    adata.uns["guide_assignment"] = {
        "guides": fits,
        "params": {
            "method": p.method,
            "backend": backend,
            "guides_key": guides_key,
            "min_umi": p.min_umi,
            "control_label": p.control_label,
            "control_guides": controls,
            "guide_targets": {g: str(mapping[g]) for g in guides},
        },
    }
    written = [f"obs/{c}" for c in GUIDE_COLUMNS] + ["uns/guide_assignment"]
    written.append(
        mark_owned(
            adata,
            "guide_assignment",
            *[("obs", c) for c in GUIDE_COLUMNS],
            ("uns", "guide_assignment"),
        )
    )
    if split:
        written = ["X", "var", f"obsm/{guides_key}", *written]
        if moved:
            out_warnings.append(moved)
    elif p.guides_file is not None:
        written = [f"obsm/{guides_key}", *written]
    usable = ~np.isin(pert_col, ["multiple", "unassigned"])
    per_pert = pd.Series(pert_col[usable]).value_counts()
    share_assigned = float(usable.mean()) if adata.n_obs else 0.0
    metrics: dict[str, float | int | str] = {
        "n_guides": len(guides),
        "n_control_guides": len(controls),
        "n_perturbations": int(len(per_pert) - (p.control_label in per_pert.index)),
        "share_assigned": share_assigned,
        "multiplet_rate": float(multiplet.mean()),
        "unassigned_rate": float((n_guides == 0).mean()),
        "cells_per_perturbation_min": int(per_pert.min()) if len(per_pert) else 0,
        "cells_per_perturbation_median": float(per_pert.median()) if len(per_pert) else 0.0,
        "n_control_cells": int(per_pert.get(p.control_label, 0)),
        "backend": backend,
    }
    if share_assigned < 0.5:
        out_warnings.append(
            f"only {share_assigned:.0%} of cells have a single perturbation; check the guide "
            "library, the guide capture, or min_umi"
        )
    if metrics["n_control_cells"] == 0:
        out_warnings.append(f"no cell was assigned a control guide ({', '.join(controls)})")
    return ToolResult(
        summary=f"guide calling ({p.method}, {backend}) on {len(guides)} guides: "
        f"{share_assigned:.1%} of {adata.n_obs:,} cells carry one perturbation, "
        f"{metrics['multiplet_rate']:.1%} are multiplets, {metrics['unassigned_rate']:.1%} "
        "carry no guide",
        metrics=metrics,
        warnings=[w for w in out_warnings if w],
        written=written,
        tables={"guides": fits.to_dict("records")},
    )


def _check_guides(adata: AnnData, p: BaseModel, result: ToolResult) -> list[str]:
    for col in GUIDE_COLUMNS:
        if col not in adata.obs:
            raise InvalidDataError(f"guide_assignment finished but obs['{col}'] is missing")
    if int(adata.obs["n_guides"].sum()) == 0:
        raise InvalidDataError(
            "guide_assignment called no guide in any cell",
            remedy="check the guide counts (obsm['guide_counts']) and lower min_umi",
        )
    return []


GUIDE_ASSIGNMENT = register(
    Tool(
        id="guide_assignment",
        name="Guide assignment",
        category="perturbation",
        framework="scagent",
        fn=guide_assignment,
        params=GuideAssignmentParams,
        checks=_check_guides,
        captures=("numpy", "scipy", "pandas", "anndata"),
        reference=REPLOGLE_2022 + "; 10x Genomics Cell Ranger protospacer calling; pertpy "
        "GuideAssignment (Heumos et al. 2025, Nat Methods)",
        description="Call each cell's CRISPR guide(s) from guide UMI counts (Poisson-Gaussian "
        "mixture per guide, or a UMI threshold); flags multiplets and cells without a guide.",
    )
)
