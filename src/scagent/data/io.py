"""Reading single-cell data from every common format into AnnData, checked once at the boundary.

One entry point, :func:`read`, recognises the format (:func:`detect_format`), hands the
parsing to the scverse reader that owns it (anndata, scanpy, pandas), parses each file
exactly once, records where the data came from in ``uns['scagent']['source']`` and runs
cheap checks (empty, NaN/Inf, duplicated names, negative counts) that never densify X.
:func:`read_many` reads several samples and concatenates them; :func:`write_h5ad` is the
one atomic writer every command uses.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagent._atomic import atomic_path
from scagent.errors import (
    CorruptInputError,
    InputNotFoundError,
    InvalidDataError,
    InvalidParameterError,
    ScagentError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["FORMATS", "Format", "detect_format", "read", "read_many", "write_h5ad"]

Format = Literal["h5ad", "zarr", "loom", "10x_mtx", "10x_h5", "csv", "tsv"]
#: Every format :func:`read` understands, as :func:`detect_format` names them.
FORMATS: tuple[str, ...] = get_args(Format)

# Last suffix (after stripping ``.gz``) -> format.
_SUFFIX_FORMAT: dict[str, str] = {
    ".h5ad": "h5ad",
    ".zarr": "zarr",
    ".loom": "loom",
    ".h5": "10x_h5",
    ".hdf5": "10x_h5",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".mtx": "10x_mtx",
}
# Formats whose files may be gzipped as a whole (the others compress internally).
_GZIP_OK = {"csv", "tsv", "10x_mtx"}
_SUPPORTED_TEXT = (
    ".h5ad, .zarr (folder), .loom, .h5 (10x HDF5), a 10x matrix folder "
    "(matrix.mtx[.gz] + barcodes + features/genes), .csv / .tsv / .txt (optionally .gz)"
)

# Options each format passes on to its reader; anything else is a typo we report
# rather than a TypeError deep inside a library.
_READER_OPTS: dict[str, set[str]] = {
    "h5ad": set(),
    "zarr": set(),
    "loom": {"X_name", "obs_names", "var_names", "sparse", "cleanup", "dtype"},
    "10x_mtx": {"gex_only", "prefix"},
    "10x_h5": {"gex_only"},
    "csv": {"sep"},
    "tsv": {"sep"},
}

#: Files up to this size are hashed in full; larger ones by head + tail + size.
FULL_HASH_MAX_BYTES = 256 * 2**20
_HASH_EDGE_BYTES = 2**20

# Dense blocks are checked this many elements at a time, so that a check never
# allocates more than a few hundred MiB beside X.
_CHECK_BLOCK_ELEMENTS = 2**24


# --------------------------------------------------------------------------- detection


def _strip_gz(path: Path) -> tuple[str, bool]:
    """Return the meaningful suffix of ``path`` (lower case) and whether it is gzipped."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), gz


def _tenx_matrix_files(folder: Path) -> list[Path]:
    """Files in ``folder`` that look like a 10x matrix, barcode or feature list."""
    pattern = re.compile(r"(matrix\.mtx|barcodes\.tsv|genes\.tsv|features\.tsv)(\.gz)?$")
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and pattern.search(p.name))
    except OSError:
        return []


def _find_10x_folder(path: Path) -> Path | None:
    """The folder holding the 10x files: ``path`` itself or its only 10x sub-folder."""
    if _tenx_matrix_files(path):
        return path
    # Cell Ranger v2 nests the matrix one level down (filtered_gene_bc_matrices/hg19/).
    candidates = [d for d in sorted(path.iterdir()) if d.is_dir() and _tenx_matrix_files(d)]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        names = ", ".join(str(c) for c in candidates)
        raise InvalidParameterError(
            f"folder {path} holds {len(candidates)} 10x matrix folders ({names})",
            remedy="pass the one you mean, e.g. its filtered_feature_bc_matrix folder",
        )
    return None


