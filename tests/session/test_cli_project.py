"""The project commands through `scagent.cli.main.main`: output, exit codes and error lines."""

from __future__ import annotations

import json

import pytest

from scagent.cli.main import main
from scagent.errors import EXIT_CODES


@pytest.fixture
def project(tmp_path, counts_data, monkeypatch):
    """A folder with data.h5ad, as the current folder."""
    counts_data.write_h5ad(tmp_path / "data.h5ad")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_project_workflow(project, capsys, test_tools):
    (project / "ctx.json").write_text(json.dumps({"organism": "human", "tissue": "blood"}))
    code, out, _ = _run(
        capsys, "init", "--data", "data.h5ad", "--context", "ctx.json", "--paradigm", "atlas"
    )
    assert code == 0 and "step 0" in out
    config = json.loads((project / ".scagent" / "project.json").read_text())
    assert config["context"]["organism"]["taxon_id"] == "NCBITaxon:9606"
    assert config["scagent_version"] and config["schema_version"] == 1

    code, out, _ = _run(capsys, "run", "test_add", "--param", "value=2", "--param", "key_added=x")
    assert code == 0 and "main@1 test_add" in out
    code, out, _ = _run(capsys, "run", "test_add", "--param", "key_added=y", "--json")
    assert code == 0 and json.loads(out)["steps"][0]["params"] == {"value": 1.0, "key_added": "y"}

    code, out, _ = _run(capsys, "status")
    assert code == 0
    assert "branch: main at step 2" in out and "test_add" in out and "cells" in out
    assert "next:" in out

    code, out, _ = _run(capsys, "plan", "leiden")
    assert (
        code == 0
        and "neighbors" in out
        and out.strip().splitlines()[-1].endswith(out.strip().splitlines()[-1])
    )
    assert "leiden" in out.strip().splitlines()[-1]

    assert _run(capsys, "branch", "create", "alt", "--from", "main@1")[0] == 0
    code, out, _ = _run(capsys, "branch", "list")
    assert code == 0 and "alt" in out and "main" in out
    assert _run(capsys, "branch", "switch", "alt")[0] == 0
    assert _run(capsys, "run", "test_add", "--param", "value=5", "--param", "key_added=y")[0] == 0
    code, out, _ = _run(capsys, "branch", "compare", "main", "alt", "--json")
    compared = json.loads(out)
    assert compared["common_step"] == 1
    assert compared["differences"][0]["params"] == {"value": [1.0, 5.0]}
    code, out, _ = _run(capsys, "branch", "compare", "main", "alt")
    assert code == 0 and "main and alt diverge after step 1" in out
    assert "value = 1.0 (main) vs 5.0 (alt)" in out

    code, out, _ = _run(capsys, "checkout", "main@1", "--out", "step1.h5ad")
    assert code == 0
    import anndata as ad

    checked = ad.read_h5ad(project / "step1.h5ad")
    assert "x" in checked.obs and "y" not in checked.obs

    code, out, _ = _run(
        capsys, "provenance", "export", "--format", "jsonld", "--out", "prov.jsonld"
    )
    graph = json.loads((project / "prov.jsonld").read_text())["@graph"]
    assert code == 0 and sum(r["@type"] == "Activity" for r in graph) == 4
    code, out, _ = _run(capsys, "provenance", "export", "--format", "provn")
    assert code == 0 and out.startswith("document")
    code, out, _ = _run(capsys, "provenance", "show")
    assert code == 0 and out.count("test_add") == 3

    code, out, _ = _run(capsys, "replay", "main", "--json")
    assert code == 0 and json.loads(out)["ok"] is True

    code, out, _ = _run(capsys, "undo")
    assert code == 0 and "undid step 2" in out
    code, out, _ = _run(capsys, "branch", "delete", "main")
    assert code == 0
    assert _run(capsys, "branch", "list")[1].count("main") == 0


def _error(capsys, *args) -> tuple[int, str]:
    code, _, err = _run(capsys, *args)
    assert err.startswith("error: ") and " — " in err, err
    return code, err


