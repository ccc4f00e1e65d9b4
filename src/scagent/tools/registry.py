"""The registry: every tool, by id, in one dictionary filled as the tool modules are imported."""

from __future__ import annotations

import difflib
from typing import get_args

from scagent.errors import InvalidParameterError, UnknownToolError
from scagent.tools.base import Category, Tool

__all__ = ["get_tool", "list_tools", "register", "tool_ids"]

_TOOLS: dict[str, Tool] = {}


def register(tool: Tool, *, replace: bool = False) -> Tool:
    """Add ``tool`` to the registry and return it.

    Parameters
    ----------
    tool
        The tool record.
    replace
        Allow replacing a tool already registered under the same id (for plugins
        that override a core tool on purpose).

    Raises
    ------
    InvalidParameterError
        If another tool already has this id and ``replace`` is False.
    """
    existing = _TOOLS.get(tool.id)
    if existing is not None and existing is not tool and not replace:
        raise InvalidParameterError(
            f"a tool with id '{tool.id}' is already registered ({existing.name})",
            remedy="choose another id, or pass replace=True to override it on purpose",
        )
    _TOOLS[tool.id] = tool
    return tool


def get_tool(tool_id: str) -> Tool:
    """The tool registered under ``tool_id``.

    Raises
    ------
    UnknownToolError
        If no tool has that id; the message suggests the closest ids.
    """
    try:
        return _TOOLS[tool_id]
    except KeyError:
        close = difflib.get_close_matches(tool_id, list(_TOOLS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownToolError(f"no tool named '{tool_id}'{hint}") from None


def list_tools(category: str | None = None) -> list[Tool]:
    """Registered tools in a standard pipeline's order (by category), optionally of one category."""
    order = {c: i for i, c in enumerate(get_args(Category))}
    tools = [t for t in _TOOLS.values() if category is None or t.category == category]
    return sorted(tools, key=lambda t: order.get(t.category, len(order)))


def tool_ids() -> list[str]:
    """The ids of all registered tools."""
    return list(_TOOLS)
