"""`scagent knowledge`: build the local marker database, query a cell type's markers, validate a label."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

_HELP = (
    "Marker databases, the Cell Ontology and gene symbols, offline. Marker files: PanglaoDB TSV, "
    "CellMarker 2.0 xlsx/csv, ScType xlsx, GMT, or a plain table with columns cell_type, gene "
    "(optional weight, tissue, species, polarity)."
)


def _console() -> Console:
    return Console(soft_wrap=False)


def _echo_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def _split_genes(text: str) -> list[str]:
    return [g.strip() for g in text.replace(";", ",").replace(" ", ",").split(",") if g.strip()]


def _db(db_path: Path | None):
    from scagent.knowledge import MarkerDB

    if db_path is None:
        return MarkerDB.default()
    return MarkerDB.load(db_path)


def register(app: typer.Typer) -> None:
    """Add the ``knowledge`` command group to ``app``."""
    kapp = typer.Typer(name="knowledge", help=_HELP, no_args_is_help=True)

    @kapp.command("build")
    def build(
        panglaodb: str | None = typer.Option(
            None, "--panglaodb", help="PanglaoDB markers TSV (file or URL)."
        ),
        sctype: str | None = typer.Option(
            None, "--sctype", help="ScTypeDB_full.xlsx (file or URL)."
        ),
        cellmarker: str | None = typer.Option(
            None, "--cellmarker", help="CellMarker 2.0 xlsx/csv (file or URL)."
        ),
        gmt: str | None = typer.Option(None, "--gmt", help="GMT file of cell-type signatures."),
        out: Path | None = typer.Option(
            None, "--out", help="Output folder (default $SCAGENT_HOME/knowledge)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
    ) -> None:
        """Merge marker sources into a local database (parquet + manifest with checksums)."""
        from scagent.knowledge.build import build_knowledge

        result = build_knowledge(
            panglaodb=panglaodb, sctype=sctype, cellmarker=cellmarker, gmt=gmt, out=out
        )
        if as_json:
            _echo_json({"folder": str(result.folder), **result.manifest})
            return
        table = Table(title=f"knowledge built in {result.folder} ({result.seconds:.1f} s)")
        for col in ("source", "file", "rows", "species", "sha256"):
            table.add_column(col)
        for rec in result.manifest["inputs"]:
            table.add_row(
                rec["source"],
                rec["file"],
                str(rec["rows"]),
                ",".join(rec["species"]),
                rec["sha256"][:12],
            )
        _console().print(table)
        _console().print(f"{result.n_rows} rows, {result.manifest['n_cell_types']} cell types")

    @kapp.command("query")
    def query(
        label: str = typer.Argument(..., help="Cell type: free text ('NK cells') or a CL id."),
        species: str | None = typer.Option(
            None, "--species", help="human or mouse (default both)."
        ),
        tissue: str | None = typer.Option(
            None, "--tissue", help="Prefer markers from this tissue."
        ),
        top: int = typer.Option(25, "--top", min=1, help="How many markers to show."),
        db_path: Path | None = typer.Option(
            None, "--db", help="A marker file or built parquet instead of the default database."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Markers of a cell type from every source, with agreement across sources and a confidence."""
        result = _db(db_path).query(label, species=species, tissue=tissue)
        if as_json:
            payload = result.to_dict()
            payload["markers"] = payload["markers"][:top] if top else payload["markers"]
            _echo_json(payload)
            return
        con = _console()
        ident = result.cell_ontology_id or "no CL id"
        con.print(
            f"[bold]{result.cell_type}[/] ({ident}; matched by {result.match.method}, "
            f"score {result.match.score:.2f}) — {result.n_rows} rows from {len(result.per_source)} source(s)"
        )
        if not result.tissue_matched:
            con.print(f"[yellow]no rows in tissue {tissue!r}; showing every tissue[/]")
        table = Table()
        for col in (
            "gene",
            "polarity",
            "agreement",
            "sources",
            "confidence",
            "specificity",
            "tissues",
        ):
            table.add_column(col)
        for rec in result.markers.head(top).itertuples(index=False):
            table.add_row(
                rec.gene,
                rec.polarity,
                str(rec.n_sources),
                ",".join(rec.sources),
                f"{rec.confidence:.2f}",
                "" if rec.specificity != rec.specificity else f"{rec.specificity:.2f}",
                ",".join(rec.tissues[:3]),
            )
        con.print(table)

    @kapp.command("validate")
    def validate(
        markers: str = typer.Option(
            ..., "--markers", help="Comma-separated marker genes, best first."
        ),
        label: str = typer.Option(..., "--label", help="The proposed cell type."),
        species: str | None = typer.Option(
            None, "--species", help="human or mouse (default: from symbol case)."
        ),
        tissue: str | None = typer.Option(None, "--tissue", help="Tissue of the sample."),
        top: int = typer.Option(5, "--top", min=1, help="How many best-matching types to show."),
        db_path: Path | None = typer.Option(
            None, "--db", help="A marker file or built parquet instead of the default database."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Check a label against marker genes; list better-matching cell types when it fits poorly."""
        result = _db(db_path).validate(
            _split_genes(markers), label, species=species, tissue=tissue, top_k=top
        )
        if as_json:
            _echo_json(result.to_dict())
            return
        con = _console()
        verdict = "[green]fits[/]" if result.fits else "[red]fits poorly[/]"
        con.print(
            f"[bold]{label}[/] ({result.cell_ontology_id or 'no CL id'}): {verdict} — {result.message}"
        )
        con.print(
            f"overlap {len(result.overlap)}/{len(result.markers)}: {', '.join(result.overlap) or '-'}"
            f"; p = {result.p_value:.2g}"
            + (
                f"; negative markers present: {', '.join(result.negative_overlap)}"
                if result.negative_overlap
                else ""
            )
        )
        _candidates_table(con, result.best_matches, "best-matching cell types")

    @kapp.command("score")
    def score(
        genes: str = typer.Option(..., "--genes", help="Comma-separated ranked genes, best first."),
        species: str = typer.Option("human", "--species", help="human or mouse."),
        tissue: str | None = typer.Option(None, "--tissue", help="Tissue of the sample."),
        top: int = typer.Option(10, "--top", min=1, help="How many cell types to show."),
        db_path: Path | None = typer.Option(
            None, "--db", help="A marker file or built parquet instead of the default database."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Rank candidate cell types for a ranked gene list."""
        from scagent.knowledge.markerdb import _records

        df = _db(db_path).score_candidates(
            _split_genes(genes), species=species, tissue=tissue, top_k=top
        )
        if as_json:
            _echo_json(_records(df))
            return
        _candidates_table(_console(), df, "candidate cell types")

    app.add_typer(kapp, name="knowledge")


def _candidates_table(con: Console, df, title: str) -> None:
    table = Table(title=title)
    for col in ("cell type", "CL id", "score", "hits", "hit genes", "negative"):
        table.add_column(col)
    for rec in df.itertuples(index=False):
        table.add_row(
            str(rec.cell_type),
            str(rec.cell_ontology_id or ""),
            f"{rec.score:.3f}",
            str(rec.n_hits),
            ",".join(rec.hit_genes[:8]),
            ",".join(rec.negative_hits[:5]),
        )
    con.print(table)
