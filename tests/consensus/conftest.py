"""Fixtures of the consensus tests: small simulated data with known types, a typed run, the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sim():
    """600 simulated PBMC-like cells (known cell types), log-normalized with a PCA."""
    import scanpy as sc

    from scagent.data import simulate

    adata = simulate(n_cells=600, n_genes=600, seed=7)
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=20, random_state=0)
    return adata


@pytest.fixture(scope="session")
def sim_file(sim, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("consensus_data") / "sim.h5ad"
    sim.write_h5ad(path)
    return path


def _run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``scagent ARGS`` through the real entry point, registering our commands if needed."""
    from scagent.cli import consensus as cli_consensus
    from scagent.cli.main import app, main

    if not any(c.name == "interpret" for c in app.registered_commands):
        cli_consensus.register(app)
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def base_run(sim_file, tmp_path_factory) -> Path:
    """A typed run (default members, kmode) of the simulated data, written once."""
    from scagent.consensus import consensus, write_run
    from scagent.data import read

    out = tmp_path_factory.mktemp("consensus_runs") / "run"
    res = consensus(read(sim_file), seed=0, inplace=False)
    write_run(res, out, input_path=sim_file)
    return out


@pytest.fixture
def run_dir(base_run, tmp_path) -> Path:
    """A private copy of the typed run, free to tamper with."""
    dst = tmp_path / "run"
    shutil.copytree(base_run, dst)
    return dst


def _folder_checksums(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _planted_members(truth: np.ndarray, n_members: int = 5, noise: float = 0.1, seed: int = 0):
    """Members that are the truth, relabelled at random and with a share of cells mislabelled."""
    rng = np.random.default_rng(seed)
    k = int(truth.max()) + 1
    out = []
    for _ in range(n_members):
        perm = rng.permutation(k)
        lab = perm[truth].copy()
        flip = rng.random(len(truth)) < noise
        lab[flip] = rng.integers(0, k, flip.sum())
        out.append(lab)
    return out


@pytest.fixture
def run_cli():
    """``run_cli(capsys, *args) -> (exit code, stdout, stderr)`` through the real entry point."""
    return _run_cli


@pytest.fixture
def folder_checksums():
    """``folder_checksums(folder) -> {relative path: sha256}``."""
    return _folder_checksums


@pytest.fixture
def planted_members():
    """``planted_members(truth, n_members, noise, seed)``: relabelled noisy copies of the truth."""
    return _planted_members
