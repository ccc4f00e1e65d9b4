"""Running a paradigm's plan end to end: every step through ``Session.run``, in dependency order.

A paradigm (:mod:`scagent.plan.paradigms`) says which steps a study design calls for and
with which parameters; this module checks that the data can serve the paradigm (saying
exactly what is missing), resolves the parameters that depend on the data (``$batch``:
the inspector's batch column), runs the steps one by one so that each is its own recorded
snapshot, skips optional steps the data cannot serve (with the reason), and can resume a
stopped run. It also knows how to simulate data of each paradigm's kind with planted
truth, and how to score a finished run against that truth.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from scagent.errors import (
    DataStateError,
    InvalidDataError,
    MissingDependencyError,
    MissingPrerequisiteError,
)
from scagent.plan.paradigms import ParadigmPlan, ParadigmStep, get_paradigm

if TYPE_CHECKING:
    from anndata import AnnData

    from scagent.data.state import DataState
    from scagent.session import Session

__all__ = [
    "PipelineResult",
    "StepOutcome",
    "check_paradigm_inputs",
    "resolve_params",
    "run_paradigm",
    "simulate_paradigm",
    "truth_recovery",
]

#: The ``request_text`` every pipeline step is recorded with; ``--resume`` reads it back.
_REQUEST = "pipeline {paradigm}: step {step}"

#: Errors that mean "this data cannot serve this step": an optional step is skipped on them.
_CANNOT_SERVE = (DataStateError, InvalidDataError, MissingDependencyError, MissingPrerequisiteError)


class StepOutcome(BaseModel):
    """What happened to one step of a paradigm run."""

    step_id: str
    tool_id: str
    status: Literal["done", "skipped", "precomputed", "resumed"]
    summary: str = ""
    reason: str = Field("", description="Why a step was skipped.")
    params: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0
    snapshot: str | None = None
    warnings: list[str] = Field(default_factory=list)


class PipelineResult(BaseModel):
    """A finished paradigm run: its steps and, for simulated data, how well the truth was found."""

    paradigm: str
    project: str
    branch: str
    steps: list[StepOutcome] = Field(default_factory=list)
    truth: dict[str, float | int | str] | None = None
    report: str | None = None
    seconds: float = 0.0

    def outcome(self, step_id: str) -> StepOutcome:
        """The outcome of step ``step_id``."""
        for s in self.steps:
            if s.step_id == step_id:
                return s
        raise KeyError(step_id)


# -- what each paradigm needs, how to simulate it, how to score it ----------------------
@dataclass(frozen=True)
class _Kind:
    """Where a paradigm's simulator, truth scorer and input check live ("module:function")."""

    simulate: str
    simulate_kwargs: Mapping[str, Any] = field(default_factory=dict)
    truth: str | None = None
    check: str | None = None


_BASE = "scagent.data.simulate:simulate"
_KINDS: dict[str, _Kind] = {
    "atlas": _Kind(
        "scagent.data.simulate_paradigms:simulate_atlas",
        truth="scagent.data.simulate_paradigms:atlas_truth_recovery",
        check="scagent.plan.run:_check_atlas",
    ),
    "disease_vs_healthy": _Kind(
        _BASE,
        {"n_conditions": 2, "samples_per_condition": 3, "n_batches": 2, "batch_effect": 0.15},
        truth="scagent.plan.run:_condition_truth",
        check="scagent.plan.run:_check_conditions",
    ),
    "temporal_longitudinal": _Kind(
        _BASE,
        {"n_conditions": 2, "samples_per_condition": 3},
        truth="scagent.plan.run:_condition_truth",
        check="scagent.plan.run:_check_conditions",
    ),
    "developmental_trajectory": _Kind(
        "scagent.data.simulate_paradigms:simulate_trajectory",
        truth="scagent.data.simulate_paradigms:trajectory_truth_recovery",
        check="scagent.plan.run:_check_trajectory",
    ),
    "perturbation_screen": _Kind(
        "scagent.data.simulate_perturbation:simulate_perturbation",
        truth="scagent.data.simulate_perturbation:truth_recovery",
        check="scagent.tools.guides:check_perturbation_inputs",
    ),
    "immune_repertoire": _Kind(
        "scagent.data.simulate_repertoire:simulate_repertoire",
        truth="scagent.data.simulate_repertoire:truth_recovery",
        check="scagent.tools.repertoire:check_repertoire_inputs",
    ),
    "multimodal": _Kind(
        "scagent.data.simulate_cite:simulate_cite",
        truth="scagent.data.simulate_cite:truth_recovery",
        check="scagent.tools.multimodal:check_multimodal_inputs",
    ),
    "communication": _Kind(
        "scagent.data.simulate_communication:simulate_communication",
        truth="scagent.data.simulate_communication:truth_recovery",
        check="scagent.plan.run:_check_communication",
    ),
}


