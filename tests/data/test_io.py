"""Every reader round-trips simulated counts; bad input gives typed errors; files are parsed once."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from scagent.data import simulate
from scagent.data.io import detect_format, read, read_many, write_h5ad
from scagent.errors import (
    CorruptInputError,
    InputNotFoundError,
    InvalidDataError,
    InvalidParameterError,
    UnsupportedFormatError,
)

io_module = sys.modules["scagent.data.io"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sim() -> ad.AnnData:
    """Raw UMI counts (CSR float32) with gene-symbol names and ``cell_NNNNNN`` barcodes."""
    adata = simulate(n_cells=300, n_genes=500, seed=0)
    adata.var["gene_ids"] = [f"ENSG{i:011d}" for i in range(adata.n_vars)]
    return adata


@pytest.fixture
def small(sim) -> ad.AnnData:
    """X, names and gene ids only: what every format can hold."""
    return ad.AnnData(
        sim.X.copy(),
        obs=pd.DataFrame(index=sim.obs_names.copy()),
        var=pd.DataFrame({"gene_ids": sim.var["gene_ids"].to_numpy()}, index=sim.var_names),
    )


def _dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def assert_same_counts(got: ad.AnnData, want: ad.AnnData) -> None:
    assert got.shape == want.shape
    assert list(got.obs_names) == list(want.obs_names)
    assert list(got.var_names) == list(want.var_names)
    np.testing.assert_array_equal(_dense(got.X), _dense(want.X))


def _gzip(path: Path) -> Path:
    out = path.with_name(path.name + ".gz")
    with open(path, "rb") as src, gzip.open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()
    return out


def write_10x_mtx(
    adata: ad.AnnData, folder: Path, *, version: int = 3, gz: bool = True, prefix: str = ""
) -> Path:
    """Write a Cell Ranger Matrix Market folder (v2: genes.tsv, v3: features.tsv)."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = sp.csr_matrix(adata.X).T.astype(np.int64)  # 10x stores genes x cells
    scipy.io.mmwrite(folder / f"{prefix}matrix.mtx", counts, field="integer")
    ids = adata.var["gene_ids"].to_numpy()
    if version == 3:
        feats = pd.DataFrame({"id": ids, "name": adata.var_names, "type": "Gene Expression"})
        feature_file = folder / f"{prefix}features.tsv"
    else:
        feats = pd.DataFrame({"id": ids, "name": adata.var_names})
        feature_file = folder / f"{prefix}genes.tsv"
    feats.to_csv(feature_file, sep="\t", header=False, index=False)
    pd.Series(adata.obs_names).to_csv(
        folder / f"{prefix}barcodes.tsv", sep="\t", header=False, index=False
    )
    if gz:
        for name in ("matrix.mtx", "barcodes.tsv", feature_file.name[len(prefix) :]):
            _gzip(folder / f"{prefix}{name}")
    return folder


def write_10x_h5_v3(adata: ad.AnnData, path: Path, genomes: list[str] | None = None) -> Path:
    """Write a Cell Ranger v3 HDF5: matrix/{data,indices,indptr,shape,barcodes,features/...}.

    10x stores genes x cells as CSC, which is exactly the cells x genes CSR.
    """
    X = sp.csr_matrix(adata.X)
    genome = np.array(genomes if genomes is not None else ["GRCh38"] * adata.n_vars, dtype="S")
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["data"] = X.data.astype(np.int32)
        m["indices"] = X.indices.astype(np.int64)
        m["indptr"] = X.indptr.astype(np.int64)
        m["shape"] = np.array([adata.n_vars, adata.n_obs], dtype=np.int32)
        m["barcodes"] = np.array(adata.obs_names, dtype="S")
        feats = m.create_group("features")
        feats["id"] = np.array(adata.var["gene_ids"], dtype="S")
        feats["name"] = np.array(adata.var_names, dtype="S")
        feats["feature_type"] = np.array(["Gene Expression"] * adata.n_vars, dtype="S")
        feats["genome"] = genome
        feats["_all_tag_keys"] = np.array([b"genome"])
    return path


