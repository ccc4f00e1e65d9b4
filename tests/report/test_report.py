"""The HTML report: sections, self-containment, QC thresholds, annotation table, branch tree, degradation."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from scagent.errors import InvalidParameterError, RefNotFoundError
from scagent.report.html import SECTIONS, branch_tree, build_report, render_report


class _Page(HTMLParser):
    """Sections, images, links, scripts and table cells of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.images: list[str] = []
        self.urls: list[str] = []
        self.scripts_with_src: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections[a["id"]] = a.get("data-status", "")
        if tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if a.get(key):
                self.urls.append(a[key])
        if tag == "script" and a.get("src"):
            self.scripts_with_src.append(a["src"])
        if tag == "link":
            self.urls.append(a.get("href", ""))
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def _png(uri: str):
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")


def test_every_section_in_order_with_status(rendered):
    page, sections = rendered
    parsed = _parse(page)
    assert list(parsed.sections) == list(SECTIONS)
    status = {s.id: s.status for s in sections}
    assert parsed.sections == status
    for sid in ("summary", "qc", "annotation", "markers", "provenance", "branches", "methods"):
        assert status[sid] == "ok", (sid, status[sid])
    # No consensus run on this project: the UMAP section says so and names the command.
    assert status["embedding"] == "partial"
    body = {s.id: str(s.body) for s in sections}
    assert "scagent run consensus_clustering" in body["embedding"]
    assert status["de"] == status["enrichment"] == "not_run"
    assert "scagent run pseudobulk_de" in body["de"]
    # The table of contents links every section.
    for sid in SECTIONS:
        assert f'href="#{sid}"' in page


def test_self_contained_and_images_are_real_pngs(rendered):
    page, _ = rendered
    parsed = _parse(page)
    assert not parsed.scripts_with_src
    external = [u for u in parsed.urls if not u.startswith(("data:", "#"))]
    assert external == []
    assert not re.search(r"https?://", page.split("<body", 1)[1].split("<main>", 1)[0])
    # QC violins, UMAP by leiden and by annotation label, marker dot plot.
    assert len(parsed.images) == 4
    for uri in parsed.images:
        image = np.asarray(_png(uri), dtype=float)
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert image.std() > 10  # a drawn figure, not a blank canvas


def test_qc_limits_reproduce_the_filter_counts(report_project):
    """The limits filter_cells records (and the report draws) are the ones it applied: cells
    outside them are exactly the cells each rule flagged (recorded in the step's metrics)."""
    from scagent.report.figures import qc_thresholds

    store = report_project.store
    for branch, rules in (
        ("main", {"total_counts": "mad_total_counts", "n_genes_by_counts": "mad_n_genes",
                  "pct_counts_mt": "mad_pct_mt"}),
        ("strict", {"n_genes_by_counts": "min_genes", "pct_counts_mt": "max_pct_mt"}),
    ):  # fmt: skip
        step = next(s for s in report_project.history(branch) if s.tool_id == "filter_cells")
        obs = pd.DataFrame(
            {
                c: store.read_part(step.parent, f"obs/{c}")
                for c in ("total_counts", "n_genes_by_counts", "pct_counts_mt", "sample")
            }
        )
        key = step.params.get("sample_key")
        # filter_cells records what it applied; recomputing from its input gives the same
        limits = store.read_part(step.snapshot_id, "uns/filter_cells")["limits"]
        recomputed = qc_thresholds(obs, step.params, obs[key] if key else None)
        pd.testing.assert_frame_equal(limits.reset_index(drop=True), recomputed)
        assert set(limits["group"]) == (set(obs["sample"]) if key else {"all"})
        for metric, rule in rules.items():
            outside = 0
            for _, row in limits[limits["metric"] == metric].iterrows():
                values = obs[metric].to_numpy(float)
                if row["group"] != "all":
                    values = values[(obs["sample"] == row["group"]).to_numpy()]
                low = -np.inf if np.isnan(row["lower"]) else row["lower"]
                high = np.inf if np.isnan(row["upper"]) else row["upper"]
                outside += int(((values < low) | (values > high)).sum())
            assert outside == step.metrics[f"flagged_by_{rule}"], (branch, metric)
        # The strict branch had no limit on total counts: no row claims one.
        if branch == "strict":
            assert "total_counts" not in set(limits["metric"])


