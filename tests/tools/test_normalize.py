"""Normalization always starts from raw counts, keeps them, and refuses when there are none."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc
from scipy import sparse

import scagent.tools as T
from scagent.data import inspect_adata
from scagent.errors import DataStateError, InvalidParameterError


def test_normalize_keeps_counts_and_writes_log_data(sim) -> None:
    counts = sim.X.copy()
    result = T.normalize(sim, target_sum=1e4)
    assert set(result.written) >= {"X", "layers/counts", "uns/log1p"}
    assert (sim.layers["counts"] != counts).nnz == 0
    np.testing.assert_allclose(np.expm1(sim.X).sum(axis=1).A1, 1e4, rtol=1e-3)
    state = inspect_adata(sim)
    assert state.x_state == "log_normalized"
    assert {"normalize", "log1p"} <= set(state.steps)
    assert state.counts_location == "layers/counts"


def test_normalize_default_target_is_the_median_total(sim) -> None:
    median = float(np.median(sim.X.sum(axis=1).A1))
    result = T.normalize(sim)
    assert result.metrics["target_sum"] == pytest.approx(median)


def test_normalize_on_scaled_x_uses_the_counts_layer(sim) -> None:
    direct = sim.copy()
    T.normalize(direct)
    scaled = sim.copy()
    scaled.layers["counts"] = scaled.X.copy()
    sc.pp.normalize_total(scaled)
    sc.pp.log1p(scaled)
    scaled.X = scaled.X.toarray()
    sc.pp.scale(scaled)  # X now scaled (negative values), counts only in the layer
    assert inspect_adata(scaled).x_state == "scaled"
    T.normalize(scaled)
    a = scaled.X.toarray() if sparse.issparse(scaled.X) else scaled.X
    np.testing.assert_allclose(a, direct.X.toarray(), rtol=1e-5, atol=1e-6)


def test_normalize_on_scaled_data_without_counts_is_a_data_state_error(pbmc68k) -> None:
    adata = pbmc68k.copy()
    before = adata.X.copy()
    with pytest.raises(DataStateError) as err:
        T.normalize(adata)
    assert err.value.exit_code == 7
    assert err.value.message.startswith("normalize needs raw counts")
    assert "scaled" in err.value.message
    np.testing.assert_array_equal(adata.X, before)


def test_normalize_will_not_overwrite_a_foreign_counts_layer(sim) -> None:
    sim.layers["counts"] = sim.X * 0.5  # not counts, and not ours
    with pytest.raises(InvalidParameterError):
        T.normalize(sim)
    result = T.normalize(sim, overwrite=True)
    assert any("replaced" in w for w in result.warnings)
    assert inspect_adata(sim).counts_location == "layers/counts"


def test_normalize_check_fails_on_non_integer_counts(sim) -> None:
    from scagent.errors import ScagentError
    from scagent.tools.normalize import _check_normalize

    T.normalize(sim)
    sim.layers["counts"] = sim.layers["counts"] * 0.5
    with pytest.raises(ScagentError):
        _check_normalize(sim, T.normalize.validate_params({}), None)
