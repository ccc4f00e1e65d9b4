"""The content-addressed snapshot store: round trips, deduplication, determinism, damage detection."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scagent.errors import (
    IncompatibleVersionError,
    InvalidDataError,
    InvalidParameterError,
    RefNotFoundError,
    StoreCorruptionError,
)
from scagent.session.store import (
    FORMAT_VERSION,
    SnapshotStore,
    hash_adata_parts,
    part_paths,
)

N_OBS, N_VARS = 1000, 400


def _full_adata(seed: int = 0) -> ad.AnnData:
    """An AnnData with every slot type the store must keep."""
    rng = np.random.default_rng(seed)
    counts = sp.random(
        N_OBS, N_VARS, density=0.1, format="csr", random_state=seed, dtype=np.float32
    )
    counts.data = np.ceil(counts.data * 10).astype(np.float32)
    obs_names = [f"cell-{i}" for i in range(N_OBS)]
    var_names = [f"Gene{i}" for i in range(N_VARS)]
    labels = rng.integers(0, 5, N_OBS).astype(str)
    obs = pd.DataFrame(
        {
            # categories in a non-sorted order, one of them unused
            "leiden": pd.Categorical(labels, categories=["4", "0", "3", "1", "2", "unused"]),
            "stage": pd.Categorical(rng.choice(["early", "late"], N_OBS), ordered=True),
            "sample": np.array([f"s{i % 3}-ü" for i in range(N_OBS)], dtype=object),
            "note": np.array([None if i % 7 == 0 else f"n{i}" for i in range(N_OBS)], dtype=object),
            "phase": pd.Categorical([None if i % 17 == 0 else "G1" for i in range(N_OBS)]),
            "str_nan": pd.array(
                [None if i % 5 == 0 else "x" for i in range(N_OBS)],
                dtype=pd.StringDtype("python", na_value=np.nan),
            ),
            "flag": pd.array(
                [None if i % 3 == 0 else i % 2 == 0 for i in range(N_OBS)], dtype="boolean"
            ),
            "when": pd.date_range("2024-01-01", periods=N_OBS, freq="h").to_numpy(),
            "is_doublet": rng.random(N_OBS) < 0.05,
            "pct_mt": rng.random(N_OBS).astype(np.float32),
            "n_genes": rng.integers(100, 1000, N_OBS),
            "maybe_int": pd.array(
                [None if i % 11 == 0 else i for i in range(N_OBS)], dtype="Int64"
            ),
            "label_str": pd.array(
                [None if i % 13 == 0 else f"L{i % 4}" for i in range(N_OBS)], dtype="string"
            ),
        },
        index=pd.Index(obs_names, name="barcode"),
    )
    var = pd.DataFrame(
        {
            "gene_ids": np.array([f"ENSG{i:011d}" for i in range(N_VARS)], dtype=object),
            "highly_variable": rng.random(N_VARS) < 0.2,
            "means": rng.random(N_VARS),
        },
        index=var_names,
    )
    adata = ad.AnnData(X=counts, obs=obs, var=var)
    adata.layers["counts"] = counts.copy()
    adata.layers["dense"] = rng.standard_normal((N_OBS, N_VARS))
    adata.obsm["X_pca"] = np.asfortranarray(rng.standard_normal((N_OBS, 20)).astype(np.float32))
    adata.obsm["meta_df"] = pd.DataFrame({"a": rng.random(N_OBS)}, index=adata.obs_names)
    adata.varm["PCs"] = rng.standard_normal((N_VARS, 20))
    adata.obsp["connectivities"] = sp.random(
        N_OBS, N_OBS, density=0.01, format="csr", random_state=seed
    )
    adata.varp["corr"] = sp.random(N_VARS, N_VARS, density=0.01, format="csc", random_state=seed)
    names = np.rec.fromarrays(
        [np.array([f"Gene{j}" for j in range(10)], dtype=object) for _ in range(3)],
        names=["0", "1", "2"],
    )
    scores = np.rec.fromarrays(
        [rng.random(10).astype(np.float32) for _ in range(3)], names=["0", "1", "2"]
    )
    adata.uns.update(
        {
            "neighbors": {
                "params": {"n_neighbors": 15, "method": "umap", "random_state": 0,
                           "metric": "euclidean", "use_rep": "X_pca"},
                "connectivities_key": "connectivities",
            },
            "log1p": {"base": None},
            "pca": {"variance": rng.random(20), "variance_ratio": rng.random(20),
                    "params": {"zero_center": True, "use_highly_variable": False}},
            "leiden": {"params": {"resolution": 0.8, "random_state": 0, "n_iterations": -1}},
            "leiden_colors": ["#1f77b4", "#ff7f0e", "#279e68", "#d62728", "#aa40fc"],
            "stage_colors": np.array(["#000000", "#ffffff"], dtype=object),
            "rank_genes_groups": {
                "names": names, "scores": scores,
                "params": {"groupby": "leiden", "reference": "rest", "method": "wilcoxon",
                           "use_raw": False, "layer": None, "corr_method": "benjamini-hochberg"},
            },
            "summary": pd.DataFrame(
                {"cluster": pd.Categorical(["a", "b"]), "n": [3, 4], "score": [0.5, np.nan]},
                index=["x", "y"],
            ),
            "misc": {"np_float": np.float32(1.5), "np_int": np.int64(7), "tuple": (1, "a", 2.5),
                     "nan": float("nan"), "bytes": b"\x00\x01", "empty": {}, "nested": [[1, 2], []],
                     "str_array": np.array(["a", "bb"]), "sparse": sp.csr_matrix(np.eye(3))},
        }
    )  # fmt: skip
    raw = ad.AnnData(
        X=sp.random(N_OBS, N_VARS + 50, density=0.05, format="csr", random_state=seed + 1),
        obs=pd.DataFrame(index=adata.obs_names),
        var=pd.DataFrame(
            {"mt": np.arange(N_VARS + 50) < 13}, index=[f"Gene{i}" for i in range(N_VARS + 50)]
        ),
    )
    adata.raw = raw
    return adata


@pytest.fixture
def adata() -> ad.AnnData:
    return _full_adata()


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "store")


def _h5ad_compatible(adata: ad.AnnData) -> ad.AnnData:
    """Drop what the store keeps but h5ad cannot (tuples in uns, datetime columns)."""
    adata.uns.pop("misc", None)
    del adata.obs["when"]
    return adata


def _h5ad_size(adata: ad.AnnData, tmp_path: Path) -> int:
    path = tmp_path / "ref.h5ad"
    _h5ad_compatible(adata.copy()).write_h5ad(path)
    return path.stat().st_size


def _assert_value_equal(a, b, where: str) -> None:
    """Equal values *and* types, recursively (anndata's own helper needs its pytest markers)."""
    assert type(a) is type(b), (where, type(a), type(b))
    if sp.issparse(a):
        assert a.shape == b.shape and a.dtype == b.dtype, where
        assert a.indices.dtype == b.indices.dtype and a.indptr.dtype == b.indptr.dtype, where
        assert (a != b).nnz == 0, where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.names:
            for name in a.dtype.names:
                _assert_value_equal(np.asarray(a[name]), np.asarray(b[name]), f"{where}.{name}")
        elif a.dtype == object:
            assert list(a.ravel()) == list(b.ravel()), where
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where)
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_value_equal(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_value_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def _assert_same(a: ad.AnnData, b: ad.AnnData) -> None:
    assert a.shape == b.shape
    for name in ("obs", "var"):
        da, db = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(da, db, check_exact=True, obj=name)
        assert list(da.columns) == list(db.columns) and da.index.name == db.index.name
        for col in da.columns:
            assert da[col].dtype == db[col].dtype, (name, col)
            if isinstance(da[col].dtype, pd.CategoricalDtype):
                assert list(da[col].cat.categories) == list(db[col].cat.categories)
                assert da[col].cat.ordered == db[col].cat.ordered
    if a.X is None:
        assert b.X is None
    else:
        _assert_value_equal(a.X, b.X, "X")
    for slot in ("layers", "obsm", "varm", "obsp", "varp"):
        _assert_value_equal(dict(getattr(a, slot)), dict(getattr(b, slot)), slot)
    _assert_value_equal(dict(a.uns), dict(b.uns), "uns")
    assert (a.raw is None) == (b.raw is None)
    if a.raw is not None:
        _assert_value_equal(a.raw.X, b.raw.X, "raw/X")
        pd.testing.assert_frame_equal(a.raw.var, b.raw.var, check_exact=True, obj="raw.var")


def test_round_trip_keeps_every_slot(store: SnapshotStore, adata: ad.AnnData) -> None:
    info = store.write_snapshot(adata, parent=None, meta={"tool_id": "import"})
    back = store.read_snapshot(info.id)
    _assert_same(adata, back)
    # uns values come back with their Python / numpy types, not just equal values
    misc = back.uns["misc"]
    assert type(misc["np_float"]) is np.float32 and misc["np_float"] == np.float32(1.5)
    assert type(misc["np_int"]) is np.int64
    assert misc["tuple"] == (1, "a", 2.5) and np.isnan(misc["nan"])
    assert misc["bytes"] == b"\x00\x01" and misc["nested"] == [[1, 2], []]
    assert isinstance(back.uns["leiden_colors"], list)
    assert back.uns["log1p"] == {"base": None}
    rgg = back.uns["rank_genes_groups"]
    assert isinstance(rgg["names"], np.recarray)
    assert rgg["names"].dtype == adata.uns["rank_genes_groups"]["names"].dtype
    assert list(rgg["names"]["1"]) == list(adata.uns["rank_genes_groups"]["names"]["1"])
    assert back.obs["note"].iloc[0] is None and back.obs["note"].iloc[1] == "n1"
    assert back.obs["maybe_int"].isna().sum() == adata.obs["maybe_int"].isna().sum()
    assert back.raw.shape == adata.raw.shape and back.raw.var["mt"].sum() == 13
    # reading back and hashing again gives the same part hashes (replay relies on it)
    assert hash_adata_parts(back) == hash_adata_parts(adata) == dict(info.manifest.parts)


def test_round_trip_of_pbmc68k_with_scanpy_results(store: SnapshotStore, pbmc68k) -> None:
    import scanpy as sc

    adata = pbmc68k.copy()
    # pbmc68k's stored result has str ('<U200') fields; a fresh one has object fields
    adata.uns["rank_genes_groups_fresh"] = adata.uns["rank_genes_groups"]
    sc.tl.rank_genes_groups(adata, "bulk_labels", method="t-test", n_genes=5)
    back = store.read_snapshot(store.write_snapshot(adata, parent=None, meta={}).id)
    _assert_same(adata, back)
    assert (
        back.uns["rank_genes_groups"]["names"].dtype
        == adata.uns["rank_genes_groups"]["names"].dtype
    )
    assert back.raw.X.shape == adata.raw.X.shape


def test_adding_one_obs_column_writes_one_small_object(
    store: SnapshotStore, adata: ad.AnnData, tmp_path: Path
) -> None:
    first = store.write_snapshot(adata, parent=None, meta={"step": 0})
    assert first.parts_total == len(part_paths(adata))
    # layers['counts'] is a copy of X: stored once
    assert first.manifest.parts["layers/counts"] == first.manifest.parts["X"]
    assert first.parts_written == first.parts_total - 1 == len(set(first.manifest.parts.values()))
    adata.obs["new_clusters"] = pd.Categorical(np.arange(adata.n_obs) % 3)
    second = store.write_snapshot(adata, parent=first.id, meta={"step": 1})
    assert second.written_parts == ("obs/new_clusters",)
    assert second.parts_written == 1 and second.parts_total == first.parts_total + 1
    assert second.bytes_written < 0.01 * _h5ad_size(adata, tmp_path)
    changed = {p for p, h in second.manifest.parts.items() if first.manifest.parts.get(p) != h}
    assert changed == {"obs/new_clusters"}
    assert second.manifest.parent == first.id
    assert second.manifest.columns["obs"][-1] == "new_clusters"


def test_same_content_gives_same_snapshot_id(store: SnapshotStore) -> None:
    a = _full_adata(seed=3)
    info = store.write_snapshot(a, parent=None, meta={"k": 1, "j": [1, 2]})
    again = store.write_snapshot(a.copy(), parent=None, meta={"j": [1, 2], "k": 1})
    assert again.id == info.id and again.bytes_written == 0 and again.parts_written == 0

    # an equal AnnData built with dict entries in another order
    b = _full_adata(seed=3)
    b.uns = dict(reversed(list(b.uns.items())))
    b.uns["neighbors"]["params"] = dict(reversed(list(b.uns["neighbors"]["params"].items())))
    layers = dict(b.layers)
    for key in list(b.layers):
        del b.layers[key]
    for key in reversed(list(layers)):
        b.layers[key] = layers[key]
    b.obsm["X_pca"] = np.ascontiguousarray(b.obsm["X_pca"])  # same values, C order
    assert store.write_snapshot(b, parent=None, meta={"k": 1, "j": [1, 2]}).id == info.id

    # any change in content, parent or meta gives another id
    b.obs.loc[b.obs_names[0], "pct_mt"] += 1
    changed = store.write_snapshot(b, parent=None, meta={"k": 1, "j": [1, 2]})
    assert changed.id != info.id and changed.written_parts == ("obs/pct_mt",)
    assert store.write_snapshot(a, parent=info.id, meta={"k": 1, "j": [1, 2]}).id != info.id
    assert store.write_snapshot(a, parent=None, meta={"k": 2, "j": [1, 2]}).id != info.id


def test_layout_and_dtype_changes(adata: ad.AnnData) -> None:
    before = hash_adata_parts(adata)
    adata.obsm["X_pca"] = np.ascontiguousarray(adata.obsm["X_pca"])
    assert hash_adata_parts(adata)["obsm/X_pca"] == before["obsm/X_pca"]
    adata.obsm["X_pca"] = adata.obsm["X_pca"].astype(np.float64)
    assert hash_adata_parts(adata)["obsm/X_pca"] != before["obsm/X_pca"]
    adata.obs["leiden"] = adata.obs["leiden"].cat.reorder_categories(
        sorted(adata.obs["leiden"].cat.categories)
    )
    assert hash_adata_parts(adata)["obs/leiden"] != before["obs/leiden"]


def test_history_and_parents(store: SnapshotStore, adata: ad.AnnData) -> None:
    ids = []
    parent = None
    for step in range(3):
        adata.obs[f"step{step}"] = np.full(adata.n_obs, step)
        parent = store.write_snapshot(adata, parent=parent, meta={"step": step}).id
        ids.append(parent)
    chain = store.history(ids[-1])
    assert [m.id for m in chain] == ids
    assert [m.meta["step"] for m in chain] == [0, 1, 2]
    assert chain[0].parent is None and chain[2].parent == ids[1]
    assert [m.id for m in store.history(ids[0])] == ids[:1]
    assert store.resolve(ids[1][:10]) == ids[1]
    assert store.manifest(ids[2][:8]).id == ids[2]
    assert store.stored_bytes(ids) <= store.stored_bytes()
    with pytest.raises(RefNotFoundError):
        store.write_snapshot(adata, parent="0" * 64, meta={})


def test_read_part(store: SnapshotStore, adata: ad.AnnData) -> None:
    sid = store.write_snapshot(adata, parent=None, meta={}).id
    leiden = store.read_part(sid, "obs/leiden")
    pd.testing.assert_series_equal(leiden, adata.obs["leiden"], check_names=True)
    np.testing.assert_array_equal(store.read_part(sid, "obsm/X_pca"), adata.obsm["X_pca"])
    with pytest.raises(RefNotFoundError, match="obs/nope"):
        store.read_part(sid, "obs/nope")


def test_empty_and_minimal_anndata(store: SnapshotStore) -> None:
    a = ad.AnnData(obs=pd.DataFrame(index=["c1", "c2"]), var=pd.DataFrame(index=["g1"]))
    back = store.read_snapshot(store.write_snapshot(a, parent=None, meta={}).id)
    assert back.X is None and back.shape == (2, 1) and list(back.obs_names) == ["c1", "c2"]
    z = ad.AnnData(X=np.zeros((0, 3), dtype=np.float32))
    back = store.read_snapshot(store.write_snapshot(z, parent=None, meta={}).id)
    assert back.shape == (0, 3) and back.X.dtype == np.float32


def test_bad_input_is_refused_clearly(store: SnapshotStore, adata: ad.AnnData) -> None:
    adata.uns["weird"] = {"fn": object()}
    with pytest.raises(InvalidDataError, match="uns/weird"):
        store.write_snapshot(adata, parent=None, meta={})
    del adata.uns["weird"]
    with pytest.raises(InvalidParameterError, match="meta"):
        store.write_snapshot(adata, parent=None, meta={"x": object()})
    with pytest.raises(InvalidParameterError):
        store.resolve("not-hex!")
    with pytest.raises(RefNotFoundError):
        store.resolve("abcdef")
    assert store.list_snapshots() == []  # nothing half-written


# --------------------------------------------------------------------------- damage


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "payload-flip":
        data[len(data) // 4] ^= 0xFF  # inside the compressed arrays
        path.write_bytes(bytes(data))
    elif how == "header-flip":
        # change one digit of the header JSON (a shape, a size, a node field)
        end = len(data) - 16
        header = data[:end]
        i = max(header.rfind(b'"shape":['), header.rfind(b'"v":'))
        j = i + header[i:].index(b":") + 1
        while not chr(data[j]).isdigit() and data[j : j + 1] != b'"':
            j += 1
        data[j] = ord("7") if data[j] != ord("7") else ord("8")
        path.write_bytes(bytes(data))
    elif how == "footer-flip":
        data[-3] ^= 0x01
        path.write_bytes(bytes(data))
    else:  # pragma: no cover
        raise ValueError(how)


@pytest.mark.parametrize(
    "how", ["missing", "empty", "truncated", "payload-flip", "header-flip", "footer-flip"]
)
@pytest.mark.parametrize("part", ["obs/leiden", "X", "uns/neighbors"])
def test_damaged_object_is_reported_by_name(
    store: SnapshotStore, adata: ad.AnnData, part: str, how: str
) -> None:
    info = store.write_snapshot(adata, parent=None, meta={})
    damaged = info.manifest.parts[part]
    _damage(store._object_path(damaged), how)
    with pytest.raises(StoreCorruptionError) as err:
        store.read_snapshot(info.id)
    assert repr(part) in err.value.message and info.id[:12] in err.value.message
    assert err.value.exit_code == 10
    problems = store.verify()
    assert repr(part) in problems[0]
    # every problem is that one object (X's object is shared with layers/counts)
    sharing = [p for p, h in info.manifest.parts.items() if h == damaged]
    assert len(problems) == len(sharing) and all(damaged[:12] in p for p in problems)
    assert store.verify(info.id) == problems


def test_damaged_manifest_is_refused(store: SnapshotStore, adata: ad.AnnData) -> None:
    info = store.write_snapshot(adata, parent=None, meta={"tool_id": "pca"})
    path = store._manifest_path(info.id)
    text = path.read_text()
    path.write_text(text.replace('"pca"', '"umap"'))
    with pytest.raises(StoreCorruptionError, match="manifest"):
        store.read_snapshot(info.id)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(StoreCorruptionError, match="manifest"):
        store.manifest(info.id)
    assert len(store.verify()) == 1
    # writing the same snapshot again repairs it
    assert store.write_snapshot(adata, parent=None, meta={"tool_id": "pca"}).id == info.id
    assert store.verify() == [] and store.manifest(info.id).meta == {"tool_id": "pca"}


def test_newer_format_is_refused(store: SnapshotStore, adata: ad.AnnData, tmp_path: Path) -> None:
    info = store.write_snapshot(adata, parent=None, meta={})
    path = store._manifest_path(info.id)
    data = json.loads(path.read_text())
    data["format"] = FORMAT_VERSION + 1
    data["scagent_version"] = "9.9.9"
    path.write_text(json.dumps(data))
    with pytest.raises(IncompatibleVersionError, match=r"9\.9\.9") as err:
        store.read_snapshot(info.id)
    assert err.value.exit_code == 12

    (tmp_path / "store" / "store.json").write_text(json.dumps({"format": FORMAT_VERSION + 1}))
    with pytest.raises(IncompatibleVersionError):
        SnapshotStore(tmp_path / "store")


# --------------------------------------------------------------------------- concurrency

_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import anndata as ad
    from scagent.session.store import SnapshotStore
    root, h5ad, go, tag = sys.argv[1:5]
    adata = ad.read_h5ad(h5ad)
    store = SnapshotStore(root)
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.005)
    ids = []
    for i in range(3):
        # the same first snapshot in every process, then one of this process's own
        meta = {"i": i} if i < 2 else {"i": i, "writer": tag}
        if i == 2:
            adata.obs["by_" + tag] = 1.0
        ids.append(store.write_snapshot(adata, parent=ids[-1] if ids else None, meta=meta).id)
    print(" ".join(ids))
    """
)


def test_concurrent_writers_do_not_corrupt_the_store(tmp_path: Path, adata: ad.AnnData) -> None:
    h5ad = tmp_path / "in.h5ad"
    _h5ad_compatible(adata).write_h5ad(h5ad)
    adata = ad.read_h5ad(h5ad)
    root, go = tmp_path / "store", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root), str(h5ad), str(go), f"w{k}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(3)
    ]
    for p in procs:  # start writing together, once every process has loaded its data
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    ids = [out.split() for out, _ in outputs]
    assert ids[0][:2] == ids[1][:2] == ids[2][:2]  # same content -> same snapshots
    assert len({row[2] for row in ids}) == 3
    store = SnapshotStore(root)
    assert store.verify() == []
    assert not list((root / "objects").rglob(".*"))  # no temporary files left behind
    _assert_same(store.read_snapshot(ids[0][1]), adata)
    for k, row in enumerate(ids):
        back = store.read_snapshot(row[2])
        assert (back.obs[f"by_w{k}"] == 1.0).all()
        assert [m.id for m in store.history(row[2])] == row
