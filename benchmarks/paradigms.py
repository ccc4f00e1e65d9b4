"""Every paradigm end to end on simulated data: truth recovered, and the cost of recording every step.

For each paradigm, data of its kind is simulated with planted truth
(:func:`scagent.plan.run.simulate_paradigm`), then its plan runs twice on the same data:

* **baseline**: the registered tools called one after the other on a plain AnnData, in
  the plan's order with the same resolved parameters (what a script calling scanpy,
  scirpy, muon, liana ... through scagent's wrappers would do, with nothing recorded);
* **pipeline**: :func:`scagent.plan.run.run_paradigm` in a project: every step inspected,
  validated, snapshotted (content-addressed), with provenance.

Both results are scored against the planted truth (:func:`scagent.plan.run.truth_recovery`);
the ratio pipeline / baseline is the price of the record.

Usage::

    python -m benchmarks.paradigms [--cells 3000] [--seed 0] [--only perturbation_screen,...]

Every paradigm runs once on 600 cells first, unrecorded (imports, numba compilation).
Prints one progress line per paradigm, then one JSON object as the last line:
``{"paradigms": {name: {"baseline_s", "pipeline_s", "ratio", "steps", "skipped",
"truth": {...}}}, ...}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any


def _baseline(paradigm: str, adata: Any) -> tuple[float, Any, list[str]]:
    """Run the plan's tools directly on ``adata`` (no session); returns seconds, data, skipped."""
    from scagent.data import inspect_adata
    from scagent.errors import DataStateError, InvalidDataError, MissingDependencyError
    from scagent.plan import get_paradigm
    from scagent.plan.run import resolve_params
    from scagent.tools import get_tool

    plan = get_paradigm(paradigm)
    plan.mark_precomputed_from_state(inspect_adata(adata))
    skipped = []
    started = time.perf_counter()
    for step in plan.steps:
        if step.status != "pending":
            continue
        params, cannot = resolve_params(step, adata)
        if cannot is not None:
            skipped.append(step.id)
            continue
        try:
            get_tool(step.tool_id)(adata, **params)
        except (DataStateError, InvalidDataError, MissingDependencyError):
            if not step.optional:
                raise
            skipped.append(step.id)
    return time.perf_counter() - started, adata, skipped


def _pipeline(paradigm: str, adata: Any, root: Path) -> tuple[float, Any, Any]:
    from scagent.plan.run import run_paradigm
    from scagent.session import Session

    started = time.perf_counter()
    session = Session.init(root, data=adata, context={"organism": "human", "tissue": "blood"})
    result = run_paradigm(session, paradigm)
    return time.perf_counter() - started, session.adata, result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from scagent.plan import list_paradigms
    from scagent.plan.run import simulate_paradigm, truth_recovery

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="Comma-separated paradigms (default: all).")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(list_paradigms())
    warnings.filterwarnings("ignore")
    out: dict[str, Any] = {"cells": args.cells, "seed": args.seed, "paradigms": {}}
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up, not recorded: imports and numba compilation would land on whichever
        # run comes first and make the comparison meaningless.
        for name in names:
            small = simulate_paradigm(name, 600, seed=args.seed)
            _baseline(name, small.copy())
            _pipeline(name, small, Path(tmp) / f"warmup_{name}")
        for name in names:
            data = simulate_paradigm(name, args.cells, seed=args.seed)
            base_s, base, skipped = _baseline(name, data.copy())
            pipe_s, final, result = _pipeline(name, data, Path(tmp) / name)
            entry = {
                "baseline_s": round(base_s, 2),
                "pipeline_s": round(pipe_s, 2),
                "ratio": round(pipe_s / base_s, 3),
                "steps": sum(s.status == "done" for s in result.steps),
                "skipped": [s.step_id for s in result.steps if s.status == "skipped"],
                "baseline_skipped": skipped,
                "truth": truth_recovery(name, final),
                "truth_baseline": truth_recovery(name, base),
            }
            out["paradigms"][name] = entry
            print(
                f"{name}: baseline {base_s:.1f} s, pipeline {pipe_s:.1f} s "
                f"(x{entry['ratio']:.2f}), {entry['steps']} steps",
                file=sys.stderr,
                flush=True,
            )
    print(json.dumps(out, default=str))
    return out


if __name__ == "__main__":
    main()
