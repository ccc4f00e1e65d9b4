"""The typed record of what an AnnData is: the inspector's answer, read by every tool and plan."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: What the values of a matrix are.
#: ``raw_counts``: non-negative integers (UMI or read counts).
#: ``normalized``: per-cell scaled to a common total (CP10k / CPM) but not log-transformed.
#: ``log_normalized``: log1p of per-cell normalized counts.
#: ``scaled``: centred (negative values present), e.g. after ``sc.pp.scale``.
#: ``transformed_unknown``: non-negative, non-integer, not recognisably any of the above.
XState = Literal["raw_counts", "normalized", "log_normalized", "scaled", "transformed_unknown"]

Species = Literal["human", "mouse", "unknown"]
GeneIdType = Literal["symbol", "ensembl", "mixed", "unknown"]

#: Canonical step names. Tool ids of the registry use the same names, so the planner
#: can ask ``state.has("pca")`` whether a tool's output is already present.
Step = Literal[
    "qc_metrics",
    "doublets",
    "normalize",
    "log1p",
    "hvg",
    "scale",
    "pca",
    "harmony",
    "neighbors",
    "umap",
    "tsne",
    "leiden",
    "louvain",
    "clustering",
    "cell_types",
    "markers",
    "paga",
    "diffmap",
    "diffusion_pseudotime",
]


class ColumnInfo(BaseModel):
    """An obs column the inspector recognised, with its number of levels."""

    model_config = ConfigDict(frozen=True)

    name: str
    n_levels: int
    levels: list[str] = Field(default_factory=list, description="Up to 20 level names.")


class DEResult(BaseModel):
    """A differential-expression result found in ``uns``."""

    key: str
    groupby: str | None = None
    method: str | None = None
    n_groups: int = 0


class Breadcrumbs(BaseModel):
    """Traces of earlier analysis steps, each with the key it lives under."""

    qc_metrics: list[str] = Field(default_factory=list, description="obs QC columns found.")
    log1p: bool = False
    hvg: str | None = Field(None, description="var column flagging highly variable genes.")
    n_hvg: int = 0
    pca: str | None = Field(None, description="obsm key of the PCA embedding.")
    n_pcs: int = 0
    harmony: str | None = Field(None, description="obsm key of a Harmony-corrected embedding.")
    neighbors: str | None = Field(None, description="uns key of the neighbors graph.")
    neighbors_obsp: list[str] = Field(default_factory=list)
    umap: str | None = None
    tsne: str | None = None
    diffmap: str | None = None
    pseudotime: str | None = Field(None, description="obs column with a pseudotime.")
    paga: bool = False
    doublets: str | None = Field(None, description="obs column with doublet scores or calls.")
    clusterings: list[ColumnInfo] = Field(default_factory=list)
    cell_types: list[ColumnInfo] = Field(default_factory=list)
    de: list[DEResult] = Field(default_factory=list)


class DataState(BaseModel):
    """What an AnnData is and what was already done to it.

    Produced by :func:`scagent.data.inspect_adata`; serialisable to JSON
    (``state.model_dump_json()``).
    """

    n_obs: int
    n_vars: int
    x_state: XState
    x_state_evidence: str = Field(description="Why the inspector chose x_state, in words.")
    x_sparse: bool
    x_dtype: str
    raw_state: XState | None = Field(None, description="State of .raw.X when .raw exists.")
    layer_states: dict[str, XState] = Field(default_factory=dict)
    counts_location: str | None = Field(
        None,
        description="Where raw counts live: 'layers/<name>', 'raw' or 'X'; None if nowhere.",
    )
    breadcrumbs: Breadcrumbs = Field(default_factory=Breadcrumbs)
    steps: list[str] = Field(
        default_factory=list, description="Canonical names of the steps already done."
    )
    species: Species = "unknown"
    species_evidence: str = ""
    gene_id_type: GeneIdType = "unknown"
    n_mito_genes: int = 0
    n_ribo_genes: int = 0
    sample_columns: list[ColumnInfo] = Field(default_factory=list)
    batch_columns: list[ColumnInfo] = Field(default_factory=list)
    condition_columns: list[ColumnInfo] = Field(default_factory=list)
    donor_columns: list[ColumnInfo] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def has(self, step: str) -> bool:
        """Whether ``step`` (a canonical step name) was already done."""
        return step in self.steps

    @property
    def has_counts(self) -> bool:
        """Whether raw counts are available anywhere in the object."""
        return self.counts_location is not None
