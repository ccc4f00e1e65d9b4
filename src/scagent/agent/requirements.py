"""Before a step: is the tool installed, and is the data it needs present? Said in words, with how to fix it.

The dependency graph (:mod:`scagent.plan`) knows which *steps* a tool needs; some tools
also need *design columns* that no step can make (a pseudobulk DE needs a column naming
each cell's sample). These are checked here, before anything runs, so the researcher
learns what is missing and how to add it instead of reading a tool's traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scagent.data.state import DataState
    from scagent.tools.base import Tool

__all__ = ["MissingData", "available_tool", "check_data", "fit_params"]

#: Meanings the intent parser uses (left) and the names tools give them (right), so a
#: hint reaches a tool whose schema was written in parallel with this parser.
PARAM_ALIASES: dict[str, tuple[str, ...]] = {
    "groupby": ("groupby", "group_key", "groups_key", "cell_type_key", "celltype_key", "label_key"),
    "sample_key": ("sample_key", "sample_col", "sample_column", "replicate_key", "samples"),
    "condition_key": ("condition_key", "condition_col", "condition", "contrast_key", "design"),
    "groups": ("groups", "contrast", "compare"),
    "batch_key": ("batch_key", "batch"),
}


@dataclass(frozen=True)
class MissingData:
    """Something the data lacks for a tool: what, and how to add it."""

    what: str
    how: str

    def text(self) -> str:
        return f"{self.what}. To add it: {self.how}"


_SAMPLE_HOW = (
    "add an obs column naming each cell's sample (library or donor), e.g. "
    "adata.obs['sample'] = ..., then import that file into a new project "
    "(`scagent init --data FILE`); list the samples in the experiment context too"
)


def _column_ok(state: DataState, name: Any) -> bool:
    cols = [
        *state.sample_columns,
        *state.batch_columns,
        *state.condition_columns,
        *state.donor_columns,
        *state.breadcrumbs.clusterings,
        *state.breadcrumbs.cell_types,
    ]
    return isinstance(name, str) and any(c.name == name for c in cols)


def check_data(
    tool_id: str, params: dict[str, Any], state: DataState, obs_columns: list[str] | None = None
) -> list[MissingData]:
    """What ``tool_id`` needs from the data that is not there (empty: nothing missing).

    Parameters
    ----------
    tool_id
        The tool about to run.
    params
        Its parameters (a column named here must exist).
    state
        The inspector's view of the data.
    obs_columns
        The data's obs column names, to check columns the inspector did not classify.
    """
    obs = set(obs_columns or [])
    missing: list[MissingData] = []

    def named(*keys: str) -> str | None:
        for key in keys:
            value = params.get(key)
            if isinstance(value, str) and value not in ("", "auto"):
                return value
        return None

    def has_column(name: str) -> bool:
        return name in obs or _column_ok(state, name)

    for key in ("groupby", "batch_key", "sample_key", "condition_key"):
        value = params.get(key)
        if isinstance(value, str) and value not in ("auto", "") and obs and not has_column(value):
            missing.append(
                MissingData(
                    f"{tool_id}: obs has no column {value!r} (given as {key})",
                    f"use one of the obs columns ({', '.join(sorted(obs)[:12])})",
                )
            )
    if tool_id in ("pseudobulk_de", "composition"):
        sample = named(*PARAM_ALIASES["sample_key"])
        replicated = [c for c in [*state.sample_columns, *state.donor_columns] if c.n_levels >= 2]
        if sample is None and not replicated:
            what = (
                "pseudobulk DE needs biological replicates: a sample column in obs with at "
                "least two samples, and none was found"
                if tool_id == "pseudobulk_de"
                else "composition analysis needs a sample column in obs (cell-type shares are "
                "compared across samples), and none was found"
            )
            missing.append(MissingData(what, _SAMPLE_HOW))
    if tool_id == "pseudobulk_de" and not state.has_counts:
        missing.append(
            MissingData(
                "pseudobulk DE sums raw counts per sample, and no raw counts were found "
                "(not in X, layers or .raw)",
                "load the raw count matrix into layers['counts'] of the data and import it again",
            )
        )
    conditions = [c for c in state.condition_columns if c.n_levels >= 2]
    if tool_id == "pseudobulk_de" and not conditions and not named("condition_key"):
        missing.append(
            MissingData(
                "pseudobulk DE compares conditions, and no condition column with two or more "
                "levels was found",
                "add an obs column with each cell's condition (e.g. adata.obs['condition'] = "
                "sample -> condition) and import it again, or name it: condition_key=COLUMN",
            )
        )
    if tool_id == "composition" and not conditions and not named("condition_key"):
        missing.append(
            MissingData(
                "composition analysis compares conditions, and no condition column was found",
                "add an obs column with each cell's condition (e.g. adata.obs['condition'] = "
                "sample -> condition) and import it again, or name it: condition_key=COLUMN",
            )
        )
    if tool_id == "harmony":
        batch = named("batch_key")
        multi = [c for c in [*state.batch_columns, *state.sample_columns] if c.n_levels >= 2]
        if batch is None and not multi:
            missing.append(
                MissingData(
                    "integration needs a batch column in obs with at least two batches, and "
                    "none was found",
                    "add an obs column naming each cell's batch and import it again, or "
                    "name an existing column: batch_key=COLUMN",
                )
            )
        elif batch is not None and has_column(batch):
            levels = next(
                (
                    c.n_levels
                    for c in [*state.batch_columns, *state.sample_columns]
                    if c.name == batch
                ),
                None,
            )
            if levels is not None and levels < 2:
                missing.append(
                    MissingData(
                        f"obs[{batch!r}] has a single batch; there is nothing to integrate",
                        "skip integration, or name a column with several batches",
                    )
                )
    return missing


def available_tool(tool_id: str) -> Tool | None:
    """The registered tool, or None when this installation does not have it."""
    from scagent.errors import UnknownToolError
    from scagent.tools import get_tool

    try:
        return get_tool(tool_id)
    except UnknownToolError:
        return None


def fit_params(tool: Tool, hints: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Map hint meanings onto ``tool``'s parameter names; returns ``(params, dropped hints)``."""
    fields = set(tool.params.model_fields)
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for meaning, value in hints.items():
        for name in PARAM_ALIASES.get(meaning, (meaning,)):
            if name in fields:
                out[name] = value
                break
        else:
            dropped.append(meaning)
    return out, dropped
