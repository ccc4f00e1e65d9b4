"""The Cell Ontology layer: label matching, graph queries, broad types and the scoring rule."""

from __future__ import annotations

import pytest

from scagent.errors import KnowledgeError
from scagent.knowledge import ontology as onto

# Hand-written label variants as they appear in atlases, papers and marker databases.
LABEL_VARIANTS = {
    "NK cells": "CL:0000623",
    "NK cell": "CL:0000623",
    "natural killer cells": "CL:0000623",
    "Tregs": "CL:0000815",
    "Treg": "CL:0000815",
    "CD14+ Mono": "CL:0001054",
    "CD14 Mono": "CL:0001054",
    "CD16 Mono": "CL:0002396",
    "pDC": "CL:0000784",
    "cDC2": "CL:0002399",
    "cDC1": "CL:0002394",
    "B naive": "CL:0000788",
    "naive B cells": "CL:0000788",
    "CD8 TEM": "CL:0000913",
    "MAIT": "CL:0000940",
    "gdT": "CL:0000798",
    "HSPC": "CL:0000037",
    "Plasmablast": "CL:0000980",
    "AT2": "CL:0002063",
    "podocytes": "CL:0000653",
    "L2/3 IT": "CL:4030059",
    "B cells": "CL:0000236",
    "T cells": "CL:0000084",
    "CD4+ T cells": "CL:0000624",
    "CD8+ T cells": "CL:0000625",
    "Monocytes": "CL:0000576",
    "Macrophages": "CL:0000235",
    "Dendritic cells": "CL:0000451",
    "Mast cells": "CL:0000097",
    "Neutrophils": "CL:0000775",
    "Eosinophils": "CL:0000771",
    "Basophils": "CL:0000767",
    "Platelets": "CL:0000233",
    "Megakaryocytes": "CL:0000556",
    "Erythrocytes": "CL:0000232",
    "Hepatocytes": "CL:0000182",
    "Kupffer cells": "CL:0000091",
    "Cholangiocytes": "CL:1000488",
    "Endothelial cells": "CL:0000115",
    "Fibroblasts": "CL:0000057",
    "Pericytes": "CL:0000669",
    "Smooth muscle cells": "CL:0000192",
    "Astrocytes": "CL:0000127",
    "Oligodendrocytes": "CL:0000128",
    "Microglia": "CL:0000129",
    "OPC": "CL:0002453",
    "Oligodendrocyte progenitor cells": "CL:0002453",
    "Adipocytes": "CL:0000136",
    "Keratinocytes": "CL:0000312",
    "Melanocytes": "CL:0000148",
    "Cardiomyocytes": "CL:0000746",
    "Acinar cells": "CL:0000622",
    "Ductal cells": "CL:0002079",
    "Beta cells": "CL:0000169",
    "Alpha cells": "CL:0000171",
    "Goblet cells": "CL:0000160",
    "Club cells": "CL:0000158",
    "Ciliated cells": "CL:0000064",
    "Paneth cells": "CL:0000510",
    "Enterocytes": "CL:0000584",
    "Sertoli cells": "CL:0000216",
    "Leydig cells": "CL:0000178",
    "Plasma cells": "CL:0000786",
    "Memory B cells": "CL:0000787",
    "Naive CD4 T": "CL:0000895",
    "CD4 TCM": "CL:0000904",
    "NK_CD56bright": "CL:0000938",
    "CD56-dim Natural Killer": "CL:0000939",
    "gamma-delta T": "CL:0000798",
    "Mucosal associated invariant T": "CL:0000940",
    "Plasmacytoid Dendritic Cell": "CL:0000784",
    "Innate Lymphoid Cell": "CL:0001065",
    "Erythroid cell": "CL:0000764",
    "Schwann cells": "CL:0002573",
    "Lymphatic endothelial cells": "CL:0002138",
    "Vip+ GABAergic neuron": "CL:4023016",
    "Type II pneumocytes": "CL:0002063",
    "alveolar type 2 cells": "CL:0002063",
    "T helper cells": "CL:0000912",
    "Regulatory T cells": "CL:0000815",
    "Pancreatic stellate cells": "CL:0002410",
    "Hematopoietic stem cells": "CL:0000037",
    "Germinal center B cells": "CL:0000844",
    "Classical monocytes": "CL:0000860",
    "Non-classical monocytes": "CL:0000875",
    "Proliferating NK": "CL:4033071",
    "Cycling T": "CL:4033069",
    "Myofibroblasts": "CL:0000186",
    "Neurons": "CL:0000540",
    "Rods": "CL:0000604",
    "Muller glia": "CL:0000636",
    "Satellite cells": "CL:0000594",
}


