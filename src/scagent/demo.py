"""The offline demo: simulated data with known truth, taken through what scagent can do."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from scagent.data import inspect_adata, simulate, summarize_state


def _accuracy_table(adata, label_key: str) -> tuple[Table, float]:
    """Cluster label vs simulated truth, scored with the Cell Ontology rule."""
    from scagent.knowledge.ontology import score_prediction

    table = Table(title="5. annotation vs simulated truth", show_lines=False)
    table.add_column("cluster", justify="right")
    table.add_column("cells", justify="right")
    table.add_column("label (CL id)", min_width=28, ratio=3)
    table.add_column("status")
    table.add_column("true type", ratio=2)
    table.add_column("score", justify="right")
    scores = []
    obs = adata.obs
    for cluster, group in obs.groupby("leiden", observed=True):
        truth = group["cell_type"].mode().iloc[0]
        truth_id = group.loc[group["cell_type"] == truth, "cell_ontology_id"].iloc[0]
        label = str(group[f"{label_key}_label"].iloc[0])
        cl_id = str(group[f"{label_key}_cl_id"].iloc[0])
        score = score_prediction(cl_id or None, truth_id)
        scores.append((score, len(group)))
        table.add_row(
            str(cluster),
            f"{len(group):,}",
            f"{label} ({cl_id})",
            str(group[f"{label_key}_status"].iloc[0]),
            str(truth),
            f"{score:.1f}",
        )
    weighted = sum(s * n for s, n in scores) / max(1, sum(n for _, n in scores))
    return table, weighted


def run_demo(
    n_cells: int = 3000,
    seed: int = 0,
    console: Console | None = None,
    project_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Simulate a dataset, then inspect, analyse and annotate it through a project.

    Steps: simulate raw counts with known cell types; inspect them; create a project in
    a temporary folder (or ``project_dir``); run Leiden with ``auto=True`` so the planner
    adds normalize, hvg, pca and neighbors; compute markers; annotate the clusters with
    the offline marker-database annotator; score the labels against the truth; show
    the provenance.

    Parameters
    ----------
    n_cells
        Number of simulated cells.
    seed
        Random seed.
    console
        Where to print; a new console on stdout when None.
    project_dir
        Folder for the demo project; a temporary one, removed afterwards, when None.

    Returns
    -------
    What the demo measured (used by tests): shape, states, steps, annotation score.
    """
    from scagent.session import Session

    console = console or Console()
    console.rule("[bold]scagent demo")
    with console.status("simulating raw counts with known cell types"):
        adata = simulate(
            n_cells,
            2000,
            n_batches=2,
            n_conditions=2,
            samples_per_condition=2,
            batch_effect=0.15,
            seed=seed,
        )
    truth = adata.obs["cell_type"].value_counts()
    console.print(
        f"Simulated {adata.n_obs:,} cells x {adata.n_vars:,} genes; true types: "
        + ", ".join(f"{k} ({v})" for k, v in truth.items()),
        highlight=False,
    )
    state = inspect_adata(adata)
    console.print(Panel(summarize_state(state), title="1. inspect", expand=False))

    with tempfile.TemporaryDirectory(prefix="scagent-demo-") as tmp:
        folder = Path(project_dir) if project_dir else Path(tmp)
        session = Session.init(folder, data=adata, context={"organism": "human", "tissue": "blood"})
        plan = session.plan("leiden")
        console.print(
            Panel(
                " -> ".join(step.tool_id for step in plan),
                title="2. plan for leiden (from raw counts)",
                expand=False,
            )
        )
        start = time.perf_counter()
        with console.status("running the planned steps through Session.run"):
            record = session.run("leiden", auto=True, requested_by="cli")
            session.run("umap", requested_by="cli")
            session.run("markers", groupby="leiden", requested_by="cli")
            annotation = session.run(
                "annotate", groupby="leiden", tissue="blood", requested_by="cli"
            )
        seconds = time.perf_counter() - start
        result = annotation.result
        console.print(
            Panel(
                "\n".join(f"{r.tool_id}: {r.summary}" for r in record.steps)
                + f"\nannotate: {result.summary}",
                title=f"3. run ({seconds:.1f} s, every step snapshotted and recorded)",
                expand=False,
            )
        )
        final = session.adata
        table, score = _accuracy_table(final, "annotation")
        console.print(table)
        console.print(
            f"Annotation score against the truth (1 = exact CL term, 0.5 = related): "
            f"[bold]{score:.2f}[/] (cell-weighted)"
        )
        history = session.history()
        prov = session.export_provenance("jsonld")
        console.print(
            Panel(
                "\n".join(f"step {i}: {h.tool_id}" for i, h in enumerate(history))
                + f"\nprovenance.jsonld: {len(prov):,} bytes of W3C PROV",
                title="4. history of branch main",
                expand=False,
            )
        )
        return {
            "n_obs": adata.n_obs,
            "x_state": state.x_state,
            "species": state.species,
            "steps": [h.tool_id for h in history],
            "annotation_score": score,
            "final_state": inspect_adata(final).steps,
        }
