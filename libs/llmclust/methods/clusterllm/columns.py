"""Column names of ClusterLLM's tables (triplets, pairs, the judge's answers), defined once."""

ANCHOR = "anchor"
CHOICE_1 = "choice_1"
CHOICE_2 = "choice_2"
ENTROPY = "entropy"  # entropy of the anchor's soft assignment to its closest coarse clusters
CHOICE = "choice"  # int8: 1 or 2 (the choice that matches the anchor), 0 when unanswered
PAIR_A = "pair_a"
PAIR_B = "pair_b"
MERGE_K = "merge_k"  # number of clusters just before the merge a pair was sampled from
SAME = "same"  # int8: 1 same category, 0 different, -1 unanswered
P_FIRST = "p_first"  # float: the judge's probability of the first answer (choice 1, "same"); NaN: none
CONSISTENT = "consistent"  # bool: both views of the question gave that answer on their own
