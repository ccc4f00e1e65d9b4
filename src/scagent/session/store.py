"""A content-addressed snapshot store: each AnnData part is kept once under its hash, a snapshot is a manifest.

Layout under ``root`` (``<project>/.scagent/store``)::

    store.json                 {"format": 1}: the store's format version
    objects/ab/cdef...         one file per part, named by the SHA-256 of its content
    snapshots/<id>.json        one manifest per snapshot

A *part* is one slot of an AnnData: ``X``, ``layers/<key>``, ``obsm/<key>``, ``varm/<key>``,
``obsp/<key>``, ``varp/<key>``, ``obs/<column>``, ``var/<column>``, ``obs_names``,
``var_names``, ``uns/<key>`` (top-level entries), ``raw/X``, ``raw/var/<column>``,
``raw/var_names`` and ``raw/varm/<key>``. A step that adds one obs column therefore writes
one small object and a manifest, never a new copy of X.

Object encoding. Each part is turned into a JSON *node* (its structure: dict, list,
DataFrame, categorical, sparse, ...) plus a list of plain numpy arrays (no pickle anywhere:
strings are stored as UTF-8 bytes with offsets, object arrays are refused unless they hold
strings or scalars). The part's hash is the SHA-256 of the canonical JSON of node + array
descriptors followed by the SHA-256 of each 16 MiB chunk of raw array bytes (two levels, so
one big matrix hashes on all cores): it names the content (values, dtypes, shapes, category
order), not its memory layout or its compression.
The file holds the arrays compressed with Blosc (zstd, byte shuffle) in 16 MiB chunks, each
with a CRC32, followed by a JSON header and a fixed footer. Reads check the length and the
CRCs before decompressing (Blosc trusts its input) and the SHA-256 after: a damaged object
raises :class:`~scagent.errors.StoreCorruptionError` naming the part, it is never loaded.

Chunked parts. A dask array in X, raw/X, layers, obsm, varm, obsp or varp (a lazy read or
the scale pipeline's recipe) is written as a *chunked* object (object format 2; plain
objects stay format 1): its row blocks are computed a few at a time, compressed and
appended, and the header lists each block's rows, arrays and SHA-256 under a node
``{"t": "chunked", "kind": "csr"|"dense", "plain": ..., "plain_arrays": ..., "blocks": ...}``.
Its hash is the one its in-memory twin gets (the ``sparse`` CSR or ``ndarray`` node with the
16 MiB chunk digests of the whole arrays, streamed), so it does not depend on the chunking
and a lazy snapshot deduplicates with the in-memory one. ``read_part``/``read_snapshot``
assemble it in memory, or with ``lazy=True`` give a dask array reading blocks on demand.
Awkward arrays (scirpy's ``obsm['airr']``) are stored as ``ak.to_buffers`` gives them: form
JSON, length and named buffers (packed first, so the hash is stable).

Snapshot ids. A manifest records the parts, the column order of obs/var, the parent
snapshot, a free ``meta`` dict, the format version, the scagent version and the creation
time. Its id is the SHA-256 of its canonical JSON *without* ``created`` and
``scagent_version``: the id names the content, its lineage and its meta, so writing the
same state twice gives the same snapshot.

Nothing is ever deleted: undo and branch deletion only move refs, and there is no garbage
collection yet (orphaned objects from an interrupted write are harmless).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scagent._atomic import atomic_path, atomic_write_bytes
from scagent.data.memory import is_dask_array
from scagent.errors import (
    IncompatibleVersionError,
    InvalidDataError,
    InvalidParameterError,
    RefNotFoundError,
    StoreCorruptionError,
)

__all__ = [
    "FORMAT_VERSION",
    "Manifest",
    "SnapshotInfo",
    "SnapshotStore",
    "hash_adata_parts",
    "part_paths",
]

#: Version of the on-disk format (store, manifests and objects). Bump on any change a
#: reader of the previous version could not read.
FORMAT_VERSION = 1

_OBJ_MAGIC = b"SCAGOBJ\x01"
_OBJ_END = b"SCAGEND\x01"
_FOOTER = struct.Struct("<Q8s")  # header length, end magic
_HASH_PREFIX = b"scagent-part\x00"
#: Arrays are compressed in chunks of this many raw bytes: bounded memory per call, and
#: Blosc refuses buffers above 2 GiB. A power of two, so chunks hold whole items.
_CHUNK = 1 << 24
_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_PREFIX_RE = re.compile(r"^[0-9a-f]{4,64}$")

#: Slots that are mappings of matrices, in the order they are listed.
_MATRIX_SLOTS = ("layers", "obsm", "varm", "obsp", "varp")


def _make_codec() -> Any:
    # numcodecs comes with zarr (a dependency). Blosc's byte shuffle + zstd level 1 gives
    # 3-10x on counts at several hundred MB/s per core, far better than zlib at that speed;
    # 1 MiB blocks compress and decompress faster than Blosc's small default blocks.
    from numcodecs import Blosc

    return Blosc(cname="zstd", clevel=1, shuffle=Blosc.SHUFFLE, blocksize=1 << 20)


_CODEC = _make_codec()


def _canonical_json(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _short(h: str | None) -> str:
    return (h or "?")[:12]


# --------------------------------------------------------------------------- encoding


@dataclass
class _Encoded:
    """One part as a JSON node plus the plain arrays it refers to (by position)."""

    node: dict[str, Any]
    arrays: list[np.ndarray] = field(default_factory=list)

    def descriptors(self) -> list[dict[str, Any]]:
        return [{"dtype": _dtype_descr(a.dtype), "shape": list(a.shape)} for a in self.arrays]

    def digest(self) -> str:
        pieces = [p for a in self.arrays for p in _chunks(a)]
        if sum(p.nbytes for p in pieces) < _CHUNK:  # small parts: threads would cost more
            return _part_hash(self.node, self.descriptors(), [_chunk_digest(p) for p in pieces])
        return _part_hash(self.node, self.descriptors(), _map(_chunk_digest, pieces))


def _part_hash(node: Any, descriptors: list[dict[str, Any]], chunk_digests: Iterable[bytes]) -> str:
    """SHA-256 over the canonical JSON of node + array descriptors, then the SHA-256 of each
    16 MiB chunk of raw array bytes (a two-level hash, so big arrays hash on all cores)."""
    h = hashlib.sha256(_HASH_PREFIX)
    h.update(_canonical_json({"node": node, "arrays": descriptors}))
    h.update(b"\x00")
    for d in chunk_digests:
        h.update(d)
    return h.hexdigest()


def _chunks(arr: np.ndarray) -> list[np.ndarray]:
    flat = _raw_bytes(arr)
    return [flat[o : o + _CHUNK] for o in range(0, flat.nbytes, _CHUNK)]


def _chunk_digest(piece: np.ndarray) -> bytes:
    # hashlib reads the buffer in place and releases the GIL: no copy of big matrices
    return hashlib.sha256(piece).digest()


_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0


def _map(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``[fn(x) for x in items]`` on a shared thread pool when there is more than one item.

    SHA-256, CRC32 and Blosc (in a worker thread it uses its re-entrant, single-threaded
    API) release the GIL, so chunks of one big matrix are processed on all cores.
    """
    global _POOL, _POOL_PID
    if len(items) <= 1 or _WORKERS == 1:
        return [fn(x) for x in items]
    if _POOL is None or _POOL_PID != os.getpid():  # a forked child has no pool threads
        _POOL = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="scagent-store")
        _POOL_PID = os.getpid()
    return list(_POOL.map(fn, items))


def _n_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))  # the cores this process may use (containers, taskset)
    except AttributeError:  # not on every platform
        n = os.cpu_count() or 1
    return max(1, min(8, n))


_WORKERS = _n_workers()


def _raw_bytes(arr: np.ndarray) -> np.ndarray:
    return arr.reshape(-1).view(np.uint8)


def _dtype_descr(dtype: np.dtype) -> Any:
    return json.loads(json.dumps(np.lib.format.dtype_to_descr(dtype)))


def _descr_tuples(descr: Any) -> Any:
    """Turn a JSON-decoded structured descr (lists) back into numpy's tuples."""
    if isinstance(descr, str):
        return descr
    fields = []
    for f in descr:
        name = tuple(f[0]) if isinstance(f[0], list) else f[0]
        sub = _descr_tuples(f[1])
        fields.append((name, sub, tuple(f[2])) if len(f) == 3 else (name, sub))
    return fields


def _dtype_from_descr(descr: Any) -> np.dtype:
    return np.lib.format.descr_to_dtype(_descr_tuples(descr))


