"""The dask path on a LocalCluster of worker processes, a dead scheduler address, and the CLI."""

from __future__ import annotations

import json
import os
import socket
import time

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from scagent.errors import InvalidParameterError

CHUNK, N_TOP, N_COMPS = 5_000, 500, 20


def _closed_port() -> int:
    """A local port with nothing listening (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_cluster_two_processes_matches_threads(counts_files, lazy_result):
    from distributed import get_task_stream

    from scagent.scale import preprocess_lazy, read_lazy, use_cluster

    with use_cluster(workers=2) as client:
        pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids  # two processes, not this one
        adata = read_lazy(counts_files["h5ad"], chunk_cells=CHUNK)
        with get_task_stream(client) as stream:
            preprocess_lazy(adata, n_top_genes=N_TOP, n_comps=N_COMPS)
        # the chunk work ran on both workers, not in this process
        assert len({task["worker"] for task in stream.data}) == 2
    reference, _ = lazy_result
    np.testing.assert_array_equal(adata.obs["total_counts"], reference.obs["total_counts"])
    np.testing.assert_array_equal(adata.var["highly_variable"], reference.var["highly_variable"])
    np.testing.assert_allclose(
        adata.uns["pca"]["variance_ratio"], reference.uns["pca"]["variance_ratio"], rtol=1e-5
    )
    np.testing.assert_allclose(
        np.abs(adata.obsm["X_pca"]), np.abs(reference.obsm["X_pca"]), rtol=1e-4, atol=1e-4
    )


def test_dead_scheduler_fails_fast():
    from scagent.scale import connect

    address = f"tcp://127.0.0.1:{_closed_port()}"
    start = time.perf_counter()
    with pytest.raises(InvalidParameterError) as err:
        connect(address, timeout=2)
    assert time.perf_counter() - start < 10
    assert address in err.value.message
    assert "scheduler" in err.value.remedy
    with pytest.raises(InvalidParameterError):
        connect("   ")


def _app() -> typer.Typer:
    from scagent.cli.scale import register

    app = typer.Typer()
    register(app)
    return app


def test_cli_preprocess_writes_output(tmp_path, counts_files):
    import anndata as ad

    out = tmp_path / "pre.zarr"
    result = CliRunner().invoke(
        _app(),
        [
            "scale", "preprocess", str(counts_files["zarr"]), "--out", str(out),
            "--chunk-cells", "8000", "--n-top-genes", "300", "--n-comps", "10", "--no-write-x",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["n_hvg"] == 300 and summary["scheduler"] == "local threads"
    back = ad.read_zarr(out)
    assert back.obsm["X_pca"].shape == (20_000, 10)
    assert back.var["highly_variable"].sum() == 300


def test_cli_dead_scheduler(tmp_path, counts_files):
    address = f"127.0.0.1:{_closed_port()}"
    start = time.perf_counter()
    result = CliRunner().invoke(
        _app(),
        [
            "scale", "preprocess", str(counts_files["h5ad"]), "--out", str(tmp_path / "o.zarr"),
            "--scheduler", address, "--timeout", "2",
        ],
    )  # fmt: skip
    assert time.perf_counter() - start < 10
    assert isinstance(result.exception, InvalidParameterError)
    assert result.exception.exit_code == 2
    assert not (tmp_path / "o.zarr").exists()
