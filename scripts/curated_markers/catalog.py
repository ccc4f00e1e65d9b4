"""Hand-curated cell-type marker catalog that build_curated_table.py expands into markers_curated.tsv.

The catalog is a small text format, chosen so a curator can read and review one
cell type per line:

    == <species> <tissue> ref=<REFKEY>        a block: species, tissue, default reference
    << <template>                             include a template's rows in this block
    name | CL:id | POS ... ; POS ... | NEG ... | REFKEY(optional)

Positive genes before ``;`` are the defining markers (weight 1.0), genes after it
are supporting markers (weight 0.7); negative genes get weight 0.8. A template is
declared with ``== template <name> ref=<REFKEY>`` and may be included into any
block of the same species.
"""

from __future__ import annotations

#: Reference keys -> the PMID or DOI of a paper or atlas that reports the markers.
REFERENCES: dict[str, str] = {
    "TS": "doi:10.1126/science.abl4896",  # Tabula Sapiens 2022
    "HAO": "PMID:34062119",  # Hao et al. 2021 Cell, Azimuth PBMC CITE-seq
    "STUART": "doi:10.1016/j.cell.2019.05.031",  # Stuart et al. 2019, bone marrow CITE-seq
    "HAY": "doi:10.1016/j.exphem.2018.09.004",  # Hay et al. 2018, HCA bone marrow
    "GRANJA": "doi:10.1038/s41587-019-0332-7",  # Granja et al. 2019, bone marrow / PBMC
    "ZHENG": "PMID:28091601",  # Zheng et al. 2017, 10x PBMC
    "VILLANI": "PMID:28428369",  # Villani et al. 2017, blood DCs and monocytes
    "CONDE": "doi:10.1126/science.abl5197",  # Dominguez Conde et al. 2022, cross-tissue immune
    "KING": "doi:10.1126/sciimmunol.abe6291",  # King et al. 2021, tonsil B cell maturation
    "BJORKLUND": "doi:10.1038/ni.3368",  # Bjorklund et al. 2016, human ILCs
    "MAIER": "doi:10.1038/s41586-020-2134-y",  # Maier et al. 2020, mregDC
    "PARK_THYMUS": "doi:10.1126/science.aay3224",  # Park et al. 2020, human thymus
    "TRAVAGLINI": "doi:10.1038/s41586-020-2922-4",  # Travaglini et al. 2020, lung
    "MONTORO": "doi:10.1038/s41586-018-0393-7",  # Montoro et al. 2018, airway ionocyte
    "GILLICH": "doi:10.1038/s41586-020-2822-7",  # Gillich et al. 2020, lung capillaries
    "STEWART": "doi:10.1126/science.aat5031",  # Stewart et al. 2019, kidney
    "LAKE": "doi:10.1038/s41586-023-05769-3",  # Lake et al. 2023, kidney atlas
    "PARK_KIDNEY": "doi:10.1126/science.aar2131",  # Park et al. 2018, mouse kidney
    "LITVINUKOVA": "doi:10.1038/s41586-020-2797-4",  # Litvinukova et al. 2020, heart
    "BARON": "PMID:27667365",  # Baron et al. 2016, human and mouse pancreas
    "MURARO": "doi:10.1016/j.cels.2016.09.002",  # Muraro et al. 2016, pancreas
    "SEGERSTOLPE": "doi:10.1016/j.cmet.2016.08.020",  # Segerstolpe et al. 2016, pancreas
    "HODGE": "doi:10.1038/s41586-019-1506-7",  # Hodge et al. 2019, human cortex
    "BAKKEN": "doi:10.1038/s41586-021-03465-8",  # Bakken et al. 2021, motor cortex
    "TASIC": "doi:10.1038/s41586-018-0654-5",  # Tasic et al. 2018, mouse cortex
    "ZEISEL": "doi:10.1016/j.cell.2018.06.021",  # Zeisel et al. 2018, mouse nervous system
    "SILETTI": "doi:10.1126/science.add7046",  # Siletti et al. 2023, adult human brain
    "HAMMOND": "doi:10.1016/j.immuni.2018.11.004",  # Hammond et al. 2019, microglia
    "MACPARLAND": "PMID:30348985",  # MacParland et al. 2018, liver
    "AIZARANI": "doi:10.1038/s41586-019-1373-2",  # Aizarani et al. 2019, liver
    "HALPERN": "doi:10.1038/nature21065",  # Halpern et al. 2017, liver zonation
    "GUILLIAMS": "doi:10.1016/j.cell.2021.12.018",  # Guilliams et al. 2022, liver macrophages
    "SMILLIE": "PMID:31348891",  # Smillie et al. 2019, colon
    "KINCHEN": "doi:10.1016/j.cell.2018.08.067",  # Kinchen et al. 2018, colon stroma
    "ELMENTAITE": "doi:10.1038/s41586-021-03852-1",  # Elmentaite et al. 2021, gut
    "HABER": "doi:10.1038/nature24489",  # Haber et al. 2017, mouse intestinal epithelium
    "HAN_HCL": "doi:10.1038/s41586-020-2157-4",  # Han et al. 2020, Human Cell Landscape
    "HAN_MCA": "doi:10.1016/j.cell.2018.02.001",  # Han et al. 2018, Mouse Cell Atlas
    "TM": "doi:10.1038/s41586-018-0590-4",  # Tabula Muris 2018
    "CHENG": "doi:10.1016/j.celrep.2018.09.006",  # Cheng et al. 2018, epidermis
    "MENON": "doi:10.1038/s41467-019-12780-8",  # Menon et al. 2019, retina
    "LUKOWSKI": "doi:10.15252/embj.2018100811",  # Lukowski et al. 2019, retina
    "MACOSKO": "doi:10.1016/j.cell.2015.05.002",  # Macosko et al. 2015, mouse retina
    "SHEKHAR": "doi:10.1016/j.cell.2016.07.054",  # Shekhar et al. 2016, retinal bipolar cells
    "GUO": "PMID:30315278",  # Guo et al. 2018, adult human testis
    "HENRY": "doi:10.1016/j.celrep.2018.11.086",  # Henry et al. 2018, prostate
    "KUMAR": "doi:10.1038/s41586-023-06252-9",  # Kumar et al. 2023, breast atlas
    "WAGNER": "doi:10.1038/s41467-020-14936-3",  # Wagner et al. 2020, ovarian cortex
    "VENTO": "doi:10.1038/s41586-018-0698-6",  # Vento-Tormo et al. 2018, maternal-fetal interface
    "CAO": "doi:10.1126/science.aba7721",  # Cao et al. 2020, human fetal gene expression atlas
    "POPESCU": "doi:10.1038/s41586-019-1652-y",  # Popescu et al. 2019, fetal liver
    "EMONT": "doi:10.1038/s41586-022-04518-2",  # Emont et al. 2022, white adipose tissue
    "ERASLAN": "doi:10.1126/science.abl4290",  # Eraslan et al. 2022, GTEx snRNA-seq
    "NESTOROWA": "doi:10.1182/blood-2016-05-716480",  # Nestorowa et al. 2016, mouse HSPC
    "PAUL": "doi:10.1016/j.cell.2015.11.013",  # Paul et al. 2015, mouse myeloid progenitors
    "IMMGEN": "doi:10.1038/ni1008-1091",  # Heng et al. 2008, Immunological Genome Project
}

#: Tissue common name -> UBERON id ('' where no UBERON term fits).
TISSUES: dict[str, str] = {
    "blood": "UBERON:0000178",
    "bone marrow": "UBERON:0002371",
    "lymph node": "UBERON:0000029",
    "tonsil": "UBERON:0002372",
    "spleen": "UBERON:0002106",
    "thymus": "UBERON:0002370",
    "brain": "UBERON:0000955",
    "cerebellum": "UBERON:0002037",
    "retina": "UBERON:0000966",
    "lung": "UBERON:0002048",
    "airway": "UBERON:0001005",
    "liver": "UBERON:0002107",
    "kidney": "UBERON:0002113",
    "pancreas": "UBERON:0001264",
    "stomach": "UBERON:0000945",
    "small intestine": "UBERON:0002108",
    "colon": "UBERON:0001155",
    "skin": "UBERON:0002097",
    "heart": "UBERON:0000948",
    "skeletal muscle": "UBERON:0001134",
    "adipose": "UBERON:0001013",
    "breast": "UBERON:0000310",
    "prostate": "UBERON:0002367",
    "testis": "UBERON:0000473",
    "ovary": "UBERON:0000992",
    "uterus": "UBERON:0000995",
    "bladder": "UBERON:0001255",
    "vasculature": "UBERON:0002049",
    "stroma": "UBERON:0003891",
    "fetal": "UBERON:0000922",
    "placenta": "UBERON:0001987",
    "adrenal gland": "UBERON:0002369",
}