def _resolve(dotted: str) -> Callable[..., Any]:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def _kind(paradigm: str) -> _Kind:
    return _KINDS[get_paradigm(paradigm).paradigm]


def simulate_paradigm(paradigm: str, n_cells: int = 3000, *, seed: int = 0) -> AnnData:
    """Simulated raw data of the kind ``paradigm`` analyses, with its truth planted.

    Atlas data has three batches; disease-vs-healthy two conditions with three samples
    each; a trajectory a lineage; a perturbation screen guide counts
    (``obsm['guide_counts']``); immune repertoire V(D)J contigs (``obsm['airr']``);
    multimodal antibody counts (``obsm['protein_counts']``); communication planted
    ligand-receptor pairs.
    """
    kind = _kind(paradigm)
    fn = _resolve(kind.simulate)
    adata = fn(n_cells=n_cells, seed=seed, **kind.simulate_kwargs)
    # Simulators that also return contigs etc. give a tuple; the AnnData comes first.
    return adata[0] if isinstance(adata, tuple) else adata


def truth_recovery(paradigm: str, adata: AnnData) -> dict[str, float | int | str]:
    """How well a finished run of ``paradigm`` found the simulator's planted truth.

    Always: the Leiden ARI with the true cell types and the cell-weighted annotation score
    when those were run; then the paradigm's own scorer (DE false discovery proportion,
    the knocked-down genes, the expanded clone, the protein-defined populations, ...).
    """
    from scagent.data.truth import annotation_recovery, clustering_ari

    scores: dict[str, float | int | str] = {}
    obs = adata.obs
    if "cell_type" in obs and "leiden" in obs:
        scores["leiden_ari"] = round(clustering_ari(adata, "leiden"), 4)
    if "cell_type" in obs and "cell_ontology_id" in obs and "annotation_label" in obs:
        entry = adata.uns.get("annotation")
        groupby = entry.get("groupby") if isinstance(entry, Mapping) else None
        groupby = groupby if groupby in obs else "annotation_label"
        scores["annotation_score"] = round(annotation_recovery(adata, "annotation", groupby)[1], 4)
    kind = _kind(paradigm)
    if kind.truth is not None:
        for key, value in _resolve(kind.truth)(adata).items():
            scores[key] = round(value, 4) if isinstance(value, float) else value
    return scores


