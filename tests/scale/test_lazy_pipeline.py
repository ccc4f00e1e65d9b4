"""The dask path gives in-memory scanpy's answers, on .h5ad and .zarr, with bad inputs refused."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from scagent.errors import (
    DataStateError,
    InputNotFoundError,
    InvalidParameterError,
    UnsupportedFormatError,
)

CHUNK, N_TOP, N_COMPS = 5_000, 500, 20


def _subspace_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between the column spaces of a and b."""
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


def test_read_lazy_keeps_x_on_disk(counts_files):
    import dask.array as da

    from scagent.scale import is_lazy, read_lazy

    adata = read_lazy(counts_files["h5ad"], chunk_cells=CHUNK)
    assert is_lazy(adata)
    assert isinstance(adata.X, da.Array)
    assert adata.X.chunks[0] == (CHUNK,) * 4
    assert sparse.issparse(adata.X.blocks[1].compute())
    assert adata.uns["scagent"]["lazy_source"]["chunk_cells"] == CHUNK


def test_qc_matches_scanpy(lazy_result, reference):
    adata, _ = lazy_result
    # Integer totals must agree exactly; ratios and logs to float rounding.
    for col in ("n_genes_by_counts", "total_counts", "total_counts_mt", "total_counts_ribo"):
        np.testing.assert_array_equal(adata.obs[col].to_numpy(), reference.obs[col].to_numpy())
    for col in ("pct_counts_mt", "pct_counts_in_top_20_genes", "log1p_total_counts"):
        np.testing.assert_allclose(
            adata.obs[col].to_numpy(), reference.obs[col].to_numpy(), rtol=1e-5, atol=1e-6
        )
    for col in ("n_cells_by_counts", "total_counts"):
        np.testing.assert_array_equal(adata.var[col].to_numpy(), reference.var[col].to_numpy())
    np.testing.assert_allclose(
        adata.var["pct_dropout_by_counts"], reference.var["pct_dropout_by_counts"], rtol=1e-9
    )
    assert adata.var["mt"].sum() == reference.var["mt"].sum() > 0


def test_normalized_values_match(lazy_result, reference):
    adata, _ = lazy_result
    rows = slice(CHUNK - 50, CHUNK + 50)  # across a chunk boundary
    lazy_block = adata.X[rows].compute()
    np.testing.assert_allclose(
        lazy_block.toarray(), reference.X[rows].toarray(), rtol=1e-5, atol=1e-6
    )
    assert adata.uns["log1p"] is not None
    counts = adata.layers["counts"][rows].compute()
    assert np.all(np.mod(counts.data, 1) == 0)  # the lazy counts layer is the untouched input


def test_hvg_and_pca_match(lazy_result, reference):
    adata, summary = lazy_result
    hvg = adata.var["highly_variable"].to_numpy()
    ref_hvg = reference.var["highly_variable"].to_numpy()
    assert hvg.sum() == N_TOP == summary["n_hvg"]
    assert (hvg & ref_hvg).sum() / N_TOP >= 0.95
    assert adata.obsm["X_pca"].shape == (adata.n_obs, N_COMPS)
    assert isinstance(adata.obsm["X_pca"], np.ndarray)
    np.testing.assert_allclose(
        adata.uns["pca"]["variance_ratio"][:10],
        reference.uns["pca"]["variance_ratio"][:10],
        rtol=1e-3,
    )
    cosines = _subspace_cosines(adata.varm["PCs"][:, :5], reference.varm["PCs"][:, :5])
    assert cosines.min() > 0.999
    for j in range(5):  # the cell scores agree up to each component's sign
        r = np.corrcoef(adata.obsm["X_pca"][:, j], reference.obsm["X_pca"][:, j])[0, 1]
        assert abs(r) > 0.999


def test_zarr_gives_same_result(counts_files, lazy_result):
    from scagent.scale import preprocess_lazy, read_lazy

    zarr_data = read_lazy(counts_files["zarr"], chunk_cells=CHUNK)
    preprocess_lazy(zarr_data, n_top_genes=N_TOP, n_comps=N_COMPS)
    h5ad_data, _ = lazy_result
    np.testing.assert_array_equal(zarr_data.obs["total_counts"], h5ad_data.obs["total_counts"])
    np.testing.assert_array_equal(
        zarr_data.var["highly_variable"], h5ad_data.var["highly_variable"]
    )
    np.testing.assert_allclose(
        np.abs(zarr_data.obsm["X_pca"]), np.abs(h5ad_data.obsm["X_pca"]), rtol=1e-4, atol=1e-4
    )


