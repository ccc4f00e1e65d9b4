"""The offline demo: simulated data with known truth, taken through what scagent can do."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel

from scagent.data import inspect_adata, simulate, summarize_state


def run_demo(n_cells: int = 3000, seed: int = 0, console: Console | None = None) -> dict:
    """Simulate a dataset, inspect it and print what scagent finds.

    Parameters
    ----------
    n_cells
        Number of simulated cells.
    seed
        Random seed.
    console
        Where to print; a new console on stdout when None.

    Returns
    -------
    A dict of what the demo measured (used by tests).
    """
    console = console or Console()
    console.rule("[bold]scagent demo")
    with console.status("simulating raw counts with known cell types"):
        adata = simulate(
            n_cells,
            2000,
            n_batches=2,
            n_conditions=2,
            samples_per_condition=2,
            doublet_rate=0.02,
            seed=seed,
        )
    truth = adata.obs["cell_type"].value_counts()
    console.print(
        f"Simulated {adata.n_obs:,} cells x {adata.n_vars:,} genes; true types: "
        + ", ".join(f"{k} ({v})" for k, v in truth.items()),
        highlight=False,
    )
    state = inspect_adata(adata)
    console.print(Panel(summarize_state(state), title="inspect", expand=False))
    return {"n_obs": adata.n_obs, "x_state": state.x_state, "species": state.species}
