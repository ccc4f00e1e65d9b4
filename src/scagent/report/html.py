"""The analysis report: one self-contained HTML file (inline CSS, JS and images) that opens offline.

:func:`build_report` reads a project branch (or a bare AnnData) and writes the dataset
summary, QC with the thresholds used, embeddings, annotation, markers, DE and
enrichment when present, the provenance timeline, the branch tree and the methods text.
Each section is built on its own: when its data is missing it says "not run" and names
the command that would produce it; when drawing it fails, the section says why and the
rest of the report is still written.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from scagent._atomic import atomic_write_text
from scagent.errors import InvalidParameterError, ScagentError

if TYPE_CHECKING:
    from anndata import AnnData

    from scagent.data.state import DataState
    from scagent.session import Session, StepRecord

__all__ = [
    "SECTIONS",
    "ReportSection",
    "branch_tree",
    "build_report",
    "render_report",
    "write_html",
]

log = logging.getLogger(__name__)

#: Section ids and titles, in report order (the anchors of the table of contents).
SECTIONS: dict[str, str] = {
    "summary": "Dataset",
    "qc": "Quality control",
    "embedding": "UMAP",
    "annotation": "Cell-type annotation",
    "markers": "Marker genes",
    "de": "Differential expression",
    "enrichment": "Enrichment",
    "paradigm": "Paradigm results",
    "provenance": "Provenance timeline",
    "branches": "Branches",
    "methods": "Methods",
}

#: Rows shown per table before the rest are cut (the filter box searches the shown rows).
MAX_ROWS = 500


@dataclass
class ReportSection:
    """One section of the report: its anchor, title, state and HTML body."""

    id: str
    title: str
    #: ``ok``, ``partial`` (some parts not run), ``not_run`` or ``error``.
    status: str = "ok"
    body: Markup = field(default_factory=Markup)


@dataclass
class _Context:
    """What the section builders read: the data, and the project's record when there is one."""

    adata: AnnData
    state: DataState
    session: Session | None = None
    branch: str | None = None
    history: list[StepRecord] = field(default_factory=list)


# ------------------------------------------------------------------------------ helpers


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if np.isnan(v):
            return ""
        if v != 0 and (abs(v) < 10 ** (-digits) or abs(v) >= 1e6):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _table(
    df: pd.DataFrame,
    table_id: str,
    *,
    filterable: bool = True,
    classes: Mapping[str, Callable[[Any], str]] | None = None,
    max_rows: int = MAX_ROWS,
) -> Markup:
    """An escaped HTML table with a filter box; ``classes`` maps a column to a cell-class rule."""
    classes = classes or {}
    parts = []
    if filterable and len(df) > 3:
        parts.append(
            f'<input class="table-filter" type="search" placeholder="filter rows…" '
            f'data-target="{escape(table_id)}" aria-label="filter {escape(table_id)}">'
        )
    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    rows = []
    for _, row in df.head(max_rows).iterrows():
        cells = []
        for col in df.columns:
            value = row[col]
            cls = classes[col](value) if col in classes else ""
            attr = f' class="{escape(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{escape(_fmt(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    parts.append(
        f'<div class="table-wrap"><table id="{escape(table_id)}" class="data sortable">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    if len(df) > max_rows:
        parts.append(f'<p class="note">showing {max_rows} of {len(df):,} rows</p>')
    return Markup("".join(parts))


def _figure(uri: str, alt: str, caption: str = "") -> Markup:
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return Markup(f'<figure><img src="{uri}" alt="{escape(alt)}">{cap}</figure>')


def _not_run(what: str, command: str | None) -> Markup:
    cmd = f" Run <code>{escape(command)}</code> to produce it." if command else ""
    return Markup(
        f'<p class="not-run"><span class="badge not_run">not run</span> {escape(what)}.{cmd}</p>'
    )


def _p(text: str, cls: str = "") -> Markup:
    attr = f' class="{cls}"' if cls else ""
    return Markup(f"<p{attr}>{escape(text)}</p>")


def _kv(rows: list[tuple[str, Any]]) -> Markup:
    body = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(_fmt(v))}</td></tr>"
        for k, v in rows
        if v not in (None, "")
    )
    return Markup(f'<table class="kv">{body}</table>')


def _duration(step: StepRecord) -> float | None:
    try:
        start = datetime.fromisoformat(step.started or "")
        end = datetime.fromisoformat(step.ended or "")
    except ValueError:
        return None
    return (end - start).total_seconds()


def _obs_categorical(adata: AnnData, key: str) -> bool:
    col = adata.obs[key]
    return isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object


# ----------------------------------------------------------------------------- sections


def _section_summary(ctx: _Context) -> ReportSection:
    from scagent.data import summarize_state

    state = ctx.state
    body = [_p(summarize_state(state), "lead")]
    rows: list[tuple[str, Any]] = [
        ("cells", state.n_obs),
        ("genes", state.n_vars),
        ("X", f"{state.x_state} ({state.x_state_evidence})"),
        ("raw counts", state.counts_location or "none found"),
        ("species", state.species),
        ("gene ids", state.gene_id_type),
        ("steps found in the data", ", ".join(state.steps)),
    ]
    for label, cols in (
        ("samples", state.sample_columns),
        ("batches", state.batch_columns),
        ("conditions", state.condition_columns),
        ("donors", state.donor_columns),
    ):
        if cols:
            rows.append(
                (
                    label,
                    "; ".join(
                        f"obs['{c.name}']: {c.n_levels} ({', '.join(c.levels[:8])})" for c in cols
                    ),
                )
            )
    if ctx.session is not None:
        config = ctx.session.project.config
        context = config.context
        rows = [
            ("project", str(ctx.session.project.root)),
            (
                "branch",
                f"{ctx.branch} (step {len(ctx.history) - 1}, snapshot {ctx.session.head(ctx.branch)[:12]})",
            ),
            ("paradigm", config.paradigm),
            ("title", context.title),
            ("organism", getattr(context.organism, "name", None)),
            ("tissue", getattr(context.tissue, "label", None)),
            ("platform", context.platform),
            *rows,
        ]
    body.append(_kv(rows))
    if state.warnings:
        body.append(
            Markup(
                "<ul class='warnings'>"
                + "".join(f"<li>{escape(w)}</li>" for w in state.warnings)
                + "</ul>"
            )
        )
    return ReportSection("summary", SECTIONS["summary"], body=Markup("").join(body))


