"""Provenance: one PROV activity per step, exported as PROV-JSON-LD and PROV-N."""

from __future__ import annotations

import hashlib
import json

import pytest
from prov.model import ProvDocument

from scagent.errors import InvalidParameterError
from scagent.session import Session


def _graph(text: str) -> list[dict]:
    return json.loads(text)["@graph"]


def _of_type(graph: list[dict], kind: str) -> list[dict]:
    return [r for r in graph if r["@type"] == kind]


def test_one_activity_per_step_with_entities_and_parameters(session, test_tools):
    session.run("test_add", value=2.0)
    session.run(
        "test_add",
        value=3.0,
        key_added="other",
        requested_by="llm:gpt-4o",
        request_text="add another column",
    )
    history = session.history()
    graph = _graph(session.export_provenance("jsonld"))

    activities = _of_type(graph, "Activity")
    assert len(activities) == len(history) == 3  # import + two steps
    by_tool = {a["scagent:tool"][0]["@value"]: a for a in activities if "scagent:tool" in a}
    assert set(by_tool) == {"import", "test_add"}
    runs = [a for a in activities if a["type"] == ["scagent:ToolRun"]]
    params = [json.loads(a["scagent:parameters"][0]["@value"]) for a in runs]
    assert {"value": 2.0, "key_added": "test_col"} in params
    assert {"value": 3.0, "key_added": "other"} in params
    assert all(a["startTime"] <= a["endTime"] for a in activities)
    llm_run = next(a for a in runs if "scagent:request_text" in a)
    assert llm_run["scagent:requested_by"][0]["@value"] == "llm:gpt-4o"
    assert llm_run["scagent:request_text"][0]["@value"] == "add another column"
    versions = json.loads(runs[0]["scagent:versions"][0]["@value"])
    assert {"scagent", "anndata", "numpy"} <= set(versions)
    assert runs[0]["scagent:python_version"][0]["@value"].count(".") == 2

    used = {(u["activity"], u["entity"]) for u in _of_type(graph, "Usage")}
    generated = {(g["activity"], g["entity"]) for g in _of_type(graph, "Generation")}
    activity_of = {s.snapshot_id: f"activity:{s.activity_id}" for s in history}
    for step in history[1:]:
        assert (activity_of[step.snapshot_id], f"snapshot:{step.parent}") in used
        assert (activity_of[step.snapshot_id], f"snapshot:{step.snapshot_id}") in generated

    agents = {a["@id"]: a for a in _of_type(graph, "Agent")}
    assert agents["tool:test_add"]["type"] == ["prov:SoftwareAgent"]
    assert agents["agent:user"]["type"] == ["prov:Person"]
    assert "agent:llm_gpt-4o" in agents

    # the file on disk is the same document, and the prov package reads it back
    on_disk = session.project.provenance_path.read_text()
    doc = ProvDocument.deserialize(content=on_disk, format="jsonld")
    assert doc == session.provenance()


def test_import_records_the_file_checksum(tmp_path, counts_data):
    path = tmp_path / "data.h5ad"
    counts_data.write_h5ad(path)
    session = Session.init(tmp_path / "p", data=path, requested_by="cli")
    graph = _graph(session.export_provenance())
    files = [e for e in _of_type(graph, "Entity") if e["@id"].startswith("file:")]
    assert len(files) == 1
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert files[0]["scagent:sha256"][0]["@value"] == expected
    import_activity = next(
        a for a in _of_type(graph, "Activity") if a["type"] == ["scagent:Import"]
    )
    assert (import_activity["@id"], files[0]["@id"]) in {
        (u["activity"], u["entity"]) for u in _of_type(graph, "Usage")
    }


def test_provn_export(session, test_tools):
    session.run("test_add")
    text = session.export_provenance("provn")
    assert text.startswith("document") and text.rstrip().endswith("endDocument")
    assert text.count("activity(") == 2 and "used(" in text and "wasGeneratedBy(" in text
    with pytest.raises(InvalidParameterError):
        session.export_provenance("turtle")


def test_requested_by_is_checked(session, test_tools):
    with pytest.raises(InvalidParameterError, match="requested_by"):
        session.run("test_add", requested_by="somebody")
