"""Marker loaders on the real public files and on small files written here, and their errors."""

from __future__ import annotations

import csv

import openpyxl
import pandas as pd
import pytest

from scagent.errors import InputNotFoundError, KnowledgeError
from scagent.knowledge import loaders
from scagent.knowledge.loaders import MARKER_COLUMNS


@pytest.fixture(scope="module")
def panglao(shared_data):
    return loaders.read_panglaodb(shared_data / "PanglaoDB_markers_27_Mar_2020.tsv")


def _raw_panglao(shared_data):
    with open(shared_data / "PanglaoDB_markers_27_Mar_2020.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_panglaodb_rows_and_species_split(shared_data, panglao):
    raw = _raw_panglao(shared_data)
    assert len(raw) == 8286  # the README's count
    n_hs = sum("Hs" in (r["species"] or "").split() for r in raw)
    n_mm = sum("Mm" in (r["species"] or "").split() for r in raw)
    n_none = sum(not ({"Hs", "Mm"} & set((r["species"] or "").split())) for r in raw)
    assert n_none > 0  # a few rows carry no species: they count for both
    t = panglao
    assert list(t.columns) == list(MARKER_COLUMNS)
    human = (t["species"] == "human").sum()
    mouse = (t["species"] == "mouse").sum()
    # Duplicates that appear after alias / ortholog mapping are dropped: at most ~1%.
    assert 0.99 * (n_hs + n_none) <= human <= n_hs + n_none
    assert 0.99 * (n_mm + n_none) <= mouse <= n_mm + n_none
    assert set(t["polarity"]) == {"positive"}
    assert t["weight"].between(0, 1).all()
    # human symbols upper case, mouse title case
    hs = t.loc[t["species"] == "human", "gene"]
    mm = t.loc[t["species"] == "mouse", "gene"]
    assert (hs.str.upper() == hs).mean() > 0.99
    assert (mm.str[1:] == mm.str[1:].str.lower()).mean() > 0.95
    assert t["cell_type"].nunique() == len({r["cell type"] for r in raw})


def test_panglaodb_cell_types_mapped_to_cl(panglao):
    mapped = panglao.drop_duplicates("cell_type").set_index("cell_type")["cell_ontology_id"]
    assert mapped["NK cells"] == "CL:0000623"
    assert mapped["B cells naive"] == "CL:0000788"
    assert mapped["Hepatocytes"] == "CL:0000182"
    assert (mapped != "").mean() > 0.8
    # previous symbols resolved: FAM46C (PanglaoDB) -> TENT5C
    hs = panglao[panglao["species"] == "human"]
    assert "TENT5C" in set(hs["gene"]) and "FAM46C" not in set(hs["gene"])
    tissue = panglao.set_index("cell_type").loc["Hepatocytes", "uberon_id"]
    assert set(pd.Series(tissue).unique()) == {"UBERON:0002107"}


def test_sctype_positive_and_negative(shared_data):
    path = shared_data / "ScTypeDB_full.xlsx"
    ws = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    i1, i2 = header.index("geneSymbolmore1"), header.index("geneSymbolmore2")

    it, ic = header.index("tissueType"), header.index("cellName")

    def pairs(col):
        # one row per (tissue, cell type, gene): ScType repeats genes within a list
        return {
            (r[it], str(r[ic]).strip(), g.strip().upper())
            for r in body
            for g in str(r[col] or "").split(",")
            if g.strip() and g.strip().upper() not in {"NA", "NONE"}
        }

    n_pos, n_neg = len(pairs(i1)), len(pairs(i2))
    t = loaders.read_sctype(path, resolve_aliases=False)
    counts = t["polarity"].value_counts()
    assert counts["positive"] == n_pos
    assert counts["negative"] == n_neg
    assert n_neg > 0
    assert t["tissue"].nunique() == len({r[header.index("tissueType")] for r in body})
    assert set(t["species"]) == {"human"}
    # aliases resolved by default: CD20 -> MS4A1, IgD -> IGHD
    resolved = loaders.read_sctype(path)
    assert "CD20" not in set(resolved["gene"]) and "MS4A1" in set(resolved["gene"])
    plasma = resolved[
        (resolved["cell_type"] == "Plasma B cells") & (resolved["polarity"] == "negative")
    ]
    assert "MS4A1" in set(plasma["gene"])


def test_sctype_mouse_conversion(shared_data):
    t = loaders.read_sctype(shared_data / "ScTypeDB_full.xlsx", species="mouse")
    assert set(t["species"]) == {"mouse"}
    assert "Fcgr4" in set(t["gene"]) or "Cd19" in set(t["gene"])


def test_gmt_markers(shared_data):
    t = loaders.read_gmt_markers(shared_data / "h.all.v7.0.symbols.gmt")
    assert t["cell_type"].nunique() == 50
    assert set(t["species"]) == {"human"}
    assert t["source"].iloc[0] == "gmt:h.all.v7.0.symbols"


def _write_cellmarker(path):
    cols = [
        "species",
        "tissue_class",
        "tissue_type",
        "uberonongology_id",
        "cancer_type",
        "cell_type",
        "cell_name",
        "cellontology_id",
        "marker",
        "Symbol",
        "GeneID",
        "PMID",
    ]
    rows = [
        [
            "Human",
            "Blood",
            "Peripheral blood",
            "UBERON_0000178",
            "Normal",
            "Normal cell",
            "Natural killer cell",
            "CL_0000623",
            "CD56",
            "NCAM1",
            "4684",
            "111",
        ],
        [
            "Human",
            "Blood",
            "Peripheral blood",
            "UBERON_0000178",
            "Normal",
            "Normal cell",
            "Natural killer cell",
            "CL_0000623",
            "CD56",
            "NCAM1",
            "4684",
            "222",
        ],
        [
            "Human",
            "Blood",
            "Peripheral blood",
            "UBERON_0000178",
            "Normal",
            "Normal cell",
            "Natural killer cell",
            "CL_0000623",
            "NKG7",
            "NKG7",
            "4818",
            "111",
        ],
        [
            "Human",
            "Blood",
            "Peripheral blood",
            "UBERON_0000178",
            "Normal",
            "Normal cell",
            "B cell",
            "CL_0000236",
            "CD19",
            "CD19",
            "930",
            "333",
        ],
        [
            "Mouse",
            "Spleen",
            "Spleen",
            "UBERON_0002106",
            "Normal",
            "Normal cell",
            "B cell",
            "CL_0000236",
            "Cd19",
            "Cd19",
            "12478",
            "444",
        ],
        [
            "Human",
            "Liver",
            "Liver",
            "UBERON_0002107",
            "Hepatocellular carcinoma",
            "Cancer cell",
            "Cancer stem cell",
            "",
            "CD133",
            "PROM1",
            "8842",
            "555",
        ],
    ]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        w.writerows(rows)


def test_cellmarker_csv(tmp_path):
    path = tmp_path / "Cell_marker_All.csv"
    _write_cellmarker(path)
    assert loaders.sniff_format(path) == "cellmarker"
    t = loaders.read_cellmarker(path)
    assert len(t) == 4  # NCAM1 twice collapses; the cancer row is dropped
    nk = t[(t["cell_type"] == "Natural killer cell") & (t["gene"] == "NCAM1")].iloc[0]
    assert nk["cell_ontology_id"] == "CL:0000623"
    assert nk["uberon_id"] == "UBERON:0000178"
    assert nk["reference"] == "PMID:111;PMID:222"
    assert nk["weight"] == pytest.approx(0.75)  # two papers
    assert set(t.loc[t["species"] == "mouse", "gene"]) == {"Cd19"}
    assert len(loaders.read_cellmarker(path, include_cancer=True)) == 5
    assert set(loaders.read_cellmarker(path, species="mouse")["species"]) == {"mouse"}


def test_cellmarker_xlsx(tmp_path):
    csv_path = tmp_path / "cm.csv"
    _write_cellmarker(csv_path)
    xlsx = tmp_path / "Cell_marker_Human.xlsx"
    pd.read_csv(csv_path, dtype=str).to_excel(xlsx, index=False)
    assert loaders.sniff_format(xlsx) == "cellmarker"
    assert len(loaders.read_cellmarker(xlsx)) == 4


def test_plain_table_and_species_from_case(tmp_path):
    p = tmp_path / "my_markers.csv"
    p.write_text(
        "cell_type,gene,weight,tissue\nNK cells,GNLY,0.9,PBMC\nNK cells,NKG7,,PBMC\nB cells,MS4A1,1,blood\n"
    )
    assert loaders.sniff_format(p) == "plain"
    t = loaders.read_plain(p)
    assert set(t["species"]) == {"human"}
    assert set(t["cell_ontology_id"]) == {"CL:0000623", "CL:0000236"}
    assert set(t["tissue"]) == {"blood"}
    assert t.loc[t["gene"] == "NKG7", "weight"].iloc[0] == 1.0
    assert set(t["source"]) == {"my_markers"}
    m = tmp_path / "mouse.tsv"
    m.write_text("celltype\tsymbol\nT cells\tCd3e\nT cells\tCd8a\nB cells\tCd19\n")
    assert set(loaders.read_plain(m)["species"]) == {"mouse"}


def test_unknown_columns_names_found_and_expected(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("foo,bar,baz\n1,2,3\n")
    with pytest.raises(KnowledgeError) as err:
        loaders.read_plain(p)
    assert "foo" in err.value.message and "cell_type" in err.value.message
    with pytest.raises(KnowledgeError, match="expected"):
        loaders.sniff_format(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.tsv"
    p.write_text("")
    with pytest.raises(KnowledgeError, match="empty"):
        loaders.read_markers(p)
    h = tmp_path / "header_only.tsv"
    h.write_text("cell_type\tgene\n")
    with pytest.raises(KnowledgeError, match="no rows"):
        loaders.read_plain(h)


def test_missing_file(tmp_path):
    with pytest.raises(InputNotFoundError):
        loaders.read_markers(tmp_path / "nope.tsv")


def test_mixed_species_without_species_column(tmp_path):
    p = tmp_path / "mixed.tsv"
    p.write_text("cell_type\tgene\nT\tCD3E\nT\tCD3D\nT\tCd3e\nT\tCd8a\nB\tMS4A1\nB\tCd19\n")
    with pytest.raises(KnowledgeError, match="species"):
        loaders.read_plain(p)
    # ... but a species column makes it fine
    q = tmp_path / "mixed_ok.tsv"
    q.write_text("cell_type\tgene\tspecies\nT\tCD3E\thuman\nT\tCd3e\tmouse\n")
    assert set(loaders.read_plain(q)["species"]) == {"human", "mouse"}


def test_xlsx_without_expected_sheet(tmp_path):
    p = tmp_path / "ScTypeDB_wrong.xlsx"
    with pd.ExcelWriter(p) as w:
        pd.DataFrame({"a": [1], "b": [2]}).to_excel(w, sheet_name="Notes", index=False)
    with pytest.raises(KnowledgeError) as err:
        loaders.read_sctype(p)
    assert "Notes" in err.value.message and "geneSymbolmore1" in err.value.message
    with pytest.raises(KnowledgeError, match="Sheet9"):
        loaders.read_sctype(p, sheet="Sheet9")
    with pytest.raises(KnowledgeError, match="Notes"):
        loaders.read_cellmarker(p)


def test_bad_polarity_and_weight(tmp_path):
    p = tmp_path / "pol.tsv"
    p.write_text("cell_type\tgene\tpolarity\nT\tCD3E\tmaybe\n")
    with pytest.raises(KnowledgeError, match="polarity"):
        loaders.read_plain(p)
    w = tmp_path / "w.tsv"
    w.write_text("cell_type\tgene\tweight\nT\tCD3E\thigh\n")
    with pytest.raises(KnowledgeError, match="weight"):
        loaders.read_plain(w)