def _qc_input(ctx: _Context) -> tuple[pd.DataFrame | None, StepRecord | None, str]:
    """QC columns of the cells the filter saw (its input snapshot) when there is one."""
    from scagent.report.figures import QC_METRICS, canonical_qc

    filter_step = next((s for s in reversed(ctx.history) if s.tool_id == "filter_cells"), None)
    sample_key = (filter_step.params.get("sample_key") if filter_step else None) or None
    if filter_step is not None and ctx.session is not None and filter_step.parent:
        manifest = ctx.session.store.manifest(filter_step.parent)
        wanted = [m for m in QC_METRICS if f"obs/{m}" in manifest.parts]
        if wanted:
            extra = [c for c in _display_groups(ctx, sample_key) if f"obs/{c}" in manifest.parts]
            columns = {
                c: ctx.session.store.read_part(filter_step.parent, f"obs/{c}")
                for c in dict.fromkeys([*wanted, *extra])
            }
            return pd.DataFrame(columns), filter_step, "the cells before filter_cells (its input)"
    qc, sources = canonical_qc(ctx.adata.obs)
    if qc.empty or not sources:
        return None, filter_step, ""
    for col in _display_groups(ctx, sample_key):
        if col in ctx.adata.obs:
            qc[col] = ctx.adata.obs[col]
    where = (
        "the cells kept by filter_cells (its input held no QC columns)"
        if filter_step is not None
        else "the cells in the data"
    )
    renamed = [f"{src} as {name}" for name, src in sources.items() if src != f"obs['{name}']"]
    if renamed:
        where += " (read " + ", ".join(renamed) + ")"
    return qc, filter_step, where


def _display_groups(ctx: _Context, sample_key: str | None) -> list[str]:
    """Candidate sample columns to split the violins by, best first."""
    names = [sample_key] if sample_key else []
    state = ctx.state
    for cols in (state.sample_columns, state.batch_columns, state.donor_columns):
        names += [c.name for c in cols if c.n_levels <= 48]
    return [n for n in dict.fromkeys(names) if n]


def _section_qc(ctx: _Context) -> ReportSection:
    from scagent.report.figures import figure_data_uri, qc_thresholds, qc_violins

    section = ReportSection("qc", SECTIONS["qc"])
    obs, filter_step, where = _qc_input(ctx)
    if obs is None:
        section.status = "not_run"
        section.body = _not_run("No per-cell QC metrics in the data", "scagent run qc_metrics")
        return section
    sample_key = (filter_step.params.get("sample_key") if filter_step else None) or None
    groupby = next((g for g in _display_groups(ctx, sample_key) if g in obs), None)
    body = [
        _p(
            f"Distributions over {len(obs):,} cells: {where}"
            + (f", per obs['{groupby}']." if groupby else ".")
        )
    ]
    thresholds = None
    if filter_step is not None:
        recorded = ctx.adata.uns.get("filter_cells")
        recorded = recorded.get("limits") if isinstance(recorded, Mapping) else None
        if isinstance(recorded, pd.DataFrame):
            thresholds = recorded  # what filter_cells applied, as it recorded it
        else:  # projects from before the limits were recorded
            groups = obs[sample_key] if sample_key and sample_key in obs else None
            thresholds = qc_thresholds(obs, filter_step.params, groups)
        m = filter_step.metrics
        body.append(
            _p(
                f"filter_cells (step {filter_step.step}, mode {filter_step.params.get('mode')}) removed "
                f"{_fmt(m.get('n_removed'))} of {_fmt(m.get('n_cells_before'))} cells; "
                + ", ".join(
                    f"{k.removeprefix('flagged_by_')}: {v}"
                    for k, v in m.items()
                    if k.startswith("flagged_by_")
                )
                + " (rules overlap)."
            )
        )
    fig = qc_violins(obs, groupby=groupby, thresholds=thresholds)
    body.append(
        _figure(
            figure_data_uri(fig),
            "QC violins",
            "QC metrics per sample; dashed lines: the filter's limits",
        )
    )
    if thresholds is not None and len(thresholds):
        shown = thresholds.rename(columns={"group": "filtered within"})
        body.append(Markup("<h3>Limits applied</h3>"))
        body.append(_table(shown, "qc-thresholds"))
    else:
        section.status = "partial"
        body.append(
            _not_run(
                "Cells were not filtered, so no thresholds are drawn", "scagent run filter_cells"
            )
        )
    section.body = Markup("").join(body)
    return section


def _annotation_entries(adata: AnnData) -> list[tuple[str, Any]]:
    """``(uns key, DatasetReport)`` for each annotation report stored in uns."""
    from scagent.annotate.report import DatasetReport

    found = []
    for key, value in adata.uns.items():
        if isinstance(value, Mapping) and isinstance(value.get("report"), str):
            try:
                found.append((str(key), DatasetReport.from_json(value["report"])))
            except (ValueError, TypeError):
                continue
    return found


def _consensus_keys(adata: AnnData) -> list[str]:
    return [
        c
        for c in adata.obs.columns
        if str(c).startswith("consensus_")
        and not str(c).endswith("_agreement")
        and _obs_categorical(adata, c)
    ]


