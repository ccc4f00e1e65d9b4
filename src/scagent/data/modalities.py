"""Other feature types of a cell (antibody tags, CRISPR guides, hashtags) kept beside its gene counts.

Cell Ranger writes every feature type into one matrix with ``var['feature_types']``
("Gene Expression", "Antibody Capture", "CRISPR Guide Capture", "Multiplexing Capture").
scagent keeps ``X`` for genes only and moves each other feature type into ``obsm`` as a
cells x features DataFrame of counts, under one documented key per type (the layout
totalVI and scirpy's AnnData mode use), so every step of the spine snapshots it with the
cells it belongs to.
"""

from __future__ import annotations

import gzip
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from scagent.errors import InvalidDataError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "GENE_EXPRESSION",
    "MODALITY_KEYS",
    "modality_counts",
    "read_counts_table",
    "read_with_feature_types",
    "set_modality_counts",
    "split_feature_types",
]

GENE_EXPRESSION = "Gene Expression"

#: 10x feature type -> the ``obsm`` key its counts move to.
MODALITY_KEYS: dict[str, str] = {
    "Antibody Capture": "protein_counts",
    "CRISPR Guide Capture": "guide_counts",
    "Multiplexing Capture": "hashtag_counts",
}


def _obsm_key(feature_type: str) -> str:
    known = MODALITY_KEYS.get(feature_type)
    if known is not None:
        return known
    slug = "".join(c if c.isalnum() else "_" for c in feature_type.lower()).strip("_")
    return f"{slug or 'other'}_counts"


def split_feature_types(adata: AnnData) -> dict[str, str]:
    """Move every non-gene feature type from ``X`` into ``obsm``; ``adata`` keeps genes only.

    Parameters
    ----------
    adata
        Read with all feature types (e.g. a Cell Ranger ``.h5`` with ``gex_only=False``);
        ``var['feature_types']`` says which feature is which. Changed in place.

    Returns
    -------
    dict
        ``{feature type: obsm key}`` of what moved (empty when ``X`` held genes only).
        Each ``obsm[key]`` is a DataFrame of counts (cells x features, int32 where the
        counts are integers), named by the feature names.

    Raises
    ------
    InvalidDataError
        If no feature is "Gene Expression", or an ``obsm`` key is already taken.
    """
    if "feature_types" not in adata.var:
        return {}
    types = adata.var["feature_types"].astype(str).to_numpy()
    others = [t for t in dict.fromkeys(types) if t != GENE_EXPRESSION]
    if not others:
        return {}
    if not (types == GENE_EXPRESSION).any():
        raise InvalidDataError(
            f"no 'Gene Expression' features; the file holds only: {', '.join(others)}",
            remedy="give the full Cell Ranger output, or read the other modality on its own",
        )
    moved: dict[str, str] = {}
    for feature_type in others:
        key = _obsm_key(feature_type)
        if key in adata.obsm:
            raise InvalidDataError(
                f"obsm['{key}'] already exists; cannot move '{feature_type}' features there",
                remedy=f"rename or delete obsm['{key}'] first",
            )
        cols = np.flatnonzero(types == feature_type)
        block = adata.X[:, cols]
        dense = block.toarray() if sparse.issparse(block) else np.asarray(block)
        if np.array_equal(dense, np.round(dense)):
            dense = dense.astype(np.int32)
        adata.obsm[key] = pd.DataFrame(
            dense, index=adata.obs_names.copy(), columns=adata.var_names[cols].astype(str)
        )
        moved[feature_type] = key
    keep = types == GENE_EXPRESSION
    # Subset in place through _inplace_subset_var: the caller's object keeps its identity.
    adata._inplace_subset_var(keep)
    return moved


def read_with_feature_types(
    path: str | os.PathLike[str], **opts: Any
) -> tuple[AnnData, dict[str, str]]:
    """Read Cell Ranger output with every feature type, genes in ``X`` and the rest in ``obsm``.

    Names are made unique only after the split, among the genes: antibodies are often
    named like the gene they measure (CD4, CD19), and must keep their names.

    Returns
    -------
    The AnnData and ``{feature type: obsm key}`` of what moved (see :func:`split_feature_types`).
    """
    from scagent.data.io import _deduplicate, read

    with warnings.catch_warnings():
        # duplicates across feature types are expected here; genes are checked below
        warnings.filterwarnings("ignore", message=".*duplicated gene names")
        adata = read(path, gex_only=False, make_unique=False, **opts)
    moved = split_feature_types(adata)
    _deduplicate(adata, Path(path).name, make_unique=True)
    return adata, moved


