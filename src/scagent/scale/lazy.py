"""Open .h5ad/.zarr files lazily (X as a dask array of CSR row chunks) and write them back
atomically; the guard against in-memory reads that would not fit lives in scagent.data.memory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The memory guard lives in scagent.data (data.read uses it); re-exported here as before.
from scagent.data.memory import (
    MEMORY_FRACTION,
    _Store,
    available_memory,
    check_fits_in_memory,
    estimate_in_memory_bytes,
    is_dask_array,
)
from scagent.errors import (
    CorruptInputError,
    DataStateError,
    InvalidParameterError,
    MissingDependencyError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "DEFAULT_CHUNK_CELLS",
    "MEMORY_FRACTION",
    "available_memory",
    "check_fits_in_memory",
    "estimate_in_memory_bytes",
    "is_lazy",
    "read_checked",
    "read_lazy",
    "write_lazy",
]

#: Cells per dask chunk: 10k cells x ~1k counts each is ~100 MB of CSR, small enough for
#: several chunks in flight per worker and large enough to keep scheduling overhead low.
DEFAULT_CHUNK_CELLS = 10_000

_LAZY_EXTRA = "pip install 'scagent[scale]'  (dask[array], distributed)"


def _require_dask() -> None:
    try:
        import dask.array  # noqa: F401
    except ImportError as e:  # pragma: no cover - dask ships with the scale extra
        raise MissingDependencyError(
            "the lazy (out-of-core) path needs dask", remedy=_LAZY_EXTRA
        ) from e


def _encoding(elem: Any) -> str:
    return str(elem.attrs.get("encoding-type", "array" if hasattr(elem, "shape") else "dict"))


def read_checked(path: str | os.PathLike[str], **kwargs: Any) -> AnnData:
    """:func:`scagent.data.read`, kept for compatibility: it now checks the memory itself.

    A non-backed read of an .h5ad/.zarr raises :class:`~scagent.errors.DataStateError`
    before loading when :func:`check_fits_in_memory` says it would not fit.
    """
    from scagent.data import read

    return read(Path(path), **kwargs)


def read_lazy(
    path: str | os.PathLike[str],
    *,
    chunk_cells: int = DEFAULT_CHUNK_CELLS,
    layers: bool = True,
) -> AnnData:
    """Open an ``.h5ad`` or ``.zarr`` with X (and layers) as dask arrays of row chunks.

    obs, var, uns, obsm and varm are read into memory (they are small next to X); X and
    each layer stay on disk and are read chunk by chunk when computed, in this process or
    on dask.distributed workers (the chunks reopen the file by path, so the graph pickles).

    Parameters
    ----------
    path
        An anndata ``.h5ad`` file or ``.zarr`` folder with X stored dense or CSR.
    chunk_cells
        Cells per chunk.
    layers
        Also open ``layers`` lazily.

    Returns
    -------
    An AnnData whose ``X`` is a :class:`dask.array.Array` (blocks are ``scipy.sparse``
    CSR matrices or numpy arrays). Writes ``uns['scagent']['lazy_source']`` (the path).

    Raises
    ------
    InputNotFoundError, UnsupportedFormatError, CorruptInputError
        Missing file, not .h5ad/.zarr, or unreadable.
    DataStateError
        X is stored CSC (column-major): row chunks would read the whole file each.
    InvalidParameterError
        ``chunk_cells`` < 1.
    """
    _require_dask()
    import anndata as ad
    from anndata.experimental import read_elem_lazy

    if isinstance(chunk_cells, bool) or not isinstance(chunk_cells, int) or chunk_cells < 1:
        raise InvalidParameterError(f"chunk_cells must be a positive integer, not {chunk_cells!r}")
    p = Path(path)
    with _Store(p) as root:
        if "X" not in root:
            raise DataStateError(f"{p.name} has no X matrix")
        try:
            obs = ad.io.read_elem(root["obs"])
            var = ad.io.read_elem(root["var"])
            n_genes = len(var)

            def lazy(elem: Any, where: str) -> Any:
                if _encoding(elem) == "csc_matrix":
                    raise DataStateError(
                        f"{where} of {p.name} is stored CSC (gene-major); reading it in cell "
                        "chunks would scan the whole matrix for every chunk",
                        remedy="rewrite it as CSR once: adata.X = adata.X.tocsr(); write_zarr",
                    )
                return read_elem_lazy(elem, chunks=(chunk_cells, n_genes))

            X = lazy(root["X"], "X")
            extra = {
                slot: ad.io.read_elem(root[slot])
                for slot in ("uns", "obsm", "varm")
                if slot in root
            }
            lazy_layers = (
                {k: lazy(root["layers"][k], f"layers['{k}']") for k in root["layers"].keys()}
                if layers and "layers" in root
                else {}
            )
        except DataStateError:
            raise
        except Exception as e:
            raise CorruptInputError(f"cannot read {p.name}: {type(e).__name__}: {e}") from e
    # The store caches a lazy matrix's hash by its dask name, which anndata derives from the
    # path alone; naming it by the file's size and mtime too means a file rewritten at the
    # same path is read and hashed again, never mistaken for the old content.
    stamp = _file_stamp(p)
    X = _stamped(X, stamp)
    lazy_layers = {k: _stamped(v, stamp) for k, v in lazy_layers.items()}
    adata = ad.AnnData(X=X, obs=obs, var=var, layers=lazy_layers, **extra)
    meta = adata.uns.get("scagent")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta["lazy_source"] = {"path": str(p.resolve()), "chunk_cells": chunk_cells}
    adata.uns["scagent"] = meta
    return adata


def _file_stamp(path: Path) -> str:
    """A token of a file's (or a zarr folder's files') sizes and modification times."""
    from dask.base import tokenize

    files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file())
    return tokenize(
        str(path.resolve()), [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    )


def _stamped(arr: Any, stamp: str) -> Any:
    """The same lazy array under a name that includes ``stamp`` (an identity map_blocks)."""
    return arr.map_blocks(
        _identity, dtype=arr.dtype, meta=arr._meta, name=f"{arr.name}-{stamp[:16]}"
    )


def _identity(block: Any) -> Any:
    return block


def is_lazy(adata: AnnData) -> bool:
    """Whether ``adata.X`` is a dask array."""
    return is_dask_array(adata.X)


def write_lazy(adata: AnnData, path: str | os.PathLike[str]) -> Path:
    """Write ``adata`` (dask X computed chunk by chunk) to ``path`` atomically.

    ``.zarr`` keeps the chunking (each dask chunk becomes zarr chunks, written as computed);
    ``.h5ad`` streams the same way. The data is written to a temporary sibling, which then
    replaces ``path``: a crash leaves the old output or none.

    Parameters
    ----------
    adata
        The data; X and layers may be dask arrays.
    path
        Target ending in ``.zarr`` or ``.h5ad``.

    Returns
    -------
    The target path.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".zarr", ".h5ad"):
        raise UnsupportedFormatError(
            f"output {target.name} must end in .zarr or .h5ad",
            remedy="name the output e.g. out.zarr",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".h5ad":
        from scagent.data.io import write_h5ad

        return write_h5ad(adata, target)
    # atomic_path makes a temp *file*; a zarr store is a folder, so do the same by hand.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / "store.zarr"
    try:
        adata.write_zarr(tmp)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    return target
