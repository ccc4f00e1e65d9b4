"""Simulated counts written once as .h5ad and .zarr, and the in-memory scanpy reference."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

N_CELLS, N_GENES, CHUNK = 20_000, 2_000, 5_000
N_TOP, N_COMPS = 500, 20


@pytest.fixture(scope="session")
def counts_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same simulated raw counts as .h5ad and .zarr (X CSR float32)."""
    from scagent.data import simulate

    folder = tmp_path_factory.mktemp("scale_data")
    adata = simulate(N_CELLS, N_GENES, seed=7)
    paths = {"h5ad": folder / "counts.h5ad", "zarr": folder / "counts.zarr"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_h5ad(paths["h5ad"])
        adata.write_zarr(paths["zarr"])
    return paths


@pytest.fixture(scope="session")
def reference(counts_files):
    """In-memory scanpy: QC (scagent's tool) -> normalize_total + log1p -> HVG -> PCA."""
    import anndata as ad
    import scanpy as sc

    from scagent.tools.qc import qc_metrics

    adata = ad.read_h5ad(counts_files["h5ad"])
    qc_metrics(adata)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=N_TOP, flavor="seurat")
    sc.pp.pca(adata, n_comps=N_COMPS, mask_var="highly_variable", svd_solver="arpack")
    return adata


@pytest.fixture(scope="session")
def lazy_result(counts_files):
    """The dask path on the .h5ad with the threaded scheduler: (adata, summary)."""
    from scagent.scale import preprocess_lazy, read_lazy

    adata = read_lazy(counts_files["h5ad"], chunk_cells=CHUNK)
    summary = preprocess_lazy(adata, n_top_genes=N_TOP, n_comps=N_COMPS)
    return adata, summary
