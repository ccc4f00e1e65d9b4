"""A TopK sparse autoencoder (Gao et al. 2024) whose weights and config SAELens can load.

Parameter names, shapes and the forward pass follow SAELens v6's ``TopKSAE``
(``W_enc`` d_in x d_sae, ``b_enc``, ``W_dec`` d_sae x d_in, ``b_dec``; the decoder bias is
subtracted before encoding). We keep our own small module so that training needs neither
SAELens nor TransformerLens at import time; :func:`save_sae` writes the SAELens folder
layout (``cfg.json`` + ``sae_weights.safetensors``) and the tests load it with SAELens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scagent._atomic import atomic_path, atomic_write_text
from scagent.errors import CorruptInputError, InputNotFoundError, InvalidParameterError

__all__ = ["SAE_CFG_FILENAME", "SAE_WEIGHTS_FILENAME", "TopKSAE", "load_sae", "save_sae"]

#: File names SAELens expects in a saved SAE folder.
SAE_WEIGHTS_FILENAME = "sae_weights.safetensors"
SAE_CFG_FILENAME = "cfg.json"


class TopKSAE(nn.Module):
    """TopK SAE: ``f = TopK(ReLU-free pre) -> ReLU``, ``x_hat = f @ W_dec + b_dec``.

    Parameters
    ----------
    d_in
        Width of the activations.
    d_sae
        Number of latents (features).
    k
        Active latents per input; must be below ``d_sae``.
    input_scale
        Factor the inputs are multiplied by before encoding (input normalisation, recorded
        with the model so that encode/decode take raw activations).
    """

    def __init__(self, d_in: int, d_sae: int, k: int, input_scale: float = 1.0) -> None:
        super().__init__()
        if d_in < 1 or d_sae < 1:
            raise InvalidParameterError(f"d_in={d_in} and d_sae={d_sae} must be positive")
        if not 0 < k < d_sae:
            raise InvalidParameterError(
                f"k={k} must be at least 1 and below d_sae={d_sae}",
                remedy="choose k < d_sae (typically k is 1-5% of d_sae)",
            )
        self.d_in, self.d_sae, self.k = int(d_in), int(d_sae), int(k)
        self.input_scale = float(input_scale)
        w_dec = torch.randn(d_sae, d_in)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)
        # Gao et al.: initialise the encoder as the decoder's transpose.
        self.W_enc = nn.Parameter(w_dec.T.clone().contiguous())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    # -- forward pieces, all in the normalised space ----------------------------------
    def pre_activations(self, x_norm: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations of already normalised inputs."""
        return torch.addmm(self.b_enc, x_norm - self.b_dec, self.W_enc)

    def topk(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Values (after ReLU) and indices of the k largest pre-activations per row."""
        values, indices = pre.topk(self.k, dim=-1, sorted=False)
        return values.relu(), indices

    def dense(self, values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Scatter TopK values into a dense batch x d_sae matrix."""
        out = torch.zeros(values.shape[0], self.d_sae, dtype=values.dtype, device=values.device)
        return out.scatter_(-1, indices, values)

    def decode_norm(self, acts: torch.Tensor) -> torch.Tensor:
        """Reconstruction in the normalised space."""
        return torch.addmm(self.b_dec, acts, self.W_dec)

    # -- public API on raw activations -------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Dense latent activations (batch x d_sae) of raw inputs."""
        values, indices = self.topk(self.pre_activations(x * self.input_scale))
        return self.dense(values, indices)

    def decode(self, acts: torch.Tensor) -> torch.Tensor:
        """Raw-space reconstruction from latent activations."""
        return self.decode_norm(acts) / self.input_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Project decoder rows back to unit norm (Gao et al. keep them unit-norm)."""
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def remove_parallel_decoder_grad(self) -> None:
        """Drop the gradient component along each decoder row, so steps keep the norm."""
        if self.W_dec.grad is None:
            return
        parallel = (self.W_dec.grad * self.W_dec).sum(dim=1, keepdim=True)
        self.W_dec.grad.sub_(parallel * self.W_dec)

    def folded_state(self) -> dict[str, torch.Tensor]:
        """Weights with the input scale folded in: encode/decode of raw activations, scale 1.

        ``(s x - b) W = (x - b/s)(s W)`` and ``(f W_dec + b_dec)/s``; feature activations are
        unchanged, the decoder rows keep their directions.
        """
        s = self.input_scale
        return {
            "W_enc": (self.W_enc.detach() * s).contiguous(),
            "b_enc": self.b_enc.detach().clone(),
            "W_dec": (self.W_dec.detach() / s).contiguous(),
            "b_dec": (self.b_dec.detach() / s).contiguous(),
        }


def _sae_lens_cfg(sae: TopKSAE, metadata: dict[str, Any]) -> dict[str, Any]:
    # The keys of SAELens's TopKSAEConfig.to_dict(); unknown keys are ignored on load.
    return {
        "architecture": "topk",
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "k": sae.k,
        "rescale_acts_by_decoder_norm": False,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "model_name": metadata.get("model_name", "scagent"),
            "hook_name": metadata.get("hook_name", "activations"),
            "scagent_input_scale": sae.input_scale,
            **{k: v for k, v in metadata.items() if k not in ("model_name", "hook_name")},
        },
    }


def save_sae(
    sae: TopKSAE, folder: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``cfg.json`` and ``sae_weights.safetensors`` (SAELens layout) into ``folder``.

    The input scale is folded into the weights (SAELens then needs no normalisation step)
    and recorded in ``cfg.json``'s metadata as ``scagent_input_scale``.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / SAE_WEIGHTS_FILENAME) as tmp:
        save_file({k: v.cpu() for k, v in sae.folded_state().items()}, str(tmp))
    atomic_write_text(
        folder / SAE_CFG_FILENAME, json.dumps(_sae_lens_cfg(sae, metadata or {}), indent=2)
    )
    return folder


def load_sae(folder: str | os.PathLike[str], device: str = "cpu") -> TopKSAE:
    """Load an SAE saved by :func:`save_sae` (or any SAELens ``topk`` folder)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg_path, weights_path = folder / SAE_CFG_FILENAME, folder / SAE_WEIGHTS_FILENAME
    if not cfg_path.is_file() or not weights_path.is_file():
        raise InputNotFoundError(
            f"no SAE in {str(folder)!r}: expected {SAE_CFG_FILENAME} and {SAE_WEIGHTS_FILENAME}",
            remedy="pass the folder written by `scagent sae train` (its 'sae' subfolder)",
        )
    try:
        cfg = json.loads(cfg_path.read_text())
        state = load_file(str(weights_path), device=device)
    except Exception as err:  # safetensors and json raise several types
        raise CorruptInputError(f"cannot read the SAE in {str(folder)!r}: {err}") from err
    if cfg.get("architecture") != "topk":
        raise InvalidParameterError(
            f"{str(cfg_path)!r} holds a {cfg.get('architecture')!r} SAE; only 'topk' is supported"
        )
    sae = TopKSAE(int(cfg["d_in"]), int(cfg["d_sae"]), int(cfg["k"]), input_scale=1.0)
    if cfg.get("rescale_acts_by_decoder_norm"):
        norms = state["W_dec"].norm(dim=1).clamp_min(1e-8)
        state["W_enc"] = state["W_enc"] * norms[None, :]
        state["b_enc"] = state["b_enc"] * norms
        state["W_dec"] = state["W_dec"] / norms[:, None]
    sae.load_state_dict({k: state[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")})
    return sae.to(device)