def test_at_least_fifty_variants():
    assert len(LABEL_VARIANTS) >= 50


@pytest.mark.parametrize(("label", "cl_id"), sorted(LABEL_VARIANTS.items()))
def test_label_variant_maps_to_cl(label, cl_id):
    match = onto.label_to_cl(label)
    assert match.cl_id == cl_id, (label, match)
    assert match.confident
    assert onto.is_valid_cl(cl_id)


def test_mapping_accuracy_summary():
    hits = sum(onto.label_to_cl(lab).cl_id == cl for lab, cl in LABEL_VARIANTS.items())
    assert hits / len(LABEL_VARIANTS) >= 0.95


@pytest.mark.parametrize(
    "label",
    [
        "asdkjh cells",
        "Doublets",
        "Unknown",
        "xyz",
        "foo bar baz",
        "Liver cancer stem cell",
        "GABA",
        "Fibroblast-like",
        "",
    ],
)
def test_unknown_label_gets_no_confident_id(label):
    match = onto.label_to_cl(label)
    assert not match.confident
    if match.cl_id is None:
        assert match.method == "none" and match.score < 0.5


def test_methods_and_scores():
    exact = onto.label_to_cl("natural killer cell")
    assert (exact.cl_id, exact.method, exact.score) == ("CL:0000623", "exact", 1.0)
    syn = onto.label_to_cl("NK cells")
    assert syn.method == "synonym" and 0.85 <= syn.score < 1.0
    typo = onto.label_to_cl("vascular lepotomeningeal cell")
    assert typo.cl_id == "CL:4023051" and typo.method == "fuzzy"
    assert onto.label_to_cl("CL:0000236").cl_id == "CL:0000236"
    assert onto.label_to_cl("CL:9999999").cl_id is None


def test_atlas_modern_usage_beats_old_synonyms():
    # CL lists "DC2" as a synonym of pDC; atlases mean cDC2.
    assert onto.label_to_cl("DC2").cl_id == "CL:0002399"


def test_graph_queries():
    anc = onto.ancestors("CL:0000623")
    assert "CL:0000542" in anc and anc["CL:0000542"] == 3  # lymphocyte
    assert list(anc.values()) == sorted(anc.values())
    assert "CL:0000623" in onto.descendants("CL:0000542")
    assert onto.distance("CL:0000623", "CL:0001065") == 2
    assert onto.distance("CL:0001065", "CL:0000623") == 2
    assert onto.distance("CL:0000623", "CL:0000623") == 0
    assert onto.distance("CL:0000623", "CL:0000182") is None
    assert onto.lowest_common_ancestor("CL:0000623", "CL:0000084") == "CL:0000542"
    assert onto.lowest_common_ancestor("CL:0000788", "CL:0000787") == "CL:0000785"
    with pytest.raises(KnowledgeError, match="CL:123"):
        onto.ancestors("CL:123")


