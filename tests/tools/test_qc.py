"""QC metrics on counts wherever they live, and cell / gene filters by threshold or MAD."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc
from scipy import sparse

import scagent.tools as T
from scagent.data import inspect_adata
from scagent.errors import DataStateError, InvalidDataError, InvalidParameterError
from scagent.tools.qc import HB_PATTERN


def _dense(m):
    return m.toarray() if sparse.issparse(m) else np.asarray(m)


def test_qc_metrics_writes_documented_keys_and_inspector_sees_them(sim) -> None:
    result = T.qc_metrics(sim)
    for col in ("total_counts", "n_genes_by_counts", "pct_counts_mt", "pct_counts_ribo",
                "pct_counts_hb", "pct_counts_in_top_20_genes", "log1p_total_counts"):  # fmt: skip
        assert col in sim.obs
        assert f"obs/{col}" in result.written
    assert {"mt", "ribo", "hb", "n_cells_by_counts"} <= set(sim.var.columns)
    assert "qc_metrics" in inspect_adata(sim).steps
    counts = _dense(sim.X)
    mt = sim.var_names.str.upper().str.startswith("MT-")
    expected = counts[:, mt].sum(1) / counts.sum(1) * 100
    np.testing.assert_allclose(sim.obs["pct_counts_mt"], expected, rtol=1e-5)
    assert result.metrics["n_mito_genes"] == int(mt.sum()) > 0
    # the simulator's own gene sets agree with the patterns
    assert np.array_equal(sim.var["hb"].to_numpy(), sim.var_names.str.match(HB_PATTERN))


def test_qc_metrics_reads_counts_from_a_layer_after_normalization(sim) -> None:
    raw = sim.copy()
    T.qc_metrics(raw)
    T.normalize(sim)  # X is now log-normalized, counts in layers['counts']
    T.qc_metrics(sim)
    np.testing.assert_allclose(sim.obs["total_counts"], raw.obs["total_counts"])
    np.testing.assert_allclose(sim.obs["pct_counts_mt"], raw.obs["pct_counts_mt"], rtol=1e-5)


def test_qc_metrics_without_counts_is_a_data_state_error(pbmc68k) -> None:
    with pytest.raises(DataStateError) as err:
        T.qc_metrics(pbmc68k.copy())
    assert err.value.exit_code == 7
    assert "raw counts" in err.value.message


def test_qc_metrics_warns_when_no_mito_gene_matches(sim) -> None:
    result = T.qc_metrics(sim, mito_prefix="mt-x")
    assert any("mitochondrial" in w for w in result.warnings)


def _with_damaged_cells(adata, n_bad: int = 30, seed: int = 0):
    """Inflate mitochondrial counts of n_bad cells tenfold (dying cells); returns their names."""
    rng = np.random.default_rng(seed)
    bad = rng.choice(adata.n_obs, n_bad, replace=False)
    X = _dense(adata.X)
    mt = adata.var_names.str.startswith("MT-")
    X[np.ix_(bad, mt)] *= 10
    adata.X = sparse.csr_matrix(X)
    return adata.obs_names[bad]


def test_filter_cells_mad_removes_damaged_cells_and_reports_per_sample(sim) -> None:
    bad = _with_damaged_cells(sim)
    n_before = sim.n_obs
    T.qc_metrics(sim)
    result = T.filter_cells(sim, sample_key="sample")
    assert not set(bad) & set(sim.obs_names)  # every damaged cell removed
    assert n_before - sim.n_obs < 0.1 * n_before  # and not much else
    table = result.tables["per_sample"]
    assert {row["sample"] for row in table} == set(sim.obs["sample"].astype(str))
    assert (
        sum(row["removed"] for row in table) == n_before - sim.n_obs == result.metrics["n_removed"]
    )
    assert sum(row["mad_pct_mt"] for row in table) >= len(bad)
    assert all(row["kept"] + row["removed"] == row["n_cells"] for row in table)


def test_filter_cells_computes_missing_qc_and_dry_run_removes_nothing(sim) -> None:
    _with_damaged_cells(sim)
    result = T.filter_cells(sim, dry_run=True)
    assert sim.n_obs == 1000
    assert "obs/total_counts" in result.written  # QC metrics computed on the way
    assert int(sim.obs["qc_outlier"].sum()) == result.metrics["n_removed"] >= 30


def test_filter_cells_thresholds(sim) -> None:
    T.qc_metrics(sim)
    cutoff = int(np.median(sim.obs["total_counts"]))
    expected = int((sim.obs["total_counts"] >= cutoff).sum())
    result = T.filter_cells(sim, mode="thresholds", min_counts=cutoff)
    assert sim.n_obs == expected
    assert result.metrics["flagged_by_min_counts"] == 1000 - expected


def test_filter_cells_refuses_to_remove_everything(sim) -> None:
    T.qc_metrics(sim)
    with pytest.raises(InvalidDataError) as err:
        T.filter_cells(sim, mode="thresholds", min_counts=10**9)
    assert err.value.exit_code == 6
    assert sim.n_obs == 1000


def test_filter_cells_thresholds_mode_needs_a_threshold(sim) -> None:
    with pytest.raises(InvalidParameterError):
        T.filter_cells(sim, mode="thresholds")
    with pytest.raises(InvalidParameterError):
        T.filter_cells(sim, sample_key="no_such_column")


def test_filter_genes_removes_undetected_genes(sim) -> None:
    X = _dense(sim.X)
    X[:, :20] = 0
    X[:2, 10:20] = 1  # seen in only two cells
    sim.X = sparse.csr_matrix(X)
    detected = (X > 0).sum(0)
    result = T.filter_genes(sim, min_cells=3)
    assert sim.n_vars == int((detected >= 3).sum())
    assert result.metrics["n_removed"] >= 20
    with pytest.raises(InvalidDataError):
        T.filter_genes(sim, min_cells=10**6)


def test_scanpy_agrees_with_filter_genes(sim) -> None:
    ours = sim.copy()
    T.filter_genes(ours, min_cells=20)
    sc.pp.filter_genes(sim, min_cells=20)
    assert list(ours.var_names) == list(sim.var_names)
