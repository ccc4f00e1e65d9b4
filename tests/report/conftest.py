"""A small analysed project shared by the report tests: simulated data through the standard steps."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def report_project(tmp_path_factory: pytest.TempPathFactory):
    """Simulated 800 x 800, 2 batches x 2 conditions: QC, filter, leiden (auto), UMAP, markers,
    offline annotation on ``main``; branch ``hires`` (leiden at resolution 2 from main@7) and
    branch ``strict`` (fixed thresholds per sample from main@1)."""
    from scagent.data import simulate
    from scagent.session import Session

    home = tmp_path_factory.mktemp("report_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("SCAGENT_HOME", str(home))  # the annotator's caches stay in the test folder
    try:
        adata = simulate(800, 800, n_batches=2, n_conditions=2, seed=0)
        session = Session.init(tmp_path_factory.mktemp("report_project"), data=adata)
        session.run("qc_metrics")
        session.run("filter_cells")
        session.run("leiden", auto=True)
        session.run("umap")
        session.run("markers", groupby="leiden")
        session.run("annotate", groupby="leiden", tissue="blood")
        session.create_branch("hires", "main@7")
        session.run("leiden", branch="hires", resolution=2.0, overwrite=True)
        session.create_branch("strict", "main@1")
        session.run(
            "filter_cells",
            branch="strict",
            mode="thresholds",
            min_genes=300,
            max_pct_mt=7.0,
            sample_key="sample",
        )
    finally:
        mp.undo()
    return session


@pytest.fixture(scope="session")
def rendered(report_project):
    """``(html, sections)`` of the main branch's report, rendered once."""
    from scagent.report.html import render_report

    return render_report(report_project, branch="main")
