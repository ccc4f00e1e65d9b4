"""The agent loop: a request becomes tool calls (from an LLM or the offline parser), a plan, a confirmation, checked steps, and a reply.

Every action goes through :meth:`scagent.session.Session.run`, so whatever the agent does
is checked, recorded with who asked (``agent`` or ``llm:<model>``) and replayable. For one
request:

1. **propose** -- with an LLM, the registry's tools are offered as function schemas
   generated from each tool record; the model proposes calls. Offline, the intent parser
   maps the words to one call.
2. **prepare** -- each call is checked: the tool is installed, its parameters validate
   against the tool's schema (an invalid call goes back to the model with the error, and
   the model is asked again), the data has what the tool needs, and the dependency graph
   plans the missing prerequisite steps.
3. **confirm** -- the plan is shown and the user asked "Proceed?" (``--yes`` skips it).
4. **run + verify** -- each step runs; the verifier adds sanity warnings.
5. **reply** -- compact summaries go back to the model; its text passes the gene-name
   guard before it is printed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scagent.agent.guard import GeneGuard
from scagent.agent.intent import Intent, capabilities_text, parse_intent
from scagent.agent.io import AgentIO
from scagent.agent.requirements import available_tool, check_data, fit_params
from scagent.agent.verifier import verify_step
from scagent.errors import (
    InvalidParameterError,
    LLMError,
    ScagentError,
    StepInterruptedError,
)

if TYPE_CHECKING:
    from scagent.agent.memory import Memory
    from scagent.llm import LLMClient
    from scagent.session import RunRecord, Session

__all__ = ["PROMPT_VERSION", "Agent", "ProposedCall", "StepOutcome", "tool_specs"]

#: Version of the system prompt and tool-result format (in the LLM cache key and provenance).
PROMPT_VERSION = "agent.v1"
#: Model round trips per request before the agent stops asking.
MAX_ROUNDS = 6

SYSTEM_PROMPT = """You are scagent, an assistant for single-cell RNA-seq analysis.
You act only through the tools offered; each call becomes a recorded, replayable step.
Rules:
- Propose the fewest tool calls that answer the request; prerequisites are planned for you.
- Use only parameters from each tool's schema. If a call is rejected, read the error and fix it.
- Never name a gene unless it appears in the data or in a tool result.
- Be brief: say what was done and what the results show, with numbers from the tool results.
- When the data lacks something a request needs, say what is missing."""


def tool_specs(tool_ids: list[str] | None = None) -> list[Any]:
    """The registry's tools as LLM function schemas, generated from each tool record."""
    from scagent.llm import ToolSpec
    from scagent.tools import list_tools

    specs = []
    for tool in list_tools():
        if tool_ids is not None and tool.id not in tool_ids:
            continue
        schema = tool.json_schema()
        description = f"{tool.name}: {tool.description}".strip()
        specs.append(ToolSpec(tool.id, description[:1024], schema["parameters"]))
    return specs


@dataclass
class ProposedCall:
    """A tool call proposed by the model or the parser, before it is checked."""

    tool_id: str
    params: dict[str, Any] = field(default_factory=dict)
    hints: dict[str, Any] = field(default_factory=dict)
    focus: dict[str, Any] = field(default_factory=dict)
    call_id: str | None = None


@dataclass
class PreparedCall:
    """A call that passed its checks: validated parameters and the plan that reaches it."""

    call: ProposedCall
    params: dict[str, Any]
    plan: list[Any]


@dataclass
class StepOutcome:
    """What happened to one prepared call."""

    call: ProposedCall
    status: str  # "done" | "declined" | "failed" | "interrupted" | "skipped"
    record: RunRecord | None = None
    message: str = ""
    findings: list[Any] = field(default_factory=list)

    def compact(self) -> str:
        """The result as the model sees it: a short JSON object."""
        if self.record is None:
            return json.dumps({"ok": False, "status": self.status, "message": self.message})
        result = self.record.result
        out: dict[str, Any] = {
            "ok": True,
            "steps": [f"{s.tool_id}@{s.step}" for s in self.record.steps],
            "summary": result.summary,
            "metrics": dict(list(result.metrics.items())[:12]),
        }
        if result.warnings or self.findings:
            out["warnings"] = [f.text() for f in self.findings][:6]
        for name, rows in list(result.tables.items())[:2]:
            out[name] = rows[:10]
        text = json.dumps(out, default=str)
        return text if len(text) <= 3000 else text[:2990] + '…"}'


