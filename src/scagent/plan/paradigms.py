"""Paradigm plans: advisory DAGs of the analysis a study design calls for, on top of the dependency graph.

A paradigm (atlas, disease vs healthy, developmental trajectory, ...) is a list of steps
with dependencies and the reason each is there. Steps name a registered tool where one
exists, or a future tool (``pseudobulk_de``, ``composition``) marked ``available=False``.
A plan is advice: it marks what the data already has, and says what could come next.
"""

from __future__ import annotations

import difflib
from typing import Literal

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


_Spec = tuple[str, str, tuple[str, ...], str]  # id, tool_id, depends_on, rationale

_PREPROCESS: list[_Spec] = [
    ("qc_metrics", "qc_metrics", (), "QC metrics on the raw counts."),
    (
        "filter_cells",
        "filter_cells",
        ("qc_metrics",),
        "Remove low-quality cells (MADs per sample).",
    ),
    (
        "doublets",
        "doublets",
        ("filter_cells",),
        "Doublets form within a capture: score them per sample.",
    ),
    ("normalize", "normalize", ("doublets",), "Shifted log; counts kept for later DE."),
    ("hvg", "hvg", ("normalize",), "Batch-aware highly variable genes."),
    ("pca", "pca", ("hvg",), "Linear reduction for the graph."),
]


def _pipeline(*tail: _Spec, integrate: bool = True) -> list[_Spec]:
    steps = list(_PREPROCESS)
    graph_on = "pca"
    if integrate:
        steps.append(
            ("harmony", "harmony", ("pca",), "Several samples or batches: integrate before clustering "
             "(Luecken et al. 2022 benchmark).")
        )  # fmt: skip
        graph_on = "harmony"
    steps += [
        ("neighbors", "neighbors", (graph_on,), "kNN graph on the (integrated) embedding."),
        ("leiden", "leiden", ("neighbors",), "Clusters; sweep the resolution."),
        ("umap", "umap", ("neighbors",), "Embedding for visual checks."),
        ("markers", "markers", ("leiden",), "Marker genes per cluster for annotation."),
    ]
    return steps + list(tail)


#: Each paradigm: a description and its steps ``(id, tool_id, depends_on, rationale)``.
PARADIGMS: dict[str, tuple[str, list[_Spec]]] = {
    "atlas": (
        "Many samples, donors or studies combined into one reference of cell types.",
        _pipeline(
            ("annotate", "annotate", ("markers",), "Name cell types from markers and a reference."),
            (
                "integration_metrics",
                "integration_metrics",
                ("harmony", "annotate"),
                "Check batch removal against conservation of biology (scIB, Luecken et al. 2022).",
            ),
        ),
    ),
    "disease_vs_healthy": (
        "Cases against controls, several donors per group.",
        _pipeline(
            ("annotate", "annotate", ("markers",), "Cell types first: DE is within a type."),
            (
                "composition",
                "composition",
                ("annotate",),
                "Differential abundance of types between conditions (scCODA, Büttner et al. 2021).",
            ),
            (
                "pseudobulk_de",
                "pseudobulk_de",
                ("annotate",),
                "DE per cell type on pseudobulk by donor; single-cell tests give false discoveries "
                "(Squair et al. 2021).",
            ),
            ("enrichment", "enrichment", ("pseudobulk_de",), "Pathways behind the DE genes."),
        ),
    ),
    "developmental_trajectory": (
        "Cells along a differentiation process; order them in pseudotime.",
        _pipeline(
            (
                "paga",
                "paga",
                ("leiden",),
                "Which clusters connect: the coarse topology (Wolf et al. 2019).",
            ),
            (
                "diffusion_pseudotime",
                "diffusion_pseudotime",
                ("paga",),
                "Order cells from a root of early cells (Haghverdi et al. 2016).",
            ),
            (
                "velocity",
                "velocity",
                ("neighbors",),
                "RNA velocity gives the direction, when spliced/unspliced counts exist.",
            ),
            (
                "trajectory_de",
                "trajectory_de",
                ("diffusion_pseudotime",),
                "Genes changing along pseudotime.",
            ),
            integrate=False,
        ),
    ),
    "temporal_longitudinal": (
        "The same system sampled at several time points.",
        _pipeline(
            ("annotate", "annotate", ("markers",), "Cell types at each time point."),
            ("composition", "composition", ("annotate",), "How type abundances change over time."),
            (
                "pseudobulk_de",
                "pseudobulk_de",
                ("annotate",),
                "Expression changes over time per type, with donors as replicates.",
            ),
        ),
    ),
    "perturbation_screen": (
        "Pooled CRISPR or drug perturbations with a guide or treatment per cell.",
        [
            *_PREPROCESS[:3],
            (
                "guide_assignment",
                "guide_assignment",
                ("filter_cells",),
                "Assign guides; drop cells with none or several.",
            ),
            *_PREPROCESS[3:],
            ("neighbors", "neighbors", ("pca",), "kNN graph."),
            ("leiden", "leiden", ("neighbors",), "Clusters of responses."),
            ("umap", "umap", ("neighbors",), "Embedding for visual checks."),
            (
                "mixscape",
                "mixscape",
                ("guide_assignment", "pca"),
                "Separate perturbed from escaping cells (Papalexi et al. 2021).",
            ),
            (
                "perturbation_de",
                "perturbation_de",
                ("mixscape",),
                "Effects of each perturbation against controls.",
            ),
            (
                "composition",
                "composition",
                ("leiden", "guide_assignment"),
                "Which perturbations shift cell states.",
            ),
        ],
    ),
    "immune_repertoire": (
        "T/B cells with paired V(D)J sequencing.",
        _pipeline(
            ("annotate", "annotate", ("markers",), "T and B cell subsets."),
            (
                "clonotypes",
                "clonotypes",
                ("annotate",),
                "Define clonotypes from the receptor chains (scirpy).",
            ),
            (
                "clonal_expansion",
                "clonal_expansion",
                ("clonotypes",),
                "Expanded clones per subset and condition.",
            ),
        ),
    ),
    "multimodal": (
        "Several modalities per cell (CITE-seq proteins, multiome ATAC).",
        _pipeline(
            (
                "protein_normalize",
                "protein_normalize",
                ("qc_metrics",),
                "CLR-normalize antibody counts (Stoeckius et al. 2017).",
            ),
            (
                "joint_embedding",
                "joint_embedding",
                ("pca", "protein_normalize"),
                "Weighted nearest neighbours or totalVI across modalities (Hao et al. 2021).",
            ),
            integrate=False,
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
    for step_id, tool_id, depends_on, rationale in specs:
        plan.add_step(step_id, tool_id, depends_on, rationale)
    return plan
