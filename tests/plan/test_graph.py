"""The dependency graph: prerequisites and minimal plans from the inspector's state, fresh or foreign."""

from __future__ import annotations

import pytest

import scagent.tools as T
from scagent.data import inspect_adata
from scagent.data.state import DataState
from scagent.errors import DataStateError, MissingPrerequisiteError, UnknownToolError
from scagent.plan import check_prerequisites, is_satisfied, plan_steps, suggest_next
from scagent.tools import registry
from scagent.tools.base import Tool


def _state(
    x_state: str = "raw_counts", counts: str | None = "X", steps=(), raw_state=None
) -> DataState:
    return DataState(
        n_obs=100, n_vars=100, x_state=x_state, x_state_evidence="test", x_sparse=True,
        x_dtype="float32", counts_location=counts, steps=list(steps), raw_state=raw_state,
    )  # fmt: skip


@pytest.fixture(scope="module")
def raw_state() -> DataState:
    from scagent.data import simulate

    return inspect_adata(simulate(300, 500, seed=0))


def _ids(plan) -> list[str]:
    return [s.tool_id for s in plan]


def test_leiden_on_raw_counts_plans_the_standard_pipeline(raw_state) -> None:
    assert raw_state.x_state == "raw_counts"
    plan = plan_steps("leiden", raw_state)
    assert _ids(plan) == ["normalize", "hvg", "pca", "neighbors", "leiden"]
    assert "log-normalized" in plan[0].reason
    assert plan[-1].reason.startswith("the goal")


def test_foreign_processed_data_reuses_pca_and_neighbors(pbmc68k) -> None:
    state = inspect_adata(pbmc68k)
    assert {"pca", "neighbors"} <= set(state.steps)
    assert _ids(plan_steps("leiden", state)) == ["leiden"]
    assert _ids(plan_steps("umap", state)) == ["umap"]
    # louvain stands in for a clustering; .raw is log-normalized, so markers can run
    assert _ids(plan_steps("markers", state)) == ["markers"]
    assert check_prerequisites("markers", state).ok
    assert check_prerequisites("pca", state).ok  # X is scaled: accepted


def test_no_plan_step_recomputes_what_exists(pbmc68k, raw_state) -> None:
    for state in (inspect_adata(pbmc68k), raw_state):
        for tool in T.list_tools():
            try:
                plan = plan_steps(tool.id, state)
            except DataStateError:
                continue
            assert plan[-1].tool_id == tool.id
            for step in plan[:-1]:
                produced = T.get_tool(step.tool_id).produces
                assert not produced or not all(is_satisfied(p, state) for p in produced)
            assert len(set(_ids(plan))) == len(plan)


def test_check_prerequisites_lists_missing_steps(raw_state) -> None:
    check = check_prerequisites("pca", raw_state)
    assert not check.ok
    assert check.missing == ["normalize", "hvg"]
    assert any("raw counts" in p for p in check.problems)
    assert check_prerequisites("normalize", raw_state).ok
    assert check_prerequisites("qc_metrics", raw_state).ok


def test_missing_counts_cannot_be_planned_around(pbmc68k) -> None:
    state = inspect_adata(pbmc68k)
    check = check_prerequisites("normalize", state)
    assert not check.ok and not check.missing and "raw counts" in check.problems[0]
    with pytest.raises(DataStateError):
        plan_steps("qc_metrics", state)
    # normalized X without counts: pca wants log data, normalize needs counts
    with pytest.raises(DataStateError):
        plan_steps("pca", _state("normalized", counts=None))


def test_needs_are_met_by_derivable_data() -> None:
    # markers needs log-normalized values; counts in a layer are enough (derived on the fly)
    scaled_with_counts = _state("scaled", counts="layers/counts", steps=["leiden", "clustering"])
    assert check_prerequisites("markers", scaled_with_counts).ok
    scaled_bare = _state("scaled", counts=None, steps=["leiden", "clustering"])
    assert not check_prerequisites("markers", scaled_bare).ok


def test_plan_then_run_makes_the_goal_runnable() -> None:
    from scagent.data import simulate

    adata = simulate(400, 600, seed=1)
    for step in plan_steps("markers", inspect_adata(adata))[:-1]:
        T.get_tool(step.tool_id)(adata)
    assert check_prerequisites("markers", inspect_adata(adata)).ok
    assert plan_steps("markers", inspect_adata(adata))[0].tool_id == "markers"


def test_unknown_goal_and_cycles(monkeypatch) -> None:
    with pytest.raises(UnknownToolError):
        plan_steps("clusterize", _state())
    monkeypatch.setattr(registry, "_TOOLS", dict(registry._TOOLS))
    params = T.pca.params
    T.register(Tool(id="loop_a", name="a", category="qc", framework="-", fn=T.pca.fn,
                    params=params, requires=("loop_b",), produces=("loop_a",)))  # fmt: skip
    T.register(Tool(id="loop_b", name="b", category="qc", framework="-", fn=T.pca.fn,
                    params=params, requires=("loop_a",), produces=("loop_b",)))  # fmt: skip
    with pytest.raises(MissingPrerequisiteError, match="cycle"):
        plan_steps("loop_a", _state())


def test_suggest_next_offers_runnable_unfinished_steps(raw_state, pbmc68k) -> None:
    fresh = suggest_next(raw_state)
    assert "normalize" in fresh and "qc_metrics" in fresh
    assert "pca" not in fresh and "leiden" not in fresh
    foreign = suggest_next(inspect_adata(pbmc68k))
    assert "leiden" in foreign and "pca" not in foreign and "normalize" not in foreign
