"""`scagent sae ...`: activations, train, features, validate, dashboard, or all of them with `run`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)

sae_app = typer.Typer(
    name="sae",
    help="Sparse autoencoders on single-cell model activations.",
    no_args_is_help=True,
)

_SOURCE_HELP = (
    "obsm:KEY, X, raw, layer:NAME, file:PATH (.npy/.pt/.zarr), hf:MODEL_FOLDER or tahoe:SIZE."
)


def _train_params(**kw: object) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


@sae_app.command("run")
def run_cmd(
    data: Path = typer.Option(..., "--data", help="Input data (.h5ad, .zarr, ...)."),
    source: str = typer.Option(..., "--source", help=_SOURCE_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    layer: int | None = typer.Option(None, "--layer", help="Model layer to hook (hf/tahoe)."),
    d_sae: int = typer.Option(1024, "--d-sae", help="Number of latents."),
    k: int = typer.Option(32, "--k", help="Active latents per input."),
    steps: int = typer.Option(2000, "--steps"),
    batch_size: int = typer.Option(4096, "--batch-size"),
    lr: float = typer.Option(2e-4, "--lr"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or mps."),
    seed: int = typer.Option(0, "--seed"),
    groupby: str | None = typer.Option(
        None, "--groupby", help="obs column of cell types / clusters."
    ),
    species: str = typer.Option("human", "--species"),
    gmt: Path | None = typer.Option(None, "--gmt", help="Extra gene sets (GMT) to test."),
) -> None:
    """Activations -> train -> features -> validate -> dashboard, in one go."""
    from scagent.data import read
    from scagent.sae.pipeline import run
    from scagent.sae.validate import marker_gene_sets

    adata = read(data)
    sets = None
    if gmt is not None:
        from scagent.knowledge.genesets import read_gmt

        sets = {**marker_gene_sets(species), **read_gmt(gmt)}
    summary = run(
        adata,
        source,
        out,
        layer=layer,
        groupby=groupby,
        gene_sets=sets,
        species=species,
        progress=True,
        d_sae=d_sae,
        k=k,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        device=device,
        seed=seed,
    )
    v = summary["validation"]
    console.print(
        f"FVU {summary['training'].get('fvu', float('nan')):.3f}; enriched features "
        f"{v['share_significant']:.1%} vs null {v['null_share_significant']:.1%}; "
        f"dashboard: {summary['outputs']['dashboard']}",
        highlight=False,
    )


@sae_app.command("activations")
def activations_cmd(
    data: Path = typer.Option(..., "--data"),
    source: str = typer.Option(..., "--source", help=_SOURCE_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Cache folder."),
    layer: int | None = typer.Option(None, "--layer"),
    pooling: str | None = typer.Option(
        None, "--pooling", help="hf: mean, cls or none (per token)."
    ),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="hf: sequence length."),
) -> None:
    """Extract activations into a chunked on-disk cache."""
    from scagent.data import read
    from scagent.sae.activations import cache_activations, parse_source

    options = _train_params(pooling=pooling, max_tokens=max_tokens)
    cache = cache_activations(parse_source(source, layer=layer, **options), read(data), out)
    meta = {
        k: v for k, v in cache.meta.items() if k not in ("gene_ids", "feature_names", "chunk_rows")
    }
    typer.echo(json.dumps(meta, indent=1, default=str))


@sae_app.command("train")
def train_cmd(
    cache: Path = typer.Option(..., "--cache", help="Activation cache folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder."),
    config: Path | None = typer.Option(
        None, "--config", help="YAML config; options below override it."
    ),
    d_sae: int | None = typer.Option(None, "--d-sae"),
    k: int | None = typer.Option(None, "--k"),
    steps: int | None = typer.Option(None, "--steps"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    warmup_steps: int | None = typer.Option(None, "--warmup-steps"),
    device: str | None = typer.Option(None, "--device"),
    seed: int | None = typer.Option(None, "--seed"),
    checkpoint_every: int | None = typer.Option(None, "--checkpoint-every"),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from the latest checkpoint in --out."
    ),
) -> None:
    """Train a TopK SAE on a cache; writes sae/, checkpoints/ and training_metrics.json."""
    from scagent.sae.activations import ActivationCache
    from scagent.sae.train import load_config, make_config, train_sae

    params = _train_params(
        d_sae=d_sae,
        k=k,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=warmup_steps,
        device=device,
        seed=seed,
        checkpoint_every=checkpoint_every,
    )
    cfg = load_config(config, **params) if config is not None else make_config(**params)
    acts = ActivationCache(cache)
    result = train_sae(
        acts,
        cfg,
        out,
        resume=resume,
        progress=True,
        metadata={"hook_name": acts.meta.get("source")},
    )
    typer.echo(json.dumps(result.metrics["final"], indent=1))


@sae_app.command("features")
def features_cmd(
    data: Path = typer.Option(..., "--data"),
    cache: Path = typer.Option(..., "--cache"),
    sae: Path = typer.Option(..., "--sae", help="SAE folder (run folder's sae/)."),
    out: Path = typer.Option(..., "--out", "-o"),
    groupby: str | None = typer.Option(None, "--groupby"),
    gene_score: str = typer.Option("auto", "--gene-score", help="auto, decoder or correlation."),
) -> None:
    """Per-feature cell and gene statistics as parquet + JSON."""
    from scagent.data import read
    from scagent.sae.activations import ActivationCache
    from scagent.sae.features import compute_features, write_features
    from scagent.sae.model import load_sae

    result = compute_features(
        load_sae(sae), ActivationCache(cache), read(data), groupby=groupby, gene_score=gene_score
    )
    write_features(result, out)
    typer.echo(f"{int((result.features['frequency'] > 0).sum())} live features -> {out}")


@sae_app.command("validate")
def validate_cmd(
    data: Path = typer.Option(..., "--data"),
    cache: Path = typer.Option(..., "--cache"),
    sae: Path = typer.Option(..., "--sae"),
    features: Path = typer.Option(..., "--features", help="Folder from `scagent sae features`."),
    out: Path = typer.Option(..., "--out", "-o"),
    species: str = typer.Option("human", "--species"),
    tissue: str | None = typer.Option(None, "--tissue"),
    gmt: Path | None = typer.Option(None, "--gmt"),
    n_top: int = typer.Option(20, "--n-top"),
) -> None:
    """Enrichment of each feature's top genes vs a random-direction null."""
    from scagent.data import read
    from scagent.sae.activations import ActivationCache
    from scagent.sae.features import read_features
    from scagent.sae.model import load_sae
    from scagent.sae.validate import marker_gene_sets, validate_features

    sets = marker_gene_sets(species, tissue)
    if gmt is not None:
        from scagent.knowledge.genesets import read_gmt

        sets.update(read_gmt(gmt))
    result = validate_features(
        read_features(features),
        load_sae(sae),
        ActivationCache(cache),
        read(data),
        gene_sets=sets,
        n_top=n_top,
    )
    result.write(out)
    typer.echo(
        json.dumps({k: v for k, v in result.summary.items() if k != "best_gene_set"}, indent=1)
    )


@sae_app.command("dashboard")
def dashboard_cmd(
    features: Path = typer.Option(..., "--features"),
    out: Path = typer.Option(..., "--out", "-o", help="HTML file."),
    validation: Path | None = typer.Option(
        None, "--validation", help="Folder from `scagent sae validate`."
    ),
) -> None:
    """One self-contained HTML page to browse the features."""
    import pandas as pd

    from scagent.sae.dashboard import build_dashboard
    from scagent.sae.features import read_features

    summary, enrichment = None, None
    if validation is not None:
        summary = json.loads((validation / "validation.json").read_text())
        enrichment = pd.read_parquet(validation / "enrichment.parquet")
    build_dashboard(read_features(features), out, summary, enrichment)
    typer.echo(str(out))


def register(app: typer.Typer) -> None:
    """Add the `sae` sub-command group to the main app."""
    app.add_typer(sae_app, name="sae")