def test_annotation_table_matches_the_stored_report(report_project, rendered):
    from scagent.annotate.report import DatasetReport

    page, _ = rendered
    table = _parse(page).tables["annotation-annotation"]
    header, rows = table[0], table[1:]
    report = DatasetReport.from_json(report_project.adata.uns["annotation"]["report"])
    assert len(rows) == len(report.clusters)
    col = {name: header.index(name) for name in header}
    for row in rows:
        cluster = report.cluster(row[col["cluster"]])
        assert row[col["label"]] == cluster.label
        assert row[col["status"]] == cluster.status
        assert float(row[col["confidence"]]) == pytest.approx(cluster.confidence, abs=1e-3)
        assert row[col["evidence markers"]] == ", ".join(cluster.evidence_markers)
    # Status cells carry their class, so that supported / flagged / unknown stand out.
    assert 'class="status supported"' in page


def test_timeline_lists_every_step_with_who_asked(report_project, rendered):
    _, sections = rendered
    body = str(next(s for s in sections if s.id == "provenance").body)
    history = report_project.history("main")
    tools = re.findall(r"<li class='step' data-tool='([^']+)'", body)
    assert tools == [s.tool_id for s in history]
    assert "planned by the dependency graph" in body  # leiden --auto planned normalize..neighbors
    assert "groupby=&#34;leiden&#34;" in body or "groupby=&quot;leiden&quot;" in body


def test_branch_tree_places_forks(report_project, rendered):
    tree = {b["name"]: b for b in branch_tree(report_project)}
    assert tree["main"]["parent"] is None
    assert (tree["hires"]["parent"], tree["hires"]["fork"]) == ("main", 7)
    assert tree["hires"]["steps"][8:] == ["leiden"]
    assert (tree["strict"]["parent"], tree["strict"]["fork"]) == ("main", 1)
    page, _ = rendered
    rows = _parse(page).tables["branch-table"][1:]
    assert {r[0]: r[2] for r in rows} == {"main *": "", "hires": "main@7", "strict": "main@1"}
    assert page.count('<svg class="branch-tree"') == 1


def test_methods_text_from_provenance(rendered):
    _, sections = rendered
    body = str(next(s for s in sections if s.id == "methods").body)
    assert "Leiden algorithm" in body and "11 clusters" in body
    assert "<h2>Methods</h2>" not in body  # the section heading is not repeated


def test_branch_report_describes_that_branch(report_project, tmp_path):
    out = build_report(report_project, branch="strict", out=tmp_path / "sub" / "strict.html")
    page = out.read_text()
    parsed = _parse(page)
    # strict is QC + fixed thresholds only: no embedding, annotation or markers yet.
    assert parsed.sections["qc"] == "ok"
    for sid in ("embedding", "annotation", "markers"):
        assert parsed.sections[sid] == "not_run"
    limits = parsed.tables["qc-thresholds"]
    assert {r[0] for r in limits[1:]} == {"ctrl_1", "ctrl_2", "stim_1", "stim_2"}
    assert [p.name for p in out.parent.iterdir()] == ["strict.html"]  # no temp file left
    with pytest.raises(RefNotFoundError):
        build_report(report_project, branch="nope", out=tmp_path / "x.html")
    with pytest.raises(InvalidParameterError, match="folder"):
        build_report(report_project, out=tmp_path)