def _section_embedding(ctx: _Context) -> ReportSection:
    from scagent.report.figures import embedding_figure, figure_data_uri

    section = ReportSection("embedding", SECTIONS["embedding"])
    adata = ctx.adata
    basis = ctx.state.breadcrumbs.umap or ("X_umap" if "X_umap" in adata.obsm else None)
    if basis is None or basis not in adata.obsm:
        section.status = "not_run"
        section.body = _not_run("No UMAP embedding in obsm", "scagent run umap --auto")
        return section
    consensus = _consensus_keys(adata)
    clusters = [c.name for c in ctx.state.breadcrumbs.clusterings if c.name not in consensus][:2]
    cell_types = []
    for key, _ in _annotation_entries(adata):
        cols = adata.uns[key].get("columns") or [f"{key}_label"]
        if cols and cols[0] in adata.obs:
            cell_types.append(str(cols[0]))
    aux = {
        c for key, _ in _annotation_entries(adata) for c in (adata.uns[key].get("columns") or [])
    }
    cell_types += [
        c.name
        for c in ctx.state.breadcrumbs.cell_types
        if c.name not in aux and c.name not in cell_types
    ]
    panels = [
        ("cluster", clusters, "No clustering in obs", "scagent run leiden --auto"),
        (
            "consensus label",
            consensus,
            "No consensus labels in obs",
            "scagent run consensus_clustering",
        ),
        (
            "cell type",
            cell_types[:2],
            "No cell-type labels in obs",
            f"scagent run annotate --param groupby={_cluster_key(ctx)}",
        ),
    ]
    figures, notes = [], []
    missing = 0
    for what, keys, text, command in panels:
        if not keys:
            notes.append(_not_run(f"{text} (colouring by {what})", command))
            missing += 1
            continue
        for key in keys:
            fig = embedding_figure(adata, key, basis=basis, title=key)
            figures.append(
                _figure(figure_data_uri(fig), f"UMAP coloured by {key}", f"by {what}: obs['{key}']")
            )
    body = [_p(f"obsm['{basis}'] of {adata.n_obs:,} cells.")]
    if figures:
        body.append(Markup('<div class="grid wide">') + Markup("").join(figures) + Markup("</div>"))
    body += notes
    if missing == len(panels):
        section.status = "not_run"
    elif missing:
        section.status = "partial"
    section.body = Markup("").join(body)
    return section


def _cluster_key(ctx: _Context) -> str:
    """The clustering a suggested command should name: the first the inspector found, else leiden."""
    clusterings = [c.name for c in ctx.state.breadcrumbs.clusterings]
    return clusterings[0] if clusterings else "leiden"


def _status_class(value: Any) -> str:
    return f"status {value}" if value in ("supported", "flagged", "unknown") else ""


def _section_annotation(ctx: _Context) -> ReportSection:
    section = ReportSection("annotation", SECTIONS["annotation"])
    entries = _annotation_entries(ctx.adata)
    if not entries:
        section.status = "not_run"
        section.body = _not_run(
            "No annotation report in uns",
            f"scagent run annotate --param groupby={_cluster_key(ctx)}",
        )
        return section
    body = []
    for key, report in entries:
        groupby = ctx.adata.uns[key].get("groupby", "?")
        body.append(
            Markup(f"<h3>uns['{escape(key)}'] (clusters of obs['{escape(str(groupby))}'])</h3>")
        )
        body.append(
            _p(
                f"{report.summary()}. Marker source: {report.marker_source or '?'}; marker DB: "
                f"{report.marker_db or '?'}"
                + (f"; model {report.model}" if report.model else "")
                + "."
            )
        )
        rows = []
        for c in report.clusters:
            problems = list(getattr(c.guardrails, "problems", []) or []) if c.guardrails else []
            rows.append(
                {
                    "cluster": c.cluster_id,
                    "cells": c.n_cells,
                    "label": c.label,
                    "ontology id": c.ontology_id or "",
                    "status": c.status,
                    "confidence": round(float(c.confidence), 3),
                    "evidence markers": ", ".join(c.evidence_markers),
                    "source": c.source,
                    "reason / problems": "; ".join([*([c.reason] if c.reason else []), *problems]),
                }
            )
        frame = pd.DataFrame(rows)
        with np.errstate(all="ignore"):
            order = pd.to_numeric(frame["cluster"], errors="coerce")
        if order.notna().all():
            frame = frame.iloc[np.argsort(order.to_numpy(), kind="stable")]
        body.append(_table(frame, f"annotation-{key}", classes={"status": _status_class}))
        if report.warnings:
            body.append(
                Markup(
                    "<ul class='warnings'>"
                    + "".join(f"<li>{escape(w)}</li>" for w in report.warnings)
                    + "</ul>"
                )
            )
    section.body = Markup("").join(body)
    return section


def _marker_keys(adata: AnnData) -> list[str]:
    keys = []
    for key, value in adata.uns.items():
        if (
            isinstance(value, Mapping)
            and "names" in value
            and "groupby" in (value.get("params") or {})
            # protein markers share the layout but name antibodies (paradigm section)
            and "protein_key" not in (value.get("params") or {})
        ):
            keys.append(str(key))
    return sorted(keys, key=lambda k: (k != "rank_genes_groups", k))


