"""Immune receptor (V(D)J) contigs read with scirpy and attached to the expression cells by barcode.

Cell Ranger ``vdj`` writes one row per assembled contig (``filtered_contig_annotations.csv``,
``all_contig_annotations.csv`` or ``.json``); other tools write AIRR rearrangement TSVs.
scirpy's readers turn either into an AnnData with one awkward-array record list per cell in
``obsm['airr']`` (scirpy's AnnData mode). :func:`attach_vdj` puts those lists beside the
gene counts of the same cells, so every later step (chain QC, clonotypes, expansion)
works on one object, and refuses data whose barcodes do not match, saying why.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scagent.errors import (
    CorruptInputError,
    InputNotFoundError,
    InvalidDataError,
    MissingDependencyError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "AIRR_KEY",
    "TENX_CONTIG_COLUMNS",
    "attach_vdj",
    "read_vdj",
    "receptor_cells",
]

#: ``obsm`` key of the receptor chains (scirpy's default ``airr_key``).
AIRR_KEY = "airr"
#: Columns scirpy's 10x CSV reader needs in a contig annotation table.
TENX_CONTIG_COLUMNS: tuple[str, ...] = (
    "barcode", "is_cell", "contig_id", "high_confidence", "chain", "v_gene", "d_gene",
    "j_gene", "c_gene", "productive", "cdr3", "cdr3_nt", "reads", "umis",
)  # fmt: skip
#: Columns an AIRR rearrangement TSV needs for cell-level analysis.
_AIRR_REQUIRED = ("cell_id",)
_AIRR_JUNCTION = ("junction", "junction_aa")
#: File names looked for, in order, when a Cell Ranger output folder is given.
_FOLDER_FILES = (
    "filtered_contig_annotations.csv",
    "all_contig_annotations.json",
    "all_contig_annotations.csv",
    "airr_rearrangement.tsv",
)
#: Below this share of matched V(D)J barcodes the match is accepted with a warning.
_WARN_MATCH = 0.5
_SUFFIX = re.compile(r"-\d+$")
#: Keys scirpy derives from the chains (index_chains, chain_qc); stale once they change.
_DERIVED_OBSM = ("chain_indices",)
_DERIVED_UNS = ("chain_indices",)
_DERIVED_OBS = ("receptor_type", "receptor_subtype", "chain_pairing")
#: scagent's repertoire tools, whose outputs all derive from the chains.
_REPERTOIRE_TOOLS = ("airr_qc", "clonotypes", "clonal_expansion", "repertoire_overlap")


def _scirpy() -> Any:
    try:
        import scirpy
    except ImportError as exc:  # pragma: no cover - scirpy is part of the repertoire extra
        raise MissingDependencyError(
            "reading V(D)J data needs scirpy", remedy="pip install 'scagent[repertoire]'"
        ) from exc
    return scirpy


def _resolve(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"V(D)J file not found: {p}")
    if p.is_dir():
        for name in _FOLDER_FILES:
            if (p / name).is_file():
                return p / name
        raise InputNotFoundError(
            f"no contig file in {p} (looked for {', '.join(_FOLDER_FILES)})",
            remedy="pass the Cell Ranger vdj 'outs' folder or the contig file itself",
        )
    if p.stat().st_size == 0:
        raise CorruptInputError(f"V(D)J file {p} is empty")
    return p


def _kind(p: Path) -> str:
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last == ".json":
        return "10x_json"
    if last == ".csv":
        return "10x_csv"
    if last in (".tsv", ".txt"):
        return "airr_tsv"
    raise UnsupportedFormatError(
        f"unknown V(D)J file type '{p.name}'",
        remedy="give a 10x filtered_contig_annotations.csv / all_contig_annotations.json, "
        "or an AIRR rearrangement .tsv",
    )


def _check_columns(p: Path, kind: str) -> None:
    """Read only the header and name every missing column, before scirpy fails on a KeyError."""
    try:
        header = pd.read_csv(p, nrows=0, sep="," if kind == "10x_csv" else "\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise CorruptInputError(f"cannot parse V(D)J file {p}: {exc}") from exc
    cols = set(header.columns)
    if kind == "10x_csv":
        missing = [c for c in TENX_CONTIG_COLUMNS if c not in cols]
        if missing:
            raise InvalidDataError(
                f"{p.name} is not a 10x contig annotation table: missing column(s) "
                f"{', '.join(missing)} (found: {', '.join(map(str, header.columns[:12]))})",
                remedy="give Cell Ranger's filtered_contig_annotations.csv unchanged",
            )
    else:
        missing = [c for c in _AIRR_REQUIRED if c not in cols]
        if not any(c in cols for c in _AIRR_JUNCTION):
            missing.append(" or ".join(_AIRR_JUNCTION))
        if missing:
            raise InvalidDataError(
                f"{p.name} is not an AIRR rearrangement table with cells: missing "
                f"{', '.join(missing)}",
                remedy="export the AIRR rearrangement TSV with cell_id and junction columns",
            )


def _read_one(p: Path, filtered: bool) -> AnnData:
    ir = _scirpy()
    kind = _kind(p)
    if kind != "10x_json":
        _check_columns(p, kind)
    try:
        if kind == "airr_tsv":
            vdj = ir.io.read_airr(p)
        else:
            vdj = ir.io.read_10x_vdj(p, filtered=filtered)
    except (InvalidDataError, CorruptInputError):
        raise
    except Exception as exc:  # any parser failure means the file is unusable
        raise CorruptInputError(f"cannot read V(D)J file {p}: {type(exc).__name__}: {exc}") from exc
    return vdj


def read_vdj(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *, filtered: bool = True
) -> AnnData:
    """Read immune receptor contigs into an AnnData with the chains in ``obsm['airr']``.

    Parameters
    ----------
    path
        A 10x ``filtered_contig_annotations.csv`` / ``all_contig_annotations.csv`` /
        ``all_contig_annotations.json``, an AIRR rearrangement ``.tsv``, a Cell Ranger
        ``outs`` folder holding one of them, or several of these (e.g. the TCR and the BCR
        library of the same cells), whose chains are merged per cell with
        :func:`scirpy.pp.merge_airr`.
    filtered
        For ``all_contig_annotations``: keep only contigs that are in a cell and of high
        confidence (Cell Ranger's filter).

    Returns
    -------
    AnnData
        One row per barcode with chains, no genes; ``obsm['airr']`` (awkward array of chain
        records in the AIRR schema), ``uns['vdj_source']`` (paths and formats).

    Raises
    ------
    InputNotFoundError
        A path does not exist.
    UnsupportedFormatError
        The file type is not one of the above.
    InvalidDataError
        Required columns are missing, or no cell has a chain.
    CorruptInputError
        The file cannot be parsed.
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths:
        raise InputNotFoundError("no V(D)J file given")
    resolved = [_resolve(p) for p in paths]
    parts = [_read_one(p, filtered) for p in resolved]
    vdj = parts[0]
    if len(parts) > 1:
        ir = _scirpy()
        for other in parts[1:]:
            vdj = ir.pp.merge_airr(vdj, other)
    if vdj.n_obs == 0:
        raise InvalidDataError(
            f"no cell with a receptor chain in {', '.join(p.name for p in resolved)}",
            remedy="check the file holds contigs with is_cell and high_confidence true",
        )
    vdj.uns["vdj_source"] = {
        "paths": [str(p) for p in resolved],
        "formats": [_kind(p) for p in resolved],
    }
    return vdj


def _reindex_airr(arr: Any, index: np.ndarray) -> Any:
    """Rows of an awkward list array picked by ``index``; -1 gives an empty list.

    Written on the list offsets because scirpy's merge_airr joins two receptor tables and
    drops X; here the chains must follow the expression cells, which awkward has no
    one-call reindex for.
    """
    import awkward as ak

    layout = ak.to_layout(arr)
    starts = np.asarray(layout.starts, dtype=np.int64)
    stops = np.asarray(layout.stops, dtype=np.int64)
    safe = np.maximum(index, 0)
    hit = index >= 0
    new_starts = np.where(hit, starts[safe] if len(starts) else 0, 0)
    new_stops = np.where(hit, stops[safe] if len(stops) else 0, 0)
    picked = ak.contents.ListArray(
        ak.index.Index64(new_starts),
        ak.index.Index64(new_stops),
        layout.content,
        parameters=layout.parameters,
    )
    return ak.to_packed(ak.Array(picked))


def _barcode_hint(cells: pd.Index, vdj_cells: pd.Index) -> str:
    stripped = cells.str.replace(_SUFFIX, "", regex=True)
    vdj_stripped = vdj_cells.str.replace(_SUFFIX, "", regex=True)
    if stripped.isin(vdj_stripped).mean() > 0.5:
        return "the barcodes agree once the '-N' suffix is removed: add or strip it on one side"
    return "use the V(D)J library of the same cells (same sample, same barcode suffixes like '-1')"


def _drop_derived(adata: AnnData) -> list[str]:
    """Remove what was computed from the previous chains; returns the slot paths removed.

    Chain indices point into the old chain lists (scirpy would read wrong chains or fail),
    and the QC columns, clonotypes and expansion describe the old receptors. Removed: the
    keys scirpy's ``index_chains``/``chain_qc`` write, every key scagent's repertoire
    tools wrote, and clonotype columns scirpy wrote directly (a ``uns`` record with
    ``cell_indices``, with its ``obs`` id and ``_size`` columns) and ``uns['ir_dist_*']``.
    """
    from scagent.tools._data import OWNED_KEYS

    targets: list[tuple[str, str]] = [("obsm", k) for k in _DERIVED_OBSM]
    targets += [("uns", k) for k in _DERIVED_UNS] + [("obs", k) for k in _DERIVED_OBS]
    ledger = adata.uns.get(OWNED_KEYS)
    if isinstance(ledger, dict):
        for slot, keys in ledger.items():
            if isinstance(keys, dict):
                targets += [(slot, k) for k, tool in keys.items() if tool in _REPERTOIRE_TOOLS]
    for key, value in list(adata.uns.items()):
        if str(key).startswith("ir_dist_"):
            targets.append(("uns", key))
        elif isinstance(value, dict) and "cell_indices" in value and key in adata.obs:
            targets += [("uns", key), ("obs", key), ("obs", f"{key}_size")]
    removed = []
    for slot, key in dict.fromkeys(targets):
        container = getattr(adata, slot, None)
        if container is None or key not in container:
            continue
        if slot == "obs":
            del adata.obs[key]
        else:
            del container[key]
        removed.append(f"{slot}/{key}")
    if removed and isinstance(ledger, dict):
        gone = {tuple(r.split("/", 1)) for r in removed}
        adata.uns[OWNED_KEYS] = {
            slot: {k: v for k, v in keys.items() if (slot, k) not in gone}
            for slot, keys in ledger.items()
            if isinstance(keys, dict)
        }
    return removed


def attach_vdj(
    adata: AnnData, vdj: AnnData, *, min_match: float = 0.1, overwrite: bool = False
) -> float:
    """Attach the receptor chains of ``vdj`` to the expression cells of ``adata`` by barcode.

    Parameters
    ----------
    adata
        Expression data; gets ``obsm['airr']`` (an empty chain list for cells without a
        receptor, as scirpy expects) and ``uns['vdj']``. Changed in place.
    vdj
        Output of :func:`read_vdj` (or any AnnData with scirpy's ``obsm['airr']``).
    min_match
        Smallest accepted share of V(D)J barcodes found among the expression cells; below
        it the two do not describe the same cells. A share below 0.5 is accepted with a
        warning (Cell Ranger calls some V(D)J cells that the expression library does not).
    overwrite
        Replace an existing ``obsm['airr']``. Everything derived from the old chains
        goes with it (with a warning naming it): ``obsm``/``uns['chain_indices']``, the
        chain QC columns, clonotypes, expansion and overlap results.

    Returns
    -------
    float
        Share of the V(D)J barcodes found among ``adata``'s cells (the match rate).

    Raises
    ------
    InvalidDataError
        ``vdj`` holds no chains, ``obsm['airr']`` already exists (without ``overwrite``),
        or the match rate is below ``min_match``; the message gives the rate and example
        barcodes from both sides.
    """
    if AIRR_KEY not in vdj.obsm or vdj.n_obs == 0:
        raise InvalidDataError(
            "the V(D)J data holds no receptor chains (obsm['airr'] empty or absent)",
            remedy="read the contig file with scagent.data.vdj.read_vdj",
        )
    if AIRR_KEY in adata.obsm and not overwrite:
        raise InvalidDataError(
            "obsm['airr'] already holds receptor data",
            remedy="pass overwrite=True to replace it",
        )
    vdj_cells = pd.Index(vdj.obs_names.astype(str))
    cells = pd.Index(adata.obs_names.astype(str))
    index = vdj_cells.get_indexer(cells)
    n_matched = int((index >= 0).sum())
    rate = n_matched / len(vdj_cells)
    if rate < min_match or n_matched == 0:
        raise InvalidDataError(
            f"V(D)J barcodes do not match the expression cells: {n_matched:,} of "
            f"{len(vdj_cells):,} V(D)J barcodes ({rate:.1%}) are among the {len(cells):,} "
            f"cells (minimum {min_match:.0%}); cells look like {list(cells[:3])}, V(D)J "
            f"barcodes like {list(vdj_cells[:3])}",
            remedy=_barcode_hint(cells, vdj_cells),
        )
    if rate < _WARN_MATCH:
        warnings.warn(
            f"only {rate:.1%} of the V(D)J barcodes are among the expression cells; check "
            "that both libraries come from the same sample",
            UserWarning,
            stacklevel=2,
        )
    if AIRR_KEY in adata.obsm:
        removed = _drop_derived(adata)
        if removed:
            warnings.warn(
                "replaced the receptor data; removed what was computed from the old chains: "
                + ", ".join(removed),
                UserWarning,
                stacklevel=2,
            )
    adata.obsm[AIRR_KEY] = _reindex_airr(vdj.obsm[AIRR_KEY], index)
    # scirpy reads its schema version from uns to tell its current layout from old ones.
    if "scirpy_version" in vdj.uns:
        adata.uns["scirpy_version"] = vdj.uns["scirpy_version"]
    adata.uns["vdj"] = {
        "n_vdj_cells": len(vdj_cells),
        "n_matched": n_matched,
        "match_rate": float(rate),
        "share_of_cells_with_chains": float(n_matched / max(len(cells), 1)),
        **dict(vdj.uns.get("vdj_source", {})),
    }
    return float(rate)


def receptor_cells(adata: AnnData, key: str = AIRR_KEY) -> np.ndarray:
    """Boolean mask of the cells with at least one chain in ``obsm[key]``."""
    import awkward as ak

    return np.asarray(ak.num(adata.obsm[key], axis=1) > 0)
