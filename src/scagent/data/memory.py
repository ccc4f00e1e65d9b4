"""Whether an .h5ad/.zarr file fits in memory, judged from its metadata before anything is loaded."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from scagent.errors import (
    CorruptInputError,
    DataStateError,
    InputNotFoundError,
    InvalidParameterError,
    UnsupportedFormatError,
)

__all__ = [
    "MEMORY_FRACTION",
    "available_memory",
    "check_fits_in_memory",
    "estimate_in_memory_bytes",
    "is_dask_array",
]


def is_dask_array(value: Any) -> bool:
    """Whether ``value`` is a dask array (without importing dask when nobody has)."""
    da = sys.modules.get("dask.array")  # a value can only be a dask array if dask is imported
    return da is not None and isinstance(value, da.Array)


#: Share of the available memory an in-memory read may take. Loading is not the end of
#: it: normalization and HVG make copies, so a file that only just fits will not survive.
MEMORY_FRACTION = 0.5


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
    """``'h5ad'`` or ``'zarr'``; errors for a missing path or any other format."""
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