def check_paradigm_inputs(
    paradigm: str, adata: AnnData, params: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Raise :class:`InvalidDataError` saying exactly what ``adata`` lacks for ``paradigm``.

    Every paradigm that starts from raw counts needs them somewhere (X, ``layers['counts']``
    or ``.raw``) unless the data is already past normalisation; each paradigm then asks for
    its own inputs (batches for an atlas, conditions with replicate samples for a
    disease-vs-healthy study, guide counts for a screen, V(D)J contigs for a repertoire,
    antibody counts for CITE-seq, cell-type labels or clusters for communication).
    ``params`` are the run's per-step overrides (a trajectory rooted elsewhere than CD34).
    """
    kind = _kind(paradigm)
    _check_expression(adata, get_paradigm(paradigm).paradigm)
    if kind.check is not None:
        check = _resolve(kind.check)
        if "params" in inspect.signature(check).parameters:
            check(adata, params=params or {})
        else:
            check(adata)


def _check_expression(adata: AnnData, paradigm: str, min_cells: int = 100) -> None:
    from scagent.data import inspect_adata

    if adata.n_obs < min_cells or adata.n_vars < 50:
        raise InvalidDataError(
            f"the {paradigm} paradigm needs at least {min_cells} cells and 50 genes, got "
            f"{adata.n_obs} x {adata.n_vars}"
        )
    state = inspect_adata(adata)
    usable = state.has_counts or "log_normalized" in (
        state.x_state,
        state.raw_state,
        *state.layer_states.values(),
    )
    if not usable:
        raise InvalidDataError(
            f"the {paradigm} paradigm needs raw counts or log-normalized expression; X holds "
            f"{state.x_state.replace('_', ' ')} and no counts were found",
            remedy="load the raw count matrix (or put it in layers['counts'])",
        )


def _check_atlas(adata: AnnData) -> None:
    from scagent.data.inspect import design_column

    if design_column(adata, "batch") is None:
        raise InvalidDataError(
            "the atlas paradigm integrates several batches, but no batch, sample or donor "
            "column with 2 or more levels was found",
            remedy="add an obs column naming each cell's batch or sample (e.g. obs['batch'])",
        )


def _check_trajectory(adata: AnnData, params: Mapping[str, Mapping[str, Any]]) -> None:
    step = get_paradigm("developmental_trajectory").step("trajectory")
    given = params.get("trajectory", {})
    root_gene = (given if set(given) & set(step.exclusive) else step.params).get("root_gene")
    if root_gene is not None and root_gene not in adata.var_names:
        raise InvalidDataError(
            f"the trajectory is rooted at the cells expressing '{root_gene}', which is not a "
            "gene of this data",
            remedy="pass --param trajectory.root_gene=<marker of the earliest cells>, or "
            "trajectory.root_cell_type=<their cell type>",
        )


def _column_levels(adata: AnnData, columns: list[Any]) -> tuple[str | None, int]:
    for info in columns:
        if info.name in adata.obs:
            return info.name, int(adata.obs[info.name].nunique())
    return None, 0


def _check_conditions(adata: AnnData) -> None:
    from scagent.data import inspect_adata

    state = inspect_adata(adata)
    missing = []
    condition, n_conditions = _column_levels(adata, state.condition_columns)
    if n_conditions < 2:
        missing.append(
            "a condition column with two or more levels"
            + (f" (obs['{condition}'] has {n_conditions})" if condition else "")
        )
    sample, _ = _column_levels(adata, [*state.sample_columns, *state.donor_columns])
    if sample is None:
        missing.append("a sample or donor column (the replicates for pseudobulk DE)")
    elif condition is not None and n_conditions >= 2:
        per = adata.obs.groupby(condition, observed=True)[sample].nunique()
        if (per < 2).any():
            missing.append(
                "two or more samples per condition (found "
                + ", ".join(f"{k}: {v}" for k, v in per.items())
                + ")"
            )
    if missing:
        raise InvalidDataError(
            "comparing conditions needs " + "; ".join(missing),
            remedy="add obs columns for condition and sample (several samples per condition)",
        )


def _check_communication(adata: AnnData) -> None:
    from scagent.tools.communication import check_communication_inputs

    # The cell types come from the pipeline's own annotate step: check genes and counts only.
    check_communication_inputs(adata, groupby=None)


def _condition_truth(adata: AnnData) -> dict[str, float | int | str]:
    from scagent.data.truth import de_recovery

    sim = adata.uns.get("simulation", {})
    de_genes = sim.get("de_genes", {}) if isinstance(sim, Mapping) else {}
    if not de_genes or "pseudobulk_de" not in adata.uns:
        return {}
    genes = sorted({g for per in de_genes.values() for g in per})
    de = de_recovery(adata, genes)
    return {
        "pseudobulk_calls": de["calls"],
        "pseudobulk_fdp": de["fdp"],
        "pseudobulk_recall": de["recall_genes"],
    }


# -- parameters that depend on the data -------------------------------------------------
def resolve_params(
    step: ParadigmStep,
    adata: AnnData,
    state: DataState | None = None,
    *,
    given: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The step's parameters with ``$batch``-style placeholders replaced by obs columns,
    then the user's ``given`` values on top (one of the step's ``exclusive`` alternatives
    given by the user replaces the paradigm's choice among them).

    Returns
    -------
    The parameters, and the reason the step cannot run when a placeholder the tool cannot
    do without has no column (None when it can run). A placeholder of a parameter that has
    a default is simply dropped (the tool's default applies).
    """
    from scagent.data import inspect_adata
    from scagent.data.inspect import design_column
    from scagent.tools import get_tool

    fields = get_tool(step.tool_id).params.model_fields
    given = dict(given or {})
    chosen = set(given) & set(step.exclusive)
    resolved: dict[str, Any] = {}
    for key, value in step.params.items():
        if key in given or (chosen and key in step.exclusive):
            continue  # the user's value, or an alternative the user replaced
        if isinstance(value, str) and value.startswith("$"):
            state = state or inspect_adata(adata)
            column = design_column(adata, value[1:], state)
            if column is not None:
                resolved[key] = column
            elif key in fields and fields[key].is_required():
                resolved.update(given)
                return resolved, f"no {value[1:]} column with more than one level for '{key}'"
            continue
        resolved[key] = value
    resolved.update(given)
    return resolved, None


# -- running ----------------------------------------------------------------------------
def _validate_overrides(plan: ParadigmPlan, overrides: Mapping[str, Mapping[str, Any]]) -> None:
    for step_id in overrides:
        plan.step(step_id)  # raises with the step list and a close match


def _done_before(session: Session, paradigm: str) -> tuple[dict[str, str], str | None]:
    """Step ids of this paradigm already committed on the branch, with their snapshots,
    and the snapshot the run started from (the parent of its first step)."""
    done: dict[str, str] = {}
    start = None
    prefix = _REQUEST.format(paradigm=paradigm, step="")
    for record in session.history():
        text = record.request_text or ""
        if text.startswith(prefix):
            start = start or record.parent
            done[text[len(prefix) :]] = record.snapshot_id
    return done, start


def run_paradigm(
    session: Session,
    paradigm: str,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    resume: bool = False,
    requested_by: str = "cli",
    on_step: Callable[[StepOutcome], None] | None = None,
    before_step: Callable[[ParadigmStep], None] | None = None,
) -> PipelineResult:
    """Run every step of ``paradigm`` on the session's current branch, one recorded step each.

    Parameters
    ----------
    session
        An open session whose current branch holds the data.
    paradigm
        A paradigm name (:func:`scagent.plan.list_paradigms`).
    params
        Per-step parameter overrides ``{step_id: {param: value}}``; they win over the
        paradigm's own parameters.
    resume
        Skip the steps this paradigm already committed on the branch (a run that stopped
        on an error goes on where it stopped).
    requested_by
        Recorded in the provenance of every step.
    on_step, before_step
        Called after / before each step (progress display).

    Returns
    -------
    PipelineResult
        One outcome per step (truth and report are filled by the caller).

    Raises
    ------
    InvalidDataError
        The data cannot serve the paradigm (the message says what is missing); raised
        before any step runs.
    ScagentError
        The first required step that fails; the steps before it stay committed, so
        ``resume=True`` goes on from there.
    """
    started = time.perf_counter()
    plan = get_paradigm(paradigm)
    overrides = {k: dict(v) for k, v in (params or {}).items()}
    _validate_overrides(plan, overrides)
    unavailable = [s.tool_id for s in plan.steps if not s.available and not s.optional]
    if unavailable:
        raise MissingDependencyError(
            f"paradigm '{plan.paradigm}' needs tools that are not registered: "
            + ", ".join(unavailable),
            remedy="pip install 'scagent[all]'",
        )
    adata = session.adata
    from scagent.data import inspect_adata

    done, start = _done_before(session, plan.paradigm) if resume else ({}, None)
    if not done:
        check_paradigm_inputs(plan.paradigm, adata, overrides)
        plan.mark_precomputed_from_state(inspect_adata(adata))
    elif start is not None:
        # The steps the stopped run found precomputed are judged on the data it started
        # from, not on the head: otherwise they would run now, after the later steps.
        plan.mark_precomputed_from_state(inspect_adata(session.store.read_snapshot(start)))
    result = PipelineResult(paradigm=plan.paradigm, project=str(session.project.root),
                            branch=session.branch)  # fmt: skip

    def emit(outcome: StepOutcome) -> None:
        result.steps.append(outcome)
        if on_step is not None:
            on_step(outcome)

    for step in plan.steps:
        if step.id in done:
            emit(StepOutcome(step_id=step.id, tool_id=step.tool_id, status="resumed",
                             snapshot=done[step.id]))  # fmt: skip
            continue
        if step.status in ("precomputed", "skipped"):
            emit(StepOutcome(step_id=step.id, tool_id=step.tool_id, status="precomputed",
                             reason="the data already holds this step's result"))  # fmt: skip
            continue
        if not step.available:
            emit(StepOutcome(step_id=step.id, tool_id=step.tool_id, status="skipped",
                             reason=f"tool '{step.tool_id}' is not installed"))  # fmt: skip
            continue
        adata = session.adata
        resolved, cannot = resolve_params(step, adata, given=overrides.get(step.id))
        if cannot is not None:
            if not step.optional:
                raise InvalidDataError(
                    f"step '{step.id}' of paradigm '{plan.paradigm}' cannot run: {cannot}",
                    remedy=f"pass it with --param {step.id}.<name>=<obs column>",
                )
            emit(StepOutcome(step_id=step.id, tool_id=step.tool_id, status="skipped",
                             reason=cannot, params=resolved))  # fmt: skip
            continue
        if before_step is not None:
            before_step(step)
        t = time.perf_counter()
        try:
            record = session.run(
                step.tool_id,
                requested_by=requested_by,
                request_text=_REQUEST.format(paradigm=plan.paradigm, step=step.id),
                **resolved,
            )
        except _CANNOT_SERVE as err:
            if not step.optional:
                raise
            emit(StepOutcome(step_id=step.id, tool_id=step.tool_id, status="skipped",
                             reason=err.message, params=resolved))  # fmt: skip
            continue
        emit(
            StepOutcome(
                step_id=step.id,
                tool_id=step.tool_id,
                status="done",
                summary=record.result.summary,
                params=resolved,
                seconds=round(time.perf_counter() - t, 3),
                snapshot=record.step.snapshot_id,
                warnings=list(record.result.warnings),
            )
        )
    result.seconds = round(time.perf_counter() - started, 3)
    return result
