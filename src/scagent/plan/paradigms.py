"""Paradigm plans: advisory DAGs of the analysis a study design calls for, on top of the dependency graph.

A paradigm (atlas, disease vs healthy, developmental trajectory, ...) is a list of steps
with dependencies and the reason each is there. Steps name a registered tool where one
exists, or a future tool (``pseudobulk_de``, ``composition``) marked ``available=False``.
A plan is advice: it marks what the data already has, and says what could come next.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field

from scagent.data.state import DataState
from scagent.errors import InvalidParameterError

__all__ = ["PARADIGMS", "ParadigmPlan", "ParadigmStep", "get_paradigm", "list_paradigms"]

#: ``precomputed``: the data already holds the step's result; ``skipped``: not run, by choice
#: or because the data is already past it.
StepStatus = Literal["pending", "done", "precomputed", "skipped"]


class ParadigmStep(BaseModel):
    """One step of a paradigm plan."""

    id: str
    tool_id: str = Field(description="A registered tool id, or the name of a future tool.")
    depends_on: list[str] = Field(default_factory=list)
    rationale: str = ""
    available: bool = Field(True, description="Whether tool_id is a registered tool.")
    status: StepStatus = "pending"
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameters the paradigm runs the tool with. A value '$batch', '$sample', "
        "'$condition' or '$donor' stands for the inspector's first column of that kind.",
    )
    exclusive: list[str] = Field(
        default_factory=list,
        description="Parameters of which the tool takes exactly one (the trajectory's root): "
        "a user's value for one of them replaces the paradigm's value for the others.",
    )
    optional: bool = Field(
        False,
        description="Skipped, with the reason, when the data cannot serve it (e.g. no "
        "spliced/unspliced layers for velocity, a single batch for harmony).",
    )


class ParadigmPlan(BaseModel):
    """An advisory DAG of steps for one study design.

    Build one with :func:`get_paradigm`; it serialises with ``model_dump_json()``.
    """

    paradigm: str
    description: str = ""
    steps: list[ParadigmStep] = Field(default_factory=list)

    def step(self, step_id: str) -> ParadigmStep:
        """The step with id ``step_id``."""
        for s in self.steps:
            if s.id == step_id:
                return s
        close = difflib.get_close_matches(step_id, [s.id for s in self.steps], n=1)
        raise InvalidParameterError(
            f"paradigm '{self.paradigm}' has no step '{step_id}'"
            + (f"; did you mean '{close[0]}'?" if close else ""),
            remedy=f"steps: {', '.join(s.id for s in self.steps)}",
        )

    def add_step(
        self,
        step_id: str,
        tool_id: str | None = None,
        depends_on: list[str] | tuple[str, ...] = (),
        rationale: str = "",
        *,
        params: dict[str, Any] | None = None,
        optional: bool = False,
        exclusive: list[str] | tuple[str, ...] = (),
    ) -> ParadigmStep:
        """Add a step after the steps it depends on (which must exist); returns it.

        Raises
        ------
        InvalidParameterError
            If the id is taken or a dependency is not a step of the plan.
        """
        if any(s.id == step_id for s in self.steps):
            raise InvalidParameterError(
                f"paradigm '{self.paradigm}' already has a step '{step_id}'"
            )
        for dep in depends_on:
            self.step(dep)  # raises, naming the unknown dependency
        new = ParadigmStep(
            id=step_id,
            tool_id=tool_id or step_id,
            depends_on=list(depends_on),
            rationale=rationale,
            available=_registered(tool_id or step_id),
            params=dict(params or {}),
            optional=optional,
            exclusive=list(exclusive),
        )
        self.steps.append(new)
        return new

    def mark(self, step_id: str, status: StepStatus = "done") -> None:
        """Set a step's status (after running it, or to skip it)."""
        self.step(step_id).status = status

    def mark_precomputed_from_state(self, state: DataState) -> list[str]:
        """Mark the steps whose results the data already holds; returns their ids.

        A step with a result in the data becomes ``precomputed``. A pending step upstream
        of a precomputed one (a filter, doublet removal) leaves no trace of its own, but
        the data is past it: it becomes ``skipped``, so it is not suggested next.
        """
        from scagent.plan.graph import is_satisfied

        marked = []
        for s in self.steps:
            if s.status == "pending" and s.available and _done_in(s.tool_id, state, is_satisfied):
                s.status = "precomputed"
                marked.append(s.id)
        by_id = {s.id: s for s in self.steps}
        frontier = [s for s in self.steps if s.status == "precomputed"]
        while frontier:
            for dep in frontier.pop().depends_on:
                upstream = by_id[dep]
                if upstream.status == "pending":
                    upstream.status = "skipped"
                    frontier.append(upstream)
        return marked

    def next_steps(self, *, include_unavailable: bool = False) -> list[ParadigmStep]:
        """Pending steps whose dependencies are all done, precomputed or skipped."""
        settled = {s.id for s in self.steps if s.status != "pending"}
        return [
            s
            for s in self.steps
            if s.status == "pending"
            and all(d in settled for d in s.depends_on)
            and (s.available or include_unavailable)
        ]


