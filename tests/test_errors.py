"""The error hierarchy: stable, unique exit codes, remedies, and docs that match the code."""

from __future__ import annotations

import re
from pathlib import Path

from scagent import errors

REPO = Path(__file__).resolve().parents[1]


def _classes() -> list[type[errors.ScagentError]]:
    return [getattr(errors, name) for name in errors.__all__ if name != "EXIT_CODES"]


def test_every_class_has_a_unique_code_and_a_remedy() -> None:
    classes = _classes()
    codes = [cls.exit_code for cls in classes]
    assert len(codes) == len(set(codes))
    for cls in classes:
        assert issubclass(cls, errors.ScagentError)
        assert cls.default_remedy.strip()
        assert 1 <= cls.exit_code <= 255


def test_one_line_and_custom_remedy() -> None:
    err = errors.InputNotFoundError("no such file: x.h5ad")
    assert err.one_line() == f"no such file: x.h5ad — {err.default_remedy}"
    assert "\n" not in err.one_line()
    custom = errors.DataStateError("no counts", remedy="add layers['counts']")
    assert custom.one_line().endswith("— add layers['counts']")


def test_errors_stay_catchable_as_builtin_kinds() -> None:
    assert issubclass(errors.InputNotFoundError, FileNotFoundError)
    assert issubclass(errors.InvalidParameterError, ValueError)
    assert issubclass(errors.UnknownToolError, KeyError)
    assert str(errors.UnknownToolError("no tool 'x'")) == "no tool 'x'"


def test_docs_table_matches_the_code() -> None:
    text = (REPO / "docs" / "errors.md").read_text()
    documented = {
        name: int(code) for code, name in re.findall(r"^\| (\d+) \| (\w+) \|", text, flags=re.M)
    }
    assert documented == {cls.__name__: cls.exit_code for cls in _classes()}
