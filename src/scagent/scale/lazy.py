"""Open .h5ad/.zarr files lazily (X as a dask array of CSR row chunks) and refuse in-memory
reads that would not fit in RAM, judged from the file's metadata before anything is loaded."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scagent.errors import (
    CorruptInputError,
    DataStateError,
    InputNotFoundError,
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

#: Share of the available memory an in-memory read may take. Loading is not the end of
#: it: normalization and HVG make copies, so a file that only just fits will not survive.
MEMORY_FRACTION = 0.5

_LAZY_EXTRA = "pip install 'scagent[scale]'  (dask[array], distributed)"


def _require_dask() -> None:
    try:
        import dask.array  # noqa: F401
    except ImportError as e:  # pragma: no cover - dask ships with the scale extra
        raise MissingDependencyError(
            "the lazy (out-of-core) path needs dask", remedy=_LAZY_EXTRA
        ) from e


def available_memory() -> int:
    """Bytes of memory this process can still use (``MemAvailable``, not free + cache).

    A separate function so that tests can pretend the machine is small.
    """
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with distributed
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        raise


def _format_of(path: Path) -> str:
    if not path.exists():
        raise InputNotFoundError(f"{path} does not exist")
    name = path.name.lower()
    if path.is_dir() and (
        name.endswith(".zarr") or (path / "zarr.json").exists() or (path / ".zgroup").exists()
    ):
        return "zarr"
    if path.is_file() and name.endswith((".h5ad", ".h5")):
        return "h5ad"
    raise UnsupportedFormatError(
        f"{path.name} is not an .h5ad file or a .zarr folder; only those open lazily",
        remedy="convert it once: scagent.data.read(path) then write_h5ad / write_zarr",
    )


class _Store:
    """An open .h5ad (h5py) or .zarr (zarr) root group, closed on exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = _format_of(path)
        self._file: Any = None

    def __enter__(self) -> Any:
        try:
            if self.format == "h5ad":
                import h5py

                self._file = h5py.File(self.path, "r")
                return self._file
            import zarr

            return zarr.open_group(str(self.path), mode="r")
        except (OSError, ValueError, KeyError) as e:
            raise CorruptInputError(f"cannot open {self.path.name}: {e}") from e
        except Exception as e:  # zarr raises its own types for a folder that is not a group
            raise CorruptInputError(f"cannot open {self.path.name}: {type(e).__name__}: {e}") from e

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


def _encoding(elem: Any) -> str:
    return str(elem.attrs.get("encoding-type", "array" if hasattr(elem, "shape") else "dict"))


def _elem_bytes(elem: Any) -> int:
    """In-memory bytes of one stored element, from shapes and dtypes only (nothing read)."""
    if hasattr(elem, "shape") and hasattr(elem, "dtype"):  # a plain array
        n = 1
        for d in elem.shape:
            n *= int(d)
        # Strings become Python objects in memory; 64 bytes each is a fair guess.
        itemsize = elem.dtype.itemsize if elem.dtype.kind not in "OSUT" else 64
        return n * int(itemsize)
    return sum(_elem_bytes(elem[k]) for k in elem.keys())


def estimate_in_memory_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an in-memory read of ``path`` would take, from the file's metadata.

    Counts X, layers, obsm, varm, obsp, varp and raw from their shapes, dtypes and (for
    sparse matrices) number of stored values; obs/var/uns are small and ignored. Nothing
    is loaded, so this is instant even on a file of hundreds of GB.

    Parameters
    ----------
    path
        An ``.h5ad`` file or ``.zarr`` folder written by anndata.

    Returns
    -------
    The estimate in bytes.
    """
    with _Store(Path(path)) as root:
        total = 0
        for slot in ("X", "layers", "obsm", "varm", "obsp", "varp", "raw"):
            if slot in root:
                total += _elem_bytes(root[slot])
        return total


def check_fits_in_memory(path: str | os.PathLike[str], *, fraction: float = MEMORY_FRACTION) -> int:
    """Raise before an in-memory read that would exhaust RAM; return the estimate.

    Parameters
    ----------
    path
        An ``.h5ad`` file or ``.zarr`` folder.
    fraction
        Largest share of :func:`available_memory` the loaded data may take.

    Returns
    -------
    The estimated in-memory size in bytes.

    Raises
    ------
    DataStateError
        The estimate exceeds ``fraction`` of the available memory; the remedy names the
        lazy path.
    """
    if not 0 < fraction <= 1:
        raise InvalidParameterError(f"fraction must be in (0, 1], not {fraction}")
    need = estimate_in_memory_bytes(path)
    have = available_memory()
    if need > fraction * have:
        gib = 2**30
        raise DataStateError(
            f"{Path(path).name} needs about {need / gib:.1f} GiB in memory but only "
            f"{have / gib:.1f} GiB is available (limit {fraction:.0%} of it); "
            "loading it would run out of memory",
            remedy="open it lazily: scagent.scale.read_lazy(path), or "
            "`scagent scale preprocess FILE --out OUT`",
        )
    return need


def read_checked(path: str | os.PathLike[str], **kwargs: Any) -> AnnData:
    """:func:`scagent.data.read` for .h5ad/.zarr, after :func:`check_fits_in_memory`.

    ``backed=True`` skips the check (X stays on disk). Other formats are passed through.
    """
    from scagent.data import read

    p = Path(path)
    if not kwargs.get("backed"):
        try:
            _format_of(p)
        except UnsupportedFormatError:
            pass  # text / 10x / loom: no cheap size metadata, let the reader decide
        else:
            check_fits_in_memory(p)
    return read(p, **kwargs)


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
    adata = ad.AnnData(X=X, obs=obs, var=var, layers=lazy_layers, **extra)
    meta = adata.uns.get("scagent")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta["lazy_source"] = {"path": str(p.resolve()), "chunk_cells": chunk_cells}
    adata.uns["scagent"] = meta
    return adata


def is_lazy(adata: AnnData) -> bool:
    """Whether ``adata.X`` is a dask array."""
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover
        return False
    return isinstance(adata.X, da.Array)


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
