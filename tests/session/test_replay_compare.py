"""Replay of a recorded branch (hashes must match) and comparison of two branches."""

from __future__ import annotations

import numpy as np
import pytest

from scagent.session import Session

PIPELINE = [
    ("qc_metrics", {}),
    ("filter_cells", {}),
    ("filter_genes", {}),
    ("normalize", {}),
    ("hvg", {"n_top_genes": 300}),
    ("pca", {"n_comps": 20}),
    ("neighbors", {}),
    ("leiden", {"resolution": 0.5}),
    ("umap", {}),
    ("markers", {}),
]


@pytest.fixture(scope="module")
def ten_step_project(tmp_path_factory, counts_data):
    """A project whose branch main has the 10-step standard pipeline after its import."""
    session = Session.init(tmp_path_factory.mktemp("replay") / "p", data=counts_data.copy())
    for tool, params in PIPELINE:
        session.run(tool, **params)
    return session.project.root


def test_replay_ten_steps_reproduces_every_deterministic_hash(ten_step_project):
    session = Session.open(ten_step_project)
    history = session.history()
    assert [s.tool_id for s in history[1:]] == [t for t, _ in PIPELINE]
    report = session.replay("main")
    assert len(report.steps) == 10
    for step in report.steps:
        if step.deterministic:
            assert step.status == "match", (step.tool_id, step.differing)
        else:
            assert step.status.startswith("nondeterministic")
    assert report.ok
    assert sum(s.deterministic for s in report.steps) >= 9
    # the project itself is untouched by a replay
    assert Session.open(ten_step_project).history() == history


def test_replay_detects_a_changed_tool(session, test_tools):
    session.run("test_add", value=2.0)
    session.run("test_noise", key_added="noise")
    session.run("test_add", key_added="after")
    assert session.replay().ok
    test_tools.offset = 0.5  # the tool now computes something else
    report = session.replay("main")
    assert not report.ok
    first, noise, last = report.steps
    assert first.status == "mismatch" and first.differing == ["obs/test_col"]
    assert noise.status == "nondeterministic_differs" and not noise.deterministic
    assert last.status == "mismatch"


def test_compare_branches(ten_step_project, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(ten_step_project, root)
    session = Session.open(root)
    session.create_branch("hi_res", "main@7", switch=True)  # after neighbors
    session.run("leiden", resolution=1.5)
    result = session.compare("main", "hi_res")
    assert result.common_step == 7
    assert result.common_ancestor == session.history("main")[7].snapshot_id
    assert result.steps_a == ["leiden", "umap", "markers"]
    assert result.steps_b == ["leiden"]
    first = result.differences[0]
    assert first.same_tool and first.params["resolution"] == (0.5, 1.5)
    assert result.differences[1].tool_b is None
    (leiden,) = [c for c in result.clusterings if c.key_a == "leiden"]
    assert -0.5 < leiden.ari < 1.0  # different resolutions: not identical partitions
    assert int(leiden.crosstab.to_numpy().sum()) == leiden.n_cells == session.adata.n_obs
    assert leiden.n_clusters_b > leiden.n_clusters_a

    same = session.compare("main", "main")
    assert same.common_step == len(session.history("main")) - 1 and same.differences == []
    assert np.isfinite(leiden.ari)
