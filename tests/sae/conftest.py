"""Fixtures for the SAE tests: planted-truth activations and a tiny local BERT model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def planted(
    n: int = 8000,
    d_in: int = 32,
    n_dir: int = 64,
    k_true: int = 3,
    noise: float = 0.02,
    seed: int = 0,
):
    """Rows that are sparse non-negative combinations of known unit directions, plus noise."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((n_dir, d_in))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    idx = np.argsort(rng.random((n, n_dir)), axis=1)[:, :k_true]
    coef = rng.uniform(0.5, 2.0, (n, k_true))
    X = np.einsum("nk,nkd->nd", coef, directions[idx])
    X += noise * rng.standard_normal(X.shape)
    return X.astype(np.float32), directions


@pytest.fixture(scope="session")
def planted_data():
    return planted()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, pbmc68k) -> Path:
    """A randomly initialised BertForMaskedLM saved with a token dictionary of Ensembl-like ids."""
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    genes = list(pbmc68k.raw.var_names)
    # Half the genes are in the vocabulary: the match rate must come out near 0.5.
    vocab_genes = genes[::2]
    tokens = {"<pad>": 0, "<mask>": 1, "<cls>": 2, "<eos>": 3}
    tokens.update({g: i + 4 for i, g in enumerate(vocab_genes)})
    config = transformers.BertConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    model = transformers.BertForMaskedLM(config)
    folder = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(folder)
    (folder / "token_dictionary.json").write_text(json.dumps(tokens))
    return folder
