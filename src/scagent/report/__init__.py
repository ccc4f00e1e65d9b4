"""Self-contained HTML reports and the plotting helpers they share."""

from __future__ import annotations

from scagent.report.html import build_report, render_report

__all__ = ["build_report", "render_report"]
