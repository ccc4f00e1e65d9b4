"""`scagent report`: write the analysis report of a project branch (or a data file) as one HTML file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""

    @app.command("report")
    def report(
        out: Path = typer.Option(..., "--out", "-o", help="HTML file to write (one file)."),
        branch: str | None = typer.Option(
            None, "--branch", "-b", help="Branch to describe (default: the current one)."
        ),
        data: Path | None = typer.Option(
            None,
            "--data",
            help="Report on this data file instead of a project (no provenance, branches "
            "or methods then).",
        ),
        title: str | None = typer.Option(None, "--title", help="Page title."),
        project: str = typer.Option(
            ".",
            "--project",
            "-C",
            help="Project folder (default: the current folder or a parent).",
            envvar="SCAGENT_PROJECT",
        ),
    ) -> None:
        """Write a self-contained HTML report: data, QC, UMAP, annotation, markers, DE, provenance, methods."""
        from scagent.errors import InvalidParameterError
        from scagent.report.html import SECTIONS, render_report, write_html

        if data is not None:
            if branch is not None:
                raise InvalidParameterError(
                    "--branch names a project branch; it cannot be used with --data",
                    remedy="drop --branch, or run inside the project without --data",
                )
            from scagent.data import read

            source = read(data)
        else:
            from scagent.session import Session

            source = Session.open(project)
        page, sections = render_report(source, branch=branch, title=title)
        write_html(page, out)
        console = Console(highlight=False, soft_wrap=True)
        console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
        for section in sections:
            if section.status != "ok":
                console.print(f"  {SECTIONS[section.id]}: {section.status.replace('_', ' ')}")
