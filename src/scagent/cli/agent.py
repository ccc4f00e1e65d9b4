"""`scagent chat` and `scagent export methods|bundle|provenance`: the agent's front doors on the command line."""

from __future__ import annotations

from pathlib import Path

import typer

PROJECT_OPTION = typer.Option(
    ".",
    "--project",
    "-C",
    help="Project folder (default: the current folder or a parent).",
    envvar="SCAGENT_PROJECT",
)


def default_action(ctx: typer.Context) -> None:
    """With no subcommand: start the chat inside a project, else show the help.

    Called from the root callback (``invoke_without_command=True``).
    """
    if ctx.invoked_subcommand is not None:
        return
    from scagent.session.project import find_project_root

    if find_project_root(".") is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    from scagent.agent.repl import start_chat

    raise typer.Exit(start_chat("."))


def register(app: typer.Typer) -> None:
    """Add ``chat`` and the ``export`` group to ``app``."""

    @app.command("chat")
    def chat(
        offline: bool = typer.Option(
            False, "--offline", help="Use the offline intent parser, no LLM."
        ),
        llm: str = typer.Option(
            None, "--llm", help="LLM backend: openai:MODEL, anthropic:MODEL, ollama:MODEL, offline."
        ),
        base_url: str = typer.Option(
            None, "--base-url", help="Base URL of an OpenAI-compatible server."
        ),
        yes: bool = typer.Option(False, "--yes", "-y", help="Run plans without asking."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """Talk to the analysis: slash commands and plain-words requests, each step checked and recorded."""
        from scagent.agent.repl import start_chat

        code = start_chat(project, offline=offline, llm=llm, base_url=base_url, yes=yes)
        if code:
            raise typer.Exit(code)

    export_app = typer.Typer(
        help="Export a methods section, the provenance, or a reproducibility bundle.",
        no_args_is_help=True,
    )
    app.add_typer(export_app, name="export")

    @export_app.command("methods")
    def export_methods(
        branch: str = typer.Option(None, "--branch", help="Branch (default: current)."),
        out: Path = typer.Option(None, "--out", help="File to write (default: print)."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """A methods section written from the provenance (deterministic)."""
        from scagent._atomic import atomic_write_text
        from scagent.agent.exports import methods_text
        from scagent.session import Session

        text = methods_text(Session.open(project), branch)
        if out is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(out, text)
            typer.echo(f"wrote {out}")

    @export_app.command("bundle")
    def export_bundle(
        out: Path = typer.Argument(..., help="Folder to create (must be new or empty)."),
        branch: str = typer.Option(None, "--branch", help="Branch (default: current)."),
        no_data: bool = typer.Option(
            False,
            "--no-data",
            help="Leave the imported data out (run.sh then takes it as argument).",
        ),
        project: str = PROJECT_OPTION,
    ) -> None:
        """A folder that re-creates the branch elsewhere: project.json, PROV, run.sh, versions."""
        from scagent.agent.exports import write_bundle
        from scagent.session import Session

        path = write_bundle(Session.open(project), out, branch=branch, include_data=not no_data)
        typer.echo(f"wrote bundle {path} (run: {path}/run.sh)")

    @export_app.command("provenance")
    def export_provenance(
        format: str = typer.Option("jsonld", "--format", help="jsonld, provn or json."),
        out: Path = typer.Option(None, "--out", help="File to write (default: print)."),
        project: str = PROJECT_OPTION,
    ) -> None:
        """The project's W3C PROV record."""
        from scagent._atomic import atomic_write_text
        from scagent.session import Session

        text = Session.open(project).export_provenance(format)
        if out is None:
            typer.echo(text)
        else:
            atomic_write_text(out, text)
            typer.echo(f"wrote {out}")
