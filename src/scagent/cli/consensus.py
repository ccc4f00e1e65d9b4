"""`scagent consensus` (a typed consensus run, no LLM) and `scagent interpret` (an evidence-bound reading of one)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.3f}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Add the ``consensus`` and ``interpret`` commands to ``app``."""

    @app.command("consensus")
    def consensus_cmd(
        input: Path = typer.Argument(
            ..., help="Data to cluster (.h5ad or any format scagent reads)."
        ),
        output: Path = typer.Option(..., "--output", "-o", help="Run folder to write (RUN_DIR)."),
        members: str | None = typer.Option(
            None,
            "--members",
            help="Comma-separated members, method:key=value:... (default: leiden at 0.5/1.0/1.5, "
            "louvain, kmeans, gmm, agglomerative with k=auto; + banksy with obsm['spatial']).",
        ),
        operator: str = typer.Option("kmode", "--operator", help="kmode or coassoc."),
        seed: int = typer.Option(0, "--seed", help="Seed of every member and of the operator."),
        use_rep: str = typer.Option(
            "auto", "--use-rep", help="obsm embedding (auto: X_pca_harmony, X_pca, else computed)."
        ),
        n_pcs: int = typer.Option(30, "--n-pcs", min=2, help="Leading components used."),
        n_neighbors: int = typer.Option(
            15, "--n-neighbors", min=2, help="Neighbours of the shared kNN graph."
        ),
        resolution: float = typer.Option(
            1.0, "--resolution", min=0.0, help="Leiden resolution of coassoc."
        ),
        write_adata: bool = typer.Option(
            False,
            "--write-adata",
            help="Also write RUN_DIR/adata.h5ad: the input with obs['consensus_<operator>'].",
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Replace a run already in RUN_DIR."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print plan.json instead of a table."),
    ) -> None:
        """Cluster with several methods and combine them into consensus labels (a typed run; no LLM)."""
        from scagent.consensus import consensus, write_run
        from scagent.consensus.members import parse_members
        from scagent.data import read
        from scagent.errors import InputNotFoundError, InvalidParameterError

        err = Console(stderr=True)
        if not input.exists():
            raise InputNotFoundError(f"input {str(input)!r} does not exist")
        if (output / "plan.json").exists() and not overwrite:
            raise InvalidParameterError(
                f"{output} already holds a consensus run (plan.json)",
                remedy="choose another --output folder, or pass --overwrite",
            )
        parse_members(members)  # a malformed member is an argument error, before reading data
        adata = read(input)
        done = []

        def progress(m) -> None:
            done.append(m)
            state = "[green]ok[/]" if m.status == "succeeded" else f"[red]failed[/] ({m.error})"
            err.print(f"member {m.spec.id}: {state} in {m.time_s:.1f}s", highlight=False)

        result = consensus(
            adata,
            members,
            operator,
            seed=seed,
            use_rep=use_rep,
            n_pcs=n_pcs,
            n_neighbors=n_neighbors,
            resolution=resolution,
            inplace=write_adata,
            progress=progress,
        )
        plan = write_run(
            result,
            output,
            input_path=input,
            adata=adata if write_adata else None,
            overwrite=overwrite,
        )
        if as_json:
            typer.echo(json.dumps(plan, indent=2, default=str))
            return
        console = Console()
        table = Table(
            title=f"consensus ({operator}): {result.n_clusters} clusters, mean agreement "
            f"{result.result.agreement.mean():.2f} — run {plan['run_id']}"
        )
        for col in ("member", "status", "clusters", "NMI", "ARI", "composite"):
            table.add_column(col)
        for member, row in result.member_scores.iterrows():
            table.add_row(
                str(member),
                row["status"],
                _fmt(row["n_clusters"]),
                _fmt(row["nmi"]),
                _fmt(row["ari"]),
                _fmt(row["composite"]),
            )
        console.print(table)
        console.print(f"wrote {output}")

    @app.command("interpret")
    def interpret_cmd(
        run_dir: Path = typer.Argument(
            ..., help="Folder of a `scagent consensus` run (read only)."
        ),
        output: Path = typer.Option(
            ..., "--output", "-o", help="Folder for the interpretation (outside RUN_DIR)."
        ),
        tissue: str | None = typer.Option(
            None,
            "--tissue",
            help="Tissue the marker DB knows (immune, blood, brain, kidney, liver, ...).",
        ),
        markers: Path | None = typer.Option(
            None, "--markers", help="Marker file instead of --tissue."
        ),
        adata: Path | None = typer.Option(
            None, "--adata", help="The AnnData (default: the run's input)."
        ),
        no_llm: bool = typer.Option(
            False, "--no-llm", help="Structural interpretation from the marker DB only."
        ),
        llm: str | None = typer.Option(
            None,
            "--llm",
            help="openai:MODEL | anthropic:MODEL | ollama:MODEL | openai-compatible:MODEL (default: SCAGENT_LLM).",
        ),
        base_url: str | None = typer.Option(
            None, "--base-url", help="Server URL for OpenAI-compatible backends."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed sent with every LLM request (recorded)."),
        species: str | None = typer.Option(
            None, "--species", help="human or mouse (default: from the genes)."
        ),
        top_k_markers: int = typer.Option(20, "--top-k-markers", help="DE genes per cluster."),
        top_k_next_steps: int = typer.Option(
            3, "--top-k-next-steps", help="Next steps at most (0-3)."
        ),
        coverage_floor: float = typer.Option(
            0.5, "--coverage-floor", help="Share of clusters that must be interpretable."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print interpreted_assignments.json."),
    ) -> None:
        """Interpret a verified consensus run: DE, marker-DB evidence, optional LLM, hard invariants.

        Exit codes: 2 argument error, 3 TypedRunInvalid, 4 AdataMismatch, 5 MarkerDBUnavailable,
        6 LLMUnavailable, 7 InvariantViolation, 8 CoverageBelowThreshold (outputs written).
        """
        from scagent.consensus.errors import InterpretError
        from scagent.consensus.interpret import interpret_run
        from scagent.errors import InvalidParameterError, ScagentError

        try:
            result = interpret_run(
                run_dir,
                output,
                tissue=tissue,
                markers=markers,
                adata=adata,
                no_llm=no_llm,
                llm=llm,
                base_url=base_url,
                seed=seed,
                top_k_markers=top_k_markers,
                top_k_next_steps=top_k_next_steps,
                coverage_floor=coverage_floor,
                species=species,
            )
        except (InterpretError, InvalidParameterError):
            raise
        except ScagentError as exc:
            # Other classes' codes (3-8) mean something else in the global table; this
            # command's codes are fixed, so anything unforeseen is a plain failure (1).
            raise InterpretError(exc.message, remedy=exc.remedy) from exc
        a = result.assignments
        if as_json:
            typer.echo(a.model_dump_json(indent=2))
            return
        console = Console()
        console.print(a.banner, highlight=False, markup=False)
        table = Table(
            title=f"{a.coverage.interpretable} of {a.coverage.total} clusters interpretable"
        )
        for col in ("cluster", "cells", "cell type", "conf.", "status", "evidence"):
            table.add_column(col, overflow="fold")
        for c in a.clusters:
            table.add_row(
                c.cluster,
                str(c.n_cells),
                c.cell_type,
                f"{c.confidence:.2f}",
                c.status,
                ", ".join(f"{m.gene}@{m.de_rank}" for m in c.evidence.markers[:5]),
            )
        console.print(table)
        for i, s in enumerate(a.next_steps, 1):
            console.print(f"{i}. {s.action}", highlight=False, markup=False)
        console.print(f"wrote {output}")