def write_10x_h5_v2(adata: ad.AnnData, path: Path, genomes: tuple[str, ...] = ("hg19",)) -> Path:
    """Write a Cell Ranger v1/v2 HDF5: one group per genome with genes / gene_names."""
    X = sp.csr_matrix(adata.X)
    with h5py.File(path, "w") as f:
        for name in genomes:
            g = f.create_group(name)
            g["data"] = X.data.astype(np.int32)
            g["indices"] = X.indices.astype(np.int64)
            g["indptr"] = X.indptr.astype(np.int64)
            g["shape"] = np.array([adata.n_vars, adata.n_obs], dtype=np.int32)
            g["barcodes"] = np.array(adata.obs_names, dtype="S")
            g["genes"] = np.array(adata.var["gene_ids"], dtype="S")
            g["gene_names"] = np.array(adata.var_names, dtype="S")
    return path


# --------------------------------------------------------------------------- round trips


def test_h5ad_round_trip_keeps_everything(sim, tmp_path):
    path = write_h5ad(sim, tmp_path / "sim.h5ad")
    got = read(path)
    assert_same_counts(got, sim)
    pd.testing.assert_frame_equal(got.obs, sim.obs)
    assert got.X.dtype == sim.X.dtype and sp.issparse(got.X)
    src = got.uns["scagent"]["source"]
    assert src["format"] == "h5ad"
    assert src["path"] == str(path.resolve())
    assert src["size"] == path.stat().st_size
    assert src["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert src["hash_method"] == "sha256"
    assert "simulation" in got.uns  # the file's own uns survives beside ours


def test_h5ad_backed(sim, tmp_path):
    path = write_h5ad(sim, tmp_path / "sim.h5ad")
    got = read(path, backed=True)
    assert got.isbacked
    np.testing.assert_array_equal(got.X[:10].toarray(), sim.X[:10].toarray())
    got.file.close()


@pytest.mark.filterwarnings("ignore:Writing zarr v2 data")
def test_zarr_round_trip(sim, tmp_path):
    path = tmp_path / "sim.zarr"
    sim.write_zarr(path)
    got = read(path)
    assert_same_counts(got, sim)
    pd.testing.assert_frame_equal(got.obs, sim.obs)
    src = got.uns["scagent"]["source"]
    assert src["format"] == "zarr" and src["hash_method"] == "sha256-tree"


def test_loom_round_trip_recovers_names(small, tmp_path):
    path = tmp_path / "sim.loom"
    small.write_loom(path)  # anndata stores names as obs_names / var_names attributes
    got = read(path)
    assert_same_counts(got, small)
    assert list(got.var["gene_ids"]) == list(small.var["gene_ids"])


@pytest.mark.parametrize(
    ("suffix", "sep"), [(".csv", ","), (".tsv", "\t"), (".txt", "\t"), (".csv.gz", ",")]
)
@pytest.mark.parametrize("genes_as_rows", [False, True])
def test_delimited_round_trip_explicit_orientation(small, tmp_path, suffix, sep, genes_as_rows):
    df = small.to_df()
    if genes_as_rows:
        df = df.T
    path = tmp_path / f"m{suffix}"
    df.to_csv(path, sep=sep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # explicit orientation: no guessing, no warning
        got = read(path, transpose=genes_as_rows)
    assert_same_counts(got, small)
    assert got.X.dtype == np.float32
    assert detect_format(path) == ("csv" if ".csv" in suffix else "tsv")


@pytest.mark.parametrize("genes_as_rows", [False, True])
def test_delimited_orientation_guess_from_names(small, tmp_path, genes_as_rows):
    df = small.to_df().T if genes_as_rows else small.to_df()
    path = tmp_path / "m.csv"
    df.to_csv(path)
    with pytest.warns(UserWarning, match="transposed" if genes_as_rows else "as cells x genes"):
        got = read(path)
    assert_same_counts(got, small)


def test_orientation_guess_ensembl_vs_barcodes(tmp_path):
    rng = np.random.default_rng(1)
    genes = [f"ENSMUSG{i:011d}" for i in range(8)]
    cells = ["".join(rng.choice(list("ACGT"), 16)) + "-1" for _ in range(30)]
    # genes x cells, and fewer rows than columns: names must beat the shape heuristic
    df = pd.DataFrame(rng.poisson(1, (8, 30)), index=genes, columns=cells)
    df.to_csv(tmp_path / "m.csv")
    with pytest.warns(UserWarning, match="gene-likeness"):
        got = read(tmp_path / "m.csv")
    assert list(got.var_names) == genes and got.shape == (30, 8)


def test_orientation_guess_falls_back_to_shape(tmp_path):
    rng = np.random.default_rng(2)
    df = pd.DataFrame(rng.poisson(1, (20, 50)), index=range(20), columns=range(50))
    df.to_csv(tmp_path / "m.csv")
    with pytest.warns(UserWarning, match="weak evidence"):
        got = read(tmp_path / "m.csv")
    assert got.shape == (20, 50)  # the longer axis (columns) taken as genes


@pytest.mark.parametrize(
    ("version", "gz"),
    [(3, True), (2, False), (3, False), (2, True)],  # the last two: layouts scanpy refuses
)
def test_10x_mtx_round_trip(small, tmp_path, version, gz):
    folder = write_10x_mtx(small, tmp_path / "mtx", version=version, gz=gz)
    assert detect_format(folder) == "10x_mtx"
    got = read(folder)
    assert_same_counts(got, small)
    assert sp.isspmatrix_csr(got.X) and got.X.dtype == np.float32
    assert list(got.var["gene_ids"]) == list(small.var["gene_ids"])
    assert set(got.var["feature_types"]) == {"Gene Expression"}
    ids = read(folder, var_names="gene_ids")
    assert list(ids.var_names) == list(small.var["gene_ids"])
    assert list(ids.var["gene_symbols"]) == list(small.var_names)


def test_10x_mtx_nested_prefixed_and_file_paths(small, tmp_path):
    write_10x_mtx(small, tmp_path / "filtered_gene_bc_matrices" / "hg19", version=2, gz=False)
    assert_same_counts(read(tmp_path / "filtered_gene_bc_matrices"), small)
    geo = write_10x_mtx(small, tmp_path / "geo", prefix="GSM1_")
    assert_same_counts(read(geo), small)
    assert_same_counts(read(geo / "GSM1_matrix.mtx.gz"), small)


@pytest.mark.parametrize("gz", [True, False])  # scanpy's reader, then ours
def test_10x_mtx_feature_types_and_gex_only(small, tmp_path, gz):
    folder = write_10x_mtx(small, tmp_path / "mtx", gz=gz)
    name = "features.tsv.gz" if gz else "features.tsv"
    feats = pd.read_csv(folder / name, sep="\t", header=None)
    feats.loc[:9, 2] = "Antibody Capture"
    feats.to_csv(folder / name, sep="\t", header=False, index=False)
    gex = read(folder)
    assert list(gex.var_names) == list(small.var_names[10:])
    np.testing.assert_array_equal(gex.X.toarray(), small.X[:, 10:].toarray())
    everything = read(folder, gex_only=False)
    assert (everything.var["feature_types"] == "Antibody Capture").sum() == 10
    assert_same_counts(everything, small)


def test_10x_mtx_prefix_picks_a_sample(small, tmp_path):
    write_10x_mtx(small, tmp_path / "geo", prefix="GSM1_")
    write_10x_mtx(small[:50], tmp_path / "geo", prefix="GSM2_")
    with pytest.raises(InvalidParameterError, match="2 matrix files") as err:
        read(tmp_path / "geo")
    assert "prefix=" in err.value.remedy
    assert read(tmp_path / "geo", prefix="GSM2_").n_obs == 50


def test_10x_mtx_two_nested_matrices_is_ambiguous(small, tmp_path):
    write_10x_mtx(small, tmp_path / "outs" / "filtered_feature_bc_matrix")
    write_10x_mtx(small, tmp_path / "outs" / "raw_feature_bc_matrix")
    with pytest.raises(InvalidParameterError, match="2 10x matrix folders") as err:
        read(tmp_path / "outs")
    assert err.value.exit_code == 2


def test_10x_h5_v3_round_trip(small, tmp_path):
    path = write_10x_h5_v3(small, tmp_path / "v3.h5")
    got = read(path)
    assert_same_counts(got, small)
    assert list(got.var["gene_ids"]) == list(small.var["gene_ids"])
    assert set(got.var["feature_types"]) == {"Gene Expression"}
    assert got.uns["scagent"]["source"]["format"] == "10x_h5"
    assert list(read(path, var_names="gene_ids").var_names) == list(small.var["gene_ids"])


def test_10x_h5_v2_round_trip(small, tmp_path):
    got = read(write_10x_h5_v2(small, tmp_path / "v2.h5"))
    assert_same_counts(got, small)
    assert list(got.var["gene_ids"]) == list(small.var["gene_ids"])
    assert set(got.var["feature_types"]) == {"Gene Expression"}


def test_10x_h5_multiple_genomes_need_genome(small, tmp_path):
    half = small.n_vars // 2
    genomes = ["GRCh38"] * half + ["mm10"] * (small.n_vars - half)
    path = write_10x_h5_v3(small, tmp_path / "barnyard.h5", genomes=genomes)
    with pytest.raises(InvalidParameterError, match="GRCh38, mm10") as err:
        read(path)
    assert err.value.exit_code == 2
    mouse = read(path, genome="mm10")
    assert list(mouse.var_names) == list(small.var_names[half:])
    np.testing.assert_array_equal(mouse.X.toarray(), small.X[:, half:].toarray())
    with pytest.raises(InvalidParameterError, match="not in"):
        read(path, genome="dm6")

    legacy = write_10x_h5_v2(small, tmp_path / "two.h5", genomes=("hg19", "mm10"))
    with pytest.raises(InvalidParameterError, match="hg19, mm10"):
        read(legacy)
    assert_same_counts(read(legacy, genome="mm10"), small)


def test_h5ad_gene_ids_option(sim, tmp_path):
    path = write_h5ad(sim, tmp_path / "sim.h5ad")
    got = read(path, var_names="gene_ids")
    assert list(got.var_names) == list(sim.var["gene_ids"])
    assert list(got.var["gene_symbols"]) == list(sim.var_names)
    bare = write_h5ad(ad.AnnData(sim.X), tmp_path / "bare.h5ad")
    with pytest.raises(InvalidParameterError, match="no gene id column"):
        read(bare, var_names="gene_ids")


# --------------------------------------------------------------------------- provenance


def test_big_files_hash_head_tail_and_size(tmp_path, monkeypatch):
    monkeypatch.setattr(io_module, "FULL_HASH_MAX_BYTES", 1024)
    rng = np.random.default_rng(0)
    data = bytearray(rng.bytes(3 * 2**20))
    path = tmp_path / "big.csv"
    path.write_bytes(bytes(data))
    first = io_module._source_record(path, "csv")
    assert first["hash_method"] == "sha256-size-head-tail-1MiB"
    data[len(data) // 2] ^= 0xFF  # the middle MiB is not hashed (documented)
    path.write_bytes(bytes(data))
    assert io_module._source_record(path, "csv")["sha256"] == first["sha256"]
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert io_module._source_record(path, "csv")["sha256"] != first["sha256"]
    path.write_bytes(bytes(data) + b"\n")  # size alone changes it too
    assert io_module._source_record(path, "csv")["sha256"] != first["sha256"]


# --------------------------------------------------------------------------- parsed once


def _count_calls(monkeypatch, module, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def test_h5ad_is_parsed_once(sim, tmp_path, monkeypatch):
    path = write_h5ad(sim, tmp_path / "sim.h5ad")
    calls = _count_calls(monkeypatch, ad, "read_h5ad")
    read(path)
    assert len(calls) == 1
    read(path, backed=True).file.close()
    assert len(calls) == 2


def test_csv_and_10x_h5_are_parsed_once(small, tmp_path, monkeypatch):
    small.to_df().to_csv(tmp_path / "m.csv")
    csv_calls = _count_calls(monkeypatch, pd, "read_csv")
    with pytest.warns(UserWarning):
        read(tmp_path / "m.csv")  # orientation is guessed from the one parse
    assert len(csv_calls) == 1

    import scanpy as sc

    h5_calls = _count_calls(monkeypatch, sc, "read_10x_h5")
    read(write_10x_h5_v3(small, tmp_path / "v3.h5"))
    assert len(h5_calls) == 1


# --------------------------------------------------------------------------- validation


def test_nan_and_inf_are_counted(small, tmp_path):
    X = small.X.copy()
    X.data[:3] = np.nan
    X.data[3] = np.inf
    bad = ad.AnnData(X, obs=small.obs, var=small.var)
    write_h5ad(bad, tmp_path / "bad.h5ad")
    with pytest.raises(InvalidDataError, match="4 NaN or Inf") as err:
        read(tmp_path / "bad.h5ad")
    assert err.value.exit_code == 6
    assert read(tmp_path / "bad.h5ad", validate=False).shape == small.shape

    dense = ad.AnnData(X.toarray(), obs=small.obs, var=small.var)
    write_h5ad(dense, tmp_path / "dense.h5ad")
    with pytest.raises(InvalidDataError, match="4 NaN or Inf"):
        read(tmp_path / "dense.h5ad", backed=True)  # streamed from disk, never loaded whole
    with h5py.File(tmp_path / "dense.h5ad", "r+"):  # the failed backed read closed the file
        pass


def test_nan_check_streams_dense_blocks(small, monkeypatch):
    monkeypatch.setattr(io_module, "_CHECK_BLOCK_ELEMENTS", 1000)  # many small blocks
    X = small.X.toarray()
    X[-1, -1] = np.nan
    X[0, 0] = np.inf
    assert io_module._count_nonfinite(X) == 2


def test_empty_data_is_rejected(tmp_path):
    write_h5ad(ad.AnnData(np.zeros((0, 5), dtype=np.float32)), tmp_path / "e.h5ad")
    with pytest.raises(InvalidDataError, match="0 cells") as err:
        read(tmp_path / "e.h5ad")
    assert err.value.exit_code == 6
    pd.DataFrame(columns=["GAPDH", "ACTB"]).to_csv(tmp_path / "e.csv")
    with pytest.raises(InvalidDataError):
        read(tmp_path / "e.csv", transpose=False)


@pytest.mark.filterwarnings("ignore:.*names are not unique")  # anndata's, while we build it
def test_duplicated_names_warn_and_are_made_unique(small, tmp_path):
    dup = small.copy()
    names = list(dup.var_names)
    names[1] = names[0]
    names[3] = names[2]
    dup.var_names = names
    cells = list(dup.obs_names)
    cells[5] = cells[4]
    dup.obs_names = cells
    write_h5ad(dup, tmp_path / "dup.h5ad")
    with pytest.warns(UserWarning) as record:
        got = read(tmp_path / "dup.h5ad")
    messages = " ".join(str(w.message) for w in record)
    assert "2 duplicated gene names" in messages and names[0] in messages
    assert "1 duplicated cell names" in messages
    assert got.var_names.is_unique and got.obs_names.is_unique
    assert got.shape == small.shape  # nothing dropped
    assert got.var_names[1] == f"{names[0]}-1"
    with pytest.warns(UserWarning, match="make_unique=False"):
        kept = read(tmp_path / "dup.h5ad", make_unique=False)
    assert not kept.var_names.is_unique


def test_negative_values_in_counts_layer(small, tmp_path):
    bad = small.copy()
    bad.layers["raw_counts"] = bad.X.copy()
    bad.layers["raw_counts"].data[:2] = -1
    bad.layers["scaled"] = -bad.X.toarray()  # a non-counts layer may be negative
    write_h5ad(bad, tmp_path / "neg.h5ad")
    with pytest.raises(InvalidDataError, match=r"'raw_counts'.*2 negative"):
        read(tmp_path / "neg.h5ad")
    del bad.layers["raw_counts"]
    write_h5ad(bad, tmp_path / "ok.h5ad")
    assert read(tmp_path / "ok.h5ad").n_obs == small.n_obs


@pytest.mark.parametrize(
    ("name", "is_counts"),
    [("counts", True), ("raw_counts", True), ("UMI", True), ("umi_counts", True),
     ("scaled", False), ("log1p", False), ("accounts", False)],
)  # fmt: skip
def test_counts_layer_names(name, is_counts):
    assert io_module._is_counts_name(name) is is_counts


# --------------------------------------------------------------------------- bad input


def test_missing_path(tmp_path):
    with pytest.raises(InputNotFoundError, match=r"nope\.h5ad") as err:
        read(tmp_path / "nope.h5ad")
    assert err.value.exit_code == 3


@pytest.mark.parametrize("name", ["data.xlsx", "data.h5ad.gz", "data", "data.rds"])
def test_unsupported_extension(tmp_path, name):
    (tmp_path / name).write_bytes(b"x")
    with pytest.raises(UnsupportedFormatError, match=r"\.h5ad, \.zarr") as err:
        read(tmp_path / name)
    assert err.value.exit_code == 4
    ext = "".join(Path(name).suffixes) or "(none)"
    assert repr(ext) in err.value.message


def test_unsupported_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UnsupportedFormatError, match="neither"):
        detect_format(tmp_path)


def test_truncated_h5ad(sim, tmp_path):
    path = write_h5ad(sim, tmp_path / "sim.h5ad")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptInputError, match=r"sim\.h5ad") as err:
        read(path)
    assert err.value.exit_code == 5


def test_overwritten_middle_of_compressed_h5ad(sim, tmp_path):
    path = write_h5ad(sim, tmp_path / "sim.h5ad", compression="gzip")
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 1024] = np.random.default_rng(0).bytes(1024)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptInputError) as err:
        read(path)
    assert err.value.exit_code == 5


