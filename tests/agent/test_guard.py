"""The gene-name guard: nothing printed names a gene absent from the data and from tool results."""

from __future__ import annotations

import re

from scagent.agent.guard import GeneGuard

DATA_GENES = ["CD8A", "CD8B", "NCAM1", "MS4A1", "LYZ", "MT-CO1", "SIMG00001"]


def test_genes_in_the_data_are_kept_and_words_are_not_genes():
    guard = GeneGuard(DATA_GENES, "human")
    text = "PCA and UMAP show cluster 3 (CD8A, MS4A1, MT-CO1); QC removed 5% of cells; see PC1."
    report = guard.check(text)
    assert report.text == text
    assert not report.changed


def test_alias_and_case_variants_are_corrected_to_the_data():
    guard = GeneGuard(DATA_GENES, "human")
    report = guard.check("NK cells express CD56 and cd8b.")
    assert report.text == "NK cells express NCAM1 and CD8B."
    assert report.corrected == {"CD56": "NCAM1", "cd8b": "CD8B"}


def test_absent_genes_are_removed_and_never_named():
    guard = GeneGuard(DATA_GENES, "human")
    # FOXP3 is a real gene the data does not hold; NOTAGENE7 is invented.
    report = guard.check("Tregs express FOXP3 and NOTAGENE7 next to LYZ.")
    assert "FOXP3" not in report.text and "NOTAGENE7" not in report.text
    assert "LYZ" in report.text
    assert report.removed == 2
    note = report.note()
    assert "2 gene names" in note
    assert "FOXP3" not in note and "NOTAGENE7" not in note


def test_genes_from_tool_results_may_be_named():
    guard = GeneGuard(DATA_GENES, "human")
    guard.allow_from_text('{"top_markers": "0: FOXP3; 1: IL2RA"}')
    report = guard.check("Cluster 0 is marked by FOXP3.")
    assert report.text == "Cluster 0 is marked by FOXP3."


def test_every_gene_shaped_token_left_is_in_the_data():
    guard = GeneGuard(DATA_GENES, "human")
    text = "Markers: CD8A, GZMB, PRF1, CD3E, MS4A1, XIST, fake ABC123, cd8a."
    out = guard.check(text).text
    tokens = set(re.findall(r"\b[A-Z][A-Z0-9\-]+\b", out))
    assert tokens <= set(DATA_GENES) | {"M"}, tokens


def test_mouse_symbols():
    guard = GeneGuard(["Cd8a", "Ncam1", "Lyz2"], "mouse")
    report = guard.check("Cd8a and Foxp3 and Cell Data.")
    assert "Foxp3" not in report.text
    assert "Cd8a" in report.text and "Cell Data" in report.text
