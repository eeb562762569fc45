"""LUMI's pooling maths on a sparse text x label incidence matrix.

* ``pseudo_label_view``: z_i = mean(e_i, E(l_i)), re-normalised;
* ``label_level_pool``: a_i = mean of E(l) over the label set S_i; h_i = mean(e_i, a_i);
* ``text_level_pool``: r_i = sum_j J(i, j) h_j / sum_j J(i, j), J the Jaccard similarity of
  label sets, over the texts j sharing a label with i (i itself with weight 1).

The paper sums over every such j, which is quadratic when a label is shared by many texts.
Here the sum runs over row blocks of the sparse product S S^T (bounded memory) and keeps at
most ``top_m`` partners per text (the largest J; ties broken by row order). A label shared by
more than ``posting_cap`` texts contributes only ``posting_cap`` of them (a seeded random
choice) as partners. Cost: O(n * labels per text * posting_cap). With ``top_m=0`` and
``posting_cap=0`` the sum is exact, as in the paper.

Example::

    S = incidence([[0], [0, 1], [1]], n_labels=2)
    jaccard_weights(S, top_m=0, posting_cap=0).toarray()
    # [[1, .5, 0], [.5, 1, .5], [0, .5, 1]]
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BLOCK_ROWS = 8192  # rows of S S^T materialised at once


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


def _top_per_row(m: sp.csr_matrix, top: int) -> sp.csr_matrix:
    """Keep the ``top`` largest entries of each row (vectorised: one lexsort, no Python loop)."""
    m = m.tocoo()
    order = np.lexsort((m.col, -m.data, m.row))  # by row, then largest first, then column
    rows, cols, vals = m.row[order], m.col[order], m.data[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = (np.arange(len(rows)) - starts) < top
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=m.shape)


def jaccard_weights(S: sp.csr_matrix, top_m: int = 0, posting_cap: int = 0, seed: int = 0,
                    rows: slice | None = None) -> sp.csr_matrix:
    """Sparse J(i, j) for the rows ``rows`` (default all): self weight 1, at most ``top_m`` partners."""
    rows = rows or slice(0, S.shape[0])
    sizes = np.asarray(S.sum(axis=1)).ravel()
    block = S[rows]
    inter = (block @ _cap_postings(S, posting_cap, seed).T).tocoo()
    i = inter.row + rows.start
    partner = inter.col != i
    i, j, shared = i[partner], inter.col[partner], inter.data[partner]
    union = sizes[i] + sizes[j] - shared
    J = sp.csr_matrix((shared / union, (i - rows.start, j)), shape=(block.shape[0], S.shape[0]))
    if top_m:
        J = _top_per_row(J, top_m)
    self_rows = np.arange(block.shape[0])
    return (J + sp.csr_matrix((np.ones(len(self_rows), np.float32), (self_rows, self_rows + rows.start)),
                              shape=J.shape)).tocsr()


def text_level_pool(h: np.ndarray, S: sp.csr_matrix, top_m: int = 0, posting_cap: int = 0,
                    seed: int = 0) -> tuple[np.ndarray, dict]:
    """r_i = Jaccard-weighted mean of h over i and its label-sharing partners, block by block.

    Returns r (normalised) and a report: partners per text (mean, max) and rows capped by ``top_m``.
    """
    S = S.tocsr().astype(np.float32)
    out = np.empty_like(h, dtype=np.float32)
    partners, capped = [], 0
    for start in range(0, S.shape[0], BLOCK_ROWS):
        rows = slice(start, min(start + BLOCK_ROWS, S.shape[0]))
        J = jaccard_weights(S, top_m, posting_cap, seed, rows)
        weight = np.asarray(J.sum(axis=1)).ravel()
        out[rows] = (J @ h) / weight[:, None]
        count = np.diff(J.indptr) - 1
        partners.append(count)
        capped += int((count >= top_m).sum()) if top_m else 0
    partners = np.concatenate(partners)
    report = {"partners_mean": round(float(partners.mean()), 2), "partners_max": int(partners.max(initial=0)),
              "rows_at_top_m": capped, "top_m": top_m, "posting_cap": posting_cap}
    return normalize(out), report
