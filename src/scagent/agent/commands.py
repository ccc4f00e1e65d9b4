"""Slash commands of the REPL (``/status``, ``/run``, ``/branch``, ...), and the agent commands the intent parser maps to.

Each command is a small function over the session; unknown commands get the nearest
known one suggested. Commands that change the project go through the session (runs,
branches, undo), so they are locked, atomic and recorded like any other front door.
"""

from __future__ import annotations

import difflib
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scagent.errors import InvalidParameterError, ScagentError

if TYPE_CHECKING:
    from scagent.agent.intent import Intent
    from scagent.agent.orchestrator import Agent

__all__ = ["COMMANDS", "dispatch", "nearest_command", "parse_assignments", "run_intent_command"]

Handler = Callable[["Agent", list[str]], "bool | None"]

#: name -> (usage, what it does); the handlers are registered below.
COMMANDS: dict[str, tuple[str, str]] = {
    "/status": ("/status", "branch, last steps, what the data is, suggested next steps"),
    "/plan": ("/plan [TOOL]", "the steps that make TOOL runnable, or the next steps"),
    "/branch": (
        "/branch list|create NAME [FROM]|switch NAME|compare A B",
        "list, create, switch or compare branches",
    ),
    "/provenance": ("/provenance [TOOL]", "every recorded step of the branch (or of one tool)"),
    "/knowledge": (
        "/knowledge query CELL TYPE | validate CELL TYPE: GENE GENE ...",
        "marker genes of a cell type, or how well genes fit a label",
    ),
    "/tools": ("/tools [NAME]", "the registered tools, or one tool's parameters"),
    "/run": ("/run TOOL key=value ...", "run a tool (prerequisites are planned and shown)"),
    "/pipeline": (
        "/pipeline [PARADIGM] [--resume]",
        "run a paradigm's whole plan (default: the project's paradigm)",
    ),
    "/export": ("/export methods|provenance|bundle [PATH]", "methods text, PROV, or a bundle"),
    "/recall": ("/recall TEXT", "find earlier turns of this project's conversation"),
    "/undo": ("/undo", "move the branch back one step (nothing is deleted)"),
    "/help": ("/help", "this list"),
    "/quit": ("/quit", "leave (also /exit or Ctrl-D)"),
}
_ALIASES = {"/exit": "/quit", "/q": "/quit", "/?": "/help", "/h": "/help"}


def nearest_command(name: str) -> str | None:
    """The known command closest to ``name`` (``/stauts`` -> ``/status``)."""
    options = list(COMMANDS) + list(_ALIASES)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    if close:
        return _ALIASES.get(close[0], close[0])
    prefixed = [c for c in COMMANDS if c.startswith(name[:3])] if len(name) >= 3 else []
    return prefixed[0] if prefixed else None


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: value}``; values read as JSON where they parse."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameterError(
                f"{item!r} is not of the form key=value", remedy="write e.g. resolution=0.8"
            )
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = {"None": None, "True": True, "False": False}.get(value, value)
    return params


