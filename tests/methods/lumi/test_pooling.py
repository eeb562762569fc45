"""LUMI pooling maths on hand-made cases."""

import numpy as np
import pytest
import scipy.sparse as sp
from llmclust.methods.lumi.pooling import (
    _candidates,
    _cap_postings,
    _top,
    incidence,
    label_level_pool,
    normalize,
    pseudo_label_view,
    text_level_pool,
)


def jaccard_weights(S: sp.csr_matrix, top_m: int = 0, posting_cap: int = 0, seed: int = 0) -> sp.csr_matrix:
    """Sparse J(i, j) of every pair, as ``text_level_pool`` weighs them (its blocked code path,
    materialised): self weight 1, at most ``top_m`` partners."""
    S = S.tocsr().astype(np.float32)
    n = S.shape[0]
    J, level = _candidates(S, _cap_postings(S, posting_cap, seed), np.asarray(S.sum(axis=1)).ravel(), np.arange(n))
    row = np.repeat(np.arange(n), np.diff(J.indptr))
    partner = J.indices != row  # entries stay in (row, column) order
    J = sp.csr_matrix((J.data[partner], (row[partner], J.indices[partner])), shape=J.shape)
    if top_m:
        J, _, _ = _top(J, level[partner], top_m)
    return (J + sp.identity(n, np.float32, format="csr")).tocsr()


E = np.eye(3, dtype=np.float32)  # three orthogonal text vectors
LABELS = np.array([[1, 0, 0], [0, 1, 0]], np.float32)  # two label vectors


def test_incidence_counts_repeated_labels_once():
    S = incidence([[0, 0], [0, 1], []], n_labels=2)
    assert S.toarray().tolist() == [[1, 0], [1, 1], [0, 0]]


def test_pseudo_label_view_is_the_normalised_mean():
    z = pseudo_label_view(E, LABELS, np.array([0, 0, 1]))
    assert np.allclose(z[0], [1, 0, 0])
    assert np.allclose(z[1], normalize(np.array([[1, 1, 0]]))[0])


def test_label_level_pool_averages_the_label_set_then_the_text():
    S = incidence([[0], [0, 1], []], 2)
    h = label_level_pool(E, LABELS, S)
    # text 1: a = mean(l0, l1) = (.5, .5, 0); h = mean(e1, a) = (.25, .75, 0)
    assert np.allclose(h[1], normalize(np.array([[0.25, 0.75, 0]]))[0])
    assert np.allclose(h[2], E[2])  # no label: the text vector is kept


def test_jaccard_weights_exact():
    S = incidence([[0], [0, 1], [1], [2]], 3)
    J = jaccard_weights(S).toarray()
    expected = [[1, .5, 0, 0], [.5, 1, .5, 0], [0, .5, 1, 0], [0, 0, 0, 1]]
    assert np.allclose(J, expected)


def test_top_m_keeps_the_largest_weights_and_self():
    S = incidence([[0, 1], [0, 1], [0], [1]], 2)  # text 0: J = 1 with 1, .5 with 2 and 3
    J = jaccard_weights(S, top_m=1).toarray()
    assert np.allclose(J[0], [1, 1, 0, 0])


def test_posting_cap_limits_partners_of_a_huge_label():
    S = incidence([[0]] * 50, 1)
    J = jaccard_weights(S, posting_cap=10, seed=0)
    assert (np.diff(J.indptr) <= 11).all() and np.allclose(J.diagonal(), 1)


def test_text_level_pool_weighted_mean():
    S = incidence([[0], [0, 1], [1], [2]], 3)
    h = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], np.float32)
    r, report = text_level_pool(h, S)
    # text 0: (1*h0 + .5*h1) / 1.5 ; text 3: alone
    assert np.allclose(r[0], normalize(np.array([[1, .5]]))[0])
    assert np.allclose(r[3], [-1, 0])
    assert report["partners_max"] == 2


def test_blocks_give_the_same_result(monkeypatch):
    rng = np.random.default_rng(0)
    sets = [list(rng.choice(20, size=rng.integers(1, 4), replace=False)) for _ in range(300)]
    S, h = incidence(sets, 20), normalize(rng.normal(size=(300, 8)))
    whole, _ = text_level_pool(h, S, top_m=5)
    monkeypatch.setattr("llmclust.methods.lumi.pooling.BLOCK_ENTRIES", 7)
    blocked, _ = text_level_pool(h, S, top_m=5)
    assert np.allclose(whole, blocked, atol=1e-6)


def brute_force_pool(h, sets, top_m):
    """The definition, text by text: partners by (J desc, row asc), at most top_m, self weight 1."""
    out = []
    for i, s in enumerate(sets):
        partners = [(-len(set(s) & set(t)) / len(set(s) | set(t)), j) for j, t in enumerate(sets)
                    if j != i and set(s) & set(t)]
        kept = sorted(partners)[: top_m or None]
        weights = np.array([1.0] + [-w for w, _ in kept])
        out.append((weights[:, None] * h[[i] + [j for _, j in kept]]).sum(0) / weights.sum())
    return normalize(np.array(out))


@pytest.mark.parametrize("top_m", [0, 1, 3])
def test_text_level_pool_matches_the_definition_with_repeated_sets(top_m):
    """Texts sharing a label set are computed once per set: each must still leave itself out."""
    rng = np.random.default_rng(top_m)
    sets = [list(rng.choice(6, size=rng.integers(1, 3), replace=False)) for _ in range(12)] * 3 + [[]]
    h = normalize(rng.normal(size=(len(sets), 5)))
    r, report = text_level_pool(h, incidence(sets, 6), top_m=top_m)
    assert np.allclose(r, brute_force_pool(h, sets, top_m), atol=1e-5)
    assert np.allclose(r[-1], h[-1])  # no label: the text alone
    assert report["distinct_label_sets"] <= 13