def _section_markers(ctx: _Context) -> ReportSection:
    from scagent.report.figures import figure_data_uri, marker_dotplot

    section = ReportSection("markers", SECTIONS["markers"])
    keys = _marker_keys(ctx.adata)
    if not keys:
        section.status = "not_run"
        section.body = _not_run(
            "No marker-gene ranking in uns",
            f"scagent run markers --param groupby={_cluster_key(ctx)}",
        )
        return section
    body = []
    for key in keys[:2]:
        result = ctx.adata.uns[key]
        params = result["params"]
        groupby = str(params["groupby"])
        body.append(
            Markup(
                f"<h3>uns['{escape(key)}']: {escape(str(params.get('method', '?')))} test, groups of "
                f"obs['{escape(groupby)}'] against {escape(str(params.get('reference', 'rest')))}</h3>"
            )
        )
        if groupby in ctx.adata.obs:
            fig = marker_dotplot(ctx.adata, key=key)
            body.append(
                _figure(
                    figure_data_uri(fig),
                    f"marker dot plot of {key}",
                    "top markers per group: dot size is the fraction of cells expressing, colour the mean expression",
                )
            )
        rows = []
        names = result["names"]
        for group in names.dtype.names:
            for rank in range(min(5, len(names[group]))):
                rows.append(
                    {
                        "group": group,
                        "rank": rank + 1,
                        "gene": str(names[group][rank]),
                        "log fold change": float(result["logfoldchanges"][group][rank])
                        if "logfoldchanges" in result
                        else np.nan,
                        "adjusted p": float(result["pvals_adj"][group][rank])
                        if "pvals_adj" in result
                        else np.nan,
                    }
                )
        body.append(_table(pd.DataFrame(rows), f"markers-{key}"))
    section.body = Markup("").join(body)
    return section


def _frame(value: Any) -> pd.DataFrame | None:
    if isinstance(value, pd.DataFrame):
        return value
    if isinstance(value, Mapping) and "results" in value:
        results = value["results"]
        if isinstance(results, pd.DataFrame):
            return results
        if isinstance(results, Mapping):
            try:
                return pd.DataFrame(dict(results))
            except (ValueError, TypeError):
                return None
    return None


def _de_entries(adata: AnnData) -> list[tuple[str, pd.DataFrame]]:
    found = []
    for key, value in adata.uns.items():
        df = _frame(value)
        if df is not None and {"gene", "log2FoldChange", "padj"} <= set(df.columns):
            found.append((str(key), df))
    return found


#: Column names enrichment tools use for the gene set and its adjusted p-value.
_SET_COLUMNS = ("source", "term", "Term", "gene_set", "pathway", "name")
_PADJ_COLUMNS = ("padj", "FDR", "fdr", "Adjusted P-value", "pvals_adj", "qvalue", "FDR q-val")


def _enrichment_entries(adata: AnnData) -> list[tuple[str, pd.DataFrame, str, str]]:
    found = []
    for key, value in adata.uns.items():
        df = _frame(value)
        if df is None or "log2FoldChange" in df.columns:
            continue
        set_col = next((c for c in _SET_COLUMNS if c in df.columns), None)
        padj_col = next((c for c in _PADJ_COLUMNS if c in df.columns), None)
        if set_col and padj_col and ("enrich" in str(key).lower() or set_col != "name"):
            found.append((str(key), df, set_col, padj_col))
    return found


def _section_de(ctx: _Context) -> ReportSection:
    from scagent.report.figures import figure_data_uri
    from scagent.report.plots import volcano

    section = ReportSection("de", SECTIONS["de"])
    entries = _de_entries(ctx.adata)
    if not entries:
        section.status = "not_run"
        section.body = _not_run(
            "No differential-expression results (pseudobulk DESeq2) in uns",
            "scagent run pseudobulk_de --param groupby=annotation_label",
        )
        return section
    body = []
    for key, df in entries:
        entry = ctx.adata.uns[key]
        params = dict(entry.get("params") or {}) if isinstance(entry, Mapping) else {}
        contrast = (
            f"{params.get('test_level')} vs {params.get('reference')} of obs['{params.get('condition_key')}'], "
            f"design {params.get('design')}, per obs['{params.get('groupby')}']"
            if params
            else ""
        )
        body.append(Markup(f"<h3>uns['{escape(key)}']</h3>"))
        if contrast:
            body.append(_p(contrast))
        alpha = float(params.get("alpha", 0.05) or 0.05)
        groups = entry.get("groups") if isinstance(entry, Mapping) else None
        if isinstance(groups, pd.DataFrame) and len(groups):
            body.append(_table(groups, f"de-groups-{key}"))
        group_col = "group" if "group" in df.columns else None
        tested = list(dict.fromkeys(df[group_col].astype(str))) if group_col else ["all"]
        figures = []
        for group in tested[:6]:
            part = df[df[group_col].astype(str) == group] if group_col else df
            fig = volcano(part, alpha=alpha, title=str(group))
            figures.append(_figure(figure_data_uri(fig), f"volcano of {group}"))
        body.append(Markup('<div class="grid">') + Markup("").join(figures) + Markup("</div>"))
        if len(tested) > 6:
            body.append(_p(f"volcano plots of the first 6 of {len(tested)} groups", "note"))
        top = df.dropna(subset=["padj"]).sort_values("padj", kind="stable")
        if group_col:
            top = top.groupby(group_col, sort=False).head(15)
            rank = top[group_col].astype(str).map({g: i for i, g in enumerate(tested)})
            top = top.iloc[np.argsort(rank.to_numpy(), kind="stable")]
        else:
            top = top.head(50)
        cols = [
            c
            for c in ("group", "gene", "baseMean", "log2FoldChange", "lfcSE", "pvalue", "padj")
            if c in top.columns
        ]
        body.append(Markup("<h4>Top genes per group (by adjusted p)</h4>"))
        body.append(_table(top[cols], f"de-top-{key}"))
    section.body = Markup("").join(body)
    return section


