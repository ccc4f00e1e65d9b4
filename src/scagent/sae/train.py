"""Train a TopK SAE on streamed activations: warm-up, AuxK for dead latents, metrics, checkpoints, resume.

The loop is our own because SAELens's trainer takes its activations from a
TransformerLens model or its own store, not from an arbitrary stream; the model and the
saved folders stay SAELens-compatible (see :mod:`scagent.sae.model`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scagent._atomic import atomic_path, atomic_write_text
from scagent.errors import InputNotFoundError, InvalidParameterError, MissingDependencyError
from scagent.sae.activations import ActivationCache, NonFiniteActivationsError
from scagent.sae.model import TopKSAE, load_sae, save_sae

__all__ = [
    "ConfigMismatchError",
    "DeviceUnavailableError",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load_config",
    "make_config",
    "train_sae",
]


class DeviceUnavailableError(InvalidParameterError):
    """The requested torch device is not available here (exit code 2)."""

    default_remedy = "use --device cpu, or run on a machine with that accelerator"


class ConfigMismatchError(InvalidParameterError):
    """A resume was asked with a config that differs from the checkpoint's (exit code 2)."""

    default_remedy = (
        "resume with the checkpoint's config (config.yaml in the run folder) or start a new --out"
    )


#: Fields that may change between a checkpoint and its resume; all others must match.
RESUMABLE_CHANGES = frozenset({"steps", "device", "log_every", "checkpoint_every", "threads"})


class TrainConfig(BaseModel):
    """Training configuration (YAML keys are the field names).

    Defaults follow Gao et al. 2024: Adam with eps 6.25e-10, AuxK coefficient 1/32 with
    ``aux_k = d_in // 2``, a latent counted dead after ``dead_after`` activations without
    firing, inputs scaled to mean norm sqrt(d_in).
    """

    model_config = ConfigDict(extra="forbid")

    d_in: int | None = Field(None, ge=1, description="input width; taken from the source when None")
    d_sae: int = Field(1024, ge=2, description="number of latents")
    k: int = Field(32, ge=1, description="active latents per input")
    lr: float = Field(2e-4, gt=0, description="peak learning rate")
    warmup_steps: int = Field(100, ge=0, description="linear learning-rate warm-up")
    decay_fraction: float = Field(
        0.2, ge=0, le=1, description="final share of steps with linear decay to 0"
    )
    batch_size: int = Field(4096, ge=1)
    steps: int = Field(2000, ge=1)
    seed: int = 0
    device: Literal["cpu", "cuda", "mps"] = "cpu"
    aux_k: int | None = Field(
        None, ge=1, description="dead latents used by AuxK; d_in // 2 when None"
    )
    aux_coefficient: float = Field(1 / 32, ge=0)
    dead_after: int = Field(
        1_000_000, ge=1, description="activations without firing before a latent counts as dead"
    )
    normalize: bool = Field(True, description="scale inputs to mean norm sqrt(d_in)")
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(0, ge=0, description="0: only the final checkpoint")
    threads: int | None = Field(None, ge=1, description="torch CPU threads")

    @model_validator(mode="after")
    def _k_below_d_sae(self) -> TrainConfig:
        if self.k >= self.d_sae:
            raise ValueError(f"k={self.k} must be below d_sae={self.d_sae}")
        return self


def make_config(**params: Any) -> TrainConfig:
    """Build a :class:`TrainConfig`, turning validation failures into InvalidParameterError."""
    try:
        return TrainConfig(**params)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()
        )
        raise InvalidParameterError(
            f"invalid SAE training config: {problems}",
            remedy="fix the value (k < d_sae, positive sizes); see `scagent sae train --help`",
        ) from None


