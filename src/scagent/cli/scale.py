"""`scagent scale ...`: out-of-core preprocessing on dask, locally or on a dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)

scale_app = typer.Typer(
    name="scale",
    help="Data larger than memory: lazy reads and dask, on this machine or a cluster.",
    no_args_is_help=True,
)


@scale_app.command("preprocess")
def preprocess_cmd(
    path: Path = typer.Argument(..., help="Raw counts as .h5ad or .zarr (X stored CSR or dense)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .zarr (or .h5ad)."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="dask.distributed scheduler address, e.g. tcp://host:8786."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Start a LocalCluster with N worker processes."
    ),
    chunk_cells: int = typer.Option(10_000, "--chunk-cells", min=1, help="Cells per chunk."),
    target_sum: float | None = typer.Option(
        1e4, "--target-sum", help="Counts per cell after normalization."
    ),
    n_top_genes: int = typer.Option(2000, "--n-top-genes", min=1),
    flavor: str = typer.Option("seurat", "--flavor", help="HVG flavor: seurat or cell_ranger."),
    n_comps: int = typer.Option(50, "--n-comps", min=1),
    write_x: bool = typer.Option(
        True,
        "--write-x/--no-write-x",
        help="Write the log-normalized X and counts layer (streamed), or only obs/var/PCA.",
    ),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds to wait for --scheduler."),
) -> None:
    """QC -> normalize + log1p -> HVG -> PCA chunk by chunk; prints a JSON summary."""
    import anndata as ad

    from scagent.scale import preprocess_lazy, read_lazy, use_cluster, write_lazy

    with use_cluster(scheduler, workers=workers, timeout=timeout) as client:
        adata = read_lazy(path, chunk_cells=chunk_cells)
        with console.status(f"preprocessing {adata.n_obs:,} cells x {adata.n_vars:,} genes"):
            summary = preprocess_lazy(
                adata,
                target_sum=target_sum,
                n_top_genes=n_top_genes,
                flavor=flavor,  # type: ignore[arg-type]
                n_comps=n_comps,
            )
        if not write_x:
            adata = ad.AnnData(
                obs=adata.obs, var=adata.var, uns=adata.uns, obsm=adata.obsm, varm=adata.varm
            )
        with console.status(f"writing {out}"):
            write_lazy(adata, out)
        summary["scheduler"] = client.scheduler.address if client is not None else "local threads"
    summary["out"] = str(out)
    typer.echo(json.dumps(summary, indent=2))


@scale_app.command("check")
def check_cmd(
    path: Path = typer.Argument(..., help="An .h5ad or .zarr."),
) -> None:
    """Say whether PATH fits in memory (from its metadata) or needs the lazy path."""
    from scagent.scale import available_memory, check_fits_in_memory

    need = check_fits_in_memory(path)
    typer.echo(
        json.dumps({"in_memory_bytes": need, "available_bytes": available_memory(), "fits": True})
    )


def register(app: typer.Typer) -> None:
    """Add the `scale` sub-command group to the main app."""
    app.add_typer(scale_app, name="scale")
