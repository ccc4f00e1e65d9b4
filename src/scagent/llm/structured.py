"""Structured answers: a schema (pydantic model or JSON-schema dict), lenient JSON
extraction from model text, validation, and the message that asks for one repair."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = [
    "OutputSchema",
    "SchemaMismatch",
    "extract_json",
    "repair_instruction",
]

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_MAX_ERROR_CHARS = 2000


class SchemaMismatch(ValueError):
    """The answer is not JSON, or not JSON of the requested shape (internal: triggers repair)."""


def extract_json(text: str) -> Any:
    """Decode the JSON value in a model's text.

    Models, local ones especially, wrap JSON in code fences or add a sentence around it;
    try the text as is, then a fenced block, then the outermost ``{...}`` / ``[...]``.
    """
    if text is None or not text.strip():
        raise SchemaMismatch("the answer is empty; expected a JSON object")
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    for open_, close in (("{", "}"), ("[", "]")):
        i, j = text.find(open_), text.rfind(close)
        if 0 <= i < j:
            candidates.append(text[i : j + 1])
    first_error: json.JSONDecodeError | None = None
    for c in candidates:
        try:
            return json.loads(c)
        except json.JSONDecodeError as exc:
            first_error = first_error or exc
    raise SchemaMismatch(f"the answer is not valid JSON ({first_error})")


def _light_validate(schema: Mapping[str, Any], data: Any) -> None:
    """Top-level type and required keys, for dict schemas when jsonschema is absent."""
    expected = schema.get("type")
    if expected == "object" and not isinstance(data, dict):
        raise SchemaMismatch(f"expected a JSON object, got {type(data).__name__}")
    if expected == "array" and not isinstance(data, list):
        raise SchemaMismatch(f"expected a JSON array, got {type(data).__name__}")
    if isinstance(data, dict):
        missing = [k for k in schema.get("required", []) if k not in data]
        if missing:
            raise SchemaMismatch(f"missing required field(s): {', '.join(missing)}")


@dataclass(frozen=True)
class OutputSchema:
    """The shape a structured answer must have.

    Built from a pydantic model class (answers are validated into an instance of it) or a
    JSON-schema dict (answers stay plain JSON; validated with ``jsonschema`` when installed,
    else by top-level type and required keys).
    """

    name: str
    json_schema: Mapping[str, Any]
    model: type[BaseModel] | None = None

    @classmethod
    def coerce(cls, schema: Any) -> OutputSchema | None:
        if schema is None or isinstance(schema, OutputSchema):
            return schema
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return cls(_safe_name(schema.__name__), schema.model_json_schema(), schema)
        if isinstance(schema, Mapping):
            return cls(_safe_name(str(schema.get("title", "answer"))), dict(schema))
        raise TypeError(
            f"json_schema must be a pydantic model class or a JSON-schema dict, "
            f"got {type(schema).__name__}"
        )

    def validate(self, data: Any) -> Any:
        """Validate decoded JSON; return the pydantic instance (or the data itself)."""
        if self.model is not None:
            try:
                return self.model.model_validate(data)
            except ValidationError as exc:
                raise SchemaMismatch(_short(str(exc))) from exc
        try:
            import jsonschema
        except ImportError:
            _light_validate(self.json_schema, data)
        else:
            try:
                jsonschema.validate(data, self.json_schema)
            except jsonschema.ValidationError as exc:
                raise SchemaMismatch(_short(exc.message)) from exc
        return data

    def parse(self, structured: Any, text: str) -> tuple[Any, Any]:
        """``(data, parsed)`` from a native structured answer, else from the text."""
        data = structured if structured is not None else extract_json(text)
        return data, self.validate(data)

    def instructions(self) -> str:
        """The system-prompt paragraph used where the server cannot enforce the schema."""
        return (
            "Answer with one JSON object only, no prose and no code fences. "
            "It must validate against this JSON schema:\n"
            + json.dumps(self.json_schema, separators=(",", ":"), sort_keys=True)
        )


def repair_instruction(error: str) -> str:
    """The user turn sent back after an invalid answer."""
    return (
        "Your previous answer could not be used: "
        + _short(error)
        + "\nReply again with only the corrected JSON object that matches the schema."
    )


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS] + " ..."


def _safe_name(name: str) -> str:
    # OpenAI's json_schema name and Anthropic's tool name: [a-zA-Z0-9_-]{1,64}.
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64]
    return cleaned or "answer"
