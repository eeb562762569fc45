import math

import pytest
import torch
from llmclust.training.triplet_infonce import TripletInfoNCELoss, triplet_infonce


def test_loss_on_a_hand_made_batch():
    # two triplets on orthogonal axes: each anchor equals its positive, negatives are orthogonal
    a = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    n = torch.tensor([[0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    tau = 1.0
    # each row: logits = [1, 0, 0, 0] -> -log(e / (e + 3)), both directions identical
    expected = -math.log(math.e / (math.e + 3))
    assert triplet_infonce(a, a.clone(), n, tau).item() == pytest.approx(expected, rel=1e-6)


def test_swapped_positive_costs_more_and_temperature_sharpens():
    a = torch.eye(4)[:2]
    n = torch.eye(4)[2:]
    good = triplet_infonce(a, a, n, 0.1)
    swapped = triplet_infonce(a, a.flip(0), n, 0.1)  # each anchor's "positive" is the other's
    assert swapped > good
    assert triplet_infonce(a, a, n, 0.05) < triplet_infonce(a, a, n, 1.0)


def test_hard_negative_equal_to_positive_is_penalised():
    a = torch.eye(4)[:2]
    easy = triplet_infonce(a, a, torch.eye(4)[2:], 0.1)
    hard = triplet_infonce(a, a, a.clone(), 0.1)
    assert hard > easy


def test_module_checks_inputs():
    with pytest.raises(ValueError, match="temperature"):
        TripletInfoNCELoss(0)
    with pytest.raises(ValueError, match="expected 3"):
        TripletInfoNCELoss(0.05)([torch.eye(2), torch.eye(2)])
    x = torch.randn(3, 8, requires_grad=True)
    TripletInfoNCELoss(0.05)([x, torch.randn(3, 8), torch.randn(3, 8)]).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