def load_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """Read a YAML config, apply ``overrides`` (None values are ignored) and validate it."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputNotFoundError(f"config file {str(p)!r} does not exist")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise InvalidParameterError(f"{str(p)!r} is not a YAML mapping of config keys")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return make_config(**data)


def _device(name: str) -> Any:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError("device 'cuda' was asked for but no CUDA GPU is available")
    if name == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DeviceUnavailableError("device 'mps' was asked for but Apple MPS is not available")
    return torch.device(name)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - torch is installed in dev
        raise MissingDependencyError(
            "SAE training needs torch", remedy="pip install 'scagent[sae]'"
        ) from err
    return torch


def _array_batches(data: np.ndarray, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(data))
        for b in range(0, len(order) - batch_size + 1, batch_size):
            yield np.asarray(data[np.sort(order[b : b + batch_size])], dtype=np.float32)
        if len(data) < batch_size:
            yield np.asarray(data[order], dtype=np.float32)


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    decay_start = int(cfg.steps * (1 - cfg.decay_fraction))
    if cfg.decay_fraction and step >= decay_start:
        warm *= max(0.0, (cfg.steps - step) / max(1, cfg.steps - decay_start))
    return warm


@dataclass
class TrainResult:
    """What :func:`train_sae` returns."""

    sae: TopKSAE
    config: TrainConfig
    metrics: dict[str, Any]
    folder: Path | None


def _config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [
        f"{k}: checkpoint {old.get(k)!r} vs now {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k)
    ]


def _save_checkpoint(
    folder: Path, sae: TopKSAE, opt: Any, step: int, since_fired: Any, cfg: TrainConfig, meta: dict
) -> None:
    import torch

    save_sae(sae, folder, metadata=meta)
    state = {
        "step": step,
        "model": {k: v.detach().cpu() for k, v in sae.state_dict().items()},
        "input_scale": sae.input_scale,
        "optimizer": opt.state_dict(),
        "since_fired": since_fired.cpu(),
        "config": cfg.model_dump(),
    }
    with atomic_path(folder / "trainer_state.pt") as tmp:
        torch.save(state, tmp)


def train_sae(
    data: ActivationCache | np.ndarray,
    config: TrainConfig,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = False,
    progress: bool = False,
    metadata: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a TopK SAE on an activation cache (streamed) or an in-memory array.

    Parameters
    ----------
    data
        An :class:`ActivationCache` (streamed chunk by chunk) or a rows x d_in array.
    config
        The :class:`TrainConfig`; ``d_in`` is filled from the data when None.
    out_dir
        Run folder: ``sae/`` (final SAELens folder), ``checkpoints/step_NNNNNN/``,
        ``config.yaml`` and ``training_metrics.json``. None: nothing is written.
    resume
        Continue from the latest checkpoint in ``out_dir``; its config must match except
        for ``steps``, ``device``, ``log_every``, ``checkpoint_every`` and ``threads``.
    progress
        Show a rich progress bar.
    metadata
        Extra keys for the saved ``cfg.json`` metadata (source, layer, model hash...).

    Raises
    ------
    InvalidParameterError
        ``d_in`` that does not match the data, ``k >= d_sae``.
    DeviceUnavailableError
        cuda/mps asked for but absent.
    ConfigMismatchError
        ``resume`` with a different config.
    NonFiniteActivationsError
        A batch with NaN/Inf (the message names the step).
    """
    torch = _import_torch()
    d_in = data.d_in if isinstance(data, ActivationCache) else int(np.asarray(data).shape[1])
    if config.d_in is not None and config.d_in != d_in:
        raise InvalidParameterError(
            f"config d_in={config.d_in} but the activations have width {d_in}"
        )
    cfg = config.model_copy(update={"d_in": d_in})
    device = _device(cfg.device)
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(torch, data, cfg, d_in, device, out_dir, resume, progress, metadata)
    finally:
        torch.set_num_threads(threads_before)  # the setting is process-wide: give it back


