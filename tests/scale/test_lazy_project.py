"""A project on data opened lazily: `scagent init --lazy`, then the dask path through the session."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np

from scagent.cli.main import main
from scagent.data import inspect_adata, simulate
from scagent.errors import InvalidParameterError
from scagent.scale import read_lazy
from scagent.session import Session


def test_init_lazy_then_preprocess_and_cluster(tmp_path: Path) -> None:
    adata = simulate(6000, 800, seed=4)
    path = tmp_path / "counts.zarr"
    adata.write_zarr(path)
    project = tmp_path / "proj"
    assert main(["init", "--data", str(path), "--lazy", "-C", str(project)]) == 0
    session = Session.open(project)
    assert isinstance(session.adata.X, da.Array)
    args = ["-C", str(project), "--param", "n_top_genes=300", "--param", "n_comps=15"]
    assert main(["run", "preprocess_lazy", *args]) == 0
    assert main(["run", "leiden", "--auto", "-C", str(project)]) == 0
    session = Session.open(project)
    final = session.adata
    assert final.obsm["X_pca"].shape == (6000, 15)
    # the recorded QC equals the in-memory totals; clusters found the simulated types
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    assert np.allclose(final.obs["total_counts"], totals)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(adata.obs["cell_type"], final.obs["leiden"]) > 0.8
    assert [h.tool_id for h in session.history()][:2] == ["import", "preprocess_lazy"]
    assert session.store.verify() == []


def test_inspector_reads_one_block_of_a_lazy_matrix(tmp_path: Path) -> None:
    adata = simulate(3000, 500, seed=5)
    path = tmp_path / "c.zarr"
    adata.write_zarr(path)
    lazy = read_lazy(path, chunk_cells=1000)
    state = inspect_adata(lazy)
    assert (state.n_obs, state.x_state, state.x_sparse) == (3000, "raw_counts", True)
    assert state.counts_location == "X"


def test_lazy_import_needs_a_file(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(InvalidParameterError, match="opens a file"):
        Session.init(tmp_path / "p", data=simulate(200, 300, seed=0), lazy=True)
    assert not (tmp_path / "p" / ".scagent").exists()
