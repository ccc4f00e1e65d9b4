"""`scagent pipeline`: run a paradigm's whole plan on a data file or on simulated data, with a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


def _parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """``STEP.PARAM=VALUE`` items as ``{step: {param: value}}``; values are JSON when they parse."""
    from scagent.errors import InvalidParameterError

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        step, dot, name = key.partition(".")
        if not sep or not dot or not step or not name:
            raise InvalidParameterError(
                f"--param {item!r} is not STEP.PARAM=VALUE",
                remedy="e.g. --param leiden.resolution=0.8 --param hvg.n_top_genes=3000",
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(step.strip(), {})[name.strip()] = value
    return out


def _load(
    data: Path,
    *,
    vdj: Path | None,
    guides: Path | None,
    proteins: Path | None,
    console: Console,
) -> Any:
    """Read the data file, move other 10x feature types to obsm, attach the extra modalities."""
    from scagent.data import read, set_modality_counts
    from scagent.data.io import detect_format
    from scagent.data.modalities import read_counts_table, read_with_feature_types

    moved: dict[str, str] = {}
    if detect_format(data) in ("10x_h5", "10x_mtx"):
        adata, moved = read_with_feature_types(data)
    else:
        adata = read(data)
    for feature_type, key in moved.items():
        console.print(f"  {feature_type} features -> obsm['{key}']")
    for path, key, match in (
        (guides, "guide_counts", "fill"),
        (proteins, "protein_counts", "exact"),
    ):
        if path is not None:
            rate = set_modality_counts(adata, key, read_counts_table(path), match=match)
            console.print(f"  {path.name} -> obsm['{key}'] ({rate:.1%} of cells matched)")
    if vdj is not None:
        from scagent.data.vdj import attach_vdj, read_vdj

        rate = attach_vdj(adata, read_vdj(vdj))
        console.print(f"  {vdj.name} -> obsm['airr'] ({rate:.1%} of cells have a receptor)")
    return adata


def _simulate(paradigm: str, n_cells: int, seed: int, console: Console) -> Any:
    """Simulated data of the paradigm's kind; V(D)J goes through a contig file, as real data would."""
    from scagent.plan.run import simulate_paradigm

    with console.status(f"simulating {n_cells:,} cells for '{paradigm}' with planted truth"):
        adata = simulate_paradigm(paradigm, n_cells, seed=seed)
    console.print(f"simulated {adata.n_obs:,} cells x {adata.n_vars:,} genes")
    return adata