def test_bad_input_exit_codes(project, capsys, test_tools, pbmc68k, held_elsewhere):
    assert _error(capsys, "status")[0] == EXIT_CODES["ProjectError"]  # no project yet
    code, err = _error(capsys, "init", "--data", "missing.h5ad")
    assert code == EXIT_CODES["InputNotFoundError"] == 3
    assert not (project / ".scagent").exists()  # nothing half-made
    assert _run(capsys, "init", "--data", "data.h5ad")[0] == 0

    code, err = _error(capsys, "run", "no_such_tool")
    assert code == EXIT_CODES["UnknownToolError"] == 13
    code, err = _error(capsys, "run", "test_add", "--param", "nope=1")
    assert code == 2 and "nope" in err
    code, err = _error(capsys, "run", "test_add", "--param", "value=99")
    assert code == 2 and "value" in err
    code, err = _error(capsys, "run", "test_add", "--param", "value")
    assert code == 2 and "key=value" in err
    code, err = _error(capsys, "run", "leiden")
    assert code == EXIT_CODES["MissingPrerequisiteError"] == 8 and "--auto" in err
    code, err = _error(capsys, "run", "test_interrupt")
    assert code == 130
    code, err = _error(capsys, "branch", "switch", "nope")
    assert code == EXIT_CODES["RefNotFoundError"] == 14
    code, err = _error(capsys, "checkout", "main@7", "--out", "x.h5ad")
    assert code == 14 and "no step 7" in err
    assert not (project / "x.h5ad").exists()
    code, err = _error(capsys, "undo")
    assert code == 14

    with held_elsewhere(project / ".scagent" / "lock"):
        code, err = _error(capsys, "run", "test_add")
    assert code == EXIT_CODES["ProjectLockedError"] == 11

    # scaled data without counts, asked to normalize
    pbmc = project / "pbmc"
    pbmc.mkdir()
    pbmc68k.write_h5ad(pbmc / "pbmc.h5ad")
    assert _run(capsys, "init", "-C", str(pbmc), "--data", str(pbmc / "pbmc.h5ad"))[0] == 0
    code, err = _error(capsys, "run", "normalize", "-C", str(pbmc))
    assert code == EXIT_CODES["DataStateError"] == 7 and "counts" in err

    # a corrupted object in the store
    _run(capsys, "run", "test_add")
    objects = sorted(
        (project / ".scagent" / "store" / "objects").rglob("*"), key=lambda p: p.stat().st_mtime
    )
    victim = [p for p in objects if p.is_file()][-1]
    victim.write_bytes(victim.read_bytes()[:-40])
    code, err = _error(capsys, "checkout", "main", "--out", "y.h5ad")
    assert code == EXIT_CODES["StoreCorruptionError"] == 10 and "part" in err

    # project.json failing the schema, then written by a newer scagent
    config_path = project / ".scagent" / "project.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "context": {"tissue": "no such tissue"}}))
    code, err = _error(capsys, "status")
    assert code == 9 and "context.tissue" in err
    config_path.write_text(json.dumps({**config, "scagent_version": "99.1"}))
    code, err = _error(capsys, "status")
    assert code == EXIT_CODES["IncompatibleVersionError"] == 12 and "99.1" in err


def test_verify_finds_a_damaged_object(project, capsys, test_tools):
    assert _run(capsys, "init", "--data", "data.h5ad")[0] == 0
    assert _run(capsys, "run", "test_add", "--param", "value=2", "--param", "key_added=x")[0] == 0
    code, out, _ = _run(capsys, "verify", "main")
    assert code == 0 and "2 snapshot(s) intact" in out
    assert _run(capsys, "verify", "main@0")[0] == 0
    objects = sorted((project / ".scagent" / "store" / "objects").rglob("*"))
    victim = max((p for p in objects if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the largest stored part
    victim.write_bytes(bytes(data))
    code, out, err = _run(capsys, "verify")
    assert code == EXIT_CODES["StoreCorruptionError"]
    assert "corrupt:" in out and "problem(s) in the snapshot store" in err
