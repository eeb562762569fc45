"""LUMI's pooling maths on a sparse text x label incidence matrix.

* ``pseudo_label_view``: z_i = mean(e_i, E(l_i)), re-normalised;
* ``label_level_pool``: a_i = mean of E(l) over the label set S_i; h_i = mean(e_i, a_i);
* ``text_level_pool``: r_i = sum_j J(i, j) h_j / sum_j J(i, j), J the Jaccard similarity of
  label sets, over the texts j sharing a label with i (i itself with weight 1).

The paper sums over every such j, which is quadratic when a label is shared by many texts.
Here a label shared by more than ``posting_cap`` texts contributes only ``posting_cap`` of
them (a seeded random choice) as partners, and each text keeps at most ``top_m`` partners
(the largest J; ties broken by row order). With ``top_m=0`` and ``posting_cap=0`` the sum is
exact, as in the paper.

How it stays fast at millions of texts. Texts with the same label set have the same
partners, save themselves: J(i, .) depends only on S_i. So J is computed once per distinct
set (its first text standing for it), in blocks of bounded size, and every text then takes
its set's sums: the top ``top_m + 1`` partners of the set, less itself if it is among them,
else less the last of them. The top partners of a row are picked without sorting: J takes
few distinct values (small integer ratios), so each row counts its candidates per value and
keeps whole values down to the one that crosses ``top_m + 1``, and of that one the lowest
rows. Cost: O(distinct sets x labels per set x posting_cap + n x d).

Example::

    S = incidence([[0], [0, 1], [1]], n_labels=2)      # J = [[1, .5, 0], [.5, 1, .5], [0, .5, 1]]
    r, report = text_level_pool(label_level_pool(E, L, S), S, top_m=200)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BLOCK_ENTRIES = 16_000_000  # candidate (set, partner) pairs materialised at once


def normalize(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def incidence(label_sets: list[list[int]], n_labels: int) -> sp.csr_matrix:
    """Binary (n_texts, n_labels) CSR matrix; repeated labels in a set count once."""
    rows = np.repeat(np.arange(len(label_sets)), [len(s) for s in label_sets])
    cols = np.fromiter((l for s in label_sets for l in s), np.int64, count=len(rows))
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(label_sets), n_labels))
    m.data[:] = 1.0  # duplicates were summed
    return m


def pseudo_label_view(text_vectors: np.ndarray, label_vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return normalize(text_vectors + label_vectors[labels])


def label_level_pool(text_vectors: np.ndarray, label_vectors: np.ndarray, S: sp.csr_matrix) -> np.ndarray:
    """h_i = mean(e_i, mean of the label vectors of S_i); rows with no label keep e_i."""
    counts = np.asarray(S.sum(axis=1)).ravel()
    label_mean = (S @ label_vectors) / np.maximum(counts, 1)[:, None]
    h = np.where(counts[:, None] > 0, (text_vectors + label_mean) / 2, text_vectors)
    return normalize(h)


def _cap_postings(S: sp.csr_matrix, posting_cap: int, seed: int) -> sp.csr_matrix:
    """S with at most ``posting_cap`` texts per label (column), chosen at random."""
    sizes = np.asarray(S.sum(axis=0)).ravel()
    if not posting_cap or sizes.max(initial=0) <= posting_cap:
        return S
    csc = S.tocsc()
    rng = np.random.default_rng(seed)
    keep = np.ones(csc.nnz, bool)
    for col in np.flatnonzero(sizes > posting_cap):
        start, stop = csc.indptr[col], csc.indptr[col + 1]
        keep[start + rng.permutation(stop - start)[posting_cap:]] = False
    csc.data = np.where(keep, csc.data, 0).astype(np.float32)
    csc.eliminate_zeros()
    return csc.tocsr()


def _candidates(S: sp.csr_matrix, capped: sp.csr_matrix, sizes: np.ndarray,
                rows: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """J(i, j) of the texts ``rows`` against every j reached through the capped postings (j = i
    too), and the rank of each entry's value among the distinct values (0: the largest J)."""
    inter = (S[rows] @ capped.T).tocsr()
    inter.sort_indices()
    shared = inter.data.astype(np.int64)
    union = sizes[np.repeat(rows, np.diff(inter.indptr))].astype(np.int64) + sizes[inter.indices].astype(np.int64) - shared
    inter.data = (inter.data / union).astype(np.float32)
    return inter, _levels(shared, union)


