"""The simulator's cell-type catalogue: real marker genes and a Cell Ontology id for each type.

Every type lists 5–8 well-known markers for human (HGNC symbols) and for mouse (MGI
symbols of the mouse ortholog, which are not always the title-cased human symbol:
human FCGR3A -> mouse Fcgr4, HLA-DRA -> H2-Aa, CA1 -> Car1). Where a human marker has
no mouse ortholog (GNLY, LILRA4, CD1C) the mouse list uses the marker mouse studies use
instead (Ncr1, Siglech, Cd209a). The simulator up-regulates these genes in their type, so
they are the ground truth that annotation tools are scored against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from scagent.errors import InvalidParameterError

__all__ = [
    "CATALOGUE",
    "DEFAULT_PBMC_PROPORTIONS",
    "HOUSEKEEPING",
    "LINEAGE",
    "MITO",
    "RIBO",
    "CellType",
    "HemoglobinGenes",
    "lookup_cell_type",
    "simulator_cell_types",
]


@dataclass(frozen=True)
class CellType:
    """One catalogue entry."""

    name: str
    cell_ontology_id: str
    markers_human: tuple[str, ...]
    markers_mouse: tuple[str, ...]

    def markers(self, species: Literal["human", "mouse"]) -> tuple[str, ...]:
        return self.markers_human if species == "human" else self.markers_mouse


def _t(name, cl, human, mouse) -> CellType:
    return CellType(name, cl, tuple(human.split()), tuple(mouse.split()))


#: The curated catalogue, in the order genes are laid out in ``var``.
CATALOGUE: tuple[CellType, ...] = (
    # --- blood (PBMC) ---
    _t("CD4 naive T cell", "CL:0000895",
       "CD3D CD3E CD4 CCR7 SELL LEF1 TCF7",
       "Cd3d Cd3e Cd4 Ccr7 Sell Lef1 Tcf7"),
    _t("CD4 memory T cell", "CL:0000897",
       "IL7R CD40LG AQP3 ANXA1 S100A4",
       "Il7r Cd40lg Aqp3 Anxa1 S100a4"),
    _t("CD8 T cell", "CL:0000625",
       "CD3D CD3E CD8A CD8B GZMK CCL5",
       "Cd3d Cd3e Cd8a Cd8b1 Gzmk Ccl5"),
    _t("regulatory T cell", "CL:0000815",
       "FOXP3 IL2RA CTLA4 IKZF2 TNFRSF4",
       "Foxp3 Il2ra Ctla4 Ikzf2 Tnfrsf4"),
    _t("NK cell", "CL:0000623",
       "GNLY NKG7 KLRD1 NCAM1 PRF1 KLRF1",
       "Ncr1 Nkg7 Klrd1 Ncam1 Prf1 Klrb1c"),
    _t("B cell", "CL:0000236",
       "MS4A1 CD79A CD79B CD19 BANK1 CD22",
       "Ms4a1 Cd79a Cd79b Cd19 Bank1 Cd22"),
    _t("plasma cell", "CL:0000786",
       "JCHAIN MZB1 SDC1 XBP1 PRDM1 TNFRSF17",
       "Jchain Mzb1 Sdc1 Xbp1 Prdm1 Tnfrsf17"),
    _t("classical monocyte", "CL:0000860",
       "CD14 LYZ S100A8 S100A9 VCAN FCN1",
       "Cd14 Lyz2 S100a8 S100a9 Vcan Ly6c2"),
    _t("non-classical monocyte", "CL:0000875",
       "FCGR3A MS4A7 CDKN1C LST1 CX3CR1 TCF7L2",
       "Fcgr4 Ms4a7 Cdkn1c Lst1 Cx3cr1 Tcf7l2"),
    _t("cDC", "CL:0000990",
       "FCER1A CD1C CLEC10A HLA-DRA HLA-DQA1 ITGAX",
       "Fcer1a Cd209a Clec10a H2-Aa H2-Ab1 Itgax"),
    _t("pDC", "CL:0000784",
       "LILRA4 CLEC4C IL3RA TCF4 IRF7 PLD4",
       "Siglech Bst2 Ccr9 Tcf4 Irf7 Pld4"),
    _t("platelet", "CL:0000233",
       "PPBP PF4 GP9 ITGA2B GNG11 TUBB1",
       "Ppbp Pf4 Gp9 Itga2b Gng11 Tubb1"),
    _t("neutrophil", "CL:0000775",
       "CSF3R FCGR3B CXCR2 FPR1 CMTM2",
       "Csf3r Retnlg Cxcr2 Fpr1 Ngp"),
    _t("HSPC", "CL:0000837",
       "CD34 PROM1 SPINK2 CRHBP HLF MECOM",
       "Cd34 Prom1 Procr Hlf Mecom Fgd5"),
    _t("erythroid", "CL:0000765",
       "HBB HBA1 HBA2 GYPA ALAS2 CA1 KLF1 SLC4A1",
       "Hbb-bs Hba-a1 Hba-a2 Gypa Alas2 Car1 Klf1 Slc4a1"),
    # --- tissue ---
    _t("mast cell", "CL:0000097",
       "TPSAB1 CPA3 KIT MS4A2 HDC",
       "Tpsb2 Cpa3 Kit Ms4a2 Hdc"),
    _t("macrophage", "CL:0000235",
       "C1QA C1QB C1QC CD68 MARCO APOE",
       "C1qa C1qb C1qc Cd68 Marco Apoe"),
    _t("hepatocyte", "CL:0000182",
       "ALB APOA1 TTR SERPINA1 APOC3 TF",
       "Alb Apoa1 Ttr Serpina1a Apoc3 Trf"),
    _t("epithelial cell", "CL:0000066",
       "EPCAM KRT8 KRT18 KRT19 CDH1 CLDN4",
       "Epcam Krt8 Krt18 Krt19 Cdh1 Cldn4"),
    _t("endothelial cell", "CL:0000115",
       "PECAM1 VWF CDH5 CLDN5 KDR EMCN",
       "Pecam1 Vwf Cdh5 Cldn5 Kdr Emcn"),
    _t("fibroblast", "CL:0000057",
       "COL1A1 COL1A2 COL3A1 DCN LUM PDGFRA",
       "Col1a1 Col1a2 Col3a1 Dcn Lum Pdgfra"),
    _t("keratinocyte", "CL:0000312",
       "KRT5 KRT14 KRT1 KRT10 DSG3",
       "Krt5 Krt14 Krt1 Krt10 Dsg3"),
)  # fmt: skip

#: Default cell types (PBMC) and their shares, close to those of healthy-donor PBMC.
DEFAULT_PBMC_PROPORTIONS: dict[str, float] = {
    "CD4 naive T cell": 0.30,
    "CD8 T cell": 0.15,
    "NK cell": 0.10,
    "B cell": 0.12,
    "classical monocyte": 0.20,
    "non-classical monocyte": 0.06,
    "cDC": 0.04,
    "pDC": 0.03,
}

#: The continuous lineage simulated with ``trajectory=True``: start type -> end type.
LINEAGE: tuple[str, str] = ("HSPC", "erythroid")

#: The 13 protein-coding mitochondrial genes.
MITO = {
    "human": tuple(
        "MT-ND1 MT-ND2 MT-CO1 MT-CO2 MT-ATP8 MT-ATP6 MT-CO3 MT-ND3 MT-ND4L MT-ND4 MT-ND5 "
        "MT-ND6 MT-CYB".split()
    ),
    "mouse": tuple(
        "mt-Nd1 mt-Nd2 mt-Co1 mt-Co2 mt-Atp8 mt-Atp6 mt-Co3 mt-Nd3 mt-Nd4l mt-Nd4 mt-Nd5 "
        "mt-Nd6 mt-Cytb".split()
    ),
}

_RIBO_HUMAN = (
    "RPL3 RPL4 RPL5 RPL6 RPL7 RPL7A RPL8 RPL9 RPL10 RPL10A RPL11 RPL12 RPL13 RPL13A RPL14 "
    "RPL15 RPL18 RPL18A RPL19 RPL21 RPL23 RPL23A RPL26 RPL27A RPL28 RPL29 RPL30 RPL32 RPL34 "
    "RPL35A RPL37 RPL41 RPS2 RPS3 RPS3A RPS4X RPS5 RPS6 RPS8 RPS12 RPS13 RPS14 RPS15A RPS18 "
    "RPS19 RPS23 RPS24 RPS25 RPS27 RPS27A RPS29"
).split()
# Mouse symbols are the title-cased human ones, except where MGI renamed the gene.
_RIBO_MOUSE_RENAMED = {"RPS3A": "Rps3a1"}
#: Cytosolic ribosomal protein genes.
RIBO = {
    "human": tuple(_RIBO_HUMAN),
    "mouse": tuple(_RIBO_MOUSE_RENAMED.get(g, g[0] + g[1:].lower()) for g in _RIBO_HUMAN),
}

#: Haemoglobin genes flagged ``var['hb']`` (all are also erythroid markers).
HemoglobinGenes = {"human": ("HBA1", "HBA2", "HBB"), "mouse": ("Hba-a1", "Hba-a2", "Hbb-bs")}

#: Highly expressed housekeeping genes: name -> share of a cell's counts at baseline.
HOUSEKEEPING = {
    "human": {
        "MALAT1": 0.03, "EEF1A1": 0.015, "TMSB4X": 0.012, "ACTB": 0.008, "B2M": 0.008,
        "FTL": 0.006, "FTH1": 0.006, "TPT1": 0.005, "GAPDH": 0.004, "UBC": 0.002,
    },
    "mouse": {
        "Malat1": 0.03, "Eef1a1": 0.015, "Tmsb4x": 0.012, "Actb": 0.008, "B2m": 0.008,
        "Ftl1": 0.006, "Fth1": 0.006, "Tpt1": 0.005, "Gapdh": 0.004, "Ubc": 0.002,
    },
}  # fmt: skip

_BY_NAME = {ct.name.lower(): ct for ct in CATALOGUE}


def lookup_cell_type(name: str) -> CellType:
    """The catalogue entry named ``name`` (case-insensitive).

    Raises
    ------
    InvalidParameterError
        If no catalogue type has that name; the message lists the known names.
    """
    try:
        return _BY_NAME[str(name).strip().lower()]
    except KeyError:
        known = ", ".join(repr(ct.name) for ct in CATALOGUE)
        raise InvalidParameterError(
            f"cell_types: unknown cell type {name!r}; known types are {known}",
            remedy="pick names from scagent.data.simulator_cell_types()",
        ) from None


def simulator_cell_types(species: Literal["human", "mouse"] = "human") -> pd.DataFrame:
    """The simulator's cell-type catalogue, the ground truth for annotation benchmarks.

    Parameters
    ----------
    species
        ``"human"`` (upper-case HGNC symbols) or ``"mouse"`` (MGI symbols).

    Returns
    -------
    One row per type with columns ``cell_type``, ``cell_ontology_id`` and ``markers``
    (a list of gene symbols), in catalogue order.
    """
    if species not in ("human", "mouse"):
        raise InvalidParameterError(
            f"species: must be 'human' or 'mouse', got {species!r}",
        )
    return pd.DataFrame(
        {
            "cell_type": [ct.name for ct in CATALOGUE],
            "cell_ontology_id": [ct.cell_ontology_id for ct in CATALOGUE],
            "markers": [list(ct.markers(species)) for ct in CATALOGUE],
        }
    )