def _overwrite_dataset(path: Path, name: str, byte: bytes) -> None:
    """Overwrite an uncompressed dataset's bytes in place, at its offset in the file."""
    with h5py.File(path, "r") as f:
        dset = f[name].id
        if dset.get_offset() is not None:  # contiguous
            extents = [(dset.get_offset(), dset.get_storage_size())]
        else:  # chunked, uncompressed: each chunk is stored as is
            chunks = (dset.get_chunk_info(i) for i in range(dset.get_num_chunks()))
            extents = [(c.byte_offset, c.size) for c in chunks]
    with open(path, "r+b") as fh:
        for offset, nbytes in extents:
            fh.seek(offset)
            fh.write(byte * nbytes)


def test_overwritten_bytes_in_uncompressed_h5ad(sim, tmp_path):
    path = write_h5ad(sim, tmp_path / "idx.h5ad")
    _overwrite_dataset(path, "X/indices", b"\xff")  # int32 -1: column out of range
    with pytest.raises(CorruptInputError, match="structurally invalid"):
        read(path)
    path = write_h5ad(sim, tmp_path / "data.h5ad")
    _overwrite_dataset(path, "X/data", b"\xff")  # float32 NaN everywhere
    with pytest.raises(InvalidDataError, match=f"{sim.X.nnz} NaN"):
        read(path)


