"""Where activations come from (an embedding, a file, a transformer) and the chunked disk cache they stream from.

Every source yields :class:`ActivationBatch` es through one interface,
``ActivationSource.iter_batches(adata)``; :func:`cache_activations` writes them to a folder
of ``.npy`` chunks with a ``meta.json`` (source, layer, model hash, gene ids), and
:class:`ActivationCache` streams them back chunk by chunk: no step holds all activations
in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from scagent.errors import (
    CorruptInputError,
    DataStateError,
    InputNotFoundError,
    InvalidDataError,
    InvalidParameterError,
    MissingDependencyError,
    UnsupportedFormatError,
)

__all__ = [
    "ActivationBatch",
    "ActivationCache",
    "ActivationSource",
    "FileSource",
    "HFSource",
    "MatrixSource",
    "NonFiniteActivationsError",
    "ObsmSource",
    "TahoeSource",
    "VocabularyMismatchError",
    "cache_activations",
    "check_finite",
    "parse_source",
    "write_cache",
]

CACHE_FORMAT = "scagent-activations/1"


class NonFiniteActivationsError(InvalidDataError):
    """Activations contain NaN or Inf (exit code 6, as InvalidDataError)."""

    default_remedy = "check the model's numerics (fp16 overflow?) or the input data for NaN"


class VocabularyMismatchError(InvalidDataError):
    """None (or too few) of the data's genes are in the model's token dictionary (exit code 6)."""


class ActivationBatch(NamedTuple):
    """One batch of activations.

    ``cell_ids`` has one entry per row (per-token sources repeat a cell's id for each of its
    tokens); ``token_gene_ids`` gives, per row, the index of the token's gene in the source's
    gene list, or is None for per-cell sources.
    """

    cell_ids: np.ndarray
    activations: np.ndarray
    token_gene_ids: np.ndarray | None = None


@runtime_checkable
class ActivationSource(Protocol):
    """Anything that turns an AnnData into activation batches."""

    name: str

    def iter_batches(self, adata: AnnData, batch_size: int = 1024) -> Iterator[ActivationBatch]:
        """Yield activation batches, in cell order."""
        ...

    def metadata(self) -> dict[str, Any]:
        """What to record with the cache: source, layer, model hash, gene ids, ..."""
        ...


def check_finite(activations: np.ndarray, batch_index: int, where: str = "activations") -> None:
    """Raise :class:`NonFiniteActivationsError` naming the batch when NaN/Inf are present."""
    if not np.isfinite(activations).all():
        n_nan = int(np.isnan(activations).sum())
        n_inf = int(np.isinf(activations).sum())
        raise NonFiniteActivationsError(
            f"{where}: batch {batch_index} contains {n_nan} NaN and {n_inf} Inf value(s)"
        )


# --------------------------------------------------------------------------- simple sources


@dataclass
class ObsmSource:
    """Activations already in ``adata.obsm[key]`` (X_pca, X_scVI, a model's cell embedding)."""

    key: str
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"obsm:{self.key}"

    def iter_batches(self, adata: AnnData, batch_size: int = 4096) -> Iterator[ActivationBatch]:
        if self.key not in adata.obsm:
            raise DataStateError(
                f"adata.obsm has no {self.key!r} (it has: {sorted(adata.obsm) or 'nothing'})",
                remedy=f"compute {self.key} first (e.g. `scagent run pca`) or pick another key",
            )
        matrix = adata.obsm[self.key]
        ids = adata.obs_names.to_numpy()
        for start in range(0, adata.n_obs, batch_size):
            block = matrix[start : start + batch_size]
            block = block.toarray() if sparse.issparse(block) else np.asarray(block)
            yield ActivationBatch(ids[start : start + batch_size], block.astype(np.float32))

    def metadata(self) -> dict[str, Any]:
        return {"source": self.name, "layer": None, "model_hash": None, "gene_ids": None}


@dataclass
class MatrixSource:
    """The expression matrix itself as activations: ``X``, ``raw`` (``.raw.X``) or ``layer:NAME``.

    A baseline "model": an SAE on log-normalized genes finds gene programs directly.
    """

    where: str
    name: str = field(init=False)
    _names: pd.Index | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.name = self.where if self.where in ("X", "raw") else f"layer:{self.where}"

    def _matrix(self, adata: AnnData) -> tuple[Any, pd.Index]:
        if self.where == "X":
            return adata.X, adata.var_names
        if self.where == "raw":
            if adata.raw is None:
                raise DataStateError("source 'raw' asked for but adata.raw is absent")
            return adata.raw.X, adata.raw.var_names
        if self.where not in adata.layers:
            raise DataStateError(
                f"adata.layers has no {self.where!r} (it has: {sorted(adata.layers) or 'nothing'})"
            )
        return adata.layers[self.where], adata.var_names

    def iter_batches(self, adata: AnnData, batch_size: int = 4096) -> Iterator[ActivationBatch]:
        matrix, self._names = self._matrix(adata)
        ids = adata.obs_names.to_numpy()
        for start in range(0, adata.n_obs, batch_size):
            block = matrix[start : start + batch_size]
            block = block.toarray() if sparse.issparse(block) else np.asarray(block)
            yield ActivationBatch(ids[start : start + batch_size], block.astype(np.float32))

    def metadata(self) -> dict[str, Any]:
        meta = {"source": self.name, "layer": None, "model_hash": None, "gene_ids": None}
        if self._names is not None:
            # Each input dimension is a gene: the decoder rows are gene programs.
            meta["feature_names"] = [str(g) for g in self._names]
        return meta


@dataclass
class FileSource:
    """Precomputed per-cell activations: ``.npy`` (memory-mapped), ``.pt`` or ``.zarr``.

    Cell ids come from the file when it has them (``.pt`` dict key ``cell_ids``, zarr array
    ``cell_ids``, or a sibling ``<name>.cell_ids.txt`` for ``.npy``); otherwise the rows must
    match ``adata.obs_names`` one to one.
    """

    path: Path
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.name = f"file:{self.path}"

    def _open(self) -> tuple[Any, np.ndarray | None]:
        p = self.path
        if not p.exists():
            raise InputNotFoundError(f"activation file {str(p)!r} does not exist")
        suffix = p.suffix.lower()
        if suffix == ".npy":
            arr = np.load(p, mmap_mode="r")
            ids_file = p.with_name(p.stem + ".cell_ids.txt")
            ids = (
                np.array(ids_file.read_text().split("\n")[: arr.shape[0]])
                if ids_file.exists()
                else None
            )
            return arr, ids
        if suffix == ".pt":
            import torch

            obj = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                if "activations" not in obj:
                    raise CorruptInputError(f"{str(p)!r} is a dict without 'activations'")
                ids = obj.get("cell_ids")
                return obj["activations"].numpy(), None if ids is None else np.asarray(ids)
            return obj.numpy(), None
        if suffix == ".zarr" or p.is_dir():
            import zarr

            group = zarr.open_group(str(p), mode="r")
            ids = np.asarray(group["cell_ids"][:]).astype(str) if "cell_ids" in group else None
            return group["activations"], ids
        raise UnsupportedFormatError(
            f"activation file {str(p)!r} has an unknown type",
            remedy="use .npy, .pt (tensor or {'activations', 'cell_ids'}) or .zarr",
        )

    def iter_batches(self, adata: AnnData, batch_size: int = 4096) -> Iterator[ActivationBatch]:
        arr, ids = self._open()
        if len(arr.shape) != 2:
            raise InvalidDataError(
                f"{str(self.path)!r} has shape {tuple(arr.shape)}; expected cells x features"
            )
        if ids is None:
            if arr.shape[0] != adata.n_obs:
                raise InvalidDataError(
                    f"{str(self.path)!r} has {arr.shape[0]} rows but the data has {adata.n_obs} "
                    "cells, and the file carries no cell ids",
                    remedy="save the cell ids with the activations (see docs/sae.md)",
                )
            ids = adata.obs_names.to_numpy()
        for start in range(0, arr.shape[0], batch_size):
            block = np.asarray(arr[start : start + batch_size], dtype=np.float32)
            yield ActivationBatch(np.asarray(ids[start : start + batch_size]), block)

    def metadata(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "layer": None,
            "model_hash": _hash_files([self.path]),
            "gene_ids": None,
        }


def _hash_files(paths: Iterable[Path], limit: int = 1 << 30) -> str | None:
    h = hashlib.sha256()
    seen = False
    for path in sorted(paths):
        if path.is_file():
            seen = True
            h.update(path.name.encode())
            with open(path, "rb") as fh:
                # Hash at most `limit` bytes per file: enough to identify a checkpoint.
                remaining = limit
                while remaining > 0 and (block := fh.read(min(1 << 22, remaining))):
                    h.update(block)
                    remaining -= len(block)
    return h.hexdigest()[:16] if seen else None


# --------------------------------------------------------------------------- transformers


class _SafeUnpickler(pickle.Unpickler):
    # Geneformer ships its dictionaries as pickles; allow plain containers only.
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in {"dict", "list", "str", "int", "float", "tuple"}:
            return super().find_class(module, name)
        if module.startswith("numpy"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dictionary file")


def _read_dict(path: Path) -> dict[str, Any]:
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        with open(path, "rb") as fh:
            return dict(_SafeUnpickler(fh).load())
    except Exception as err:
        raise CorruptInputError(f"cannot read the dictionary {str(path)!r}: {err}") from err


def _find(folder: Path, stems: tuple[str, ...]) -> Path | None:
    for stem in stems:
        for ext in (".json", ".pkl", ".pickle"):
            if (folder / f"{stem}{ext}").is_file():
                return folder / f"{stem}{ext}"
    return None


def _id_type(names: Iterable[str]) -> str:
    names = [str(n) for n in names]
    if not names:
        return "unknown"
    ens = sum(n.startswith("ENS") for n in names) / len(names)
    return "Ensembl gene ids (ENSG...)" if ens > 0.5 else "gene symbols"


def _expression_for_ranking(adata: AnnData) -> tuple[Any, pd.Index, pd.DataFrame, str]:
    """A non-negative, linear-scale expression matrix to rank genes within each cell."""
    from scagent.data import get_counts, inspect_adata

    state = inspect_adata(adata)
    counts = get_counts(adata, state)
    if counts is not None:
        var = adata.raw.var if state.counts_location == "raw" else adata.var
        names = adata.raw.var_names if state.counts_location == "raw" else adata.var_names
        return counts, names, var, f"raw counts ({state.counts_location})"
    # Ranks within a cell ignore per-cell scale factors, so log-normalized data undone by
    # expm1 ranks exactly as the normalized counts would.
    if adata.raw is not None and state.raw_state == "log_normalized":
        X = adata.raw.X
        X = X.expm1() if sparse.issparse(X) else np.expm1(X)
        return X, adata.raw.var_names, adata.raw.var, "expm1(.raw) (log-normalized)"
    if state.x_state == "log_normalized":
        X = adata.X.expm1() if sparse.issparse(adata.X) else np.expm1(adata.X)
        return X, adata.var_names, adata.var, "expm1(X) (log-normalized)"
    raise DataStateError(
        f"rank-value tokenization needs counts or log-normalized data; X is {state.x_state}, "
        f".raw is {state.raw_state or 'absent'}",
        remedy="load the count matrix or put counts in layers['counts']",
    )


@dataclass
class HFSource:
    """A BERT-style HuggingFace encoder (e.g. Geneformer) from a local folder.

    Each cell is rank-value tokenized: expression normalised to 10,000 per cell, divided by
    the gene's median (``gene_median_dictionary`` in the folder, else the non-zero median in
    this data), genes sorted by that value, mapped through ``token_dictionary`` and cut to
    ``max_tokens`` (a ``<cls>`` token first when the dictionary has one). A forward hook on
    layer ``layer`` records its MLP output (``hook='mlp_out'``, the output of the
    feed-forward block before the residual) or the layer's output (``hook='layer_out'``).

    Parameters
    ----------
    path
        Folder with ``config.json``, the weights and ``token_dictionary.{json,pkl}``.
    layer
        Index of the encoder layer to hook (negative counts from the end).
    pooling
        ``'mean'`` over gene tokens or ``'cls'`` (one row per cell), or ``'none'`` (one row
        per gene token, with ``token_gene_ids``).
    max_tokens
        Maximum sequence length, including ``<cls>``.
    device
        Torch device.
    min_match_rate
        Stop with :class:`VocabularyMismatchError` below this share of matched genes.
    """

    path: Path
    layer: int = -1
    pooling: str = "mean"
    hook: str = "mlp_out"
    max_tokens: int = 2048
    device: str = "cpu"
    min_match_rate: float = 0.0
    name: str = field(init=False)
    match_rate: float | None = field(default=None, init=False)
    matched_on: str | None = field(default=None, init=False)
    gene_ids: list[str] | None = field(default=None, init=False)
    _hash: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.name = f"hf:{self.path}"
        if self.pooling not in ("mean", "cls", "none"):
            raise InvalidParameterError(
                f"pooling={self.pooling!r}; expected 'mean', 'cls' or 'none' (per token)"
            )
        if self.hook not in ("mlp_out", "layer_out"):
            raise InvalidParameterError(f"hook={self.hook!r}; expected 'mlp_out' or 'layer_out'")

    def _load(self) -> tuple[Any, dict[str, int], dict[str, float] | None]:
        if not self.path.is_dir():
            raise InputNotFoundError(
                f"model folder {str(self.path)!r} does not exist",
                remedy="pass a local folder saved with save_pretrained (no hub downloads)",
            )
        try:
            import torch  # noqa: F401
            import transformers
        except ImportError as err:
            raise MissingDependencyError(
                f"the hf source needs transformers and torch ({err.name} is missing)",
                remedy="pip install 'scagent[sae]' transformers",
            ) from err
        token_path = _find(self.path, ("token_dictionary", "token_dict", "vocab_dict"))
        if token_path is None:
            raise InputNotFoundError(
                f"no token dictionary in {str(self.path)!r}",
                remedy="add token_dictionary.json (gene id -> token id) to the model folder",
            )
        tokens = {str(k): int(v) for k, v in _read_dict(token_path).items()}
        median_path = _find(self.path, ("gene_median_dictionary", "gene_medians"))
        medians = (
            {str(k): float(v) for k, v in _read_dict(median_path).items()} if median_path else None
        )
        try:
            model = transformers.AutoModel.from_pretrained(str(self.path), local_files_only=True)
        except Exception as err:
            raise CorruptInputError(
                f"cannot load a transformers model from {str(self.path)!r}: {err}"
            ) from err
        self._hash = _hash_files(
            [p for p in self.path.iterdir() if p.suffix in {".json", ".safetensors", ".bin"}]
        )
        return model.eval().to(self.device), tokens, medians

    def _match(
        self, names: pd.Index, var: pd.DataFrame, tokens: dict[str, int]
    ) -> tuple[np.ndarray, str]:
        candidates = {"var_names": pd.Index(names.astype(str))}
        for col in ("gene_ids", "gene_id", "ensembl_id", "ensembl", "feature_id", "gene_symbols"):
            if col in var.columns:
                candidates[f"var[{col!r}]"] = pd.Index(var[col].astype(str))
        best, best_rate, best_ids = "var_names", -1.0, None
        for label, ids in candidates.items():
            token_ids = np.array([tokens.get(g, -1) for g in ids], dtype=np.int64)
            rate = float((token_ids >= 0).mean()) if len(ids) else 0.0
            if rate > best_rate:
                best, best_rate, best_ids = label, rate, token_ids
        self.match_rate, self.matched_on = best_rate, best
        expected = _id_type(k for k in tokens if not k.startswith("<"))
        if best_rate <= 0 or best_rate < self.min_match_rate:
            raise VocabularyMismatchError(
                f"{best_rate:.1%} of the data's {len(names)} genes are in the model's token "
                f"dictionary (best column: {best}); the dictionary expects {expected}, the "
                f"data has {_id_type(names)}",
                remedy=f"provide {expected} in var (e.g. var['gene_ids']) or use the matching model",
            )
        return best_ids, best

    def iter_batches(self, adata: AnnData, batch_size: int = 16) -> Iterator[ActivationBatch]:
        import torch

        model, tokens, medians = self._load()
        X, names, var, _ = _expression_for_ranking(adata)
        token_ids, matched_on = self._match(names, var, tokens)
        matched = np.flatnonzero(token_ids >= 0)
        self.gene_ids = [str(g) for g in names]
        X = X.tocsr() if sparse.issparse(X) else sparse.csr_matrix(X)
        # Normalise to 10k per cell over all genes, not only matched ones (Geneformer does so).
        totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
        X = X[:, matched].astype(np.float64)
        id_col = (
            names.astype(str) if matched_on == "var_names" else var[matched_on[5:-2]].astype(str)
        )
        gene_keys = np.asarray(id_col)[matched]
        if medians is not None:
            med = np.array([medians.get(g, np.nan) for g in gene_keys])
        else:
            med = np.full(len(matched), np.nan)
        missing = ~np.isfinite(med) | (med <= 0)
        if missing.any():
            # Medians of this data stand in where the model did not ship its own.
            csc = X.tocsc()
            for j in np.flatnonzero(missing):
                col = csc.data[csc.indptr[j] : csc.indptr[j + 1]]
                med[j] = float(np.median(col)) if col.size else 1.0
        pad = tokens.get("<pad>", 0)
        cls = tokens.get("<cls>")
        n_genes_max = self.max_tokens - (1 if cls is not None else 0)
        layers = _encoder_layers(model)
        n_layers = len(layers)
        if not -n_layers <= self.layer < n_layers:
            raise InvalidParameterError(
                f"layer={self.layer} but the model has {n_layers} layers (0..{n_layers - 1})"
            )
        target = layers[self.layer]
        if self.hook == "mlp_out":
            target = _mlp_output_module(target)
        captured: dict[str, Any] = {}

        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            captured["out"] = output[0] if isinstance(output, tuple) else output

        handle = target.register_forward_hook(hook)
        ids = adata.obs_names.to_numpy()
        try:
            for start in range(0, adata.n_obs, batch_size):
                rows = X[start : start + batch_size]
                seqs, genes = [], []
                for r in range(rows.shape[0]):
                    lo, hi = rows.indptr[r], rows.indptr[r + 1]
                    cols, vals = rows.indices[lo:hi], rows.data[lo:hi]
                    keep = vals > 0
                    cols, vals = cols[keep], vals[keep]
                    scaled = vals / max(totals[start + r], 1e-12) * 1e4 / med[cols]
                    order = cols[np.argsort(-scaled, kind="stable")][:n_genes_max]
                    seqs.append(
                        ([cls] if cls is not None else []) + token_ids[matched[order]].tolist()
                    )
                    genes.append(matched[order])
                length = max(2, max(len(s) for s in seqs))
                input_ids = torch.full((len(seqs), length), pad, dtype=torch.long)
                attention = torch.zeros((len(seqs), length), dtype=torch.long)
                for r, s in enumerate(seqs):
                    input_ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
                    attention[r, : len(s)] = 1
                with torch.no_grad():
                    model(
                        input_ids=input_ids.to(self.device),
                        attention_mask=attention.to(self.device),
                    )
                acts = captured["out"].float().cpu().numpy()
                offset = 1 if cls is not None else 0
                batch_ids = ids[start : start + len(seqs)]
                if self.pooling == "none":
                    out_rows, out_cells, out_genes = [], [], []
                    for r, g in enumerate(genes):
                        out_rows.append(acts[r, offset : offset + len(g)])
                        out_cells.append(np.repeat(batch_ids[r], len(g)))
                        out_genes.append(g.astype(np.int32))
                    yield ActivationBatch(
                        np.concatenate(out_cells),
                        np.concatenate(out_rows).astype(np.float32),
                        np.concatenate(out_genes),
                    )
                elif self.pooling == "cls":
                    if cls is None:
                        raise InvalidParameterError(
                            "pooling='cls' but the token dictionary has no '<cls>' token",
                            remedy="use pooling='mean'",
                        )
                    yield ActivationBatch(batch_ids, acts[:, 0].astype(np.float32))
                else:
                    pooled = np.stack(
                        [
                            acts[r, offset : offset + len(g)].mean(axis=0)
                            if len(g)
                            else np.zeros(acts.shape[-1], dtype=np.float32)
                            for r, g in enumerate(genes)
                        ]
                    )
                    yield ActivationBatch(batch_ids, pooled.astype(np.float32))
        finally:
            handle.remove()

    def metadata(self) -> dict[str, Any]:
        return {
            "source": self.name,
            "layer": self.layer,
            "hook": self.hook,
            "pooling": self.pooling,
            "model_hash": self._hash,
            "gene_ids": self.gene_ids if self.pooling == "none" else None,
            "match_rate": self.match_rate,
            "matched_on": self.matched_on,
        }


def _encoder_layers(model: Any) -> Any:
    base = getattr(model, "base_model", model)
    encoder = getattr(base, "encoder", None)
    layers = getattr(encoder, "layer", None) if encoder is not None else None
    if layers is None:
        raise InvalidParameterError(
            f"{type(model).__name__} has no encoder.layer list; the hf source takes BERT-style encoders"
        )
    return layers


def _mlp_output_module(layer: Any) -> Any:
    # BERT: layer.output.dense is the second feed-forward projection (before residual + LN).
    output = getattr(layer, "output", None)
    dense = getattr(output, "dense", None)
    if dense is None:
        raise InvalidParameterError(
            f"{type(layer).__name__} has no output.dense (MLP output); use hook='layer_out'"
        )
    return dense


@dataclass
class TahoeSource:
    """Tahoe-x1 through its own package (``tahoe_x1``), hooked at ``blocks.N.hook_mlp_out``.

    Meant for GPU machines; only the import and the hook wiring live here, the model's own
    tokenizer and collator do the rest.
    """

    size: str = "70m"
    layer: int = -1
    device: str = "cuda"
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"tahoe:{self.size}"

    def iter_batches(self, adata: AnnData, batch_size: int = 32) -> Iterator[ActivationBatch]:
        try:
            import tahoe_x1  # type: ignore[import-not-found]
        except ImportError as err:
            raise MissingDependencyError(
                "the tahoe source needs the tahoe_x1 package, which is not installed",
                remedy="pip install git+https://github.com/tahoebio/tahoe-x1 (GPU machine)",
            ) from err
        model, prepare = tahoe_x1.load(self.size, device=self.device)  # pragma: no cover
        hook_name = f"blocks.{self.layer}.hook_mlp_out"  # pragma: no cover
        try:  # pragma: no cover
            target = model.get_submodule(hook_name)
        except AttributeError as err:  # pragma: no cover
            raise InvalidParameterError(f"Tahoe-x1 {self.size} has no module {hook_name}") from err
        captured: dict[str, Any] = {}  # pragma: no cover
        handle = target.register_forward_hook(lambda _m, _i, o: captured.__setitem__("out", o))
        try:  # pragma: no cover
            for cell_ids, batch in prepare(adata, batch_size=batch_size):
                model(**batch)
                acts = captured["out"].float().mean(dim=1).cpu().numpy()
                yield ActivationBatch(np.asarray(cell_ids), acts)
        finally:  # pragma: no cover
            handle.remove()

    def metadata(self) -> dict[str, Any]:
        return {"source": self.name, "layer": self.layer, "model_hash": None, "gene_ids": None}


def parse_source(spec: str, layer: int | None = None, **options: Any) -> ActivationSource:
    """Turn ``obsm:KEY``, ``X``, ``raw``, ``layer:NAME``, ``file:PATH``, ``hf:PATH`` or ``tahoe:SIZE`` into a source."""
    if spec in ("X", "raw"):
        return MatrixSource(spec)
    kind, _, value = spec.partition(":")
    if not value:
        raise InvalidParameterError(
            f"activation source {spec!r} is not KIND:VALUE",
            remedy="use obsm:X_pca, file:acts.npy, hf:MODEL_FOLDER or tahoe:70m",
        )
    if kind == "obsm":
        return ObsmSource(value)
    if kind == "layer":
        return MatrixSource(value)
    if kind == "file":
        return FileSource(Path(value))
    if kind == "hf":
        return HFSource(Path(value), layer=-1 if layer is None else layer, **options)
    if kind == "tahoe":
        return TahoeSource(value, layer=-1 if layer is None else layer, **options)
    raise InvalidParameterError(
        f"unknown activation source kind {kind!r} in {spec!r}",
        remedy="use obsm:, file:, hf: or tahoe:",
    )


# --------------------------------------------------------------------------- the disk cache


def write_cache(
    batches: Iterable[ActivationBatch],
    folder: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
    chunk_rows: int = 32768,
    dtype: str = "float32",
) -> ActivationCache:
    """Stream batches into a chunked cache folder, atomically (a temp folder renamed at the end).

    Files: ``meta.json``, ``cell_ids.txt`` (one id per line), and per chunk
    ``acts_NNNNN.npy`` (rows x d_in), ``cells_NNNNN.npy`` (int64 row -> cell index) and, for
    per-token sources, ``genes_NNNNN.npy`` (int32 row -> gene index).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        buf_acts: list[np.ndarray] = []
        buf_cells: list[np.ndarray] = []
        buf_genes: list[np.ndarray] = []
        n_buf = n_rows = n_cells = 0
        chunks: list[int] = []
        d_in: int | None = None
        per_token: bool | None = None
        last_id: str | None = None
        ids_fh = open(tmp / "cell_ids.txt", "w", encoding="utf-8")

        def flush() -> None:
            nonlocal n_buf
            if not n_buf:
                return
            i = len(chunks)
            np.save(tmp / f"acts_{i:05d}.npy", np.concatenate(buf_acts).astype(dtype, copy=False))
            np.save(tmp / f"cells_{i:05d}.npy", np.concatenate(buf_cells))
            if per_token:
                np.save(tmp / f"genes_{i:05d}.npy", np.concatenate(buf_genes))
            chunks.append(n_buf)
            buf_acts.clear(), buf_cells.clear(), buf_genes.clear()
            n_buf = 0

        with ids_fh:
            for b_index, batch in enumerate(batches):
                acts = np.asarray(batch.activations)
                if acts.ndim != 2 or acts.shape[0] != len(batch.cell_ids):
                    raise InvalidDataError(
                        f"batch {b_index}: activations of shape {acts.shape} for "
                        f"{len(batch.cell_ids)} cell ids"
                    )
                check_finite(acts, b_index)
                if d_in is None:
                    d_in, per_token = acts.shape[1], batch.token_gene_ids is not None
                elif acts.shape[1] != d_in:
                    raise InvalidDataError(f"batch {b_index} has width {acts.shape[1]}, not {d_in}")
                # Cells arrive in order, a cell's tokens contiguous: number them as they come.
                ids = np.asarray(batch.cell_ids).astype(str)
                new = np.ones(len(ids), dtype=bool)
                new[1:] = ids[1:] != ids[:-1]
                if len(ids) and ids[0] == last_id:
                    new[0] = False
                index = n_cells - 1 + np.cumsum(new)
                if new.any():
                    ids_fh.write("\n".join(ids[new]) + "\n")
                n_cells += int(new.sum())
                last_id = ids[-1] if len(ids) else last_id
                start = 0
                while start < len(acts):
                    take = min(chunk_rows - n_buf, len(acts) - start)
                    buf_acts.append(acts[start : start + take])
                    buf_cells.append(index[start : start + take].astype(np.int64))
                    if per_token:
                        buf_genes.append(
                            np.asarray(batch.token_gene_ids[start : start + take], dtype=np.int32)
                        )
                    n_buf += take
                    n_rows += take
                    start += take
                    if n_buf >= chunk_rows:
                        flush()
            flush()
        if not n_rows:
            raise InvalidDataError("the activation source yielded no rows")
        meta = {
            "format": CACHE_FORMAT,
            "n_rows": n_rows,
            "n_cells": n_cells,
            "d_in": d_in,
            "dtype": dtype,
            "per_token": bool(per_token),
            "chunk_rows": chunks,
            **(metadata or {}),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ActivationCache(folder)


def cache_activations(
    source: ActivationSource,
    adata: AnnData,
    folder: str | os.PathLike[str],
    batch_size: int | None = None,
    chunk_rows: int = 32768,
) -> ActivationCache:
    """Run ``source`` over ``adata`` and stream the activations into a cache folder."""
    batches = (
        source.iter_batches(adata) if batch_size is None else source.iter_batches(adata, batch_size)
    )

    def with_meta() -> Iterator[ActivationBatch]:
        yield from batches

    cache = write_cache(with_meta(), folder, metadata=None, chunk_rows=chunk_rows)
    # The source knows its metadata (match rate, hash) only after it ran.
    meta = json.loads((cache.folder / "meta.json").read_text())
    meta.update(source.metadata())
    (cache.folder / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    return ActivationCache(cache.folder)


class ActivationCache:
    """A cache folder written by :func:`write_cache`, read chunk by chunk."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise InputNotFoundError(
                f"no activation cache in {str(self.folder)!r} (meta.json missing)",
                remedy="create it with `scagent sae activations`",
            )
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        if self.meta.get("format") != CACHE_FORMAT:
            raise CorruptInputError(f"{str(meta_path)!r} is not a {CACHE_FORMAT} cache")
        self.n_rows: int = int(self.meta["n_rows"])
        self.d_in: int = int(self.meta["d_in"])
        self.per_token: bool = bool(self.meta["per_token"])
        self.chunk_sizes: list[int] = list(self.meta["chunk_rows"])

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_sizes)

    def cell_ids(self) -> np.ndarray:
        """All cell ids, in cache order (per-token caches: one per cell, not per row)."""
        text = (self.folder / "cell_ids.txt").read_text(encoding="utf-8")
        return np.array(text.split("\n")[: int(self.meta["n_cells"])])

    def load_chunk(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Activations, cell indices and token gene indices of chunk ``i`` (read into memory)."""
        acts = np.load(self.folder / f"acts_{i:05d}.npy")
        cells = np.load(self.folder / f"cells_{i:05d}.npy")
        genes = np.load(self.folder / f"genes_{i:05d}.npy") if self.per_token else None
        return acts, cells, genes

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """Chunks in order."""
        for i in range(self.n_chunks):
            yield self.load_chunk(i)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """About ``n`` rows drawn evenly from every chunk (for normalisation statistics)."""
        rng = np.random.default_rng(seed)
        per = max(1, int(np.ceil(n / self.n_chunks)))
        out = []
        for i, size in enumerate(self.chunk_sizes):
            mm = np.load(self.folder / f"acts_{i:05d}.npy", mmap_mode="r")
            rows = np.sort(rng.choice(size, size=min(per, size), replace=False))
            out.append(np.asarray(mm[rows], dtype=np.float32))
            del mm
        return np.concatenate(out)[:n]

    def iter_batches(self, batch_size: int, seed: int = 0, window: int = 2) -> Iterator[np.ndarray]:
        """Shuffled training batches forever: chunk order shuffled per epoch, rows shuffled
        within a window of ``window`` chunks; at most ``window`` chunks in memory."""
        rng = np.random.default_rng(seed)
        carry = np.empty((0, self.d_in), dtype=np.float32)
        while True:
            order = rng.permutation(self.n_chunks)
            for w in range(0, len(order), window):
                parts = [carry] + [
                    np.load(self.folder / f"acts_{i:05d}.npy") for i in order[w : w + window]
                ]
                pool = np.concatenate(parts)
                del parts
                pool = pool[rng.permutation(len(pool))].astype(np.float32, copy=False)
                n_full = len(pool) // batch_size
                for b in range(n_full):
                    yield pool[b * batch_size : (b + 1) * batch_size]
                carry = pool[n_full * batch_size :].copy()
                del pool
