"""A deliberately slow tool for the REPL's Ctrl-C test; imported by the child process only."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from scagent.tools import registry
from scagent.tools.base import ParamsModel, Tool, ToolResult


class SleepParams(ParamsModel):
    seconds: float = Field(30.0, ge=0, le=600)


def sleep_step(adata, **params: Any) -> ToolResult:
    """Write a column, damage X, then sleep: an interrupted run must leave no trace."""
    adata.obs["half_written"] = 1.0
    adata.X = adata.X * 0
    deadline = time.monotonic() + params["seconds"]
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return ToolResult(summary="slept", written=["obs/half_written", "X"])


TEST_SLEEP = registry.register(
    Tool(
        id="test_sleep",
        name="sleep (test)",
        category="qc",
        framework="numpy",
        fn=sleep_step,
        params=SleepParams,
        description="Sleeps; for interrupt tests.",
    ),
    replace=True,
)
