"""The offline intent parser: common requests map to the right tool, parameters and columns."""

from __future__ import annotations

import pytest

from scagent.agent.intent import CAPABILITIES, parse_intent
from scagent.data.state import Breadcrumbs, ColumnInfo, DataState


def _state(**kw) -> DataState:
    base = dict(
        n_obs=100,
        n_vars=50,
        x_state="raw_counts",
        x_state_evidence="test",
        x_sparse=True,
        x_dtype="float32",
        counts_location="X",
    )
    return DataState(**{**base, **kw})


@pytest.fixture
def caf_state() -> DataState:
    return _state(
        sample_columns=[ColumnInfo(name="patient", n_levels=4, levels=["p1", "p2", "p3", "p4"])],
        batch_columns=[ColumnInfo(name="run", n_levels=2, levels=["r1", "r2"])],
        condition_columns=[ColumnInfo(name="status", n_levels=2, levels=["tumour", "normal"])],
        breadcrumbs=Breadcrumbs(
            clusterings=[ColumnInfo(name="leiden", n_levels=5, levels=list("01234"))],
            cell_types=[
                ColumnInfo(name="caf_subtype", n_levels=3, levels=["iCAF", "myCAF", "apCAF"])
            ],
        ),
    )


@pytest.mark.parametrize(
    ("text", "tool", "params"),
    [
        ("run QC", "qc_metrics", {}),
        ("Please do quality control.", "qc_metrics", {}),
        ("normalize", "normalize", {}),
        ("normalise to 10000", "normalize", {"target_sum": 10000.0}),
        ("cluster at resolution 0.8", "leiden", {"resolution": 0.8}),
        ("recluster with res=1.5", "leiden", {"resolution": 1.5}),
        ("select 3000 highly variable genes", "hvg", {"n_top_genes": 3000}),
        ("run PCA with 30 components", "pca", {"n_comps": 30}),
        ("compute a UMAP", "umap", {}),
        ("annotate the clusters", "annotate", {}),
        ("filter genes", "filter_genes", {}),
        (
            "filter cells with more than 20% mito",
            "filter_cells",
            {"max_pct_mt": 20, "mode": "thresholds"},
        ),
        ("remove doublets", "doublets", {"remove": True}),
        (
            "cluster key_added=leiden_hi resolution=2",
            "leiden",
            {"resolution": 2, "key_added": "leiden_hi"},
        ),
        ("pseudotime from cluster 2", "diffusion_pseudotime", {"root_group": "2"}),
        ("run consensus clustering", "consensus_clustering", {}),
    ],
)
def test_requests_map_to_tools(text, tool, params):
    intent = parse_intent(text)
    assert intent.kind == "tool"
    assert intent.tool_id == tool
    assert intent.params == params


def test_markers_for_a_cluster_keeps_the_cluster_as_focus():
    intent = parse_intent("find markers for cluster 3")
    assert (intent.tool_id, intent.focus) == ("markers", {"cluster": "3"})
    assert parse_intent("show marker genes").focus == {}


def test_de_between_subtypes_subclusters_the_population(caf_state):
    intent = parse_intent("DE between CAF subtypes", caf_state)
    # "CAF" is found in the levels of obs['caf_subtype']: those cells are subclustered.
    assert intent.tool_id == "de_within_cluster"
    assert intent.params == {"labels": ["iCAF", "myCAF", "apCAF"]}
    assert intent.hints == {"groupby": "caf_subtype"}


def test_de_between_conditions_is_pseudobulk_with_replicates(caf_state):
    intent = parse_intent("DE between normal and tumour", caf_state)
    assert intent.tool_id == "pseudobulk_de"
    assert intent.params == {"reference": "normal", "test_level": "tumour"}
    assert intent.hints == {
        "sample_key": "patient",
        "condition_key": "status",
        "groupby": "caf_subtype",
    }
    assert parse_intent("pseudobulk DE", caf_state).tool_id == "pseudobulk_de"


def test_de_between_two_cell_groups_is_markers_against_the_first(caf_state):
    intent = parse_intent("differential expression between iCAF and myCAF", caf_state)
    assert intent.tool_id == "markers"
    assert intent.params == {"groupby": "caf_subtype", "reference": "iCAF"}
    assert intent.focus == {"cluster": "myCAF"}
    assert parse_intent("DE between the clusters", caf_state).tool_id == "markers"


def test_integration_reads_the_batch_column(caf_state):
    assert parse_intent("integrate by patient", caf_state).params == {"batch_key": "patient"}
    # Without a named column, the batch column the inspector found.
    assert parse_intent("correct the batch effect", caf_state).params == {"batch_key": "run"}


def test_agent_commands():
    compare = parse_intent("compare branches main and hires")
    assert (compare.kind, compare.command, compare.args) == (
        "command",
        "compare",
        ["main", "hires"],
    )
    assert parse_intent("What did we do?").command == "history"
    assert parse_intent("what next?").command == "next"
    assert parse_intent("undo the last step").command == "undo"
    assert parse_intent("export the methods").args == ["methods"]


def test_unknown_request_asks_for_clarification(caf_state):
    intent = parse_intent("make me a sandwich")
    assert intent.kind == "clarify"
    assert "sandwich" in intent.message
    assert parse_intent("   ").kind == "clarify"
    # Every capability example is itself understood (the list does not promise too much).
    for example, _target in CAPABILITIES:
        first = example.split(" / ")[0].replace("(n 2000)", "")
        assert parse_intent(first, caf_state).kind != "clarify", example
    # A population no label mentions: say so, and how to name it.
    unknown = parse_intent("DE between CAF subtypes")
    assert unknown.kind == "clarify" and "labels=" in unknown.message


@pytest.mark.parametrize(
    "text, args",
    [
        ("run the perturbation screen pipeline", ["perturbation_screen"]),
        ("run the CITE-seq pipeline", ["multimodal"]),
        ("run the pipeline for cell-cell communication", ["communication"]),
        ("run the pipeline on my T cell receptor data", ["immune_repertoire"]),
        ("run the multimodal pipeline with the screen of ligands", ["multimodal"]),
        ("run the immune repertoire paradigm", ["immune_repertoire"]),
        ("resume the pipeline", ["--resume"]),
        ("run the whole pipeline", []),
    ],
)
def test_pipeline_requests_name_the_paradigm(text: str, args: list[str]) -> None:
    intent = parse_intent(text)
    assert (intent.kind, intent.command, intent.args) == ("command", "pipeline", args)


@pytest.mark.parametrize(
    "text", ["show the pipeline", "what does the pipeline do for disease?", "pipeline?"]
)
def test_questions_about_the_pipeline_do_not_start_it(text: str) -> None:
    assert parse_intent(text).command != "pipeline"


def test_words_without_pipeline_stay_tools() -> None:
    # "protein" alone is not a request for the multimodal pipeline
    assert parse_intent("cluster at resolution 0.5").tool_id == "leiden"
    assert parse_intent("find markers").kind == "tool"
