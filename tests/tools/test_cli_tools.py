"""`scagent tools`: the listing, one tool's parameters, and the JSON schemas, all from the records."""

from __future__ import annotations

import json

from scagent.cli.main import main
from scagent.tools import list_tools


def test_tools_lists_every_registered_tool(capsys) -> None:
    assert main(["tools"]) == 0
    out = capsys.readouterr().out
    for tool in list_tools():
        assert tool.id in out


def test_tools_json_prints_one_schema_per_tool(capsys) -> None:
    assert main(["tools", "--json"]) == 0
    schemas = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in schemas] == [t.id for t in list_tools()]
    for schema in schemas:
        assert schema["parameters"]["type"] == "object"
        assert schema["description"]
        assert "requires" in schema["x-scagent"]


def test_tools_name_shows_parameters_with_guidance(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["tools", "hvg"]) == 0
    out = capsys.readouterr().out
    assert "n_top_genes" in out and "Luecken" in out and ">= 50" in out
    assert main(["tools", "leiden", "--json"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["parameters"]["properties"]["resolution"]["sweep"]


def test_tools_unknown_name_exits_13(capsys) -> None:
    assert main(["tools", "leidn"]) == 13
    assert "leiden" in capsys.readouterr().err