def dispatch(agent: Agent, line: str) -> bool:
    """Run one slash command; returns False for /quit."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        agent.error(f"cannot read {line!r}: {exc}")
        return True
    name, args = words[0].lower(), words[1:]
    name = _ALIASES.get(name, name)
    handler = _HANDLERS.get(name)
    if handler is None:
        close = nearest_command(name)
        agent.error(
            f"unknown command {name}"
            + (f"; did you mean {close}?" if close else "")
            + " (/help lists the commands)"
        )
        return True
    try:
        return handler(agent, args) is not False
    except ScagentError as err:
        agent.error(err.one_line())
        return True


# ---------------------------------------------------------------------------- handlers
def _short(snapshot: str | None) -> str:
    return (snapshot or "-")[:12]


def _params_text(tool_id: str, params: dict[str, Any], limit: int = 70) -> str:
    from scagent.agent.requirements import available_tool

    if tool_id == "import":
        return ""
    tool = available_tool(tool_id)
    defaults = tool.defaults() if tool is not None else {}
    shown = {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}
    text = ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "(defaults)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _help(agent: Agent, args: list[str]) -> None:
    width = max(len(usage) for usage, _ in COMMANDS.values())
    lines = ["Commands:"]
    lines += [f"  {usage:<{width}}  {what}" for usage, what in COMMANDS.values()]
    lines.append("Or ask in plain words, e.g. 'run QC', 'cluster at resolution 0.8'.")
    agent.say("\n".join(lines))


def _quit(agent: Agent, args: list[str]) -> bool:
    return False


def _status(agent: Agent, args: list[str]) -> None:
    from scagent.data import summarize_state

    session = agent.session
    if not session.branches():
        agent.say("No data yet: `scagent init --data FILE` imports it.")
        return
    history = session.history()
    lines = [
        f"branch {session.branch} at step {len(history) - 1} ({_short(history[-1].snapshot_id)})"
    ]
    for step in history[-5:]:
        lines.append(
            f"  {step.step}. {step.tool_id} {_params_text(step.tool_id, step.params)} "
            f"[{step.requested_by}] {step.summary}"
        )
    lines.append("data: " + summarize_state(session.state))
    lines.append("next: " + (", ".join(session.next_steps()) or "nothing pending"))
    agent.say("\n".join(lines))


def _plan(agent: Agent, args: list[str]) -> None:
    session = agent.session
    if not args:
        agent.say("next: " + (", ".join(session.next_steps()) or "nothing pending"))
        return
    steps = session.plan(args[0])
    if len(steps) <= 1:
        agent.say(f"{args[0]} can run now")
        return
    agent.say("\n".join(f"{i}. {s.tool_id}: {s.reason}" for i, s in enumerate(steps, 1)))


def _history(agent: Agent, args: list[str]) -> None:
    session = agent.session
    history = session.history()
    lines = [f"On branch {session.branch}, {len(history) - 1} steps after the import:"]
    for step in history:
        who = f" [{step.requested_by}]" if step.requested_by else ""
        text = f" — asked: {step.request_text!r}" if step.request_text else ""
        lines.append(
            f"  {step.step}. {step.tool_id} {_params_text(step.tool_id, step.params)}{who}: "
            f"{step.summary}{text}"
        )
    agent.say("\n".join(lines))


def _branch(agent: Agent, args: list[str]) -> None:
    session = agent.session
    sub = args[0] if args else "list"
    if sub == "list":
        lines = []
        for name in sorted(session.branches()):
            history = session.history(name)
            mark = "*" if name == session.branch else " "
            lines.append(f"{mark} {name}: {len(history) - 1} steps, last {history[-1].tool_id}")
        agent.say("\n".join(lines) or "no branches")
    elif sub == "create" and len(args) >= 2:
        snapshot = session.create_branch(args[1], args[2] if len(args) > 2 else None, switch=True)
        agent.say(f"created branch {args[1]} at {_short(snapshot)} and switched to it")
    elif sub == "switch" and len(args) == 2:
        session.switch_branch(args[1])
        agent.say(f"on branch {args[1]} (step {len(session.history()) - 1})")
    elif sub == "compare" and len(args) == 3:
        _compare(agent, args[1:])
    else:
        agent.error(f"usage: {COMMANDS['/branch'][0]}")


def _compare(agent: Agent, args: list[str]) -> None:
    result = agent.session.compare(args[0], args[1])
    agent.say("\n".join(result.describe()))


def _provenance(agent: Agent, args: list[str]) -> None:
    session = agent.session
    wanted = args[0] if args else None
    lines = []
    for step in session.history():
        if wanted and step.tool_id != wanted:
            continue
        libs = ", ".join(f"{k} {v}" for k, v in list(step.versions.items())[:4])
        lines.append(
            f"{step.step}. {step.tool_id} {_params_text(step.tool_id, step.params)} "
            f"by {step.requested_by} at {step.ended or step.started or '?'} ({libs})"
        )
    if not lines:
        agent.say(f"no recorded step of {wanted!r} on branch {session.branch}")
        return
    agent.say("\n".join(lines))


def _knowledge(agent: Agent, args: list[str]) -> None:
    from scagent.knowledge import MarkerDB

    if len(args) < 2 or args[0] not in ("query", "validate"):
        agent.error(f"usage: {COMMANDS['/knowledge'][0]}")
        return
    species = agent.session.state.species if agent.session.branches() else "unknown"
    species_arg = species if species in ("human", "mouse") else None
    db = MarkerDB.default()
    genes_in_data = (
        set(map(str, agent.session.adata.var_names)) if agent.session.branches() else set()
    )
    if args[0] == "query":
        label = " ".join(args[1:])
        q = db.query(label, species=species_arg)
        positive = q.positive[:15]
        agent.guard.allow(positive)  # a tool result: the marker database's answer
        shown = ", ".join(f"{g}{'' if g in genes_in_data else ' (not in data)'}" for g in positive)
        agent.say(
            f"{q.cell_type} ({q.cell_ontology_id or 'no CL id'}): {shown or 'no markers known'}"
        )
        return
    text = " ".join(args[1:])
    label, sep, genes_text = text.partition(":")
    if not sep:
        agent.error("usage: /knowledge validate CELL TYPE: GENE GENE ...")
        return
    genes = genes_text.replace(",", " ").split()
    v = db.validate(genes, label.strip(), species=species_arg)
    agent.say(v.message)


def _tools(agent: Agent, args: list[str]) -> None:
    from scagent.tools import get_tool, list_tools

    if args:
        tool = get_tool(args[0])
        lines = [f"{tool.id} ({tool.category}): {tool.description}"]
        if tool.requires:
            lines.append(f"  requires: {', '.join(tool.requires)}")
        for name, info in tool.params.model_fields.items():
            default = (
                "required"
                if info.is_required()
                else f"default {info.get_default(call_default_factory=True)!r}"
            )
            lines.append(f"  {name} ({default}): {info.description or ''}")
        agent.say("\n".join(lines))
        return
    lines = [f"  {t.id:<22} {t.category:<13} {t.description[:70]}" for t in list_tools()]
    agent.say("Tools:\n" + "\n".join(lines))


def _run(agent: Agent, args: list[str]) -> None:
    from scagent.agent.orchestrator import ProposedCall, _Problem

    if not args:
        agent.error(f"usage: {COMMANDS['/run'][0]}")
        return
    call = ProposedCall(args[0], parse_assignments(args[1:]))
    try:
        prepared = agent.prepare(call)
    except _Problem as problem:
        agent.error(str(problem))
        return
    if len(prepared.plan) <= 1:
        # An explicit command with nothing planned around it: run without asking.
        saved, agent.auto_yes = agent.auto_yes, True
        try:
            agent.execute([prepared], request_text=" ".join(["/run", *args]), requested_by="agent")
        finally:
            agent.auto_yes = saved
        return
    agent.execute([prepared], request_text=" ".join(["/run", *args]), requested_by="agent")


def _pipeline(agent: Agent, args: list[str]) -> None:
    from scagent.plan import get_paradigm, list_paradigms
    from scagent.plan.run import run_paradigm

    resume = "--resume" in args
    names = [a for a in args if a != "--resume"]
    paradigm = names[0] if names else agent.session.project.config.paradigm
    if paradigm is None or len(names) > 1:
        agent.error(f"usage: {COMMANDS['/pipeline'][0]}; paradigms: {', '.join(list_paradigms())}")
        return
    plan = get_paradigm(paradigm)
    agent.say(f"{plan.paradigm}: " + " -> ".join(s.id for s in plan.steps))
    if not agent.auto_yes and not agent.io.confirm("Proceed?"):
        agent.say("Nothing was run.")
        return

    def report(outcome: Any) -> None:
        if outcome.status == "done":
            agent.say(f"  {outcome.step_id}: {outcome.summary}")
        elif outcome.status == "skipped":
            agent.say(f"  {outcome.step_id} skipped: {outcome.reason}")

    result = run_paradigm(
        agent.session, plan.paradigm, resume=resume, requested_by="agent", on_step=report
    )
    done = sum(s.status == "done" for s in result.steps)
    agent.say(f"{plan.paradigm}: {done} steps run in {result.seconds:.0f} s")


def _export(agent: Agent, args: list[str]) -> None:
    from scagent._atomic import atomic_write_text
    from scagent.agent.exports import methods_text, write_bundle

    session = agent.session
    what = args[0] if args else ""
    exports = session.project.root / "exports"
    if what == "methods":
        text = methods_text(session)
        if len(args) > 1:
            atomic_write_text(Path(args[1]), text)
            agent.say(f"wrote the methods section to {args[1]}")
        else:
            agent.say(text)
    elif what == "provenance":
        path = Path(args[1]) if len(args) > 1 else exports / "provenance.jsonld"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, session.export_provenance("jsonld"))
        agent.say(f"wrote PROV-JSON-LD to {path}")
    elif what == "bundle":
        if len(args) > 1:
            path = Path(args[1])
        else:
            n = 1
            while (exports / f"bundle-{session.branch}-{n}").exists():
                n += 1
            path = exports / f"bundle-{session.branch}-{n}"
        write_bundle(session, path)
        agent.say(f"wrote the reproducibility bundle to {path} (run.sh re-creates the branch)")
    else:
        agent.error(f"usage: {COMMANDS['/export'][0]}")


def _recall(agent: Agent, args: list[str]) -> None:
    if agent.memory is None:
        agent.say("no conversation memory in this session")
        return
    if not args:
        agent.error(f"usage: {COMMANDS['/recall'][0]}")
        return
    query = " ".join(args)
    current = agent.memory.recent(1, roles=("user",))
    exclude = {t.id for t in current if t.content.startswith("/recall")}
    turns = agent.memory.recall(query, limit=5, exclude=exclude)
    if not turns:
        agent.say(f"nothing earlier matches {query!r}")
        return
    agent.say(
        "\n".join(
            f"[{t.time[:16].replace('T', ' ')}] {t.role}: {' / '.join(t.content.splitlines())[:200]}"
            for t in turns
        )
    )


def _undo(agent: Agent, args: list[str]) -> None:
    session = agent.session
    undone = session.undo()
    agent.say(
        f"undid step {undone.step} ({undone.tool_id}); {session.branch} is at step "
        f"{undone.step - 1}. Nothing was deleted: /branch create NAME {_short(undone.snapshot_id)} "
        "keeps the undone step on a branch."
    )


_HANDLERS: dict[str, Handler] = {
    "/status": _status,
    "/plan": _plan,
    "/branch": _branch,
    "/provenance": _provenance,
    "/knowledge": _knowledge,
    "/tools": _tools,
    "/run": _run,
    "/pipeline": _pipeline,
    "/export": _export,
    "/recall": _recall,
    "/undo": _undo,
    "/help": _help,
    "/quit": _quit,
}


def run_intent_command(agent: Agent, intent: Intent) -> None:
    """Carry out an agent command the intent parser recognised (history, compare, ...)."""
    command = intent.command
    try:
        if command == "history":
            _history(agent, [])
        elif command == "compare":
            _compare(agent, intent.args)
        elif command == "next":
            _plan(agent, [])
        elif command == "status":
            _status(agent, [])
        elif command == "undo":
            _undo(agent, [])
        elif command == "export":
            _export(agent, intent.args)
        elif command == "pipeline":
            _pipeline(agent, intent.args)
        else:  # pragma: no cover - the parser only produces the commands above
            agent.error(f"no handler for {command!r}")
    except ScagentError as err:
        agent.error(err.one_line())
