"""`scagent tools [NAME] [--json]`: the registered tools, or one tool's parameters, from the tool records."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()


def _type_text(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_type_text(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list[{_type_text(schema.get('items', {}))}]"
    return {
        "integer": "int",
        "number": "float",
        "string": "str",
        "boolean": "bool",
        "null": "None",
    }.get(schema.get("type", ""), schema.get("type", "any"))


def _range_text(schema: dict[str, Any]) -> str:
    parts = []
    for key, sym in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        for s in (schema, *schema.get("anyOf", [])):
            if key in s:
                parts.append(f"{sym} {s[key]}")
    return ", ".join(parts)


def _params_table(schema: dict[str, Any]) -> Table:
    table = Table(title="parameters", title_justify="left", show_lines=False)
    table.add_column("name", style="bold cyan", no_wrap=True)
    for col in ("type", "default", "range", "guidance"):
        table.add_column(col, overflow="fold")
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        default = "(required)" if name in required else repr(prop.get("default"))
        guidance = prop.get("description", "")
        if "sweep" in prop:
            guidance += f" Sweep: {prop['sweep']}."
        cells = (name, _type_text(prop), default, _range_text(prop), guidance)
        table.add_row(*(escape(c) for c in cells))
    return table


def tools(
    name: str | None = typer.Argument(None, help="A tool id: show its parameters."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON schemas (one per tool)."),
) -> None:
    """List the registered analysis tools, or show one tool's parameters with guidance."""
    from scagent.tools import get_tool, list_tools

    if name is not None:
        tool = get_tool(name)
        schema = tool.json_schema()
        if as_json:
            typer.echo(json.dumps(schema, indent=2))
            return
        meta = schema["x-scagent"]
        console.print(f"[bold]{tool.id}[/] — {tool.name} ({tool.category}, {tool.framework})")
        console.print(escape(tool.description), highlight=False)
        facts = [
            ("requires", ", ".join(meta["requires"]) or "nothing"),
            ("X accepted", ", ".join(meta["accepts_x"]) if meta["accepts_x"] else "any"),
            ("needs", meta["needs"] or "-"),
            ("produces", ", ".join(meta["produces"]) or "-"),
            ("reference", meta["reference"]),
        ]
        for label, value in facts:
            console.print(f"[cyan]{label}:[/] {escape(value)}", highlight=False)
        console.print(_params_table(schema["parameters"]))
        return
    registered = list_tools()
    if as_json:
        typer.echo(json.dumps([t.json_schema() for t in registered], indent=2))
        return
    table = Table(title=f"{len(registered)} tools", title_justify="left")
    table.add_column("id", style="bold cyan", no_wrap=True)  # ids are typed back: never broken
    for col in ("category", "framework", "requires", "description"):
        table.add_column(col, overflow="fold")
    for t in registered:
        cells = (t.id, t.category, t.framework, ", ".join(t.requires) or "-", t.description)
        table.add_row(*(escape(c) for c in cells))
    console.print(table)
    console.print("Run `scagent tools NAME` for a tool's parameters.", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `scagent tools` to ``app``."""
    app.command("tools")(tools)
