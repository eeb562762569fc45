"""Column names of co-training's tables (interpretation candidates, DPO pairs), defined once."""

CANDIDATE = "candidate"  # int: 0 = the greedy interpretation, 1..M = the sampled ones
VALID = "valid"  # bool: the candidate parsed (else the text stands in for it)
CHOSEN = "chosen"  # preferred interpretation of a DPO pair
REJECTED = "rejected"  # dispreferred interpretation of a DPO pair
CHOSEN_CANDIDATE = "chosen_candidate"  # CANDIDATE number of CHOSEN
REJECTED_CANDIDATE = "rejected_candidate"  # CANDIDATE number of REJECTED
