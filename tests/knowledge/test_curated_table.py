"""Checks on the bundled curated marker table: schema, ontology ids, gene symbols, and biology."""

from __future__ import annotations

import csv
import importlib.util
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scagent.knowledge.loaders import MARKER_COLUMNS

TABLE = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "scagent"
    / "knowledge"
    / "data"
    / "markers_curated.tsv"
)
COLUMNS = list(MARKER_COLUMNS)
#: Immune subtypes the table must cover, by Cell Ontology id.
REQUIRED_IMMUNE = {
    "CL:0000895": "CD4 naive T",
    "CL:0000904": "CD4 central memory T",
    "CL:0000905": "CD4 effector memory T",
    "CL:0002038": "T follicular helper",
    "CL:0000545": "Th1",
    "CL:0000546": "Th2",
    "CL:0000899": "Th17",
    "CL:0000815": "regulatory T",
    "CL:0000900": "CD8 naive T",
    "CL:0000907": "CD8 central memory T",
    "CL:0000913": "CD8 effector memory T",
    "CL:0001050": "effector CD8 T",
    "CL:0001062": "CD8 TEMRA",
    "CL:0000940": "MAIT",
    "CL:0000798": "gamma-delta T",
    "CL:0000814": "NKT",
    "CL:0001068": "ILC1",
    "CL:0001069": "ILC2",
    "CL:0001071": "ILC3",
    "CL:0000938": "NK CD56bright",
    "CL:0000939": "NK CD56dim",
    "CL:4033069": "cycling T",
    "CL:0000788": "naive B",
    "CL:0000787": "memory B",
    "CL:0000818": "intermediate/transitional B",
    "CL:0000980": "plasmablast",
    "CL:0000786": "plasma cell",
    "CL:0000844": "germinal center B",
    "CL:0000860": "classical monocyte",
    "CL:0002393": "intermediate monocyte",
    "CL:0000875": "non-classical monocyte",
    "CL:0000583": "alveolar macrophage",
    "CL:0000091": "Kupffer cell",
    "CL:0000129": "microglia",
    "CL:0002394": "cDC1",
    "CL:0002399": "cDC2",
    "CL:0000784": "pDC",
    "CL:0000841": "mregDC",
    "CL:0000453": "Langerhans cell",
    "CL:0000097": "mast cell",
    "CL:0000767": "basophil",
    "CL:0000771": "eosinophil",
    "CL:0000775": "neutrophil",
    "CL:0000556": "megakaryocyte",
    "CL:0000233": "platelet",
    "CL:0000765": "erythroblast",
    "CL:0000038": "erythroid progenitor",
    "CL:0000037": "HSC",
    "CL:0000837": "MPP",
    "CL:0000936": "LMPP",
    "CL:0000557": "GMP",
    "CL:0000051": "CLP",
    "CL:0000050": "MEP",
}
#: Mouse tissues the table must cover.
REQUIRED_MOUSE_TISSUES = {
    "blood",
    "bone marrow",
    "brain",
    "liver",
    "kidney",
    "lung",
    "small intestine",
    "pancreas",
}
#: Tissues whose UBERON id may be left empty (no single term fits).
UBERON_OPTIONAL = {"stroma", "vasculature"}
HUMAN_GENE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]*$")
MOUSE_GENE = re.compile(r"^[A-Z][a-z0-9][A-Za-z0-9.\-]*$")
REFERENCE = re.compile(r"^(PMID:\d+|doi:10\.\d+/\S+)$")
MIN_SHARE_KNOWN = 0.98


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """The curated table as strings, read once per module."""
    return pd.read_csv(TABLE, sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def ontology():
    """The offline CL/UBERON parser, created once per module."""
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

    return OntologyParser()


@pytest.fixture(scope="module")
def celltypist_samples() -> Path:
    """celltypist's bundled gene tables, located without importing celltypist (which writes to ~)."""
    spec = importlib.util.find_spec("celltypist")
    if spec is None or spec.origin is None:
        pytest.skip("celltypist is not installed (it ships the GENCODE and ortholog gene tables)")
    folder = Path(spec.origin).parent / "data" / "samples"
    if not (folder / "GENCODEv44_Gene_id2name.csv").is_file():
        pytest.skip(f"celltypist gene tables not found under {folder}")
    return folder


@pytest.fixture(scope="module")
def gencode_symbols(celltypist_samples: Path) -> set[str]:
    """Official human gene symbols (GENCODE v44)."""
    names = pd.read_csv(celltypist_samples / "GENCODEv44_Gene_id2name.csv", header=None)[1]
    return set(names.dropna())


@pytest.fixture(scope="module")
def mouse_symbols(celltypist_samples: Path) -> set[str]:
    """Mouse gene symbols from celltypist's Ensembl ortholog tables (mouse column of each)."""
    symbols: set[str] = set()
    for path in celltypist_samples.glob("*2Mouse_Genes.csv"):
        symbols |= set(pd.read_csv(path, header=None)[1].dropna())
    if not symbols:
        pytest.skip("no mouse ortholog tables in celltypist")
    return symbols


def _unknown_share(genes: set[str], known: set[str]) -> tuple[float, list[str]]:
    unknown = sorted(g for g in genes if g not in known)
    return 1 - len(unknown) / len(genes), unknown


def test_header_is_the_documented_schema():
    with TABLE.open(encoding="utf-8") as handle:
        header = next(csv.reader(handle, delimiter="\t"))
    assert header == COLUMNS


def test_fields_are_filled_and_typed(table: pd.DataFrame):
    required = [c for c in COLUMNS if c != "uberon_id"]
    empty = table[(table[required] == "").any(axis=1)]
    assert empty.empty, f"rows with empty fields:\n{empty.head()}"
    assert set(table["species"]) == {"human", "mouse"}
    assert set(table["polarity"]) <= {"positive", "negative"}
    assert set(table["source"]) == {"scagent_curated"}
    weights = table["weight"].astype(float)
    assert weights.between(0, 1).all(), table[~weights.between(0, 1)]


def test_no_duplicate_rows(table: pd.DataFrame):
    key = ["species", "tissue", "cell_type", "gene", "polarity"]
    duplicated = table[table.duplicated(key, keep=False)]
    assert duplicated.empty, f"duplicate rows:\n{duplicated[key]}"
    # A gene is never both a positive and a negative marker of the same cell type.
    both = table.groupby(["species", "tissue", "cell_type", "gene"])["polarity"].nunique()
    assert (both == 1).all(), both[both > 1]


def test_breadth_of_cell_types_and_tissues(table: pd.DataFrame):
    cell_types = table[["cell_ontology_id", "cell_type"]].drop_duplicates()
    assert len(cell_types) >= 250
    assert table["tissue"].nunique() >= 20
    mouse_tissues = set(table.loc[table["species"] == "mouse", "tissue"])
    assert REQUIRED_MOUSE_TISSUES <= mouse_tissues, REQUIRED_MOUSE_TISSUES - mouse_tissues


def test_required_immune_subtypes_present(table: pd.DataFrame):
    human_ids = set(table.loc[table["species"] == "human", "cell_ontology_id"])
    all_ids = set(table["cell_ontology_id"])
    missing = {cl: name for cl, name in REQUIRED_IMMUNE.items() if cl not in all_ids}
    assert not missing, f"missing immune subtypes: {missing}"
    # The blood and bone-marrow hierarchy must exist for human, not only for mouse.
    core_human = {"CL:0000895", "CL:0000815", "CL:0000938", "CL:0000939", "CL:0000037"}
    assert core_human <= human_ids


def test_each_cell_type_has_three_positive_markers(table: pd.DataFrame):
    positives = (
        table[table["polarity"] == "positive"]
        .groupby(["species", "tissue", "cell_type"])["gene"]
        .nunique()
    )
    all_types = table.groupby(["species", "tissue", "cell_type"]).size().index
    counts = positives.reindex(all_types, fill_value=0)
    thin = counts[counts < 3]
    assert thin.empty, f"cell types with fewer than 3 positive markers:\n{thin}"
    # Every cell type names its defining markers (weight 1), not only supporting ones.
    top = table[table["polarity"] == "positive"].groupby(["species", "tissue", "cell_type"])
    assert (top["weight"].apply(lambda w: (w.astype(float) == 1.0).any())).all()


def test_one_ontology_id_per_cell_type_name(table: pd.DataFrame):
    ids = table.groupby(["species", "cell_type"])["cell_ontology_id"].nunique()
    assert (ids == 1).all(), ids[ids > 1]


def test_cell_ontology_ids_are_current_cl_terms(table: pd.DataFrame, ontology):
    bad = {}
    for cl_id in sorted(set(table["cell_ontology_id"])):
        if not cl_id.startswith("CL:") or not ontology.is_valid_term_id(cl_id):
            bad[cl_id] = "invalid"
        elif ontology.is_term_deprecated(cl_id):
            bad[cl_id] = "obsolete"
    assert not bad, bad


def test_uberon_ids_are_current_and_one_per_tissue(table: pd.DataFrame, ontology):
    per_tissue = table.groupby("tissue")["uberon_id"].unique()
    for tissue, ids in per_tissue.items():
        assert len(ids) == 1, f"{tissue} has several UBERON ids: {list(ids)}"
        uberon = ids[0]
        if uberon == "":
            assert tissue in UBERON_OPTIONAL, f"{tissue} has no UBERON id"
            continue
        assert uberon.startswith("UBERON:") and ontology.is_valid_term_id(uberon), uberon
        assert not ontology.is_term_deprecated(uberon), uberon
    assert per_tissue["blood"][0] == "UBERON:0000178"
    assert per_tissue["brain"][0] == "UBERON:0000955"


def test_gene_symbol_case_matches_species(table: pd.DataFrame):
    human = table.loc[table["species"] == "human", "gene"]
    mouse = table.loc[table["species"] == "mouse", "gene"]
    bad_human = sorted(set(human[~human.str.match(HUMAN_GENE)]))
    bad_mouse = sorted(set(mouse[~mouse.str.match(MOUSE_GENE)]))
    assert not bad_human, f"human genes not in HGNC upper case: {bad_human}"
    assert not bad_mouse, f"mouse genes not in MGI title case: {bad_mouse}"


def test_references_are_pmids_or_dois(table: pd.DataFrame):
    bad = sorted(set(table.loc[~table["reference"].str.match(REFERENCE), "reference"]))
    assert not bad, bad


def test_human_genes_are_official_gencode_symbols(table: pd.DataFrame, gencode_symbols):
    genes = set(table.loc[table["species"] == "human", "gene"])
    share, unknown = _unknown_share(genes, gencode_symbols)
    assert share >= MIN_SHARE_KNOWN, f"{share:.1%} known; not GENCODE v44 symbols: {unknown}"


def test_mouse_genes_are_known_mouse_symbols(
    table: pd.DataFrame, mouse_symbols: set[str], gencode_symbols: set[str]
):
    # The ortholog tables list only genes with a human/primate/pig ortholog, and miss some
    # one-to-many cases (Cd68, Hhex); a title-case symbol whose upper case is the human
    # symbol is accepted as that ortholog. Mouse-only genes (Ly6c2, Mcpt8) stay unknown.
    genes = set(table.loc[table["species"] == "mouse", "gene"])
    known = mouse_symbols | {g for g in genes if g.upper() in gencode_symbols}
    share, unknown = _unknown_share(genes, known)
    assert share >= MIN_SHARE_KNOWN, f"{share:.1%} known; unknown mouse symbols: {unknown}"


def test_mouse_only_genes_are_known_to_panglaodb(table: pd.DataFrame, shared_data: Path):
    panglao = pd.read_csv(shared_data / "PanglaoDB_markers_27_Mar_2020.tsv", sep="\t")
    mouse_upper = set(
        panglao.loc[panglao["species"].str.contains("Mm", na=False), "official gene symbol"]
    )
    genes = set(table.loc[table["species"] == "mouse", "gene"])
    # The mouse-specific markers the ortholog check cannot confirm must at least be
    # genes PanglaoDB reports in mouse.
    for gene in ["Ly6c2", "Ly6g", "Mcpt8", "Ly6a"]:
        assert gene in genes
        assert gene.upper() in mouse_upper, gene


#: Our Cell Ontology id -> PanglaoDB cell type, for markers both should agree on.
PANGLAO_NAMES = {
    "CL:0000236": "B cells",
    "CL:0000623": "NK cells",
    "CL:0000097": "Mast cells",
    "CL:0000784": "Plasmacytoid dendritic cells",
    "CL:0000786": "Plasma cells",
    "CL:0000815": "T regulatory cells",
    "CL:0000233": "Platelets",
    "CL:0000556": "Megakaryocytes",
    "CL:0000771": "Eosinophils",
    "CL:0000182": "Hepatocytes",
    "CL:0000091": "Kupffer cells",
    "CL:0000632": "Hepatic stellate cells",
    "CL:1000488": "Cholangiocytes",
    "CL:0000169": "Beta cells",
    "CL:0000171": "Alpha cells",
    "CL:0000173": "Delta cells",
    "CL:0002064": "Acinar cells",
    "CL:0002062": "Pulmonary alveolar type I cells",
    "CL:0002063": "Pulmonary alveolar type II cells",
    "CL:0000653": "Podocytes",
    "CL:0005009": "Principal cells",
    "CL:0000127": "Astrocytes",
    "CL:0000128": "Oligodendrocytes",
    "CL:0002453": "Oligodendrocyte progenitor cells",
    "CL:0000129": "Microglia",
    "CL:0000148": "Melanocytes",
    "CL:0000216": "Sertoli cells",
    "CL:0000178": "Leydig cells",
    "CL:0000136": "Adipocytes",
    "CL:0000510": "Paneth cells",
    "CL:0000584": "Enterocytes",
    "CL:0000669": "Pericytes",
    "CL:0000077": "Mesothelial cells",
    "CL:0000746": "Cardiomyocytes",
    "CL:0000740": "Retinal ganglion cells",
}

#: Our Cell Ontology id -> ScType immune or pancreas cell type.
SCTYPE_NAMES = {
    "CL:0000788": "Naive B cells",
    "CL:0000787": "Memory B cells",
    "CL:0000786": "Plasma B cells",
    "CL:0000826": "Pro-B cells",
    "CL:0000817": "Pre-B cells",
    "CL:0000895": "Naive CD4+ T cells",
    "CL:0000900": "Naive CD8+ T cells",
    "CL:0000798": "γδ-T cells",
    "CL:0000623": "Natural killer  cells",
    "CL:0000875": "Non-classical monocytes",
    "CL:0000784": "Plasmacytoid Dendritic cells",
    "CL:0000233": "Platelets",
    "CL:0000097": "Mast cells",
    "CL:0000771": "Eosinophils",
    "CL:0000169": "Beta cells",
    "CL:0000171": "Alpha cells",
    "CL:0000173": "Delta cells",
    "CL:0002064": "Acinar cells",
    "CL:0002079": "Ductal cells",
    "CL:0002275": "Gamma (PP) cells",
}


def _human_positives(table: pd.DataFrame) -> dict[str, set[str]]:
    human = table[(table["species"] == "human") & (table["polarity"] == "positive")]
    markers: dict[str, set[str]] = defaultdict(set)
    for cl_id, gene in zip(human["cell_ontology_id"], human["gene"], strict=True):
        markers[cl_id].add(gene)
    return markers


def test_markers_agree_with_panglaodb(table: pd.DataFrame, shared_data: Path):
    panglao = pd.read_csv(shared_data / "PanglaoDB_markers_27_Mar_2020.tsv", sep="\t")
    panglao = panglao[panglao["species"].str.contains("Hs", na=False)]
    theirs = panglao.groupby("cell type")["official gene symbol"].apply(set)
    ours = _human_positives(table)
    disagree = {
        cl_id: (name, sorted(ours[cl_id]))
        for cl_id, name in PANGLAO_NAMES.items()
        if len(ours[cl_id] & theirs[name]) < 2
    }
    assert not disagree, f"fewer than 2 markers shared with PanglaoDB: {disagree}"


def test_markers_agree_with_sctype(table: pd.DataFrame, shared_data: Path):
    sctype = pd.read_excel(shared_data / "ScTypeDB_full.xlsx")
    sctype = sctype[sctype["tissueType"].isin(["Immune system", "Pancreas"])]
    theirs = {
        name: set(str(genes).replace(" ", "").split(","))
        for name, genes in zip(sctype["cellName"], sctype["geneSymbolmore1"], strict=True)
    }
    ours = _human_positives(table)
    disagree = {
        cl_id: (name, sorted(ours[cl_id]), sorted(theirs[name]))
        for cl_id, name in SCTYPE_NAMES.items()
        if not ours[cl_id] & theirs[name]
    }
    assert not disagree, f"no marker shared with ScType: {disagree}"


#: pbmc68k bulk label -> the blood cell types (CL ids) its best-scoring curated type may be.
PBMC_EXPECTED = {
    "CD19+ B": {"CL:0000788", "CL:0000787", "CL:0000818", "CL:0000980", "CL:0000786"},
    "CD56+ NK": {"CL:0000623", "CL:0000938", "CL:0000939", "CL:4033071"},
    "CD14+ Monocyte": {"CL:0001054", "CL:0000875", "CL:0002393"},
    "CD34+": {"CL:0008001"},
    "CD8+/CD45RA+ Naive Cytotoxic": {"CL:0000900", "CL:0000907", "CL:4033074"},
    # 68k "Dendritic" sorts were mixed with monocytes.
    "Dendritic": {
        "CL:0002399",
        "CL:0002394",
        "CL:0000784",
        "CL:0017009",
        "CL:0001054",
        "CL:0002393",
        "CL:0000875",
    },
}


def test_blood_markers_rank_the_right_cell_type_on_pbmc68k(table: pd.DataFrame, pbmc68k):
    raw = pbmc68k.raw
    expression = raw.X.toarray() if hasattr(raw.X, "toarray") else np.asarray(raw.X)
    frame = pd.DataFrame(expression, columns=raw.var_names)
    means = frame.groupby(pbmc68k.obs["bulk_labels"].to_numpy()).mean()
    # z-score each gene across the sorted populations so highly expressed genes do not dominate
    z = (means - means.mean()) / (means.std() + 1e-9)
    blood = table[
        (table["species"] == "human")
        & (table["tissue"] == "blood")
        & (table["polarity"] == "positive")
    ]
    scores = {}
    for cl_id, genes in blood.groupby("cell_ontology_id")["gene"]:
        present = [g for g in genes if g in z.columns]
        if len(present) >= 2:
            scores[cl_id] = z[present].mean(axis=1)
    scores = pd.DataFrame(scores)
    wrong = {
        label: scores.loc[label].idxmax()
        for label, expected in PBMC_EXPECTED.items()
        if scores.loc[label].idxmax() not in expected
    }
    assert not wrong, f"best-scoring curated blood type outside the expected lineage: {wrong}"


#: Common marker aliases that are not the official symbol (alias -> official).
ALIASES = {
    "CD56": "NCAM1",
    "CD16": "FCGR3A",
    "CD45": "PTPRC",
    "CD11C": "ITGAX",
    "CD11B": "ITGAM",
    "CD25": "IL2RA",
    "CD127": "IL7R",
    "CD138": "SDC1",
    "CD20": "MS4A1",
    "CD31": "PECAM1",
    "ACPP": "ACP3",
    "CTGF": "CCN2",
}


def test_no_common_aliases_instead_of_official_symbols(table: pd.DataFrame):
    human = set(table.loc[table["species"] == "human", "gene"])
    used = {alias: official for alias, official in ALIASES.items() if alias in human}
    assert not used, f"aliases used instead of official symbols: {used}"