def _registered(tool_id: str) -> bool:
    from scagent.tools import tool_ids

    return tool_id in tool_ids()


def _done_in(tool_id: str, state: DataState, is_satisfied) -> bool:
    from scagent.tools import get_tool

    produces = get_tool(tool_id).produces
    # A tool that leaves no breadcrumb (a filter) cannot be recognised as done.
    return bool(produces) and all(is_satisfied(p, state) for p in produces)


class _Spec(NamedTuple):
    id: str
    tool_id: str
    depends_on: tuple[str, ...]
    rationale: str
    params: Mapping[str, Any] = MappingProxyType({})
    optional: bool = False
    exclusive: tuple[str, ...] = ()


_QC: list[_Spec] = [
    _Spec("qc_metrics", "qc_metrics", (), "QC metrics on the raw counts."),
    _Spec(
        "filter_cells",
        "filter_cells",
        ("qc_metrics",),
        "Remove low-quality cells (MADs per sample).",
        {"sample_key": "$sample"},
    ),
    _Spec(
        "doublets",
        "doublets",
        ("filter_cells",),
        "Doublets form within a capture: score them per sample.",
        {"batch_key": "$sample"},
    ),
]
_NORMALIZE = _Spec(
    "normalize", "normalize", ("doublets",), "Shifted log; counts kept for later DE."
)
_REDUCE: list[_Spec] = [
    _Spec("hvg", "hvg", ("normalize",), "Batch-aware highly variable genes.", {"batch_key": "$batch"}),
    _Spec("pca", "pca", ("hvg",), "Linear reduction for the graph."),
]  # fmt: skip
_PREPROCESS: list[_Spec] = [*_QC, _NORMALIZE, *_REDUCE]


def _graph(graph_on: str, *, markers: bool = True) -> list[_Spec]:
    steps = [
        _Spec("neighbors", "neighbors", (graph_on,), "kNN graph on the (integrated) embedding."),
        _Spec("leiden", "leiden", ("neighbors",), "Clusters; sweep the resolution."),
        _Spec("umap", "umap", ("neighbors",), "Embedding for visual checks."),
    ]
    if markers:
        steps.append(
            _Spec("markers", "markers", ("leiden",), "Marker genes per cluster for annotation.",
                  {"groupby": "leiden"})
        )  # fmt: skip
    return steps


_ANNOTATE = _Spec(
    "annotate",
    "annotate",
    ("markers",),
    "Name cell types from markers, cross-checked against the marker database.",
    {"groupby": "leiden"},
)


def _pipeline(*tail: _Spec, integrate: bool | Literal["optional"] = True) -> list[_Spec]:
    steps = list(_PREPROCESS)
    graph_on = "pca"
    if integrate:
        steps.append(
            _Spec("harmony", "harmony", ("pca",), "Several samples or batches: integrate before "
                  "clustering (Luecken et al. 2022 benchmark).", {"batch_key": "$batch"},
                  optional=integrate == "optional")
        )  # fmt: skip
        graph_on = "harmony"
    return steps + _graph(graph_on) + list(tail)