def _section_enrichment(ctx: _Context) -> ReportSection:
    from scagent.report.figures import figure_data_uri
    from scagent.report.plots import enrichment_dotplot

    section = ReportSection("enrichment", SECTIONS["enrichment"])
    entries = _enrichment_entries(ctx.adata)
    if not entries:
        section.status = "not_run"
        section.body = _not_run(
            "No enrichment results in uns (enrichment follows pseudobulk_de)",
            "scagent run enrichment",
        )
        return section
    body = []
    for key, df, set_col, padj_col in entries:
        body.append(Markup(f"<h3>uns['{escape(key)}']</h3>"))
        group_col = next((c for c in ("group", "contrast", "cell_type") if c in df.columns), None)
        score_col = next(
            (c for c in ("score", "NES", "nes", "odds_ratio", "Combined Score") if c in df.columns),
            None,
        )
        entry = ctx.adata.uns[key]
        params = dict(entry.get("params") or {}) if isinstance(entry, Mapping) else {}
        if params:
            body.append(
                _p(
                    ", ".join(
                        f"{k} {_fmt(v)}"
                        for k, v in params.items()
                        if k in ("de_key", "gene_sets", "n_sets", "methods", "fdr")
                    )
                )
            )
        if group_col and score_col:
            # One dot plot per method (ORA, ULM and GSEA scores are not on one scale);
            # a column per group, and per direction where a method tests up and down apart.
            methods = list(dict.fromkeys(df["method"].astype(str))) if "method" in df else [""]
            figures = []
            for method in methods[:4]:
                part = df[df["method"].astype(str) == method] if method else df
                part = part.assign(
                    _column=part[group_col].astype(str)
                    + (
                        " (" + part["direction"].astype(str) + ")"
                        if "direction" in part and part["direction"].nunique() > 1
                        else ""
                    )
                )
                fig = enrichment_dotplot(
                    part,
                    x="_column",
                    y=set_col,
                    score=score_col,
                    padj=padj_col,
                    title=f"{method or key}: size -log10 adjusted p",
                )
                figures.append(_figure(figure_data_uri(fig), f"enrichment {method} of {key}"))
            body.append(Markup('<div class="grid">') + Markup("").join(figures) + Markup("</div>"))
        top = df.sort_values(padj_col, kind="stable").head(MAX_ROWS)
        body.append(_table(top, f"enrichment-{key}"))
    section.body = Markup("").join(body)
    return section


# One renderer per paradigm-specific result; each returns None when its result is absent.
def _communication_part(adata: AnnData) -> list[Markup] | None:
    if not isinstance(adata.uns.get("liana_res"), pd.DataFrame):
        return None
    from scagent.report.figures import figure_data_uri
    from scagent.tools.communication import communication_results, plot_communication

    table = communication_results(adata, "liana_res")
    cols = [
        c
        for c in (
            "source",
            "target",
            "ligand_complex",
            "receptor_complex",
            "magnitude_rank",
            "specificity_rank",
        )
        if c in table.columns
    ]
    return [
        Markup("<h3>Cell-cell communication (LIANA+ rank_aggregate)</h3>"),
        _figure(
            figure_data_uri(plot_communication(adata)),
            "top ligand-receptor interactions",
            "dot size: specificity, colour: magnitude (-log10 aggregate rank)",
        ),
        _table(table[cols].head(50), "communication-top"),
    ]


def _perturbation_part(adata: AnnData) -> list[Markup] | None:
    entry = adata.uns.get("perturbation_de")
    knock = entry.get("knockdown") if isinstance(entry, Mapping) else None
    if not isinstance(knock, pd.DataFrame):
        return None
    parts = [Markup("<h3>Perturbation screen: knockdown of each target</h3>")]
    if "guide" in adata.obs:
        calls = adata.obs["guide"].astype(str)
        parts.append(
            _p(
                f"{(~calls.isin(['unassigned', 'multiple'])).mean():.1%} of cells with "
                f"one guide, {(calls == 'multiple').mean():.1%} multiplets, "
                f"{(calls == 'unassigned').mean():.1%} unassigned"
            )
        )
    parts.append(
        _table(
            knock,
            "perturbation-knockdown",
            classes={"status": lambda v: "ok" if v == "knocked down" else "warn"},
        )
    )
    results = _frame(entry.get("results"))
    if results is not None and "padj" in results:
        top = results.dropna(subset=["padj"]).sort_values("padj", kind="stable").head(50)
        parts += [
            Markup("<h4>Top genes over all perturbations, by adjusted p</h4>"),
            _table(top, "perturbation-top"),
        ]
    return parts


def _repertoire_part(adata: AnnData) -> list[Markup] | None:
    expansion = adata.uns.get("clonal_expansion")
    overlap = adata.uns.get("repertoire_overlap")
    if not isinstance(expansion, Mapping) and not isinstance(overlap, Mapping):
        return None
    parts = [Markup("<h3>Immune repertoire (scirpy)</h3>")]
    if "chain_pairing" in adata.obs:
        counts = adata.obs["chain_pairing"].astype(str).value_counts().rename_axis("chain pairing")
        parts.append(_table(counts.reset_index(name="cells"), "repertoire-chains"))
    for title, entry, field_, table_id in (
        ("Clonal expansion per cell type", expansion, "by_group", "repertoire-expansion"),
        ("Clonotype overlap between samples", overlap, "pairs", "repertoire-overlap"),
        ("Clonotypes shared between samples", overlap, "shared_clonotypes", "repertoire-shared"),
    ):
        df = _frame(entry.get(field_)) if isinstance(entry, Mapping) else None
        if df is not None and len(df):
            parts += [Markup(f"<h4>{escape(title)}</h4>"), _table(df, table_id)]
    return parts