HUMAN = """
== template tissue_immune ref=TS
T cell | CL:0000084 | CD3E CD3D CD2 TRAC ; CD3G IL7R CD247 | MS4A1 CD79A LYZ
CD4-positive T cell | CL:0000624 | CD3E CD4 IL7R CD40LG ; TRAC LTB MAL | CD8A CD8B NKG7
CD8-positive T cell | CL:0000625 | CD3E CD8A CD8B ; CCL5 GZMK NKG7 CD3D | CD4 CD40LG
NK cell | CL:0000623 | NCAM1 KLRF1 NCR1 GNLY NKG7 KLRD1 ; PRF1 GZMB FCGR3A | CD3E CD3D
B cell | CL:0000236 | MS4A1 CD79A CD19 PAX5 BANK1 ; CD79B CD22 FCRL1 | CD3E
plasma cell | CL:0000786 | SDC1 JCHAIN MZB1 TNFRSF17 PRDM1 XBP1 ; IGHG1 IGKC IGHA1 DERL3 | MS4A1 CD3E
monocyte | CL:0000576 | CD14 LYZ FCN1 VCAN S100A8 ; S100A9 CSF1R FCGR3A | CD3E MS4A1 C1QA
macrophage | CL:0000235 | CD68 CD163 C1QA C1QB C1QC MRC1 ; MSR1 APOE MS4A7 | CD3E MS4A1
dendritic cell | CL:0000451 | CD1C FCER1A CLEC10A HLA-DQA1 ; CLEC9A ITGAX FLT3 LAMP3 | CD14 CD3E
plasmacytoid dendritic cell | CL:0000784 | LILRA4 CLEC4C IL3RA TCF4 IRF7 ; GZMB JCHAIN PLD4 SERPINF1 | ITGAX CD14 CD3E
mast cell | CL:0000097 | TPSAB1 TPSB2 CPA3 KIT MS4A2 HDC ; HPGDS GATA2 | CD3E CD14

== template tissue_stroma ref=TS
endothelial cell | CL:0000115 | PECAM1 VWF CDH5 CLDN5 ; EMCN KDR FLT1 TIE1 | PTPRC
endothelial cell of lymphatic vessel | CL:0002138 | PROX1 LYVE1 CCL21 PDPN TFF3 ; FLT4 MMRN1 RELN | PTPRC
fibroblast | CL:0000057 | DCN LUM COL1A1 COL1A2 PDGFRA ; COL3A1 FBLN1 MFAP5 | PECAM1 PTPRC
pericyte | CL:0000669 | RGS5 PDGFRB KCNJ8 HIGD1B ; NOTCH3 ABCC9 COX4I2 | PECAM1 MYH11
smooth muscle cell | CL:0000192 | ACTA2 MYH11 DES CNN1 ; TAGLN ACTG2 LMOD1 | PECAM1 PTPRC
Schwann cell | CL:0002573 | MPZ S100B PLP1 SOX10 ; CDH19 NGFR PMP22 SCN7A | PTPRC

== template blood_lymphocytes ref=HAO
CD4 naive T cell | CL:0000895 | CCR7 SELL LEF1 TCF7 CD4 ; MAL NOSIP LRRN3 FHIT | CD8A CD8B GZMK NKG7
CD4 central memory T cell | CL:0000904 | CD4 IL7R CCR7 AQP3 CD28 ; ITGB1 LTB CD40LG TNFRSF4 | CD8A GZMB NKG7
CD4 effector memory T cell | CL:0000905 | CD4 IL7R GZMK CCL5 KLRB1 ; ITGB1 ANXA1 S100A4 CCR6 | CCR7 SELL CD8A
regulatory T cell | CL:0000815 | FOXP3 IL2RA CTLA4 IKZF2 RTKN2 ; TIGIT FANK1 DUSP4 TNFRSF18 | IL7R CD8A
CD8 naive T cell | CL:0000900 | CD8A CD8B CCR7 LEF1 SELL ; TCF7 NELL2 LRRN3 | CD4 GZMK GZMB
CD8 central memory T cell | CL:0000907 | CD8A CD8B CCR7 IL7R CD27 ; SELL CD28 GZMK | CD4 GZMB GNLY
CD8 effector memory T cell | CL:0000913 | CD8A CD8B GZMK CCL5 ; CST7 KLRD1 CXCR3 EOMES | CCR7 SELL CD4
effector CD8 T cell | CL:0001050 | CD8A GZMB PRF1 GNLY NKG7 ; GZMH KLRD1 CX3CR1 | CCR7 CD4
mucosal-associated invariant T cell | CL:0000940 | SLC4A10 TRAV1-2 KLRB1 ZBTB16 RORC ; NCR3 IL18RAP CCR6 ME1 | CD4
gamma-delta T cell | CL:0000798 | TRDC TRGC1 TRGC2 TRDV2 TRGV9 ; KLRC1 KLRD1 | CD4 CD8B
CD56bright NK cell | CL:0000938 | NCAM1 XCL1 GZMK SELL KLRC1 ; XCL2 TCF7 GPR183 IL7R | FCGR3A CD3E
CD56dim NK cell | CL:0000939 | FCGR3A GNLY NKG7 PRF1 KLRF1 ; FGFBP2 GZMB SPON2 CX3CR1 | CD3E CD3D
naive B cell | CL:0000788 | MS4A1 IGHD TCL1A FCER2 IL4R ; IGHM CD79A BACH2 YBX3 | CD27 CD3E
memory B cell | CL:0000787 | MS4A1 CD27 TNFRSF13B AIM2 ; IGHA1 IGHG1 CD80 BANK1 | IGHD TCL1A FCER2 CD3E
plasma cell | CL:0000786 | SDC1 JCHAIN MZB1 TNFRSF17 PRDM1 XBP1 ; IGHG1 IGKC IGHA1 DERL3 | MS4A1 PAX5 MKI67
plasmablast | CL:0000980 | MZB1 JCHAIN TNFRSF17 PRDM1 XBP1 ; MKI67 IGHG1 IGHA1 TXNDC5 | MS4A1 CD3E

== template blood_myeloid ref=HAO
CD14 monocyte | CL:0001054 | CD14 LYZ S100A8 S100A9 VCAN FCN1 ; CSF3R S100A12 CD36 | FCGR3A CD3E MS4A1
CD16 monocyte | CL:0000875 | FCGR3A MS4A7 CDKN1C LST1 ; HES4 RHOC CX3CR1 IFITM2 | CD14 S100A8 CD3E
cDC1 | CL:0002394 | CLEC9A XCR1 THBD BATF3 IRF8 ; IDO1 CADM1 DNASE1L3 WDFY4 | CD14 CD1C | VILLANI
cDC2 | CL:0002399 | CD1C FCER1A CLEC10A HLA-DQA1 ; CD1E ITGAX IRF4 CLEC4A | CLEC9A XCR1 CD3E | VILLANI
plasmacytoid dendritic cell | CL:0000784 | LILRA4 CLEC4C IL3RA TCF4 IRF7 ; GZMB JCHAIN PLD4 SERPINF1 ITM2C | ITGAX CD14 CD3E | VILLANI

== human blood ref=HAO
<< blood_lymphocytes
<< blood_myeloid
CD4 cytotoxic T cell | CL:0000934 | CD4 GZMH GNLY PRF1 NKG7 ; GZMB CCL5 CST7 ITGB1 | CD8A CD8B CCR7
cycling CD4 T cell | CL:4033075 | CD4 MKI67 TOP2A TYMS ; CD3E TRAC NUSAP1 | CD8A CD8B
T follicular helper cell | CL:0002038 | CD4 CXCR5 PDCD1 ICOS ; CD200 MAF TOX2 SH2D1A | CD8A FOXP3 | CONDE
T-helper 1 cell | CL:0000545 | CD4 TBX21 IFNG CXCR3 ; CCR5 IL12RB2 GZMK | GATA3 RORC IL4 | CONDE
T-helper 2 cell | CL:0000546 | CD4 GATA3 PTGDR2 IL4 IL13 ; IL5 CCR4 IL17RB HPGDS | TBX21 IFNG | CONDE
T-helper 17 cell | CL:0000899 | CD4 RORC IL17A IL23R CCR6 ; IL17F KLRB1 IL22 CCL20 | TBX21 IFNG | CONDE
naive regulatory T cell | CL:0002677 | FOXP3 IL2RA CCR7 SELL ; IKZF2 LEF1 TCF7 | IL7R CD8A HLA-DRA
memory regulatory T cell | CL:0002678 | FOXP3 IL2RA CTLA4 HLA-DRA ; TIGIT CCR4 ICOS TNFRSF4 | IL7R CD8A CCR7
CD8 TEMRA cell | CL:0001062 | CD8A GZMB GNLY FGFBP2 CX3CR1 ; KLRG1 B3GAT1 PRF1 ZEB2 | CCR7 CD28 CD27
cycling CD8 T cell | CL:4033074 | CD8A MKI67 TOP2A TYMS ; CD8B CD3E NUSAP1 | CD4
cycling T cell | CL:4033069 | MKI67 TOP2A TYMS CD3E ; NUSAP1 CENPF TRAC | MS4A1
NK T cell | CL:0000814 | CD3E ZBTB16 TRAV10 TRBV25-1 KLRB1 ; NKG7 KLRD1 GZMK | MS4A1
double-negative T cell | CL:0002489 | CD3E CD3D TRAC ; MYB PTPN3 NUCB2 GZMA | CD4 CD8A CD8B
innate lymphoid cell | CL:0001065 | KIT IL7R KLRB1 TNFRSF4 IL1R1 ; TNFRSF18 PTGDR2 RORC | CD3E CD3D FCGR3A | BJORKLUND
NK cell | CL:0000623 | NCAM1 KLRF1 NCR1 GNLY NKG7 KLRD1 ; PRF1 GZMB TYROBP | CD3E CD3D MS4A1
cycling NK cell | CL:4033071 | MKI67 TOP2A KLRF1 NKG7 ; GNLY TYMS NCR1 | CD3E
intermediate B cell | CL:0000818 | MS4A1 TNFRSF13B IGHM IGHD CD79A ; BANK1 FCRL1 FCRL2 CD24 | CD3E
intermediate monocyte | CL:0002393 | CD14 FCGR3A HLA-DRA CD74 ; HLA-DPB1 CPVL CSF1R | CD3E MS4A1
AXL+ dendritic cell | CL:0017009 | AXL SIGLEC6 PPP1R14A CD22 ; LILRA4 IL3RA DAB2 | CD14 CD3E | VILLANI
platelet | CL:0000233 | PPBP PF4 GP9 ITGA2B ; GNG11 TUBB1 NRGN CLU |
erythrocyte | CL:0000232 | HBB HBA1 HBA2 ALAS2 ; CA1 SLC4A1 GYPA | PTPRC
hematopoietic stem and progenitor cell | CL:0008001 | CD34 SPINK2 PRSS57 ; SOX4 CYTL1 EGFL7 MEIS1 | CD3E LYZ
neutrophil | CL:0000775 | CSF3R FCGR3B CXCR2 S100A8 S100A9 ; CMTM2 PROK2 FPR1 MNDA | CD14 HLA-DRA | TS
eosinophil | CL:0000771 | CLC IL5RA CCR3 SIGLEC8 PRG2 EPX ; ALOX15 RNASE2 | CD14 CD3E | TS
basophil | CL:0000767 | HDC GATA2 MS4A2 ENPP3 FCER1A CCR3 ; CLC IL3RA CPA3 | KIT CD3E | TS

== human bone marrow ref=STUART
<< blood_lymphocytes
<< blood_myeloid
hematopoietic stem cell | CL:0000037 | CD34 CRHBP AVP HLF MECOM ; PROM1 SPINK2 MLLT3 | CD38 MPO GATA1
hematopoietic multipotent progenitor cell | CL:0000837 | CD34 SPINK2 PRSS57 MLLT3 ; HOPX FLT3 CD52 | MPO GATA1 | HAY
lymphoid-primed multipotent progenitor | CL:0000936 | CD34 FLT3 SPINK2 SATB1 ; LSP1 CD52 PROM1 MEF2C | GATA1 MPO | GRANJA
common lymphoid progenitor | CL:0000051 | CD34 DNTT MME CD7 ; FLT3 LTB SPINK2 | MPO GATA1 | GRANJA
common myeloid progenitor | CL:0000049 | CD34 KIT GATA2 CD38 ; MPO FLT3 CSF3R | DNTT | HAY
granulocyte monocyte progenitor | CL:0000557 | CD34 MPO ELANE AZU1 PRTN3 ; CTSG CEBPA LYZ CSF3R | GATA1 HBB
megakaryocyte-erythroid progenitor | CL:0000050 | CD34 GATA1 TAL1 KLF1 ; CNRIP1 CA1 ITGA2B PKLR | MPO
megakaryocyte progenitor cell | CL:0000553 | ITGA2B PF4 GP9 VWF ; PBX1 MPL GP1BA CD34 | MPO HBB
megakaryocyte | CL:0000556 | ITGA2B GP9 PF4 PPBP GP1BB ; VWF MPL TUBB1 ITGB3 | PTPRC
erythroid progenitor cell | CL:0000038 | GATA1 KLF1 TFRC CD36 MYB ; CNRIP1 APOC1 KIT | MPO
proerythroblast | CL:0000547 | TFRC GATA1 KLF1 CD36 ; CA1 HBD APOC1 | MPO PTPRC | HAY
basophilic erythroblast | CL:0000549 | GYPA TFRC HBB KLF1 ; CA1 AHSP HBD TMEM14C | PTPRC | HAY
polychromatophilic erythroblast | CL:0000550 | HBB HBA1 GYPA ALAS2 AHSP ; SLC4A1 HEMGN CA1 | PTPRC | HAY
orthochromatic erythroblast | CL:0000552 | HBB HBA1 ALAS2 SLC4A1 GYPA ; SNCA HBD BPGM | PTPRC TFRC | HAY
erythroblast | CL:0000765 | HBB HBA1 GYPA ALAS2 ; CA1 HBD AHSP SLC4A1 TFRC | PTPRC
basophil mast progenitor cell | CL:0002028 | CLC HDC MS4A2 GATA2 ; CPA3 TPSAB1 IL5RA KIT | MPO | HAY
promyelocyte | CL:0000836 | MPO ELANE AZU1 PRTN3 CTSG ; DEFA4 MS4A3 CEACAM8 | CD34 HBB | HAY
myelocyte | CL:0002193 | LTF CAMP LCN2 MMP8 CEACAM8 ; CRISP3 OLFM4 DEFA4 | CD34 MPO | HAY
neutrophilic metamyelocyte | CL:0000582 | MMP9 LTF CAMP MMP8 ; S100A8 S100A9 CEACAM8 | CD34 MPO | HAY
neutrophil | CL:0000775 | CSF3R FCGR3B CXCR2 S100A8 S100A9 ; CMTM2 PROK2 FPR1 MNDA | CD14 HLA-DRA | TS
eosinophil | CL:0000771 | CLC IL5RA CCR3 SIGLEC8 PRG2 EPX ; ALOX15 RNASE2 | CD14 | TS
pro-B cell | CL:0000826 | DNTT VPREB1 IGLL1 CD34 RAG1 ; CD79A CD19 EBF1 CD99 | MS4A1 CD3E
pre-B cell | CL:0000817 | CD19 VPREB3 MME RAG1 RAG2 ; CD24 CD79B SOX4 IGLL1 | MS4A1 CD34
transitional B cell | CL:0000818 | MS4A1 MME CD38 VPREB3 IGHM ; CD24 TCL1A SOX4 | CD27 CD34
bone marrow macrophage | CL:0002476 | CD163 C1QA C1QB VCAM1 ; HMOX1 SLC40A1 MARCO APOE | CD3E
stromal cell of bone marrow | CL:0010001 | CXCL12 LEPR VCAM1 KITLG ; ANGPT1 EBF3 COL1A1 | PTPRC
osteoblast | CL:0000062 | RUNX2 SP7 BGLAP SPP1 COL1A1 ; IBSP ALPL | PTPRC
NK cell | CL:0000623 | NCAM1 KLRF1 NCR1 GNLY NKG7 KLRD1 ; PRF1 GZMB TYROBP | CD3E CD3D MS4A1

== template lymphoid_organ ref=CONDE
T follicular helper cell | CL:0002038 | CXCR5 PDCD1 ICOS BCL6 CXCL13 ; TOX2 MAF SH2D1A IL21 CD200 | CD8A FOXP3
germinal center B cell | CL:0000844 | BCL6 AICDA MME RGS13 ; S1PR2 GCSAM LMO2 SERPINA9 | IGHD | KING
follicular dendritic cell | CL:0000442 | FDCSP CR2 CXCL13 FCER2 CLU ; VCAM1 MFGE8 PDPN | PTPRC
fibroblastic reticular cell | CL:0009101 | CCL19 CCL21 PDPN ; LUM COL1A1 CH25H IL7 | PTPRC
mregDC | CL:0000841 | CCR7 LAMP3 FSCN1 CCL19 CCL22 IL4I1 ; CD274 CD40 BIRC3 MARCKSL1 | CD14 | MAIER
group 3 innate lymphoid cell | CL:0001071 | RORC KIT IL23R IL7R NCR2 ; IL22 AHR IL4I1 | CD3E CD3D | BJORKLUND

== human tonsil ref=KING
<< blood_lymphocytes
<< lymphoid_organ
dark zone germinal center B cell | CL:0009112 | AICDA MKI67 CXCR4 TOP2A ; BCL6 RGS13 AURKB SUGCT | IGHD CD83
light zone germinal center B cell | CL:0009111 | BCL6 CD83 LMO2 CD86 ; BCL2A1 NFKBIA SERPINA9 MYC | IGHD MKI67
cycling B cell | CL:4033068 | MKI67 TOP2A MS4A1 CD79A ; TYMS AICDA NUSAP1 | CD3E
squamous epithelial cell | CL:0000076 | KRT5 KRT13 KRT4 ; SPRR3 KRT6A S100A2 | PTPRC | TS
tonsillar macrophage | CL:0000869 | CD68 C1QA APOC1 MERTK ; LGMN CD163 CD36 | CD3E
cDC1 | CL:0002394 | CLEC9A XCR1 THBD BATF3 IRF8 ; IDO1 CADM1 DNASE1L3 WDFY4 | CD14 CD1C | VILLANI
cDC2 | CL:0002399 | CD1C FCER1A CLEC10A HLA-DQA1 ; CD1E ITGAX IRF4 CLEC4A | CLEC9A XCR1 CD3E | VILLANI
plasmacytoid dendritic cell | CL:0000784 | LILRA4 CLEC4C IL3RA TCF4 IRF7 ; GZMB JCHAIN PLD4 SERPINF1 | ITGAX CD14 CD3E
mast cell | CL:0000097 | TPSAB1 TPSB2 CPA3 KIT MS4A2 HDC ; HPGDS GATA2 | CD3E CD14 | TS

== human lymph node ref=CONDE
<< blood_lymphocytes
<< lymphoid_organ
classical monocyte | CL:0000860 | CD14 LYZ S100A8 S100A9 VCAN FCN1 ; CSF3R S100A12 CD36 | FCGR3A CD3E MS4A1
lymph node macrophage | CL:0000868 | SIGLEC1 CD68 C1QA MARCO ; CD163 VSIG4 CD5L | CD3E
endothelial cell of high endothelial venule | CL:0002652 | CHST4 FUT7 ACKR1 ; SELP MADCAM1 PLVAP | PTPRC | TS
endothelial cell of lymphatic vessel | CL:0002138 | PROX1 LYVE1 CCL21 PDPN TFF3 ; FLT4 MMRN1 RELN | PTPRC | TS
cDC1 | CL:0002394 | CLEC9A XCR1 THBD BATF3 IRF8 ; IDO1 CADM1 DNASE1L3 WDFY4 | CD14 CD1C
cDC2 | CL:0002399 | CD1C FCER1A CLEC10A HLA-DQA1 ; CD1E ITGAX IRF4 CLEC4A | CLEC9A XCR1 CD3E
plasmacytoid dendritic cell | CL:0000784 | LILRA4 CLEC4C IL3RA TCF4 IRF7 ; GZMB JCHAIN PLD4 SERPINF1 | ITGAX CD14 CD3E

== human spleen ref=TS
<< blood_lymphocytes
marginal zone B cell | CL:0000845 | MS4A1 CR2 CD1C IGHM ; CD27 FCRL3 | IGHD CD3E
follicular B cell | CL:0000843 | MS4A1 FCER2 IGHD CR2 ; SELL CD22 | CD27 CD3E
splenic red pulp macrophage | CL:0000874 | CD163 HMOX1 SPIC VCAM1 ; SLC40A1 C1QA | CD3E
classical monocyte | CL:0000860 | CD14 LYZ S100A8 S100A9 VCAN FCN1 ; CSF3R S100A12 CD36 | FCGR3A CD3E MS4A1
NK cell | CL:0000623 | NCAM1 KLRF1 NCR1 GNLY NKG7 KLRD1 ; PRF1 GZMB TYROBP | CD3E CD3D MS4A1

== human thymus ref=PARK_THYMUS
double negative thymocyte | CL:0002489 | CD7 HES1 IGLL1 CD34 ; CD3E RAG1 PTCRA | CD4 CD8A CD8B
double-positive thymocyte | CL:0000809 | CD4 CD8A CD8B RAG1 RAG2 CD1A ; CD1B CD1E RORC AQP3 | MS4A1
thymocyte | CL:0000893 | CD1A CD1E PTCRA RAG1 ; SMPD3 TOX CD3E | MS4A1 LYZ
CD4 single-positive thymocyte | CL:0002436 | CD4 CCR7 CD40LG ; TRAC SELL | CD8A CD1A RAG1
CD8 single-positive thymocyte | CL:0002437 | CD8A CD8B CCR7 ; TRAC SELL | CD4 CD1A RAG1
cortical thymic epithelial cell | CL:0002364 | PSMB11 PRSS16 LY75 CCL25 FOXN1 ; CTSV KRT8 | PTPRC
medullary thymic epithelial cell | CL:0002365 | AIRE FEZF2 CLDN4 CCL19 ; KRT14 CD80 CCL21 | PTPRC
epithelial cell of thymus | CL:0002293 | FOXN1 EPCAM KRT5 KRT8 ; PSMB11 CCL25 KRT14 | PTPRC
regulatory T cell | CL:0000815 | FOXP3 IL2RA CTLA4 IKZF2 RTKN2 ; TIGIT FANK1 DUSP4 TNFRSF18 | IL7R CD8A
thymic macrophage | CL:0000866 | CD68 C1QA C1QB MERTK ; CD163 APOE | CD3E

== human lung ref=TRAVAGLINI
<< tissue_immune
pulmonary alveolar type 1 cell | CL:0002062 | AGER RTKN2 CLIC5 EMP2 HOPX ; PDPN CAV1 SPOCK2 GPRC5A | SFTPC PTPRC
pulmonary alveolar type 2 cell | CL:0002063 | SFTPC SFTPB SFTPA1 SFTPA2 LAMP3 ABCA3 ; NAPSA PGC SLC34A2 | AGER PTPRC
club cell | CL:0000158 | SCGB1A1 SCGB3A2 CYP2F1 ; MSMB BPIFA1 CXCL17 | FOXJ1
lung multiciliated epithelial cell | CL:1000271 | FOXJ1 CAPS TPPP3 RSPH1 DNAH5 ; PIFO SNTN DNAI1 CDHR3 | SCGB1A1
basal cell | CL:0000646 | KRT5 TP63 KRT15 NGFR ; S100A2 BCAM KRT17 | FOXJ1
lung goblet cell | CL:1000143 | MUC5AC MUC5B BPIFB1 SCGB3A1 ; SPDEF AGR2 TFF3 | FOXJ1
pulmonary ionocyte | CL:0017000 | FOXI1 CFTR ASCL3 ATP6V1G3 ; BSND ATP6V0D2 CLCNKB | | MONTORO
pulmonary neuroendocrine cell | CL:1000223 | ASCL1 CHGA GRP CALCA ; SCG5 SYP NEUROD1 | PTPRC
serous secreting cell | CL:0000313 | LTF LYZ ZG16B PRB3 ; DMBT1 AZGP1 TCN1 PIP | MUC5AC
lung secretory cell | CL:1000272 | SCGB1A1 SCGB3A1 BPIFB1 ; MUC5B WFDC2 | FOXJ1
tuft cell | CL:0002204 | POU2F3 AVIL IRAG2 SH2D6 ; TRPM5 HCK | PTPRC
alveolar fibroblast | CL:4028004 | ITGA8 NPNT FGFR4 GPC3 ; TCF21 WNT2 LIMCH1 | PTPRC PECAM1
adventitial fibroblast | CL:4028006 | PI16 SFRP2 SERPINF1 ; MFAP5 SCARA5 CD248 | PECAM1
myofibroblast | CL:0000186 | ACTA2 TAGLN POSTN ASPN ; COL1A1 CTHRC1 WIF1 | PECAM1 MYH11
lung pericyte | CL:0009089 | RGS5 PDGFRB HIGD1B COX4I2 ; KCNJ8 NOTCH3 | PECAM1
bronchial smooth muscle cell | CL:0002598 | ACTA2 MYH11 DES CNN1 ; ACTG2 LMOD1 HHIP | PECAM1
vascular associated smooth muscle cell | CL:0000359 | MYH11 ACTA2 CNN1 TAGLN ; NOTCH3 MYOCD LMOD1 | PECAM1
mesothelial cell | CL:0000077 | MSLN UPK3B CALB2 WT1 ; ITLN1 PRG4 LRRN4 KRT19 | PTPRC
aerocyte capillary endothelial cell | CL:4028003 | CA4 EDNRB HPGD APLN SOSTDC1 ; TBX2 IL1RL1 | PTPRC | GILLICH
general capillary endothelial cell | CL:4028002 | GPIHBP1 FCN3 IL7R APLNR ; SLC6A4 BTNL9 PLVAP | PTPRC | GILLICH
pulmonary artery endothelial cell | CL:1001568 | GJA5 HEY1 DKK2 SEMA3G ; EFNB2 BMX FBLN5 | PTPRC
vein endothelial cell | CL:0002543 | ACKR1 NR2F2 SELP VWF ; CPE EMCN | GJA5 PTPRC
endothelial cell of lymphatic vessel | CL:0002138 | PROX1 LYVE1 CCL21 PDPN TFF3 ; FLT4 MMRN1 RELN | PTPRC
alveolar macrophage | CL:0000583 | MARCO FABP4 INHBA MRC1 PPARG ; C1QA MCEMP1 APOC1 | CD3E
lung interstitial macrophage | CL:4033043 | CD163 LYVE1 F13A1 FOLR2 ; C1QA MRC1 STAB1 SELENOP | CD3E MARCO
chondrocyte | CL:0000138 | COL2A1 ACAN SOX9 COMP ; CHAD HAPLN1 MATN3 | PTPRC
Schwann cell | CL:0002573 | MPZ S100B PLP1 SOX10 ; CDH19 NGFR PMP22 SCN7A | PTPRC
neutrophil | CL:0000775 | CSF3R FCGR3B CXCR2 S100A8 S100A9 ; CMTM2 PROK2 FPR1 MNDA | CD14 HLA-DRA
CD14 monocyte | CL:0001054 | CD14 LYZ S100A8 S100A9 VCAN FCN1 ; CSF3R S100A12 CD36 | FCGR3A CD3E MS4A1
CD16 monocyte | CL:0000875 | FCGR3A MS4A7 CDKN1C LST1 ; HES4 RHOC CX3CR1 IFITM2 | CD14 S100A8 CD3E
lung migratory dendritic cell | CL:4033045 | CCR7 LAMP3 FSCN1 CCL19 ; CCL22 IL4I1 CD274 | CD14
platelet | CL:0000233 | PPBP PF4 GP9 ITGA2B ; GNG11 TUBB1 NRGN | PTPRC
cycling alveolar macrophage | CL:4033077 | MKI67 TOP2A MARCO FABP4 ; TYMS INHBA | CD3E

== human airway ref=TRAVAGLINI
basal cell | CL:0000646 | KRT5 TP63 KRT15 NGFR ; S100A2 BCAM KRT17 | FOXJ1
club cell | CL:0000158 | SCGB1A1 SCGB3A2 CYP2F1 ; MSMB BPIFA1 CXCL17 | FOXJ1
multi-ciliated epithelial cell | CL:0005012 | FOXJ1 CAPS TPPP3 RSPH1 DNAH5 ; PIFO SNTN DNAI1 CDHR3 | SCGB1A1
deuterosomal cell | CL:4033044 | DEUP1 FOXN4 CDC20B ; PLK4 CCNO MCIDAS | SCGB1A1
bronchial goblet cell | CL:1000312 | MUC5AC MUC5B BPIFB1 SCGB3A1 ; SPDEF AGR2 TFF3 | FOXJ1
ionocyte | CL:0005006 | FOXI1 CFTR ASCL3 ATP6V1G3 ; BSND ATP6V0D2 CLCNKB | | MONTORO
tuft cell | CL:0002204 | POU2F3 AVIL IRAG2 SH2D6 ; TRPM5 HCK | PTPRC | MONTORO
neuroendocrine cell | CL:0000165 | ASCL1 CHGA GRP CALCA ; SCG5 SYP NEUROD1 | PTPRC
serous secreting cell | CL:0000313 | LTF LYZ ZG16B PRB3 ; DMBT1 AZGP1 TCN1 PIP | MUC5AC
submucosal gland mucous cell | CL:4033037 | MUC5B BPIFB2 FCGBP ; SCGB3A1 TFF1 | MUC5AC FOXJ1
secretory cell | CL:0000151 | SCGB1A1 SCGB3A1 BPIFB1 ; MUC5B WFDC2 | FOXJ1

== human kidney ref=LAKE
<< tissue_immune
podocyte | CL:0000653 | NPHS1 NPHS2 PODXL WT1 PTPRO ; CLIC5 MAFB SYNPO | LRP2
parietal epithelial cell | CL:1000452 | CLDN1 CFH ALDH1A2 PAX8 ; VCAM1 AKAP12 | NPHS1 LRP2
epithelial cell of proximal tubule | CL:0002306 | LRP2 CUBN SLC34A1 HNF4A ; SLC5A12 ALDOB GATM | UMOD | STEWART
proximal convoluted tubule epithelial cell | CL:1000838 | SLC5A2 SLC5A12 SLC34A1 LRP2 ; SLC22A6 SLC13A3 | UMOD
proximal straight tubule epithelial cell | CL:1000839 | LRP2 CUBN SLC7A13 SLC22A7 ; SLC5A8 AGXT2 SLC5A11 | SLC5A2 UMOD
descending thin limb epithelial cell | CL:1001111 | AQP1 CRYAB TACSTD2 SPP1 ; SLC44A5 ID1 | UMOD LRP2
ascending thin limb epithelial cell | CL:1001107 | CLCNKA CLDN10 PROX1 ; BOC SLC44A5 | UMOD AQP1
thick ascending limb epithelial cell | CL:1001106 | SLC12A1 UMOD CLDN16 ; CASR EGF KCNJ1 PTGER3 | LRP2 SLC12A3
macula densa epithelial cell | CL:1000850 | NOS1 PTGS2 PAPPA2 SLC12A1 ; CASR | LRP2
distal convoluted tubule epithelial cell | CL:1000849 | SLC12A3 CALB1 PVALB TRPM6 ; KLHL3 EGF | UMOD LRP2
connecting tubule epithelial cell | CL:1000768 | SLC8A1 CALB1 SCNN1G SCNN1B ; TRPV5 KL | UMOD
renal principal cell | CL:0005009 | AQP2 AQP3 SCNN1G FXYD4 ; GATA3 AVPR2 ELF5 | ATP6V1G3 FOXI1 | STEWART
renal intercalated cell | CL:0005010 | FOXI1 ATP6V1B1 ATP6V0D2 ATP6V1G3 ; SLC4A1 SLC26A4 CA2 | AQP2 | STEWART
renal alpha-intercalated cell | CL:0005011 | SLC4A1 FOXI1 ATP6V1G3 KIT ; ATP6V0D2 SLC26A7 | SLC26A4 AQP2
renal beta-intercalated cell | CL:0002201 | SLC26A4 FOXI1 ATP6V1G3 SLC4A9 ; ATP6V0D2 INSRR | SLC4A1 AQP2
papillary tips cell | CL:1000597 | UPK1A UPK1B TACSTD2 KRT7 ; KRT19 S100P | LRP2
mesangial cell | CL:0000650 | ITGA8 PDGFRB PIEZO2 GATA3 ; POSTN DES | PECAM1
kidney granular cell | CL:0000648 | REN ACTA2 MYH11 PDGFRB ; NOTCH3 | PECAM1
glomerular endothelial cell | CL:0002188 | EHD3 PLAT EMCN PECAM1 ; SOST HECW2 KDR | PTPRC
peritubular capillary endothelial cell | CL:1001033 | PLVAP EMCN PECAM1 KDR ; ACKR1 | EHD3 PTPRC
vasa recta descending limb cell | CL:1001285 | SLC14A1 AQP1 PECAM1 ; ENPP2 SOX17 | PTPRC
kidney interstitial fibroblast | CL:1000692 | DCN LUM PDGFRA C7 ; MEG3 NEGR1 | PECAM1 PTPRC
kidney resident macrophage | CL:1000698 | CD68 C1QA C1QB CD163 ; MRC1 APOE | CD3E
vascular associated smooth muscle cell | CL:0000359 | MYH11 ACTA2 CNN1 TAGLN ; NOTCH3 MYOCD | PECAM1
endothelial cell of lymphatic vessel | CL:0002138 | PROX1 LYVE1 CCL21 PDPN TFF3 ; FLT4 MMRN1 | PTPRC

== human heart ref=LITVINUKOVA
<< tissue_immune
<< tissue_stroma
regular atrial cardiac myocyte | CL:0002129 | NPPA MYL7 MYL4 SLN ; MYH6 KCNJ3 TTN | MYL2 MYL3
ventricular cardiac muscle cell | CL:2000046 | MYL2 MYL3 MYH7 ; FHL2 TNNT2 MB IRX4 | MYL7 NPPA
cardiac muscle cell | CL:0000746 | TNNT2 MYH7 MYH6 ACTC1 TTN RYR2 ; MYBPC3 TNNI3 | PTPRC
fibroblast of cardiac tissue | CL:0002548 | DCN GSN PDGFRA C7 ; ABCA8 SCN7A LUM | PECAM1 TNNT2
cardiac endothelial cell | CL:0010008 | PECAM1 VWF CDH5 ; CA4 RGCC AQP1 FABP4 | PTPRC
capillary endothelial cell | CL:0002144 | CA4 RGCC CD36 AQP1 ; FABP4 PLVAP | PTPRC
endothelial cell of artery | CL:1000413 | GJA5 HEY1 DKK2 SEMA3G ; EFNB2 BMX SOX17 FBLN5 | PTPRC
vein endothelial cell | CL:0002543 | ACKR1 NR2F2 SELP VWF ; CPE EMCN | GJA5 PTPRC
endocardial cell | CL:0002350 | NPR3 SMOC1 PECAM1 ; CDH11 POSTN LEPR | PTPRC
epicardial adipocyte | CL:1000309 | ADIPOQ PLIN1 LEP ; GPAM PLIN4 FABP4 | PTPRC
mesothelial cell of epicardium | CL:0011019 | MSLN UPK3B WT1 ; ITLN1 KRT19 | PTPRC
vascular associated smooth muscle cell | CL:0000359 | MYH11 ACTA2 CNN1 TAGLN ; NOTCH3 MYOCD | PECAM1

== human pancreas ref=BARON
<< tissue_immune
pancreatic A cell | CL:0000171 | GCG ARX IRX2 TTR ; LOXL4 DPP4 GC PCSK2 | INS SST
type B pancreatic cell | CL:0000169 | INS IAPP MAFA NKX6-1 PDX1 ; HADH G6PC2 ADCYAP1 NPTX2 | GCG SST
pancreatic D cell | CL:0000173 | SST HHEX RBP4 LEPR ; BCHE | INS GCG
pancreatic PP cell | CL:0002275 | PPY SERTM1 ETV1 ; CARTPT THSD7A | INS GCG
pancreatic epsilon cell | CL:0005019 | GHRL ACSL1 ; FRZB ASGR1 PHGR1 | INS GCG | SEGERSTOLPE
pancreatic acinar cell | CL:0002064 | PRSS1 CPA1 CELA3A CTRB1 PNLIP ; CPB1 CEL REG1A SPINK1 | KRT19 INS
pancreatic ductal cell | CL:0002079 | KRT19 CFTR SOX9 ; MMP7 KRT7 TFF1 CA2 SPP1 | PRSS1 INS
activated pancreatic stellate cell | CL:0002410 | COL1A1 COL1A2 COL3A1 PDGFRA FN1 ; THBS2 SFRP2 | PTPRC PECAM1
quiescent pancreatic stellate cell | CL:0002410 | RGS5 PDGFRB CSPG4 ; NOTCH3 FABP4 | PTPRC PECAM1
pancreatic islet capillary endothelial cell | CL:4052014 | PLVAP PECAM1 ESM1 ; KDR FLT1 | PTPRC
Schwann cell | CL:0002573 | MPZ S100B PLP1 SOX10 ; CDH19 NGFR PMP22 SCN7A | PTPRC
endothelial cell | CL:0000115 | PECAM1 VWF CDH5 CLDN5 ; EMCN KDR FLT1 | PTPRC

== human brain ref=BAKKEN
L2/3 IT glutamatergic neuron | CL:4023047 | SLC17A7 CUX2 LINC00507 ; COL5A2 RASGRF2 | GAD1 RORB
L5 IT glutamatergic neuron | CL:4023049 | SLC17A7 RORB FILIP1L ; PLCH1 | GAD1 FEZF2
L6 IT glutamatergic neuron | CL:4023050 | SLC17A7 OSR1 SMYD1 ; CUX2 | GAD1
L6 IT Car3 glutamatergic neuron | CL:4030068 | SLC17A7 CA3 THEMIS ; NR4A2 | GAD1
L5 ET glutamatergic neuron | CL:4023041 | SLC17A7 FEZF2 POU3F1 BCL11B ; LRATD2 | GAD1 CUX2
L5/6 NP glutamatergic neuron | CL:4023043 | SLC17A7 FEZF2 TSHZ2 ; NXPH1 CRYM | GAD1
L6 CT glutamatergic neuron | CL:4023042 | SLC17A7 FOXP2 SYT6 ; TLE4 SEMA5A | GAD1
L6b glutamatergic neuron | CL:4023038 | SLC17A7 CCN2 NXPH4 ; TLE4 CPLX3 | GAD1
glutamatergic neuron | CL:0000679 | SLC17A7 SATB2 NRGN ; CAMK2A NEUROD6 SLC17A6 | GAD1 GAD2
GABAergic neuron | CL:0000617 | GAD1 GAD2 SLC32A1 ; DLX1 DLX5 ERBB4 | SLC17A7
lamp5 GABAergic interneuron | CL:4023011 | GAD1 GAD2 LAMP5 NDNF ; ID2 | SST PVALB VIP
sncg GABAergic interneuron | CL:4023015 | GAD1 SNCG CNR1 ; CCK ADARB2 | SST PVALB
VIP GABAergic interneuron | CL:4023016 | GAD1 VIP ADARB2 CALB2 ; CCK CRH | PVALB SST
sst GABAergic interneuron | CL:4023017 | GAD1 GAD2 SST ; NPY CORT | PVALB VIP
sst chodl GABAergic interneuron | CL:4023121 | GAD1 SST CHODL NOS1 ; NPY | PVALB VIP
pvalb GABAergic interneuron | CL:4023018 | GAD1 GAD2 PVALB ; ERBB4 KCNS3 MEPE | SST VIP
pvalb chandelier GABAergic interneuron | CL:4023036 | GAD1 UNC5B PTHLH PVALB ; SCN1A | SST VIP
astrocyte | CL:0000127 | GFAP AQP4 SLC1A2 SLC1A3 ALDH1L1 ; GJA1 SPARCL1 GLUL | SLC17A7 GAD1 | HODGE
oligodendrocyte | CL:0000128 | MBP PLP1 MOG MOBP ; MAG OPALIN ST18 CNP | PDGFRA | HODGE
oligodendrocyte precursor cell | CL:0002453 | PDGFRA CSPG4 OLIG2 ; VCAN PCDH15 SOX10 | MOG MOBP | HODGE
microglial cell | CL:0000129 | P2RY12 CX3CR1 TMEM119 CSF1R ; HEXB SALL1 C1QA | MRC1 LYVE1 | HODGE
perivascular macrophage | CL:0000881 | MRC1 LYVE1 CD163 F13A1 ; SIGLEC1 | P2RY12 TMEM119 | SILETTI
cerebral cortex endothelial cell | CL:1001602 | CLDN5 FLT1 PECAM1 ; SLC2A1 ABCB1 MFSD2A | PTPRC | HODGE
brain pericyte | CL:2000043 | PDGFRB RGS5 KCNJ8 ABCC9 ; HIGD1B NOTCH3 | PECAM1 | HODGE
vascular leptomeningeal cell | CL:4023051 | COL1A2 DCN SLC6A13 LUM ; PTGDS CEMIP | PECAM1
vascular associated smooth muscle cell | CL:0000359 | MYH11 ACTA2 CNN1 TAGLN ; NOTCH3 MYOCD | PECAM1
ependymal cell | CL:0000065 | FOXJ1 TMEM212 RARRES2 ; CFAP126 DYNLRB2 | GFAP | SILETTI
choroid plexus epithelial cell | CL:0000706 | TTR KL FOLR1 CLIC6 ; HTR2C OTX2 | GFAP | SILETTI

== human cerebellum ref=SILETTI
Purkinje cell | CL:0000121 | PCP2 CALB1 CA8 ; ITPR1 GRID2 PCP4 | GABRA6
cerebellar granule cell | CL:0001031 | GABRA6 PAX6 CBLN1 ; NEUROD1 RELN CBLN3 | GAD1 CALB1
unipolar brush cell | CL:4023161 | EOMES CALB2 GRM1 ; SLC17A6 TRPC3 | GAD1
cerebellar inhibitory GABAergic interneuron | CL:4023057 | GAD1 GAD2 PVALB ; SORCS3 LYPD6 | GABRA6
Bergmann glial cell | CL:0000644 | GDF10 SLC1A3 AQP4 ; GFAP FABP7 | GABRA6
astrocyte | CL:0000127 | GFAP AQP4 SLC1A2 SLC1A3 ALDH1L1 ; GJA1 SPARCL1 GLUL | GAD1
oligodendrocyte | CL:0000128 | MBP PLP1 MOG MOBP ; MAG OPALIN ST18 CNP | PDGFRA
oligodendrocyte precursor cell | CL:0002453 | PDGFRA CSPG4 OLIG2 ; VCAN PCDH15 SOX10 | MOG
microglial cell | CL:0000129 | P2RY12 CX3CR1 TMEM119 CSF1R ; HEXB SALL1 C1QA | MRC1

== human retina ref=MENON
rod | CL:0000604 | RHO NRL GNAT1 PDE6A ; SAG CNGA1 | ARR3 OPN1SW
retinal cone cell | CL:0000573 | ARR3 GNAT2 PDE6H ; OPN1LW OPN1MW GUCA1C | RHO NRL
S cone cell | CL:0003050 | OPN1SW ARR3 GNAT2 ; PDE6H | RHO OPN1LW | LUKOWSKI
retinal bipolar neuron | CL:0000748 | VSX2 VSX1 TRPM1 CABP5 ; GRM6 OTX2 | RHO GAD1
rod bipolar cell | CL:0000751 | PRKCA GRM6 TRPM1 CA8 ; VSX2 | RHO | LUKOWSKI
OFF-bipolar cell | CL:0000750 | VSX2 GRIK1 NETO1 ; VSX1 | PRKCA GRM6 | LUKOWSKI
amacrine cell | CL:0000561 | TFAP2A TFAP2B GAD1 PAX6 ; SLC32A1 SLC6A9 C1QL2 | VSX2
retina horizontal cell | CL:0000745 | ONECUT1 ONECUT2 LHX1 ; CALB1 PROX1 | VSX2
retinal ganglion cell | CL:0000740 | POU4F2 POU4F1 RBPMS NEFL ; SNCG ISL1 ELAVL4 | VSX2
Mueller cell | CL:0000636 | RLBP1 GLUL SLC1A3 CRYM ; VIM APOE CLU DKK3 | RHO
retinal pigment epithelial cell | CL:0002586 | RPE65 BEST1 PMEL TYRP1 ; MITF SERPINF1 TTR | RHO | LUKOWSKI
retinal astrocyte | CL:4033015 | GFAP PAX2 S100B ; AQP4 | RLBP1 | LUKOWSKI
microglial cell | CL:0000129 | P2RY12 CX3CR1 TMEM119 CSF1R ; HEXB C1QA | RHO

== human liver ref=MACPARLAND
<< tissue_immune
hepatocyte | CL:0000182 | ALB APOA1 APOC3 TF ; SERPINA1 HP TTR FGB | PTPRC
periportal region hepatocyte | CL:0019026 | CPS1 HAL SDS ASS1 ; ALB PCK1 | CYP2E1 GLUL | AIZARANI
centrilobular region hepatocyte | CL:0019029 | CYP2E1 GLUL CYP1A2 OAT ; CYP3A4 RHBG | CPS1 HAL | AIZARANI
cholangiocyte | CL:1000488 | KRT19 KRT7 EPCAM SOX9 ; CFTR ANXA4 SPP1 | ALB
endothelial cell of hepatic sinusoid | CL:1000398 | CLEC4G CLEC4M CRHBP STAB2 ; FCN3 OIT3 F8 | PTPRC
hepatic stellate cell | CL:0000632 | LRAT RELN COLEC11 HGF ; PDGFRB DCN | PTPRC ALB
hepatic portal fibroblast | CL:0009100 | THY1 ELN COL1A1 ; CD34 FBLN2 | LRAT | AIZARANI
Kupffer cell | CL:0000091 | CD5L MARCO VSIG4 CD163 TIMD4 ; C1QC CLEC4F SLC40A1 | CD3E | GUILLIAMS
inflammatory macrophage | CL:0000863 | LYZ S100A8 S100A9 CD68 ; HLA-DRA VCAN | CD5L MARCO
endothelial cell of artery | CL:1000413 | GJA5 HEY1 DKK2 SEMA3G ; EFNB2 BMX SOX17 FBLN5 | PTPRC
vein endothelial cell | CL:0002543 | ACKR1 NR2F2 SELP VWF ; CPE EMCN | GJA5 PTPRC

== human adipose ref=EMONT
<< tissue_immune
<< tissue_stroma
adipocyte | CL:0000136 | ADIPOQ PLIN1 LEP PLIN4 LIPE ; GPAM PPARG CD36 | PTPRC PECAM1
preadipocyte | CL:0002334 | PDGFRA DCN CD34 CXCL14 ; APOD COL6A3 FBN1 DPP4 | ADIPOQ PTPRC
brown adipocyte | CL:0000449 | UCP1 CIDEA PPARGC1A ; DIO2 CKMT2 ADIPOQ | PTPRC
mesothelial cell | CL:0000077 | MSLN UPK3B CALB2 WT1 ; ITLN1 PRG4 LRRN4 KRT19 | PTPRC
adipose macrophage | CL:0002477 | CD68 LYVE1 CD163 MRC1 ; TREM2 LPL C1QA | CD3E

== human stomach ref=HAN_HCL
parietal cell | CL:0000162 | ATP4A ATP4B CBLIF KCNE2 ; CHGA | PGC MUC5AC
chief cell of stomach | CL:0000155 | PGC LIPF PGA3 PGA4 ; CHIA | ATP4A MUC5AC
foveolar cell of stomach | CL:0002179 | MUC5AC TFF1 GKN1 GKN2 ; TFF2 | ATP4A PGC
mucous neck cell of gastric gland | CL:0002181 | MUC6 TFF2 ; PGC LYZ | MUC5AC
type G enteroendocrine cell | CL:0000508 | GAST CHGA ; CHGB SCG5 | ATP4A
enterochromaffin-like cell | CL:0000504 | HDC CHGA ; CHGB SLC18A2 | ATP4A
stomach enteroendocrine cell | CL:1001517 | CHGA CHGB GHRL SST ; SCG5 NEUROD1 | MUC5AC
<< tissue_immune
<< tissue_stroma

== human small intestine ref=ELMENTAITE
enterocyte | CL:0000584 | FABP2 APOA4 APOA1 RBP2 ; ALPI SI FABP1 VIL1 | MUC2
small intestine goblet cell | CL:1000495 | MUC2 TFF3 SPDEF FCGBP ; CLCA1 ZG16 | FABP2
paneth cell | CL:0000510 | DEFA5 DEFA6 REG3A LYZ ; ITLN2 PLA2G2A | FABP2
intestinal crypt stem cell | CL:0002250 | LGR5 OLFM4 ASCL2 SMOC2 ; SOX9 RGMB | FABP2 MUC2
tuft cell | CL:0002204 | POU2F3 AVIL IRAG2 SH2D6 ; TRPM5 HCK | PTPRC
intestinal enteroendocrine cell | CL:1001516 | CHGA CHGB NEUROD1 ; PYY GCG TPH1 | FABP2
type EC enteroendocrine cell | CL:0000577 | TPH1 CHGA ; CHGB SLC18A1 | FABP2
M cell of gut | CL:0000682 | GP2 SPIB CCL20 ; TNFAIP2 | MUC2
BEST4+ enterocyte | CL:4030026 | BEST4 OTOP2 CA7 ; SPIB GUCA2B | MUC2
transit amplifying cell | CL:0009010 | MKI67 TOP2A OLFM4 ; TYMS | MUC2
intestinal epithelial cell | CL:0002563 | EPCAM CDX2 CDH17 VIL1 ; LGALS4 KRT20 | PTPRC
<< tissue_immune
<< tissue_stroma

== human colon ref=SMILLIE
colonocyte | CL:1000347 | CA1 SLC26A3 AQP8 CEACAM7 ; GUCA2A GUCA2B | MUC2
BEST4+ colonocyte | CL:4047052 | BEST4 OTOP2 CA7 ; SPIB | MUC2
colon goblet cell | CL:0009039 | MUC2 CLCA1 ZG16 TFF3 ; FCGBP SPINK4 | CA1
intestinal crypt stem cell | CL:0002250 | LGR5 OLFM4 ASCL2 SMOC2 ; SOX9 RGMB | CA1 MUC2
tuft cell of colon | CL:0009041 | POU2F3 AVIL IRAG2 SH2D6 ; TRPM5 | PTPRC
enteroendocrine cell of colon | CL:0009042 | CHGA CHGB NEUROD1 ; PYY INSL5 | CA1
crypt-top fibroblast | CL:4052009 | WNT5A BMP4 PDGFRA ; F3 SOX6 | PECAM1 | KINCHEN
crypt-bottom fibroblast | CL:4052008 | GREM1 RSPO3 PI16 ; C7 | PECAM1 | KINCHEN
colon macrophage | CL:0009038 | CD68 C1QA C1QB CD163 ; MRC1 APOE | CD3E
enteric neuron | CL:0007011 | PHOX2B RET ELAVL4 ; CHAT NOS1 VIP | PTPRC | ELMENTAITE
enteric glial cell | CL:4040002 | SOX10 PLP1 S100B ; CDH19 | PTPRC | ELMENTAITE
<< tissue_immune
<< tissue_stroma

== human skin ref=CHENG
basal cell of epidermis | CL:0002187 | KRT5 KRT14 KRT15 ; COL17A1 TP63 | KRT1 KRT10
spinous cell of epidermis | CL:0000649 | KRT1 KRT10 ; DSG1 KRTDAP SBSN | KRT15
granular cell of epidermis | CL:0002189 | FLG LORICRIN KRT2 ; IVL SPRR1A | KRT15
melanocyte | CL:0000148 | PMEL MLANA TYRP1 DCT TYR ; MITF | KRT5 PTPRC
Langerhans cell | CL:0000453 | CD207 CD1A EPCAM ; CLDN1 HLA-DRA | KRT5
Merkel cell | CL:0000242 | KRT20 ATOH1 ; CHGA SOX2 | PTPRC | TS
fibroblast of dermis | CL:0002551 | DCN COL1A2 LUM APOD ; CFD PI16 | KRT5 PTPRC | TS
sweat secreting cell | CL:0000318 | SCGB2A2 DCD PIP ; KRT19 | KRT10 | TS
<< tissue_immune
<< tissue_stroma

== human skeletal muscle ref=TS
slow muscle cell | CL:0000189 | MYH7 TNNT1 TNNI1 MYL3 ; ATP2A2 TPM3 | MYH2 ACTN3
fast muscle cell | CL:0000190 | MYH2 ACTN3 TNNT3 TNNI2 MYL1 ; ATP2A1 MYL11 | MYH7 TNNT1
skeletal muscle satellite cell | CL:0000594 | PAX7 MYF5 CDH15 ; PAX3 MYOD1 | PTPRC
cell of skeletal muscle | CL:0000188 | ACTA1 TTN DES MYOD1 ; CKM MYH2 MYH7 | PTPRC
skeletal muscle fibroblast | CL:0011027 | PDGFRA DCN CD34 ; LUM GSN | PTPRC
tenocyte | CL:0000388 | SCX TNMD MKX ; COMP THBS4 | PTPRC
<< tissue_immune
<< tissue_stroma

== human breast ref=KUMAR
luminal hormone-sensing cell | CL:4033058 | ESR1 PGR AR ANKRD30A ; FOXA1 KRT18 PRLR | KRT14
luminal adaptive secretory precursor cell | CL:4033057 | KIT ELF5 SLPI LTF ; KRT15 ALDH1A3 KRT23 | ESR1
basal-myoepithelial cell of mammary gland | CL:0002324 | KRT14 KRT5 ACTA2 OXTR MYLK ; TP63 KRT17 | ESR1
adipocyte of breast | CL:0002617 | ADIPOQ PLIN1 LEP ; PLIN4 | PTPRC
fibroblast of breast | CL:4006000 | DCN LUM COL1A1 ; PDGFRA CFD | PTPRC
<< tissue_immune
<< tissue_stroma

== human prostate ref=HENRY
luminal cell of prostate epithelium | CL:0002340 | KLK3 MSMB ACP3 NKX3-1 ; KRT8 KRT18 AR | KRT5 TP63
basal cell of prostate epithelium | CL:0002341 | KRT5 KRT15 TP63 ; KRT14 | KLK3
prostate neuroendocrine cell | CL:0017002 | CHGA CHGB SYP ; SCG2 | KLK3
hillock cell of prostatic urethral epithelium | CL:0017011 | KRT13 KRT4 SCGB1A1 ; LCN2 | KLK3
smooth muscle cell of prostate | CL:1000487 | ACTA2 MYH11 DES CNN1 ; TAGLN | PECAM1
prostate stromal cell | CL:0002622 | DCN LUM PDGFRA ; CFD AR | PECAM1 KLK3
<< tissue_immune
<< tissue_stroma

== human testis ref=GUO
spermatogonium | CL:0000020 | UTF1 ID4 FGFR3 PIWIL4 ; DMRT1 MAGEA4 KIT | SYCP3 PRM1
spermatocyte | CL:0000017 | SYCP3 SYCP1 SPO11 DMC1 ; TEX101 PIWIL1 OVOL2 | PRM1 UTF1
spermatid | CL:0000018 | ACRV1 SPACA1 TSSK6 ; SPATA19 CAPZA3 | SYCP3
late spermatid | CL:4030037 | PRM1 PRM2 TNP1 TNP2 ; ODF1 | SYCP3 UTF1
Sertoli cell | CL:0000216 | SOX9 AMH WT1 DHH ; CLDN11 INHA FATE1 | PTPRC
Leydig cell | CL:0000178 | CYP17A1 STAR INSL3 HSD17B3 ; CYP11A1 LHCGR | PTPRC
peritubular myoid cell | CL:0002481 | ACTA2 MYH11 DES ; MYL9 CNN1 | PTPRC
macrophage | CL:0000235 | CD68 CD163 C1QA C1QB C1QC MRC1 ; MSR1 APOE MS4A7 | CD3E MS4A1
endothelial cell | CL:0000115 | PECAM1 VWF CDH5 CLDN5 ; EMCN KDR FLT1 TIE1 | PTPRC

== human ovary ref=WAGNER
granulosa cell | CL:0000501 | FOXL2 AMH INHA FSHR ; CYP19A1 HSD17B1 WT1 | PTPRC
theca cell | CL:0000503 | CYP17A1 LHCGR STAR ; INSL3 CYP11A1 | PTPRC
oocyte | CL:0000023 | FIGLA ZP3 GDF9 ; BMP15 ZP2 NOBOX | PTPRC
stromal cell of ovary | CL:0002132 | DCN ARX NR2F2 PDGFRA ; LUM STAR | PTPRC
<< tissue_immune
<< tissue_stroma

== human uterus ref=TS
stromal cell of endometrium | CL:0002255 | MME HOXA10 HOXA11 PGR ; WT1 ESR1 PDGFRA | PTPRC
decidual cell | CL:2000002 | PRL IGFBP1 ; HAND2 FOXO1 | PTPRC | VENTO
glandular epithelial cell of endometrium | CL:0009084 | PAX8 EPCAM PAEP SPP1 ; MUC1 SOX17 | PTPRC
endometrial multiciliated epithelial cell | CL:4030040 | FOXJ1 CAPS TPPP3 ; DNAH5 | PTPRC
myometrial cell | CL:0002366 | DES ACTA2 MYH11 OXTR ; CNN1 | PTPRC
uterine natural killer cell | CL:4052028 | NCAM1 KLRD1 ITGA1 CD9 ; GNLY | CD3E | VENTO
<< tissue_immune
<< tissue_stroma

== human bladder ref=TS
basal cell of urothelium | CL:1000486 | KRT5 TP63 KRT13 ; KRT17 | UPK2
intermediate cell of urothelium | CL:4030055 | UPK1A UPK3A KRT13 ; UPK1B | KRT5
umbrella cell of urothelium | CL:4030056 | UPK2 UPK1B UPK3B KRT20 ; UPK1A | KRT5
<< tissue_immune
<< tissue_stroma

== human vasculature ref=TS
<< tissue_stroma
endothelial cell of artery | CL:1000413 | GJA5 HEY1 DKK2 SEMA3G ; EFNB2 BMX SOX17 FBLN5 | PTPRC
vein endothelial cell | CL:0002543 | ACKR1 NR2F2 SELP VWF ; CPE EMCN | GJA5 PTPRC
capillary endothelial cell | CL:0002144 | CA4 RGCC CD36 AQP1 ; FABP4 PLVAP | PTPRC
endothelial cell of vascular tree | CL:0002139 | PECAM1 CDH5 KDR ; EMCN FLT1 SOX17 | PTPRC
vascular associated smooth muscle cell | CL:0000359 | MYH11 ACTA2 CNN1 TAGLN ; NOTCH3 MYOCD LMOD1 | PECAM1

== human stroma ref=TS
<< tissue_stroma
myofibroblast | CL:0000186 | ACTA2 TAGLN POSTN ; COL1A1 CTHRC1 | PECAM1 MYH11
stromal cell | CL:0000499 | COL1A1 COL3A1 PDGFRA DCN ; LUM PRRX1 TWIST1 | PECAM1 PTPRC
mesenchymal stem cell | CL:0000134 | PDGFRA THY1 NT5E ENG ; PRRX1 CD34 | PTPRC PECAM1
fibroblastic reticular cell | CL:0009101 | CCL19 CCL21 PDPN ; LUM COL1A1 CH25H | PTPRC

== human placenta ref=VENTO
syncytiotrophoblast cell | CL:0000525 | CGA CYP19A1 ERVW-1 PSG4 KISS1 ; GDF15 HSD3B1 PSG1 | PTPRC
extravillous trophoblast | CL:0008036 | HLA-G PAPPA2 DIO2 ; FSTL3 ASCL2 | PTPRC
mononuclear cytotrophoblast cell | CL:0000523 | PAGE4 PEG10 TP63 ; EGFR | HLA-G
Hofbauer cell | CL:3000001 | CD163 LYVE1 F13A1 FOLR2 ; CD14 | CD3E
decidual cell | CL:2000002 | PRL IGFBP1 ; HAND2 FOXO1 | PTPRC
decidual natural killer cell | CL:0002343 | NCAM1 KLRD1 ITGA1 CD9 ; GNLY | CD3E

== human adrenal gland ref=CAO
cortical cell of adrenal gland | CL:0002097 | STAR CYP11A1 CYP17A1 NR5A1 ; CYP21A2 MC2R CYP11B1 | PTPRC
chromaffin cell | CL:0000166 | CHGA TH DBH PNMT ; CHGB CARTPT | PTPRC

== human fetal ref=CAO
erythroblast | CL:0000765 | HBG1 HBG2 HBZ GYPA ALAS2 ; HBA1 HBE1 | PTPRC
hepatoblast | CL:0005026 | AFP ALB APOA2 TTR ; APOH FGB SERPINA1 | PTPRC | POPESCU
syncytiotrophoblast cell | CL:0000525 | CGA CYP19A1 ERVW-1 PSG4 KISS1 ; GDF15 HSD3B1 | PTPRC
extravillous trophoblast | CL:0008036 | HLA-G PAPPA2 DIO2 ; FSTL3 ASCL2 | PTPRC
trophoblast giant cell | CL:0002488 | CSH1 CSH2 GH2 ; KISS1 PAPPA | PTPRC
cortical cell of adrenal gland | CL:0002097 | STAR CYP11A1 CYP17A1 NR5A1 ; CYP21A2 MC2R | PTPRC
chromaffin cell | CL:0000166 | CHGA TH DBH PNMT ; CHGB CARTPT | PTPRC
sympathetic neuron | CL:0011103 | PHOX2B ISL1 STMN2 PRPH ; GATA2 HAND2 | PTPRC
lens fiber cell | CL:0011004 | CRYBA1 CRYBB1 MIP BFSP1 ; CRYGS LIM2 | PTPRC
corneal epithelial cell | CL:0000575 | KRT12 KRT3 PAX6 ; ALDH3A1 | PTPRC
retinal pigment epithelial cell | CL:0002586 | RPE65 BEST1 PMEL TYRP1 ; MITF SERPINF1 | PTPRC
photoreceptor cell | CL:0000210 | CRX RCVRN NRL ; PDE6H OTX2 | PTPRC
retina horizontal cell | CL:0000745 | ONECUT1 ONECUT2 LHX1 ; PROX1 | PTPRC
amacrine cell | CL:0000561 | TFAP2A TFAP2B PAX6 GAD1 ; SLC32A1 | PTPRC
retinal ganglion cell | CL:0000740 | POU4F2 POU4F1 RBPMS ; ISL1 NEFL ELAVL4 | PTPRC
retinal progenitor cell | CL:0002672 | VSX2 PAX6 SOX2 SFRP2 ; MKI67 RAX | PTPRC
Purkinje cell | CL:0000121 | PCP2 CALB1 CA8 ; ITPR1 GRID2 PCP4 | GABRA6
granule cell | CL:0000120 | PAX6 ATOH1 NEUROD1 ; BARHL1 CNTN2 | GAD1
unipolar brush cell | CL:4023161 | EOMES CALB2 ; LMX1A GRM1 | GAD1
glutamatergic neuron | CL:0000679 | NEUROD6 SLC17A7 SATB2 ; NEUROD2 TBR1 | GAD1
inhibitory interneuron | CL:0000498 | GAD1 GAD2 DLX5 DLX6 ; SST SLC32A1 | SLC17A7
visceromotor neuron | CL:0005025 | PHOX2B PHOX2A ISL1 ; CHAT | PTPRC
enteric neuron | CL:0007011 | PHOX2B RET ELAVL4 ; CHAT NOS1 VIP | PTPRC
enteric glial cell | CL:4040002 | SOX10 PLP1 S100B ; FABP7 | PTPRC
Schwann cell | CL:0002573 | MPZ S100B PLP1 SOX10 ; CDH19 NGFR PMP22 | PTPRC
radial glial cell | CL:0000681 | PAX6 SOX2 VIM HES1 ; FABP7 SLC1A3 | PTPRC
astrocyte | CL:0000127 | GFAP AQP4 SLC1A3 ALDH1L1 ; SPARCL1 | PTPRC
oligodendrocyte | CL:0000128 | MBP PLP1 MOG ; OLIG2 SOX10 | PTPRC
microglial cell | CL:0000129 | P2RY12 CX3CR1 TMEM119 CSF1R ; C1QA | PTPRC
skeletal muscle satellite cell | CL:0000594 | PAX7 MYF5 CDH15 ; PAX3 | PTPRC
cell of skeletal muscle | CL:0000188 | MYOD1 MYOG DES MYH3 ; MYL1 CHRNA1 ACTA1 | PTPRC
smooth muscle cell | CL:0000192 | ACTA2 MYH11 DES CNN1 ; TAGLN ACTG2 | PTPRC
stromal cell | CL:0000499 | COL1A1 COL3A1 PDGFRA DCN ; LUM PRRX1 TWIST1 | PTPRC
mesothelial cell | CL:0000077 | MSLN UPK3B CALB2 WT1 ; ITLN1 KRT19 | PTPRC
endothelial cell of vascular tree | CL:0002139 | PECAM1 CDH5 KDR ; EMCN FLT1 SOX17 | PTPRC
endothelial cell of lymphatic vessel | CL:0002138 | PROX1 LYVE1 CCL21 PDPN ; FLT4 MMRN1 | PTPRC
endocardial cell | CL:0002350 | NPR3 SMOC1 PECAM1 ; CDH11 NFATC1 | PTPRC
cardiac muscle cell | CL:0000746 | TNNT2 MYH7 MYH6 ACTC1 ; MYL7 NPPA | PTPRC
epicardial adipocyte | CL:1000309 | ADIPOQ PLIN1 FABP4 ; LEP | PTPRC
ureteric bud cell | CL:4030066 | RET GATA3 CALB1 WNT9B ; KRT8 | PTPRC
metanephric mesenchyme stem cell | CL:0000324 | SIX2 CITED1 EYA1 ; MEOX1 | PTPRC
metanephric podocyte | CL:0002525 | NPHS1 NPHS2 PODXL WT1 ; MAFB | PTPRC
mesangial cell | CL:0000650 | ITGA8 PDGFRB PIEZO2 GATA3 ; POSTN | PTPRC
acinar cell | CL:0000622 | PRSS1 CPA1 CELA3A CTRB1 ; CPB1 | PTPRC
pancreatic ductal cell | CL:0002079 | KRT19 CFTR SOX9 ; KRT7 | PTPRC
pancreatic endocrine cell | CL:0008024 | INS GCG SST CHGA ; PCSK1 NEUROD1 | PTPRC
intestinal epithelial cell | CL:0002563 | EPCAM CDX2 CDH17 VIL1 ; LGALS4 KRT20 | PTPRC
parietal cell | CL:0000162 | ATP4A ATP4B CBLIF ; PGC LIPF | PTPRC
goblet cell | CL:0000160 | MUC2 TFF3 SPDEF ; FCGBP CLCA1 | PTPRC
neuroendocrine cell | CL:0000165 | CHGA CHGB SCG2 ; NEUROD1 INSM1 | PTPRC
squamous epithelial cell | CL:0000076 | KRT5 KRT13 KRT4 ; SPRR3 TP63 | PTPRC
epithelial cell of lung | CL:0000082 | NKX2-1 SFTPC SFTPB ; NAPSA | PTPRC
ciliated epithelial cell | CL:0000067 | FOXJ1 CAPS TPPP3 ; DNAH5 RSPH1 | PTPRC
epithelial cell of thymus | CL:0002293 | FOXN1 EPCAM KRT5 KRT8 ; PSMB11 CCL25 | PTPRC
thymocyte | CL:0000893 | CD1A CD1E PTCRA RAG1 ; CD3E | MS4A1 | PARK_THYMUS
hematopoietic stem cell | CL:0000037 | CD34 SPINK2 HLF MECOM ; PROM1 MLLT3 | MPO | POPESCU
megakaryocyte | CL:0000556 | ITGA2B GP9 PF4 PPBP ; VWF MPL | HBB
myeloid cell | CL:0000763 | LYZ SPI1 TYROBP CD68 ; FCER1G CSF1R | CD3E
lymphoid cell | CL:0000542 | PTPRC CD3E IL7R ; CD247 CD2 | LYZ
professional antigen presenting cell | CL:0000145 | HLA-DRA CD74 HLA-DPB1 ; CIITA CD86 | CD3E
mast cell | CL:0000097 | TPSAB1 TPSB2 CPA3 KIT ; HPGDS MS4A2 | CD3E
granulocyte | CL:0000094 | CSF3R FCGR3B S100A8 S100A9 ; MPO ELANE | CD3E
"""

