"""`scagent annotate`: name each cluster's cell type from an .h5ad or a marker table, with a checked, typed report."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

_STATUS_STYLE = {"supported": "green", "flagged": "yellow", "unknown": "dim"}


def _print_table(report, console: Console) -> None:
    title = f"{'validation' if report.mode == 'validate' else 'annotation'}: {report.summary()}" + (
        f" — model {report.model}" if report.model else ""
    )
    table = Table(title=title)
    for col in ("cluster", "cells", "label", "CL id", "conf.", "status", "source", "evidence"):
        table.add_column(col, overflow="fold")
    for c in report.clusters:
        style = _STATUS_STYLE.get(c.status, "")
        table.add_row(
            c.cluster_id,
            "" if c.n_cells is None else str(c.n_cells),
            c.label,
            c.ontology_id or "",
            f"{c.confidence:.2f}",
            f"[{style}]{c.status}[/]" if style else c.status,
            c.source,
            ", ".join(c.evidence_markers[:5]),
        )
    console.print(table)
    for c in report.clusters:
        if c.status == "flagged" and c.guardrails.problems:
            console.print(f"[yellow]{c.cluster_id}[/]: {'; '.join(c.guardrails.problems)}")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {w}")


def register(app: typer.Typer) -> None:
    """Add the ``annotate`` command to ``app``."""

    @app.command("annotate")
    def annotate(
        input: Path | None = typer.Argument(
            None, help="An .h5ad file, or a marker table (.csv/.tsv) of cluster markers."
        ),
        groupby: str | None = typer.Option(
            None, "--groupby", help="obs column of the clusters (for .h5ad input)."
        ),
        tissue: str | None = typer.Option(
            None, "--tissue", help="Tissue (free text or UBERON id); default: project context."
        ),
        species: str | None = typer.Option(
            None, "--species", help="human or mouse; default: project context, then the genes."
        ),
        llm: str | None = typer.Option(
            None,
            "--llm",
            help="openai:MODEL | anthropic:MODEL | ollama:MODEL | openai-compatible:MODEL | "
            "offline (default: SCAGENT_LLM, else offline).",
        ),
        base_url: str | None = typer.Option(
            None, "--base-url", help="Server URL for OpenAI-compatible backends."
        ),
        chunk_size: int = typer.Option(10, "--chunk-size", min=1, help="Clusters per LLM request."),
        max_concurrency: int = typer.Option(
            4, "--max-concurrency", min=1, help="LLM requests in flight at once."
        ),
        top_n_markers: int = typer.Option(
            20, "--top-n-markers", min=1, help="Markers per cluster used for annotation."
        ),
        cache_dir: Path | None = typer.Option(
            None, "--cache-dir", help="LLM answer cache (default $SCAGENT_HOME/cache/llm)."
        ),
        json_report: Path | None = typer.Option(
            None, "--json-report", help="Write the full report as JSON here."
        ),
        csv: Path | None = typer.Option(None, "--csv", help="Write one row per cluster here."),
        out: Path | None = typer.Option(
            None, "--out", help="Write the annotated .h5ad here (obs columns + uns report)."
        ),
        validate_only: bool = typer.Option(
            False,
            "--validate-only",
            help="Check the labels already in the data (--labels-key, default --groupby).",
        ),
        labels_key: str | None = typer.Option(
            None, "--labels-key", help="obs column of existing labels for --validate-only."
        ),
        marker_db: Path | None = typer.Option(
            None, "--marker-db", help="Extra marker file merged into the default marker DB."
        ),
        key_added: str = typer.Option(
            "annotation", "--key-added", help="Prefix of the obs columns and uns key written."
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Replace obs columns of that name not written by scagent."
        ),
        min_supported: int = typer.Option(
            2, "--min-supported", min=1, help="Canonical markers needed for 'supported'."
        ),
        force_unknown_on_fail: bool = typer.Option(
            False, "--force-unknown-on-fail", help="Label flagged clusters 'Unknown'."
        ),
        schema: bool = typer.Option(
            False, "--schema", help="Print the JSON schema of the report and exit."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Name each cluster's cell type from its markers, check every name, report how far to trust it."""
        from scagent._atomic import atomic_path, atomic_write_text
        from scagent.annotate import (
            DatasetReport,
            GuardrailConfig,
            annotate_anndata,
            annotate_markers,
            context_defaults,
            validate_labels,
        )
        from scagent.errors import InputNotFoundError, InvalidParameterError

        if schema:
            typer.echo(json.dumps(DatasetReport.schema_json(), indent=2))
            return
        if input is None:
            raise InvalidParameterError(
                "annotate needs an INPUT (.h5ad or a marker table)",
                remedy="scagent annotate data.h5ad --groupby leiden",
            )
        if not input.exists():
            raise InputNotFoundError(f"input {str(input)!r} does not exist")
        species, tissue = context_defaults(species, tissue)
        guardrails = GuardrailConfig(
            top_n=top_n_markers,
            min_supported=min_supported,
            min_high_confidence=max(3, min_supported),
            force_unknown_on_fail=force_unknown_on_fail,
        )
        console = Console(stderr=True)
        is_h5ad = input.suffix.lower() in {".h5ad", ".zarr"} or input.is_dir()
        adata = None
        if is_h5ad:
            from scagent.data import read

            adata = read(input)
            if groupby is None:
                raise InvalidParameterError(
                    "--groupby is required for .h5ad input",
                    remedy="name the obs column of clusters, e.g. --groupby leiden; "
                    f"columns: {', '.join(map(str, adata.obs.columns[:15]))}",
                )
        elif validate_only:
            raise InvalidParameterError(
                "--validate-only needs an .h5ad with labels in obs",
                remedy="scagent annotate data.h5ad --groupby leiden --validate-only",
            )
        with Progress(
            TextColumn("annotating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json or not console.is_terminal,
        ) as bar:
            task = bar.add_task("annotate", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            common = dict(tissue=tissue, species=species, marker_db=marker_db)
            if validate_only:
                report = validate_labels(
                    adata,
                    groupby,
                    labels_key=labels_key,
                    top_n_markers=top_n_markers,
                    guardrails=guardrails,
                    **common,
                )
            elif adata is not None:
                report = annotate_anndata(
                    adata,
                    groupby,
                    llm=llm,
                    base_url=base_url,
                    top_n_markers=top_n_markers,
                    chunk_size=chunk_size,
                    max_concurrency=max_concurrency,
                    cache_dir=cache_dir,
                    guardrails=guardrails,
                    key_added=key_added if out is not None else None,
                    overwrite=overwrite,
                    progress=progress,
                    **common,
                )
            else:
                report = annotate_markers(
                    input,
                    llm=llm,
                    base_url=base_url,
                    top_n_markers=top_n_markers,
                    chunk_size=chunk_size,
                    max_concurrency=max_concurrency,
                    cache_dir=cache_dir,
                    guardrails=guardrails,
                    progress=progress,
                    **common,
                )
        if json_report is not None:
            atomic_write_text(json_report, report.to_json())
        if csv is not None:
            with atomic_path(csv) as tmp:
                report.to_frame().to_csv(tmp, index=False)
        if out is not None and adata is not None and not validate_only:
            from scagent.data.io import write_h5ad

            write_h5ad(adata, out)
        if as_json:
            typer.echo(report.to_json())
        else:
            _print_table(report, Console(soft_wrap=False))