def _protein_part(adata: AnnData) -> list[Markup] | None:
    entry = adata.uns.get("protein_markers")
    if not isinstance(entry, Mapping) or "names" not in entry:
        return None
    names, padj = entry["names"], entry.get("pvals_adj")
    genes = dict(entry.get("protein_genes") or {})
    rows = []
    for group in names.dtype.names:
        for rank in range(min(3, len(names))):
            protein = str(names[group][rank])
            rows.append(
                {
                    "cluster": group,
                    "rank": rank + 1,
                    "protein": protein,
                    "gene(s)": genes.get(protein, ""),
                    "padj": float(padj[group][rank]) if padj is not None else float("nan"),
                }
            )
    groupby = (entry.get("params") or {}).get("groupby", "")
    return [
        Markup("<h3>Protein markers per cluster (CITE-seq)</h3>"),
        _p(f"Wilcoxon on CLR-normalized antibody counts per cluster of obs['{groupby}']; "
           "the genes they measure count as marker evidence in the annotation guardrails."),
        _table(pd.DataFrame(rows), "paradigm-protein-markers"),
    ]  # fmt: skip


def _table_part(key: str, title: str, field_: str | None = None, sort: str | None = None):
    """A renderer for a result that is one table in ``uns[key]`` (or ``uns[key][field_]``)."""

    def render(adata: AnnData) -> list[Markup] | None:
        entry = adata.uns.get(key)
        value = entry.get(field_) if isinstance(entry, Mapping) and field_ else entry
        df = _frame(value)
        if df is None or not len(df):
            return None
        if sort and sort in df.columns:
            df = df.sort_values(sort, kind="stable")
        return [Markup(f"<h3>{escape(title)}</h3>"), _table(df.head(MAX_ROWS), f"paradigm-{key}")]

    return render


_PARADIGM_PARTS: list[Callable[[AnnData], list[Markup] | None]] = [
    _communication_part,
    _perturbation_part,
    _repertoire_part,
    _protein_part,
    _table_part("mixscape", "Mixscape: knocked-out vs escaping cells", "perturbations"),
    _table_part("integration_metrics", "Integration metrics (scIB)", "results"),
    _table_part("trajectory_de", "Genes changing along pseudotime", "results", sort="pvalue"),
]


def _section_paradigm(ctx: _Context) -> ReportSection:
    section = ReportSection("paradigm", SECTIONS["paradigm"])
    parts: list[Markup] = []
    for render in _PARADIGM_PARTS:
        try:
            found = render(ctx.adata)
        except Exception as exc:  # one broken result must not hide the rest of the report
            log.warning("paradigm report part %s failed: %s", render.__name__, exc)
            section.status = "partial"
            found = [_p(f"could not render {render.__name__.strip('_')}: {exc}", "note")]
        parts += found or []
    if not parts:
        section.status = "not_run"
        section.body = _not_run(
            "No paradigm-specific results (communication, perturbation, repertoire, "
            "multimodal, integration metrics, trajectory genes)",
            "scagent pipeline --paradigm <name> --data <file> --out <dir>",
        )
        return section
    section.body = Markup("").join(parts)
    return section


