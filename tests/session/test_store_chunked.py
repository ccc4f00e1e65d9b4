"""Chunked (dask) parts in the snapshot store: streamed writes, a hash equal to the in-memory
one whatever the row chunking, lazy reads, verification, failed writes, and a lazy session."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from scagent.errors import StoreCorruptionError
from scagent.session.store import SnapshotStore, hash_adata_parts

da = pytest.importorskip("dask.array")

N_CELLS, N_GENES, CHUNK = 20_000, 2_000, 3_000


@pytest.fixture(scope="module")
def counts_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The simulator's counts (20k x 2k CSR) in memory and written as .h5ad and .zarr."""
    from scagent.data import simulate

    folder = tmp_path_factory.mktemp("chunked")
    adata = simulate(N_CELLS, N_GENES, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_h5ad(folder / "counts.h5ad")
        adata.write_zarr(folder / "counts.zarr")
    return {"adata": adata, "h5ad": folder / "counts.h5ad", "zarr": folder / "counts.zarr"}


def _lazy(path: Path, chunk_cells: int = CHUNK) -> ad.AnnData:
    from scagent.scale import read_lazy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_lazy(path, chunk_cells=chunk_cells)


def _same_csr(a: Any, b: Any) -> bool:
    return a.shape == b.shape and (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_lazy_snapshot_hashes_like_memory_and_reads_back(tmp_path, counts_files, fmt) -> None:
    memory = counts_files["adata"]
    lazy = _lazy(counts_files[fmt])
    assert isinstance(lazy.X, da.Array) and len(lazy.X.chunks[0]) == 7
    store = SnapshotStore(tmp_path / "store")
    info = store.write_snapshot(lazy)
    assert "X" in info.written_parts
    assert info.manifest.parts["X"] == hash_adata_parts(memory)["X"]
    # a chunked object: a header of row blocks (object format 2), not one big array
    assert store.read_part(info.id, "X").shape == memory.shape
    back_lazy = store.read_part(info.id, "X", lazy=True)
    assert isinstance(back_lazy, da.Array)
    assert [len(c) for c in back_lazy.chunks] == [7, 1]
    assert _same_csr(back_lazy.compute(), memory.X)
    back = store.read_part(info.id, "X")
    assert sp.issparse(back) and _same_csr(back, memory.X)
    assert back.indptr.dtype == memory.X.indptr.dtype
    # the in-memory twin deduplicates against the chunked object, and the other way round
    again = store.write_snapshot(memory, parent=info.id)
    assert again.manifest.parts["X"] == info.manifest.parts["X"]
    assert "X" not in again.written_parts
    assert store.verify() == []


def test_hash_does_not_depend_on_chunking(counts_files) -> None:
    X = counts_files["adata"].X[:5_000]
    expected = hash_adata_parts(ad.AnnData(X))["X"]
    for rows in (997, 2_500, 5_000):
        lazy = ad.AnnData(da.from_array(X, chunks=(rows, -1), asarray=False))
        assert hash_adata_parts(lazy)["X"] == expected, rows
    dense = X[:800].toarray()
    expected = hash_adata_parts(ad.AnnData(dense))["X"]
    lazy = ad.AnnData(da.from_array(dense, chunks=(333, 700)))  # column chunks too
    assert hash_adata_parts(lazy)["X"] == expected
    changed = dense.copy()
    changed[799, 5] += 1
    assert hash_adata_parts(ad.AnnData(da.from_array(changed, chunks=(333, -1))))["X"] != expected


def test_layers_and_obsm_may_be_dask(tmp_path, counts_files) -> None:
    X = counts_files["adata"].X[:4_000]
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(4_000, 12)).astype(np.float32)
    adata = ad.AnnData(
        X.copy(),
        layers={"counts": da.from_array(X, chunks=(1_500, -1), asarray=False)},
        obsm={"X_emb": da.from_array(emb, chunks=(900, 5))},
    )
    store = SnapshotStore(tmp_path / "store")
    info = store.write_snapshot(adata)
    assert info.manifest.parts["layers/counts"] == info.manifest.parts["X"]  # one object
    back = store.read_snapshot(info.id)
    assert _same_csr(back.layers["counts"], X)
    assert np.array_equal(back.obsm["X_emb"], emb)
    lazy = store.read_snapshot(info.id, lazy=True)
    assert isinstance(lazy.obsm["X_emb"], da.Array)
    assert np.array_equal(lazy.obsm["X_emb"].compute(), emb)
    # re-snapshotting what was read lazily reads nothing and writes nothing new
    assert store.write_snapshot(lazy, parent=info.id).written_parts == ()


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_damaged_block_is_detected(tmp_path, counts_files) -> None:
    X = counts_files["adata"].X[:6_000]
    store = SnapshotStore(tmp_path / "store")
    info = store.write_snapshot(ad.AnnData(da.from_array(X, chunks=(2_000, -1), asarray=False)))
    obj = store._object_path(info.manifest.parts["X"])
    _flip_byte(obj, obj.stat().st_size // 3)  # inside the compressed blocks
    problems = store.verify()
    assert len(problems) == 1 and "'X'" in problems[0]
    with pytest.raises(StoreCorruptionError, match="'X'"):
        store.read_part(info.id, "X")
    with pytest.raises(StoreCorruptionError):
        store.read_part(info.id, "X", lazy=True).compute()


def test_failed_chunked_write_leaves_the_store_as_it_was(tmp_path, counts_files) -> None:
    X = counts_files["adata"].X[:6_000]
    store = SnapshotStore(tmp_path / "store")
    first = store.write_snapshot(ad.AnnData(X[:100].toarray()))

    def explode(block: Any, block_info: Any = None) -> Any:
        if block_info[0]["chunk-location"][0] == 2:
            raise RuntimeError("disk went away")
        return block

    broken = da.from_array(X, chunks=(1_000, -1), asarray=False).map_blocks(
        explode, dtype=X.dtype, meta=sp.csr_matrix((0, 0), dtype=X.dtype)
    )
    with pytest.raises(RuntimeError, match="disk went away"):
        store.write_snapshot(ad.AnnData(broken), parent=first.id)
    # no manifest, no half-written object, no temporary file; what was there still reads
    assert store.list_snapshots() == [first.id]
    assert not [p for p in store.root.rglob("*") if p.name.startswith(".")]
    objects = [p for p in store.objects_dir.rglob("*") if p.is_file()]
    assert all(p.read_bytes()[-8:] == b"SCAGEND\x01" for p in objects)
    assert store.verify() == []
    assert store.read_snapshot(first.id).shape == (100, N_GENES)


def test_session_on_lazy_data_stays_lazy(tmp_path, counts_files) -> None:
    from scagent.session import Session

    lazy = _lazy(counts_files["zarr"], chunk_cells=5_000)
    session = Session.init(tmp_path / "proj", data=lazy)
    import_x = session.store.manifest(session.head()).parts["X"]
    assert import_x == hash_adata_parts(counts_files["adata"])["X"]
    assert session.state.x_state == "raw_counts" and session.state.n_obs == N_CELLS

    run = session.run("qc_metrics")  # the registered tool, on a dask X
    assert isinstance(session.adata.X, da.Array)
    manifest = session.store.manifest(run.snapshot_id)
    assert manifest.parts["X"] == import_x  # X untouched: no new object, no re-read
    assert np.allclose(
        session.adata.obs["total_counts"], np.asarray(counts_files["adata"].X.sum(axis=1)).ravel()
    )

    run = session.run("preprocess_lazy", n_top_genes=300, n_comps=10)
    manifest = session.store.manifest(run.snapshot_id)
    assert manifest.parts["layers/counts"] == import_x  # the counts layer is the import's X
    assert manifest.parts["X"] != import_x  # log-normalized X: a new chunked part
    assert session.adata.obsm["X_pca"].shape == (N_CELLS, 10)

    # a fresh process opens the project lazily and sees the same log-normalized values
    reopened = Session.open(tmp_path / "proj")
    X = reopened.store.read_part(run.snapshot_id, "X", lazy=True)
    assert isinstance(X, da.Array)
    first = X.blocks[0].compute()
    expected = session.adata.X.blocks[0].compute()
    assert np.allclose(first.toarray(), expected.toarray())
    assert reopened.store.verify() == []


@pytest.mark.slow
def test_lazy_snapshot_memory_stays_far_below_the_matrix(tmp_path) -> None:
    """Peak traced memory while snapshotting a 500k-cell lazy X (800 MB as CSR) vs its size."""
    import json
    import subprocess
    import sys

    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, check=True
    )
    numbers = json.loads(out.stdout.strip().splitlines()[-1])
    print(numbers)
    assert numbers["problems"] == []
    # a few 32 MB row blocks in flight (and their generator's temporaries), not the matrix
    assert numbers["peak_bytes"] < numbers["matrix_bytes"] / 3


MEASURE = """
import json, sys, time, tracemalloc, warnings
from pathlib import Path
import anndata as ad, dask, dask.array as da, numpy as np, scipy.sparse as sp
from scagent.session.store import SnapshotStore
warnings.simplefilter("ignore")
n_cells, n_genes, step, per_row = 500_000, 2_000, 20_000, 200

def block(i):
    # CSR made directly: small temporaries, so the peak is the store's, not the generator's
    rng = np.random.default_rng(i)
    indices = np.sort(rng.integers(0, n_genes, size=(step, per_row)), axis=1).astype(np.int32)
    data = rng.integers(1, 10, size=step * per_row).astype(np.float32)
    indptr = np.arange(0, step * per_row + 1, per_row, dtype=np.int32)
    return sp.csr_matrix((data, indices.ravel(), indptr), shape=(step, n_genes))

meta = sp.csr_matrix((0, n_genes), dtype=np.float32)
X = da.concatenate([
    da.from_delayed(dask.delayed(block)(i), shape=(step, n_genes), dtype=np.float32, meta=meta)
    for i in range(n_cells // step)
])
nnz = n_cells * per_row
matrix_bytes = nnz * (4 + 4) + (n_cells + 1) * 4  # CSR float32 data + int32 indices + indptr
store = SnapshotStore(Path(sys.argv[1]) / "store")
adata = ad.AnnData(X)
tracemalloc.start()
t = time.perf_counter()
info = store.write_snapshot(adata)
seconds = time.perf_counter() - t
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
t = time.perf_counter()
problems = store.verify()
verify_seconds = time.perf_counter() - t
size = store._object_path(info.manifest.parts["X"]).stat().st_size
print(json.dumps({"cells": n_cells, "genes": n_genes, "nnz": nnz, "matrix_bytes": matrix_bytes,
                  "peak_bytes": peak, "seconds": round(seconds, 2), "object_bytes": size,
                  "verify_seconds": round(verify_seconds, 2), "problems": problems}))
"""


def test_a_block_of_another_dtype_is_refused_not_cast(tmp_path) -> None:
    from scagent.errors import InvalidDataError
    from scagent.session.store import SnapshotStore

    values = np.arange(12, dtype=np.int64).reshape(6, 2)
    lying = da.from_array(values, chunks=(3, 2)).map_blocks(lambda b: b / 3, dtype=np.int64)
    adata = ad.AnnData(X=lying)
    store = SnapshotStore(tmp_path / "store")
    with pytest.raises(InvalidDataError, match="computes to float64"):
        store.write_snapshot(adata, parent=None, meta={})
    assert store.list_snapshots() == []