class _Encoder:
    """Turn a part into an :class:`_Encoded`; ``path`` names the part in error messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.arrays: list[np.ndarray] = []

    def _unsupported(self, where: str, what: str) -> InvalidDataError:
        return InvalidDataError(
            f"cannot snapshot {where}: {what}",
            remedy="store strings, numbers, booleans, categoricals, arrays, sparse matrices, "
            "DataFrames and dicts/lists of these",
        )

    def add(self, arr: np.ndarray) -> int:
        arr = np.asarray(arr)
        if not arr.flags.c_contiguous:  # hash and store in C order (content, not layout)
            arr = np.ascontiguousarray(arr)  # (not for 0-d: it would make them 1-d)
        if arr.dtype.hasobject:  # guarded by callers; never let an object array reach np bytes
            raise self._unsupported(self.path, "object array")
        self.arrays.append(arr)
        return len(self.arrays) - 1

    # -- strings ---------------------------------------------------------------------
    def strings(self, values: Any, where: str) -> dict[str, Any]:
        """UTF-8 data + int64 offsets + a missing mask (only if something is missing)."""
        import pyarrow as pa

        try:
            arr = pa.array(
                np.asarray(values, dtype=object).ravel(), type=pa.large_string(), from_pandas=True
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise self._unsupported(where, f"values are not all strings ({e})") from None
        n = len(arr)
        _, offsets_buf, data_buf = arr.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=n + 1)
        data = (
            np.frombuffer(data_buf, dtype=np.uint8, count=int(offsets[-1]))
            if data_buf is not None
            else np.zeros(0, np.uint8)
        )
        node: dict[str, Any] = {
            "t": "strings",
            "n": n,
            "data": self.add(data),
            "offsets": self.add(offsets),
        }
        if arr.null_count:
            node["missing"] = self.add(arr.is_null().to_numpy(zero_copy_only=False))
        return node

    # -- columns (obs/var columns, indexes, DataFrame columns) ------------------------
    def column(self, values: pd.Series | pd.Index | Any, where: str) -> dict[str, Any]:
        dtype = getattr(values, "dtype", None)
        if isinstance(dtype, pd.CategoricalDtype):
            cat = values.array if hasattr(values, "array") else values
            return {
                "t": "column",
                "kind": "categorical",
                "codes": self.add(np.asarray(cat.codes)),
                "categories": self.column(cat.categories, f"{where} (categories)"),
                "ordered": bool(dtype.ordered),
            }
        if isinstance(dtype, pd.StringDtype):
            na = getattr(dtype, "na_value", pd.NA)
            return {
                "t": "column",
                "kind": "string",
                "storage": dtype.storage,
                "na": "NA" if na is pd.NA else "nan",
                "values": self.strings(np.asarray(values, dtype=object), where),
            }
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            arr = values.array if hasattr(values, "array") else values
            numpy_dtype = getattr(dtype, "numpy_dtype", None)
            if hasattr(arr, "_mask") and numpy_dtype is not None:  # Int64, Float32, boolean
                mask = np.asarray(arr.isna(), dtype=bool)
                fill = False if numpy_dtype.kind == "b" else 0
                vals = arr.to_numpy(dtype=numpy_dtype, na_value=fill)
                return {
                    "t": "column",
                    "kind": "masked",
                    "dtype": str(dtype),
                    "values": self.add(vals),
                    "mask": self.add(mask),
                }
            raise self._unsupported(where, f"pandas dtype {dtype} is not supported")
        arr = np.asarray(values)
        if arr.dtype == object or arr.dtype.kind == "T":  # T: numpy 2 strings (zarr reads)
            return self.object_values(arr.astype(object), where, kind="column")
        if arr.dtype.kind not in "biufcmMUS":
            raise self._unsupported(where, f"dtype {arr.dtype} is not supported")
        return {"t": "column", "kind": "numpy", "values": self.add(arr)}

    def object_values(self, arr: np.ndarray, where: str, *, kind: str) -> dict[str, Any]:
        """Object arrays: strings (with missing values) or, failing that, a list of scalars."""
        flat = arr.ravel()
        missing = pd.isna(flat) if flat.size else np.zeros(0, bool)
        present = flat[~missing]
        if all(isinstance(v, str) for v in present):
            first_na = flat[missing][0] if missing.any() else None
            na = "none" if first_na is None else ("NA" if first_na is pd.NA else "nan")
            return {
                "t": kind,
                "kind": "object",
                "shape": list(arr.shape),
                "na": na,
                "values": self.strings(flat, where),
            }
        items = []
        for v in flat:
            if not (v is None or v is pd.NA or isinstance(v, (str, bool, int, float, np.generic))):
                raise self._unsupported(where, f"object values of type {type(v).__name__}")
            items.append({"t": "pdna"} if v is pd.NA else self.tree(v, where))
        return {"t": kind, "kind": "scalars", "shape": list(arr.shape), "items": items}

    def index(self, index: pd.Index, where: str) -> dict[str, Any]:
        if isinstance(index, pd.MultiIndex):
            raise self._unsupported(where, "a MultiIndex")
        return {
            "t": "index",
            "name": self.tree(index.name, where),
            "values": self.column(index, where),
        }

    def dataframe(self, df: pd.DataFrame, where: str) -> dict[str, Any]:
        if df.columns.duplicated().any():
            raise self._unsupported(where, "duplicate column names")
        return {
            "t": "dataframe",
            "index": self.index(df.index, where),
            "columns": [
                [self.tree(name, where), self.column(df.iloc[:, i], f"{where} column {name!r}")]
                for i, name in enumerate(df.columns)
            ],
        }

    # -- matrices and nested uns entries ----------------------------------------------
    def tree(self, value: Any, where: str) -> dict[str, Any]:
        if value is None:
            return {"t": "none"}
        if isinstance(value, np.generic):  # before float/str: np.float64 subclasses float
            if isinstance(value, np.object_) or np.asarray(value).dtype.hasobject:
                raise self._unsupported(where, "a numpy object scalar")
            return {"t": "npscalar", "a": self.add(np.asarray(value))}
        if isinstance(value, bool):
            return {"t": "bool", "v": value}
        if isinstance(value, int):
            return {"t": "int", "v": value}
        if isinstance(value, float):
            return {"t": "float", "v": repr(value)}  # repr round-trips exactly, NaN included
        if isinstance(value, str):
            return {"t": "str", "v": value}
        if isinstance(value, bytes):
            return {"t": "bytes", "a": self.add(np.frombuffer(value, dtype=np.uint8))}
        if sp.issparse(value):
            return self.sparse(value)
        if isinstance(value, np.ndarray):
            return self.ndarray(value, where)
        if _is_awkward(value):
            return self.awkward(value, where)
        if isinstance(value, pd.DataFrame):
            return self.dataframe(value, where)
        if isinstance(value, pd.Series):
            return {
                "t": "series",
                "name": self.tree(value.name, where),
                "index": self.index(value.index, where),
                "values": self.column(value, where),
            }
        if isinstance(value, Mapping):
            bad = [k for k in value if not isinstance(k, str)]
            if bad:
                raise self._unsupported(where, f"dict key {bad[0]!r} is not a string")
            return {
                "t": "dict",
                "items": [[k, self.tree(value[k], f"{where}/{k}")] for k in sorted(value)],
            }
        if isinstance(value, (list, tuple)):
            return {
                "t": "list" if isinstance(value, list) else "tuple",
                "items": [self.tree(v, f"{where}[{i}]") for i, v in enumerate(value)],
            }
        raise self._unsupported(where, f"values of type {type(value).__name__}")

    def sparse(self, m: Any) -> dict[str, Any]:
        fmt = m.format if m.format in ("csr", "csc") else "csr"
        if fmt != m.format:
            m = m.tocsr()
        return {
            "t": "sparse",
            "format": fmt,
            "cls": "array" if isinstance(m, sp.sparray) else "matrix",
            "shape": [int(s) for s in m.shape],
            "data": self.add(np.asarray(m.data)),
            "indices": self.add(np.asarray(m.indices)),
            "indptr": self.add(np.asarray(m.indptr)),
        }

    def awkward(self, value: Any, where: str) -> dict[str, Any]:
        """An awkward array (scirpy's ``obsm['airr']``) as its form, length and named buffers.

        ``ak.to_buffers`` is awkward's own pickle-free serialisation; packing first drops
        unreachable content (a sliced view keeps its parent's buffers), so equal values
        built different ways, and a value read back and written again, hash alike.
        """
        import awkward as ak

        try:
            # anndata marks a view with top-level parameters holding id() of its parent:
            # drop them (as its own .copy() does) or the hash would change every run.
            layout = ak.to_layout(value)
            params = dict(layout.parameters)
            if "_view_args" in params:
                del params["_view_args"]
                if params.get("__list__") == "AwkwardArrayView":
                    del params["__list__"]
                value = ak.Array(layout.copy(parameters=params or None))
            form, length, container = ak.to_buffers(ak.to_packed(value), byteorder="<")
        except Exception as e:  # e.g. a non-CPU backend or an object awkward cannot pack
            raise self._unsupported(where, f"awkward array ({type(e).__name__}: {e})") from None
        return {
            "t": "awkward",
            "form": json.loads(form.to_json()),
            "length": int(length),
            "buffers": [[key, self.add(np.asarray(container[key]))] for key in sorted(container)],
        }

    def ndarray(self, value: np.ndarray, where: str) -> dict[str, Any]:
        rec = isinstance(value, np.recarray)
        arr = np.asarray(value)
        if arr.dtype.names is not None and arr.dtype.hasobject:
            # e.g. scanpy's rank_genes_groups 'names': a recarray with object (str) fields
            return {
                "t": "records",
                "rec": rec,
                "dtype": _dtype_descr(arr.dtype),
                "shape": list(arr.shape),
                "fields": [
                    [name, self.tree(np.asarray(arr[name]), f"{where}.{name}")]
                    for name in arr.dtype.names
                ],
            }
        if arr.dtype == object or arr.dtype.kind == "T":  # T: numpy 2 strings (zarr reads)
            return self.object_values(arr.astype(object), where, kind="objarray")
        if arr.dtype.hasobject:
            raise self._unsupported(where, f"dtype {arr.dtype}")
        return {"t": "ndarray", "rec": rec, "a": self.add(arr)}


def _encode_part(path: str, value: Any) -> _Encoded:
    enc = _Encoder(path)
    if path in ("obs_names", "var_names", "raw/var_names"):
        node = enc.index(value, path)
    elif path.startswith(("obs/", "var/", "raw/var/")):
        node = enc.column(value, path)
    elif path.split("/", 1)[0] in _MATRIX_SLOTS or path.startswith("raw/varm/"):
        if isinstance(value, pd.DataFrame):  # obsm may hold DataFrames
            node = enc.dataframe(value, path)
        elif _is_awkward(value):  # scirpy's obsm['airr']
            node = enc.awkward(value, path)
        else:
            node = _encode_matrix(enc, value, path)
    elif path in ("X", "raw/X"):
        node = _encode_matrix(enc, value, path)
    else:  # uns entries: nested dicts, lists, arrays, DataFrames, scalars
        node = enc.tree(value, path)
    return _Encoded(node, enc.arrays)


def _encode_matrix(enc: _Encoder, value: Any, path: str) -> dict[str, Any]:
    if sp.issparse(value):
        return enc.sparse(value)
    if isinstance(value, np.ndarray):
        return enc.ndarray(value, path)
    raise InvalidDataError(
        f"cannot snapshot {path}: a {type(value).__name__} (not an in-memory numpy or scipy "
        "sparse matrix)",
        remedy="load the data into memory first (adata.to_memory(), .compute() for dask)",
    )


def _is_awkward(value: Any) -> bool:
    # awkward is optional: a value can only be an ak.Array if awkward is already imported
    ak = sys.modules.get("awkward")
    return ak is not None and isinstance(value, ak.Array)


# --------------------------------------------------------------------------- decoding


class _Decoder:
    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays

    def strings(self, node: dict[str, Any]) -> np.ndarray:
        import pyarrow as pa

        n = node["n"]
        arr = pa.Array.from_buffers(
            pa.large_string(),
            n,
            [
                None,
                pa.py_buffer(self.arrays[node["offsets"]]),
                pa.py_buffer(self.arrays[node["data"]]),
            ],
        )
        out = arr.to_numpy(zero_copy_only=False)
        if not isinstance(out, np.ndarray) or out.dtype != object:
            out = np.asarray(out, dtype=object)
        if "missing" in node:
            out[self.arrays[node["missing"]]] = None
        return out

    def column(self, node: dict[str, Any]) -> Any:
        kind = node["kind"]
        if kind == "numpy":
            return self.arrays[node["values"]]
        if kind == "categorical":
            categories = pd.Index(self.column(node["categories"]))
            return pd.Categorical.from_codes(
                self.arrays[node["codes"]],
                dtype=pd.CategoricalDtype(categories, ordered=node["ordered"]),
            )
        if kind == "string":
            # pandas < 2.3 has no na_value: its StringDtype is always the pd.NA flavour
            if node["na"] == "NA":
                dtype = pd.StringDtype(node["storage"])
            else:
                dtype = pd.StringDtype(node["storage"], na_value=np.nan)
            return pd.array(self.strings(node["values"]), dtype=dtype)
        if kind == "masked":
            out = pd.array(
                self.arrays[node["values"]], dtype=pd.api.types.pandas_dtype(node["dtype"])
            )
            out[self.arrays[node["mask"]]] = pd.NA
            return out
        if kind in ("object", "scalars"):
            return self.object_values(node)
        raise KeyError(f"unknown column kind {kind!r}")

    def object_values(self, node: dict[str, Any]) -> np.ndarray:
        if node["kind"] == "object":
            out = self.strings(node["values"])
            if node["na"] != "none":
                missing = pd.isna(out)
                out[missing] = pd.NA if node["na"] == "NA" else np.nan
        else:
            out = np.empty(len(node["items"]), dtype=object)
            for i, item in enumerate(node["items"]):
                out[i] = pd.NA if item["t"] == "pdna" else self.tree(item)
        return out.reshape(node["shape"])

    def index(self, node: dict[str, Any]) -> pd.Index:
        values = self.column(node["values"])
        dtype = object if isinstance(values, np.ndarray) and values.dtype == object else None
        return pd.Index(values, dtype=dtype, name=self.tree(node["name"]), copy=False)

    def dataframe(self, node: dict[str, Any]) -> pd.DataFrame:
        index = self.index(node["index"])
        names = [self.tree(name) for name, _ in node["columns"]]
        cols = [self.column(col) for _, col in node["columns"]]
        if not names:
            return pd.DataFrame(index=index)
        df = pd.DataFrame(dict(zip(range(len(names)), cols, strict=True)), index=index, copy=False)
        df.columns = pd.Index(names, dtype=object)
        return df

    def sparse(self, node: dict[str, Any]) -> Any:
        cls = {
            ("csr", "matrix"): sp.csr_matrix,
            ("csc", "matrix"): sp.csc_matrix,
            ("csr", "array"): sp.csr_array,
            ("csc", "array"): sp.csc_array,
        }[(node["format"], node["cls"])]
        data = self.arrays[node["data"]]
        # Build empty and assign: scipy's (data, indices, indptr) constructor may narrow the
        # index dtype, which would change the part's hash when it is written again.
        m = cls(tuple(node["shape"]), dtype=data.dtype)
        m.data, m.indices, m.indptr = (
            data,
            self.arrays[node["indices"]],
            self.arrays[node["indptr"]],
        )
        return m

    def tree(self, node: dict[str, Any]) -> Any:
        t = node["t"]
        if t == "none":
            return None
        if t in ("bool", "int", "str"):
            return node["v"]
        if t == "float":
            return float(node["v"])
        if t == "npscalar":
            return self.arrays[node["a"]][()]
        if t == "bytes":
            return self.arrays[node["a"]].tobytes()
        if t == "sparse":
            return self.sparse(node)
        if t == "ndarray":
            arr = self.arrays[node["a"]]
            return arr.view(np.recarray) if node["rec"] else arr
        if t == "awkward":
            import awkward as ak

            return ak.from_buffers(
                ak.forms.from_dict(node["form"]),
                node["length"],
                {key: self.arrays[i] for key, i in node["buffers"]},
                byteorder="<",
            )
        if t == "records":
            arr = np.empty(tuple(node["shape"]), dtype=_dtype_from_descr(node["dtype"]))
            for name, sub in node["fields"]:
                arr[name] = self.tree(sub)
            return arr.view(np.recarray) if node["rec"] else arr
        if t == "objarray":
            return self.object_values(node)
        if t == "dataframe":
            return self.dataframe(node)
        if t == "series":
            return pd.Series(
                self.column(node["values"]),
                index=self.index(node["index"]),
                name=self.tree(node["name"]),
                copy=False,
            )
        if t == "dict":
            return {k: self.tree(v) for k, v in node["items"]}
        if t == "list":
            return [self.tree(v) for v in node["items"]]
        if t == "tuple":
            return tuple(self.tree(v) for v in node["items"])
        if t == "index":
            return self.index(node)
        if t == "column":
            return self.column(node)
        raise KeyError(f"unknown node type {t!r}")


# --------------------------------------------------------------------------- chunked (dask) parts

#: Object format of a chunked part. Plain objects keep format 1 byte for byte; a reader
#: that knows only format 1 refuses a chunked object (IncompatibleVersionError) instead of
#: misreading it.
_CHUNKED_FORMAT = 2
#: Newest object format this reader reads.
_OBJECT_FORMAT_MAX = 2
#: Row blocks computed at once while writing a chunked part: bounds the memory to a few
#: blocks while still reading several in parallel.
_BLOCKS_IN_FLIGHT = max(1, min(_WORKERS, 4))

#: dask array name -> part hash. A dask name is the token of the array's whole recipe (dask
#: caches results on the same convention), so a lazy X is read and hashed once per process,
#: not at every step. A file rewritten in place under a live lazy AnnData is not detected.
_DASK_HASHES: dict[str, str] = {}
_DASK_HASHES_MAX = 1024


def _remember_dask_hash(name: str, h: str) -> None:
    if len(_DASK_HASHES) >= _DASK_HASHES_MAX:
        _DASK_HASHES.pop(next(iter(_DASK_HASHES)))
    _DASK_HASHES[name] = h


class _ChunkDigests:
    """The 16 MiB chunk digests of one array fed piece by piece.

    Gives exactly what ``_chunks`` + ``_chunk_digest`` give for the whole array, so a
    matrix streamed in row blocks hashes like the same matrix held in memory.
    """

    def __init__(self) -> None:
        self.digests: list[bytes] = []
        self._h = hashlib.sha256()
        self._filled = 0

    def feed(self, arr: np.ndarray) -> None:
        raw = _raw_bytes(np.ascontiguousarray(arr))
        pos = 0
        while pos < raw.nbytes:
            take = min(raw.nbytes - pos, _CHUNK - self._filled)
            self._h.update(raw[pos : pos + take])
            self._filled += take
            pos += take
            if self._filled == _CHUNK:
                self.digests.append(self._h.digest())
                self._h, self._filled = hashlib.sha256(), 0

    def finish(self) -> list[bytes]:
        if self._filled:
            self.digests.append(self._h.digest())
            self._h, self._filled = hashlib.sha256(), 0
        return self.digests


class _Canonical:
    """The in-memory equivalent of a matrix fed one row block at a time, and its part hash.

    The hash of a chunked part is the hash its in-memory twin gets from ``_encode_part``: a
    ``sparse`` CSR node (data, indices, indptr) or an ``ndarray`` node, with the same 16 MiB
    chunk digests. The row chunking therefore never enters the hash: a lazy snapshot and
    the in-memory snapshot of the same matrix name the same object.
    """

    def __init__(self, kind: str, shape: tuple[int, ...], dtype: np.dtype, cls: str) -> None:
        self.kind, self.shape, self.dtype, self.cls = kind, shape, np.dtype(dtype), cls
        self.indices_dtype: np.dtype | None = None  # CSR: fixed by the first block
        self.indptr_dtype = np.dtype(np.int32)  # CSR: widened by the blocks and the nnz
        self.data, self.indices = _ChunkDigests(), _ChunkDigests()
        self.row_ends: list[np.ndarray] = []  # CSR: global indptr[1:] per block
        self.nnz = 0
        self.rows = 0

    def block_arrays(self, block: Any, where: str) -> list[np.ndarray]:
        """Check one computed row block, feed it to the hash; returns the arrays to store."""
        actual = np.dtype(getattr(block, "dtype", np.asarray(block).dtype))
        if actual != self.dtype:
            # Casting would store (and hash) values the array never computes to.
            raise InvalidDataError(
                f"cannot snapshot {where}: a dask block computes to {actual}, but the array "
                f"declares {self.dtype}",
                remedy="give the dask array its true dtype (map_blocks(..., dtype=...))",
            )
        if self.kind == "dense":
            if sp.issparse(block):
                block = block.toarray()
            arr = np.ascontiguousarray(np.asarray(block), dtype=self.dtype)
            if arr.ndim != len(self.shape) or arr.shape[1:] != self.shape[1:]:
                raise InvalidDataError(
                    f"cannot snapshot {where}: a dask block has shape {arr.shape}, the array "
                    f"{self.shape}"
                )
            self.data.feed(arr)
            self.rows += arr.shape[0]
            return [arr]
        m = block.tocsr() if sp.issparse(block) else sp.csr_matrix(np.asarray(block))
        if m.shape[1] != self.shape[1]:
            raise InvalidDataError(
                f"cannot snapshot {where}: a dask block has {m.shape[1]} columns, not {self.shape[1]}"
            )
        if len(m.data) != m.indptr[-1] or len(m.indices) != m.indptr[-1]:
            m = m.copy()
            m.prune()  # drop storage beyond nnz so block arrays line up end to end
        if self.indices_dtype is None:
            self.indices_dtype = m.indices.dtype
        data = np.ascontiguousarray(m.data, dtype=self.dtype)
        indices = np.ascontiguousarray(m.indices, dtype=self.indices_dtype)
        local = np.asarray(m.indptr, dtype=np.int64)
        self.indptr_dtype = np.promote_types(self.indptr_dtype, m.indptr.dtype)
        self.data.feed(data)
        self.indices.feed(indices)
        self.row_ends.append(local[1:] + self.nnz)
        self.nnz += int(local[-1])
        self.rows += m.shape[0]
        return [data, indices, local]

    def plain(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The in-memory node and array descriptors (the hashed structure)."""
        if self.kind == "dense":
            node = {"t": "ndarray", "rec": False, "a": 0}
            return node, [{"dtype": _dtype_descr(self.dtype), "shape": list(self.shape)}]
        if self.nnz > np.iinfo(np.int32).max:
            self.indptr_dtype = np.dtype(np.int64)
        node = {"t": "sparse", "format": "csr", "cls": self.cls, "shape": list(self.shape),
                "data": 0, "indices": 1, "indptr": 2}  # fmt: skip
        indices_dtype = self.indices_dtype if self.indices_dtype is not None else np.int32
        return node, [
            {"dtype": _dtype_descr(self.dtype), "shape": [self.nnz]},
            {"dtype": _dtype_descr(np.dtype(indices_dtype)), "shape": [self.nnz]},
            {"dtype": _dtype_descr(self.indptr_dtype), "shape": [self.rows + 1]},
        ]

    def finish(self) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
        """``(plain node, plain descriptors, part hash)`` once every block was fed."""
        if self.rows != self.shape[0]:
            raise InvalidDataError(f"dask blocks hold {self.rows} rows, the array {self.shape[0]}")
        node, descs = self.plain()
        digests = self.data.finish()
        if self.kind == "csr":
            indptr = np.concatenate([np.zeros(1, np.int64), *self.row_ends]).astype(
                self.indptr_dtype
            )
            digests = [*digests, *self.indices.finish(), *map(_chunk_digest, _chunks(indptr))]
        return node, descs, _part_hash(node, descs, digests)


def _chunked_layout(value: Any, path: str) -> tuple[Any, str, str]:
    """``(array rechunked to whole rows, kind, sparse class)`` of a dask matrix, or raise."""
    if value.dtype.hasobject or value.dtype.kind not in "biufc":
        raise InvalidDataError(f"cannot snapshot {path}: a dask array of dtype {value.dtype}")
    if any(np.isnan(c) for dim in value.chunks for c in dim):
        raise InvalidDataError(
            f"cannot snapshot {path}: the dask array has unknown chunk sizes",
            remedy="call .compute_chunk_sizes() on it first",
        )
    meta = getattr(value, "_meta", None)
    if sp.issparse(meta):
        if value.ndim != 2:
            raise InvalidDataError(f"cannot snapshot {path}: a {value.ndim}-d sparse dask array")
        kind, cls = "csr", "array" if isinstance(meta, sp.sparray) else "matrix"
    else:
        kind, cls = "dense", "matrix"
    if value.ndim == 0:
        raise InvalidDataError(f"cannot snapshot {path}: a 0-d dask array", remedy="compute it")
    if value.ndim > 1 and any(len(c) > 1 for c in value.chunks[1:]):
        value = value.rechunk({axis: -1 for axis in range(1, value.ndim)})  # whole rows
    return value, kind, cls


def _computed_blocks(value: Any) -> Iterable[Any]:
    """The row blocks of a dask array in order, a few computed at a time (bounded memory)."""
    import dask

    delayed = list(value.to_delayed().ravel())
    for start in range(0, len(delayed), _BLOCKS_IN_FLIGHT):
        yield from dask.compute(*delayed[start : start + _BLOCKS_IN_FLIGHT])


def _dask_digest(value: Any, path: str) -> str:
    """Part hash of a dask matrix, streamed block by block (cached by the array's name)."""
    cached = _DASK_HASHES.get(value.name)
    if cached is not None:
        return cached
    rows, kind, cls = _chunked_layout(value, path)
    canon = _Canonical(kind, tuple(int(s) for s in value.shape), value.dtype, cls)
    for block in _computed_blocks(rows):
        canon.block_arrays(block, path)
    h = canon.finish()[2]
    _remember_dask_hash(value.name, h)
    return h


def _part_digest(path: str, value: Any) -> str:
    if is_dask_array(value) and _chunkable(path):
        return _dask_digest(value, path)
    return _encode_part(path, value).digest()


def _chunkable(path: str) -> bool:
    """Slots whose value may be a dask matrix (stored as a chunked part)."""
    return path in ("X", "raw/X") or path.startswith(
        (*(f"{slot}/" for slot in _MATRIX_SLOTS), "raw/varm/")
    )


def _array_offsets(descs: list[dict[str, Any]]) -> list[int]:
    """File offset of each array's first compressed chunk."""
    offsets, pos = [], len(_OBJ_MAGIC)
    for d in descs:
        offsets.append(pos)
        pos += sum(int(c[0]) for c in d["chunks"])
    return offsets


def _read_array_into(
    fh: Any, desc: dict[str, Any], offset: int, chunk_bytes: int, out: np.ndarray
) -> str | None:
    """Decompress one stored array into ``out`` (checked: size, CRCs); returns what is wrong."""
    raw = _raw_bytes(out)
    dtype = _dtype_from_descr(desc["dtype"])
    if dtype != out.dtype or [int(s) for s in desc["shape"]] != list(out.shape):
        return "has a damaged header (block array type)"
    if len(desc["chunks"]) != -(-raw.nbytes // chunk_bytes):
        return "has a damaged header (chunk count)"
    fh.seek(offset)
    jobs = []
    for i, (clen, crc) in enumerate(desc["chunks"]):
        lo = i * chunk_bytes
        jobs.append(
            (fh.read(int(clen)), int(clen), crc, raw[lo : min(lo + chunk_bytes, raw.nbytes)])
        )
    results = _map(_decompress, jobs) if raw.nbytes >= _CHUNK else [_decompress(j) for j in jobs]
    return next((r for r in results if isinstance(r, str)), None)


def _block_sha(arrays: Iterable[np.ndarray]) -> str:
    h = hashlib.sha256()
    for arr in arrays:
        h.update(_raw_bytes(np.ascontiguousarray(arr)))
    return h.hexdigest()


def _load_block(
    file: str,
    specs: list[tuple[dict[str, Any], int]],
    chunk_bytes: int,
    kind: str,
    cls: str,
    n_cols: int,
    sha: str,
    where: str,
) -> Any:
    """Read one row block of a chunked object: a dask task, so module level, plain arguments.

    ``specs`` holds ``(array descriptor, file offset)`` per stored array of the block.
    """
    arrays = []
    with open(file, "rb") as fh:
        for desc, offset in specs:
            try:
                out = np.empty(
                    tuple(int(s) for s in desc["shape"]), dtype=_dtype_from_descr(desc["dtype"])
                )
            except (ValueError, TypeError, KeyError):
                raise StoreCorruptionError(f"{where} has an unreadable header") from None
            problem = _read_array_into(fh, desc, offset, chunk_bytes, out)
            if problem:
                raise StoreCorruptionError(f"{where} {problem}")
            arrays.append(out)
    if _block_sha(arrays) != sha:
        raise StoreCorruptionError(f"{where} failed its hash check (row block)")
    if kind == "dense":
        return arrays[0]
    data, indices, indptr = arrays
    if indptr[-1] <= np.iinfo(indices.dtype).max:  # scipy wants one index dtype
        indptr = indptr.astype(indices.dtype)
    make = sp.csr_array if cls == "array" else sp.csr_matrix
    m = make((len(indptr) - 1, n_cols), dtype=data.dtype)
    m.data, m.indices, m.indptr = data, indices, indptr
    return m


# --------------------------------------------------------------------------- parts of an AnnData


def _check_key(key: Any, slot: str) -> str:
    if not isinstance(key, str):
        raise InvalidDataError(
            f"cannot snapshot {slot}: key {key!r} is not a string",
            remedy=f"rename the {slot} entries to strings",
        )
    return key


def part_paths(adata: Any) -> list[str]:
    """The slot paths under which ``adata`` is stored, in a stable order.

    Parameters
    ----------
    adata
        An in-memory AnnData.

    Returns
    -------
    ``["obs_names", "obs/<col>", ..., "var_names", ..., "X", "layers/<key>", ..., "uns/<key>",
    "raw/X", ...]``; obs/var columns in their DataFrame order, mapping keys sorted.
    """
    if getattr(adata, "isbacked", False):
        raise InvalidDataError(
            "cannot snapshot a backed AnnData (X lives in a file)",
            remedy="load it into memory first: adata = adata.to_memory()",
        )
    paths = ["obs_names"]
    for name, df in (("obs", adata.obs), ("var", adata.var)):
        if df.columns.duplicated().any():
            raise InvalidDataError(f"cannot snapshot {name}: duplicate column names")
        if name == "var":
            paths.append("var_names")
        paths += [f"{name}/{_check_key(c, name)}" for c in df.columns]
    if adata.X is not None:
        paths.append("X")
    for slot in _MATRIX_SLOTS:
        paths += [f"{slot}/{_check_key(k, slot)}" for k in sorted(getattr(adata, slot).keys())]
    paths += [f"uns/{_check_key(k, 'uns')}" for k in sorted(adata.uns.keys(), key=str)]
    raw = adata.raw
    if raw is not None:
        paths += ["raw/X", "raw/var_names"]
        if raw.var.columns.duplicated().any():
            raise InvalidDataError("cannot snapshot raw.var: duplicate column names")
        paths += [f"raw/var/{_check_key(c, 'raw.var')}" for c in raw.var.columns]
        paths += [f"raw/varm/{_check_key(k, 'raw.varm')}" for k in sorted(raw.varm.keys())]
    return paths


def _part_value(adata: Any, path: str) -> Any:
    """The object stored under ``path``; InvalidParameterError if ``adata`` has no such part."""
    try:
        if path == "X":
            if adata.X is None:
                raise KeyError(path)
            return adata.X
        if path == "obs_names":
            return adata.obs.index
        if path == "var_names":
            return adata.var.index
        if path.startswith("raw/"):
            raw = adata.raw
            if raw is None:
                raise KeyError(path)
            rest = path[4:]
            if rest == "X":
                return raw.X
            if rest == "var_names":
                return raw.var.index
            slot, _, key = rest.partition("/")
            if slot == "var":
                return raw.var[key]
            if slot == "varm":
                return raw.varm[key]
            raise KeyError(path)
        slot, _, key = path.partition("/")
        if slot in ("obs", "var"):
            return getattr(adata, slot)[key]
        if slot in _MATRIX_SLOTS:
            return getattr(adata, slot)[key]
        if slot == "uns":
            return adata.uns[key]
        raise KeyError(path)
    except KeyError:
        raise InvalidParameterError(
            f"the AnnData has no part {path!r}",
            remedy="use a slot path such as 'X', 'obs/leiden', 'obsm/X_pca' or 'uns/neighbors'",
        ) from None


def hash_adata_parts(adata: Any) -> dict[str, str]:
    """Content hash of every part of ``adata``, as the store would name them.

    Parameters
    ----------
    adata
        An in-memory AnnData.

    Returns
    -------
    ``{slot_path: sha256 hex}``, e.g. ``{"X": "3f1c...", "obs/leiden": "9ab0...", ...}``.
    Two AnnData with equal content (same values, dtypes, category order, column order)
    get equal hashes; replay compares these.
    """
    return {p: _part_digest(p, _part_value(adata, p)) for p in part_paths(adata)}


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class Manifest:
    """One snapshot: the hash of every part, its parent and free metadata.

    ``parts`` maps slot paths (``"X"``, ``"obs/leiden"``, ...) to object hashes; ``columns``
    keeps the obs / var / raw.var column order; ``meta`` is whatever the writer recorded
    (the session puts the step there).
    """

    id: str
    parent: str | None
    meta: dict[str, Any]
    parts: dict[str, str]
    created: str
    shape: tuple[int, int]
    columns: dict[str, list[str]]
    format: int = FORMAT_VERSION
    scagent_version: str = ""

    def _hashed_fields(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "parent": self.parent,
            "meta": self.meta,
            "parts": self.parts,
            "shape": list(self.shape),
            "columns": self.columns,
        }

    def to_json(self) -> dict[str, Any]:
        """The manifest as stored on disk (without its id, which is its file name)."""
        return {
            **self._hashed_fields(),
            "created": self.created,
            "scagent_version": self.scagent_version,
        }

    @staticmethod
    def compute_id(fields: Mapping[str, Any]) -> str:
        """Snapshot id of a manifest: SHA-256 of the canonical JSON of its hashed fields."""
        hashed = {k: fields[k] for k in ("format", "parent", "meta", "parts", "shape", "columns")}
        return hashlib.sha256(_canonical_json(hashed)).hexdigest()


@dataclass(frozen=True)
class SnapshotInfo:
    """What :meth:`SnapshotStore.write_snapshot` did."""

    id: str
    manifest: Manifest
    bytes_written: int
    """Bytes of new files on disk (objects + manifest); 0 if everything already existed."""
    parts_written: int
    """Number of parts whose object was new."""
    parts_total: int
    written_parts: tuple[str, ...] = ()
    """Slot paths of the parts whose object was new."""


# --------------------------------------------------------------------------- the store


def _meta_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (Path, _dt.datetime, _dt.date)):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


class SnapshotStore:
    """Content-addressed store of AnnData snapshots (see the module docstring).

    Parameters
    ----------
    root
        Folder of the store, ``<project>/.scagent/store``; created if absent.

    Several processes may write to one store at once: objects and manifests are named by
    their content and written by atomic rename, so concurrent writes of the same object
    leave one intact copy.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.objects_dir = self.root / "objects"
        self.snapshots_dir = self.root / "snapshots"
        info = self.root / "store.json"
        if info.is_file():
            try:
                version = int(json.loads(info.read_text())["format"])
            except (ValueError, KeyError, TypeError) as e:
                raise StoreCorruptionError(f"{info} is unreadable ({e})") from None
            if version > FORMAT_VERSION:
                raise IncompatibleVersionError(
                    f"the snapshot store {self.root} has format {version}; this scagent reads "
                    f"format {FORMAT_VERSION} and older"
                )
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        if not info.is_file():
            atomic_write_bytes(info, _canonical_json({"format": FORMAT_VERSION}) + b"\n")

    # -- paths ------------------------------------------------------------------------
    def _object_path(self, h: str) -> Path:
        return self.objects_dir / h[:2] / h[2:]

    def _manifest_path(self, snapshot_id: str) -> Path:
        return self.snapshots_dir / f"{snapshot_id}.json"

    def has_object(self, h: str) -> bool:
        """Whether an object with hash ``h`` is stored."""
        return self._object_path(h).is_file()

    def has_snapshot(self, snapshot_id: str) -> bool:
        """Whether a snapshot with exactly this id is stored."""
        return bool(_ID_RE.match(snapshot_id)) and self._manifest_path(snapshot_id).is_file()

    def list_snapshots(self) -> list[str]:
        """Ids of every stored snapshot (sorted)."""
        return sorted(p.stem for p in self.snapshots_dir.glob("*.json") if _ID_RE.match(p.stem))

    def resolve(self, ref: str) -> str:
        """Full snapshot id from an id or a unique prefix of at least 4 hex digits.

        Raises
        ------
        RefNotFoundError
            No snapshot starts with ``ref``.
        InvalidParameterError
            ``ref`` is not hex, or more than one snapshot starts with it.
        """
        ref = ref.strip().lower()
        if not _PREFIX_RE.match(ref):
            raise InvalidParameterError(
                f"{ref!r} is not a snapshot id (4 to 64 hex digits)",
                remedy="use an id from `scagent branch list` or the history",
            )
        if len(ref) == 64 and self._manifest_path(ref).is_file():
            return ref
        matches = [p.stem for p in self.snapshots_dir.glob(f"{ref}*.json") if _ID_RE.match(p.stem)]
        if not matches:
            raise RefNotFoundError(f"no snapshot {ref!r} in the store {self.root}")
        if len(matches) > 1:
            raise InvalidParameterError(
                f"snapshot prefix {ref!r} is ambiguous ({len(matches)} snapshots)",
                remedy="give more digits of the id",
            )
        return matches[0]

    # -- writing ----------------------------------------------------------------------
    def write_snapshot(
        self, adata: Any, *, parent: str | None = None, meta: Mapping[str, Any] | None = None
    ) -> SnapshotInfo:
        """Store ``adata`` as a snapshot; only parts not already stored are written.

        Parameters
        ----------
        adata
            An in-memory AnnData (not backed).
        parent
            Id of the snapshot this one derives from (``None`` for a root).
        meta
            JSON-serialisable metadata kept in the manifest (part of the id).

        Returns
        -------
        :class:`SnapshotInfo` with the id, the bytes and parts written.
        """
        if parent is not None and not self.has_snapshot(parent):
            raise RefNotFoundError(f"parent snapshot {parent!r} is not in the store {self.root}")
        try:
            meta_json = json.loads(
                json.dumps(dict(meta or {}), default=_meta_default, allow_nan=False)
            )
        except (TypeError, ValueError) as e:
            raise InvalidParameterError(
                f"snapshot meta is not JSON-serialisable: {e}",
                remedy="pass strings, numbers, booleans, lists and dicts (no NaN)",
            ) from None

        parts: dict[str, str] = {}
        written: list[str] = []
        nbytes = 0
        for path in part_paths(adata):
            value = _part_value(adata, path)
            if is_dask_array(value) and _chunkable(path):
                h = _DASK_HASHES.get(value.name, "")
                if not (h and self.has_object(h)):  # else: known and stored, nothing to read
                    h, size = self._write_chunked(value, path)
                    if size:
                        nbytes += size
                        written.append(path)
                parts[path] = h
                continue
            enc = _encode_part(path, value)
            h = enc.digest()
            parts[path] = h
            if not self.has_object(h):
                nbytes += self._write_object(h, enc)
                written.append(path)

        columns = {
            "obs": [str(c) for c in adata.obs.columns],
            "var": [str(c) for c in adata.var.columns],
        }
        if adata.raw is not None:
            columns["raw/var"] = [str(c) for c in adata.raw.var.columns]
        fields = {
            "format": FORMAT_VERSION,
            "parent": parent,
            "meta": meta_json,
            "parts": parts,
            "shape": [int(adata.n_obs), int(adata.n_vars)],
            "columns": columns,
        }
        sid = Manifest.compute_id(fields)
        manifest = Manifest(
            id=sid,
            parent=parent,
            meta=meta_json,
            parts=parts,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            shape=(int(adata.n_obs), int(adata.n_vars)),
            columns=columns,
            format=FORMAT_VERSION,
            scagent_version=_scagent_version(),
        )
        mpath = self._manifest_path(sid)
        existing = None
        if mpath.is_file():  # same content, lineage and meta: keep the first (its created time)
            try:
                existing = self.manifest(sid)
            except StoreCorruptionError:
                existing = None  # a damaged copy is replaced by this good one
        if existing is not None:
            manifest = existing
        else:
            text = json.dumps(manifest.to_json(), indent=1, sort_keys=True, ensure_ascii=True)
            data = text.encode("ascii") + b"\n"
            atomic_write_bytes(mpath, data)
            nbytes += len(data)
        return SnapshotInfo(
            id=sid,
            manifest=manifest,
            bytes_written=nbytes,
            parts_written=len(written),
            parts_total=len(parts),
            written_parts=tuple(written),
        )

    def _write_object(self, h: str, enc: _Encoded) -> int:
        """Write one object atomically; returns its size on disk."""
        target = self._object_path(h)
        descs = enc.descriptors()
        window = 2 * _WORKERS  # bounded memory: compress a few chunks at a time
        with atomic_path(target, suffix=".tmp") as tmp, open(tmp, "wb") as fh:
            fh.write(_OBJ_MAGIC)
            for arr, desc in zip(enc.arrays, descs, strict=True):
                ts = _typesize(arr.dtype)
                pieces = [p.view(f"<u{ts}") if ts > 1 else p for p in _chunks(arr)]
                desc["chunks"] = []
                for start in range(0, len(pieces), window):
                    for c, crc in _map(_compress, pieces[start : start + window]):
                        fh.write(c)
                        desc["chunks"].append([len(c), crc])
            header = _canonical_json(
                {"format": FORMAT_VERSION, "codec": "blosc", "chunk_bytes": _CHUNK,
                 "node": enc.node, "arrays": descs}
            )  # fmt: skip
            fh.write(header)
            fh.write(_FOOTER.pack(len(header), _OBJ_END))
            fh.flush()
            os.fsync(fh.fileno())
        return target.stat().st_size

    def _write_chunked(self, value: Any, path: str) -> tuple[str, int]:
        """Stream a dask matrix into a chunked object, one row block at a time.

        The hash is known only at the end, so the object is written under a temporary name
        and renamed to its hash (or dropped if that object exists); returns ``(hash, bytes
        written)``. Peak memory is a few row blocks, never the matrix.
        """
        rows, kind, cls = _chunked_layout(value, path)
        shape = tuple(int(s) for s in value.shape)
        canon = _Canonical(kind, shape, value.dtype, cls)
        descs: list[dict[str, Any]] = []
        blocks: list[dict[str, Any]] = []
        fd, tmp_name = tempfile.mkstemp(prefix=".chunked-", suffix=".tmp", dir=self.objects_dir)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_OBJ_MAGIC)
                start = 0
                for block in _computed_blocks(rows):
                    arrays = canon.block_arrays(block, path)
                    first = len(descs)
                    for arr in arrays:
                        ts = _typesize(arr.dtype)
                        pieces = [p.view(f"<u{ts}") if ts > 1 else p for p in _chunks(arr)]
                        chunks = []
                        for c, crc in _map(_compress, pieces):
                            fh.write(c)
                            chunks.append([len(c), crc])
                        descs.append(
                            {"dtype": _dtype_descr(arr.dtype), "shape": list(arr.shape),
                             "chunks": chunks}
                        )  # fmt: skip
                    stop = start + int(
                        arrays[0].shape[0] if kind == "dense" else len(arrays[2]) - 1
                    )
                    blocks.append(
                        {"rows": [start, stop], "arrays": list(range(first, len(descs))),
                         "sha256": _block_sha(arrays)}
                    )  # fmt: skip
                    start = stop
                plain, plain_descs, h = canon.finish()
                node = {"t": "chunked", "kind": kind, "cls": cls, "shape": list(shape),
                        "plain": plain, "plain_arrays": plain_descs, "blocks": blocks}  # fmt: skip
                header = _canonical_json(
                    {"format": _CHUNKED_FORMAT, "codec": "blosc", "chunk_bytes": _CHUNK,
                     "node": node, "arrays": descs}
                )  # fmt: skip
                fh.write(header)
                fh.write(_FOOTER.pack(len(header), _OBJ_END))
                fh.flush()
                os.fsync(fh.fileno())
            _remember_dask_hash(value.name, h)
            target = self._object_path(h)
            if target.is_file():  # the same matrix is stored already (maybe in memory form)
                tmp.unlink()
                return h, 0
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            return h, target.stat().st_size
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # -- reading ----------------------------------------------------------------------
    def manifest(self, snapshot_id: str) -> Manifest:
        """The manifest of a snapshot (id or unique prefix); its id is checked."""
        sid = self.resolve(snapshot_id)
        path = self._manifest_path(sid)
        try:
            data = json.loads(path.read_bytes())
            version = int(data["format"])
        except FileNotFoundError:
            raise RefNotFoundError(f"no snapshot {sid!r} in the store {self.root}") from None
        except (ValueError, KeyError, TypeError) as e:
            raise StoreCorruptionError(
                f"the manifest of snapshot {_short(sid)} is unreadable ({e})"
            ) from None
        if version > FORMAT_VERSION:
            raise IncompatibleVersionError(
                f"snapshot {_short(sid)} was written in store format {version} by scagent "
                f"{data.get('scagent_version', '?')}; this scagent ({_scagent_version()}) reads "
                f"format {FORMAT_VERSION} and older"
            )
        try:
            actual = Manifest.compute_id(data)
        except (KeyError, TypeError, ValueError) as e:
            raise StoreCorruptionError(
                f"the manifest of snapshot {_short(sid)} is incomplete ({e})"
            ) from None
        if actual != sid:
            raise StoreCorruptionError(
                f"the manifest of snapshot {_short(sid)} failed its hash check (content hashes "
                f"to {_short(actual)})"
            )
        return Manifest(
            id=sid,
            parent=data["parent"],
            meta=data["meta"],
            parts=dict(data["parts"]),
            created=data.get("created", ""),
            shape=tuple(data["shape"]),
            columns={k: list(v) for k, v in data["columns"].items()},
            format=version,
            scagent_version=data.get("scagent_version", ""),
        )

    def history(self, snapshot_id: str) -> list[Manifest]:
        """Manifests from the root snapshot to ``snapshot_id`` (inclusive), following parents."""
        chain: list[Manifest] = []
        seen: set[str] = set()
        current: str | None = snapshot_id
        while current is not None:
            m = self.manifest(current)
            if m.id in seen:
                raise StoreCorruptionError(f"snapshot {_short(m.id)} is its own ancestor")
            seen.add(m.id)
            chain.append(m)
            current = m.parent
        return chain[::-1]

    def _read_object(self, h: str, path: str, sid: str, mode: str = "memory") -> Any:
        """Load, verify and decode one object; StoreCorruptionError names the part.

        ``mode``: ``"memory"`` decodes in memory; ``"lazy"`` gives a chunked part as a dask
        array reading its blocks on demand (plain parts are decoded in memory); ``"verify"``
        checks a chunked part block by block without assembling it.
        """
        where = f"part {path!r} of snapshot {_short(sid)} (object {_short(h)})"

        def corrupt(reason: str) -> StoreCorruptionError:
            return StoreCorruptionError(f"{where} {reason}")

        file = self._object_path(h)
        try:
            fh = open(file, "rb")
        except FileNotFoundError:
            raise corrupt("is missing from the store") from None
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if size < len(_OBJ_MAGIC) + _FOOTER.size or fh.read(len(_OBJ_MAGIC)) != _OBJ_MAGIC:
                raise corrupt("is truncated or not a scagent object")
            fh.seek(size - _FOOTER.size)
            hlen, end = _FOOTER.unpack(fh.read(_FOOTER.size))
            if end != _OBJ_END or hlen > size - len(_OBJ_MAGIC) - _FOOTER.size:
                raise corrupt("is truncated (no valid footer)")
            fh.seek(size - _FOOTER.size - hlen)
            try:
                header = json.loads(fh.read(hlen))
                version = int(header["format"])
            except (ValueError, KeyError, TypeError):
                raise corrupt("has an unreadable header") from None
            if version > _OBJECT_FORMAT_MAX:
                raise IncompatibleVersionError(
                    f"{where} has object format {version}; this scagent reads "
                    f"{_OBJECT_FORMAT_MAX} and older"
                )
            try:
                descs = header["arrays"]
                node = header["node"]
                chunk_bytes = int(header["chunk_bytes"])
                payload = sum(int(c[0]) for d in descs for c in d["chunks"])
            except (KeyError, TypeError, ValueError):
                raise corrupt("has an unreadable header") from None
            if len(_OBJ_MAGIC) + payload + hlen + _FOOTER.size != size:
                raise corrupt("is truncated or has a damaged header (sizes do not add up)")
            if isinstance(node, dict) and node.get("t") == "chunked":
                try:
                    return self._read_chunked(fh, file, h, node, descs, chunk_bytes, where, mode)
                except (KeyError, TypeError, ValueError, IndexError) as e:
                    raise corrupt(
                        f"has a damaged chunked header ({type(e).__name__}: {e})"
                    ) from None
            fh.seek(len(_OBJ_MAGIC))
            arrays, jobs = [], []
            for desc in descs:
                try:
                    dtype = _dtype_from_descr(desc["dtype"])
                    shape = tuple(int(s) for s in desc["shape"])
                    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                except (ValueError, TypeError, KeyError):
                    raise corrupt("has an unreadable header") from None
                # the chunk count ties the claimed size to the bytes present in the file
                if dtype.hasobject or len(desc["chunks"]) != -(-nbytes // chunk_bytes):
                    raise corrupt("has a damaged header (chunk count)")
                out = np.empty(nbytes, dtype=np.uint8)
                for i, (clen, crc) in enumerate(desc["chunks"]):
                    lo = i * chunk_bytes
                    jobs.append(
                        (
                            fh.read(int(clen)),
                            int(clen),
                            crc,
                            out[lo : min(lo + chunk_bytes, nbytes)],
                        )
                    )
                arrays.append(out.view(dtype).reshape(shape))
        if sum(job[3].nbytes for job in jobs) < _CHUNK:  # small parts: threads would cost more
            results = [_decompress(job) for job in jobs]
        else:
            results = _map(_decompress, jobs)
        for r in results:
            if isinstance(r, str):
                raise corrupt(r)
        plain = [{"dtype": d["dtype"], "shape": d["shape"]} for d in descs]
        if _part_hash(node, plain, results) != h:
            raise corrupt("failed its hash check")
        try:
            return _Decoder(arrays).tree(node)
        except Exception as e:  # a verified object we cannot decode: a bug or a foreign writer
            raise corrupt(f"cannot be decoded ({type(e).__name__}: {e})") from None

    def _read_chunked(
        self,
        fh: Any,
        file: Path,
        h: str,
        node: dict[str, Any],
        descs: list[dict[str, Any]],
        chunk_bytes: int,
        where: str,
        mode: str,
    ) -> Any:
        """Read a chunked object (see :meth:`_read_object` for ``mode``)."""

        def corrupt(reason: str) -> StoreCorruptionError:
            return StoreCorruptionError(f"{where} {reason}")

        kind, cls = node["kind"], node["cls"]
        shape = tuple(int(s) for s in node["shape"])
        plain, plain_descs = node["plain"], node["plain_arrays"]
        offsets = _array_offsets(descs)
        blocks = node["blocks"]
        if [b["rows"][0] for b in blocks] != [0, *(b["rows"][1] for b in blocks[:-1])] or (
            (blocks[-1]["rows"][1] if blocks else 0) != shape[0]
        ):
            raise corrupt("has a damaged header (row blocks do not tile the matrix)")
        if kind not in ("csr", "dense") or any(len(b["arrays"]) != (3 if kind == "csr" else 1)
                                               for b in blocks):  # fmt: skip
            raise corrupt("has a damaged header (block layout)")

        if mode == "lazy":
            import dask
            import dask.array as da

            dtype = _dtype_from_descr(plain_descs[0]["dtype"])
            meta: Any = (
                (sp.csr_array if cls == "array" else sp.csr_matrix)((0, shape[1]), dtype=dtype)
                if kind == "csr"
                else np.empty((0,) * len(shape), dtype=dtype)
            )
            load = dask.delayed(_load_block, pure=True)
            pieces = [
                da.from_delayed(
                    load(
                        str(file),
                        [(descs[i], offsets[i]) for i in b["arrays"]],
                        chunk_bytes,
                        kind,
                        cls,
                        shape[1] if len(shape) > 1 else 0,
                        b["sha256"],
                        where,
                    ),
                    shape=(b["rows"][1] - b["rows"][0], *shape[1:]),
                    dtype=dtype,
                    meta=meta,
                )
                for b in blocks
            ]
            if not pieces:  # dask gives even an empty array one block; a foreign writer
                return da.zeros(shape, dtype=dtype)
            out = da.concatenate(pieces, axis=0) if len(pieces) > 1 else pieces[0]
            # the array reads this immutable object: re-snapshotting it needs no read
            _remember_dask_hash(out.name, h)
            return out

        if mode == "verify":  # block by block: bounded memory, however large the part
            canon = _Canonical(kind, shape, _dtype_from_descr(plain_descs[0]["dtype"]), cls)
            for b in blocks:
                block = _load_block(
                    str(file), [(descs[i], offsets[i]) for i in b["arrays"]], chunk_bytes,
                    kind, cls, shape[1] if len(shape) > 1 else 0, b["sha256"], where,
                )  # fmt: skip
                canon.block_arrays(block, where)
            if canon.finish()[2] != h:
                raise corrupt("failed its hash check")
            return None

        # in memory: every block decompresses straight into its place in the whole arrays
        outs = [
            np.empty(tuple(int(x) for x in d["shape"]), dtype=_dtype_from_descr(d["dtype"]))
            for d in plain_descs
        ]
        nnz = 0
        for b in blocks:
            r0, r1 = b["rows"]
            idx = b["arrays"]
            if kind == "dense":
                targets = [outs[0][r0:r1]]
            else:
                n = int(descs[idx[0]]["shape"][0])
                local = np.empty(r1 - r0 + 1, dtype=np.int64)
                targets = [outs[0][nnz : nnz + n], outs[1][nnz : nnz + n], local]
            for i, target in zip(idx, targets, strict=True):
                problem = _read_array_into(fh, descs[i], offsets[i], chunk_bytes, target)
                if problem:
                    raise corrupt(problem)
            if _block_sha(targets) != b["sha256"]:
                raise corrupt("failed its hash check (row block)")
            if kind == "csr":
                if local[0] != 0 or local[-1] != n:
                    raise corrupt("has a damaged row block (index pointers)")
                outs[2][r0 + 1 : r1 + 1] = local[1:] + nnz
                nnz += n
        if kind == "csr":
            outs[2][0] = 0
        if _Encoded(plain, outs).digest() != h:
            raise corrupt("failed its hash check")
        return _Decoder(outs).tree(plain)

    def read_part(self, snapshot_id: str, path: str, *, lazy: bool = False) -> Any:
        """One part of a snapshot, verified; obs/var columns come as a Series on the names.

        Parameters
        ----------
        snapshot_id
            Snapshot id or unique prefix.
        path
            Slot path, e.g. ``"obs/leiden"`` or ``"obsm/X_pca"``.
        lazy
            Give a chunked part (one written from a dask array) as a dask array that reads
            and checks its row blocks on demand, instead of assembling it in memory. Parts
            written from memory are read into memory either way.
        """
        m = self.manifest(snapshot_id)
        if path not in m.parts:
            raise RefNotFoundError(
                f"snapshot {_short(m.id)} has no part {path!r}",
                remedy="see the manifest's parts for the slots it holds",
            )
        value = self._read_object(m.parts[path], path, m.id, "lazy" if lazy else "memory")
        for prefix, names in (
            ("obs/", "obs_names"),
            ("var/", "var_names"),
            ("raw/var/", "raw/var_names"),
        ):
            if path.startswith(prefix):
                index = self._read_object(m.parts[names], names, m.id)
                return pd.Series(value, index=index, name=path[len(prefix) :], copy=False)
        return value

    def read_snapshot(self, snapshot_id: str, *, lazy: bool = False) -> Any:
        """Rebuild the AnnData of a snapshot; every part is verified against its hash.

        With ``lazy=True``, chunked parts (X, layers, obsm entries written from dask arrays)
        come back as dask arrays reading their row blocks on demand, each block checked
        against its own SHA-256 when read; everything else is read into memory.

        Raises
        ------
        StoreCorruptionError
            A part is missing, truncated or fails its hash check (the message names it).
        IncompatibleVersionError
            The snapshot was written by a newer scagent.
        """
        import anndata as ad

        m = self.manifest(snapshot_id)
        mode = "lazy" if lazy else "memory"
        values = {p: self._read_object(h, p, m.id, mode) for p, h in m.parts.items()}

        def frame(prefix: str, names: str, order: list[str]) -> pd.DataFrame:
            index = values[names]
            if not order:
                return pd.DataFrame(index=index)
            df = pd.DataFrame(
                {i: values[f"{prefix}{c}"] for i, c in enumerate(order)}, index=index, copy=False
            )
            df.columns = pd.Index(order, dtype=object)
            return df

        def mapping(slot: str) -> dict[str, Any]:
            return {p[len(slot) + 1 :]: v for p, v in values.items() if p.startswith(slot + "/")}

        try:
            adata = ad.AnnData(
                X=values.get("X"),
                obs=frame("obs/", "obs_names", m.columns.get("obs", [])),
                var=frame("var/", "var_names", m.columns.get("var", [])),
                uns=mapping("uns"),
                **{slot: mapping(slot) for slot in _MATRIX_SLOTS},
            )
            if "raw/X" in values:
                adata.raw = ad.AnnData(
                    X=values["raw/X"],
                    obs=pd.DataFrame(index=adata.obs_names),
                    var=frame("raw/var/", "raw/var_names", m.columns.get("raw/var", [])),
                    varm=mapping("raw/varm"),
                )
        except (KeyError, ValueError) as e:
            raise StoreCorruptionError(
                f"snapshot {_short(m.id)} is inconsistent and cannot be assembled ({e})"
            ) from None
        return adata

    # -- checks and sizes ---------------------------------------------------------------
    def part_hash(self, adata: Any, slot_path: str) -> str:
        """Hash of one part of ``adata`` (as stored), e.g. ``store.part_hash(adata, "obs/leiden")``."""
        return _part_digest(slot_path, _part_value(adata, slot_path))

    def verify(self, snapshot_id: str | None = None) -> list[str]:
        """Check manifests and objects; returns the problems found (empty if all is well).

        Parameters
        ----------
        snapshot_id
            Check this snapshot and its ancestors; ``None`` checks every snapshot.
        """
        problems: list[str] = []
        todo = [self.resolve(snapshot_id)] if snapshot_id is not None else self.list_snapshots()
        checked_objects: dict[str, str | None] = {}
        seen: set[str] = set()
        while todo:
            sid = todo.pop()
            if sid in seen:
                continue
            seen.add(sid)
            try:
                m = self.manifest(sid)
            except (StoreCorruptionError, IncompatibleVersionError, RefNotFoundError) as e:
                problems.append(e.message)
                continue
            if m.parent is not None:
                if self.has_snapshot(m.parent):
                    if snapshot_id is not None:
                        todo.append(m.parent)
                else:
                    problems.append(f"snapshot {_short(sid)}: parent {_short(m.parent)} is missing")
            for path, h in m.parts.items():
                if h not in checked_objects:
                    try:
                        self._read_object(h, path, sid, "verify")
                        checked_objects[h] = None
                    except (StoreCorruptionError, IncompatibleVersionError, InvalidDataError) as e:
                        # InvalidDataError: a chunked header whose blocks do not fit its node
                        checked_objects[h] = e.message
                        problems.append(f"object {_short(h)} ({path}): {e.message}")
                elif checked_objects[h] is not None:
                    problems.append(
                        f"part {path!r} of snapshot {_short(sid)} uses damaged object {_short(h)}"
                    )
        return problems

    def stored_bytes(self, snapshot_ids: Iterable[str] | None = None) -> int:
        """Bytes on disk of the given snapshots (shared objects counted once); all if ``None``."""
        ids = (
            self.list_snapshots()
            if snapshot_ids is None
            else [self.resolve(s) for s in snapshot_ids]
        )
        objects: set[str] = set()
        total = 0
        for sid in ids:
            total += self._manifest_path(sid).stat().st_size
            objects.update(self.manifest(sid).parts.values())
        for h in objects:
            p = self._object_path(h)
            if p.is_file():
                total += p.stat().st_size
        return total

    def __repr__(self) -> str:
        return f"SnapshotStore({str(self.root)!r})"


def _compress(piece: np.ndarray) -> tuple[bytes, int]:
    c = _CODEC.encode(piece)
    return c, zlib.crc32(c)


def _decompress(job: tuple[bytes, int, int, np.ndarray]) -> bytes | str:
    """Decompress one chunk into its slot; returns the chunk's SHA-256, or what is wrong."""
    c, clen, crc, out = job
    # Blosc trusts its input: check length and CRC before it touches the bytes
    if len(c) != clen or zlib.crc32(c) != crc:
        return "is damaged (checksum mismatch)"
    try:
        _CODEC.decode(c, out=out)
    except Exception as e:
        return f"is damaged (cannot decompress: {e})"
    return hashlib.sha256(out).digest()


def _typesize(dtype: np.dtype) -> int:
    """Element width for Blosc's byte shuffle: the scalar width for plain dtypes."""
    if dtype.names is None and dtype.itemsize in (2, 4, 8) and dtype.kind != "U":
        return dtype.itemsize
    if dtype.kind == "U":
        return 4
    return 1


def _scagent_version() -> str:
    from scagent import __version__

    return __version__
