"""SAE training with torch.distributed: 2 gloo processes under torchrun take the same steps
as one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _activations(path) -> np.ndarray:
    rng = np.random.default_rng(0)
    # 8 sparse directions in 24 dimensions: an SAE can find them, so the loss must fall.
    atoms = rng.normal(size=(8, 24))
    codes = rng.exponential(size=(600, 8)) * (rng.random((600, 8)) < 0.25)
    data = (codes @ atoms + 0.01 * rng.normal(size=(600, 24))).astype(np.float32)
    np.save(path, data)
    return data


def test_global_batches_partition_over_ranks():
    from scagent.scale.ddp import global_batch_rows

    whole = global_batch_rows(100, 20, 7, seed=3, rank=0, world_size=1)
    halves = [global_batch_rows(100, 20, 7, seed=3, rank=r, world_size=2) for r in (0, 1)]
    assert len(whole) == 20 and all(len(h) == 10 for h in halves)
    np.testing.assert_array_equal(np.sort(np.concatenate(halves)), whole)
    assert set(halves[0]).isdisjoint(halves[1])


def test_torchrun_two_gloo_processes_match_one(tmp_path):
    from safetensors.torch import load_file

    from scagent.errors import InvalidParameterError
    from scagent.scale.ddp import train_ddp

    data = _activations(tmp_path / "acts.npy")
    args = ["--d-sae", "32", "--k", "4", "--steps", "40", "--batch-size", "64", "--lr", "1e-2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--standalone", "-m", "scagent.scale.ddp",
        "--data", str(tmp_path / "acts.npy"), "--out", str(tmp_path / "ddp"), *args,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "ddp_metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["losses"][-1] < 0.5 * metrics["losses"][0]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the ranks run with one thread: same summation order here
    try:
        single = train_ddp(data, tmp_path / "one", d_sae=32, k=4, steps=40, batch_size=64, lr=1e-2)
    finally:
        torch.set_num_threads(threads)
    assert single["world_size"] == 1
    np.testing.assert_allclose(metrics["losses"], single["losses"], rtol=1e-3)
    two = load_file(str(tmp_path / "ddp" / "sae_weights.safetensors"))
    one = load_file(str(tmp_path / "one" / "sae_weights.safetensors"))
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        np.testing.assert_allclose(two[name].numpy(), one[name].numpy(), rtol=1e-3, atol=1e-4)

    with pytest.raises(InvalidParameterError, match="multiple"):
        os.environ["WORLD_SIZE"] = "2"
        try:
            train_ddp(data, None, d_sae=32, k=4, steps=1, batch_size=63)
        finally:
            del os.environ["WORLD_SIZE"]
