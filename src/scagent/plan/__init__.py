"""Planning: the dependency graph between steps, and advisory paradigm plans for study designs."""

from __future__ import annotations

from scagent.plan.graph import (
    PlannedStep,
    PrerequisiteCheck,
    check_prerequisites,
    is_satisfied,
    plan_steps,
    suggest_next,
)
from scagent.plan.paradigms import (
    PARADIGMS,
    ParadigmPlan,
    ParadigmStep,
    get_paradigm,
    list_paradigms,
)

__all__ = [
    "PARADIGMS",
    "ParadigmPlan",
    "ParadigmStep",
    "PlannedStep",
    "PrerequisiteCheck",
    "check_prerequisites",
    "get_paradigm",
    "is_satisfied",
    "list_paradigms",
    "plan_steps",
    "suggest_next",
]
