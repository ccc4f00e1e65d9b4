"""The chat REPL: a banner, prompt_toolkit line editing with history and completion, slash commands and plain-words requests.

``scagent chat`` (and ``python -m scagent.agent.repl``) open the project, build the agent
(an LLM client when one is configured, the offline intent parser otherwise) and read
lines until ``/quit`` or Ctrl-D. Ctrl-C at the prompt clears the line; Ctrl-C during a
step interrupts it, and the session guarantees that nothing of it is committed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from scagent import __version__
from scagent.errors import ScagentError

if TYPE_CHECKING:
    from scagent.agent.memory import Memory
    from scagent.agent.orchestrator import Agent
    from scagent.session import Session

__all__ = ["banner", "main", "make_llm_client", "run_repl", "start_chat"]


def make_llm_client(
    offline: bool = False,
    spec: str | None = None,
    base_url: str | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> Any:
    """The LLM client for the agent, or ``None`` for the offline parser.

    ``--offline`` wins; otherwise ``spec`` / ``SCAGENT_LLM`` / an API key choose the
    backend (:func:`scagent.llm.get_client`). A backend that cannot be built (no key, no
    SDK) is reported through ``warn`` and the agent goes offline.
    """
    if offline:
        return None
    from scagent.llm import get_client, resolve_spec

    try:
        if resolve_spec(spec).backend == "offline":
            return None
        return get_client(spec, base_url=base_url)
    except ScagentError as err:
        if warn is not None:
            warn(f"no LLM: {err.one_line()}; using the offline intent parser")
        return None


def banner(session: Session, agent: Agent) -> str:
    """The lines shown when the REPL starts."""
    config = session.project.config
    ctx = config.context
    lines = [f"scagent {__version__} — chat"]
    head = f"project: {session.project.root.name} ({session.project.root})"
    if config.paradigm:
        head += f"   paradigm: {config.paradigm}"
    lines.append(head)
    if session.branches():
        state = session.state
        species = ctx.organism.name if ctx.organism else state.species
        about = [x for x in (species, ctx.tissue.label if ctx.tissue else None, ctx.platform) if x]
        lines.append(f"data: {', '.join(about)} | {state.n_obs:,} cells x {state.n_vars:,} genes")
        history = session.history()
        lines.append(f"branch: {session.branch} at step {len(history) - 1} ({history[-1].tool_id})")
    else:
        lines.append("data: none yet (`scagent init --data FILE`)")
    mode = (
        "offline intent parser"
        if agent.mode == "offline"
        else f"LLM {agent.mode.removeprefix('llm:')}"
    )
    lines.append(
        f"mode: {mode}" + ("   (--yes: plans run without asking)" if agent.auto_yes else "")
    )
    lines.append("Type /help for commands, or ask in plain words. /quit or Ctrl-D leaves.")
    return "\n".join(lines)


def _prompt_text(session: Session) -> str:
    if not session.branches():
        return "scagent> "
    return f"{session.branch}@{len(session.history()) - 1}> "


def _completer(tool_ids: Iterable[str]):
    from prompt_toolkit.completion import Completer, Completion

    from scagent.agent.commands import COMMANDS

    tools = sorted(tool_ids)

    class SlashCompleter(Completer):
        """Slash commands at the start of a line; tool ids after /run, /tools, /plan."""

        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            if text.startswith("/") and " " not in text:
                for name in COMMANDS:
                    if name.startswith(text):
                        yield Completion(name, start_position=-len(text))
                return
            words = text.split(" ")
            if len(words) == 2 and words[0] in ("/run", "/tools", "/plan", "/provenance"):
                for tool in tools:
                    if tool.startswith(words[1]):
                        yield Completion(tool, start_position=-len(words[1]))

    return SlashCompleter()


def _readers(memory: Memory | None, interactive: bool, session: Session):
    """``(read_line, read_answer)``: prompt_toolkit on a terminal, plain input otherwise."""
    if not interactive:

        def plain(prompt: str) -> str:
            sys.stdout.write(prompt)
            sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n")

        return (lambda: plain(_prompt_text(session))), plain

    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory

    from scagent.tools import tool_ids

    # The line history comes from the project's memory, so it needs no file of its own.
    history = InMemoryHistory()
    for line in memory.user_inputs() if memory is not None else []:
        history.append_string(line)
    lines = PromptSession(
        history=history, completer=_completer(tool_ids()), reserve_space_for_menu=4
    )
    answers: PromptSession = PromptSession()
    return (lambda: lines.prompt(_prompt_text(session))), (lambda q: answers.prompt(q))


def run_repl(
    session: Session,
    *,
    llm: Any = None,
    auto_yes: bool = False,
    interactive: bool | None = None,
    console: Any = None,
) -> int:
    """Run the chat loop on ``session`` until /quit or end of input; returns the exit code."""
    from scagent.agent.io import ConsoleIO
    from scagent.agent.memory import Memory
    from scagent.agent.orchestrator import Agent

    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    memory = Memory.for_project(session.project.dir)
    read_line, read_answer = _readers(memory, interactive, session)
    io = ConsoleIO(reader=read_answer, console=console)
    agent = Agent(session, io, llm=llm, auto_yes=auto_yes, memory=memory)
    previous = memory.previous_session()
    memory.start_session(session.branch if session.branches() else None)
    io.emit(banner(session, agent), "info")
    if previous is not None:
        io.emit(previous.text(), "note")
    try:
        while True:
            try:
                line = read_line()
            except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh line, as in a shell
                continue
            except EOFError:
                break
            try:
                if not agent.handle(line):
                    break
            except KeyboardInterrupt:
                # Ctrl-C outside a step (steps catch their own): nothing was being written.
                where = (
                    f"branch {session.branch} is at step {len(session.history()) - 1}"
                    if session.branches()
                    else "nothing changed"
                )
                io.emit(f"interrupted; {where}", "warning")
            except ScagentError as err:
                io.emit(err.one_line(), "error")
    finally:
        memory.end_session()
        memory.close()
    io.emit("bye", "note")
    return 0


def start_chat(
    project: str = ".",
    *,
    offline: bool = False,
    llm: str | None = None,
    base_url: str | None = None,
    yes: bool = False,
) -> int:
    """Open the project at ``project`` and run the REPL (what ``scagent chat`` does)."""
    from rich.console import Console

    from scagent.session import Session

    session = Session.open(project)
    console = Console(highlight=False, soft_wrap=True)
    client = make_llm_client(
        offline, llm, base_url, warn=lambda text: console.print(f"[yellow]warning:[/] {text}")
    )
    return run_repl(session, llm=client, auto_yes=yes, console=console)


def main(argv: list[str] | None = None) -> int:
    """``python -m scagent.agent.repl [--offline] [--llm SPEC] [--base-url URL] [--yes] [-C DIR]``."""
    parser = argparse.ArgumentParser(prog="scagent chat", description="Chat with a project.")
    parser.add_argument("--offline", action="store_true", help="Use the offline intent parser.")
    parser.add_argument("--llm", default=None, help="LLM backend (see `scagent annotate --help`).")
    parser.add_argument("--base-url", default=None, help="Base URL of an OpenAI-compatible server.")
    parser.add_argument("--yes", "-y", action="store_true", help="Run plans without asking.")
    parser.add_argument("--project", "-C", default=".", help="Project folder.")
    args = parser.parse_args(argv)
    try:
        return start_chat(
            args.project, offline=args.offline, llm=args.llm, base_url=args.base_url, yes=args.yes
        )
    except ScagentError as err:
        sys.stderr.write(f"error: {err.one_line()}\n")
        return err.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
