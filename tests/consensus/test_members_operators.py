"""Members, label alignment and the two consensus operators, on planted and simulated partitions."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import sparse
from sklearn.metrics import adjusted_rand_score

from scagent.consensus import align_labels, coassoc, kmode, parse_members, relabel_by_size
from scagent.consensus.members import DEFAULT_MEMBERS, SPATIAL_MEMBER, MemberInputs, run_member
from scagent.errors import InvalidParameterError


def test_parse_members_defaults_ids_and_errors():
    specs = parse_members(None, seed=3)
    assert [s.method for s in specs] == [m.split(":")[0] for m in DEFAULT_MEMBERS]
    assert len({s.id for s in specs}) == len(specs)
    assert all(s.seed == 3 for s in specs)
    spatial = parse_members(None, spatial=True)
    assert spatial[-1].method == SPATIAL_MEMBER.split(":")[0]
    s = parse_members("leiden:resolution=0.5:seed=9,leiden:resolution=0.5,kmeans:k=4")
    assert s[0].id == "leiden_resolution0.5" and s[0].seed == 9 and s[0].params["resolution"] == 0.5
    assert s[1].id == "leiden_resolution0.5_2" and s[1].seed == 0
    assert s[2].params["k"] == 4
    # ids must stay usable as the row of an evidence reference
    assert all(not set(x.id) & set(":,=") for x in s)
    with pytest.raises(InvalidParameterError, match="unknown clustering member 'spectral'"):
        parse_members("spectral:k=3")
    with pytest.raises(InvalidParameterError, match="resolution"):
        parse_members("leiden:resolution=-1")
    with pytest.raises(InvalidParameterError, match="not key=value"):
        parse_members("kmeans:auto")


def test_align_labels_hungarian_and_finer_partitions():
    ref = np.repeat([0, 1, 2], 10)
    perm = np.array([2, 0, 1])[ref]
    aligned, _ = align_labels(ref, perm)
    assert np.array_equal(aligned, ref)
    # A greedy matching would give label 0 to both; the Hungarian one keeps them apart.
    ref2 = np.array([0] * 6 + [1] * 4)
    lab2 = np.array([0] * 5 + [1] + [0] * 4)
    assert sorted(align_labels(ref2, lab2)[1].tolist()) == [0, 1]
    # A member that splits cluster 0 in two is mapped many-to-one, not counted as disagreeing.
    finer = ref.copy()
    finer[:5] = 3
    assert np.array_equal(align_labels(ref, finer)[0], ref)
    assert relabel_by_size(np.array([5, 5, 1, 1, 1, 7])).tolist() == [1, 1, 0, 0, 0, 2]


def test_kmode_recovers_planted_truth_from_noisy_members(planted_members):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 6, 3000)
    members = planted_members(truth, n_members=7, noise=0.25, seed=2)
    best_member = max(adjusted_rand_score(truth, m) for m in members)
    out = kmode(members)
    assert adjusted_rand_score(truth, out.labels) > max(0.95, best_member)
    assert out.info["converged"]
    assert out.agreement.shape == truth.shape and 0.5 < out.agreement.mean() < 1.0
    # the per-cell agreement is exactly the share of aligned members voting for the consensus
    assert np.allclose(out.agreement, (out.aligned == out.labels[:, None]).mean(axis=1))


def test_coassoc_uses_only_graph_edges_and_recovers_truth(planted_members):
    rng = np.random.default_rng(0)
    n, k = 20000, 5
    truth = np.sort(rng.integers(0, k, n))
    # A kNN-like graph: 10 neighbours per cell, 95% within the cell's own group.
    rows = np.repeat(np.arange(n), 10)
    same = rng.random(n * 10) < 0.95
    starts = np.searchsorted(truth, truth)
    ends = np.searchsorted(truth, truth, side="right")
    within = starts[rows] + (rng.random(n * 10) * (ends - starts)[rows]).astype(int)
    cols = np.where(same, within, rng.integers(0, n, n * 10))
    graph = sparse.csr_matrix((np.ones(n * 10), (rows, cols)), shape=(n, n))
    graph = ((graph + graph.T) > 0).astype(np.float64)
    members = planted_members(truth, n_members=6, noise=0.15, seed=3)
    tracemalloc.start()
    out = coassoc(members, graph, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # n x n float64 would be 3.2 GB; the co-association lives on the ~200k edges only.
    assert peak < 200e6
    assert out.info["edges"] < 20 * n
    assert adjusted_rand_score(truth, out.labels) > 0.9


def test_member_crash_is_recorded_not_raised(monkeypatch, sim):
    from scagent.consensus import members as mem
    from scagent.consensus.run import prepare_inputs

    inputs, _ = prepare_inputs(sim, n_neighbors=10)

    def boom(inputs, seed, params):
        raise RuntimeError("simulated crash in kmeans")

    monkeypatch.setitem(
        mem.MEMBER_METHODS, "kmeans", mem.MemberMethod("kmeans", mem.KMeansMember, boom)
    )
    result = run_member(inputs, parse_members("kmeans:k=3")[0])
    assert result.status == "failed" and result.labels is None
    assert "RuntimeError: simulated crash in kmeans" in result.error
    assert result.record()["status"] == "failed"


def test_members_on_simulated_data_and_spatial_member(sim):
    from scagent.consensus.run import prepare_inputs

    inputs, info = prepare_inputs(sim, n_neighbors=10)
    assert info["source"] == "obsm['X_pca']" and info["spatial"] is False
    truth = sim.obs["cell_type"].cat.codes.to_numpy()
    aris = {}
    for spec in parse_members(None):
        r = run_member(inputs, spec)
        assert r.status == "succeeded", r.error
        aris[spec.id] = adjusted_rand_score(truth, r.labels)
        if spec.method in ("kmeans", "gmm", "agglomerative"):
            assert r.info["k"] in r.info["scores"]
    assert np.median(list(aris.values())) > 0.6
    # BANKSY-style member: coordinates where each cell type lives in its own region.
    rng = np.random.default_rng(0)
    coords = np.column_stack([truth * 10.0, np.zeros_like(truth, float)]) + rng.normal(
        0, 3, (len(truth), 2)
    )
    spatial = MemberInputs(inputs.embedding, inputs.graph, coords, 10)
    r = run_member(spatial, parse_members(SPATIAL_MEMBER)[0])
    assert r.status == "succeeded" and r.info["spatial_graph"]
    assert adjusted_rand_score(truth, r.labels) > 0.5
    # without coordinates the spatial member fails cleanly
    assert run_member(inputs, parse_members(SPATIAL_MEMBER)[0]).status == "failed"
