"""Training streams from the disk cache: peak memory stays far below the cache's size."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from scagent.sae.activations import ActivationBatch, write_cache

_TRAIN = """
import sys
from scagent.sae.activations import ActivationCache
from scagent.sae.train import make_config, train_sae
cache = ActivationCache(sys.argv[1])
steps = cache.n_rows // 4096
train_sae(cache, make_config(d_sae=256, k=16, batch_size=4096, steps=steps, log_every=100))
# VmHWM: this process's own peak (ru_maxrss would inherit pytest's across fork).
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(hwm, steps)
"""


@pytest.mark.slow
def test_streamed_training_memory(tmp_path):
    n, d = 2_000_000, 256
    rng = np.random.default_rng(0)

    def batches():
        for s in range(0, n, 65536):
            m = min(65536, n - s)
            yield ActivationBatch(
                np.arange(s, s + m).astype(str), rng.standard_normal((m, d), dtype=np.float32)
            )

    cache = write_cache(batches(), tmp_path / "cache", chunk_rows=65536)
    size_gb = sum(p.stat().st_size for p in cache.folder.glob("acts_*.npy")) / 2**30
    assert size_gb > 1.8
    out = subprocess.run(
        [sys.executable, "-c", _TRAIN, str(cache.folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    rss_kb, steps = map(int, out.stdout.split())
    assert steps * 4096 > 0.99 * n  # one full pass over the cache
    assert rss_kb / 2**20 < 0.6 * size_gb, rss_kb