def test_10x_folder_without_matrix(small, tmp_path):
    folder = write_10x_mtx(small, tmp_path / "mtx")
    (folder / "matrix.mtx.gz").unlink()
    assert detect_format(folder) == "10x_mtx"
    with pytest.raises(InputNotFoundError, match=r"matrix\.mtx") as err:
        read(folder)
    assert err.value.exit_code == 3
    folder = write_10x_mtx(small, tmp_path / "mtx2", version=2, gz=False)
    (folder / "barcodes.tsv").unlink()
    with pytest.raises(InputNotFoundError, match=r"barcodes\.tsv"):
        read(folder)


def test_truncated_10x_matrix(small, tmp_path):
    folder = write_10x_mtx(small, tmp_path / "mtx", version=2, gz=False)
    text = (folder / "matrix.mtx").read_text().splitlines()
    (folder / "matrix.mtx").write_text("\n".join(text[: len(text) // 2]) + "\n")
    with pytest.raises(CorruptInputError) as err:
        read(folder)
    assert err.value.exit_code == 5


def test_non_numeric_csv(tmp_path):
    df = pd.DataFrame({"CD3E": [1, 2], "cell_type": ["T", "B"]}, index=["c1", "c2"])
    df.to_csv(tmp_path / "m.csv")
    with pytest.raises(CorruptInputError, match=r"not a numeric matrix.*'cell_type'") as err:
        read(tmp_path / "m.csv", transpose=False)
    assert err.value.exit_code == 5


def test_h5_that_is_not_10x(sim, tmp_path):
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(CorruptInputError, match=r"junk\.h5"):
        read(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["X"] = np.zeros(3)
    with pytest.raises(CorruptInputError, match="not a 10x matrix"):
        read(tmp_path / "other.h5")
    # scanpy once wrote AnnData as .h5: read as h5ad, and say so
    sim.write_h5ad(tmp_path / "anndata.h5")
    got = read(tmp_path / "anndata.h5")
    assert_same_counts(got, sim)
    assert got.uns["scagent"]["source"]["format"] == "h5ad"


def test_options_that_do_not_apply(sim, tmp_path):
    path = write_h5ad(sim, tmp_path / "sim.h5ad")
    sim.to_df().iloc[:5, :5].to_csv(tmp_path / "m.csv")
    for kwargs, target in [
        ({"transpose": True}, path),
        ({"genome": "hg19"}, path),
        ({"gex_only": False}, path),
        ({"var_names": "ids"}, path),
        ({"backed": True}, tmp_path / "m.csv"),
    ]:
        with pytest.raises(InvalidParameterError) as err:
            read(target, **kwargs)
        assert err.value.exit_code == 2


# --------------------------------------------------------------------------- read_many


def _split(sim: ad.AnnData, tmp_path: Path) -> tuple[list[Path], list[ad.AnnData]]:
    """Three samples; the second lacks the last 20 genes, the third the first 5."""
    parts = [sim[:100].copy(), sim[100:200, : sim.n_vars - 20].copy(), sim[200:, 5:].copy()]
    paths = [write_h5ad(p, tmp_path / f"s{i}.h5ad") for i, p in enumerate(parts)]
    return paths, parts


def test_read_many_inner_join(sim, tmp_path):
    paths, _ = _split(sim, tmp_path)
    with pytest.warns(UserWarning) as record:
        got = read_many(paths)
    messages = [str(w.message) for w in record]
    assert any("kept 475 and dropped 25 genes" in m for m in messages)
    # the simulator's own sample column is kept, not silently overwritten
    assert any("obs['sample_original']" in m for m in messages)
    assert got.shape == (300, 475)
    assert list(got.obs["sample"].cat.categories) == ["s0", "s1", "s2"]
    assert (got.obs["sample"].value_counts() == 100).all()
    assert got.obs_names.is_unique
    assert got.obs_names[0] == f"{sim.obs_names[0]}-s0"
    assert got.obs_names[-1] == f"{sim.obs_names[-1]}-s2"
    np.testing.assert_array_equal(got.X.toarray(), sim[:, got.var_names].X.toarray())
    assert list(got.var["gene_ids"]) == list(sim.var.loc[got.var_names, "gene_ids"])
    assert list(got.obs["sample_original"]) == list(sim.obs["sample"].astype(str))
    src = got.uns["scagent"]["source"]
    assert src["format"] == "read_many" and set(src["samples"]) == {"s0", "s1", "s2"}
    assert src["samples"]["s1"]["sha256"] == hashlib.sha256(paths[1].read_bytes()).hexdigest()


def test_read_many_outer_join_fills_zeros(sim, tmp_path):
    paths, _ = _split(sim, tmp_path)
    with pytest.warns(UserWarning) as record:
        got = read_many(paths, ["a", "b", "c"], join="outer")
    assert any("25 are absent" in str(w.message) for w in record)
    assert got.n_vars == 500
    missing = got[got.obs["sample"] == "b", sim.var_names[-20:]].X
    assert _dense(missing).sum() == 0
    assert np.isfinite(_dense(got.X)).all()


def test_read_many_names(sim, small, tmp_path):
    paths, _ = _split(sim, tmp_path)
    with pytest.raises(InvalidParameterError, match="duplicated sample names"):
        read_many(paths, ["a", "a", "b"])
    with pytest.raises(InvalidParameterError, match="one name per path"):
        read_many(paths, ["a", "b"])
    # default names climb past generic Cell Ranger folder names
    p1 = write_10x_mtx(small, tmp_path / "donor1" / "outs" / "filtered_feature_bc_matrix")
    p2 = write_10x_mtx(small, tmp_path / "donor2" / "outs" / "filtered_feature_bc_matrix")
    got = read_many([p1, p2])
    assert list(got.obs["sample"].cat.categories) == ["donor1", "donor2"]
    assert got.shape == (2 * small.n_obs, small.n_vars)
    (tmp_path / "x").mkdir()
    write_h5ad(small, tmp_path / "x" / "s0.h5ad")
    with pytest.raises(InvalidParameterError, match=r"duplicated sample names \['s0'\]") as err:
        read_many([tmp_path / "x" / "s0.h5ad", paths[0]])
    assert "sample_names" in err.value.remedy


# --------------------------------------------------------------------------- write_h5ad


def test_write_h5ad_is_atomic(small, tmp_path, monkeypatch):
    target = write_h5ad(small, tmp_path / "out" / "a.h5ad")
    before = target.read_bytes()

    def crash(self, path, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(ad.AnnData, "write_h5ad", crash)
    with pytest.raises(KeyboardInterrupt):
        write_h5ad(small[:10].copy(), target)
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["a.h5ad"]


# --------------------------------------------------------------------------- real 10x files


TENX = "tenx_cellranger_testfiles"


def _mtx_shape(folder: Path) -> tuple[int, int, int]:
    """(cells, genes, nnz) as the Matrix Market header declares them."""
    matrix = next(folder.glob("matrix.mtx*"))
    opener = gzip.open if matrix.suffix == ".gz" else open
    with opener(matrix, "rt") as fh:
        size_line = next(line for line in fh if not line.startswith("%"))
    n_genes, n_cells, nnz = (int(x) for x in size_line.split())
    return n_cells, n_genes, nnz


def test_cellranger_v3_h5_and_mtx_agree(shared_data):
    base = shared_data / TENX / "v3.0.0"
    mtx = read(base / "filtered_feature_bc_matrix")
    h5 = read(base / "filtered_feature_bc_matrix.h5")
    n_cells, n_genes, nnz = _mtx_shape(base / "filtered_feature_bc_matrix")
    with h5py.File(base / "filtered_feature_bc_matrix.h5") as f:
        declared = tuple(int(x) for x in f["matrix/shape"][()][::-1])
    assert mtx.shape == h5.shape == (n_cells, n_genes) == declared
    assert mtx.X.nnz == h5.X.nnz == nnz
    assert list(mtx.obs_names) == list(h5.obs_names)
    assert list(mtx.var_names) == list(h5.var_names)
    assert list(mtx.var["gene_ids"]) == list(h5.var["gene_ids"])
    assert (mtx.var["feature_types"] == h5.var["feature_types"]).all()
    assert (mtx.X != h5.X).nnz == 0
    assert (
        h5.uns["scagent"]["source"]["sha256"]
        == hashlib.sha256((base / "filtered_feature_bc_matrix.h5").read_bytes()).hexdigest()
    )


def test_cellranger_v12_h5_and_mtx_agree(shared_data):
    base = shared_data / TENX / "v1.2.0"
    # the folder holds one genome folder (hg19_chr21): read() finds it
    mtx = read(base / "filtered_gene_bc_matrices")
    h5 = read(base / "filtered_gene_bc_matrices_h5.h5")
    n_cells, n_genes, nnz = _mtx_shape(base / "filtered_gene_bc_matrices" / "hg19_chr21")
    assert mtx.shape == h5.shape == (n_cells, n_genes)
    assert mtx.X.nnz == nnz
    assert list(mtx.obs_names) == list(h5.obs_names)
    assert list(mtx.var["gene_ids"]) == list(h5.var["gene_ids"])
    assert (mtx.X != h5.X).nnz == 0


def test_cellranger_multiple_genomes(shared_data):
    path = shared_data / TENX / "v1.2.0" / "multiple_genomes.h5"
    with h5py.File(path) as f:
        genomes = sorted(f)
        shape = tuple(int(x) for x in f[genomes[0]]["shape"][()][::-1])
    assert len(genomes) > 1
    with pytest.raises(InvalidParameterError) as err:
        read(path)
    assert all(g in err.value.message for g in genomes)
    got = read(path, genome=genomes[0])
    assert got.shape == shape
