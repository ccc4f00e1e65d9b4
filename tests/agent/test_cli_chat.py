"""`scagent chat` and the bare `scagent` inside a project, with piped input (no terminal)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from scagent.cli.agent import default_action, register


def _app() -> typer.Typer:
    """An app wired as the lead wires main.py: register() plus the no-argument default."""
    app = typer.Typer(no_args_is_help=False)

    @app.callback(invoke_without_command=True)
    def _root(ctx: typer.Context) -> None:
        default_action(ctx)

    register(app)
    return app


def test_chat_reads_piped_lines_and_confirms(processed):
    root = str(processed.project.root)
    head = processed.head()
    result = CliRunner().invoke(
        _app(), ["chat", "--offline", "--project", root], input="run QC\nn\n/status\n/quit\n"
    )
    assert result.exit_code == 0, result.output
    assert "mode: offline intent parser" in result.output
    assert "Proceed? [y/N]" in result.output and "Nothing was run" in result.output
    assert "branch main at step 7" in result.output
    assert processed.head() == head


def test_chat_yes_runs_without_asking(processed):
    root = str(processed.project.root)
    result = CliRunner().invoke(
        _app(), ["chat", "--offline", "--yes", "--project", root], input="filter genes\n"
    )
    assert result.exit_code == 0, result.output
    assert "Proceed?" not in result.output
    assert processed.history()[-1].tool_id == "filter_genes"


def test_bare_command_starts_the_chat_in_a_project(processed, tmp_path, monkeypatch):
    monkeypatch.setenv("SCAGENT_LLM", "offline")
    monkeypatch.chdir(processed.project.root)
    result = CliRunner().invoke(_app(), [], input="/quit\n")
    assert result.exit_code == 0, result.output
    assert "scagent" in result.output and "branch: main at step 7" in result.output
    outside = tmp_path / "empty"
    outside.mkdir()
    monkeypatch.chdir(outside)
    result = CliRunner().invoke(_app(), [])
    assert result.exit_code == 0
    assert "chat" in result.output and "Usage" in result.output


def test_chat_without_a_project_fails_clearly(tmp_path):
    from scagent.errors import ProjectError

    result = CliRunner().invoke(_app(), ["chat", "--offline", "--project", str(tmp_path)])
    assert isinstance(result.exception, ProjectError)


def test_hosted_llm_without_a_key_goes_offline_with_a_warning(processed):
    result = CliRunner().invoke(
        _app(),
        ["chat", "--llm", "openai:gpt-4o-mini", "--project", str(processed.project.root)],
        input="/quit\n",
    )
    assert result.exit_code == 0, result.output
    assert "OPENAI_API_KEY" in result.output
    assert "mode: offline intent parser" in result.output
