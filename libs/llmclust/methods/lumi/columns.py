"""Column names of LUMI's tables (pseudo-labels, pooled vectors), defined once."""

PSEUDO_LABEL = "pseudo_label"
PSEUDO_LABELS = "pseudo_labels"
LABEL_POOLED = "label_pooled"  # h: label-level pooled vector
TEXT_POOLED = "text_pooled"  # r: Jaccard text-level pooled vector
