"""`scagent init|run|status|plan|branch|checkout|provenance|replay|undo`: the project commands, each a call into Session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from scagent.errors import InvalidParameterError

PROJECT_OPTION = typer.Option(
    ".",
    "--project",
    "-C",
    help="Project folder (default: the current folder or a parent).",
    envvar="SCAGENT_PROJECT",
)


def _console() -> Console:
    # Made per call so that output goes to the sys.stdout of the moment (tests capture it).
    return Console(highlight=False, soft_wrap=True)


def _open(project: str, lock_timeout: float | None = None):
    from scagent.session import Session

    return Session.open(project, lock_timeout=lock_timeout)


def _parse_value(text: str) -> Any:
    """``--param`` values: JSON where it parses (numbers, true/false, null, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"None": None, "True": True, "False": False}.get(text, text)


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: value}``; :class:`InvalidParameterError` on a bad item."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameterError(
                f"--param {item!r} is not of the form key=value",
                remedy="write e.g. --param resolution=0.8",
            )
        params[key.strip()] = _parse_value(value.strip())
    return params


def _short(snapshot_id: str | None) -> str:
    return (snapshot_id or "-")[:12]


def _params_text(params: dict[str, Any], tool_id: str | None = None, limit: int = 60) -> str:
    """The parameters that differ from the tool's defaults (all of them for an unknown tool)."""
    shown = dict(params)
    if tool_id:
        try:
            from scagent.tools import get_tool

            defaults = get_tool(tool_id).defaults()
            shown = {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}
        except Exception:  # a tool no longer registered: show everything recorded
            shown = dict(params)
        if not shown:
            return "(defaults)"
    text = ", ".join(f"{k}={v!r}" for k, v in shown.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def register(app: typer.Typer) -> None:
    """Add the project commands to ``app``."""

    @app.command("init")
    def init(
        paradigm: str = typer.Option(None, "--paradigm", help="Analysis paradigm (e.g. atlas)."),
        context: Path = typer.Option(None, "--context", help="Experiment context, JSON or YAML."),
        data: Path = typer.Option(None, "--data", help="Data to import as step 0 of 'main'."),
        lazy: bool = typer.Option(
            False,
            "--lazy",
            help="Keep X on disk (dask, .h5ad/.zarr): for data larger than memory; then "
            "`scagent run preprocess_lazy`.",
        ),
        project: str = PROJECT_OPTION,
    ) -> None:
        """Create a project (.scagent/) here; with --data, import it as step 0 of branch main."""
        from scagent.session import Session

        session = Session.init(
            project, paradigm=paradigm, context=context, data=data, requested_by="cli", lazy=lazy
        )
        out = _console()
        out.print(f"initialised scagent project in {session.project.dir}")
        if data is not None:
            out.print(f"imported {data} on branch main (step 0, {_short(session.head())})")

    @app.command("run")
    def run(
        tool: str = typer.Argument(..., help="Tool id (see `scagent tools`)."),
        param: list[str] = typer.Option(None, "--param", "-p", help="key=value, repeatable."),
        auto: bool = typer.Option(False, "--auto", help="Run missing prerequisite steps first."),
        branch: str = typer.Option(None, "--branch", help="Branch to run on (default: current)."),
        request: str = typer.Option(None, "--request", help="Why: recorded in provenance."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
        lock_timeout: float = typer.Option(
            None, "--lock-timeout", help="Seconds to wait for another writer (default: fail)."
        ),
        project: str = PROJECT_OPTION,
    ) -> None:
        """Run TOOL on the head of the branch and record it as a new step."""
        session = _open(project, lock_timeout)
        record = session.run(
            tool,
            auto=auto,
            branch=branch,
            requested_by="cli",
            request_text=request,
            **parse_params(param),
        )
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "branch": record.branch,
                        "snapshot": record.snapshot_id,
                        "steps": [
                            {
                                "step": s.step,
                                "tool_id": s.tool_id,
                                "params": s.params,
                                "planned": s.planned,
                            }
                            for s in record.steps
                        ],
                        "result": record.result.model_dump(mode="json"),
                    },
                    indent=1,
                    default=str,
                )
            )
            return
        out = _console()
        for step in record.steps:
            mark = " (planned)" if step.planned else ""
            out.print(f"{record.branch}@{step.step} {step.tool_id}{mark}: {step.summary}")
        for warning in record.result.warnings:
            out.print(f"[yellow]warning:[/] {warning}")

    @app.command("verify")
    def verify(
        project: str = PROJECT_OPTION,
        ref: str | None = typer.Argument(
            None, help="Check BRANCH, BRANCH@STEP or a snapshot and its ancestors (default: all)."
        ),
    ) -> None:
        """Re-hash every stored part (chunked ones block by block) against its manifest."""
        from scagent.errors import StoreCorruptionError

        session = _open(project)
        if ref is not None:
            ref = session.resolve(ref)  # BRANCH, BRANCH@STEP or a snapshot id
        problems = session.store.verify(ref)
        out = _console()
        if problems:
            for problem in problems:
                out.print(f"[red]corrupt:[/] {problem}")
            raise StoreCorruptionError(
                f"{len(problems)} problem(s) in the snapshot store of {session.project.root}",
                remedy="restore .scagent/store from a backup; snapshots that verify are intact",
            )
        out.print(f"store verified: {len(session.store.list_snapshots())} snapshot(s) intact")

    @app.command("status")
    def status(
        project: str = PROJECT_OPTION, last: int = typer.Option(5, help="Steps shown.")
    ) -> None:
        """Branch, last steps, what the data is, and the suggested next steps."""
        from scagent.data import summarize_state

        session = _open(project)
        out = _console()
        config = session.project.config
        out.print(
            f"project: {session.project.root}"
            + (f"  paradigm: {config.paradigm}" if config.paradigm else "")
        )
        if not session.branches():
            out.print("no data yet: `scagent init --data FILE` or Session.import_data")
            return
        history = session.history()
        out.print(
            f"branch: {session.branch} at step {len(history) - 1} ({_short(history[-1].snapshot_id)})"
        )
        table = Table("step", "tool", "parameters", "by", "summary")
        for step in history[-last:]:
            table.add_row(
                str(step.step),
                step.tool_id,
                _params_text(step.params, step.tool_id),
                step.requested_by,
                step.summary,
            )
        out.print(table)
        out.print(f"data: {summarize_state(session.state)}")
        suggestions = session.next_steps()
        out.print("next: " + (", ".join(suggestions) if suggestions else "nothing pending"))

    @app.command("plan")
    def plan(
        goal: str = typer.Argument(None, help="A tool to reach (e.g. leiden)."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """The steps that make GOAL runnable on the current data (or the suggested next steps)."""
        session = _open(project)
        out = _console()
        if goal is None:
            out.print("next: " + (", ".join(session.next_steps()) or "nothing pending"))
            return
        steps = session.plan(goal)
        if len(steps) <= 1:
            out.print(f"{goal} can run now")
        for i, step in enumerate(steps, 1):
            out.print(f"{i}. {step.tool_id}: {getattr(step, 'reason', '')}")

    branch_app = typer.Typer(
        help="List, create, switch, delete and compare branches.", no_args_is_help=True
    )
    app.add_typer(branch_app, name="branch")

    @branch_app.command("list")
    def branch_list(project: str = PROJECT_OPTION) -> None:
        """Branches with their step count and head."""
        session = _open(project)
        current = session.branch if session.branches() else None
        table = Table("", "branch", "steps", "head", "last tool")
        for name in sorted(session.branches()):
            history = session.history(name)
            table.add_row(
                "*" if name == current else "",
                name,
                str(len(history) - 1),
                _short(history[-1].snapshot_id),
                history[-1].tool_id,
            )
        _console().print(table)

    @branch_app.command("create")
    def branch_create(
        name: str,
        from_ref: str = typer.Option(None, "--from", help="BRANCH@STEP, BRANCH or snapshot id."),
        switch: bool = typer.Option(False, "--switch", help="Switch to it."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """Create branch NAME at --from (default: the current head)."""
        session = _open(project)
        snapshot = session.create_branch(name, from_ref, switch=switch)
        _console().print(
            f"created branch {name} at {_short(snapshot)}" + (" (current)" if switch else "")
        )

    @branch_app.command("switch")
    def branch_switch(name: str, project: str = PROJECT_OPTION) -> None:
        """Make NAME the current branch."""
        _open(project).switch_branch(name)
        _console().print(f"on branch {name}")

    @branch_app.command("delete")
    def branch_delete(name: str, project: str = PROJECT_OPTION) -> None:
        """Delete branch NAME (its snapshots stay in the store and in provenance)."""
        _open(project).delete_branch(name)
        _console().print(f"deleted branch {name}")

    @branch_app.command("compare")
    def branch_compare(
        a: str,
        b: str,
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """Where A and B diverge, their parameter differences, and their clusterings' agreement."""
        result = _open(project).compare(a, b)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=1, default=str))
            return
        out = _console()
        for line in result.describe(crosstabs=True):
            out.print(line)

    @app.command("checkout")
    def checkout(
        ref: str = typer.Argument(..., help="BRANCH, BRANCH@STEP or a snapshot id."),
        out_file: Path = typer.Option(..., "--out", help="The .h5ad file to write."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """Write the data at REF to an .h5ad file."""
        adata = _open(project).checkout(ref, out_file)
        _console().print(f"wrote {out_file} ({adata.n_obs} cells x {adata.n_vars} genes)")

    prov_app = typer.Typer(
        help="Show or export the project's W3C PROV provenance.", no_args_is_help=True
    )
    app.add_typer(prov_app, name="provenance")

    @prov_app.command("show")
    def provenance_show(project: str = PROJECT_OPTION) -> None:
        """One line per recorded activity (all branches)."""
        session = _open(project)
        table = Table("snapshot", "tool", "parameters", "by", "ended")
        for manifest in session.committed_manifests():
            meta = manifest.meta or {}
            table.add_row(
                _short(manifest.id),
                meta.get("tool_id", "?"),
                _params_text(meta.get("params") or {}, meta.get("tool_id")),
                meta.get("requested_by", ""),
                meta.get("ended", ""),
            )
        _console().print(table)

    @prov_app.command("export")
    def provenance_export(
        format: str = typer.Option(
            "jsonld", "--format", help="jsonld (PROV-JSON-LD), provn or json."
        ),
        out_file: Path = typer.Option(None, "--out", help="File to write (default: print)."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """Export the provenance as PROV-JSON-LD or PROV-N."""
        from scagent._atomic import atomic_write_text

        text = _open(project).export_provenance(format)
        if out_file is None:
            typer.echo(text)
        else:
            atomic_write_text(out_file, text)
            _console().print(f"wrote {out_file}")

    @app.command("replay")
    def replay(
        branch: str = typer.Argument(None, help="Branch to replay (default: current)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        keep: bool = typer.Option(False, "--keep", help="Keep the scratch snapshots."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """Re-run BRANCH from its import and report whether each step reproduces its hashes."""
        report = _open(project).replay(branch, keep=keep)
        if as_json:
            typer.echo(json.dumps(report.to_dict(), indent=1, default=str))
        else:
            table = Table("step", "tool", "deterministic", "result", "differing parts")
            for s in report.steps:
                table.add_row(
                    str(s.step),
                    s.tool_id,
                    "yes" if s.deterministic else "no",
                    s.status.replace("_", " "),
                    s.error or ", ".join(s.differing),
                )
            out = _console()
            out.print(table)
            out.print(
                "replay reproduced every deterministic step"
                if report.ok
                else "[red]replay did not reproduce the branch[/]"
            )
        if not report.ok:
            raise typer.Exit(1)

    @app.command("undo")
    def undo(
        branch: str = typer.Option(None, "--branch", help="Branch (default: current)."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """Move the branch back one step; nothing is deleted."""
        session = _open(project)
        undone = session.undo(branch)
        _console().print(
            f"undid step {undone.step} ({undone.tool_id}); {branch or session.branch} is at step "
            f"{undone.step - 1} — `scagent branch create NAME --from {_short(undone.snapshot_id)}` keeps it"
        )
