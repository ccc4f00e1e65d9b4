"""Exit codes of ``scagent interpret``, fixed by its specification; they differ from the global table on purpose.

The global table (:mod:`scagent.errors`) gives codes 3-8 other meanings (a missing path,
an unsupported format, ...). ``scagent interpret`` is a gate that scripts call to decide
whether an interpretation may be trusted, and its codes are part of that contract:

==== ========================  ===================================================
code class                     meaning
==== ========================  ===================================================
2    InvalidParameterError     an argument is missing, conflicting or out of range
3    TypedRunInvalid           RUN_DIR is not an intact typed consensus run
4    AdataMismatch             the AnnData is missing or does not hold the run's cells
5    MarkerDBUnavailable       no marker database for the tissue, or --markers unusable
6    LLMUnavailable            no LLM reachable (and --no-llm not given), or it failed
7    InvariantViolation        a claim is not backed by the evidence it cites
8    CoverageBelowThreshold    too few clusters could be interpreted
==== ========================  ===================================================

Every other failure inside the command exits 1 (:class:`InterpretError`).
"""

from __future__ import annotations

from scagent.errors import ScagentError

__all__ = [
    "INTERPRET_EXIT_CODES",
    "AdataMismatch",
    "CoverageBelowThreshold",
    "InterpretError",
    "InvariantViolation",
    "LLMUnavailable",
    "MarkerDBUnavailable",
    "TooFewMembersError",
    "TypedRunInvalid",
]


class InterpretError(ScagentError):
    """Base of the interpret command's errors; an unexpected failure inside it exits 1."""

    exit_code = 1


class TypedRunInvalid(InterpretError):
    exit_code = 3
    default_remedy = "re-run `scagent consensus` into a fresh folder; never edit a run by hand"


class AdataMismatch(InterpretError):
    exit_code = 4
    default_remedy = "pass --adata with the AnnData the consensus run was computed on"


class MarkerDBUnavailable(InterpretError):
    exit_code = 5
    default_remedy = (
        "pass --tissue with a tissue the marker DB knows (`scagent knowledge query`), "
        "or --markers with a marker file"
    )


class LLMUnavailable(InterpretError):
    exit_code = 6
    default_remedy = "configure an LLM (--llm / SCAGENT_LLM and its key) or pass --no-llm"


class InvariantViolation(InterpretError):
    exit_code = 7
    default_remedy = (
        "the interpretation cites evidence that is not in the data; nothing was written — "
        "re-run, or use --no-llm"
    )


class CoverageBelowThreshold(InterpretError):
    exit_code = 8
    default_remedy = (
        "the outputs were written for inspection; lower --coverage-floor, give a better-fitting "
        "--tissue / --markers, or re-run consensus at another resolution"
    )


class TooFewMembersError(ScagentError):
    """Fewer than two clustering members succeeded, so there is nothing to combine (exit 1)."""

    exit_code = 1
    default_remedy = (
        "check each member's error in the message; fix its parameters or choose other members "
        "(--members)"
    )


#: The documented exit code of each interpret error, by class name.
INTERPRET_EXIT_CODES: dict[str, int] = {
    "InvalidParameterError": 2,
    **{
        cls.__name__: cls.exit_code
        for cls in (
            TypedRunInvalid,
            AdataMismatch,
            MarkerDBUnavailable,
            LLMUnavailable,
            InvariantViolation,
            CoverageBelowThreshold,
        )
    },
}
