"""Conversation memory of a project: every turn in SQLite with full-text search, and the tiered context an LLM sees.

The database lives in ``.scagent/memory.sqlite``. SQLite gives atomic transactions and
FTS5 (bm25-ranked full-text search) in the standard library, so memory needs no server
and no extra dependency. Context for a model is built in three tiers:

* **pinned**: what must always be there (experiment context, data state, branch, next
  steps), built by the caller from the session;
* **recent**: the last turns of the conversation, in order;
* **retrieved**: older turns that match the new request (FTS5), not already recent.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ContextBundle", "Memory", "SessionSummary", "Turn"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    ended TEXT,
    branch TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    time TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    tool_id TEXT,
    branch TEXT,
    step INTEGER,
    open_question INTEGER NOT NULL DEFAULT 0
);
CREATE VIRTUAL TABLE IF NOT EXISTS turns_fts USING fts5(content, role UNINDEXED);
"""

#: Roles of turns: what the user typed, what the agent said, a committed step, a question
#: the agent could not resolve.
ROLES = ("user", "agent", "step", "warning")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Turn:
    """One stored turn."""

    id: int
    session_id: int
    time: str
    role: str
    content: str
    tool_id: str | None = None
    branch: str | None = None
    step: int | None = None
    open_question: bool = False


@dataclass
class SessionSummary:
    """What happened in one chat session: its last steps and the questions left open."""

    session_id: int
    started: str
    ended: str | None
    steps: list[str] = field(default_factory=list)
    open_questions: list[str] = field(default_factory=list)
    n_turns: int = 0

    def text(self) -> str:
        when = (self.ended or self.started)[:16].replace("T", " ")
        parts = [f"Last session ({when} UTC, {self.n_turns} turns)."]
        parts.append(
            "Last steps: " + "; ".join(_clip(s, 90) for s in self.steps[-5:]) + "."
            if self.steps
            else "No steps were run."
        )
        if self.open_questions:
            parts.append(
                "Open questions: " + "; ".join(_clip(q, 120) for q in self.open_questions[-3:])
            )
        return " ".join(parts)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class ContextBundle:
    """The three tiers of context for one model request."""

    pinned: str
    recent: list[Turn]
    retrieved: list[Turn]

    def retrieved_text(self, limit: int = 1500) -> str:
        lines = [f"- ({t.time[:10]}, {t.role}) {t.content}" for t in self.retrieved]
        text = "\n".join(lines)
        return text if len(text) <= limit else text[: limit - 1] + "…"


def fts_query(text: str) -> str | None:
    """An FTS5 query that finds turns sharing any word with ``text`` (words are quoted,
    so punctuation and FTS operators in user text cannot break the query)."""
    words = [w for w in re.findall(r"[\w\-\.]+", text.lower()) if len(w) > 1]
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))


