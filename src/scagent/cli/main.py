"""Entry point of the `scagent` command: the typer app, error handling and exit codes."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from scagent import __version__
from scagent.errors import ScagentError

app = typer.Typer(
    name="scagent",
    help="Single-cell RNA-seq analysis you can trust.",
    # No arguments: the chat inside a project, the help elsewhere (see _root).
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Console for errors and progress (stderr), so that --json output on stdout stays clean.
err_console = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"scagent {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks instead of one-line errors."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    if debug:
        os.environ["SCAGENT_DEBUG"] = "1"
    from scagent.cli.agent import default_action

    default_action(ctx)


def _register_commands() -> None:
    # Command groups live in their own modules; each exposes `register(app)`.
    from scagent.cli import (
        agent,
        annotate,
        consensus,
        data,
        knowledge,
        pipeline,
        project,
        report,
        sae,
        scale,
        tools,
    )

    for module in (
        data, tools, project, pipeline, knowledge, annotate, consensus, sae, report, scale, agent,
    ):  # fmt: skip
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn :class:`ScagentError` into ``error: <what> — <remedy>`` and its exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        # standalone mode: click prints usage errors itself and raises SystemExit(2).
        app(args=argv, prog_name="scagent")
    except ScagentError as err:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {err.one_line()}", highlight=False, soft_wrap=True)
        return err.exit_code
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
