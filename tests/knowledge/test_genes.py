"""Gene symbols: case rules, aliases, orthologs, Ensembl ids."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scagent.errors import InvalidParameterError
from scagent.knowledge import genes


@pytest.mark.parametrize(
    ("symbol", "species", "expected"),
    [
        ("cd3e", "human", "CD3E"),
        ("Cd3e", "human", "CD3E"),
        ("CD3E", "mouse", "Cd3e"),
        ("c10orf10", "human", "C10orf10"),
        ("1700001C19RIK", "mouse", "1700001C19Rik"),
        ("MT-CO1", "mouse", "mt-Co1"),
        ("mt-co1", "human", "MT-CO1"),
        ("H2-K1", "mouse", "H2-k1"),
    ],
)
def test_normalize_symbol(symbol, species, expected):
    assert genes.normalize_symbol(symbol, species) == expected


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("CD56", ["NCAM1"]),
        ("CD16", ["FCGR3A"]),
        ("CD45", ["PTPRC"]),
        ("CD3", ["CD3E", "CD3D", "CD3G"]),
        ("CD11c", ["ITGAX"]),
        ("CD11b", ["ITGAM"]),
        ("CD20", ["MS4A1"]),
        ("cd138", ["SDC1"]),
        ("IgD", ["IGHD"]),
        ("PD-1", ["PDCD1"]),
        ("FAM46C", ["TENT5C"]),
        ("NKG7", ["NKG7"]),  # an official symbol comes back as it is
    ],
)
def test_resolve_alias_human(alias, expected):
    assert genes.resolve_alias(alias, "human") == expected


def test_resolve_alias_mouse_goes_through_orthologs():
    assert genes.resolve_alias("CD16", "mouse") == ["Fcgr4"]  # FCGR3A's mouse ortholog
    assert genes.resolve_alias("CD56", "mouse") == ["Ncam1"]
    assert genes.resolve_alias("Sca-1", "mouse") == ["Ly6a"]
    # a mouse-only antigen asked for in human stays what it was
    assert genes.resolve_alias("Sca-1", "human") == ["SCA-1"]


def test_alias_table_targets_are_official_symbols():
    from scagent.knowledge.genes import _alias_table, known_symbols

    human = known_symbols("human")
    for alias, (targets, species) in _alias_table().items():
        if species == "human":
            for t in targets:
                assert t in human, (alias, t)


def test_orthologs_both_ways_and_fallback():
    assert genes.human_to_mouse("FCGR3A") == ["Fcgr4"]
    assert "FCGR3A" in genes.mouse_to_human("Fcgr4")
    assert genes.human_to_mouse("CD3E") == ["Cd3e"]  # case rule
    assert genes.human_to_mouse("NOTAGENE1") == ["Notagene1"]
    assert genes.convert_species(["CD3E", "Ncam1"], "human", "mouse")[0] == "Cd3e"
    assert genes.convert_species(["Cd8a", "Fcgr4"], "mouse", "human") == ["CD8A", "FCGR3A"]


def test_species_names():
    assert genes.normalize_species("Homo sapiens") == "human"
    assert genes.normalize_species("Mm") == "mouse"
    assert genes.normalize_species("NCBITaxon:10090") == "mouse"
    with pytest.raises(InvalidParameterError, match="zebrafish"):
        genes.normalize_species("zebrafish")


def test_guess_species():
    assert genes.guess_species_from_symbols(["CD3E", "MS4A1", "LYZ", "NKG7"]) == "human"
    assert genes.guess_species_from_symbols(["Cd3e", "Ms4a1", "Lyz2", "Nkg7"]) == "mouse"
    assert genes.guess_species_from_symbols(["CD3E", "MS4A1", "Cd3e", "Ms4a1"]) == "mixed"
    assert genes.guess_species_from_symbols(["1", "2"]) == "unknown"


def test_known_symbols_cross_check_pbmc68k(pbmc68k):
    # Genes of a real human dataset are overwhelmingly official symbols.
    human = genes.known_symbols("human")
    names = list(pbmc68k.raw.var_names)
    share = np.mean([g in human for g in names])
    assert share > 0.9
    assert not genes.is_official_symbol("CD56", "human")
    assert genes.is_official_symbol("NCAM1", "human")
    assert genes.is_official_symbol("Ncam1", "mouse")


def test_ensembl_detection_and_symbols_from_var():
    ids = ["ENSG00000149294", "ENSG00000203747", "ENSG00000081237.20"]
    assert genes.is_ensembl_id(ids[0]) and genes.is_ensembl_id("ENSMUSG00000039542")
    assert not genes.is_ensembl_id("NCAM1")
    assert genes.detect_gene_id_type(ids) == "ensembl_human"
    assert genes.detect_gene_id_type(["ENSMUSG00000039542"]) == "ensembl_mouse"
    assert genes.detect_gene_id_type(["NCAM1", "CD3E"]) == "symbol"
    adata = ad.AnnData(
        np.zeros((2, 3), dtype=np.float32),
        var=pd.DataFrame({"gene_symbols": ["NCAM1", "FCGR3A", None]}, index=ids),
    )
    assert list(genes.symbols_from_var(adata)) == ["NCAM1", "FCGR3A", "ENSG00000081237.20"]
    # symbols as var_names come back unchanged
    sym = ad.AnnData(np.zeros((1, 2), dtype=np.float32), var=pd.DataFrame(index=["CD3E", "LYZ"]))
    assert list(genes.symbols_from_var(sym)) == ["CD3E", "LYZ"]
    with pytest.raises(InvalidParameterError, match="nope"):
        genes.symbols_from_var(adata, column="nope")


def test_normalize_symbols_dedupes_and_resolves():
    assert genes.normalize_symbols(["cd56", "NCAM1", "", None, "CD3"], "human") == [
        "NCAM1",
        "CD3E",
        "CD3D",
        "CD3G",
    ]