#: Each paradigm: a description and its steps.
PARADIGMS: dict[str, tuple[str, list[_Spec]]] = {
    "atlas": (
        "Many samples, donors or studies combined into one reference of cell types.",
        _pipeline(
            _ANNOTATE,
            _Spec(
                "integration_metrics",
                "integration_metrics",
                ("harmony", "annotate"),
                "Check batch removal against conservation of biology (scIB, Luecken et al. 2022).",
                {"batch_key": "$batch"},
            ),
        ),
    ),
    "disease_vs_healthy": (
        "Cases against controls, several donors per group.",
        _pipeline(
            _ANNOTATE._replace(rationale="Cell types first: DE is within a type."),
            _Spec(
                "composition",
                "composition",
                ("annotate",),
                "Differential abundance of types between conditions (Büttner et al. 2021).",
                {
                    "groupby": "annotation_label",
                    "sample_key": "$sample",
                    "condition_key": "$condition",
                },
            ),
            _Spec(
                "pseudobulk_de",
                "pseudobulk_de",
                ("annotate",),
                "DE per cell type on pseudobulk by donor; single-cell tests give false discoveries "
                "(Squair et al. 2021).",
                {
                    "groupby": "annotation_label",
                    "sample_key": "$sample",
                    "condition_key": "$condition",
                },
            ),
            _Spec("enrichment", "enrichment", ("pseudobulk_de",), "Pathways behind the DE genes."),
            integrate="optional",
        ),
    ),
    "developmental_trajectory": (
        "Cells along a differentiation process; order them in pseudotime.",
        _pipeline(
            _ANNOTATE,
            _Spec(
                "trajectory",
                "trajectory",
                ("leiden",),
                "PAGA topology (Wolf et al. 2019), then diffusion pseudotime from the earliest "
                "cells (Haghverdi et al. 2016): the root is the cluster of the stem-cell marker.",
                {"groups": "leiden", "root_gene": "CD34"},
                exclusive=("root_gene", "root_cell_type", "root_cluster", "root_cell"),
            ),
            _Spec(
                "velocity",
                "velocity",
                ("neighbors",),
                "RNA velocity gives the direction, when spliced/unspliced counts exist.",
                optional=True,
            ),
            _Spec(
                "trajectory_de",
                "trajectory_de",
                ("trajectory",),
                "Genes changing along pseudotime.",
            ),
            integrate=False,
        ),
    ),
    "temporal_longitudinal": (
        "The same system sampled at several time points.",
        _pipeline(
            _ANNOTATE._replace(rationale="Cell types at each time point."),
            _Spec(
                "composition",
                "composition",
                ("annotate",),
                "How type abundances change over time.",
                {
                    "groupby": "annotation_label",
                    "sample_key": "$sample",
                    "condition_key": "$condition",
                },
            ),
            _Spec(
                "pseudobulk_de",
                "pseudobulk_de",
                ("annotate",),
                "Expression changes over time per type, with donors as replicates.",
                {
                    "groupby": "annotation_label",
                    "sample_key": "$sample",
                    "condition_key": "$condition",
                },
            ),
            integrate="optional",
        ),
    ),
    "perturbation_screen": (
        "Pooled CRISPR or drug perturbations with a guide or treatment per cell.",
        [
            *_QC[:2],
            _Spec(
                "guide_assignment",
                "guide_assignment",
                ("filter_cells",),
                "Assign guides (Poisson-Gaussian mixture per guide, Replogle et al. 2022); "
                "flag cells with none or several.",
            ),
            _NORMALIZE._replace(depends_on=("guide_assignment",)),
            *_REDUCE,
            *_graph("pca", markers=False),
            _Spec(
                "mixscape",
                "mixscape",
                ("guide_assignment", "pca"),
                "Separate cells whose target was knocked out from those that escaped "
                "(Mixscape, Papalexi et al. 2021).",
            ),
            _Spec(
                "perturbation_de",
                "perturbation_de",
                ("guide_assignment", "normalize"),
                "Effect of each perturbation against non-targeting controls (pseudobulk where "
                "replicated), and whether the target gene was knocked down.",
            ),
        ],
    ),
    "immune_repertoire": (
        "T/B cells with paired V(D)J sequencing.",
        _pipeline(
            _ANNOTATE._replace(rationale="T and B cell subsets."),
            _Spec("airr_qc", "airr_qc", ("annotate",), "Receptor chain pairing QC (scirpy)."),
            _Spec(
                "clonotypes",
                "clonotypes",
                ("airr_qc",),
                "Define clonotypes from the receptor chains (scirpy).",
            ),
            _Spec(
                "clonal_expansion",
                "clonal_expansion",
                ("clonotypes",),
                "Expanded clones per cell type.",
                {"groupby": "annotation_label"},
            ),
            _Spec(
                "repertoire_overlap",
                "repertoire_overlap",
                ("clonotypes",),
                "Clonotypes shared between samples.",
                {"sample_key": "$sample"},
            ),
            integrate="optional",
        ),
    ),
    "multimodal": (
        "Several modalities per cell (CITE-seq proteins with RNA).",
        [
            *_PREPROCESS,
            *_graph("pca", markers=False)[:2],
            _Spec(
                "protein_normalize",
                "protein_normalize",
                ("qc_metrics",),
                "CLR-normalize antibody counts per cell (Stoeckius et al. 2017).",
            ),
            _Spec(
                "joint_embedding",
                "joint_embedding",
                ("pca", "protein_normalize"),
                "Weighted nearest neighbours across RNA and protein (Hao et al. 2021).",
            ),
            _Spec(
                "leiden_wnn",
                "leiden",
                ("joint_embedding",),
                "Clusters on the joint (WNN) graph; the RNA-only leiden stays for comparison.",
                {"neighbors_key": "wnn", "key_added": "leiden_wnn"},
            ),
            _Spec(
                "umap",
                "umap",
                ("joint_embedding",),
                "Embedding of the joint graph.",
                {"neighbors_key": "wnn"},
            ),
            _Spec(
                "protein_markers",
                "protein_markers",
                ("leiden_wnn", "protein_normalize"),
                "Protein markers per joint cluster; they count as marker evidence in annotation.",
                {"groupby": "leiden_wnn"},
            ),
            _Spec(
                "markers",
                "markers",
                ("leiden_wnn",),
                "RNA marker genes per joint cluster.",
                {"groupby": "leiden_wnn"},
            ),
            _ANNOTATE._replace(
                depends_on=("markers", "protein_markers"), params={"groupby": "leiden_wnn"}
            ),
        ],
    ),
    "communication": (
        "Which cell types signal to which: ligand-receptor interactions between annotated types.",
        _pipeline(
            _ANNOTATE._replace(rationale="Interactions are between cell types: name them first."),
            _Spec(
                "communication",
                "communication",
                ("annotate",),
                "Consensus of ligand-receptor methods by cell type (LIANA+ rank_aggregate, "
                "Dimitrov et al. 2024).",
                {"groupby": "annotation_label"},
            ),
            integrate="optional",
        ),
    ),
}


def list_paradigms() -> dict[str, str]:
    """Paradigm names with their one-line descriptions."""
    return {name: desc for name, (desc, _) in PARADIGMS.items()}


def get_paradigm(name: str) -> ParadigmPlan:
    """A fresh plan for paradigm ``name``.

    Raises
    ------
    InvalidParameterError
        If ``name`` is not a paradigm; the message lists them.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in PARADIGMS:
        close = difflib.get_close_matches(key, list(PARADIGMS), n=1)
        raise InvalidParameterError(
            f"unknown paradigm '{name}'" + (f"; did you mean '{close[0]}'?" if close else ""),
            remedy=f"choose one of: {', '.join(PARADIGMS)}",
        )
    description, specs = PARADIGMS[key]
    plan = ParadigmPlan(paradigm=key, description=description)
    for spec in specs:
        plan.add_step(
            spec.id,
            spec.tool_id,
            spec.depends_on,
            spec.rationale,
            params=spec.params,
            optional=spec.optional,
            exclusive=spec.exclusive,
        )
    return plan
