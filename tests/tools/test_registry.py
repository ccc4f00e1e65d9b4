"""The registry and the Tool record: lookup, parameter validation, schemas, output checks."""

from __future__ import annotations

import pytest
from pydantic import Field

import scagent.tools as T
from scagent.errors import InvalidParameterError, UnknownToolError
from scagent.tools import registry
from scagent.tools.base import ParamsModel, Tool, ToolResult

CORE = [
    "qc_metrics", "filter_cells", "filter_genes", "doublets", "normalize", "hvg", "pca",
    "neighbors", "harmony", "leiden", "umap", "markers", "paga", "diffusion_pseudotime",
]  # fmt: skip


def test_core_tools_registered_and_exported() -> None:
    assert set(CORE) <= set(T.tool_ids())
    for tool_id in CORE:
        tool = T.get_tool(tool_id)
        assert tool.id == tool_id
        assert getattr(T, tool_id) is tool  # scagent.tools.pca is the record
        assert tool.description and tool.reference
        assert callable(tool.fn)


def test_list_tools_follows_the_pipeline_order() -> None:
    ids = [t.id for t in T.list_tools()]
    for before, after in [("qc_metrics", "normalize"), ("normalize", "hvg"), ("hvg", "pca"),
                          ("pca", "neighbors"), ("neighbors", "leiden"), ("leiden", "markers")]:  # fmt: skip
        assert ids.index(before) < ids.index(after)
    assert {t.id for t in T.list_tools("trajectory")} == {
        "paga",
        "diffusion_pseudotime",
        "trajectory",
        "trajectory_de",
        "velocity",
    }


def test_unknown_tool_suggests_close_ids() -> None:
    with pytest.raises(UnknownToolError) as err:
        T.get_tool("leidn")
    assert err.value.exit_code == 13
    assert "'leiden'" in str(err.value)


def test_unknown_parameter_names_it_and_suggests() -> None:
    with pytest.raises(InvalidParameterError) as err:
        T.pca.validate_params({"n_comp": 30})
    assert err.value.exit_code == 2
    assert "'n_comp'" in err.value.message and "'n_comps'" in err.value.message


@pytest.mark.parametrize(
    ("tool_id", "params", "expected"),
    [
        ("pca", {"n_comps": 1}, ">= 2"),
        ("pca", {"n_comps": 1000}, "<= 300"),
        ("leiden", {"resolution": 0}, "> 0"),
        ("neighbors", {"n_neighbors": "many"}, "n_neighbors"),
        ("hvg", {"flavor": "magic"}, "flavor"),
        ("leiden", {"resolutions": [0.5, -1]}, "resolutions"),
    ],
)
def test_out_of_range_parameters_are_rejected(tool_id: str, params: dict, expected: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        T.get_tool(tool_id).validate_params(params)
    assert err.value.exit_code == 2
    assert expected in err.value.message


def test_parameters_from_text_are_coerced() -> None:
    # The CLI passes strings; the schema turns them into the declared types.
    p = T.leiden.validate_params({"resolution": "0.5", "resolutions": "0.2,0.8"})
    assert p.resolution == 0.5 and p.resolutions == [0.2, 0.8]


def test_calling_a_tool_validates_before_touching_data(sim) -> None:
    before = sim.X.copy()
    with pytest.raises(InvalidParameterError):
        T.normalize(sim, target_sum=-1)
    assert (sim.X != before).nnz == 0
    assert "counts" not in sim.layers


def test_json_schema_carries_ranges_sweeps_and_graph_facts() -> None:
    schema = T.leiden.json_schema()
    assert schema["name"] == "leiden"
    props = schema["parameters"]["properties"]
    assert props["resolution"]["exclusiveMinimum"] == 0
    assert props["resolution"]["sweep"][0] < props["resolution"]["sweep"][-1]
    assert "Traag" in props["resolution"]["description"]
    assert schema["parameters"]["additionalProperties"] is False
    assert schema["x-scagent"]["requires"] == ["neighbors"]
    assert "clustering" in schema["x-scagent"]["produces"]
    assert T.harmony.json_schema()["parameters"]["required"] == ["batch_key"]


def test_every_tool_schema_is_json_and_defaults_validate() -> None:
    import json

    for tool in T.list_tools():
        json.dumps(tool.json_schema())
        required = tool.params.model_json_schema().get("required", [])
        if not required:
            tool.validate_params({})


class _EchoParams(ParamsModel):
    value: int = Field(1, ge=0, le=5)


def _echo(adata, value: int) -> ToolResult:
    adata.uns["echo"] = value
    return ToolResult(summary="echo", written=["uns/echo"], warnings=["from fn"])


def test_register_rejects_duplicates_and_call_merges_check_warnings(monkeypatch, sim) -> None:
    monkeypatch.setattr(registry, "_TOOLS", dict(registry._TOOLS))
    tool = Tool(
        id="echo_test", name="Echo", category="qc", framework="none", fn=_echo,
        params=_EchoParams, checks=lambda adata, p, r: [f"checked {p.value}"],
    )  # fmt: skip
    T.register(tool)
    assert T.get_tool("echo_test") is tool
    with pytest.raises(InvalidParameterError):
        T.register(Tool(id="echo_test", name="Other", category="qc", framework="none",
                        fn=_echo, params=_EchoParams))  # fmt: skip
    result = tool(sim, value=3)
    assert sim.uns["echo"] == 3
    assert result.warnings == ["from fn", "checked 3"]


def test_plain_function_runs_without_the_record(processed) -> None:
    from scagent.tools.cluster import leiden

    result = leiden(processed, resolution=0.5, key_added="plain")
    assert "obs/plain" in result.written
    with pytest.raises(InvalidParameterError):
        leiden(processed, resolution=-1)
