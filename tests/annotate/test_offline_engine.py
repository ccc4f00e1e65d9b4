"""The offline annotator, the engine, write-back, guardrails, marker tables and bad input."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scagent.annotate import (
    DatasetReport,
    GuardrailConfig,
    OfflineAnnotator,
    annotate_anndata,
    annotate_markers,
    read_marker_table,
    validate_labels,
)
from scagent.errors import InvalidDataError, InvalidParameterError
from scagent.knowledge import MarkerDB
from scagent.knowledge import ontology as onto


def _consistent(pred: str | None, true: str) -> bool:
    """Right at some granularity: the true term, or an ancestor/descendant within 3 steps."""
    if not pred:
        return False
    if pred == true:
        return True
    d = onto.distance(pred, true)
    return d is not None and d <= 3 and not onto.is_generic(pred)


def test_offline_names_simulated_types(sim_all_types):
    _, types, markers = sim_all_types
    ann = OfflineAnnotator(MarkerDB.bundled())
    truth = dict(zip(types["cell_type"], types["cell_ontology_id"], strict=True))
    right = exact = 0
    for m in markers:
        p = ann.predict(m.genes, species="human", negative_genes=m.negative_genes)
        right += _consistent(p.ontology_id, truth[m.cluster_id])
        exact += p.ontology_id == truth[m.cluster_id]
        assert 0.0 <= p.confidence <= 1.0
    assert right / len(markers) >= 0.95
    assert exact / len(markers) >= 0.5


def test_offline_unknown_and_candidates():
    ann = OfflineAnnotator(MarkerDB.bundled())
    p = ann.predict(["NOTAGENE1", "NOTAGENE2"], species="human")
    assert p.is_unknown and p.ontology_id is None and p.confidence == 0.0
    b = ann.predict(["MS4A1", "CD79A", "CD79B", "CD19", "BANK1"], species="human", tissue="blood")
    assert onto.broad_type(b.ontology_id) == "b cell"
    assert b.candidates and b.candidates[0].score >= b.candidates[-1].score
    assert {"MS4A1", "CD79A"} & set(b.evidence_markers)
    # Weak evidence gets less confidence than strong evidence.
    weak = ann.predict(["MS4A1", "ACTB", "GAPDH", "EEF1A1"], species="human")
    assert weak.confidence < b.confidence


def test_annotate_anndata_writes_back_and_keeps_user_columns(sim_all_types):
    adata, types, _ = sim_all_types
    a = adata.copy()
    report = annotate_anndata(a, "cell_type", species="human")
    cols = ["annotation_label", "annotation_cl_id", "annotation_status", "annotation_confidence"]
    for c in cols:
        assert c in a.obs
    # Every cell carries its cluster's record.
    for rec in report.clusters:
        cells = a.obs["cell_type"].astype(str) == rec.cluster_id
        assert set(a.obs.loc[cells, "annotation_label"].astype(str)) == {rec.label}
        assert set(a.obs.loc[cells, "annotation_status"].astype(str)) == {rec.status}
    back = DatasetReport.from_json(a.uns["annotation"]["report"])
    assert back.clusters[0].label == report.clusters[0].label
    assert report.marker_source == "computed"
    assert report.stats.n_clusters == len(types)
    assert report.stats.n_supported + report.stats.n_flagged + report.stats.n_unknown == len(types)
    # A second run may replace its own columns; a user's column is never replaced silently.
    annotate_anndata(a, "cell_type", species="human")
    a.obs["mine_label"] = "x"
    with pytest.raises(InvalidParameterError, match="mine_label"):
        annotate_anndata(a, "cell_type", species="human", key_added="mine")
    annotate_anndata(a, "cell_type", species="human", key_added="mine", overwrite=True)
    assert (a.obs["mine_label"] != "x").all()


def test_rank_genes_groups_is_reused(pbmc68k):
    a = pbmc68k.copy()
    report = annotate_anndata(a, "bulk_labels", tissue="blood", key_added=None)
    assert report.marker_source == "uns['rank_genes_groups']"
    assert "annotation_label" not in a.obs  # key_added=None writes nothing
    b_cells = report.cluster("CD19+ B")
    assert onto.broad_type(b_cells.ontology_id) == "b cell"


def test_validate_only_on_bulk_labels(pbmc68k):
    a = pbmc68k.copy()
    before = set(a.obs.columns)
    report = validate_labels(a, "bulk_labels")
    assert report.mode == "validate"
    assert set(a.obs.columns) == before  # nothing written
    b = report.cluster("CD19+ B")
    assert b.status == "supported" and len(b.guardrails.canonical_markers_found) >= 2
    nk = report.cluster("CD56+ NK")
    assert nk.status == "supported"
    # A label the ontology cannot place is flagged, and says why.
    reg = report.cluster("CD4+/CD25 T Reg")
    assert reg.status == "flagged"
    assert any("Cell Ontology" in p for p in reg.guardrails.problems)


def test_guardrails_flag_negative_markers_and_force_unknown():
    markers = {"0": ["CD3E", "CD3D", "MS4A1", "CD79A", "CD19", "BANK1"]}
    plain = annotate_markers(markers, species="human")
    rec = plain.clusters[0]
    # The checker reports each label's negative markers present among the top markers.
    from scagent.annotate import LabelChecker

    chk = LabelChecker(MarkerDB.bundled(), GuardrailConfig(), "human")
    out = chk.check("CD56-dim natural killer cell", ["CD3E", "GNLY", "NKG7", "FCGR3A"])
    assert "CD3E" in out.check.negative_markers_found and out.status == "flagged"
    strict = annotate_markers(
        {"0": ["ACTB", "MS4A1", "GAPDH"]},
        species="human",
        guardrails={"min_supported": 3, "force_unknown_on_fail": True},
    )
    s = strict.clusters[0]
    assert s.label == "Unknown" and s.status == "unknown"
    assert s.proposed_label and s.proposed_label != "Unknown"
    assert strict.guardrail_config.min_supported == 3
    assert strict.stats.overrides == 1
    assert rec.status in {"supported", "flagged"}


def test_marker_table_formats(tmp_path):
    seurat = pd.DataFrame(
        {
            "p_val": [0, 0, 0, 0, 0, 0],
            "avg_log2FC": [3.0, 2.5, -1.0, 3.1, 2.2, 1.9],
            "p_val_adj": [0, 0, 0, 0, 0, 0],
            "cluster": [0, 0, 0, 1, 1, 1],
            "gene": ["MS4A1", "CD79A", "CD3E", "GNLY", "NKG7", "MT-CO1"],
        }
    )
    seurat.to_csv(tmp_path / "seurat.csv", index=False)
    got = {m.cluster_id: m.genes for m in read_marker_table(tmp_path / "seurat.csv")}
    assert got == {"0": ["MS4A1", "CD79A"], "1": ["GNLY", "NKG7"]}  # lfc<0 and MT- dropped
    scan = pd.DataFrame(
        {
            "group": ["a", "a", "b"],
            "names": ["CD14", "LYZ", "PPBP"],
            "scores": [9.0, 8.0, 7.0],
            "rank": [2, 1, 1],
        }
    )
    scan.to_csv(tmp_path / "scanpy.tsv", sep="\t", index=False)
    got = {m.cluster_id: m.genes for m in read_marker_table(tmp_path / "scanpy.tsv")}
    assert got == {"a": ["LYZ", "CD14"], "b": ["PPBP"]}
    (tmp_path / "wide.csv").write_text(
        'cluster,genes,tissue\nx,"CD3E, CD3D, IL7R",blood\ny,"PPBP;PF4",blood\n'
    )
    wide = read_marker_table(tmp_path / "wide.csv")
    assert wide[0].genes == ["CD3E", "CD3D", "IL7R"] and wide[0].tissue == "blood"
    report = annotate_markers(tmp_path / "wide.csv", species="human")
    assert onto.broad_type(report.cluster("y").ontology_id) in {"platelet", "megakaryocyte"}


# ----------------------------------------------------------------------------- bad input


def test_groupby_missing(sim_all_types):
    adata, _, _ = sim_all_types
    with pytest.raises(InvalidParameterError, match="no_such_column"):
        annotate_anndata(adata.copy(), "no_such_column", species="human")


def test_one_cell_cluster_is_unknown(sim_all_types):
    adata, _, _ = sim_all_types
    a = adata[:400].copy()
    a.obs["cl"] = a.obs["cell_type"].astype(str)
    a.obs.iloc[0, a.obs.columns.get_loc("cl")] = "lonely"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = annotate_anndata(a, "cl", species="human")
    lonely = report.cluster("lonely")
    assert lonely.n_cells == 1 and lonely.status == "unknown" and lonely.label == "Unknown"
    assert "1 cell" in lonely.reason
    assert (a.obs.loc[a.obs["cl"] == "lonely", "annotation_label"] == "Unknown").all()


def test_no_expression_and_no_markers():
    a = ad.AnnData(np.zeros((5, 0), dtype=np.float32))
    a.obs["cl"] = ["a", "a", "b", "b", "b"]
    with pytest.raises(InvalidDataError):
        annotate_anndata(a, "cl", species="human")
    with pytest.raises(InvalidDataError):
        annotate_markers({"a": [], "b": []}, species="human")


def test_markers_none_in_var_names(sim_all_types):
    adata, _, _ = sim_all_types
    a = adata[:200].copy()
    # A stale result from another object: its genes are not in this one.
    groups = a.obs["cell_type"].astype(str).unique().tolist()
    names = np.rec.fromarrays(
        [np.array(["GHOST1", "GHOST2"], dtype=object)] * len(groups), names=groups
    )
    scores = np.rec.fromarrays([np.array([5.0, 4.0])] * len(groups), names=groups)
    a.uns["rank_genes_groups"] = {
        "params": {"groupby": "cell_type", "reference": "rest", "method": "wilcoxon"},
        "names": names,
        "scores": scores,
        "logfoldchanges": scores,
    }
    with pytest.raises(InvalidDataError, match="var_names"):
        annotate_anndata(a, "cell_type", species="human")
    with pytest.raises(InvalidDataError, match="var_names"):
        annotate_markers({"0": ["GHOST1"]}, species="human", var_names=["CD3E", "MS4A1"])


def test_unknown_species():
    with pytest.raises(InvalidParameterError, match="zebrafish"):
        annotate_markers({"0": ["CD3E"]}, species="zebrafish")


def test_empty_marker_table(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidDataError, match="empty"):
        annotate_markers(tmp_path / "empty.csv", species="human")
    (tmp_path / "header.csv").write_text("cluster,genes\n")
    with pytest.raises(InvalidDataError):
        annotate_markers(tmp_path / "header.csv", species="human")


def test_bad_options():
    with pytest.raises(InvalidParameterError):
        annotate_markers({"0": ["CD3E"]}, species="human", chunk_size=0)
    with pytest.raises(InvalidParameterError):
        annotate_markers({"0": ["CD3E"]}, species="human", guardrails={"min_supported": 0})


def test_report_schema_lists_the_fields():
    schema = DatasetReport.schema_json()
    rec = schema["$defs"]["ClusterAnnotation"]["properties"]
    for field in (
        "cluster_id",
        "n_cells",
        "label",
        "ontology_id",
        "ontology_name",
        "confidence",
        "status",
        "evidence_markers",
        "candidates",
        "source",
        "reason",
    ):
        assert field in rec
    assert "cache_hits" in schema["$defs"]["DatasetStats"]["properties"]
