"""The report's paradigm section shows the communication, perturbation and repertoire results the tools wrote."""

from __future__ import annotations

import scagent.tools as tl
from scagent.data.simulate_communication import simulate_communication
from scagent.data.simulate_perturbation import simulate_perturbation
from scagent.report.html import render_report


def _section(adata):
    page, sections = render_report(adata)
    return page, {s.id: s for s in sections}["paradigm"]


def test_communication_dot_plot_and_top_interactions() -> None:
    adata = simulate_communication(800, 800, seed=3)
    tl.normalize(adata)
    tl.communication(adata, groupby="cell_type", n_perms=20)
    _, _, ligand, receptor = adata.uns["simulation"]["communication"][0]
    _, section = _section(adata)
    body = str(section.body)
    assert section.status == "ok"
    assert 'id="communication-top"' in body and "<img" in body
    assert ligand in body and receptor in body  # the planted pair is among the top rows


def test_knockdown_table_and_guide_shares() -> None:
    screen = simulate_perturbation(900, 800, n_targets=2, seed=3)
    tl.guide_assignment(screen)
    tl.perturbation_de(screen, method="wilcoxon", min_cells=10)
    _, section = _section(screen)
    body = str(section.body)
    targets = screen.uns["simulation"]["perturbation"]["targets"]
    assert 'id="perturbation-knockdown"' in body and all(t in body for t in targets)
    multiplets = (screen.obs["guide"] == "multiple").mean()
    assert f"{multiplets:.1%} multiplets" in body


def test_section_says_not_run_without_paradigm_results(pbmc68k) -> None:
    _, section = _section(pbmc68k)
    assert section.status == "not_run" and "scagent pipeline" in str(section.body)


def test_protein_markers_table_and_gene_markers_section_still_draws() -> None:
    from scagent.data.simulate_cite import simulate_cite

    cite = simulate_cite(800, 600, seed=3)
    tl.normalize(cite)
    tl.protein_normalize(cite)
    cite.obs["population"] = cite.obs["true_protein_population"].astype("category")
    tl.protein_markers(cite, groupby="population")
    tl.markers(cite, groupby="population")
    _, sections = render_report(cite)
    by_id = {s.id: s for s in sections}
    # the antibody table goes to the paradigm section; the gene dot plot is not confused by it
    assert by_id["markers"].status == "ok"
    body = str(by_id["paradigm"].body)
    assert 'id="paradigm-protein-markers"' in body
    row = body.split("<td>B cell</td><td>1</td><td>", 1)[1]
    assert row.startswith(("CD19", "CD20"))  # B cells: their defining antibody ranks first
