"""A tool is a plain function plus one metadata record; everything else is generated from the record.

The pattern follows decoupler's ``MethodMeta``: the statistics live in a plain function
``fn(adata, **params) -> ToolResult`` and a frozen :class:`Tool` record carries what the
registry, the CLI listing, the JSON schema export, the planner and the agent need.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scagent.errors import InvalidParameterError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["Category", "ParamsModel", "Tool", "ToolResult", "parse_params"]

#: Tool families, in the order of a standard analysis.
Category = Literal[
    "qc", "doublets", "preprocessing", "features", "reduction", "integration", "graph",
    "clustering", "embedding", "markers", "trajectory", "annotation",
    "differential_expression", "enrichment", "composition", "perturbation", "repertoire",
    "multimodal", "communication", "integration_metrics",
]  # fmt: skip


class ToolResult(BaseModel):
    """What one tool run reports: a sentence, numbers, warnings and the slots it wrote.

    ``written`` uses slot paths as the snapshot store does: ``"X"``, ``"layers/counts"``,
    ``"obs/leiden"``, ``"var/highly_variable"``, ``"obsm/X_pca"``, ``"obsp/connectivities"``,
    ``"uns/neighbors"``. ``tables`` holds row-wise reports (a resolution sweep, cells
    removed per sample) as lists of records.
    """

    summary: str
    metrics: dict[str, float | int | str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    written: list[str] = Field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)


class ParamsModel(BaseModel):
    """Base of every tool's parameter model: unknown parameters are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def _range_text(info: Any) -> str:
    """The allowed range of a pydantic field, from its ``ge/gt/le/lt`` metadata."""
    low = high = None
    for meta in getattr(info, "metadata", []):
        for attr, sym in (("ge", ">="), ("gt", ">")):
            if getattr(meta, attr, None) is not None:
                low = f"{sym} {getattr(meta, attr)}"
        for attr, sym in (("le", "<="), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                high = f"{sym} {getattr(meta, attr)}"
    return " and ".join(x for x in (low, high) if x)


def parse_params(
    model: type[BaseModel], params: Mapping[str, Any], tool_id: str = "tool"
) -> BaseModel:
    """Validate ``params`` against ``model``; turn pydantic's report into one clear error.

    Raises
    ------
    InvalidParameterError
        Naming the parameter, the value given and the allowed values or range.
    """
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        problems = []
        fields = model.model_fields
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "(parameters)"
            top = str(err["loc"][0]) if err["loc"] else ""
            if err["type"] == "extra_forbidden":
                close = difflib.get_close_matches(top, list(fields), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(
                    f"unknown parameter '{top}' for tool '{tool_id}'{hint} "
                    f"(known: {', '.join(fields)})"
                )
                continue
            given = err.get("input")
            info = fields.get(top)
            allowed = _range_text(info) if info is not None else ""
            text = f"parameter '{name}'={given!r} is invalid for tool '{tool_id}': {err['msg']}"
            if allowed:
                text += f" (allowed: {allowed})"
            problems.append(text)
        raise InvalidParameterError(
            "; ".join(problems),
            remedy=f"run `scagent tools {tool_id}` to see its parameters and their ranges",
        ) from None


@dataclass(frozen=True)
class Tool:
    """One registered analysis step: a plain function and everything known about it.

    Calling the record runs the step: ``tool(adata, **params)`` validates the parameters,
    runs ``fn`` on ``adata`` in place, then the output checks, and returns the
    :class:`ToolResult` with the checks' warnings added.

    Attributes
    ----------
    id
        The canonical step name where one exists (``"pca"``, ``"leiden"``).
    requires
        Canonical steps (``DataState.steps`` names) that must be present first.
    accepts_x
        States of ``X`` the function works on; ``None`` means any.
    needs
        Data the function fetches itself (``"raw_counts"``, ``"log_normalized"``); the
        planner treats it as available when that data exists anywhere in the object.
    produces
        Canonical steps it leaves behind.
    produces_x
        The state ``X`` is in afterwards, for tools that transform ``X``.
    """

    id: str
    name: str
    category: str
    framework: str
    fn: Callable[..., ToolResult]
    params: type[BaseModel]
    requires: tuple[str, ...] = ()
    accepts_x: tuple[str, ...] | None = None
    needs: str | None = None
    produces: tuple[str, ...] = ()
    produces_x: str | None = None
    deterministic: bool = True
    captures: tuple[str, ...] = ("scanpy", "anndata", "numpy")
    reference: str = ""
    description: str = ""
    checks: Callable[[AnnData, BaseModel, ToolResult], list[str]] | None = field(
        default=None, repr=False
    )

    def __post_init__(self) -> None:
        # help(scagent.tools.pca) should show the function's docstring, not Tool's.
        object.__setattr__(self, "__doc__", self.fn.__doc__)

    def validate_params(self, params: Mapping[str, Any]) -> BaseModel:
        """Return the validated parameter model, or raise :class:`InvalidParameterError`."""
        return parse_params(self.params, params, self.id)

    def __call__(self, adata: AnnData, **params: Any) -> ToolResult:
        """Validate ``params``, run the tool on ``adata`` in place and check its outputs."""
        validated = self.validate_params(params)
        result = self.fn(adata, **validated.model_dump())
        if self.checks is not None:
            for warning in self.checks(adata, validated, result):
                if warning not in result.warnings:
                    result.warnings.append(warning)
        return result

    def defaults(self) -> dict[str, Any]:
        """Every parameter that has a default, with that default (required ones are left out)."""
        return {
            name: field.get_default(call_default_factory=True)
            for name, field in self.params.model_fields.items()
            if not field.is_required()
        }

    def json_schema(self) -> dict[str, Any]:
        """The tool as one JSON schema: function-calling shape plus scagent metadata.

        ``name``, ``description`` and ``parameters`` follow the function-calling format
        that LLM APIs accept; ``x-scagent`` carries the graph and provenance facts.
        """
        parameters = self.params.model_json_schema()
        parameters.pop("title", None)
        return {
            "name": self.id,
            "title": self.name,
            "description": self.description,
            "parameters": parameters,
            "x-scagent": {
                "category": self.category,
                "framework": self.framework,
                "requires": list(self.requires),
                "accepts_x": list(self.accepts_x) if self.accepts_x is not None else None,
                "needs": self.needs,
                "produces": list(self.produces),
                "produces_x": self.produces_x,
                "deterministic": self.deterministic,
                "captures": list(self.captures),
                "reference": self.reference,
            },
        }
