"""TopK SAE training: planted truth, bad input, checkpoints, resume, SAELens compatibility."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scagent.errors import InvalidDataError, InvalidParameterError
from scagent.sae.activations import (
    ActivationBatch,
    NonFiniteActivationsError,
    ObsmSource,
    cache_activations,
    write_cache,
)
from scagent.sae.model import TopKSAE, load_sae, save_sae
from scagent.sae.train import (
    ConfigMismatchError,
    DeviceUnavailableError,
    evaluate,
    load_config,
    make_config,
    train_sae,
)

FAST = dict(
    d_sae=128, k=6, steps=700, batch_size=256, lr=3e-3, warmup_steps=30, dead_after=5000, threads=1
)


def best_cosines(sae: TopKSAE, directions: np.ndarray) -> np.ndarray:
    W = sae.W_dec.detach().numpy()
    W = W / np.linalg.norm(W, axis=1, keepdims=True)
    return (directions @ W.T).max(axis=1)


def test_planted_directions_are_recovered(planted_data, tmp_path):
    X, directions = planted_data
    result = train_sae(X, make_config(**FAST), tmp_path / "run")
    cos = best_cosines(result.sae, directions)
    ev = evaluate(result.sae, X)
    assert cos.mean() >= 0.9, cos.mean()
    assert ev["fvu"] < 0.1, ev
    assert ev["l0"] <= FAST["k"]
    metrics = json.loads((tmp_path / "run" / "training_metrics.json").read_text())
    assert metrics["history"][-1]["step"] == FAST["steps"]
    assert {"fvu", "l0", "dead_fraction", "acts_per_s"} <= set(metrics["final"])
    # The FVU falls as training goes on.
    assert metrics["history"][-1]["fvu"] < metrics["history"][0]["fvu"]
    # Saved folder reloads to the same encoder output on raw activations.
    loaded = load_sae(tmp_path / "run" / "sae")
    x = torch.from_numpy(X[:64])
    assert torch.allclose(loaded.encode(x), result.sae.encode(x), atol=1e-4)
    assert torch.allclose(loaded(x), result.sae(x), atol=1e-4)


def test_decoder_rows_stay_unit_norm(planted_data):
    X, _ = planted_data
    result = train_sae(X, make_config(**{**FAST, "steps": 50}))
    norms = result.sae.W_dec.detach().norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_k_must_be_below_d_sae():
    with pytest.raises(InvalidParameterError, match="k=64 must be below d_sae=64"):
        make_config(d_sae=64, k=64)
    with pytest.raises(InvalidParameterError, match="below d_sae"):
        TopKSAE(16, 8, 8)


def test_yaml_config_and_overrides(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("d_sae: 256\nk: 8\nlr: 0.001\n")
    cfg = load_config(path, k=16, steps=None)
    assert (cfg.d_sae, cfg.k, cfg.lr) == (256, 16, 0.001)
    path.write_text("d_sae: 256\nk: 8\nbogus: 1\n")
    with pytest.raises(InvalidParameterError, match="bogus"):
        load_config(path)


def test_nan_in_training_batch_names_the_batch():
    X = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    X[40, 3] = np.nan
    with pytest.raises(NonFiniteActivationsError, match="NaN"):
        train_sae(X, make_config(d_sae=16, k=2, steps=5, batch_size=16))


def test_nan_in_cached_batch_names_the_batch(tmp_path):
    good = np.ones((4, 3), dtype=np.float32)
    bad = good.copy()
    bad[1, 1] = np.inf
    batches = [
        ActivationBatch(np.array(list("abcd")), good),
        ActivationBatch(np.array(list("efgh")), bad),
    ]
    with pytest.raises(NonFiniteActivationsError, match="batch 1 contains 0 NaN and 1 Inf"):
        write_cache(batches, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    assert isinstance(NonFiniteActivationsError("x"), InvalidDataError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_typed_error():
    X = np.zeros((32, 4), dtype=np.float32)
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        train_sae(X, make_config(d_sae=8, k=2, steps=2, batch_size=8, device="cuda"))


def test_checkpoints_resume_and_config_mismatch(tmp_path, pbmc68k):
    cache = cache_activations(ObsmSource("X_pca"), pbmc68k, tmp_path / "acts", chunk_rows=256)
    assert cache.n_chunks == 3 and cache.n_rows == pbmc68k.n_obs
    params = dict(
        d_sae=32,
        k=4,
        batch_size=128,
        lr=1e-3,
        warmup_steps=5,
        checkpoint_every=10,
        log_every=5,
        threads=1,
    )
    run = tmp_path / "run"
    train_sae(cache, make_config(steps=20, **params), run)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_000010", "step_000020"]
    resumed = train_sae(cache, make_config(steps=30, **params), run, resume=True)
    steps = [h["step"] for h in resumed.metrics["history"]]
    assert steps == [5, 10, 15, 20, 25, 30]
    with pytest.raises(ConfigMismatchError, match="k: checkpoint 4 vs now 5"):
        train_sae(cache, make_config(steps=40, **{**params, "k": 5}), run, resume=True)


def test_sae_lens_loads_our_checkpoint(planted_data, tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    X, _ = planted_data
    result = train_sae(X, make_config(**{**FAST, "steps": 100}))
    save_sae(result.sae, tmp_path / "sae", metadata={"hook_name": "blocks.0.hook_mlp_out"})
    theirs = sae_lens.SAE.load_from_disk(tmp_path / "sae")
    assert type(theirs).__name__ == "TopKSAE" and theirs.cfg.k == FAST["k"]
    x = torch.from_numpy(X[:128])
    with torch.no_grad():
        assert torch.allclose(theirs.encode(x), result.sae.encode(x), atol=1e-4)
        assert torch.allclose(theirs(x), result.sae(x), atol=1e-4)
