"""`scagent inspect`, `scagent simulate` and `scagent demo`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from scagent.data.state import DataState

console = Console()


def state_table(state: DataState) -> Table:
    """A two-column rich table of a DataState, for people."""
    from scagent.data.inspect import describe_location

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    crumbs = state.breadcrumbs
    rows = [
        ("shape", f"{state.n_obs:,} cells x {state.n_vars:,} genes"),
        ("X", f"{state.x_state} — {state.x_state_evidence}"),
        ("X storage", f"{'sparse' if state.x_sparse else 'dense'} {state.x_dtype}"),
        (
            "raw counts",
            describe_location(state.counts_location) if state.counts_location else "none found",
        ),
        (".raw", state.raw_state or "absent"),
        ("layers", ", ".join(f"{k}: {v}" for k, v in state.layer_states.items()) or "none"),
        ("species", f"{state.species} — {state.species_evidence}"),
        ("gene ids", f"{state.gene_id_type}; {state.n_mito_genes} mito, {state.n_ribo_genes} ribo"),
        ("steps done", ", ".join(state.steps) or "none"),
        (
            "clusterings",
            ", ".join(f"{c.name} ({c.n_levels})" for c in crumbs.clusterings) or "none",
        ),
        ("cell types", ", ".join(f"{c.name} ({c.n_levels})" for c in crumbs.cell_types) or "none"),
        ("DE results", ", ".join(f"{d.key} by {d.groupby}" for d in crumbs.de) or "none"),
    ]
    for label, cols in (
        ("samples", state.sample_columns),
        ("batches", state.batch_columns),
        ("conditions", state.condition_columns),
        ("donors", state.donor_columns),
    ):
        if cols:
            rows.append((label, ", ".join(f"{c.name} ({c.n_levels})" for c in cols)))
    for label, value in rows:
        table.add_row(label, value)
    for warning in state.warnings:
        table.add_row("[yellow]warning[/]", warning)
    return table


def inspect(
    path: Path = typer.Argument(..., help="An .h5ad, .zarr, .loom, 10x folder or .h5, CSV/TSV."),
    as_json: bool = typer.Option(False, "--json", help="Print the DataState as JSON."),
    transpose: bool | None = typer.Option(
        None, "--transpose/--no-transpose", help="CSV/TSV: genes are rows (default: guess)."
    ),
) -> None:
    """Say what a dataset is: X state, where raw counts are, which steps were done."""
    from scagent.data import inspect_adata, read, summarize_state

    adata = read(path, transpose=transpose)
    state = inspect_adata(adata)
    if as_json:
        typer.echo(state.model_dump_json(indent=2))
        return
    console.print(state_table(state))
    console.print()
    console.print(summarize_state(state), highlight=False)


def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Output .h5ad file."),
    cells: int = typer.Option(2000, "--cells", min=1, help="Number of cells."),
    genes: int = typer.Option(2000, "--genes", min=1, help="Number of genes."),
    species: str = typer.Option("human", help="human or mouse."),
    batches: int = typer.Option(1, "--batches", min=1, help="Number of batches."),
    conditions: int = typer.Option(1, "--conditions", min=1, help="Number of conditions."),
    doublet_rate: float = typer.Option(0.0, "--doublet-rate", help="Share of doublets."),
    trajectory: bool = typer.Option(False, "--trajectory", help="Add a continuous lineage."),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed, same data."),
) -> None:
    """Simulate raw UMI counts with known cell types, batches and DE genes."""
    from scagent.data import simulate as simulate_fn
    from scagent.data.io import write_h5ad

    if out.suffix != ".h5ad":
        from scagent.errors import InvalidParameterError

        raise InvalidParameterError(
            f"--out {out} must end in .h5ad", remedy="pass a file name like sim.h5ad"
        )
    with console.status(f"simulating {cells:,} cells x {genes:,} genes"):
        adata = simulate_fn(
            cells,
            genes,
            species=species,
            n_batches=batches,
            n_conditions=conditions,
            doublet_rate=doublet_rate,
            trajectory=trajectory,
            seed=seed,
        )
        write_h5ad(adata, out)
    console.print(f"wrote {out} ({adata.n_obs:,} cells x {adata.n_vars:,} genes)")


def demo(
    out: Path = typer.Option(
        Path("scagent-demo"), "--out", "-o", help="Folder for the demo project and report."
    ),
    cells: int = typer.Option(3000, "--cells", min=300, help="Number of simulated cells."),
    seed: int = typer.Option(0, "--seed"),
    real_data: bool = typer.Option(
        True, "--real-data/--no-real-data", help="Also run on scanpy's pbmc68k_reduced."
    ),
) -> None:
    """Run scagent end to end on simulated data (and scanpy's pbmc68k_reduced), offline."""
    from scagent.demo import run_demo

    run_demo(n_cells=cells, seed=seed, console=console, out_dir=out, real_data=real_data)


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""
    app.command("inspect")(inspect)
    app.command("simulate")(simulate)
    app.command("demo")(demo)