def register(app: typer.Typer) -> None:
    """Add the ``pipeline`` command to ``app``."""

    @app.command("pipeline")
    def pipeline(
        paradigm: str = typer.Option(
            ...,
            "--paradigm",
            "-p",
            help="atlas, disease_vs_healthy, developmental_trajectory, temporal_longitudinal, "
            "perturbation_screen, immune_repertoire, multimodal or communication.",
        ),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Folder for the project, report.html and pipeline.json."
        ),
        data: Path | None = typer.Option(
            None, "--data", help="Data file (.h5ad, .zarr, 10x .h5 or folder, ...)."
        ),
        simulate: bool = typer.Option(
            False, "--simulate", help="Simulate data of the paradigm's kind with planted truth."
        ),
        n_cells: int = typer.Option(3000, "--n-cells", min=200, help="Cells to simulate."),
        seed: int = typer.Option(0, "--seed", help="Seed of the simulation."),
        vdj: Path | None = typer.Option(
            None, "--vdj", help="10x filtered_contig_annotations.csv or AIRR .tsv (repertoire)."
        ),
        guides: Path | None = typer.Option(
            None, "--guides", help="CSV of guide counts, cells x guides (perturbation screen)."
        ),
        proteins: Path | None = typer.Option(
            None, "--proteins", help="CSV of antibody counts, cells x proteins (CITE-seq)."
        ),
        param: list[str] = typer.Option(
            [], "--param", help="STEP.PARAM=VALUE override, repeatable (leiden.resolution=0.8)."
        ),
        tissue: str | None = typer.Option(None, "--tissue", help="Tissue, for annotation."),
        organism: str | None = typer.Option(
            None, "--organism", help="Organism (default: from the gene names)."
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Go on with a run in --out that stopped on an error."
        ),
        report: bool = typer.Option(True, "--report/--no-report", help="Write report.html."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Run a paradigm's whole plan: each step recorded, then the report and, for simulated
        data, how well the planted truth was recovered."""
        from scagent._atomic import atomic_write_text
        from scagent.errors import InvalidParameterError, ProjectError
        from scagent.plan import get_paradigm
        from scagent.plan.run import check_paradigm_inputs, run_paradigm, truth_recovery
        from scagent.session import Session

        console = Console(stderr=as_json, highlight=False, soft_wrap=True)
        plan = get_paradigm(paradigm)  # unknown names fail here, with the list
        overrides = _parse_params(param)
        for step_id in overrides:
            plan.step(step_id)
        project_exists = (out / ".scagent").is_dir()
        if resume:
            if data is not None or simulate:
                raise InvalidParameterError(
                    "--resume goes on with the data already in --out; it takes no --data or "
                    "--simulate",
                    remedy="drop --data/--simulate",
                )
            if not project_exists:
                raise ProjectError(
                    f"nothing to resume: {out} holds no scagent project",
                    remedy="start the run without --resume",
                )
            session = Session.open(out)
        else:
            if (data is None) == (not simulate):
                raise InvalidParameterError(
                    "give exactly one of --data FILE or --simulate",
                    remedy=f"e.g. scagent pipeline --paradigm {plan.paradigm} --simulate "
                    f"--out {out}",
                )
            if project_exists:
                raise ProjectError(
                    f"{out} already holds a scagent project",
                    remedy="choose a new --out, or --resume to go on with it",
                )
            if simulate and (vdj or guides or proteins):
                raise InvalidParameterError(
                    "--vdj/--guides/--proteins attach files to --data; --simulate makes its own",
                    remedy="drop them, or use --data",
                )
            if simulate:
                adata = _simulate(plan.paradigm, n_cells, seed, console)
            else:
                console.print(f"reading {data}")
                adata = _load(data, vdj=vdj, guides=guides, proteins=proteins, console=console)
            # Before anything is written: a paradigm without its data fails with what is missing.
            check_paradigm_inputs(plan.paradigm, adata, overrides)
            context: dict[str, Any] = {}
            if tissue or simulate:
                context["tissue"] = tissue or "blood"
            if organism or simulate:
                context["organism"] = organism or "human"
            session = Session.init(
                out, paradigm=plan.paradigm, context=context or None, data=adata,
                requested_by="cli",
            )  # fmt: skip

        def before(step: Any) -> None:
            if not as_json:
                console.print(f"[dim]running {step.id} ({step.tool_id})…[/dim]")

        def after(outcome: Any) -> None:
            if as_json:
                return
            if outcome.status == "done":
                console.print(f"  [green]✓[/green] {outcome.step_id}: {outcome.summary}")
            elif outcome.status == "skipped":
                console.print(f"  [yellow]–[/yellow] {outcome.step_id} skipped: {outcome.reason}")
            else:
                console.print(f"  [dim]· {outcome.step_id}: {outcome.status}[/dim]")

        result = run_paradigm(
            session, plan.paradigm, params=overrides, resume=resume, on_step=after,
            before_step=before,
        )  # fmt: skip
        summary = out / "pipeline.json"
        # Written as soon as the steps are done, then again with the truth and the report.
        atomic_write_text(summary, result.model_dump_json(indent=2) + "\n")
        final = session.adata
        if "simulation" in final.uns:
            result.truth = truth_recovery(plan.paradigm, final)
        if report:
            from scagent.report import build_report

            result.report = str(build_report(session, out=out / "report.html"))
        atomic_write_text(summary, result.model_dump_json(indent=2) + "\n")
        if as_json:
            typer.echo(result.model_dump_json(indent=2))
            return
        if result.truth:
            table = Table(title="how well the planted truth was recovered")
            table.add_column("measure")
            table.add_column("value", justify="right")
            for key, value in result.truth.items():
                table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
            console.print(table)
        done = sum(s.status == "done" for s in result.steps)
        console.print(
            f"{plan.paradigm}: {done} steps run in {result.seconds:.0f} s; project {out}"
            + (f"; report {result.report}" if result.report else "")
            + f"; summary {out / 'pipeline.json'}"
        )
