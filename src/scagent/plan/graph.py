"""The dependency graph: which steps a tool needs, and the fewest steps that make a goal runnable.

The graph is static data: each tool's record says what it ``requires`` (steps), which
states of ``X`` it ``accepts``, which data it ``needs`` (fetched by the tool itself) and
what it ``produces``. The tables below add what no single tool knows: which steps
stand in for others, and where needed data may come from. The planner walks these
facts against the inspector's :class:`~scagent.data.state.DataState`, so foreign data
that already has a PCA does not get it recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from scagent.data.state import DataState
from scagent.errors import DataStateError, MissingPrerequisiteError

__all__ = [
    "NEED_SOURCES",
    "PROVIDERS",
    "SATISFIED_BY",
    "PlannedStep",
    "PrerequisiteCheck",
    "check_prerequisites",
    "is_satisfied",
    "plan_steps",
    "suggest_next",
]

#: A required step is satisfied by any of these steps in ``DataState.steps``.
SATISFIED_BY: dict[str, tuple[str, ...]] = {
    "clustering": ("clustering", "leiden", "louvain", "cell_types"),
    "normalize": ("normalize", "log1p"),
    "log1p": ("log1p",),
    "diffmap": ("diffmap", "diffusion_pseudotime"),
    "qc_metrics": ("qc_metrics",),
}

#: The tool that provides a step when it is missing, where that is not the tool of the
#: same id (a clustering is provided by leiden).
PROVIDERS: dict[str, str] = {
    "clustering": "leiden",
    "log1p": "normalize",
    "diffmap": "diffusion_pseudotime",
}

#: Where the data a tool ``needs`` may come from; the tool fetches it itself
#: (``scagent.data.ensure_ready_for``). ``"counts"``: raw counts anywhere; ``"X:<state>"``,
#: ``"raw:<state>"``, ``"layer:<state>"``: a matrix in that state.
NEED_SOURCES: dict[str, tuple[str, ...]] = {
    "raw_counts": ("counts",),
    "log_normalized": ("X:log_normalized", "raw:log_normalized", "layer:log_normalized", "counts"),
    "scaled": ("X:scaled", "X:log_normalized", "raw:log_normalized", "counts"),
}


class PrerequisiteCheck(BaseModel):
    """Whether a tool can run on data in a given state, and if not, why."""

    tool_id: str
    ok: bool
    missing: list[str] = Field(default_factory=list, description="Canonical steps to run first.")
    problems: list[str] = Field(default_factory=list, description="What is wrong, in words.")


@dataclass(frozen=True)
class PlannedStep:
    """One step of a plan: the tool to run and why it is in the plan."""

    tool_id: str
    reason: str


@dataclass
class _Simulated:
    """The parts of a DataState that planning changes as it adds steps."""

    steps: set[str]
    x_state: str
    has_counts: bool
    raw_state: str | None
    layer_states: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, state: DataState) -> _Simulated:
        return cls(
            steps=set(state.steps),
            x_state=state.x_state,
            has_counts=state.has_counts,
            raw_state=state.raw_state,
            layer_states=set(state.layer_states.values()),
        )


def _satisfied(step: str, sim: _Simulated) -> bool:
    return any(s in sim.steps for s in SATISFIED_BY.get(step, (step,)))


def is_satisfied(step: str, state: DataState) -> bool:
    """Whether ``step`` (or a step that stands in for it) is present in ``state``."""
    return _satisfied(step, _Simulated.of(state))


def _need_met(need: str, sim: _Simulated) -> bool:
    for source in NEED_SOURCES.get(need, ()):
        if source == "counts" and sim.has_counts:
            return True
        where, _, x_state = source.partition(":")
        if where == "X" and sim.x_state == x_state:
            return True
        if where == "raw" and sim.raw_state == x_state:
            return True
        if where == "layer" and x_state in sim.layer_states:
            return True
    return False


def _provider(step: str) -> str:
    from scagent.tools import get_tool, list_tools

    if step in PROVIDERS:
        return PROVIDERS[step]
    for tool in list_tools():
        if tool.id == step:
            return tool.id
    for tool in list_tools():
        if step in tool.produces:
            return tool.id
    return get_tool(step).id  # raises UnknownToolError naming the step


def _x_fixer(accepted: tuple[str, ...]) -> str | None:
    """The tool that turns X into one of the ``accepted`` states."""
    from scagent.tools import list_tools

    for tool in list_tools():
        if tool.produces_x in accepted:
            return tool.id
    return None


def _x_text(x_state: str) -> str:
    return x_state.replace("_", " ")


def check_prerequisites(tool_id: str, state: DataState) -> PrerequisiteCheck:
    """Check whether ``tool_id`` can run now on data in ``state``.

    Parameters
    ----------
    tool_id
        A registered tool id.
    state
        The inspector's view of the data.

    Returns
    -------
    PrerequisiteCheck
        ``missing`` lists the canonical steps to run first; ``problems`` says, in
        words, what is wrong (including what no step can fix, like absent counts).
    """
    from scagent.tools import get_tool

    tool = get_tool(tool_id)
    sim = _Simulated.of(state)
    missing: list[str] = []
    problems: list[str] = []
    if tool.accepts_x is not None and sim.x_state not in tool.accepts_x:
        fixer = _x_fixer(tool.accepts_x)
        wanted = " or ".join(_x_text(s) for s in tool.accepts_x if s != "transformed_unknown")
        problems.append(
            f"{tool_id} works on {wanted} X, but X holds {_x_text(sim.x_state)}"
            + (f" (run {fixer} first)" if fixer else "")
        )
        if fixer is not None:
            missing.extend(get_tool(fixer).produces[:1] or (fixer,))
    for step in tool.requires:
        if not _satisfied(step, sim):
            missing.append(step)
            problems.append(f"{tool_id} requires {step}, which has not been run")
    if tool.needs is not None and not _need_met(tool.needs, sim):
        problems.append(
            f"{tool_id} needs {_x_text(tool.needs)} data, and none can be found or derived "
            "(no raw counts anywhere)"
        )
    return PrerequisiteCheck(tool_id=tool_id, ok=not problems, missing=missing, problems=problems)


def plan_steps(goal: str, state: DataState) -> list[PlannedStep]:
    """The fewest steps, in order, that make ``goal`` runnable, ending with ``goal`` itself.

    Steps already present in ``state`` (or stood in for, e.g. ``louvain`` for a
    clustering) are not planned again. On raw counts ``leiden`` plans normalize, hvg,
    pca, neighbors, leiden; on data that already has a neighbors graph, just leiden.

    Raises
    ------
    UnknownToolError
        If ``goal`` is not a registered tool.
    DataStateError
        If a planned step needs data that does not exist (e.g. raw counts).
    """
    from scagent.tools import get_tool

    get_tool(goal)  # an unknown goal fails here, naming close ids
    sim = _Simulated.of(state)
    plan: list[PlannedStep] = []
    _add(goal, f"the goal ({goal})", sim, plan, stack=())
    return plan


def _add(
    tool_id: str, reason: str, sim: _Simulated, plan: list[PlannedStep], stack: tuple[str, ...]
) -> None:
    from scagent.tools import get_tool

    if tool_id in stack:
        raise MissingPrerequisiteError(
            f"the dependency graph has a cycle: {' -> '.join((*stack, tool_id))}",
            remedy="this is a bug in a tool's requires; report it",
        )
    tool = get_tool(tool_id)
    stack = (*stack, tool_id)
    # X first: normalize must precede hvg and pca, whose own requirements come next.
    if tool.accepts_x is not None and sim.x_state not in tool.accepts_x:
        fixer = _x_fixer(tool.accepts_x)
        if fixer is None:
            raise DataStateError(
                f"{tool_id} needs X to be {' or '.join(tool.accepts_x)}, X holds "
                f"{_x_text(sim.x_state)}, and no tool converts it",
            )
        _add(
            fixer,
            f"{tool_id} needs log-normalized X; X holds {_x_text(sim.x_state)}",
            sim,
            plan,
            stack,
        )
    for step in tool.requires:
        if not _satisfied(step, sim):
            _add(_provider(step), f"{tool_id} requires {step}", sim, plan, stack)
    if tool.needs is not None and not _need_met(tool.needs, sim):
        raise DataStateError(
            f"{tool_id} needs {_x_text(tool.needs)} data, and none can be found or derived "
            "(no raw counts in X, layers or .raw)",
            remedy="load the raw count matrix into layers['counts']",
        )
    plan.append(PlannedStep(tool_id=tool_id, reason=reason))
    sim.steps.update(tool.produces)
    sim.steps.add(tool_id)
    if tool.produces_x is not None:
        sim.x_state = tool.produces_x


def suggest_next(state: DataState) -> list[str]:
    """Tools that can run now and whose results are not yet present, in pipeline order.

    Filters (which remove cells or genes) are left out: they are choices, not next steps.
    """
    from scagent.tools import list_tools

    out = []
    for tool in list_tools():
        if not tool.produces or all(is_satisfied(s, state) for s in tool.produces):
            continue
        if check_prerequisites(tool.id, state).ok:
            out.append(tool.id)
    return out
