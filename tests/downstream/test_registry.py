"""The downstream tools are registered records the planner and the CLI listing can read."""

from __future__ import annotations

import json

import pytest

import scagent.tools.abundance
import scagent.tools.de_within
import scagent.tools.enrich
import scagent.tools.pseudobulk
import scagent.tools.trajectory_root  # noqa: F401
from scagent.tools import get_tool

IDS = ["pseudobulk_de", "de_within_cluster", "enrichment", "composition", "trajectory"]


@pytest.mark.parametrize("tool_id", IDS)
def test_record_and_schema(tool_id) -> None:
    tool = get_tool(tool_id)
    schema = tool.json_schema()
    json.dumps(schema)  # serialisable, for the agent and `scagent tools --json`
    assert schema["name"] == tool_id and schema["description"]
    assert tool.reference and tool.fn.__doc__
    assert "key_added" in schema["parameters"]["properties"]


def test_the_planner_knows_what_they_need(de_base) -> None:
    from scagent.data import inspect_adata
    from scagent.plan import check_prerequisites, plan_steps

    state = inspect_adata(de_base)
    assert check_prerequisites("pseudobulk_de", state).ok
    assert check_prerequisites("composition", state).ok
    # trajectory needs a graph and clusters: the planner fills them in from counts
    steps = [s.tool_id for s in plan_steps("trajectory", state)]
    assert steps[-1] == "trajectory" and "neighbors" in steps and "leiden" in steps
    scaled = de_base.copy()
    scaled.X = scaled.X.toarray() - 1.0  # negative values: not counts, and no counts elsewhere
    check = check_prerequisites("pseudobulk_de", inspect_adata(scaled))
    assert not check.ok and any("no raw counts" in p for p in check.problems)