def _train(
    torch: Any,
    data: ActivationCache | np.ndarray,
    cfg: TrainConfig,
    d_in: int,
    device: Any,
    out_dir: str | os.PathLike[str] | None,
    resume: bool,
    progress: bool,
    metadata: dict[str, Any] | None,
) -> TrainResult:
    out = Path(out_dir) if out_dir is not None else None

    torch.manual_seed(cfg.seed)
    start_step, history = 0, []
    state: dict[str, Any] | None = None
    if resume:
        if out is None:
            raise InvalidParameterError("resume=True needs out_dir (the run folder to resume)")
        ckpts = (
            sorted((out / "checkpoints").glob("step_*")) if (out / "checkpoints").is_dir() else []
        )
        if not ckpts:
            raise InputNotFoundError(
                f"nothing to resume in {str(out)!r}: no checkpoints/step_* folder",
                remedy="train without --resume first (use --checkpoint-every to keep checkpoints)",
            )
        state = torch.load(ckpts[-1] / "trainer_state.pt", map_location="cpu", weights_only=True)
        diff = _config_diff(state["config"], cfg.model_dump())
        if diff:
            raise ConfigMismatchError(
                f"cannot resume {str(ckpts[-1])!r} with a different config: " + "; ".join(diff)
            )
        start_step = int(state["step"])
        metrics_path = out / "training_metrics.json"
        if metrics_path.is_file():
            history = [
                h
                for h in json.loads(metrics_path.read_text())["history"]
                if h["step"] <= start_step
            ]

    if state is None:
        sample = (
            data.sample(20000, seed=cfg.seed)
            if isinstance(data, ActivationCache)
            else np.asarray(
                data[np.random.default_rng(cfg.seed).permutation(len(data))[:20000]],
                dtype=np.float32,
            )
        )
        if not np.isfinite(sample).all():
            raise NonFiniteActivationsError("activations contain NaN or Inf (found while sampling)")
        mean_norm = float(np.linalg.norm(sample - sample.mean(0), axis=1).mean())
        scale = math.sqrt(d_in) / mean_norm if cfg.normalize and mean_norm > 0 else 1.0
        sae = TopKSAE(d_in, cfg.d_sae, cfg.k, input_scale=scale)
        with torch.no_grad():
            # Gao et al. start the pre-encoder bias at the data's (geometric) median; the mean serves.
            sae.b_dec.copy_(torch.from_numpy(sample.mean(0) * scale))
    else:
        sae = TopKSAE(d_in, cfg.d_sae, cfg.k, input_scale=float(state["input_scale"]))
        sae.load_state_dict(state["model"])
    sae = sae.to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=6.25e-10)
    since_fired = torch.zeros(cfg.d_sae, dtype=torch.long, device=device)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        since_fired = state["since_fired"].to(device)

    stream_seed = cfg.seed + start_step  # a resumed run continues with a fresh shuffle
    stream = (
        data.iter_batches(cfg.batch_size, seed=stream_seed)
        if isinstance(data, ActivationCache)
        else _array_batches(np.asarray(data), cfg.batch_size, stream_seed)
    )
    aux_k = cfg.aux_k or max(1, d_in // 2)
    save_meta = {**(metadata or {}), "scagent_train_config": cfg.model_dump()}
    if out is not None:
        import yaml

        atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg.model_dump(), sort_keys=False))

    bar = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(
            TextColumn("[bold]SAE"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
        )
        bar.start()
        task = bar.add_task("train", total=cfg.steps, completed=start_step, info="")
    scale = sae.input_scale
    t_last, rows_last = time.perf_counter(), 0
    try:
        for step in range(start_step, cfg.steps):
            batch = torch.from_numpy(next(stream)).to(device)
            if not bool(torch.isfinite(batch).all()):
                raise NonFiniteActivationsError(
                    f"training batch {step} (step {step}) contains NaN or Inf activations"
                )
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(step, cfg)
            x = batch * scale
            pre = sae.pre_activations(x)
            values, indices = sae.topk(pre)
            recon = sae.decode_norm(sae.dense(values, indices))
            err = recon - x
            mse = err.pow(2).sum(-1).mean()
            loss = mse
            dead = since_fired >= cfg.dead_after
            n_dead = int(dead.sum())
            aux = torch.zeros((), device=device)
            if n_dead and cfg.aux_coefficient:
                # AuxK (Gao et al. App. A.2): the top dead latents reconstruct the residual.
                dead_idx = dead.nonzero().squeeze(1)
                k_aux = min(aux_k, n_dead)
                tv, ti = pre[:, dead_idx].topk(k_aux, dim=-1, sorted=False)
                aux_acts = torch.zeros(x.shape[0], n_dead, device=device).scatter_(
                    -1, ti, tv.relu()
                )
                aux_recon = aux_acts @ sae.W_dec[dead_idx]
                aux = (aux_recon - (-err).detach()).pow(2).sum(-1).mean()
                loss = mse + cfg.aux_coefficient * aux
            opt.zero_grad(set_to_none=True)
            loss.backward()
            sae.remove_parallel_decoder_grad()
            opt.step()
            sae.normalize_decoder()
            with torch.no_grad():
                fired = torch.zeros(cfg.d_sae, dtype=torch.bool, device=device)
                fired[indices[values > 0]] = True
                since_fired += x.shape[0]
                since_fired[fired] = 0
            rows_last += x.shape[0]
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                with torch.no_grad():
                    fvu = float(err.pow(2).sum() / (x - x.mean(0)).pow(2).sum().clamp_min(1e-12))
                    l0 = float((values > 0).sum(-1).float().mean())
                now = time.perf_counter()
                record = {
                    "step": step + 1,
                    "loss": loss.item(),
                    "mse": mse.item(),
                    "aux_loss": aux.item(),
                    "fvu": fvu,
                    "l0": l0,
                    "dead_fraction": n_dead / cfg.d_sae,
                    "acts_per_s": rows_last / max(now - t_last, 1e-9),
                    "lr": opt.param_groups[0]["lr"],
                }
                history.append(record)
                t_last, rows_last = now, 0
                if bar is not None:
                    bar.update(
                        task, info=f"fvu {fvu:.3f} L0 {l0:.0f} dead {n_dead / cfg.d_sae:.1%}"
                    )
                if out is not None:
                    _write_metrics(out, cfg, history)
            if bar is not None:
                bar.update(task, completed=step + 1)
            if out is not None and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
                _save_checkpoint(
                    out / "checkpoints" / f"step_{step + 1:06d}",
                    sae,
                    opt,
                    step + 1,
                    since_fired,
                    cfg,
                    save_meta,
                )
    finally:
        if bar is not None:
            bar.stop()
    metrics = {
        "config": cfg.model_dump(),
        "history": history,
        "final": history[-1] if history else {},
    }
    if out is not None:
        _save_checkpoint(
            out / "checkpoints" / f"step_{cfg.steps:06d}",
            sae,
            opt,
            cfg.steps,
            since_fired,
            cfg,
            save_meta,
        )
        save_sae(sae, out / "sae", metadata=save_meta)
        _write_metrics(out, cfg, history)
    return TrainResult(sae=sae.cpu(), config=cfg, metrics=metrics, folder=out)


def _write_metrics(out: Path, cfg: TrainConfig, history: list[dict[str, Any]]) -> None:
    payload = {
        "config": cfg.model_dump(),
        "history": history,
        "final": history[-1] if history else {},
    }
    atomic_write_text(out / "training_metrics.json", json.dumps(payload, indent=1))


def evaluate(
    sae: TopKSAE | str | os.PathLike[str],
    data: ActivationCache | np.ndarray,
    batch_size: int = 8192,
) -> dict[str, float]:
    """Fraction of variance unexplained and L0 over all rows (streamed), in raw space."""
    torch = _import_torch()
    if not isinstance(sae, TopKSAE):
        sae = load_sae(sae)
    chunks = (
        (c[0] for c in data.iter_chunks())
        if isinstance(data, ActivationCache)
        else (np.asarray(data),)
    )
    sq_err = 0.0
    n = 0
    s1 = s2 = None
    l0 = 0.0
    with torch.no_grad():
        for chunk in chunks:
            for b in range(0, len(chunk), batch_size):
                x = torch.from_numpy(np.asarray(chunk[b : b + batch_size], dtype=np.float64))
                acts = sae.encode(x.float())
                recon = sae.decode(acts).double()
                sq_err += float((recon - x).pow(2).sum())
                s1 = x.sum(0) if s1 is None else s1 + x.sum(0)
                s2 = x.pow(2).sum(0) if s2 is None else s2 + x.pow(2).sum(0)
                l0 += float((acts > 0).sum())
                n += x.shape[0]
    total_var = float((s2 - s1.pow(2) / n).sum())
    return {"fvu": sq_err / max(total_var, 1e-12), "l0": l0 / max(n, 1), "n_rows": n}