def _levels(shared: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Rank of each ratio shared / union among those present, largest first, without sorting
    the entries: J is a ratio of small integers, so there are few (shared, union) pairs."""
    base = int(union.max(initial=0)) + 1
    code = shared * base + union
    present = np.unique(code) if code.max(initial=0) > 10_000_000 else np.flatnonzero(np.bincount(code))
    _, rank = np.unique(-(present // base) / np.maximum(present % base, 1), return_inverse=True)
    table = np.zeros(int(present.max(initial=0)) + 1, np.int64)
    table[present] = rank.ravel()
    return table[code]


def _top(J: sp.csr_matrix, level: np.ndarray, top: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Each row's ``top`` largest entries (ties: lower column first), and the column and value
    of the last of them (-1 and 0 where a row has fewer than ``top``). No sort: see module doc."""
    b, counts = J.shape[0], np.diff(J.indptr)
    row = np.repeat(np.arange(b), counts)
    levels = int(level.max(initial=0)) + 1
    per_level = np.bincount(row * levels + level, minlength=b * levels).reshape(b, levels)
    before = np.cumsum(per_level, axis=1) - per_level  # entries of larger J in the row
    cut = np.minimum((before + per_level < top).sum(axis=1), levels - 1)  # the level that crosses `top`
    need = top - before[np.arange(b), cut]  # entries of that level still wanted
    on_cut = np.flatnonzero(level == cut[row])
    rank = np.arange(len(on_cut)) - np.searchsorted(row[on_cut], row[on_cut])  # in column order
    keep = level < cut[row]
    keep[on_cut] = rank < need[row[on_cut]]
    last_col, last_val = np.full(b, -1), np.zeros(b, np.float32)
    ends = on_cut[(rank == need[row[on_cut]] - 1) & (counts[row[on_cut]] >= top)]
    last_col[row[ends]], last_val[row[ends]] = J.indices[ends], J.data[ends]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row[keep], minlength=b))])
    return sp.csr_matrix((J.data[keep], J.indices[keep], indptr), shape=J.shape), last_col, last_val


def _distinct_sets(S: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """First row of each distinct label set, and each row's set number."""
    counts = np.diff(S.indptr)
    padded = np.full((S.shape[0], max(int(counts.max(initial=0)), 1)), -1, np.int64)
    padded[np.repeat(np.arange(S.shape[0]), counts), np.arange(S.nnz) - np.repeat(S.indptr[:-1], counts)] = S.indices
    _, first, inverse = np.unique(padded, axis=0, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def _blocks(cost: np.ndarray, limit: int):
    """(lo, hi) ranges of consecutive items whose ``cost`` adds up to about ``limit``."""
    ends = np.searchsorted(np.cumsum(cost), np.arange(limit, cost.sum() + 1, limit), side="right")
    edges = np.unique(np.r_[0, ends, len(cost)])
    return zip(edges[:-1].tolist(), edges[1:].tolist())


def text_level_pool(h: np.ndarray, S: sp.csr_matrix, top_m: int = 0, posting_cap: int = 0,
                    seed: int = 0) -> tuple[np.ndarray, dict]:
    """r_i = Jaccard-weighted mean of h over i and its label-sharing partners (see module doc).

    Returns r (normalised) and a report: partners per text (mean, max), rows capped by
    ``top_m`` and the number of distinct label sets.
    """
    S = S.tocsr().astype(np.float32)
    S.sort_indices()
    n, d = h.shape
    sizes = np.asarray(S.sum(axis=1)).ravel()
    capped = _cap_postings(S, posting_cap, seed)
    first, set_of = _distinct_sets(S)
    m = len(first)
    sums, weight, length = np.zeros((m, d), np.float32), np.zeros(m), np.zeros(m, np.int64)
    last_col, last_val = np.full(m, -1), np.zeros(m, np.float32)  # what a set drops for a text not among its top
    self_weight = np.zeros(n, np.float32)  # J of each text with its own set's first text, 0 if not kept
    by_set = np.argsort(set_of, kind="stable")
    set_start = np.searchsorted(set_of[by_set], np.arange(m + 1))
    reach = S[first] @ np.asarray(capped.sum(axis=0)).ravel()  # candidates per set: sizes the blocks
    for lo, hi in _blocks(reach, BLOCK_ENTRIES):
        J, level = _candidates(S, capped, sizes, first[lo:hi])
        if top_m:
            J, last_col[lo:hi], last_val[lo:hi] = _top(J, level, top_m + 1)
        sums[lo:hi] = J @ h
        weight[lo:hi] = np.asarray(J.sum(axis=1)).ravel()
        length[lo:hi] = np.diff(J.indptr)
        members = by_set[set_start[lo]:set_start[hi]]
        self_weight[members] = np.asarray(J[set_of[members] - lo, members]).ravel()
    out = np.empty((n, d), np.float32)
    for start in range(0, n, 65_536):  # bounded temporaries
        rows = slice(start, min(start + 65_536, n))
        u, own = set_of[rows], self_weight[rows]
        among = own > 0
        drop = np.where(among, own, last_val[u])
        dropped = np.where(among[:, None], h[rows], h[np.maximum(last_col[u], 0)] * (last_col[u] >= 0)[:, None])
        out[rows] = (sums[u] - drop[:, None] * dropped + h[rows]) / (weight[u] - drop + 1)[:, None]
    partners = length[set_of] - ((self_weight > 0) | (last_col[set_of] >= 0))
    report = {"partners_mean": round(float(partners.mean()), 2), "partners_max": int(partners.max(initial=0)),
              "rows_at_top_m": int((partners >= top_m).sum()) if top_m else 0, "top_m": top_m,
              "posting_cap": posting_cap, "distinct_label_sets": m}
    return normalize(out), report
