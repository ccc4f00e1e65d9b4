"""Awkward arrays (scirpy's ``obsm['airr']``) in the snapshot store: round trip, no pickle, stable hash."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scagent.session.store import SnapshotStore, hash_adata_parts

ak = pytest.importorskip("awkward")


def _receptors(n: int = 5) -> ak.Array:
    """Nested records with strings, missing strings/numbers and empty lists."""
    cells = []
    for i in range(n):
        chains = [
            {
                "locus": "TRA",
                "junction_aa": f"CAV{i}F" if i % 2 else None,
                "umi_count": i + 1,
                "score": None if i == 3 else float(i) / 2,
                "genes": ["TRAV1", f"TRAJ{i}"],
            }
        ]
        if i == 2:
            chains = []  # a cell without receptor
        elif i % 2 == 0:
            chains.append(
                {
                    "locus": "TRB",
                    "junction_aa": "CASSLG",
                    "umi_count": None,
                    "score": 1.5,
                    "genes": [],
                }
            )
        cells.append(chains)
    return ak.Array(cells)


def _adata(airr: ak.Array) -> ad.AnnData:
    n = len(airr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata: awkward support is experimental
        return ad.AnnData(
            np.arange(n * 3, dtype=np.float32).reshape(n, 3),
            obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]),
            obsm={"airr": airr},
        )


def test_nested_records_round_trip(tmp_path: Path) -> None:
    airr = _receptors()
    store = SnapshotStore(tmp_path / "store")
    info = store.write_snapshot(_adata(airr))
    back = store.read_part(info.id, "obsm/airr")
    assert isinstance(back, ak.Array)
    assert back.tolist() == airr.tolist()
    assert str(back.type) == str(airr.type)
    assert back[3, 0, "score"] is None and back[0, 0, "junction_aa"] is None
    full = store.read_snapshot(info.id)
    assert full.obsm["airr"].tolist() == airr.tolist()
    assert store.verify() == []
    # no pickle anywhere: the object holds only blosc chunks and a JSON header
    obj = store._object_path(info.manifest.parts["obsm/airr"]).read_bytes()
    assert b"pickle" not in obj and b"\x80\x04\x95" not in obj


def test_hash_is_deterministic_and_content_based(tmp_path: Path) -> None:
    a = hash_adata_parts(_adata(_receptors()))["obsm/airr"]
    b = hash_adata_parts(_adata(_receptors()))["obsm/airr"]
    assert a == b
    changed = _receptors().tolist()
    changed[1][0]["junction_aa"] = "CAVXF"
    assert hash_adata_parts(_adata(ak.Array(changed)))["obsm/airr"] != a
    # written, read back and hashed again: the same object (the store deduplicates it)
    store = SnapshotStore(tmp_path / "store")
    info = store.write_snapshot(_adata(_receptors()))
    again = store.write_snapshot(store.read_snapshot(info.id), parent=info.id)
    assert info.manifest.parts["obsm/airr"] == a
    assert again.manifest.parts["obsm/airr"] == a
    assert "obsm/airr" not in again.written_parts


def test_view_of_a_subset_stores_only_its_cells(tmp_path: Path) -> None:
    adata = _adata(_receptors(6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub = adata[[0, 2, 4]]  # obsm['airr'] is an anndata AwkwardArrayView
        direct = _adata(_receptors(6)[[0, 2, 4]])
    store = SnapshotStore(tmp_path / "store")
    info = store.write_snapshot(sub)
    assert store.read_part(info.id, "obsm/airr").tolist() == _receptors(6)[[0, 2, 4]].tolist()
    assert info.manifest.parts["obsm/airr"] == hash_adata_parts(direct)["obsm/airr"]


def _write_contigs(path: Path) -> None:
    """A small 10x filtered_contig_annotations.csv: 6 cells, one without a beta chain."""
    rows = []
    for i in range(6):
        for chain, cdr3 in (("TRA", f"CAVRD{i}F"), ("TRB", f"CASSQ{i}Y")):
            if i == 3 and chain == "TRB":
                continue
            rows.append(
                {
                    "barcode": f"AAAC{i}-1",
                    "is_cell": "True",
                    "contig_id": f"AAAC{i}-1_contig_{chain}",
                    "high_confidence": "True",
                    "length": 500,
                    "chain": chain,
                    "v_gene": f"{chain}V{i % 3 + 1}",
                    "d_gene": "None",
                    "j_gene": f"{chain}J1",
                    "c_gene": f"{chain}C",
                    "full_length": "True",
                    "productive": "True",
                    "cdr3": cdr3.replace("0", "A"),
                    "cdr3_nt": "TGTGCC",
                    "reads": 100 + i,
                    "umis": 3 + i,
                    "raw_clonotype_id": f"clonotype{i}",
                    "raw_consensus_id": "None",
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)


def test_scirpy_airr_round_trips(tmp_path: Path) -> None:
    ir = pytest.importorskip("scirpy")
    csv = tmp_path / "filtered_contig_annotations.csv"
    _write_contigs(csv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = ir.io.read_10x_vdj(csv)
    store = SnapshotStore(tmp_path / "store")
    info = store.write_snapshot(adata)
    back = store.read_snapshot(info.id)
    assert back.obsm["airr"].tolist() == adata.obsm["airr"].tolist()
    assert str(back.obsm["airr"].type) == str(adata.obsm["airr"].type)
    assert list(back.obs_names) == list(adata.obs_names)
    # scirpy works on what came back as on the original: same chain indices per cell
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ir.pp.index_chains(back)
        ir.pp.index_chains(adata)
    assert back.obsm["chain_indices"]["VJ"].tolist() == adata.obsm["chain_indices"]["VJ"].tolist()
    assert back.obsm["chain_indices"]["VDJ"].tolist()[3] == [None, None]  # cell 3: no beta
    assert hash_adata_parts(back)["obsm/airr"] == info.manifest.parts["obsm/airr"]
