"""`scagent knowledge build/query/validate/score` through typer's CliRunner and through main()."""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

from scagent.cli.main import app, main
from scagent.errors import InputNotFoundError, InvalidParameterError, KnowledgeError
from scagent.knowledge import MarkerDB, knowledge_dir
from scagent.knowledge.build import build_knowledge

runner = CliRunner()


@pytest.fixture
def marker_file(tmp_path):
    p = tmp_path / "markers.tsv"
    p.write_text(
        "cell_type\tgene\tsource\n"
        + "".join(f"NK cells\t{g}\tmine\n" for g in ["GNLY", "NKG7", "GZMB", "PRF1", "KLRD1"])
        + "".join(f"B cells\t{g}\tmine\n" for g in ["CD19", "MS4A1", "CD79A", "CD79B"])
    )
    return p


def test_build_writes_parquet_and_manifest(shared_data, tmp_path):
    out = tmp_path / "kb"
    res = build_knowledge(
        panglaodb=shared_data / "PanglaoDB_markers_27_Mar_2020.tsv",
        sctype=shared_data / "ScTypeDB_full.xlsx",
        gmt=shared_data / "h.all.v7.0.symbols.gmt",
        out=out,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == res.manifest
    assert {i["source"] for i in manifest["inputs"]} == {"panglaodb", "sctype", "gmt"}
    sha = hashlib.sha256((shared_data / "ScTypeDB_full.xlsx").read_bytes()).hexdigest()
    assert [i["sha256"] for i in manifest["inputs"] if i["source"] == "sctype"] == [sha]
    assert manifest["n_rows"] == sum(i["rows"] for i in manifest["inputs"])
    assert manifest["versions"]["CL"].startswith("v")
    db = MarkerDB.built(out)
    assert len(db) == manifest["n_rows"]
    assert (
        hashlib.sha256((out / "markers.parquet").read_bytes()).hexdigest()
        == manifest["table_sha256"]
    )
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_default_includes_built(marker_file, tmp_path):
    # SCAGENT_HOME points at a per-test folder (tests/conftest.py)
    before = len(MarkerDB.default())
    from scagent.knowledge.loaders import read_markers

    table = read_markers(marker_file)
    knowledge_dir().mkdir(parents=True, exist_ok=True)
    MarkerDB(table).save(knowledge_dir() / "markers.parquet")
    after = MarkerDB.default()
    assert len(after) == before + len(table)
    assert "mine" in after.sources


def test_build_errors(tmp_path):
    with pytest.raises(InvalidParameterError):
        build_knowledge(out=tmp_path)
    with pytest.raises(InputNotFoundError):
        build_knowledge(panglaodb=tmp_path / "nope.tsv", out=tmp_path)
    with pytest.raises(KnowledgeError, match="cannot download"):
        build_knowledge(panglaodb="http://127.0.0.1:9/PanglaoDB.tsv", out=tmp_path, timeout=2)
    assert not (tmp_path / "manifest.json").exists()


def test_cli_build_json(shared_data, tmp_path):
    out = tmp_path / "kb"
    r = runner.invoke(
        app,
        [
            "knowledge",
            "build",
            "--sctype",
            str(shared_data / "ScTypeDB_full.xlsx"),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["inputs"][0]["source"] == "sctype" and (out / "markers.parquet").is_file()


def test_cli_query(marker_file):
    r = runner.invoke(
        app,
        [
            "knowledge",
            "query",
            "NK cell",
            "--species",
            "human",
            "--tissue",
            "blood",
            "--db",
            str(marker_file),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["cell_ontology_id"] == "CL:0000623"
    assert {m["gene"] for m in data["markers"]} == {"GNLY", "NKG7", "GZMB", "PRF1", "KLRD1"}
    r = runner.invoke(app, ["knowledge", "query", "NK cells", "--db", str(marker_file)])
    assert r.exit_code == 0 and "GNLY" in r.stdout and "CL:0000623" in r.stdout


def test_cli_validate(marker_file):
    r = runner.invoke(
        app,
        [
            "knowledge",
            "validate",
            "--markers",
            "GNLY,NKG7,GZMB,PRF1",
            "--label",
            "NK cell",
            "--db",
            str(marker_file),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["fits"] and data["overlap"] == ["GNLY", "NKG7", "GZMB", "PRF1"]
    r = runner.invoke(
        app,
        [
            "knowledge",
            "validate",
            "--markers",
            "CD19,MS4A1",
            "--label",
            "NK cell",
            "--db",
            str(marker_file),
        ],
    )
    assert r.exit_code == 0 and "fits poorly" in r.stdout and "B cell" in r.stdout


def test_cli_score(marker_file):
    r = runner.invoke(
        app, ["knowledge", "score", "--genes", "CD79A,CD19", "--db", str(marker_file), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["cell_ontology_id"] == "CL:0000236"


def test_main_returns_exit_codes(marker_file, tmp_path, capsys):
    assert main(["knowledge", "query", "NK cell", "--db", str(marker_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cell_ontology_id"] == "CL:0000623"
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    code = main(["knowledge", "query", "NK cell", "--db", str(bad)])
    assert code == KnowledgeError.exit_code
    err = capsys.readouterr().err
    assert "error:" in err and "foo" in err and " — " in err
    assert main(["knowledge", "build"]) == InvalidParameterError.exit_code
    assert (
        main(["knowledge", "query", "NK cell", "--db", str(tmp_path / "missing.tsv")])
        == InputNotFoundError.exit_code
    )