def modality_counts(adata: AnnData, key: str, *, what: str = "features") -> pd.DataFrame:
    """The cells x features counts DataFrame of ``obsm[key]``, aligned to ``adata``'s cells.

    Accepts a DataFrame, or an array with its feature names in
    ``uns[key + '_names']``; anything else is refused with the layout to use.

    Raises
    ------
    InvalidDataError
        If ``obsm[key]`` is absent, misaligned, unnamed or negative.
    """
    if key not in adata.obsm:
        present = ", ".join(adata.obsm) or "none"
        raise InvalidDataError(
            f"no {what}: obsm['{key}'] is absent (obsm holds: {present})",
            remedy=(
                "read the Cell Ranger output with all feature types "
                "(scagent.data.split_feature_types), or put a cells x features DataFrame of "
                f"counts in obsm['{key}']"
            ),
        )
    value = adata.obsm[key]
    if isinstance(value, pd.DataFrame):
        df = value
        if not df.index.equals(adata.obs_names):
            raise InvalidDataError(f"obsm['{key}'] rows are not the cells of X, in order")
    else:
        names = adata.uns.get(f"{key}_names")
        if names is None:
            raise InvalidDataError(
                f"obsm['{key}'] is an unnamed array",
                remedy=f"store a DataFrame with feature names, or names in uns['{key}_names']",
            )
        arr = value.toarray() if sparse.issparse(value) else np.asarray(value)
        df = pd.DataFrame(arr, index=adata.obs_names, columns=[str(n) for n in names])
    if df.shape[1] == 0:
        raise InvalidDataError(f"obsm['{key}'] has no {what}")
    if (df.to_numpy() < 0).any():
        raise InvalidDataError(
            f"obsm['{key}'] holds negative values; {what} must be raw counts",
            remedy="store the raw counts; normalised values go under another key",
        )
    return df


def read_counts_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A cells x features counts table from CSV/TSV (barcodes in the first column).

    Raises
    ------
    InputNotFoundError, CorruptInputError
        A missing or unparseable file.
    """
    from scagent.errors import CorruptInputError, InputNotFoundError

    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"no such file: {p}", remedy="check the path")
    try:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt") as fh:  # tab- or comma-separated, judged from the header
            sep = "\t" if "\t" in fh.readline() else ","
        table = pd.read_csv(p, sep=sep, index_col=0)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CorruptInputError(f"cannot read {p.name} as a table: {exc}") from exc
    if table.shape[1] == 0:
        raise CorruptInputError(
            f"{p.name} has no feature columns",
            remedy="barcodes in the first column, one column per feature",
        )
    table.index = table.index.astype(str)
    bad = [str(c) for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise CorruptInputError(
            f"{p.name}: column(s) {bad[:5]} are not numbers; expected cells x features counts",
            remedy="one row per cell barcode (first column) and one count column per feature",
        )
    return table


def set_modality_counts(
    adata: AnnData, key: str, counts: pd.DataFrame, *, match: str = "exact"
) -> float:
    """Put a counts table of another modality into ``obsm[key]``, aligned to ``adata``'s cells.

    Parameters
    ----------
    counts
        Cells x features, indexed by barcode.
    match
        ``"exact"``: every cell of ``adata`` must be in ``counts``; ``"fill"``: cells missing
        from ``counts`` get zeros (e.g. cells without any guide read).

    Returns
    -------
    float
        Share of ``adata``'s cells found in ``counts``.

    Raises
    ------
    InvalidDataError
        If no barcode matches, or ``match='exact'`` and some are missing; the message gives
        the match rate and example barcodes from both sides.
    """
    dup = counts.index[counts.index.duplicated()]
    if len(dup):
        raise InvalidDataError(
            f"{key}: {len(dup)} barcode(s) appear more than once in the table "
            f"(e.g. {list(dup.unique()[:3])})",
            remedy="give one row per cell (sum the rows of a barcode, or drop the duplicates)",
        )
    bad = [str(c) for c in counts.columns if not pd.api.types.is_numeric_dtype(counts[c])]
    if bad:
        raise InvalidDataError(
            f"{key}: column(s) {bad[:5]} are not numbers; a counts table has one numeric "
            "column per feature",
            remedy="keep the barcodes as the first column (the index) and counts elsewhere",
        )
    found = adata.obs_names.isin(counts.index)
    rate = float(found.mean()) if adata.n_obs else 0.0
    if rate == 0.0 or (match == "exact" and rate < 1.0):
        raise InvalidDataError(
            f"{key}: only {found.sum():,} of {adata.n_obs:,} cells ({rate:.1%}) have a row; "
            f"cells look like {list(adata.obs_names[:2])}, rows like {list(counts.index[:2])}",
            remedy="use the counts of the same cells (same barcodes, same suffixes like '-1')",
        )
    aligned = counts.reindex(adata.obs_names, fill_value=0)
    aligned.columns = aligned.columns.astype(str)
    adata.obsm[key] = aligned
    return rate