def test_bare_anndata_degrades_gracefully(pbmc68k):
    adata = pbmc68k.copy()
    uns_before, obs_before = set(adata.uns), list(adata.obs.columns)
    _, sections = render_report(adata)
    status = {s.id: s.status for s in sections}
    body = {s.id: str(s.body) for s in sections}
    for sid in ("provenance", "branches", "methods"):
        assert status[sid] == "not_run"
        assert "scagent init --data" in body[sid]
    # pbmc68k's QC columns have older names (n_counts, n_genes, percent_mito as a fraction).
    assert status["qc"] == "partial" and "n_counts" in body["qc"]
    assert status["markers"] == "ok" and status["annotation"] == "not_run"
    assert "groupby=louvain" in body["annotation"]  # the hint names a clustering that exists
    # Drawing never writes into the data (scanpy's plots store palettes in uns).
    assert set(adata.uns) == uns_before and list(adata.obs.columns) == obs_before
    with pytest.raises(InvalidParameterError, match="AnnData"):
        render_report(adata, branch="main")


def test_de_and_enrichment_rendered_when_present(pbmc68k):
    adata = pbmc68k.copy()
    rng = np.random.default_rng(0)
    genes = list(adata.var_names[:40])
    results = pd.DataFrame(
        {
            "group": ["CD14+ Monocyte"] * 20 + ["CD19+ B"] * 20,
            "gene": genes,
            "baseMean": rng.uniform(10, 100, 40),
            "log2FoldChange": rng.normal(0, 2, 40),
            "padj": np.r_[np.linspace(1e-6, 0.9, 20), np.linspace(1e-3, 0.9, 20)],
        }
    )
    adata.uns["pseudobulk_de"] = {
        "results": results,
        "params": {"test_level": "stim", "reference": "ctrl", "condition_key": "condition",
                   "design": "~condition", "groupby": "bulk_labels", "alpha": 0.05},
    }  # fmt: skip
    adata.uns["enrichment"] = {
        "results": pd.DataFrame(
            {"group": ["CD19+ B"] * 3, "method": ["ora", "ora", "ulm"],
             "source": ["B cell receptor", "IFN", "B cell receptor"],
             "score": [3.0, -1.0, 2.5], "padj": [1e-5, 0.2, 1e-3]}
        )
    }  # fmt: skip
    page, sections = render_report(adata)
    status = {s.id: s.status for s in sections}
    assert status["de"] == status["enrichment"] == "ok"
    parsed = _parse(page)
    top = parsed.tables["de-top-pseudobulk_de"]
    col = top[0].index("gene")
    # Groups in order, each led by its most significant gene.
    assert top[1][col] == genes[0] and top[1][0] == "CD14+ Monocyte"
    first_b = next(r for r in top[1:] if r[0] == "CD19+ B")
    assert first_b[col] == genes[20]
    assert "stim vs ctrl" in page
    enrich = parsed.tables["enrichment-enrichment"]
    assert enrich[1][enrich[0].index("source")] == "B cell receptor"
    # QC (aliases) + 2 UMAPs + dot plot + 2 volcanoes + an enrichment dot plot per method.
    assert len(parsed.images) == 8


def test_a_failing_section_does_not_cost_the_others(pbmc68k, monkeypatch):
    import scagent.report.html as report_html

    def broken(ctx):
        raise ValueError("simulated drawing failure")

    monkeypatch.setitem(report_html._BUILDERS, "markers", broken)
    _, sections = render_report(pbmc68k.copy())
    status = {s.id: s.status for s in sections}
    assert status["markers"] == "error"
    assert "simulated drawing failure" in str(next(s for s in sections if s.id == "markers").body)
    assert status["summary"] == "ok" and status["embedding"] == "partial"


def test_cli_report(report_project, tmp_path):
    import typer
    from typer.testing import CliRunner

    from scagent.cli.report import register

    app = typer.Typer()
    app.command("noop")(lambda: None)  # typer needs a second command to keep the sub-name
    register(app)
    out = tmp_path / "r.html"
    root = str(report_project.project.root)
    result = CliRunner().invoke(app, ["report", "-C", root, "--branch", "hires", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "Cell-type annotation: not run" in result.output
    assert "· hires</title>" in out.read_text()
    bad = CliRunner().invoke(
        app, ["report", "--data", "x.h5ad", "--branch", "b", "--out", str(out)]
    )
    assert isinstance(bad.exception, InvalidParameterError)