class Memory:
    """The conversation memory of one project.

    Parameters
    ----------
    path
        The SQLite file (``.scagent/memory.sqlite``); created with its tables if missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: the REPL may save a turn from a worker thread (spinner).
        self._conn = sqlite3.connect(str(self.path), timeout=10, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        with self._conn:
            self._conn.executescript(_SCHEMA)
        self.session_id: int | None = None

    @classmethod
    def for_project(cls, project_dir: str | Path) -> Memory:
        """The memory of the project whose ``.scagent/`` folder is ``project_dir``."""
        return cls(Path(project_dir) / "memory.sqlite")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ sessions
    def start_session(self, branch: str | None = None) -> int:
        """Begin a chat session; returns its id. Turns added later belong to it."""
        with self._conn:
            cur = self._conn.execute(
                "INSERT INTO sessions(started, branch) VALUES (?, ?)", (_now(), branch)
            )
        self.session_id = int(cur.lastrowid)
        return self.session_id

    def end_session(self) -> SessionSummary | None:
        """Close the current session, storing its summary."""
        if self.session_id is None:
            return None
        summary = self.summarize(self.session_id)
        with self._conn:
            self._conn.execute(
                "UPDATE sessions SET ended = ?, summary = ? WHERE id = ?",
                (_now(), summary.text(), self.session_id),
            )
        self.session_id = None
        return summary

    def previous_session(self) -> SessionSummary | None:
        """The summary of the last session with turns before the current one (None if none)."""
        row = self._conn.execute(
            "SELECT s.id FROM sessions s WHERE s.id != ? AND EXISTS "
            "(SELECT 1 FROM turns t WHERE t.session_id = s.id) ORDER BY s.id DESC LIMIT 1",
            (self.session_id or -1,),
        ).fetchone()
        return None if row is None else self.summarize(int(row["id"]))

    def summarize(self, session_id: int) -> SessionSummary:
        """Steps run and questions left open in a session, from its turns."""
        meta = self._conn.execute(
            "SELECT started, ended FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        turns = list(self._turns("WHERE session_id = ? ORDER BY id", (session_id,)))
        steps = [t.content for t in turns if t.role == "step"]
        questions = [t.content for t in turns if t.open_question]
        return SessionSummary(
            session_id=session_id,
            started=meta["started"] if meta else "",
            ended=meta["ended"] if meta else None,
            steps=steps,
            open_questions=questions,
            n_turns=sum(t.role == "user" for t in turns),
        )

    # ------------------------------------------------------------------ turns
    def add(
        self,
        role: str,
        content: str,
        *,
        tool_id: str | None = None,
        branch: str | None = None,
        step: int | None = None,
        open_question: bool = False,
    ) -> int:
        """Store one turn (and index it for :meth:`recall`); returns its id."""
        if role not in ROLES:
            raise ValueError(f"unknown memory role {role!r}; use one of {ROLES}")
        if not content.strip():
            return -1
        if self.session_id is None:
            self.start_session(branch)
        with self._conn:  # one transaction: the turn and its index entry, or neither
            cur = self._conn.execute(
                "INSERT INTO turns(session_id, time, role, content, tool_id, branch, step,"
                " open_question) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (self.session_id, _now(), role, content, tool_id, branch, step, int(open_question)),
            )
            turn_id = int(cur.lastrowid)
            self._conn.execute(
                "INSERT INTO turns_fts(rowid, content, role) VALUES (?, ?, ?)",
                (turn_id, content, role),
            )
        return turn_id

    def resolve_questions(self) -> None:
        """Mark the current session's open questions as answered (the user moved on)."""
        if self.session_id is None:
            return
        with self._conn:
            self._conn.execute(
                "UPDATE turns SET open_question = 0 WHERE session_id = ?", (self.session_id,)
            )

    def _turns(self, where: str, args: tuple = ()) -> Iterator[Turn]:
        for row in self._conn.execute(f"SELECT * FROM turns {where}", args):
            yield Turn(
                id=row["id"],
                session_id=row["session_id"],
                time=row["time"],
                role=row["role"],
                content=row["content"],
                tool_id=row["tool_id"],
                branch=row["branch"],
                step=row["step"],
                open_question=bool(row["open_question"]),
            )

    def recent(self, n: int = 8, roles: tuple[str, ...] = ("user", "agent")) -> list[Turn]:
        """The last ``n`` turns of ``roles`` (any session), oldest first."""
        marks = ",".join("?" * len(roles))
        turns = list(self._turns(f"WHERE role IN ({marks}) ORDER BY id DESC LIMIT ?", (*roles, n)))
        return turns[::-1]

    def user_inputs(self, n: int = 200) -> list[str]:
        """What the user typed, oldest first (seeds the REPL's line history)."""
        return [t.content for t in self.recent(n, roles=("user",))]

    def recall(self, text: str, limit: int = 5, exclude: set[int] | None = None) -> list[Turn]:
        """Past turns that best match ``text`` (FTS5, bm25 rank), best first."""
        query = fts_query(text)
        if query is None:
            return []
        try:
            rows = self._conn.execute(
                "SELECT rowid FROM turns_fts WHERE turns_fts MATCH ? ORDER BY bm25(turns_fts)"
                " LIMIT ?",
                (query, limit + len(exclude or ())),
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        ids = [int(r[0]) for r in rows if not exclude or int(r[0]) not in exclude][:limit]
        if not ids:
            return []
        by_id = {
            t.id: t for t in self._turns(f"WHERE id IN ({','.join('?' * len(ids))})", tuple(ids))
        }
        return [by_id[i] for i in ids if i in by_id]

    def context(
        self, request: str, pinned: str, *, n_recent: int = 6, n_retrieved: int = 3
    ) -> ContextBundle:
        """The tiered context for a model request about ``request``."""
        recent = self.recent(n_recent)
        retrieved = self.recall(request, n_retrieved, exclude={t.id for t in recent})
        return ContextBundle(pinned=pinned, recent=recent, retrieved=retrieved)

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0])
