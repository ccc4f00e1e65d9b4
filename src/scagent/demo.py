"""The offline demo: simulated data with known truth (and scanpy's real pbmc68k_reduced) taken
through everything scagent does, with how well the truth was recovered."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from scagent.data import inspect_adata, simulate, summarize_state


def _annotation_table(adata, label_key: str) -> tuple[Table, float]:
    """Each cluster's label against the simulated truth, scored with the Cell Ontology rule."""
    from scagent.data.truth import annotation_recovery

    scored, weighted = annotation_recovery(adata, label_key, "leiden")
    table = Table(title="annotation vs simulated truth")
    table.add_column("cluster", justify="right")
    table.add_column("cells", justify="right")
    table.add_column("label (CL id)", min_width=28, ratio=3)
    table.add_column("status")
    table.add_column("true type", ratio=2)
    table.add_column("score", justify="right")
    for row in scored.itertuples():
        table.add_row(
            row.cluster,
            f"{row.cells:,}",
            f"{row.label} ({row.cl_id})",
            row.status,
            row.true_type,
            f"{row.score:.1f}",
        )
    return table, weighted


def _pbmc68k(console: Console) -> dict[str, Any]:
    """Inspect scanpy's real pbmc68k_reduced and annotate its louvain clusters offline."""
    import scanpy as sc

    from scagent.annotate.evaluate import pbmc68k_broad_agreement

    state = inspect_adata(sc.datasets.pbmc68k_reduced())
    result = pbmc68k_broad_agreement("louvain")
    share = result["broad_type_agreement_cells"]
    console.print(
        Panel(
            summarize_state(state)
            + f"\nOffline annotation of its {result['clusters']} louvain clusters agrees with "
            f"bulk_labels at the broad-type level for {share:.0%} of cells.",
            title="real data: scanpy's pbmc68k_reduced",
            expand=False,
        )
    )
    return {"pbmc68k_x_state": state.x_state, "pbmc68k_broad_agreement": share}


def _sae(console: Console, out_dir: Path) -> dict[str, Any]:
    """A small TopK sparse autoencoder on pbmc68k_reduced's PCA space, with its dashboard."""
    import scanpy as sc

    from scagent.sae import demo_sae

    with console.status("training a small sparse autoencoder on pbmc68k_reduced"):
        summary = demo_sae(sc.datasets.pbmc68k_reduced(), out_dir)
    training, validation = summary["training"], summary["validation"]
    console.print(
        Panel(
            f"TopK SAE on obsm['X_pca'] ({summary['n_rows']} cells, d_in {summary['d_in']}): "
            f"FVU {training['fvu']:.2f}, L0 {training['l0']:.0f}, "
            f"dead latents {training['dead_fraction']:.0%}\n"
            f"features enriched for a marker set (FDR < 0.05): "
            f"{validation['share_significant']:.0%} vs {validation['null_share_significant']:.0%} "
            "for random directions of the same sparsity\n"
            f"dashboard: {summary['outputs']['dashboard']}",
            title="sparse autoencoder features",
            expand=False,
        )
    )
    return {
        "sae_fvu": training["fvu"],
        "sae_enriched_share": validation["share_significant"],
        "sae_null_enriched_share": validation["null_share_significant"],
        "sae_dashboard": summary["outputs"]["dashboard"],
    }


