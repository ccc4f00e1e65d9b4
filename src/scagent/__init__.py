"""scagent: single-cell RNA-seq analysis with checked steps, provenance and grounded annotation."""

from __future__ import annotations

__version__ = "0.1.0"

from scagent.errors import ScagentError

__all__ = ["ScagentError", "__version__"]
