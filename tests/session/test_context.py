"""The experiment context schema (minSCe) and the project.json checks."""

from __future__ import annotations

import json

import pytest

from scagent.errors import IncompatibleVersionError, InputNotFoundError, ProjectError
from scagent.session import ExperimentContext, Project, ProjectContext, load_context
from scagent.session.context import validate_context


def test_shorthands_expand_to_ontology_terms():
    ctx = validate_context(
        {
            "organism": "human",
            "tissue": "lung",
            "platform": "10X 3' v3",
            "samples": [
                {"name": "s1", "condition": "healthy"},
                {"name": "s2", "condition": "copd"},
            ],
            "design": {"type": "case-control", "factors": ["condition"]},
            "hypotheses": ["AT2 cells are depleted in COPD"],
        }
    )
    assert ctx.organism.taxon_id == "NCBITaxon:9606"
    assert ctx.organism.name == "Homo sapiens"
    assert ctx.tissue.uberon_id == "UBERON:0002048"
    assert ctx.platform == "10x 3' v3"
    assert ctx.library_type == "3' tag"  # implied by the platform
    assert ctx.design.type == "case_control"
    assert ProjectContext is ExperimentContext


def test_mouse_by_taxon_and_tissue_by_id():
    ctx = validate_context(
        {
            "organism": {"taxon_id": "NCBITaxon:10090"},
            "tissue": {"uberon_id": "UBERON:0002048"},
            "platform": "smart-seq2",
        }
    )
    assert ctx.organism.name == "Mus musculus"
    assert ctx.organism.common_name == "mouse"
    assert ctx.tissue.label == "lung"
    assert ctx.library_type == "full length"


def test_every_field_error_is_listed_plainly():
    with pytest.raises(ProjectError) as info:
        validate_context(
            {
                "organism": {"name": "human", "taxon_id": "NCBITaxon:10090"},
                "tissue": "lungz",
                "platform": "nanopore-magic",
                "bogus": 1,
            }
        )
    message = info.value.message
    assert "context.organism" in message and "Mus musculus" in message
    assert "context.tissue" in message and "'lung'" in message  # a suggestion
    assert "context.platform" in message and "Smart-seq2" in message  # the allowed list
    assert "context.bogus" in message
    assert info.value.exit_code == 9


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"tissue": "UBERON:9999999"}, "uberon_id"),
        ({"organism": "NCBITaxon:abc"}, "taxon_id"),
        ({"samples": [{"name": "a"}, {"name": "a"}]}, "unique"),
        (
            {
                "samples": [{"name": "a"}],
                "design": {"type": "case_control", "factors": ["genotype"]},
            },
            "genotype",
        ),
        ({"design": "a fancy design"}, "design"),
    ],
)
def test_bad_values_rejected(context, field):
    with pytest.raises(ProjectError, match=field):
        validate_context(context)


def test_load_context_json_and_yaml(tmp_path):
    (tmp_path / "ctx.json").write_text(json.dumps({"organism": "mouse", "tissue": "liver"}))
    (tmp_path / "ctx.yaml").write_text("organism: human\ntissue: blood\nplatform: 10x 5' v2\n")
    assert load_context(tmp_path / "ctx.json").tissue.uberon_id == "UBERON:0002107"
    assert load_context(tmp_path / "ctx.yaml").library_type == "5' tag"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ProjectError, match="not valid"):
        load_context(tmp_path / "bad.json")
    with pytest.raises(InputNotFoundError):
        load_context(tmp_path / "missing.json")


def test_project_json_roundtrip_and_schema_errors(tmp_path):
    project = Project.create(tmp_path, paradigm="atlas", context={"organism": "mouse"})
    reopened = Project.open(tmp_path)
    assert reopened.config.paradigm == "atlas"
    assert reopened.config.context.organism.taxon_id == "NCBITaxon:10090"
    for sub in ("store", "refs"):
        assert (project.dir / sub).is_dir()

    raw = json.loads(project.config_path.read_text())
    raw["context"]["tissue"] = "not a tissue at all"
    raw["paradigm"] = "astrology"
    project.config_path.write_text(json.dumps(raw))
    with pytest.raises(ProjectError) as info:
        Project.open(tmp_path)
    assert "context.tissue" in info.value.message and "paradigm" in info.value.message

    project.config_path.write_text("{")
    with pytest.raises(ProjectError, match="not valid JSON"):
        Project.open(tmp_path)


def test_newer_project_is_refused(tmp_path):
    project = Project.create(tmp_path)
    raw = json.loads(project.config_path.read_text())
    raw["scagent_version"] = "99.0"
    project.config_path.write_text(json.dumps(raw))
    with pytest.raises(IncompatibleVersionError, match=r"99\.0"):
        Project.open(tmp_path)
    raw["scagent_version"] = "0.0.1"
    raw["schema_version"] = 42
    project.config_path.write_text(json.dumps(raw))
    with pytest.raises(IncompatibleVersionError, match="layout 42"):
        Project.open(tmp_path)


def test_no_project_and_double_init(tmp_path):
    with pytest.raises(ProjectError, match="no scagent project"):
        Project.open(tmp_path)
    Project.create(tmp_path)
    with pytest.raises(ProjectError, match="already"):
        Project.create(tmp_path)
    (tmp_path / "sub").mkdir()
    assert Project.open(tmp_path / "sub").root == tmp_path.resolve()  # found from below