class _Problem(Exception):
    """A call that cannot run as proposed; the message says why (and how to fix it)."""


def _safe_model_name(model: str) -> str:
    return re.sub(r"[^\w.\-/:@]", "-", model or "unknown") or "unknown"


class Agent:
    """The agent: turns requests into checked, recorded steps on a session.

    Parameters
    ----------
    session
        The open project.
    io
        Where the agent speaks and asks (:class:`~scagent.agent.io.ConsoleIO` in the REPL).
    llm
        An LLM client (:func:`scagent.llm.get_client`), or ``None`` for the offline parser.
    auto_yes
        Run plans without asking "Proceed?".
    memory
        The project's conversation memory; ``None`` keeps none.
    """

    def __init__(
        self,
        session: Session,
        io: AgentIO,
        *,
        llm: LLMClient | None = None,
        auto_yes: bool = False,
        memory: Memory | None = None,
    ) -> None:
        self.session = session
        self.io = io
        self.llm = llm
        self.auto_yes = auto_yes
        self.memory = memory
        self.llm_failed: str | None = None
        self._guard: GeneGuard | None = None
        self._turn_lines: list[str] = []

    # ------------------------------------------------------------------ speaking
    def _emit(self, text: str, kind: str = "info") -> None:
        self._turn_lines.append(text)
        self.io.emit(text, kind)

    def say(self, text: str) -> None:
        self._emit(text, "info")

    def warn(self, text: str) -> None:
        self._emit(text, "warning")

    def error(self, text: str) -> None:
        self._emit(text, "error")

    @property
    def mode(self) -> str:
        """``llm:<spec>`` or ``offline``."""
        if self.llm is None or getattr(self.llm, "backend", "") == "offline":
            return "offline"
        return f"llm:{getattr(self.llm, 'spec', getattr(self.llm, 'model', '?'))}"

    @property
    def guard(self) -> GeneGuard:
        """The gene-name guard for the current data (rebuilt when the head changes)."""
        head = self.session.head()
        if self._guard is None or getattr(self._guard, "_head", None) != head:
            previous = self._guard.allowed if self._guard is not None else set()
            species = self.session.state.species
            self._guard = GeneGuard(
                self.session.adata.var_names, species if species != "unknown" else None
            )
            self._guard.allow(previous)
            self._guard._head = head  # type: ignore[attr-defined]
        return self._guard

    def _remember(self, role: str, content: str, **kw: Any) -> None:
        if self.memory is not None:
            self.memory.add(role, content, branch=self.session.branch, **kw)

    # ------------------------------------------------------------------ entry
    def handle(self, text: str) -> bool:
        """Answer one line from the user; returns False when the user asked to quit."""
        from scagent.agent import commands

        line = text.strip()
        if not line:
            self.say("Nothing to do. Ask in plain words (e.g. 'run QC'), or type /help.")
            return True
        self._turn_lines = []
        context = None
        if not line.startswith("/") and self.memory is not None and self.mode != "offline":
            # Built before this turn is stored, so "retrieved" never echoes the request.
            context = self.memory.context(line, self.pinned_context())
        self._remember("user", line)
        try:
            if line.startswith("/"):
                return commands.dispatch(self, line)
            if self.mode != "offline":
                self.llm_turn(line, context)
            else:
                self.offline_turn(line)
            return True
        finally:
            said = "\n".join(self._turn_lines)
            if said:
                self._remember("agent", said[:4000])

    # ------------------------------------------------------------------ offline
    def offline_turn(self, text: str) -> None:
        """Answer a request with the deterministic intent parser."""
        intent = parse_intent(text, self.session.state if self.session.branches() else None)
        if intent.kind == "clarify":
            self.say(f"{intent.message} Here is what I understand:\n{capabilities_text()}")
            self.say("Or use /run TOOL key=value ..., /tools to list tools, /help for commands.")
            self._remember("agent", f"not understood: {text}", open_question=True)
            return
        if intent.kind == "command":
            from scagent.agent import commands

            commands.run_intent_command(self, intent)
            return
        self.say(f"Understood: {intent.describe()}")
        call = ProposedCall(
            intent.tool_id or "", dict(intent.params), dict(intent.hints), dict(intent.focus)
        )
        if self._show_existing_markers(intent):
            return
        try:
            prepared = self.prepare(call)
        except _Problem as problem:
            self.error(str(problem))
            self._remember("agent", f"blocked: {text}: {problem}", open_question=True)
            return
        self.execute([prepared], request_text=text, requested_by="agent")

    def _show_existing_markers(self, intent: Intent) -> bool:
        """'markers for cluster 3' when markers of the current clustering exist: show, do not rerun."""
        if intent.tool_id != "markers" or "cluster" not in intent.focus or intent.params:
            return False
        state = self.session.state
        clusterings = [c.name for c in state.breadcrumbs.clusterings]
        for de in state.breadcrumbs.de:
            if de.key == "rank_genes_groups" and de.groupby in clusterings:
                self.say(f"Markers of obs['{de.groupby}'] are already computed; showing them.")
                self._show_focus(intent.focus, "rank_genes_groups")
                return True
        return False

    # ------------------------------------------------------------------ prepare
    def prepare(self, call: ProposedCall) -> PreparedCall:
        """Check a call: tool installed, parameters valid, data present, plan found.

        Raises
        ------
        _Problem
            With the reason in words (the schema error, what data is missing and how to
            add it, or that the tool is not available).
        """
        from scagent.tools import tool_ids

        state = self.session.state
        tool = available_tool(call.tool_id)
        hint_params = dict(call.params)
        missing = check_data(
            call.tool_id,
            {**call.hints, **hint_params},
            state,
            # From the manifest: reading .adata would make the next step copy the data.
            list(self.session.store.manifest(self.session.head()).columns.get("obs", [])),
        )
        if tool is None:
            reasons = [m.text() for m in missing]
            reasons.append(
                f"the tool '{call.tool_id}' is not available in this installation "
                f"(available: {', '.join(sorted(tool_ids()))})"
            )
            raise _Problem("; ".join(reasons))
        if missing:
            raise _Problem("; ".join(m.text() for m in missing))
        fitted, _dropped = fit_params(tool, call.hints)
        params = {**fitted, **hint_params}
        try:
            validated = tool.validate_params(params)
        except InvalidParameterError as err:
            raise _Problem(err.one_line()) from None
        try:
            plan = self.session.plan(call.tool_id)
        except ScagentError as err:
            raise _Problem(err.one_line()) from None
        # Keep what was given, not every default: the step records resolved values anyway.
        given = {k: getattr(validated, k) for k in params}
        return PreparedCall(call, given, plan)

    # ------------------------------------------------------------------ plan + run
    def show_plan(self, prepared: list[PreparedCall]) -> None:
        lines = ["Plan:"]
        listed: set[str] = set()
        n = 0
        for item in prepared:
            for step in item.plan[:-1]:
                if step.tool_id in listed:
                    continue
                listed.add(step.tool_id)
                n += 1
                lines.append(f"  {n}. {step.tool_id} (prerequisite: {step.reason})")
            n += 1
            params = ", ".join(f"{k}={v!r}" for k, v in item.params.items())
            lines.append(f"  {n}. {item.call.tool_id}" + (f" ({params})" if params else ""))
            listed.add(item.call.tool_id)
        self._emit("\n".join(lines), "plan")

    def execute(
        self, prepared: list[PreparedCall], *, request_text: str, requested_by: str
    ) -> list[StepOutcome]:
        """Show the plan, ask, run each call through the session, verify and report."""
        self.show_plan(prepared)
        if not self.auto_yes and not self.io.confirm("Proceed?"):
            self.say("Nothing was run.")
            return [StepOutcome(p.call, "declined", message="the user declined") for p in prepared]
        outcomes: list[StepOutcome] = []
        stop = False
        for item in prepared:
            if stop:
                outcomes.append(StepOutcome(item.call, "skipped", message="an earlier step failed"))
                continue
            outcome = self._run_one(item, request_text, requested_by)
            outcomes.append(outcome)
            stop = outcome.status != "done"
        return outcomes

    def _run_one(self, item: PreparedCall, request_text: str, requested_by: str) -> StepOutcome:
        session = self.session
        tool_id = item.call.tool_id
        before = session.state.n_obs
        try:
            with self.io.busy(f"running {tool_id}…"):
                record = session.run(
                    tool_id,
                    auto=True,
                    requested_by=requested_by,
                    request_text=request_text,
                    **item.params,
                )
        except StepInterruptedError as err:
            self.error(err.one_line())
            return StepOutcome(item.call, "interrupted", message=err.message)
        except KeyboardInterrupt:
            # Outside the tool itself (e.g. while inspecting): nothing had been written.
            msg = f"{tool_id} was interrupted before it ran; branch {session.branch!r} is unchanged"
            self.error(msg)
            return StepOutcome(item.call, "interrupted", message=msg)
        except ScagentError as err:
            self.error(err.one_line())
            return StepOutcome(item.call, "failed", message=err.one_line())
        for step in record.steps:
            mark = " (planned)" if step.planned else ""
            self._emit(f"{record.branch}@{step.step} {step.tool_id}{mark}: {step.summary}", "step")
            self._remember(
                "step",
                f"{record.branch}@{step.step} {step.tool_id} {_params_text(step.params, item.params if step is record.step else {})}: {step.summary}",
                tool_id=step.tool_id,
                step=step.step,
            )
        self.guard.allow_from_text(json.dumps(record.result.model_dump(mode="json"), default=str))
        findings = verify_step(record, session.adata, session.state, n_obs_before=before)
        for finding in findings:
            self.warn(finding.text())
            self._remember("warning", finding.text(), open_question=True)
        if item.call.focus:
            key = str(item.params.get("key_added", "rank_genes_groups"))
            self._show_focus(item.call.focus, key)
        return StepOutcome(item.call, "done", record=record, findings=findings)

    def _show_focus(self, focus: dict[str, Any], key: str) -> None:
        """After markers: the top genes of the cluster the user asked about."""
        cluster = focus.get("cluster")
        if cluster is None:
            return
        adata = self.session.adata
        result = adata.uns.get(key)
        if not isinstance(result, dict) or "names" not in result:
            return
        groups = list(result["names"].dtype.names or [])
        if str(cluster) not in groups:
            self.warn(
                f"there is no cluster {cluster!r} in these markers (clusters: {', '.join(groups)})"
            )
            return
        import scanpy as sc

        df = sc.get.rank_genes_groups_df(adata, group=str(cluster), key=key).head(10)
        genes = [str(g) for g in df["names"]]
        self.guard.allow(genes)
        cells = ""
        groupby = result.get("params", {}).get("groupby")
        if groupby in adata.obs:
            cells = f" ({int((adata.obs[groupby].astype(str) == str(cluster)).sum())} cells)"
        rows = ", ".join(
            f"{g} (log2FC {lfc:.1f})" for g, lfc in zip(genes, df["logfoldchanges"], strict=False)
        )
        self.say(f"Top markers of cluster {cluster}{cells}: {rows}")

    # ------------------------------------------------------------------ LLM
    def pinned_context(self) -> str:
        """The pinned tier: experiment context, data state, branch, recent steps, next steps."""
        from scagent.data import summarize_state

        session = self.session
        config = session.project.config
        ctx = config.context
        lines = [f"Project: {session.project.root.name}"]
        if config.paradigm:
            lines.append(f"Paradigm: {config.paradigm}")
        about = [
            x
            for x in (
                ctx.organism.name if ctx.organism else None,
                ctx.tissue.label if ctx.tissue else None,
                ctx.platform,
                ctx.title,
            )
            if x
        ]
        if about:
            lines.append("Experiment: " + "; ".join(about))
        if ctx.hypotheses:
            lines.append("Hypotheses: " + "; ".join(ctx.hypotheses))
        if not session.branches():
            lines.append("No data imported yet.")
            return "\n".join(lines)
        history = session.history()
        lines.append(f"Branch: {session.branch} at step {len(history) - 1}")
        lines.append("Data: " + summarize_state(session.state))
        lines.append("Last steps: " + "; ".join(f"{s.step} {s.tool_id}" for s in history[-6:]))
        lines.append("Suggested next: " + (", ".join(session.next_steps()) or "none"))
        return "\n".join(lines)

    def llm_turn(self, text: str, context: Any = None) -> None:
        """Answer a request with LLM tool calling; falls back to the parser if the LLM fails."""
        from scagent.llm import InvalidLLMOutputError, Message

        assert self.llm is not None
        system = SYSTEM_PROMPT + "\n\n" + (context.pinned if context else self.pinned_context())
        messages: list[Any] = []
        if context is not None:
            if context.retrieved:
                system += (
                    "\n\nEarlier in this project (may be relevant):\n" + context.retrieved_text()
                )
            for turn in context.recent:
                if turn.role == "user":
                    messages.append(Message.user(turn.content))
                else:
                    messages.append(Message.assistant(turn.content[:1500]))
            # A conversation must start with the user and alternate; drop a leading reply.
            while messages and messages[0].role != "user":
                messages.pop(0)
        messages.append(Message.user(text))
        specs = tool_specs()
        for _round in range(MAX_ROUNDS):
            try:
                response = self.llm.complete(
                    messages,
                    system=system,
                    tools=specs,
                    tool_choice="auto",
                    prompt_version=PROMPT_VERSION,
                    temperature=0.0,
                    seed=0,
                )
            except InvalidLLMOutputError as err:
                self.error(f"the model's answer could not be read: {err.message}")
                return
            except LLMError as err:
                self._fall_back(err)
                self.offline_turn(text)
                return
            if response.text.strip():
                self.reply(response.text)
            if not response.tool_calls:
                return
            requested_by = f"llm:{_safe_model_name(response.model or self.llm.model)}"
            messages.append(Message.assistant(response.text, response.tool_calls))
            results: dict[str, tuple[str, bool]] = {}
            prepared: list[PreparedCall] = []
            for tc in response.tool_calls:
                args = ", ".join(f"{k}={v!r}" for k, v in tc.arguments.items())
                if tc.parse_error:
                    problem = f"the arguments are not a JSON object ({tc.parse_error})"
                else:
                    problem = None
                    try:
                        prepared.append(
                            self.prepare(ProposedCall(tc.name, dict(tc.arguments), call_id=tc.id))
                        )
                    except _Problem as exc:
                        problem = str(exc)
                if problem is not None:
                    self.warn(f"the model proposed {tc.name}({args}), which cannot run: {problem}")
                    results[tc.id] = (f"error: {problem}", True)
            declined = False
            if prepared:
                outcomes = self.execute(prepared, request_text=text, requested_by=requested_by)
                for outcome in outcomes:
                    results[outcome.call.call_id or ""] = (
                        outcome.compact(),
                        outcome.status != "done",
                    )
                declined = any(o.status in ("declined", "interrupted") for o in outcomes)
            for tc in response.tool_calls:
                content, is_error = results.get(tc.id, ("not run", True))
                messages.append(Message.tool_result(tc.id, content, is_error=is_error))
            if declined:
                return
            if not prepared:
                self.say("Asking the model again with the error.")
        self.warn(f"stopped after {MAX_ROUNDS} rounds with the model; try a narrower request")

    def reply(self, text: str) -> None:
        """Print the model's text after the gene-name guard."""
        report = self.guard.check(text)
        self._emit(report.text, "agent")
        if report.changed:
            self._emit(report.note(), "note")

    def _fall_back(self, err: LLMError) -> None:
        """Switch to the offline parser for the rest of the session; say so once."""
        spec = self.mode
        self.llm = None
        if self.llm_failed is None:
            self.llm_failed = err.message
            self.warn(
                f"the LLM ({spec.removeprefix('llm:')}) is not answering ({err.message}); "
                "using the offline intent parser for the rest of this session"
            )


def _params_text(params: dict[str, Any], given: dict[str, Any]) -> str:
    shown = {k: params[k] for k in given if k in params} if given else {}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())