@pytest.mark.parametrize(
    ("cl_id", "broad"),
    [
        ("CL:0000623", "t/nk cell"),
        ("CL:0000895", "t/nk cell"),
        ("CL:0000788", "b cell"),
        ("CL:0000980", "b cell"),
        ("CL:0000784", "dendritic cell"),
        ("CL:0001054", "macrophage/monocyte"),
        ("CL:0000129", "microglia"),
        ("CL:0000097", "granulocyte"),
        ("CL:0000232", "erythroid cell"),
        ("CL:0000233", "platelet"),
        ("CL:0000037", "stem cell"),
        ("CL:0002453", "progenitor cell"),
        ("CL:0000115", "endothelial cell"),
        ("CL:0000057", "fibroblast"),
        ("CL:4023016", "neuron"),
        ("CL:0000127", "astrocyte"),
        ("CL:0002063", "epithelial cell"),
        ("CL:0000182", "hepatocyte"),
        ("CL:0000136", "fat cell"),
        ("CL:2000046", "muscle cell"),
    ],
)
def test_broad_type(cl_id, broad):
    assert onto.broad_type(cl_id) == broad


def test_broad_type_names_cover_annotation_dev(shared_data):
    import pandas as pd

    dev = pd.read_csv(shared_data / "annotation_dev.csv")
    names = {n.strip() for v in dev["broad_type"].dropna() for n in v.split(",")}
    known = {name for name, _ in onto.BROAD_TYPES}
    assert names <= known, names - known


def test_score_prediction_rule():
    nk, ilc, lymph, cell = "CL:0000623", "CL:0001065", "CL:0000542", "CL:0000000"
    assert onto.score_prediction(nk, nk) == 1.0
    assert onto.score_prediction(ilc, nk) == 0.5  # ancestor within 3 steps
    assert onto.score_prediction(nk, ilc) == 0.5  # descendant
    assert onto.score_prediction(cell, nk) == 0.0  # generic root never counts
    assert onto.score_prediction(None, nk) == 0.0
    assert onto.score_prediction("CL:0000182", nk) == 0.0  # hepatocyte vs NK
    # same broad type: CD4 naive T vs NK (t/nk cell), far apart in the graph
    assert onto.distance("CL:0000895", nk) is None
    assert onto.score_prediction("CL:0000895", nk, "t/nk cell") == 0.5
    assert onto.score_prediction("CL:0000895", nk) == 0.5
    assert onto.score_prediction("CL:0000182", nk, "t/nk cell") == 0.0
    # several expert ids: the best counts
    assert onto.score_prediction("CL:0000235", "CL:0000576,CL:0000235") == 1.0
    assert onto.score_prediction(lymph, nk) == 0.5


def test_score_prediction_on_annotation_dev_labels(shared_data):
    import pandas as pd

    dev = pd.read_csv(shared_data / "annotation_dev.csv")
    dev = dev[dev["cl_id"].notna()].drop_duplicates("label")
    scores = [
        onto.score_prediction(onto.label_to_cl(r.label).cl_id, r.cl_id, r.broad_type)
        for r in dev.itertuples()
    ]
    # The expert labels themselves, mapped by label_to_cl, must score high against their ids.
    assert sum(scores) / len(scores) > 0.9


@pytest.mark.parametrize(
    ("text", "name", "uberon"),
    [
        ("PBMC", "blood", "UBERON:0000178"),
        ("Bone Marrow", "bone marrow", "UBERON:0002371"),
        ("Lungs", "lung", "UBERON:0002048"),
        ("UBERON:0002107", "liver", "UBERON:0002107"),
        ("Fetal Development", "embryo", "UBERON:0000922"),
        ("Motor Cortex", "motor cortex", "UBERON:0001384"),
        ("urinary bladder", "bladder", "UBERON:0001255"),
    ],
)
def test_normalize_tissue(text, name, uberon):
    t = onto.normalize_tissue(text)
    assert (t.name, t.uberon_id) == (name, uberon)


def test_normalize_tissue_unknown_keeps_text():
    t = onto.normalize_tissue("Some Weird Organoid")
    assert t.name == "some weird organoid" and t.uberon_id is None
    assert onto.normalize_tissue(None) is None


def test_parser_is_a_singleton():
    assert onto.parser() is onto.parser()
