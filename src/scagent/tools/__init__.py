"""Registered analysis steps: each a plain function plus one :class:`Tool` record.

Importing this package registers the core tools. Each name below is the tool's record,
callable scanpy-style: ``scagent.tools.pca(adata, n_comps=30)`` validates the
parameters, runs the step on ``adata`` in place, checks the outputs and returns a
:class:`ToolResult`. The plain function is ``scagent.tools.pca.fn``.
"""

from __future__ import annotations

from scagent.tools.abundance import COMPOSITION as composition
from scagent.tools.annotation import ANNOTATE as annotate
from scagent.tools.base import Tool, ToolResult
from scagent.tools.cluster import LEIDEN as leiden
from scagent.tools.communication import COMMUNICATION as communication
from scagent.tools.de_within import DE_WITHIN_CLUSTER as de_within_cluster
from scagent.tools.doublets import DOUBLETS as doublets
from scagent.tools.enrich import ENRICHMENT as enrichment
from scagent.tools.features import HVG as hvg
from scagent.tools.graph import NEIGHBORS as neighbors
from scagent.tools.integrate import HARMONY as harmony
from scagent.tools.integration_metrics import INTEGRATION_METRICS as integration_metrics
from scagent.tools.markers import MARKERS as markers
from scagent.tools.mixscape import MIXSCAPE as mixscape
from scagent.tools.multimodal import JOINT_EMBEDDING as joint_embedding
from scagent.tools.multimodal import PROTEIN_MARKERS as protein_markers
from scagent.tools.multimodal import PROTEIN_NORMALIZE as protein_normalize
from scagent.tools.normalize import NORMALIZE as normalize
from scagent.tools.perturbation import GUIDE_ASSIGNMENT as guide_assignment
from scagent.tools.perturbation import PERTURBATION_DE as perturbation_de
from scagent.tools.pseudobulk import PSEUDOBULK_DE as pseudobulk_de
from scagent.tools.qc import FILTER_CELLS as filter_cells
from scagent.tools.qc import FILTER_GENES as filter_genes
from scagent.tools.qc import QC_METRICS as qc_metrics
from scagent.tools.reduce import PCA as pca
from scagent.tools.reduce import UMAP as umap
from scagent.tools.registry import get_tool, list_tools, register, tool_ids
from scagent.tools.repertoire import AIRR_QC as airr_qc
from scagent.tools.repertoire import CLONAL_EXPANSION as clonal_expansion
from scagent.tools.repertoire import CLONOTYPES as clonotypes
from scagent.tools.repertoire import REPERTOIRE_OVERLAP as repertoire_overlap
from scagent.tools.trajectory import DIFFUSION_PSEUDOTIME as diffusion_pseudotime
from scagent.tools.trajectory import PAGA as paga
from scagent.tools.trajectory_de import TRAJECTORY_DE as trajectory_de
from scagent.tools.trajectory_root import TRAJECTORY as trajectory_tool
from scagent.tools.velocity import VELOCITY as velocity

__all__ = [
    "Tool",
    "ToolResult",
    "airr_qc",
    "annotate",
    "clonal_expansion",
    "clonotypes",
    "communication",
    "composition",
    "de_within_cluster",
    "diffusion_pseudotime",
    "doublets",
    "enrichment",
    "filter_cells",
    "filter_genes",
    "get_tool",
    "guide_assignment",
    "harmony",
    "hvg",
    "integration_metrics",
    "joint_embedding",
    "leiden",
    "list_tools",
    "markers",
    "mixscape",
    "neighbors",
    "normalize",
    "paga",
    "pca",
    "perturbation_de",
    "protein_markers",
    "protein_normalize",
    "pseudobulk_de",
    "qc_metrics",
    "register",
    "repertoire_overlap",
    "tool_ids",
    "trajectory_de",
    "trajectory_tool",
    "umap",
    "velocity",
]
# Tools of other capabilities register on import: consensus_clustering, preprocess_lazy.
import scagent.consensus.tool
import scagent.scale.tool  # noqa: F401