def run_demo(
    n_cells: int = 3000,
    seed: int = 0,
    console: Console | None = None,
    out_dir: str | Path = "scagent-demo",
    *,
    real_data: bool = True,
) -> dict[str, Any]:
    """Run scagent end to end, offline, and say how well the known truth was recovered.

    Simulates a two-condition, two-batch dataset (three samples per condition) with known
    cell types and DE genes; inspects it; creates a project in ``out_dir/project``; runs QC,
    filtering, normalization, HVG, PCA, Harmony, neighbors, Leiden, UMAP and markers through
    ``Session.run``; annotates the clusters offline with guardrails; runs consensus
    clustering and pseudobulk DE; writes ``out_dir/report.html``; then inspects and
    annotates scanpy's real ``pbmc68k_reduced``.

    Parameters
    ----------
    n_cells
        Number of simulated cells.
    seed
        Random seed.
    console
        Where to print; a new console on stdout when None.
    out_dir
        Folder for the project and the report (created; an existing demo project there is
        replaced).
    real_data
        Also run on scanpy's bundled pbmc68k_reduced.

    Returns
    -------
    What the demo measured (used by tests).
    """
    import shutil

    from scagent.data.truth import clustering_ari, de_recovery
    from scagent.report import build_report
    from scagent.session import Session

    console = console or Console()
    out_dir = Path(out_dir)
    project_dir = out_dir / "project"
    if (project_dir / ".scagent").is_dir():
        shutil.rmtree(project_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]scagent demo")
    started = time.perf_counter()
    with console.status("simulating raw counts with known cell types"):
        adata = simulate(
            n_cells,
            2000,
            n_batches=2,
            n_conditions=2,
            samples_per_condition=3,
            batch_effect=0.15,
            seed=seed,
        )
    truth = adata.obs["cell_type"].value_counts()
    console.print(
        f"Simulated {adata.n_obs:,} cells x {adata.n_vars:,} genes, 2 conditions x 3 samples, "
        "2 batches; true types: " + ", ".join(f"{k} ({v})" for k, v in truth.items()),
        highlight=False,
    )
    state = inspect_adata(adata)
    console.print(Panel(summarize_state(state), title="1. inspect", expand=False))

    session = Session.init(
        project_dir, data=adata, context={"organism": "human", "tissue": "blood"}
    )
    plan = session.plan("leiden")
    console.print(
        Panel(
            " -> ".join(step.tool_id for step in plan),
            title="2. the planner's steps for leiden from raw counts",
            expand=False,
        )
    )
    steps: list[tuple[str, dict[str, Any]]] = [
        ("qc_metrics", {}),
        ("filter_cells", {}),
        ("normalize", {}),
        ("hvg", {"batch_key": "batch"}),
        ("pca", {}),
        ("harmony", {"batch_key": "batch"}),
        ("neighbors", {}),
        ("leiden", {}),
        ("umap", {}),
        ("markers", {"groupby": "leiden"}),
        ("annotate", {"groupby": "leiden"}),
        ("consensus_clustering", {}),
        (
            "pseudobulk_de",
            {"groupby": "annotation_label", "sample_key": "sample", "condition_key": "condition"},
        ),
    ]
    lines = []
    metrics: dict[str, dict[str, Any]] = {}
    with console.status("running the pipeline through Session.run") as status:
        for tool_id, params in steps:
            status.update(f"running {tool_id}")
            record = session.run(tool_id, requested_by="cli", **params)
            lines.append(f"{tool_id}: {record.result.summary}")
            metrics[tool_id] = record.result.metrics
    console.print(
        Panel("\n".join(lines), title="3. run (each step snapshotted and recorded)", expand=False)
    )

    final = session.adata
    table, annotation_score = _annotation_table(final, "annotation")
    console.print(table)
    leiden_ari = clustering_ari(final, "leiden")
    consensus_ari = clustering_ari(final, "consensus_kmode")
    de = de_recovery(final, adata.uns["simulation"]["de_genes"]["stim"])
    report_path = build_report(session, out=out_dir / "report.html")

    recovered = Table(title="4. how well the known truth was recovered", show_header=True)
    recovered.add_column("what")
    recovered.add_column("result", justify="right")
    recovered.add_row(
        "annotation score (1 exact CL term, 0.5 related; cell-weighted)", f"{annotation_score:.2f}"
    )
    recovered.add_row("Leiden ARI with the true types", f"{leiden_ari:.2f}")
    recovered.add_row("consensus (k-modes) ARI with the true types", f"{consensus_ari:.2f}")
    recovered.add_row(
        "batch mixing before -> after Harmony",
        f"{metrics['harmony'].get('batch_mixing_before', float('nan')):.2f} -> "
        f"{metrics['harmony'].get('batch_mixing_after', float('nan')):.2f}",
    )
    recovered.add_row("pseudobulk DE at FDR 0.05: false discovery proportion", f"{de['fdp']:.2f}")
    recovered.add_row("pseudobulk DE: true DE genes found", f"{de['recall_genes']:.0%}")
    console.print(recovered)

    result: dict[str, Any] = {
        "n_obs": adata.n_obs,
        "x_state": state.x_state,
        "species": state.species,
        "steps": [h.tool_id for h in session.history()],
        "annotation_score": annotation_score,
        "leiden_ari": leiden_ari,
        "consensus_ari": consensus_ari,
        "pseudobulk_fdp": de["fdp"],
        "pseudobulk_recall": de["recall_genes"],
        "report": str(report_path),
        "project": str(project_dir),
    }
    if real_data:
        result.update(_pbmc68k(console))
        result.update(_sae(console, out_dir / "sae"))
    result["seconds"] = time.perf_counter() - started
    console.print(
        Panel(
            f"project (snapshots, provenance.jsonld, log): {project_dir}/.scagent\n"
            f"HTML report: {report_path}\n"
            + (f"SAE dashboard: {result['sae_dashboard']}\n" if "sae_dashboard" in result else "")
            + f"explore: scagent status -C {project_dir}   |   scagent chat -C {project_dir}\n"
            f"done in {result['seconds']:.0f} s, offline",
            title="where everything is",
            expand=False,
        )
    )
    return result