def _short_params(step: StepRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(changed, default)``: the step's parameters split by whether they differ from the tool's defaults."""
    from scagent.errors import UnknownToolError
    from scagent.tools import get_tool

    try:
        defaults = get_tool(step.tool_id).defaults()
    except (UnknownToolError, AttributeError):
        defaults = {}
    changed, default = {}, {}
    for key, value in sorted(step.params.items()):
        (default if key in defaults and defaults[key] == value else changed)[key] = value
    return changed, default


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _section_provenance(ctx: _Context) -> ReportSection:
    section = ReportSection("provenance", SECTIONS["provenance"])
    if ctx.session is None:
        section.status = "not_run"
        section.body = _not_run(
            "No provenance: the report was built from a bare AnnData, not a project",
            "scagent init --data DATA.h5ad",
        )
        return section
    items = []
    for step in ctx.history:
        changed, default = _short_params(step)
        seconds = _duration(step)
        who = step.requested_by + (" (planned by the dependency graph)" if step.planned else "")
        params_html = (
            ", ".join(f"<code>{escape(k)}={escape(_json(v))}</code>" for k, v in changed.items())
            or "<span class='note'>default parameters</span>"
        )
        details = ""
        if default:
            details += (
                "<div class='note'>defaults: "
                + escape(", ".join(f"{k}={_json(v)}" for k, v in default.items()))
                + "</div>"
            )
        if step.versions:
            details += (
                "<div class='note'>versions: "
                + escape(", ".join(f"{k} {v}" for k, v in sorted(step.versions.items())))
                + "</div>"
            )
        warnings = "".join(f"<li>{escape(w)}</li>" for w in step.warnings)
        items.append(
            f"<li class='step' data-tool='{escape(step.tool_id)}'>"
            f"<div class='when'>{escape((step.started or '')[:19].replace('T', ' '))}"
            + (f" · {seconds:.2f} s" if seconds is not None else "")
            + f"</div><div class='what'><b>{step.step}. {escape(step.tool_id)}</b>"
            f" <span class='who'>asked by {escape(who)}</span>"
            + (f" <q>{escape(step.request_text)}</q>" if step.request_text else "")
            + f"<div>{params_html}</div>"
            + (f"<div class='summary'>{escape(step.summary)}</div>" if step.summary else "")
            + (f"<ul class='warnings'>{warnings}</ul>" if warnings else "")
            + (
                f"<details><summary>all parameters and versions</summary>{details}</details>"
                if details
                else ""
            )
            + f"<div class='note'>snapshot {escape(step.snapshot_id[:12])}</div></div></li>"
        )
    section.body = Markup(
        f"<p>Branch <b>{escape(ctx.branch or '')}</b>: {len(ctx.history)} steps from the import "
        "(W3C PROV of every step: <code>scagent provenance export --format jsonld</code>).</p>"
        '<input class="table-filter" type="search" placeholder="filter steps…" data-target="timeline" aria-label="filter steps">'
        f"<ol id='timeline' class='timeline'>{''.join(items)}</ol>"
    )
    return section


def branch_tree(session: Session) -> list[dict[str, Any]]:
    """Each branch with its steps, and the step where it leaves an earlier-listed branch.

    Snapshots form a tree (each has one parent). Branches are listed ``main`` first, then
    by name; a snapshot belongs to the first listed branch that holds it, so a branch's
    own steps are those after the last snapshot an earlier branch holds -- the same
    layout as a git graph.

    Returns
    -------
    One record per branch: ``name``, ``steps`` (tool ids from the import),
    ``snapshots``, ``parent`` (the branch it leaves, or None) and ``fork`` (the index of
    the last shared step, or None).
    """
    chains = {}
    for name, head in session.branches().items():
        manifests = session.store.history(head)
        chains[name] = (
            [m.id for m in manifests],
            [str((m.meta or {}).get("tool_id", "?")) for m in manifests],
        )
    order = sorted(chains, key=lambda n: (n != "main", n))
    owner: dict[str, str] = {}
    for name in order:
        for sid in chains[name][0]:
            owner.setdefault(sid, name)
    tree = []
    for name in order:
        ids, tools = chains[name]
        own = next((i for i, sid in enumerate(ids) if owner[sid] == name), len(ids))
        tree.append(
            {
                "name": name,
                "steps": tools,
                "snapshots": ids,
                "parent": owner[ids[own - 1]] if own > 0 else None,
                "fork": own - 1 if own > 0 else None,
            }
        )
    return tree


def _branch_svg(tree: list[dict[str, Any]], current: str | None) -> Markup:
    dx, dy, x0, y0 = 64, 46, 30, 26
    rows = {b["name"]: i for i, b in enumerate(tree)}
    width = x0 + dx * max(len(b["steps"]) for b in tree) + 140
    height = y0 + dy * len(tree)
    parts = [
        f'<svg class="branch-tree" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="branch tree">'
    ]
    for b in tree:
        y = y0 + dy * rows[b["name"]]
        first = 0 if b["parent"] is None else b["fork"] + 1
        last = len(b["steps"]) - 1
        colour = "#2e6bb0" if b["name"] == current else "#555"
        if b["parent"] is not None and first > last:
            # A branch at another's step, with no step of its own yet: a dashed pointer.
            py = y0 + dy * rows[b["parent"]]
            fx = x0 + dx * b["fork"]
            parts.append(
                f'<line x1="{fx}" y1="{py}" x2="{fx}" y2="{y}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            )
            parts.append(
                f'<circle cx="{fx}" cy="{y}" r="5" fill="#fff" stroke="{colour}" stroke-width="2"/>'
            )
        elif b["parent"] is not None:
            py = y0 + dy * rows[b["parent"]]
            fx = x0 + dx * b["fork"]
            tx = x0 + dx * first
            parts.append(
                f'<path d="M{fx},{py} C{fx + dx / 2},{py} {tx - dx / 2},{y} {tx},{y}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        if last > first:
            parts.append(
                f'<line x1="{x0 + dx * first}" y1="{y}" x2="{x0 + dx * last}" y2="{y}" stroke="{colour}" stroke-width="2"/>'
            )
        for i in range(first, last + 1):
            x = x0 + dx * i
            tool = b["steps"][i]
            parts.append(
                f"<g><title>{escape(b['name'])}@{i}: {escape(tool)} ({escape(b['snapshots'][i][:12])})</title>"
                f'<circle cx="{x}" cy="{y}" r="6" fill="{colour}"/>'
                f'<text x="{x}" y="{y + 17}" font-size="9" text-anchor="middle">{escape(tool[:11])}</text></g>'
            )
        label = escape(b["name"]) + (" (current)" if b["name"] == current else "")
        parts.append(
            f'<text x="{x0 + dx * last + 14}" y="{y + 4}" font-size="12" font-weight="bold" fill="{colour}">{label}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _section_branches(ctx: _Context) -> ReportSection:
    section = ReportSection("branches", SECTIONS["branches"])
    if ctx.session is None:
        section.status = "not_run"
        section.body = _not_run(
            "No branches: the report was built from a bare AnnData, not a project",
            "scagent init --data DATA.h5ad",
        )
        return section
    tree = branch_tree(ctx.session)
    rows = []
    for b in tree:
        after = b["steps"][(b["fork"] + 1) if b["parent"] else 1 :] or ["(no step of its own)"]
        rows.append(
            {
                "branch": b["name"] + (" *" if b["name"] == ctx.branch else ""),
                "head": f"step {len(b['steps']) - 1} ({b['snapshots'][-1][:12]})",
                "forked from": f"{b['parent']}@{b['fork']}" if b["parent"] else "",
                "steps after the fork": " → ".join(after),
            }
        )
    section.body = Markup("").join(
        [
            _p(
                f"{len(tree)} branch(es); * marks the one this report describes. A branch's line starts at the step where it leaves a branch listed above it."
            ),
            Markup('<div class="table-wrap">') + _branch_svg(tree, ctx.branch) + Markup("</div>"),
            _table(pd.DataFrame(rows), "branch-table", filterable=False),
        ]
    )
    return section


def _methods_markdown(ctx: _Context) -> str | None:
    """The methods text from the agent's exporter (``scagent.agent.exports.methods_text``)."""
    if ctx.session is None:
        return None
    try:
        from scagent.agent.exports import methods_text
    except ImportError:  # the exporter is optional to the report; a plain step list stands in
        lines = ["## Methods", ""]
        for step in ctx.history[1:]:
            params = ", ".join(f"{k}={_json(v)}" for k, v in sorted(step.params.items()))
            versions = ", ".join(f"{k} {v}" for k, v in sorted(step.versions.items()))
            lines.append(f"{step.step}. `{step.tool_id}` ({versions}): {params}")
        return "\n".join(lines) + "\n"
    return methods_text(ctx.session, ctx.branch)


def _section_methods(ctx: _Context) -> ReportSection:
    from markdown_it import MarkdownIt

    section = ReportSection("methods", SECTIONS["methods"])
    text = _methods_markdown(ctx)
    if text is None:
        section.status = "not_run"
        section.body = _not_run(
            "No methods text: it is written from a project's provenance",
            "scagent init --data DATA.h5ad",
        )
        return section
    # The section has its own heading; the text's top-level "Methods" heading would repeat it.
    text = re.sub(r"\A\s*#{1,2} Methods\s*\n", "", text)
    # html=False: recorded values (labels, paths) are shown as text, never as markup.
    rendered = MarkdownIt("commonmark", {"html": False}).render(text)
    section.body = Markup(f'<div class="methods">{rendered}</div>') + Markup(
        f"<details><summary>as Markdown</summary><pre>{escape(text)}</pre></details>"
    )
    return section


_BUILDERS: dict[str, Callable[[_Context], ReportSection]] = {
    "summary": _section_summary,
    "qc": _section_qc,
    "embedding": _section_embedding,
    "annotation": _section_annotation,
    "markers": _section_markers,
    "de": _section_de,
    "enrichment": _section_enrichment,
    "paradigm": _section_paradigm,
    "provenance": _section_provenance,
    "branches": _section_branches,
    "methods": _section_methods,
}


# -------------------------------------------------------------------------------- build


def _context(source: Session | AnnData, branch: str | None) -> _Context:
    from anndata import AnnData

    from scagent.data import inspect_adata
    from scagent.session import Session

    if isinstance(source, Session):
        branch = branch or source.branch
        head = source.head(branch)  # RefNotFoundError for a branch that does not exist
        adata = source.adata if branch == source.branch else source.store.read_snapshot(head)
        return _Context(adata, inspect_adata(adata), source, branch, source.history(branch))
    if isinstance(source, AnnData):
        if branch is not None:
            raise InvalidParameterError(
                f"branch={branch!r} was given, but the report source is an AnnData, not a project",
                remedy="pass a Session (or a project folder on the command line) to choose a branch",
            )
        return _Context(source, inspect_adata(source))
    raise InvalidParameterError(
        f"build_report needs a Session or an AnnData, not {type(source).__name__}",
        remedy="open the project with Session.open(path) or read the data with scagent.data.read",
    )


def render_report(
    source: Session | AnnData, *, branch: str | None = None, title: str | None = None
) -> tuple[str, list[ReportSection]]:
    """The report's HTML text and its sections (see :func:`build_report`)."""
    import matplotlib
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from scagent import __version__

    ctx = _context(source, branch)
    sections = []
    # Each figure is encoded and closed at once; the open-figure warning would only be noise.
    with matplotlib.rc_context({"figure.max_open_warning": 0}):
        for sid, build in _BUILDERS.items():
            try:
                sections.append(build(ctx))
            except (
                ScagentError,
                LookupError,
                ValueError,
                TypeError,
                AttributeError,
                RuntimeError,
            ) as exc:
                # One section that cannot be drawn must not cost the reader the others.
                log.warning("report section %s failed: %s", sid, exc, exc_info=True)
                sections.append(
                    ReportSection(
                        sid,
                        SECTIONS[sid],
                        "error",
                        Markup(
                            f"<p class='error'><span class='badge error'>error</span> this section could not "
                            f"be built: {escape(type(exc).__name__)}: {escape(str(exc))}</p>"
                        ),
                    )
                )
    if title is None:
        title = "scagent report"
        if ctx.session is not None:
            name = ctx.session.project.config.context.title or Path(ctx.session.project.root).name
            title = f"{name} · {ctx.branch}"
    env = Environment(
        loader=FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    page = env.get_template("report.html.j2").render(
        title=title,
        sections=sections,
        version=__version__,
        generated=datetime.now().astimezone().isoformat(timespec="seconds"),
        n_obs=ctx.adata.n_obs,
        n_vars=ctx.adata.n_vars,
    )
    return page, sections


def build_report(
    source: Session | AnnData,
    *,
    branch: str | None = None,
    out: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Write the analysis report of a project branch (or an AnnData) as one self-contained HTML file.

    Sections, each with an anchor in the table of contents: dataset summary (the
    inspector), QC distributions per sample with the filter's thresholds, UMAP by cluster
    / consensus label / cell type, the annotation table (status, confidence, evidence
    markers), the marker dot plot, DE and enrichment results found in ``uns``, the
    provenance timeline, the branch tree and the methods text. A section whose data is
    missing says "not run" and names the command that makes it. CSS, JS and images
    (base64 PNG) are inline: the file opens offline.

    Parameters
    ----------
    source
        A :class:`~scagent.session.Session` (then ``branch`` is read, and provenance,
        branches and methods come from the project) or an AnnData (data sections only).
    branch
        The branch to describe (default: the current one).
    out
        The HTML file to write (atomically; its folder is created).
    title
        Page title (default: the experiment's title or the project folder, and the branch).

    Returns
    -------
    The path written.

    Raises
    ------
    InvalidParameterError
        ``out`` is a folder, or ``branch`` given with an AnnData.
    RefNotFoundError
        No such branch.
    """
    out = _check_out(out)
    page, _ = render_report(source, branch=branch, title=title)
    return write_html(page, out)


def _check_out(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    if out.is_dir():
        raise InvalidParameterError(
            f"--out {out} is a folder; the report is one file",
            remedy=f"use --out {out / 'report.html'}",
        )
    return out


def write_html(page: str, out: str | os.PathLike[str]) -> Path:
    """Write a rendered report to ``out`` atomically (its folder is created); returns the path.

    Raises
    ------
    InvalidParameterError
        ``out`` is a folder.
    """
    out = _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    return out