def _is_zarr_folder(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or any(
        (path / marker).exists() for marker in (".zgroup", ".zattrs", "zarr.json")
    )


def detect_format(path: str | os.PathLike[str]) -> Format:
    """Name the format of a single-cell data file or folder, without parsing it.

    Parameters
    ----------
    path
        A file (``.h5ad``, ``.loom``, ``.h5``, ``.csv``/``.tsv``/``.txt``, optionally
        ``.gz`` for text) or a folder (``.zarr`` store, 10x matrix folder, or a folder
        that contains exactly one 10x matrix folder).

    Returns
    -------
    One of ``'h5ad'``, ``'zarr'``, ``'loom'``, ``'10x_mtx'``, ``'10x_h5'``, ``'csv'``,
    ``'tsv'`` (``.txt`` counts as ``'tsv'``).

    Raises
    ------
    InputNotFoundError
        The path does not exist.
    UnsupportedFormatError
        The extension (or folder layout) is not one scagent reads.
    InvalidParameterError
        A folder holds several 10x matrix folders, so which one is meant is ambiguous.
    """
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"input not found: {p}")
    if p.is_dir():
        if _is_zarr_folder(p):
            return "zarr"
        if _find_10x_folder(p) is not None:
            return "10x_mtx"
        raise UnsupportedFormatError(
            f"folder {p} is neither a .zarr store nor a 10x matrix folder; "
            f"supported: {_SUPPORTED_TEXT}"
        )
    suffix, gz = _strip_gz(p)
    fmt = _SUFFIX_FORMAT.get(suffix)
    if fmt is None or (gz and fmt not in _GZIP_OK):
        ext = (suffix + ".gz" if gz else suffix) or "(none)"
        raise UnsupportedFormatError(
            f"unsupported file extension {ext!r} for {p.name}; supported: {_SUPPORTED_TEXT}"
        )
    if fmt == "10x_mtx" and not re.search(r"matrix\.mtx(\.gz)?$", p.name.lower()):
        raise UnsupportedFormatError(
            f"{p.name} is a bare Matrix Market file, not a 10x matrix.mtx; "
            f"supported: {_SUPPORTED_TEXT}",
            remedy="put it in a folder with barcodes.tsv and features.tsv and pass the folder",
        )
    return fmt  # type: ignore[return-value]


# --------------------------------------------------------------------------- provenance


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat(timespec="seconds")


def _hash_file(path: Path, h: Any, size: int) -> str:
    """Feed ``path`` into ``h``: all of it if small, else size + first and last MiB."""
    with open(path, "rb") as fh:
        if size <= FULL_HASH_MAX_BYTES:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
            return "sha256"
        # Hashing a multi-GB file in full would cost as much as reading it again; the
        # size plus both ends catch truncation, re-exports and most edits.
        h.update(str(size).encode())
        h.update(fh.read(_HASH_EDGE_BYTES))
        fh.seek(size - _HASH_EDGE_BYTES)
        h.update(fh.read(_HASH_EDGE_BYTES))
        return "sha256-size-head-tail-1MiB"


