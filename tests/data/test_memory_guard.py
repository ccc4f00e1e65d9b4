"""The memory guard of scagent.data.read: a file too large for memory fails before loading."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import scagent.data.memory as memory
from scagent.data import read
from scagent.errors import DataStateError


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    import anndata as ad

    folder = tmp_path_factory.mktemp("guard")
    X = sp.random(2_000, 500, density=0.1, format="csr", random_state=0, dtype=np.float32)
    X.data = np.ceil(X.data * 5)
    adata = ad.AnnData(X, layers={"counts": X.copy()})
    paths = {"h5ad": folder / "big.h5ad", "zarr": folder / "big.zarr"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_h5ad(paths["h5ad"])
        adata.write_zarr(paths["zarr"])
    nbytes = 2 * (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)  # X + the layer
    return {**paths, "nbytes": nbytes}


@pytest.mark.parametrize("fmt", ["h5ad", "zarr"])
def test_read_refuses_a_file_that_would_not_fit(files, fmt, monkeypatch) -> None:
    loaded: list[str] = []
    import scagent.data.io as io

    real_parse = io._parse
    monkeypatch.setattr(io, "_parse", lambda *a, **k: loaded.append("parse") or real_parse(*a, **k))
    need = memory.estimate_in_memory_bytes(files[fmt])
    assert 0.95 * files["nbytes"] <= need <= 1.5 * files["nbytes"]
    monkeypatch.setattr(memory, "available_memory", lambda: int(1.5 * need))  # fits, not twice
    with pytest.raises(DataStateError) as err:
        read(files[fmt])
    assert f"big.{fmt}" in err.value.message and "GiB" in err.value.message
    assert "read_lazy" in err.value.remedy and "scagent scale" in err.value.remedy
    assert loaded == []  # refused before the reader ran
    monkeypatch.setattr(memory, "available_memory", lambda: 10 * need)
    adata = read(files[fmt])
    assert loaded == ["parse"] and adata.shape == (2_000, 500)


def test_backed_read_and_scale_reexport_skip_or_share_the_guard(files, monkeypatch) -> None:
    import scagent.scale as scale

    monkeypatch.setattr(memory, "available_memory", lambda: 1)
    adata = read(files["h5ad"], backed=True)  # X stays on disk: no check
    try:
        assert adata.isbacked
    finally:
        adata.file.close()
    assert scale.check_fits_in_memory is memory.check_fits_in_memory
    with pytest.raises(DataStateError):
        scale.read_checked(files["zarr"])
