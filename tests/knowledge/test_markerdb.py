"""MarkerDB: schema, merge, queries through the ontology, validation and candidate scoring."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from scagent.errors import KnowledgeError
from scagent.knowledge import MARKER_COLUMNS, MarkerDB


def _rows(
    cell_type,
    genes,
    *,
    cl="",
    tissue="blood",
    source="s1",
    species="human",
    polarity="positive",
    weight=1.0,
):
    return [
        {
            "species": species,
            "tissue": tissue,
            "uberon_id": "",
            "cell_type": cell_type,
            "cell_ontology_id": cl,
            "gene": g,
            "polarity": polarity,
            "weight": weight,
            "source": source,
            "reference": "PMID:1",
        }
        for g in genes
    ]


A = [f"GA{i}" for i in range(10)]
B = [f"GB{i}" for i in range(10)]


@pytest.fixture
def toy() -> MarkerDB:
    rows = (
        _rows("TypeA", [*A, "UBIQ"])
        + _rows("TypeB", [*B, "UBIQ"])
        + [r for i in range(30) for r in _rows(f"Filler{i}", [f"GF{i}", "UBIQ"])]
    )
    return MarkerDB(pd.DataFrame(rows))


def test_schema_and_categoricals(toy):
    t = toy.table
    assert list(t.columns) == list(MARKER_COLUMNS)
    assert isinstance(t["gene"].dtype, pd.CategoricalDtype)
    assert t["weight"].dtype == np.float32
    with pytest.raises(KnowledgeError, match="lacks columns"):
        MarkerDB(pd.DataFrame({"gene": ["X"]}))
    bad = pd.DataFrame(_rows("T", ["X"], species="zebrafish"))
    with pytest.raises(KnowledgeError, match="zebrafish"):
        MarkerDB(bad)


def test_rank_and_specificity(toy):
    top = toy.score_candidates(["GA1", "GA2", "GA3"], species="human")
    assert top["cell_type"].iloc[0] == "TypeA"
    assert top["n_hits"].iloc[0] == 3
    assert top["hit_genes"].iloc[0] == ["GA1", "GA2", "GA3"]
    # rank order decides between two equally good types
    assert toy.score_candidates(["GA1", "GB1"], species="human")["cell_type"].iloc[0] == "TypeA"
    assert toy.score_candidates(["GB1", "GA1"], species="human")["cell_type"].iloc[0] == "TypeB"
    # a gene that marks every type says little: UBIQ first, GB1 second still picks TypeB
    res = toy.score_candidates(["UBIQ", "GB1"], species="human", top_k=3)
    assert res["cell_type"].iloc[0] == "TypeB"
    assert toy.score_candidates(["UNKNOWN"], species="human").empty


def test_size_normalisation_and_negatives():
    big = [f"GX{i}" for i in range(300)] + A[:3]
    rows = (
        _rows("TypeA", A)
        + _rows("Big", big[:150], source="s1", tissue="blood")
        + _rows("Big", big[150:], source="s2", tissue="lung")
        + _rows("TypeA2", A)
        + _rows("TypeA2", ["GA5"], polarity="negative")
        + _rows("Other", ["GO1"])
    )
    db = MarkerDB(pd.DataFrame(rows))
    res = db.score_candidates(["GA0", "GA1", "GA2", "GA5"], species="human", top_k=5)
    order = list(res["cell_type"])
    # many rows do not win by size: the 10-marker type beats the 303-marker one
    assert order.index("TypeA") < order.index("Big")
    # a negative marker among the top genes penalises TypeA2
    assert order.index("TypeA") < order.index("TypeA2")
    assert res.set_index("cell_type").loc["TypeA2", "negative_hits"] == ["GA5"]
    # negative_genes: genes absent from the cluster penalise types they mark
    res2 = db.score_candidates(
        ["GA0", "GA1"], species="human", negative_genes=["GA2", "GA3", "GA4"]
    )
    assert res2["cell_type"].iloc[0] == "Big"
    assert any("(absent)" in g for g in res2.set_index("cell_type").loc["TypeA", "negative_hits"])


def test_tissue_boost():
    rows = _rows("LungType", ["G1", "G2"], tissue="lung") + _rows(
        "BloodType", ["G1", "G2"], tissue="blood"
    )
    db = MarkerDB(
        pd.DataFrame(rows).assign(
            uberon_id=lambda d: d["tissue"].map(
                {"lung": "UBERON:0002048", "blood": "UBERON:0000178"}
            )
        )
    )
    assert (
        db.score_candidates(["G1", "G2"], species="human", tissue="Lungs")["cell_type"].iloc[0]
        == "LungType"
    )
    assert (
        db.score_candidates(["G1", "G2"], species="human", tissue="PBMC")["cell_type"].iloc[0]
        == "BloodType"
    )
    res = db.score_candidates(["G1", "G2"], species="human", tissue="UBERON:0002048")
    assert res["cell_type"].iloc[0] == "LungType" and bool(res["in_tissue"].iloc[0])


def test_cross_species_through_orthologs():
    db = MarkerDB(
        pd.DataFrame(
            _rows("NK cell", ["NCAM1", "FCGR3A", "NKG7"], cl="CL:0000623")
            + _rows("B cell", ["CD19", "MS4A1"], cl="CL:0000236")
        )
    )
    res = db.score_candidates(["Fcgr4", "Ncam1"], species="mouse")
    assert res["cell_ontology_id"].iloc[0] == "CL:0000623"
    # lower-case or mixed-case input is normalised to the species' case
    assert (
        db.score_candidates(["ncam1", "fcgr3a"], species="human")["cell_type"].iloc[0]
        == "natural killer cell"
    )


def test_merge_and_query_agreement_through_ontology():
    s1 = MarkerDB(pd.DataFrame(_rows("NK cells", ["GNLY", "NKG7", "KLRD1"], source="src1")))
    s2 = MarkerDB(
        pd.DataFrame(
            _rows("Natural killer cell", ["GNLY", "NKG7", "NCAM1"], source="src2")
            + _rows("Natural killer cell", ["CD3E"], source="src2", polarity="negative")
        )
    )
    # rows without ids get them from finalize_table, as loaders do
    from scagent.knowledge.loaders import finalize_table

    s1 = MarkerDB(finalize_table(s1.table.astype(object)))
    s2 = MarkerDB(finalize_table(s2.table.astype(object)))
    db = s1.merge(s2)
    assert len(db) == len(s1) + len(s2)
    assert len(db.merge(s1)) == len(db)  # exact duplicates are kept once
    q = db.query("NK cells", species="human")
    assert q.cell_ontology_id == "CL:0000623"
    m = q.markers.set_index("gene")
    assert m.loc["GNLY", "n_sources"] == 2 and m.loc["KLRD1", "n_sources"] == 1
    assert m.loc["GNLY", "confidence"] > m.loc["KLRD1", "confidence"]
    assert q.positive[:2] == sorted(["GNLY", "NKG7"]) or set(q.positive[:2]) == {"GNLY", "NKG7"}
    assert q.negative == ["CD3E"]
    assert set(q.per_source) == {"src1", "src2"}
    d = q.to_dict()
    assert d["cell_ontology_id"] == "CL:0000623" and len(d["markers"]) == 5
    # a tissue nobody lists: every tissue is returned, flagged
    assert not db.query("NK cell", tissue="liver").tissue_matched
    assert db.query("hepatocyte").n_rows == 0


def test_validate_fits_and_poorly():
    rows = (
        _rows("NK cell", ["GNLY", "NKG7", "GZMB", "PRF1", "KLRD1", "NCAM1"], cl="CL:0000623")
        + _rows("B cell", ["CD19", "MS4A1", "CD79A", "CD79B"], cl="CL:0000236")
        + _rows("T cell", ["CD3E", "CD3D", "CD3G", "CD2"], cl="CL:0000084")
    )
    db = MarkerDB(pd.DataFrame(rows))
    ok = db.validate(["GNLY", "NKG7", "GZMB", "CD56"], "NK cells", species="human")
    assert ok.fits and ok.label_rank == 1
    assert ok.overlap == ["GNLY", "NKG7", "GZMB", "NCAM1"]  # CD56 resolved to NCAM1
    assert ok.p_value < 0.05
    bad = db.validate(["CD19", "MS4A1", "CD79A"], "NK cell")
    assert not bad.fits
    assert bad.best_matches["cell_ontology_id"].iloc[0] == "CL:0000236"
    assert "B cell" in bad.message
    unknown = db.validate(["CD3", "CD2"], "Zorblax cells")
    assert not unknown.fits and unknown.best_matches["cell_ontology_id"].iloc[0] == "CL:0000084"
    assert unknown.to_dict()["best_matches"][0]["cell_ontology_id"] == "CL:0000084"


def test_save_load_parquet_and_default(tmp_path, monkeypatch):
    db = MarkerDB(pd.DataFrame(_rows("NK cell", ["GNLY"], cl="CL:0000623")))
    db.save(tmp_path / "x.parquet")
    again = MarkerDB.load(tmp_path / "x.parquet")
    pd.testing.assert_frame_equal(again.table, db.table, check_categorical=False)
    assert "natural killer" in repr(again) or "1 rows" in repr(again)


def test_load_real_files_and_score(shared_data):
    db = MarkerDB.load(shared_data / "PanglaoDB_markers_27_Mar_2020.tsv").merge(
        MarkerDB.load(shared_data / "ScTypeDB_full.xlsx")
    )
    assert set(db.sources) == {"panglaodb", "sctype"}
    res = db.score_candidates(
        ["CD79A", "MS4A1", "CD19", "CD79B", "BANK1"], species="human", tissue="blood"
    )
    from scagent.knowledge.ontology import broad_type

    assert broad_type(res["cell_ontology_id"].iloc[0]) == "b cell"
    res = db.score_candidates(["Lyz2", "Cd14", "S100a8", "S100a9", "Csf1r"], species="mouse")
    assert broad_type(res["cell_ontology_id"].iloc[0]) in {"macrophage/monocyte", "granulocyte"}
    q = db.query("NK cells", species="human", tissue="blood")
    assert q.cell_ontology_id == "CL:0000623" and len(q.per_source) == 2


def test_scoring_speed_on_100k_rows():
    rng = np.random.default_rng(0)
    n_types, n_genes, n = 2000, 20000, 100_000
    genes = np.array([f"G{i}" for i in range(n_genes)])
    table = pd.DataFrame(
        {
            "species": "human",
            "tissue": rng.choice(["blood", "lung", "liver", "brain"], n),
            "uberon_id": "",
            "cell_type": [f"T{i}" for i in rng.integers(0, n_types, n)],
            "cell_ontology_id": "",
            "gene": genes[rng.zipf(1.3, n) % n_genes],
            "polarity": np.where(rng.random(n) < 0.1, "negative", "positive"),
            "weight": rng.random(n),
            "source": rng.choice(["a", "b", "c"], n),
            "reference": "",
        }
    )
    db = MarkerDB(table).prepare(["human"])
    lists = [list(rng.choice(genes[:3000], 50, replace=False)) for _ in range(200)]
    times = []
    for genes_ in lists:
        t0 = time.perf_counter()
        db.score_candidates(genes_, species="human", tissue="lung", top_k=10)
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 0.01


def test_bundled_table_loads_and_scores():
    db = MarkerDB.bundled()
    if not len(db):
        pytest.skip("bundled markers_curated.tsv not present yet")
    assert set(db.sources) == {"scagent_curated"}
    assert (db.table["cell_ontology_id"] != "").all()
    res = db.score_candidates(
        ["GNLY", "NKG7", "KLRD1", "PRF1", "NCAM1"], species="human", tissue="blood"
    )
    from scagent.knowledge.ontology import broad_type

    assert broad_type(res["cell_ontology_id"].iloc[0]) == "t/nk cell"
    assert MarkerDB.bundled().table is db.table or len(MarkerDB.bundled()) == len(db)