def _source_record(path: Path, fmt: str) -> dict[str, Any]:
    """Where the data came from: path, format, size, mtime, a content hash, when read.

    A file up to :data:`FULL_HASH_MAX_BYTES` is hashed in full (``hash_method='sha256'``);
    a larger one by sha256 over its size, first MiB and last MiB. A folder (zarr, 10x)
    is hashed over its files' relative paths and contents when small in total, else
    over their relative paths, sizes and modification times (``'sha256-size-mtime-tree'``),
    because a big zarr store has thousands of chunk files.
    """
    h = hashlib.sha256()
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file())
        stats = [f.stat() for f in files]
        size = sum(s.st_size for s in stats)
        mtime = max((s.st_mtime for s in stats), default=path.stat().st_mtime)
        small = size <= FULL_HASH_MAX_BYTES
        for f, st in zip(files, stats, strict=True):
            h.update(f.relative_to(path).as_posix().encode() + b"\0")
            if small:
                _hash_file(f, h, st.st_size)
            else:
                h.update(f"{st.st_size}:{st.st_mtime_ns}\0".encode())
        method = "sha256-tree" if small else "sha256-size-mtime-tree"
    else:
        st = path.stat()
        size, mtime = st.st_size, st.st_mtime
        method = _hash_file(path, h, size)
    return {
        "path": str(path.resolve()),
        "format": fmt,
        "size": int(size),
        "mtime": _iso(mtime),
        "sha256": h.hexdigest(),
        "hash_method": method,
        "read_at": _dt.datetime.now(tz=_dt.UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- readers


def _check_opts(fmt: str, opts: dict[str, Any]) -> None:
    unknown = sorted(set(opts) - _READER_OPTS[fmt])
    if unknown:
        allowed = ", ".join(sorted(_READER_OPTS[fmt])) or "none"
        raise InvalidParameterError(
            f"unknown option(s) {unknown} for format {fmt!r}; allowed: {allowed}"
        )


def _read_h5ad(path: Path, backed: bool, opts: dict[str, Any]) -> AnnData:
    import anndata

    return anndata.read_h5ad(path, backed="r" if backed else None)


def _read_zarr(path: Path, opts: dict[str, Any]) -> AnnData:
    import anndata

    return anndata.read_zarr(path)


# Loom has no fixed attribute for names: velocyto/loompy use CellID/Gene, anndata's own
# writer uses obs_names/var_names. anndata.io.read_loom only knows one key per axis.
_LOOM_OBS_KEYS = ("CellID", "obs_names", "cell_names", "cell_id", "barcode", "barcodes")
_LOOM_VAR_KEYS = ("Gene", "var_names", "gene_names", "gene_symbols", "gene", "Accession")


def _read_loom(path: Path, opts: dict[str, Any]) -> AnnData:
    from anndata import ImplicitModificationWarning
    from anndata.io import read_loom

    with warnings.catch_warnings():
        # Names are set below from whichever attribute holds them.
        warnings.filterwarnings("ignore", category=ImplicitModificationWarning)
        adata = read_loom(path, **opts)
    for frame, keys, explicit in (
        (adata.obs, _LOOM_OBS_KEYS, "obs_names" in opts),
        (adata.var, _LOOM_VAR_KEYS, "var_names" in opts),
    ):
        key = next((k for k in keys if k in frame.columns), None)
        if explicit or key is None:
            continue
        frame.index = pd.Index(frame[key].astype(str).to_numpy(), name=None)
        del frame[key]
    return adata


def _tenx_layout(folder: Path, prefix: str | None = None) -> dict[str, Any]:
    """Locate matrix, barcodes and features/genes files of a 10x folder.

    File names may carry a prefix (GEO's ``GSM123_matrix.mtx.gz``); it is found from the
    one matrix file, or given to pick one sample of several in the folder.
    """
    matrices = [p for p in _tenx_matrix_files(folder) if re.search(r"matrix\.mtx(\.gz)?$", p.name)]
    if prefix is not None:
        matrices = [
            p for p in matrices if p.name in (f"{prefix}matrix.mtx", f"{prefix}matrix.mtx.gz")
        ]
    if len(matrices) > 1:
        raise InvalidParameterError(
            f"10x folder {folder} has {len(matrices)} matrix files "
            f"({', '.join(m.name for m in matrices)})",
            remedy="pass prefix= to pick one (the part before matrix.mtx)",
        )

    def find(stem: str, prefix: str) -> Path | None:
        for name in (f"{prefix}{stem}", f"{prefix}{stem}.gz"):
            if (folder / name).is_file():
                return folder / name
        return None

    if prefix is None and matrices:
        prefix = re.sub(r"matrix\.mtx(\.gz)?$", "", matrices[0].name)
    elif prefix is None:
        other = _tenx_matrix_files(folder)
        pattern = r"(barcodes|genes|features)\.tsv(\.gz)?$"
        prefix = re.sub(pattern, "", other[0].name) if other else ""
    matrix = matrices[0] if matrices else None
    barcodes = find("barcodes.tsv", prefix)
    features = find("features.tsv", prefix)
    genes = find("genes.tsv", prefix)
    missing = []
    if matrix is None:
        missing.append(f"{prefix}matrix.mtx[.gz]")
    if barcodes is None:
        missing.append(f"{prefix}barcodes.tsv[.gz]")
    if features is None and genes is None:
        missing.append(f"{prefix}features.tsv[.gz] (or genes.tsv)")
    if missing:
        raise InputNotFoundError(
            f"10x matrix folder {folder} lacks {', '.join(missing)}",
            remedy="copy the complete Cell Ranger matrix folder (matrix, barcodes, features)",
        )
    legacy = features is None
    return {
        "matrix": matrix,
        "barcodes": barcodes,
        "features": genes if legacy else features,
        "legacy": legacy,
        "prefix": prefix,
    }


def _read_10x_mtx(path: Path, var_names: str, opts: dict[str, Any]) -> AnnData:
    import scanpy as sc

    folder = path.parent if path.is_file() else _find_10x_folder(path)
    assert folder is not None  # detect_format said so
    layout = _tenx_layout(folder, opts.get("prefix"))
    gex_only = opts.get("gex_only", True)
    prefix = layout["prefix"]
    legacy = layout["legacy"]
    names = {k: layout[k].name[len(prefix) :] for k in ("matrix", "barcodes", "features")}
    # scanpy's reader insists on plain files for v2 and gzipped ones for v3.
    standard = (
        {"matrix.mtx", "barcodes.tsv", "genes.tsv"}
        if legacy
        else {"matrix.mtx.gz", "barcodes.tsv.gz", "features.tsv.gz"}
    )
    if set(names.values()) == standard:
        adata = sc.read_10x_mtx(
            folder, var_names=var_names, make_unique=False, gex_only=gex_only, prefix=prefix
        )
        if var_names == "gene_ids":
            adata.var["gene_ids"] = adata.var_names.to_numpy()
    else:
        adata = _read_10x_mtx_by_hand(layout, var_names, gex_only)
    if "feature_types" not in adata.var:
        # Cell Ranger v1/v2 only counted genes.
        adata.var["feature_types"] = "Gene Expression"
    # The Matrix Market file is genes x cells; after the transpose X is CSC.
    if sp.issparse(adata.X) and adata.X.format != "csr":
        adata.X = sp.csr_matrix(adata.X)
    return adata


def _read_10x_mtx_by_hand(layout: dict[str, Any], var_names: str, gex_only: bool) -> AnnData:
    """Read the layouts scanpy's reader refuses: v2 gzipped and v3 uncompressed.

    scanpy.read_10x_mtx derives every file name from one ``.gz``-or-not switch tied to
    the Cell Ranger version; these mixed layouts are common after users (un)zip files.
    """
    import scipy.io
    from anndata import AnnData

    X = sp.csr_matrix(scipy.io.mmread(layout["matrix"]).T, dtype=np.float32)
    features = pd.read_csv(layout["features"], sep="\t", header=None, dtype=str)
    barcodes = pd.read_csv(layout["barcodes"], sep="\t", header=None, dtype=str)
    ids = features[0].to_numpy()
    symbols = features[1].to_numpy() if features.shape[1] > 1 else ids
    var = pd.DataFrame({"gene_ids": ids})
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    if var_names == "gene_ids":
        var["gene_symbols"] = symbols
        var.index = pd.Index(ids)
    else:
        var.index = pd.Index(symbols)
    obs = pd.DataFrame(index=pd.Index(barcodes[0].to_numpy()))
    if X.shape != (len(obs), len(var)):
        raise CorruptInputError(
            f"10x matrix {layout['matrix'].name} is {X.shape[1]} x {X.shape[0]} but there are "
            f"{len(var)} features and {len(obs)} barcodes"
        )
    adata = AnnData(X, obs=obs, var=var)
    if gex_only and "feature_types" in adata.var:
        adata = adata[:, (adata.var["feature_types"] == "Gene Expression").to_numpy()].copy()
    return adata


def _peek_h5(path: Path) -> tuple[Literal["v3", "legacy", "anndata"], list[str]]:
    """Layout of an .h5 (10x v3, 10x legacy, or AnnData) and its genomes, from metadata."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("encoding-type") == "anndata" or {"X", "obs", "var"} <= set(f):
                return "anndata", []
            if "matrix" in f:
                feats = f["matrix"].get("features")
                if feats is None:
                    raise CorruptInputError(f"10x HDF5 {path.name} has no matrix/features group")
                genomes: list[str] = []
                if "genome" in feats:
                    raw = feats["genome"][()]
                    genomes = list(
                        dict.fromkeys(g.decode() if isinstance(g, bytes) else str(g) for g in raw)
                    )
                return "v3", genomes
            genomes = [
                k
                for k in f
                if isinstance(f[k], h5py.Group)
                and {"data", "barcodes", "genes"} <= set(f[k].keys())
            ]
            if not genomes:
                raise CorruptInputError(
                    f"{path.name} is HDF5 but not a 10x matrix (top-level keys: {sorted(f)[:8]})",
                    remedy="give a Cell Ranger .h5 (matrix/ group, or one group per genome)",
                )
            return "legacy", genomes
    except ScagentError:
        raise
    except OSError as e:
        raise CorruptInputError(f"cannot open {path.name} as HDF5: {e}") from e


def _read_10x_h5(
    path: Path, var_names: str, genome: str | None, genomes: list[str], opts: dict[str, Any]
) -> AnnData:
    import scanpy as sc

    if genome is None and len(genomes) > 1:
        raise InvalidParameterError(
            f"{path.name} holds {len(genomes)} genomes: {', '.join(genomes)}",
            remedy=f"pass genome= one of {genomes}",
        )
    if genome is not None and genomes and genome not in genomes:
        raise InvalidParameterError(
            f"genome {genome!r} is not in {path.name}; it holds: {', '.join(genomes)}"
        )
    adata = sc.read_10x_h5(path, genome=genome, gex_only=opts.get("gex_only", True))
    if "feature_types" not in adata.var:
        adata.var["feature_types"] = "Gene Expression"
    if var_names == "gene_ids":
        adata.var["gene_symbols"] = adata.var_names.to_numpy()
        adata.var_names = pd.Index(adata.var["gene_ids"].astype(str).to_numpy())
    return adata


# ---- delimited text

_ENSEMBL = re.compile(r"^ENS[A-Z]*[GT]\d{6,}(\.\d+)?$")
_GENE_GENERIC = re.compile(r"^gene[\W_]*\d+$", re.IGNORECASE)
_BARCODE = re.compile(r"[ACGTN]{10,}")
_CELL_GENERIC = re.compile(r"cell[\W_]*\d+|^(barcode|bc|obs)[\W_]*\d+$", re.IGNORECASE)
_SYMBOL = re.compile(r"^[A-Za-z][A-Za-z0-9]*([\-.][A-Za-z0-9]+)*$")


def _gene_likeness(names: Iterable[Any], limit: int = 2000) -> float:
    """Mean score in [-1, 1]: +1 Ensembl id / ``gene_N``, +0.5 symbol-like, -1 barcode / ``cell_N``."""
    scores = []
    for i, name in enumerate(names):
        if i >= limit:
            break
        s = str(name)
        if _ENSEMBL.match(s) or _GENE_GENERIC.match(s):
            scores.append(1.0)
        elif _BARCODE.search(s) or _CELL_GENERIC.search(s):
            scores.append(-1.0)
        elif len(s) <= 20 and _SYMBOL.match(s):
            scores.append(0.5)
        else:
            scores.append(0.0)
    return float(np.mean(scores)) if scores else 0.0


def _guess_rows_are_genes(rows: pd.Index, cols: pd.Index) -> tuple[bool, str]:
    """Guess whether a table is genes x cells; return the guess and the evidence."""
    s_rows, s_cols = _gene_likeness(rows), _gene_likeness(cols)
    if abs(s_rows - s_cols) >= 0.25:
        why = f"row names score {s_rows:+.2f} and column names {s_cols:+.2f} on gene-likeness"
        return s_rows > s_cols, why
    # Names do not tell. Small single-cell tables usually have more genes than cells,
    # so the longer axis is weak evidence for genes.
    if len(rows) != len(cols):
        return len(rows) > len(cols), (
            f"names did not tell; weak evidence: {len(rows)} rows vs {len(cols)} columns, "
            "the longer axis taken as genes"
        )
    return False, "names and shape did not tell; cells x genes (the AnnData layout) assumed"


def _sniff_delimiter(path: Path) -> str:
    """Delimiter of a .txt table from its first line (a few bytes, not a second parse)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt") as fh:  # type: ignore[operator]
        first = fh.readline()
    if "\t" in first:
        return "\t"
    if "," in first:
        return ","
    return r"\s+"


def _exact_in_float32(values: np.ndarray) -> bool:
    if values.size == 0 or values.dtype.kind not in "iuf":
        return values.dtype.kind in "iu"
    if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
        return False
    return bool(np.abs(values).max() <= 2**24)


def _read_delimited(path: Path, fmt: str, transpose: bool | None, opts: dict[str, Any]) -> AnnData:
    """Read a dense CSV/TSV count table with names in the first row and column."""
    from anndata import AnnData

    sep = opts.get("sep")
    if sep is None:
        suffix, _ = _strip_gz(path)
        sep = "," if fmt == "csv" else ("\t" if suffix == ".tsv" else _sniff_delimiter(path))
    try:
        df = pd.read_csv(path, sep=sep, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError) as e:
        raise CorruptInputError(f"cannot parse {path.name} as a {fmt.upper()} table: {e}") from e
    if df.shape[0] == 0:  # a header alone: empty, not text (validation says so)
        df = df.astype(np.float32)
    bad = [c for c, dt in df.dtypes.items() if not pd.api.types.is_numeric_dtype(dt)]
    if bad:
        example = df[bad[0]].dropna()
        example_value = repr(example.iloc[0]) if len(example) else "(empty)"
        raise CorruptInputError(
            f"{path.name} is not a numeric matrix: {len(bad)} of {df.shape[1]} columns hold "
            f"text (first: {bad[0]!r}, e.g. {example_value})",
            remedy="give a matrix with names in the first row and column only; "
            "put cell or gene annotations in a separate file",
        )
    if transpose is None:
        rows_are_genes, why = _guess_rows_are_genes(df.index, df.columns)
        layout = "genes x cells (transposed)" if rows_are_genes else "cells x genes"
        warnings.warn(
            f"{path.name}: read as {layout} because {why}; pass transpose="
            f"{not rows_are_genes} if that is wrong",
            UserWarning,
            stacklevel=3,
        )
    else:
        rows_are_genes = transpose
    values = df.to_numpy()
    if values.dtype != np.float32 and _exact_in_float32(values):
        # Whole numbers up to 2**24 are exact in float32, the dtype every other reader
        # gives; anything else (normalised values, huge numbers) keeps its dtype.
        values = values.astype(np.float32)
    obs_names = df.columns if rows_are_genes else df.index
    var_names = df.index if rows_are_genes else df.columns
    if rows_are_genes:
        values = values.T
    if values.size and np.count_nonzero(values) <= values.size // 2:
        values = sp.csr_matrix(values)
    return AnnData(
        values,
        obs=pd.DataFrame(index=pd.Index(obs_names.astype(str), name=None)),
        var=pd.DataFrame(index=pd.Index(var_names.astype(str), name=None)),
    )


# --------------------------------------------------------------------------- validation


def _blocks(X: Any) -> Iterable[np.ndarray]:
    """Yield X's stored values in bounded blocks, never the whole dense matrix at once."""
    from anndata.abc import CSCDataset, CSRDataset

    if sp.issparse(X):
        yield X.data
        return
    if isinstance(X, CSRDataset | CSCDataset):
        data = X.group["data"]
        for start in range(0, data.shape[0], _CHECK_BLOCK_ELEMENTS):
            yield np.asarray(data[start : start + _CHECK_BLOCK_ELEMENTS])
        return
    n_rows = X.shape[0]
    n_cols = max(int(np.prod(X.shape[1:])), 1)
    step = max(1, _CHECK_BLOCK_ELEMENTS // n_cols)
    for start in range(0, n_rows, step):
        yield np.asarray(X[start : start + step])


def _count_nonfinite(X: Any) -> int:
    if X is None or np.dtype(X.dtype).kind not in "fc":
        return 0
    return sum(int(block.size - np.count_nonzero(np.isfinite(block))) for block in _blocks(X))


def _count_negative(X: Any) -> int:
    if X is None or np.dtype(X.dtype).kind in "ub":
        return 0
    return sum(int(np.count_nonzero(block < 0)) for block in _blocks(X))


def _is_counts_name(name: str) -> bool:
    """Whether a layer name says it holds counts (``counts``, ``raw_counts``, ``umi``...)."""
    tokens = {t for t in re.split(r"[^a-z0-9]+", name.lower()) if t}
    return bool(tokens & {"count", "counts", "rawcounts", "umi", "umis"})


def _deduplicate(adata: AnnData, label: str, make_unique: bool) -> None:
    """Warn about duplicated cell / gene names, then make them unique (never drop)."""
    for axis, index in (("cell", adata.obs_names), ("gene", adata.var_names)):
        if index.is_unique:
            continue
        dup = index.duplicated()
        examples = list(pd.unique(index[dup]))[:5]
        action = (
            "made unique by appending -1, -2, ..."
            if make_unique
            else "kept as they are (make_unique=False)"
        )
        warnings.warn(
            f"{label}: {int(dup.sum())} duplicated {axis} names (e.g. {examples}); {action}",
            UserWarning,
            stacklevel=3,
        )
        if make_unique:
            if axis == "cell":
                adata.obs_names_make_unique()
            else:
                adata.var_names_make_unique()


def _check_sparse_structure(X: Any, label: str) -> None:
    """Catch a corrupt CSR/CSC (bytes overwritten in an uncompressed file), which scipy
    accepts without looking and which would crash or mislead every later step."""
    if not sp.issparse(X) or X.format not in ("csr", "csc"):
        return
    n_major, n_minor = X.shape if X.format == "csr" else X.shape[::-1]
    indptr, indices = X.indptr, X.indices
    ok = (
        indptr.size == n_major + 1
        and indptr[0] == 0
        and indptr[-1] == indices.size == X.data.size
        and bool(np.all(np.diff(indptr) >= 0))
        and (indices.size == 0 or (indices.min() >= 0 and indices.max() < n_minor))
    )
    if not ok:
        raise CorruptInputError(
            f"{label}: the sparse X is structurally invalid (index pointers or column "
            "indices out of range)"
        )


def _validate(adata: AnnData, label: str) -> None:
    """Cheap checks that the data is usable; raises :class:`InvalidDataError` if not."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InvalidDataError(
            f"{label} holds {adata.n_obs} cells x {adata.n_vars} genes; nothing to analyse"
        )
    _check_sparse_structure(adata.X, label)
    bad = _count_nonfinite(adata.X)
    if bad:
        raise InvalidDataError(f"{label}: X holds {bad} NaN or Inf values")
    for name in adata.layers.keys():
        if _is_counts_name(name):
            neg = _count_negative(adata.layers[name])
            if neg:
                raise InvalidDataError(
                    f"{label}: layer {name!r} is named as counts but holds {neg} negative values"
                )


# --------------------------------------------------------------------------- public API


def _parse(
    p: Path,
    fmt: str,
    transpose: bool | None,
    var_names: str,
    genome: str | None,
    genomes: list[str],
    backed: bool,
    opts: dict[str, Any],
) -> AnnData:
    """Hand the file to the one reader of its format."""
    with warnings.catch_warnings():
        # anndata warns about duplicated names while it builds the object; read() says
        # it once, with counts and examples, in _deduplicate.
        warnings.filterwarnings("ignore", message=r".*names are not unique", category=UserWarning)
        if fmt == "h5ad":
            return _read_h5ad(p, backed, opts)
        if fmt == "zarr":
            return _read_zarr(p, opts)
        if fmt == "loom":
            return _read_loom(p, opts)
        if fmt == "10x_mtx":
            return _read_10x_mtx(p, var_names, opts)
        if fmt == "10x_h5":
            return _read_10x_h5(p, var_names, genome, genomes, opts)
        return _read_delimited(p, fmt, transpose, opts)


def read(
    path: str | os.PathLike[str],
    *,
    transpose: bool | None = None,
    var_names: Literal["gene_symbols", "gene_ids"] = "gene_symbols",
    genome: str | None = None,
    backed: bool = False,
    make_unique: bool = True,
    validate: bool = True,
    **opts: Any,
) -> AnnData:
    """Read single-cell data of any supported format into an AnnData, parsing it once.

    Parameters
    ----------
    path
        A ``.h5ad``, ``.zarr`` folder, ``.loom``, 10x ``.h5`` (Cell Ranger v2 or v3+),
        10x Matrix Market folder (v2 ``genes.tsv`` or v3 ``features.tsv.gz``, gzipped or
        not, or a folder containing exactly one such folder) or a dense ``.csv`` /
        ``.tsv`` / ``.txt`` table (optionally ``.gz``) with names in the first row and
        column. See :func:`detect_format`.
    transpose
        Delimited text only. ``True``: the file is genes (rows) x cells (columns);
        ``False``: cells x genes; ``None``: guess from the names (Ensembl ids and gene
        symbols vs barcodes and ``cell_N``), then from the shape (longer axis = genes),
        and warn which layout was chosen.
    var_names
        ``'gene_ids'`` indexes genes by id (10x ``gene_ids``; for other formats a
        ``var`` column ``gene_ids``/``gene_id``/``ensembl_id``); the symbols then go to
        ``var['gene_symbols']``.
    genome
        10x ``.h5`` with several genomes: which one to read (required there).
    backed
        ``.h5ad`` only: open X read-only on disk (``backed='r'``) instead of loading it.
    make_unique
        Make duplicated cell and gene names unique (``-1``, ``-2``...) after warning.
    validate
        Run the cheap checks: not empty, no NaN/Inf in X, no negative values in a
        layer named like counts. They never densify X and stream backed data.
    **opts
        Passed to the underlying reader: ``gex_only``, ``prefix`` (10x), ``sep``
        (text), ``X_name``/``obs_names``/``var_names``... (loom as ``anndata.io.read_loom``).

    Returns
    -------
    The AnnData, counts as stored in the file. 10x data has ``var['gene_ids']`` and
    ``var['feature_types']``. Writes ``uns['scagent']['source']``: ``path``, ``format``,
    ``size``, ``mtime``, ``sha256`` with its ``hash_method`` (files over
    :data:`FULL_HASH_MAX_BYTES` are hashed over size + first and last MiB), ``read_at``.

    Raises
    ------
    InputNotFoundError
        ``path`` (or a file a 10x folder needs) does not exist.
    UnsupportedFormatError
        Not a format scagent reads.
    CorruptInputError
        The file exists but cannot be parsed (truncated, corrupt, non-numeric table).
    InvalidDataError
        Empty, NaN/Inf in X, or negative values in a counts layer.
    InvalidParameterError
        An option does not apply to the format, or a multi-genome file without ``genome=``.
    """
    p = Path(path)
    fmt: str = detect_format(p)
    label = p.name
    genomes: list[str] = []
    if fmt == "10x_h5":
        layout, genomes = _peek_h5(p)
        if layout == "anndata":
            fmt = "h5ad"  # scanpy once wrote AnnData files as .h5
    if var_names not in ("gene_symbols", "gene_ids"):
        raise InvalidParameterError(
            f"var_names must be 'gene_symbols' or 'gene_ids', not {var_names!r}"
        )
    if transpose is not None and fmt not in ("csv", "tsv"):
        raise InvalidParameterError(f"transpose= applies to CSV/TSV tables, not {fmt} ({label})")
    if genome is not None and fmt != "10x_h5":
        raise InvalidParameterError(f"genome= applies to 10x .h5 files, not {fmt} ({label})")
    if backed and fmt != "h5ad":
        raise InvalidParameterError(
            f"backed=True needs an .h5ad file; {label} is {fmt}",
            remedy="read it into memory, or convert it once with write_h5ad and open that backed",
        )
    _check_opts(fmt, opts)
    if fmt in ("h5ad", "zarr") and not backed:  # refuse before loading what would not fit
        from scagent.data.memory import check_fits_in_memory

        check_fits_in_memory(p)

    try:
        adata = _parse(p, fmt, transpose, var_names, genome, genomes, backed, opts)
    except (ScagentError, MemoryError, KeyboardInterrupt):
        raise
    except PermissionError as e:
        raise CorruptInputError(
            f"cannot read {p}: {e}", remedy="check the file's permissions"
        ) from e
    except Exception as e:  # any parser failure means a file we cannot read
        raise CorruptInputError(f"cannot read {label} as {fmt}: {type(e).__name__}: {e}") from e

    try:
        if var_names == "gene_ids" and fmt not in ("10x_mtx", "10x_h5"):
            _index_by_gene_ids(adata, label)
        _deduplicate(adata, label, make_unique)
        if validate:
            _validate(adata, label)
    except BaseException:
        if adata.isbacked:  # do not leave the file open behind an error
            adata.file.close()
        raise
    scagent_uns = adata.uns.get("scagent")
    if not isinstance(scagent_uns, dict):
        scagent_uns = {}
    # A 10x matrix is the folder (matrix + barcodes + features), even when the path
    # named its matrix.mtx.
    scagent_uns["source"] = _source_record(p.parent if fmt == "10x_mtx" and p.is_file() else p, fmt)
    adata.uns["scagent"] = scagent_uns
    return adata


def _index_by_gene_ids(adata: AnnData, label: str) -> None:
    column = next(
        (c for c in ("gene_ids", "gene_id", "ensembl_id", "ensembl_ids") if c in adata.var),
        None,
    )
    if column is None:
        raise InvalidParameterError(
            f"var_names='gene_ids' but {label} has no gene id column in var "
            f"(columns: {list(adata.var.columns)})",
            remedy="use var_names='gene_symbols'",
        )
    if "gene_symbols" not in adata.var:
        adata.var["gene_symbols"] = adata.var_names.to_numpy()
    adata.var_names = pd.Index(adata.var[column].astype(str).to_numpy())


_GENERIC_10X_NAMES = {
    "filtered_feature_bc_matrix",
    "raw_feature_bc_matrix",
    "filtered_gene_bc_matrices",
    "raw_gene_bc_matrices",
    "filtered_gene_bc_matrices_h5",
    "raw_gene_bc_matrices_h5",
    "sample_filtered_feature_bc_matrix",
    "sample_raw_feature_bc_matrix",
    "outs",
    "count",
}


_DATA_SUFFIXES = {".gz", *_SUFFIX_FORMAT}


def _sample_stem(path: Path) -> str:
    """A sample name from a path: its stem, climbing past generic Cell Ranger names."""
    p = Path(path).resolve()
    while True:
        name = p.name
        while Path(name).suffix.lower() in _DATA_SUFFIXES:
            name = Path(name).stem
        if name.lower() not in _GENERIC_10X_NAMES or p.parent == p:
            return name
        p = p.parent


def read_many(
    paths: Sequence[str | os.PathLike[str]],
    sample_names: Sequence[str] | None = None,
    *,
    join: Literal["inner", "outer"] = "inner",
    **read_opts: Any,
) -> AnnData:
    """Read several samples with :func:`read` and concatenate them along cells.

    Parameters
    ----------
    paths
        One input per sample, in any format :func:`read` takes.
    sample_names
        A name per path; default: each file or folder stem (climbing past generic Cell
        Ranger folder names such as ``filtered_feature_bc_matrix`` and ``outs``).
    join
        ``'inner'`` keeps the genes every sample has (warning how many were dropped);
        ``'outer'`` keeps all, filling absent genes with 0 (and warns how many).
    **read_opts
        Passed to :func:`read` for every path (not ``backed``).

    Returns
    -------
    One AnnData with ``obs['sample']`` (categorical, in the order given), cell names
    ``<barcode>-<sample>``, and the ``var`` columns whose values agree across samples.
    ``uns['scagent']['source']`` holds ``format='read_many'``, ``join``, ``paths`` and
    each sample's own source record under ``samples``. A sample's pre-existing
    ``obs['sample']`` is kept as ``obs['sample_original']``.
    """
    import anndata

    paths = [Path(p) for p in paths]
    if not paths:
        raise InvalidParameterError("read_many needs at least one path")
    if join not in ("inner", "outer"):
        raise InvalidParameterError(f"join must be 'inner' or 'outer', not {join!r}")
    if read_opts.get("backed"):
        raise InvalidParameterError("read_many cannot concatenate backed data; drop backed=True")
    names = (
        [str(s) for s in sample_names]
        if sample_names is not None
        else [_sample_stem(p) for p in paths]
    )
    if len(names) != len(paths):
        raise InvalidParameterError(
            f"{len(names)} sample_names for {len(paths)} paths; give one name per path"
        )
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise InvalidParameterError(
            f"duplicated sample names {dups} (from {'sample_names' if sample_names else 'file names'})",
            remedy="pass sample_names= with one distinct name per path",
        )

    adatas, sources = [], {}
    for p, name in zip(paths, names, strict=True):
        a = read(p, **read_opts)
        if "sample" in a.obs:
            warnings.warn(
                f"{p.name}: existing obs['sample'] kept as obs['sample_original']",
                UserWarning,
                stacklevel=2,
            )
            a.obs["sample_original"] = a.obs.pop("sample")
        a.obs["sample"] = name
        a.obs_names = pd.Index([f"{bc}-{name}" for bc in a.obs_names])
        sources[name] = a.uns.get("scagent", {}).get("source", {})
        adatas.append(a)

    gene_sets = [set(a.var_names) for a in adatas]
    union = set().union(*gene_sets)
    common = set.intersection(*gene_sets)
    if not common and join == "inner":
        raise InvalidDataError(
            f"the {len(paths)} samples share no gene names",
            remedy="check that all use the same identifiers (var_names='gene_symbols' or 'gene_ids')",
        )
    n_other = len(union) - len(common)
    if n_other:
        per_sample = {n: len(g - common) for n, g in zip(names, gene_sets, strict=True)}
        if join == "inner":
            msg = (
                f"inner join on genes kept {len(common)} and dropped {n_other} genes not present "
                f"in every sample (dropped per sample: {per_sample})"
            )
        else:
            msg = (
                f"outer join kept {len(union)} genes; {n_other} are absent from some samples and "
                f"were filled with 0 there (genes only in each sample: {per_sample})"
            )
        warnings.warn(msg, UserWarning, stacklevel=2)

    merged = anndata.concat(
        adatas, join=join, merge="same", fill_value=0 if join == "outer" else None
    )
    merged.obs["sample"] = pd.Categorical(merged.obs["sample"].astype(str), categories=names)
    merged.uns["scagent"] = {
        "source": {
            "format": "read_many",
            "join": join,
            "paths": [str(p.resolve()) for p in paths],
            "samples": sources,
            "read_at": _dt.datetime.now(tz=_dt.UTC).isoformat(timespec="seconds"),
        }
    }
    return merged


def write_h5ad(adata: AnnData, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``adata`` to ``path`` as .h5ad atomically (temporary sibling, then rename).

    Parameters
    ----------
    adata
        The data to write.
    path
        Target file; its folder is created if needed. A crash mid-write leaves the old
        file (or none), never a half-written one.
    **kwargs
        Passed to :meth:`anndata.AnnData.write_h5ad` (e.g. ``compression='gzip'``).

    Returns
    -------
    The target path.
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        adata.write_h5ad(tmp, **kwargs)
    return target