MOUSE = """
== template mouse_lymphocytes ref=TM
CD4 naive T cell | CL:0000895 | Cd4 Ccr7 Sell Lef1 Tcf7 ; Dapl1 Cd3e | Cd8a Cd8b1 Gzmk
CD4 effector memory T cell | CL:0000905 | Cd4 Cd44 S100a4 Ccl5 ; Ly6c1 Il7r | Ccr7 Sell Cd8a
regulatory T cell | CL:0000815 | Foxp3 Il2ra Ctla4 Ikzf2 ; Tnfrsf18 Tnfrsf4 Izumo1r | Cd8a
CD8 naive T cell | CL:0000900 | Cd8a Cd8b1 Ccr7 Sell Dapl1 ; Lef1 Tcf7 | Cd4 Gzmb
CD8 central memory T cell | CL:0000907 | Cd8a Cd8b1 Cd44 Sell Ccr7 ; Il7r Ly6c1 Eomes | Cd4 Gzmb
effector CD8 T cell | CL:0001050 | Cd8a Gzmb Gzma Prf1 Klrg1 ; Cx3cr1 Ccl5 | Cd4 Ccr7
gamma-delta T cell | CL:0000798 | Trdc Tcrg-C1 Sox13 ; Cd163l1 Blk Il17a | Cd4 Cd8b1
NK T cell | CL:0000814 | Zbtb16 Klrb1c Cd3e Trav11 ; Nkg7 Il4 | Cd8b1 Ms4a1
NK cell | CL:0000623 | Ncr1 Klrb1c Nkg7 Gzma Klrd1 ; Prf1 Klre1 Eomes | Cd3e Cd3d
group 2 innate lymphoid cell | CL:0001069 | Gata3 Il1rl1 Klrg1 Il13 Il5 ; Areg Icos Arg1 | Cd3e
group 3 innate lymphoid cell | CL:0001071 | Rorc Il22 Il23r Kit ; Il7r Ccr6 | Cd3e
ILC1 | CL:0001068 | Tbx21 Ncr1 Il7r Ifng ; Itga1 Cd200r1 | Eomes Cd3e
follicular B cell | CL:0000843 | Cd19 Ms4a1 Fcer2a Cr2 Ighd ; Cd79a Sell | Cd3e
germinal center B cell | CL:0000844 | Aicda S1pr2 Bcl6 Rgs13 Mef2b ; Fas Gcsam | Ighd Cd3e
plasma cell | CL:0000786 | Jchain Sdc1 Xbp1 Prdm1 ; Mzb1 Igkc | Ms4a1 Cd19

== template mouse_myeloid ref=IMMGEN
classical monocyte | CL:0000860 | Ly6c2 Ccr2 Lyz2 Sell ; Chil3 F13a1 Plac8 | Nr4a1 Cd3e
non-classical monocyte | CL:0000875 | Nr4a1 Treml4 Ace Cx3cr1 Itgal ; Spn Pglyrp1 | Ccr2 Cd3e
neutrophil | CL:0000775 | S100a8 S100a9 Ly6g Retnlg Cxcr2 ; Csf3r Mmp8 Il1b | Cd3e
eosinophil | CL:0000771 | Siglecf Prg2 Epx Ear2 Ccr3 ; Il5ra Alox15 | Cd3e
basophil | CL:0000767 | Mcpt8 Prss34 Fcer1a Cd200r3 ; Gata2 Il4 Hdc | Kit Cd3e
mast cell | CL:0000097 | Cpa3 Cma1 Mcpt4 Tpsb2 Kit ; Fcer1a Cd200r3 | Cd3e
plasmacytoid dendritic cell | CL:0000784 | Siglech Bst2 Ccr9 Ly6d Cox6a2 ; Irf8 Tcf4 | Itgax Cd3e
cDC1 | CL:0001000 | Xcr1 Clec9a Itgae Irf8 Cadm1 ; Naaa Wdfy4 | Sirpa Cd3e
cDC2 | CL:0002465 | Sirpa Itgam Cd209a Clec4a4 ; Irf4 Mgl2 | Xcr1 Cd3e
mregDC | CL:0000841 | Ccr7 Fscn1 Cacnb3 Il4i1 Ccl22 ; Cd274 Socs2 Cd40 Relb | Cd3e | MAIER
macrophage | CL:0000235 | Adgre1 C1qa C1qb C1qc Cd68 ; Mrc1 Fcgr1 Cd163 | Cd3e

== mouse blood ref=TM
<< mouse_lymphocytes
<< mouse_myeloid
erythrocyte | CL:0000232 | Hba-a1 Hbb-bs Alas2 ; Car2 Slc4a1 | Ptprc
platelet | CL:0000233 | Ppbp Pf4 Gp9 Itga2b ; Tubb1 Gp1bb | Ptprc
B cell | CL:0000236 | Cd19 Ms4a1 Cd79a Cd79b ; Pax5 Ebf1 | Cd3e

== mouse spleen ref=TM
<< mouse_lymphocytes
<< mouse_myeloid
marginal zone B cell | CL:0000845 | Cr2 Cd1d1 Cd9 Ighm ; Dtx1 Ms4a1 | Ighd Cd3e
B-1 B cell | CL:0000819 | Cd5 Bhlhe41 Zbtb32 Ighm ; Itgam Spn | Ighd Cd3e
splenic red pulp macrophage | CL:0000874 | Spic Vcam1 Hmox1 C1qa ; Slc40a1 Cd5l | Cd3e
splenic marginal zone macrophage | CL:0000872 | Marco Cd209b Siglec1 ; Cd5l | Cd3e

== mouse bone marrow ref=NESTOROWA
<< mouse_lymphocytes
<< mouse_myeloid
hematopoietic stem cell | CL:0000037 | Procr Hlf Fgd5 Hoxb5 Mecom ; Ly6a Kit Esam Vwf | Mpo Cd48
hematopoietic multipotent progenitor cell | CL:0000837 | Kit Ly6a Cd34 Flt3 ; Mllt3 | Mpo Gata1
lymphoid-primed multipotent progenitor | CL:0000936 | Flt3 Kit Ly6a Satb1 ; Cd34 Dntt | Gata1 Mpo
common lymphoid progenitor | CL:0000051 | Il7r Dntt Flt3 Rag1 ; Ebf1 Cd27 | Mpo Gata1
common myeloid progenitor | CL:0000049 | Kit Cd34 Cebpa Gata2 ; Mpo Flt3 | Il7r Dntt
granulocyte monocyte progenitor | CL:0000557 | Mpo Elane Ctsg Prtn3 Kit ; Cebpa Ms4a3 Cd34 | Gata1 Car1 Klf1 | PAUL
megakaryocyte-erythroid progenitor | CL:0000050 | Gata1 Klf1 Car1 Kit ; Car2 Itga2b Zfpm1 | Mpo | PAUL
megakaryocyte progenitor cell | CL:0000553 | Pf4 Itga2b Gp9 Vwf ; Gp1bb Ppbp Cd9 | Mpo | PAUL
megakaryocyte | CL:0000556 | Pf4 Ppbp Itga2b Gp9 Gp1bb ; Vwf Mpl Tubb1 | Ptprc
erythroblast | CL:0000765 | Hba-a1 Hbb-bs Gypa Klf1 Car2 ; Alas2 Slc4a1 Hemgn | Ptprc
proerythroblast | CL:0000547 | Tfrc Gata1 Klf1 Kit ; Car1 Car2 | Ptprc Hba-a1
pro-B cell | CL:0000826 | Vpreb1 Igll1 Dntt Cd79a Rag1 ; Ebf1 Pax5 Cd19 | Ms4a1 Cd3e
pre-B cell | CL:0000817 | Vpreb3 Rag1 Rag2 Cd79b Cd19 ; Pax5 Ebf1 | Ms4a1 Igll1
promyelocyte | CL:0000836 | Mpo Elane Ctsg Prtn3 ; Ms4a3 Cebpe | Kit Cd34
myelocyte | CL:0002193 | Ltf Camp Ngp Lcn2 Cebpe ; Chil3 Mmp8 | Mpo Cd34
osteoblast | CL:0000062 | Sp7 Bglap Runx2 Col1a1 ; Ibsp Alpl | Ptprc
stromal cell of bone marrow | CL:0010001 | Cxcl12 Lepr Vcam1 Kitl ; Angpt1 Ebf3 | Ptprc

== mouse thymus ref=TM
double negative thymocyte | CL:0002489 | Il2ra Ptcra Hes1 Kit ; Cd34 Cd3e | Cd4 Cd8a Cd8b1
double-positive thymocyte | CL:0000809 | Cd4 Cd8a Cd8b1 Rag1 Rag2 Dntt ; Rorc | Ms4a1
CD4 single-positive thymocyte | CL:0002436 | Cd4 Ccr7 Cd40lg ; Tcf7 Sell | Cd8a Rag1
CD8 single-positive thymocyte | CL:0002437 | Cd8a Cd8b1 Ccr7 ; Tcf7 Sell | Cd4 Rag1
cortical thymic epithelial cell | CL:0002364 | Psmb11 Prss16 Ly75 Ccl25 Foxn1 ; Ctsl | Ptprc
medullary thymic epithelial cell | CL:0002365 | Aire Fezf2 Cldn4 Cd80 ; Krt5 Ccl21a | Ptprc
regulatory T cell | CL:0000815 | Foxp3 Il2ra Ctla4 Ikzf2 ; Tnfrsf18 | Cd8a

== template mouse_tissue_stroma ref=TM
endothelial cell | CL:0000115 | Pecam1 Cdh5 Cldn5 Kdr ; Emcn Flt1 Tie1 | Ptprc
endothelial cell of lymphatic vessel | CL:0002138 | Prox1 Lyve1 Ccl21a Pdpn ; Flt4 Mmrn1 | Ptprc
fibroblast | CL:0000057 | Dcn Pdgfra Col1a1 Col1a2 ; Col3a1 Lum | Pecam1 Ptprc
pericyte | CL:0000669 | Pdgfrb Rgs5 Kcnj8 Higd1b ; Notch3 Abcc9 | Pecam1
smooth muscle cell | CL:0000192 | Acta2 Myh11 Cnn1 Des ; Tagln | Pecam1
T cell | CL:0000084 | Cd3e Cd3d Cd3g Cd2 ; Trac Cd247 | Ms4a1
B cell | CL:0000236 | Cd19 Ms4a1 Cd79a Cd79b ; Pax5 Ebf1 | Cd3e
NK cell | CL:0000623 | Ncr1 Klrb1c Nkg7 Gzma Klrd1 ; Prf1 | Cd3e
macrophage | CL:0000235 | Adgre1 C1qa C1qb C1qc Cd68 ; Mrc1 Fcgr1 | Cd3e
monocyte | CL:0000576 | Ly6c2 Ccr2 Lyz2 Plac8 ; Chil3 | Cd3e C1qa
dendritic cell | CL:0000451 | Itgax Flt3 H2-Ab1 Cd74 ; Xcr1 Cd209a | Cd3e
mast cell | CL:0000097 | Cpa3 Cma1 Mcpt4 Tpsb2 Kit ; Fcer1a | Cd3e

== mouse brain ref=TASIC
L2/3 IT glutamatergic neuron | CL:4030059 | Slc17a7 Cux2 Otof Calb1 ; Stard8 | Gad1 Rorb
L4/5 IT glutamatergic neuron | CL:4030062 | Slc17a7 Rorb Rspo1 ; Whrn | Gad1
L5 IT glutamatergic neuron | CL:4030064 | Slc17a7 Deptor Fezf2 ; Rorb | Gad1
L6 IT glutamatergic neuron | CL:4030065 | Slc17a7 Osr1 Sulf1 ; Cdh9 | Gad1
L6 IT Car3 glutamatergic neuron | CL:4030068 | Slc17a7 Car3 Nr4a2 ; Synpr | Gad1
L5 ET glutamatergic neuron | CL:4023041 | Slc17a7 Fezf2 Bcl11b Pou3f1 ; Lratd2 | Gad1 Cux2
L5/6 NP glutamatergic neuron | CL:4030067 | Slc17a7 Tshz2 Nxph1 ; Slc17a6 | Gad1
L6 CT glutamatergic neuron | CL:4023042 | Slc17a7 Foxp2 Syt6 Tle4 ; Crym | Gad1
L6b glutamatergic neuron | CL:4023038 | Slc17a7 Ccn2 Cplx3 Nxph4 ; Tle4 | Gad1
lamp5 GABAergic interneuron | CL:4023011 | Gad1 Lamp5 Ndnf ; Gad2 | Sst Pvalb Vip
sncg GABAergic interneuron | CL:4023015 | Gad1 Sncg Cnr1 ; Cck | Sst Pvalb
VIP GABAergic interneuron | CL:4023016 | Gad1 Vip Calb2 ; Cck Crh | Pvalb Sst
sst GABAergic interneuron | CL:4023017 | Gad1 Gad2 Sst ; Npy | Pvalb Vip
sst chodl GABAergic interneuron | CL:4023121 | Gad1 Sst Chodl Nos1 ; Npy | Pvalb Vip
pvalb GABAergic interneuron | CL:4023018 | Gad1 Gad2 Pvalb ; Tac1 Kcnc1 | Sst Vip
astrocyte | CL:0000127 | Aqp4 Gfap Aldh1l1 Slc1a3 Gja1 ; Aldoc Slc1a2 | Slc17a7 | ZEISEL
oligodendrocyte | CL:0000128 | Mbp Plp1 Mog Mobp ; Mag Opalin | Pdgfra | ZEISEL
oligodendrocyte precursor cell | CL:0002453 | Pdgfra Cspg4 Olig2 ; Sox10 Vcan | Mog | ZEISEL
microglial cell | CL:0000129 | P2ry12 Tmem119 Sall1 Hexb Cx3cr1 ; Fcrls Siglech Olfml3 Gpr34 | Mrc1 | HAMMOND
perivascular macrophage | CL:0000881 | Mrc1 Lyve1 Pf4 Cd163 ; F13a1 | P2ry12 Tmem119 | HAMMOND
endothelial cell | CL:0000115 | Cldn5 Flt1 Pecam1 ; Ly6c1 Slco1a4 | Ptprc | ZEISEL
brain pericyte | CL:2000043 | Kcnj8 Abcc9 Vtn Pdgfrb ; Rgs5 Higd1b | Pecam1 | ZEISEL
vascular leptomeningeal cell | CL:4023051 | Slc6a13 Dcn Col1a1 ; Ptgds Slc47a1 | Pecam1 | ZEISEL
vascular associated smooth muscle cell | CL:0000359 | Acta2 Myh11 Tagln ; Cnn1 | Pecam1 | ZEISEL
ependymal cell | CL:0000065 | Foxj1 Tmem212 Rarres2 ; Ccdc153 | Gfap | ZEISEL
choroid plexus epithelial cell | CL:0000706 | Ttr Kl Folr1 Clic6 ; Prlr | Gfap | ZEISEL
neuroblast (sensu Vertebrata) | CL:0000031 | Dcx Sox11 Sox4 ; Dlx2 Tubb3 | Mbp | ZEISEL

== mouse liver ref=HALPERN
periportal region hepatocyte | CL:0019026 | Cyp2f2 Hal Sds Pck1 Alb ; Cps1 Arg1 | Cyp2e1 Glul
centrilobular region hepatocyte | CL:0019029 | Cyp2e1 Glul Cyp1a2 Oat ; Slc1a2 Lect2 | Cyp2f2 Hal
hepatocyte | CL:0000182 | Alb Apoa1 Apoc3 Ttr ; Serpina1a Fgb | Ptprc | TM
cholangiocyte | CL:1000488 | Krt19 Krt7 Spp1 Epcam ; Sox9 | Alb | TM
endothelial cell of hepatic sinusoid | CL:1000398 | Stab2 Kdr Clec4g Dnase1l3 ; Lyve1 Oit3 Fcgr2b | Ptprc | TM
hepatic stellate cell | CL:0000632 | Reln Lrat Dcn Pdgfrb ; Colec11 Ecm1 Hgf | Ptprc | TM
Kupffer cell | CL:0000091 | Clec4f Vsig4 Cd5l Timd4 Marco ; C1qa Adgre1 | Cd3e | GUILLIAMS
<< mouse_tissue_stroma

== mouse kidney ref=PARK_KIDNEY
podocyte | CL:0000653 | Nphs1 Nphs2 Podxl Wt1 ; Synpo | Lrp2
epithelial cell of proximal tubule | CL:0002306 | Lrp2 Slc34a1 Cubn ; Slc5a2 | Umod
proximal convoluted tubule epithelial cell | CL:1000838 | Slc5a2 Slc5a12 Slc34a1 ; Lrp2 | Umod
proximal straight tubule epithelial cell | CL:1000839 | Slc7a13 Cyp7b1 Lrp2 ; Slc22a7 | Slc5a2 Umod
descending thin limb epithelial cell | CL:1001111 | Aqp1 Bst1 Slc14a2 ; Cryab | Umod Lrp2
thick ascending limb epithelial cell | CL:1001106 | Slc12a1 Umod Cldn16 ; Ptger3 Kcnj1 | Lrp2 Slc12a3
distal convoluted tubule epithelial cell | CL:1000849 | Slc12a3 Pvalb Calb1 ; Trpm6 | Umod Lrp2
connecting tubule epithelial cell | CL:1000768 | Slc8a1 Calb1 Trpv5 ; Scnn1g | Umod
renal principal cell | CL:0005009 | Aqp2 Hsd11b2 Fxyd4 Scnn1g ; Avpr2 | Atp6v1g3
renal alpha-intercalated cell | CL:0005011 | Atp6v0d2 Slc4a1 Aqp6 Kit ; Atp6v1g3 | Slc26a4 Aqp2
renal beta-intercalated cell | CL:0002201 | Slc26a4 Atp6v0d2 Hmx2 ; Atp6v1g3 Slc4a9 | Slc4a1 Aqp2
mesangial cell | CL:0000650 | Gata3 Pdgfrb Itga8 ; Des Ren1 | Pecam1
glomerular endothelial cell | CL:0002188 | Ehd3 Plat Emcn ; Kdr | Ptprc
kidney resident macrophage | CL:1000698 | C1qa C1qb Cd68 Adgre1 ; Mrc1 | Cd3e
<< mouse_tissue_stroma

== mouse lung ref=TM
pulmonary alveolar type 1 cell | CL:0002062 | Ager Hopx Rtkn2 Pdpn ; Akap5 Clic5 | Sftpc
pulmonary alveolar type 2 cell | CL:0002063 | Sftpc Sftpb Lamp3 Abca3 ; Lyz1 Napsa | Ager
club cell | CL:0000158 | Scgb1a1 Scgb3a2 Cyp2f2 ; Bpifa1 | Foxj1
lung multiciliated epithelial cell | CL:1000271 | Foxj1 Tppp3 Ccdc153 Dynlrb2 ; Cdhr3 | Scgb1a1
basal cell | CL:0000646 | Krt5 Trp63 Krt15 ; Krt17 | Foxj1
pulmonary neuroendocrine cell | CL:1000223 | Ascl1 Calca Chga ; Resp18 | Ptprc
aerocyte capillary endothelial cell | CL:4028003 | Car4 Apln Ednrb Tbx2 ; Kdr Fibin | Ptprc | GILLICH
general capillary endothelial cell | CL:4028002 | Gpihbp1 Aplnr Plvap Cd93 ; Sema3c Kit | Ptprc | GILLICH
alveolar macrophage | CL:0000583 | Siglecf Chil3 Ear2 Itgax Marco ; Pparg Car4 Krt79 | Cd3e
lung interstitial macrophage | CL:4033043 | Lyve1 Mrc1 C1qa Cd163 ; Folr2 Pf4 | Siglecf
alveolar fibroblast | CL:4028004 | Npnt Itga8 Tcf21 Wnt2 ; Fgfr4 | Pecam1
<< mouse_tissue_stroma

== mouse small intestine ref=HABER
enterocyte | CL:0000584 | Fabp2 Apoa1 Apoa4 Alpi ; Fabp1 Rbp2 | Muc2
small intestine goblet cell | CL:1000495 | Muc2 Clca1 Tff3 Zg16 Fcgbp ; Spink4 | Fabp2
paneth cell | CL:0000510 | Lyz1 Ang4 Mptx2 Defa24 ; Itln1 | Fabp2
intestinal crypt stem cell | CL:0002250 | Lgr5 Olfm4 Ascl2 Smoc2 ; Slc12a2 | Fabp2
tuft cell | CL:0002204 | Dclk1 Pou2f3 Trpm5 Avil ; Il25 Alox5ap | Fabp2
intestinal enteroendocrine cell | CL:1001516 | Chga Chgb Neurod1 ; Tph1 Pyy | Fabp2
transit amplifying cell | CL:0009010 | Mki67 Top2a Olfm4 ; Tyms | Muc2
<< mouse_tissue_stroma

== mouse colon ref=HAN_MCA
colonocyte | CL:1000347 | Car1 Slc26a3 Aqp8 ; Car4 Krt20 | Muc2
colon goblet cell | CL:0009039 | Muc2 Clca1 Zg16 Tff3 ; Fcgbp | Car1
intestinal crypt stem cell | CL:0002250 | Lgr5 Olfm4 Ascl2 Smoc2 ; Slc12a2 | Car1

== mouse pancreas ref=BARON
pancreatic A cell | CL:0000171 | Gcg Arx Irx2 Ttr ; Pcsk2 | Ins1 Ins2
type B pancreatic cell | CL:0000169 | Ins1 Ins2 Iapp Mafa Nkx6-1 ; G6pc2 Ucn3 | Gcg Sst
pancreatic D cell | CL:0000173 | Sst Hhex Rbp4 ; Ghsr | Ins1 Gcg
pancreatic PP cell | CL:0002275 | Ppy Pyy Etv1 ; Meis2 | Ins1 Gcg
pancreatic acinar cell | CL:0002064 | Cpa1 Prss2 Cela1 Ctrb1 Pnlip ; Cel Try4 | Krt19 Ins1
pancreatic ductal cell | CL:0002079 | Krt19 Sox9 Spp1 Cftr ; Krt7 | Cpa1 Ins1
pancreatic stellate cell | CL:0002410 | Pdgfrb Col1a1 Rgs5 ; Col3a1 | Ptprc Pecam1
<< mouse_tissue_stroma

== mouse retina ref=MACOSKO
rod | CL:0000604 | Rho Nrl Gnat1 Sag ; Pde6b | Arr3 Opn1sw
retinal cone cell | CL:0000573 | Arr3 Opn1sw Opn1mw Gnat2 ; Pde6h | Rho Nrl
retinal bipolar neuron | CL:0000748 | Vsx2 Otx2 Trpm1 Grm6 Cabp5 ; Scgn | Rho Gad1 | SHEKHAR
rod bipolar cell | CL:0000751 | Prkca Car8 Trpm1 Vsx2 ; Grm6 | Rho | SHEKHAR
amacrine cell | CL:0000561 | Tfap2b Gad1 Pax6 Slc32a1 ; Slc6a9 | Vsx2
retina horizontal cell | CL:0000745 | Onecut1 Lhx1 Calb1 ; Onecut2 | Vsx2
retinal ganglion cell | CL:0000740 | Rbpms Pou4f1 Pou4f2 Sncg Nefl ; Slc17a6 | Vsx2
Mueller cell | CL:0000636 | Rlbp1 Glul Slc1a3 Apoe ; Car2 Kcnj10 Dkk3 | Rho
retinal pigment epithelial cell | CL:0002586 | Rpe65 Best1 Pmel Tyrp1 ; Mitf | Rho
microglial cell | CL:0000129 | P2ry12 Tmem119 Cx3cr1 Hexb ; C1qa | Rho

== mouse adipose ref=EMONT
adipocyte | CL:0000136 | Adipoq Plin1 Lep Cidec ; Pparg Lipe | Ptprc
brown adipocyte | CL:0000449 | Ucp1 Cidea Ppargc1a Cox8b ; Elovl3 Dio2 | Ptprc | TM
preadipocyte | CL:0002334 | Pdgfra Cd34 Dpp4 Pi16 Ly6a ; Dcn | Adipoq Ptprc
adipose macrophage | CL:0002477 | Adgre1 Lyve1 Trem2 Cd68 ; Lpl C1qa | Cd3e
<< mouse_tissue_stroma

== mouse heart ref=TM
cardiac muscle cell | CL:0000746 | Tnnt2 Myh6 Actc1 Ttn Ryr2 ; Myl7 Nppa | Ptprc
regular atrial cardiac myocyte | CL:0002129 | Myl7 Nppa Myl4 Sln ; Myh6 | Myl2 Myl3
ventricular cardiac muscle cell | CL:2000046 | Myl2 Myl3 Myh7 ; Fhl2 | Myl7 Nppa
fibroblast of cardiac tissue | CL:0002548 | Dcn Gsn Pdgfra Col1a1 ; Tcf21 | Pecam1 Tnnt2
endocardial cell | CL:0002350 | Npr3 Pecam1 Cdh11 ; Nfatc1 | Ptprc
<< mouse_tissue_stroma

== mouse testis ref=HAN_MCA
spermatogonium | CL:0000020 | Zbtb16 Id4 Gfra1 Sall4 ; Kit Stra8 Uchl1 | Sycp3 Prm1
spermatocyte | CL:0000017 | Sycp3 Sycp1 Piwil1 Spo11 ; Tex101 | Prm1
spermatid | CL:0000018 | Acrv1 Spaca1 Tssk6 ; Lyar | Sycp3
late spermatid | CL:4030037 | Prm1 Prm2 Tnp1 Tnp2 ; Odf1 | Sycp3
Sertoli cell | CL:0000216 | Sox9 Amh Wt1 Dhh ; Cldn11 Inha | Ptprc
Leydig cell | CL:0000178 | Cyp17a1 Star Insl3 Hsd3b6 ; Cyp11a1 | Ptprc

== mouse skin ref=TM
basal cell of epidermis | CL:0002187 | Krt5 Krt14 Krt15 ; Col17a1 Trp63 | Krt1 Krt10
spinous cell of epidermis | CL:0000649 | Krt1 Krt10 ; Dsg1a | Krt15
melanocyte | CL:0000148 | Pmel Mlana Tyrp1 Dct Tyr ; Mitf | Krt5
Langerhans cell | CL:0000453 | Cd207 Epcam H2-Aa ; Cldn1 | Krt5
fibroblast of dermis | CL:0002551 | Dcn Col1a2 Lum ; Pdgfra | Krt5
"""
