"""The agent offline: requests in words become confirmed, recorded steps; bad input gets a clear answer."""

from __future__ import annotations

import pytest

from scagent.session import Session


@pytest.fixture
def _agent(make_agent):
    return make_agent


def test_empty_input_does_nothing(processed, _agent):
    agent, io = _agent(processed)
    head = processed.head()
    assert agent.handle("   ") is True
    assert "Nothing to do" in io.text()
    assert processed.head() == head


def test_request_in_words_runs_after_confirmation_and_is_recorded(processed, _agent):
    agent, io = _agent(processed, answers=["y"])
    before = len(processed.history())
    agent.handle("cluster at resolution 0.5")
    assert io.questions == ["Proceed? [y/N] "]
    assert "leiden (resolution=0.5)" in io.text("plan")
    step = processed.history()[-1]
    assert len(processed.history()) == before + 1
    assert (step.tool_id, step.params["resolution"]) == ("leiden", 0.5)
    assert step.requested_by == "agent"
    assert step.request_text == "cluster at resolution 0.5"


def test_declining_the_plan_changes_nothing(processed, _agent):
    agent, io = _agent(processed, answers=["n"])
    head = processed.head()
    agent.handle("cluster at resolution 2")
    assert "Nothing was run" in io.text()
    assert Session.open(processed.project.root).head() == head


def test_plan_shows_prerequisites_from_the_graph(fresh, _agent):
    agent, io = _agent(fresh, answers=["n"])
    agent.handle("find markers")
    plan = io.text("plan")
    for tool in ("normalize", "hvg", "pca", "neighbors", "leiden", "markers"):
        assert tool in plan
    assert plan.index("normalize") < plan.index("leiden") < plan.index("markers")


def test_markers_for_a_cluster_prints_only_genes_of_the_data(processed, _agent):
    agent, io = _agent(processed)
    agent.handle("find markers for cluster 3")
    line = next(t for k, t in io.lines if t.startswith("Top markers of cluster 3"))
    genes = [part.split(" (")[0] for part in line.split(": ", 1)[1].split(", ")]
    assert len(genes) == 10
    assert set(genes) <= set(processed.adata.var_names)
    # Markers existed already: shown, not recomputed.
    assert processed.history()[-1].tool_id == "markers"
    assert len(processed.history()) == 8


def test_unknown_request_lists_capabilities_and_is_an_open_question(processed, _agent):
    agent, io = _agent(processed)
    agent.handle("make me a sandwich")
    text = io.text()
    assert "could not map" in text and "cluster at resolution 0.8" in text
    assert agent.memory.summarize(agent.memory.session_id).open_questions


def test_pseudobulk_de_without_a_sample_column_says_what_is_missing(tmp_path, counts, _agent):
    data = counts.copy()
    del data.obs["sample"]
    session = Session.init(tmp_path / "nosample", data=data)
    agent, io = _agent(session)
    head = session.head()
    agent.handle("pseudobulk DE between conditions")
    err = io.text("error")
    assert "sample column" in err
    assert "To add it" in err and "adata.obs['sample']" in err
    assert session.head() == head


def test_unavailable_tool_is_named(processed, monkeypatch, _agent):
    from scagent.tools import registry

    monkeypatch.delitem(registry._TOOLS, "umap", raising=False)
    agent, io = _agent(processed)
    agent.handle("compute a UMAP")
    assert "'umap' is not available in this installation" in io.text("error")


def test_integration_without_batches_says_what_is_missing(tmp_path, counts, _agent):
    data = counts.copy()
    data.obs = data.obs.drop(columns=["sample", "batch"])
    session = Session.init(tmp_path / "nobatch", data=data)
    agent, io = _agent(session)
    agent.handle("integrate the batches")
    assert "batch column" in io.text("error")


def test_unknown_slash_command_suggests_the_nearest(processed, _agent):
    agent, io = _agent(processed)
    agent.handle("/stauts")
    assert "did you mean /status?" in io.text("error")
    io.clear()
    agent.handle("/recal leiden")
    assert "did you mean /recall?" in io.text("error")


def test_slash_run_with_invalid_parameter_reports_the_schema_error(processed, _agent):
    agent, io = _agent(processed)
    head = processed.head()
    agent.handle("/run leiden resolution=-1")
    assert "resolution" in io.text("error") and "allowed" in io.text("error")
    assert processed.head() == head


def test_verifier_warns_when_most_cells_are_filtered(processed, _agent):
    agent, io = _agent(processed, auto_yes=True)
    n_before = processed.state.n_obs
    agent.handle("/run filter_cells mode=thresholds min_genes=420")
    n_after = processed.state.n_obs
    assert n_after < 0.6 * n_before  # the threshold is above the median of ~405 genes
    assert "more than 40%" in io.text("warning")


def test_branches_compare_undo_and_history(processed, _agent):
    agent, io = _agent(processed, answers=["y"])
    agent.handle("/branch create hires")
    assert processed.branch == "hires"
    agent.handle("cluster at resolution 2")
    io.clear()
    agent.handle("compare branches main and hires")
    assert "ARI" in io.text() and "diverge after step 7" in io.text()
    head_before_undo = processed.head()
    io.clear()
    agent.handle("/undo")
    assert processed.head() == processed.head("main")
    assert processed.store.has_snapshot(head_before_undo)  # nothing deleted
    io.clear()
    agent.handle("what did we do?")
    assert "7 steps after the import" in io.text()
    assert "asked: 'cluster at resolution 0.8'" not in io.text()  # built by the fixture, no text


def test_slash_commands_answer(processed, _agent):
    agent, io = _agent(processed)
    for command, expected in [
        ("/help", "/branch list|create"),
        ("/status", "branch main at step 7"),
        ("/plan umap", "umap can run now"),
        ("/tools leiden", "resolution (default 1.0)"),
        ("/provenance leiden", "leiden resolution=0.8"),
        ("/knowledge query B cell", "MS4A1"),
        ("/branch list", "* main: 7 steps"),
    ]:
        io.clear()
        assert agent.handle(command) is True
        assert expected in io.text(), (command, io.text())
    assert agent.handle("/quit") is False


def test_recall_finds_an_earlier_turn(processed, _agent):
    agent, io = _agent(processed, answers=["n"])
    agent.handle("cluster at resolution 1.7")
    io.clear()
    agent.handle("/recall resolution 1.7")
    assert "cluster at resolution 1.7" in io.text()


@pytest.mark.parametrize("bad", ["/run", "/branch frobnicate", "/knowledge", "/export nonsense"])
def test_bad_command_arguments_show_usage(processed, bad, _agent):
    agent, io = _agent(processed)
    head = processed.head()
    agent.handle(bad)
    assert "usage:" in io.text("error")
    assert processed.head() == head


def test_pipeline_command_checks_the_data_before_running(fresh, _agent):
    agent, io = _agent(fresh, answers=["y", "y"])
    head = fresh.head()
    agent.handle("/pipeline")  # the project names no paradigm
    assert "usage: /pipeline" in io.text("error") and "perturbation_screen" in io.text("error")
    io.clear()
    agent.handle("/pipeline perturbation_screen")
    # the plan is shown, then the missing guide counts are named; nothing ran
    assert "guide_assignment" in io.text()
    assert "guide" in io.text("error")
    io.clear()
    agent.handle("/pipeline atlass")
    assert "did you mean 'atlas'" in io.text("error")
    io.clear()
    agent.handle("run the CITE-seq pipeline")  # in words: the same command
    assert "joint_embedding" in io.text() and "protein_counts" in io.text("error")
    assert fresh.head() == head
