"""The verifier's sanity rules, on constructed results with known answers."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from scagent.agent.verifier import verify_step
from scagent.data.state import Breadcrumbs, ColumnInfo, DataState
from scagent.session.session import RunRecord, StepRecord
from scagent.tools.base import ToolResult


def _record(tool_id: str, written=(), warnings=()) -> RunRecord:
    step = StepRecord(step=1, snapshot_id="s1", parent="s0", tool_id=tool_id, params={})
    result = ToolResult(summary="x", written=list(written), warnings=list(warnings))
    return RunRecord(branch="main", steps=[step], result=result, snapshot_id="s1")


def _data(n: int, labels, batch) -> ad.AnnData:
    obs = pd.DataFrame(
        {"leiden": pd.Categorical(labels), "batch": pd.Categorical(batch)},
        index=[f"c{i}" for i in range(n)],
    )
    return ad.AnnData(np.zeros((n, 3), dtype=np.float32), obs=obs)


def _state(n: int, n_clusters: int) -> DataState:
    return DataState(
        n_obs=n,
        n_vars=3,
        x_state="log_normalized",
        x_state_evidence="t",
        x_sparse=False,
        x_dtype="float32",
        batch_columns=[ColumnInfo(name="batch", n_levels=2, levels=["a", "b"])],
        breadcrumbs=Breadcrumbs(clusterings=[ColumnInfo(name="leiden", n_levels=n_clusters)]),
    )


def test_clusters_that_follow_batch_are_flagged():
    rng = np.random.default_rng(0)
    batch = np.repeat(["a", "b"], 100)
    tracking = np.where(batch == "a", "0", "1")  # the clusters are the batches
    findings = verify_step(
        _record("leiden", ["obs/leiden"]), _data(200, tracking, batch), _state(200, 2)
    )
    rules = {f.rule: f for f in findings}
    assert "tracks_batch" in rules
    assert "harmony" in rules["tracks_batch"].suggestion
    independent = rng.choice(["0", "1", "2"], 200)
    findings = verify_step(
        _record("leiden", ["obs/leiden"]), _data(200, independent, batch), _state(200, 3)
    )
    assert not findings


def test_single_cluster_is_flagged():
    batch = np.repeat(["a", "b"], 50)
    findings = verify_step(
        _record("leiden", ["obs/leiden"]), _data(100, ["0"] * 100, batch), _state(100, 1)
    )
    assert [f.rule for f in findings] == ["single_cluster"]
    assert "resolution" in findings[0].suggestion


def test_heavy_filtering_is_flagged_and_light_filtering_is_not():
    batch = np.repeat(["a", "b"], 30)
    data = _data(60, ["0", "1"] * 30, batch)
    heavy = verify_step(_record("filter_cells"), data, _state(60, 2), n_obs_before=120)
    assert [f.rule for f in heavy] == ["filtered_fraction"]
    assert "50%" in heavy[0].message
    light = verify_step(_record("filter_cells"), data, _state(60, 2), n_obs_before=90)
    assert light == []


def test_tool_output_checks_are_reported():
    data = _data(10, ["0", "1"] * 5, ["a"] * 10)
    findings = verify_step(_record("pca", warnings=["PC1 explains 90%"]), data, _state(10, 2))
    assert [(f.rule, f.message) for f in findings] == [("output_check", "PC1 explains 90%")]
