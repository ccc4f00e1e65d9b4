"""Paradigm plans: well-formed DAGs, future tools flagged, precomputed steps recognised, next steps."""

from __future__ import annotations

import pytest

from scagent.data import inspect_adata
from scagent.errors import InvalidParameterError
from scagent.plan import PARADIGMS, ParadigmPlan, get_paradigm, list_paradigms
from scagent.tools import tool_ids

EXPECTED = {
    "atlas", "disease_vs_healthy", "developmental_trajectory", "temporal_longitudinal",
    "perturbation_screen", "immune_repertoire", "multimodal", "communication",
}  # fmt: skip


def _is_acyclic(plan: ParadigmPlan) -> bool:
    seen: set[str] = set()
    for step in plan.steps:  # add_step only accepts known deps, so order is topological
        if not set(step.depends_on) <= seen:
            return False
        seen.add(step.id)
    return True


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_paradigm_is_a_dag_with_rationales(name: str) -> None:
    plan = get_paradigm(name)
    assert plan.paradigm == name and plan.description
    assert _is_acyclic(plan)
    assert len({s.id for s in plan.steps}) == len(plan.steps)
    for step in plan.steps:
        assert step.rationale
        assert step.available == (step.tool_id in tool_ids())
    # the first step can start on fresh data
    assert plan.next_steps()[0].id == "qc_metrics"


def test_paradigm_names_and_future_tools() -> None:
    assert set(list_paradigms()) == EXPECTED == set(PARADIGMS)
    plan = get_paradigm("disease-vs-healthy")
    available = {s.tool_id for s in plan.steps if s.available}
    future = {s.tool_id for s in plan.steps if not s.available}
    assert {"pseudobulk_de", "composition"} <= available  # registered downstream tools
    assert future == {s.tool_id for s in plan.steps} - set(tool_ids())
    with pytest.raises(InvalidParameterError, match="atlas"):
        get_paradigm("atlass")


def test_precomputed_steps_from_foreign_data(pbmc68k) -> None:
    plan = get_paradigm("developmental_trajectory")
    marked = plan.mark_precomputed_from_state(inspect_adata(pbmc68k))
    assert {"qc_metrics", "normalize", "hvg", "pca", "neighbors", "umap"} <= set(marked)
    assert "leiden" not in marked  # pbmc68k has louvain, not leiden
    # the filters upstream of a precomputed PCA left no trace, but the data is past them
    assert plan.step("filter_cells").status == "skipped"
    # its marker genes are there too, so the data is past clustering (it has louvain)
    assert plan.step("markers").status == "precomputed"
    assert plan.step("leiden").status == "skipped"
    assert plan.step("annotate").status == "precomputed"  # bulk_labels are cell types
    # velocity is optional: offered, and skipped by the runner where the layers are missing
    assert [s.id for s in plan.next_steps()] == ["trajectory", "velocity"]
    assert plan.step("velocity").optional
    plan.mark("trajectory")
    assert "trajectory_de" in {s.id for s in plan.next_steps(include_unavailable=True)}


def test_steps_carry_run_parameters() -> None:
    plan = get_paradigm("multimodal")
    # the joint graph, not the RNA graph, is what multimodal clusters on
    assert plan.step("leiden_wnn").params == {"neighbors_key": "wnn", "key_added": "leiden_wnn"}
    assert plan.step("leiden_wnn").depends_on == ["joint_embedding"]
    assert plan.step("annotate").params == {"groupby": "leiden_wnn"}
    harmony = get_paradigm("disease_vs_healthy").step("harmony")
    assert harmony.optional and harmony.params["batch_key"] == "$batch"
    assert not get_paradigm("atlas").step("harmony").optional


def test_add_step_and_serialisation() -> None:
    plan = get_paradigm("atlas")
    step = plan.add_step("cell_cycle", "cell_cycle_score", ["normalize"], "regress out cycling")
    assert not step.available
    with pytest.raises(InvalidParameterError, match="no step"):
        plan.add_step("x", depends_on=["nonexistent"])
    with pytest.raises(InvalidParameterError, match="already"):
        plan.add_step("cell_cycle")
    again = ParadigmPlan.model_validate_json(plan.model_dump_json())
    assert again == plan
