"""TopK SAE training across processes with torch.distributed (DDP), launched by ``torchrun``.

Every rank draws the same global batch order from the seed and trains on its own slice of
each global batch; DDP averages the gradients, so N ranks with global batch B take exactly
the steps one process takes with batch B (TopK is per row, the loss a per-row mean). GPUs
use the NCCL backend, CPUs gloo.

    torchrun --nproc_per_node 4 -m scagent.scale.ddp --data acts.npy --out sae/ \\
        --d-sae 4096 --k 32 --steps 5000 --batch-size 8192 --device cuda

This is a compact loop (MSE on normalised inputs, Adam, unit-norm decoder rows) around
:class:`scagent.sae.model.TopKSAE`; the single-process trainer with AuxK, warm-up and
checkpoints is :func:`scagent.sae.train.train_sae`. The saved folder is the same SAELens
layout (:func:`scagent.sae.model.save_sae`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from scagent._atomic import atomic_write_text
from scagent.errors import InvalidParameterError

__all__ = ["global_batch_rows", "train_ddp"]


def global_batch_rows(
    n_rows: int, batch_size: int, step: int, seed: int, rank: int, world_size: int
) -> np.ndarray:
    """Rows of ``rank``'s slice of global batch ``step`` (same permutation on every rank).

    Global batches walk through a fresh permutation of the rows each epoch; rank ``r``
    takes every ``world_size``-th row of the global batch starting at ``r``.
    """
    per_epoch = max(n_rows // batch_size, 1)
    epoch, within = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n_rows)
    rows = perm[within * batch_size : (within + 1) * batch_size]
    return np.sort(rows[rank::world_size])


def train_ddp(
    data: np.ndarray,
    out: str | os.PathLike[str] | None,
    *,
    d_sae: int,
    k: int,
    steps: int,
    batch_size: int,
    lr: float = 2e-4,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train a TopK SAE on ``data`` in this rank of an initialised (or single) process group.

    Call under ``torchrun`` (it sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``); without it the
    loop runs as one process. Rank 0 saves the model to ``out``.

    Parameters
    ----------
    data
        Activations, rows x d_in (each rank holds or memory-maps the whole array).
    out
        Folder for the SAELens-layout model and ``ddp_metrics.json`` (rank 0); ``None``:
        save nothing.
    d_sae, k, steps, batch_size, lr, seed
        Latents, active latents, optimizer steps, *global* batch size (split over ranks),
        Adam learning rate and seed.
    device
        ``cpu`` (gloo) or ``cuda`` (NCCL, one GPU per rank: ``cuda:LOCAL_RANK``).

    Returns
    -------
    ``world_size``, ``losses`` (global mean per step), ``seconds`` and on rank 0 ``out``.
    """
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from scagent.sae.model import TopKSAE, save_sae

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if batch_size < world_size or batch_size % world_size:
        raise InvalidParameterError(
            f"batch_size {batch_size} must be a multiple of the {world_size} processes",
            remedy=f"use --batch-size {max(world_size, batch_size // world_size * world_size)}",
        )
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    started_group = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        started_group = True
    try:
        data = np.asarray(data, dtype=np.float32)
        d_in = data.shape[1]
        # Every rank computes the same input scale from the whole array: no broadcast needed.
        mean_norm = float(np.linalg.norm(data, axis=1).mean()) or 1.0
        torch.manual_seed(seed)  # same initial weights on every rank (DDP also broadcasts)
        sae = TopKSAE(d_in, d_sae, k, input_scale=float(np.sqrt(d_in)) / mean_norm).to(dev)
        model = DistributedDataParallel(sae) if world_size > 1 else sae
        opt = torch.optim.Adam(sae.parameters(), lr=lr, eps=6.25e-10)
        losses = []
        start = time.perf_counter()
        for step in range(steps):
            rows = global_batch_rows(len(data), batch_size, step, seed, rank, world_size)
            x = torch.from_numpy(data[rows]).to(dev) * sae.input_scale
            x_hat = model_forward(model, sae, x)
            loss = (x_hat - x).pow(2).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()  # DDP all-reduces (averages) the gradients here
            sae.remove_parallel_decoder_grad()
            opt.step()
            sae.normalize_decoder()
            report = loss.detach().clone()
            if world_size > 1:
                dist.all_reduce(report)
                report /= world_size
            losses.append(float(report))
        result: dict[str, Any] = {
            "world_size": world_size,
            "rank": rank,
            "losses": losses,
            "seconds": round(time.perf_counter() - start, 3),
        }
        if out is not None and rank == 0:
            folder = Path(out)
            save_sae(
                sae, folder, metadata={"trainer": "scagent.scale.ddp", "world_size": world_size}
            )
            atomic_write_text(folder / "ddp_metrics.json", json.dumps(result))
            result["out"] = str(folder)
        return result
    finally:
        if started_group:
            dist.destroy_process_group()


def model_forward(model: Any, sae: Any, x_norm: Any) -> Any:
    """Reconstruction of normalised inputs through the (possibly DDP-wrapped) model.

    DDP hooks gradients only on calls through the wrapper, so the normalised-space forward
    is routed via ``model(x)`` on raw-space inputs, then mapped back.
    """
    return model(x_norm / sae.input_scale) * sae.input_scale


def main(argv: list[str] | None = None) -> None:
    """Command line for ``torchrun -m scagent.scale.ddp``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="activations .npy (rows x d_in)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--d-sae", type=int, default=1024)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    data = np.load(args.data, mmap_mode="r")
    train_ddp(
        data,
        args.out,
        d_sae=args.d_sae,
        k=args.k,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
    )


if __name__ == "__main__":
    main()