def test_write_lazy_round_trip(lazy_result, tmp_path):
    import anndata as ad

    from scagent.scale import write_lazy

    adata, _ = lazy_result
    small = adata[:3000].copy()
    target = tmp_path / "out.zarr"
    write_lazy(small, target)
    write_lazy(small, target)  # replacing an existing store works and leaves no debris
    back = ad.read_zarr(target)
    np.testing.assert_allclose(back.X[:100].toarray(), small.X[:100].compute().toarray())
    np.testing.assert_array_equal(back.obsm["X_pca"], small.obsm["X_pca"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]
    with pytest.raises(UnsupportedFormatError):
        write_lazy(small, tmp_path / "out.csv")


def test_memory_guard_refuses_large_in_memory_read(counts_files, monkeypatch):
    import anndata as ad

    import scagent.data.memory as lazy  # the guard moved to scagent.data; scale re-exports it
    from scagent.scale import check_fits_in_memory, estimate_in_memory_bytes, read_checked

    need = estimate_in_memory_bytes(counts_files["h5ad"])
    X = ad.read_h5ad(counts_files["h5ad"]).X
    actual = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    assert 0.95 * actual <= need <= 1.5 * actual  # metadata-only estimate is close

    monkeypatch.setattr(lazy, "available_memory", lambda: need)  # fits once, not twice
    with pytest.raises(DataStateError) as err:
        read_checked(counts_files["h5ad"])
    assert "read_lazy" in err.value.remedy
    assert "counts.h5ad" in err.value.message
    with pytest.raises(DataStateError):
        check_fits_in_memory(counts_files["zarr"])
    monkeypatch.setattr(lazy, "available_memory", lambda: 100 * need)
    assert read_checked(counts_files["h5ad"]).n_obs == 20_000
    assert check_fits_in_memory(counts_files["zarr"]) == pytest.approx(need, rel=0.05)


def test_bad_inputs(tmp_path, counts_files):
    import anndata as ad

    from scagent.scale import preprocess_lazy, read_lazy

    with pytest.raises(InputNotFoundError):
        read_lazy(tmp_path / "missing.h5ad")
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    with pytest.raises(UnsupportedFormatError):
        read_lazy(table)
    with pytest.raises(InvalidParameterError):
        read_lazy(counts_files["h5ad"], chunk_cells=0)

    small = ad.read_h5ad(counts_files["h5ad"])[:500].copy()
    csc = small.copy()
    csc.X = sparse.csc_matrix(csc.X)
    csc.write_h5ad(tmp_path / "csc.h5ad")
    with pytest.raises(DataStateError, match="CSC"):
        read_lazy(tmp_path / "csc.h5ad")

    logged = small.copy()
    logged.X = logged.X.log1p()
    logged.write_h5ad(tmp_path / "logged.h5ad")
    with pytest.raises(DataStateError, match="raw counts"):
        preprocess_lazy(read_lazy(tmp_path / "logged.h5ad"))
    with pytest.raises(InvalidParameterError, match="flavor"):
        preprocess_lazy(read_lazy(counts_files["h5ad"]), flavor="seurat_v3")  # type: ignore[arg-type]


def test_cli_check_reports_fit_and_refusal(counts_files, monkeypatch):
    import json

    import typer
    from typer.testing import CliRunner

    import scagent.data.memory as lazy  # the guard moved to scagent.data
    from scagent.cli.scale import register

    app = typer.Typer()
    register(app)
    monkeypatch.setattr(lazy, "available_memory", lambda: 2**40)
    ok = CliRunner().invoke(app, ["scale", "check", str(counts_files["zarr"])])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["in_memory_bytes"] > 20_000 * 4  # at least the indptr
    monkeypatch.setattr(lazy, "available_memory", lambda: 2**20)
    refused = CliRunner().invoke(app, ["scale", "check", str(counts_files["zarr"])])
    assert isinstance(refused.exception, DataStateError)
    assert refused.exception.exit_code == 7
