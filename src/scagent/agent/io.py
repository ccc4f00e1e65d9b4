"""Where the agent speaks and listens: one small interface, a rich terminal version and a recording one for tests.

The orchestrator never prints or reads directly; it calls :class:`AgentIO`, so the same
loop serves the REPL, scripts and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["AgentIO", "ConsoleIO", "RecordingIO"]


class AgentIO:
    """What the agent needs from a front door: say things, and ask yes/no.

    Subclasses implement :meth:`emit` and :meth:`ask`; ``kind`` is one of ``info``,
    ``agent`` (the assistant's words), ``plan``, ``step``, ``warning``, ``error``, ``note``.
    """

    def emit(self, text: str, kind: str = "info") -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def ask(self, question: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- conveniences ---------------------------------------------------------------
    def say(self, text: str) -> None:
        self.emit(text, "info")

    def warn(self, text: str) -> None:
        self.emit(text, "warning")

    def error(self, text: str) -> None:
        self.emit(text, "error")

    def confirm(self, question: str = "Proceed?", default: bool = False) -> bool:
        """Ask a yes/no question; an empty answer takes ``default``."""
        hint = "[Y/n]" if default else "[y/N]"
        answer = self.ask(f"{question} {hint} ").strip().lower()
        if not answer:
            return default
        return answer in ("y", "yes", "ok", "proceed", "go", "sure")

    def busy(self, text: str):
        """A context manager shown while a long step runs (a spinner on a terminal)."""
        import contextlib

        self.emit(text, "note")
        return contextlib.nullcontext()


_STYLES = {
    "info": "",
    "agent": "bold",
    "plan": "cyan",
    "step": "green",
    "warning": "yellow",
    "error": "bold red",
    "note": "dim",
}
_PREFIX = {"warning": "warning: ", "error": "error: "}


class ConsoleIO(AgentIO):
    """The terminal: rich output, answers read by ``reader`` (prompt_toolkit in the REPL)."""

    def __init__(self, reader: Callable[[str], str] | None = None, console=None) -> None:
        from rich.console import Console

        self.console = console or Console(highlight=False, soft_wrap=True)
        self._reader = reader or input

    def emit(self, text: str, kind: str = "info") -> None:
        from rich.markup import escape

        style = _STYLES.get(kind, "")
        body = _PREFIX.get(kind, "") + text
        # Tool output and model text may hold [brackets]; never let rich read them as markup.
        self.console.print(f"[{style}]{escape(body)}[/]" if style else escape(body))

    def ask(self, question: str) -> str:
        return self._reader(question)

    def busy(self, text: str):
        if self.console.is_terminal:
            return self.console.status(text)
        return super().busy(text)


@dataclass
class RecordingIO(AgentIO):
    """Keeps every line (for tests and for memory) and answers questions from a script."""

    answers: list[str] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)

    def emit(self, text: str, kind: str = "info") -> None:
        self.lines.append((kind, text))

    def ask(self, question: str) -> str:
        self.questions.append(question)
        return self.answers.pop(0) if self.answers else ""

    def text(self, kinds: str | Iterable[str] | None = None) -> str:
        """Everything said (optionally only lines of a kind or kinds), one line each."""
        if isinstance(kinds, str):
            kinds = (kinds,)
        wanted = set(kinds) if kinds is not None else None
        return "\n".join(t for k, t in self.lines if wanted is None or k in wanted)

    def clear(self) -> None:
        self.lines.clear()
        self.questions.clear()
