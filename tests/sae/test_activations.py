"""Activation sources and the chunked cache: obsm, files, a tiny local BERT, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scagent.errors import (
    DataStateError,
    InputNotFoundError,
    InvalidDataError,
    InvalidParameterError,
)
from scagent.sae.activations import (
    ActivationCache,
    FileSource,
    HFSource,
    VocabularyMismatchError,
    cache_activations,
    parse_source,
)


def test_obsm_cache_streams_every_row_once_per_epoch(pbmc68k, tmp_path):
    cache = cache_activations(parse_source("obsm:X_pca"), pbmc68k, tmp_path / "c", chunk_rows=200)
    assert cache.chunk_sizes == [200, 200, 200, 100]
    assert list(cache.cell_ids()) == list(pbmc68k.obs_names)
    stream = cache.iter_batches(100, seed=1, window=2)
    rows = np.concatenate([next(stream) for _ in range(7)])
    # One epoch of 700 rows: every row exactly once, in a shuffled order.
    ref = np.asarray(pbmc68k.obsm["X_pca"], dtype=np.float32)
    order = np.lexsort(rows.T[::-1])
    assert np.allclose(rows[order], ref[np.lexsort(ref.T[::-1])])
    assert not np.allclose(rows, ref)
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert meta["source"] == "obsm:X_pca" and meta["d_in"] == 50


def test_missing_obsm_key_is_a_state_error(pbmc68k, tmp_path):
    with pytest.raises(DataStateError, match="X_scVI"):
        cache_activations(parse_source("obsm:X_scVI"), pbmc68k, tmp_path / "c")


def test_file_sources(pbmc68k, tmp_path):
    acts = np.random.default_rng(0).standard_normal((pbmc68k.n_obs, 6)).astype(np.float32)
    np.save(tmp_path / "a.npy", acts)
    cache = cache_activations(FileSource(tmp_path / "a.npy"), pbmc68k, tmp_path / "c1")
    assert np.allclose(np.concatenate([c[0] for c in cache.iter_chunks()]), acts)
    # .pt with its own cell ids (a subset, reversed).
    ids = list(pbmc68k.obs_names[:50][::-1])
    torch.save({"activations": torch.from_numpy(acts[:50]), "cell_ids": ids}, tmp_path / "a.pt")
    cache = cache_activations(parse_source(f"file:{tmp_path / 'a.pt'}"), pbmc68k, tmp_path / "c2")
    assert list(cache.cell_ids()) == ids
    # Rows that match neither the data nor carry ids.
    np.save(tmp_path / "short.npy", acts[:10])
    with pytest.raises(InvalidDataError, match="10 rows but the data has 700"):
        cache_activations(FileSource(tmp_path / "short.npy"), pbmc68k, tmp_path / "c3")
    with pytest.raises(InputNotFoundError):
        cache_activations(FileSource(tmp_path / "nope.npy"), pbmc68k, tmp_path / "c4")


def test_bad_source_spec():
    with pytest.raises(InvalidParameterError, match="unknown activation source kind"):
        parse_source("magic:thing")
    with pytest.raises(InvalidParameterError, match="KIND:VALUE"):
        parse_source("obsm")


def test_missing_model_folder(pbmc68k, tmp_path):
    with pytest.raises(InputNotFoundError, match="model folder"):
        next(HFSource(tmp_path / "no_model").iter_batches(pbmc68k))


def _manual_tokens(adata, folder, n_cells, max_tokens):
    tokens = json.loads((folder / "token_dictionary.json").read_text())
    X = np.expm1(
        adata.raw.X[:n_cells].toarray()
        if hasattr(adata.raw.X, "toarray")
        else adata.raw.X[:n_cells]
    )
    names = list(adata.raw.var_names)
    matched = np.array([i for i, g in enumerate(names) if g in tokens])
    # Without a shipped median dictionary the medians come from the cells tokenized.
    full = X[:, matched]
    med = np.array([np.median(c[c > 0]) if (c > 0).any() else 1.0 for c in full.T])
    out = []
    for r in range(n_cells):
        v = X[r, matched]
        scaled = v / X[r].sum() * 1e4 / med
        nz = np.flatnonzero(v > 0)
        order = nz[np.argsort(-scaled[nz], kind="stable")][: max_tokens - 1]
        out.append([tokens["<cls>"]] + [tokens[names[matched[j]]] for j in order])
    return out


def test_hf_source_per_token_and_pooled(pbmc68k, tiny_bert, tmp_path):
    import transformers

    adata = pbmc68k[:12].copy()
    src = HFSource(tiny_bert, layer=1, pooling="none", max_tokens=64)
    cache = cache_activations(src, adata, tmp_path / "tok", batch_size=5)
    meta = cache.meta
    assert meta["per_token"] and meta["layer"] == 1 and meta["model_hash"]
    assert meta["match_rate"] == pytest.approx(0.5, abs=0.01)
    assert cache.d_in == 32
    # Per-token rows: one per gene token of each cell (cls excluded), genes from the data.
    acts, cells, genes = next(cache.iter_chunks())
    expected = _manual_tokens(pbmc68k, tiny_bert, 12, 64)
    assert len(acts) == sum(len(s) - 1 for s in expected)
    assert np.bincount(cells, minlength=12).tolist() == [len(s) - 1 for s in expected]
    # The hook sees the MLP output of layer 1: recompute it by hand for cell 0.
    model = transformers.AutoModel.from_pretrained(tiny_bert).eval()
    ids = torch.tensor([expected[0]])
    seen = {}
    handle = model.encoder.layer[1].output.dense.register_forward_hook(
        lambda _m, _i, out: seen.__setitem__("mlp", out)
    )
    with torch.no_grad():
        model(input_ids=ids)
    handle.remove()
    mlp_out = seen["mlp"]
    assert np.allclose(acts[: len(expected[0]) - 1], mlp_out[0, 1:].numpy(), atol=1e-4)
    vocab_gene = {
        v: k for k, v in json.loads((tiny_bert / "token_dictionary.json").read_text()).items()
    }
    first_genes = [meta["gene_ids"][g] for g in genes[: len(expected[0]) - 1]]
    assert first_genes == [vocab_gene[t] for t in expected[0][1:]]
    # Pooled: mean over the cell's gene tokens of the same hook, layer output this time.
    pooled = cache_activations(
        HFSource(tiny_bert, layer=0, hook="layer_out", max_tokens=64), adata, tmp_path / "pool"
    )
    p_acts = next(pooled.iter_chunks())[0]
    assert p_acts.shape == (12, 32)
    with torch.no_grad():
        h = model(input_ids=ids, output_hidden_states=True).hidden_states[1]
    assert np.allclose(p_acts[0], h[0, 1:].mean(0).numpy(), atol=1e-4)


def test_vocabulary_mismatch_names_rate_and_id_type(pbmc68k, tiny_bert, tmp_path):
    adata = pbmc68k[:5].copy()
    adata.raw = adata.raw.to_adata()
    raw = adata.raw.to_adata()
    raw.var_names = [f"ENSG{i:011d}" for i in range(raw.n_vars)]
    adata.raw = raw
    with pytest.raises(
        VocabularyMismatchError,
        match=r"0\.0% of the data's 765 genes.*expects gene symbols.*Ensembl",
    ):
        next(HFSource(tiny_bert).iter_batches(adata))


def test_bad_layer_index(pbmc68k, tiny_bert):
    with pytest.raises(InvalidParameterError, match="layer=5 but the model has 2 layers"):
        next(HFSource(tiny_bert, layer=5).iter_batches(pbmc68k[:3].copy()))


def test_cache_folder_roundtrip_errors(tmp_path):
    with pytest.raises(InputNotFoundError, match=r"meta\.json"):
        ActivationCache(tmp_path)


def test_tahoe_without_its_package_names_the_install(pbmc68k):
    import importlib.util

    from scagent.errors import MissingDependencyError

    if importlib.util.find_spec("tahoe_x1") is not None:
        pytest.skip("tahoe_x1 is installed")
    src = parse_source("tahoe:70m", layer=3)
    assert src.name == "tahoe:70m" and src.layer == 3
    with pytest.raises(MissingDependencyError, match="tahoe_x1"):
        next(src.iter_batches(pbmc68k))
