import pytest
import torch
from llmclust.training.dec import dec_loss, soft_assignment, target_distribution
from llmclust.training.infonce import info_nce


def test_soft_assignment_is_student_t_normalised():
    z = torch.tensor([[0.0, 0.0]])
    centres = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    q = soft_assignment(z, centres)
    # alpha=1: kernel 1/(1+d^2) -> 1 and 1/2, normalised to 2/3 and 1/3
    assert torch.allclose(q, torch.tensor([[2 / 3, 1 / 3]]))


def test_target_sharpens_and_divides_by_cluster_frequency():
    q = torch.tensor([[0.6, 0.4], [0.6, 0.4], [0.2, 0.8]])
    p = target_distribution(q)
    f = q.sum(0)  # [1.4, 1.6]
    expected = q ** 2 / f
    expected = expected / expected.sum(1, keepdim=True)
    assert torch.allclose(p, expected)
    assert torch.allclose(p.sum(1), torch.ones(3))
    assert p[2, 1] > q[2, 1]  # confident rows get more confident


def test_dec_loss_is_kl_and_trains_centres():
    torch.manual_seed(0)
    z = torch.cat([torch.randn(20, 2) * 0.1 + 3, torch.randn(20, 2) * 0.1 - 3])
    centres = torch.nn.Parameter(torch.tensor([[1.0, 1.0], [-1.0, -1.0]]))
    first = dec_loss(z, centres)
    assert first.item() >= 0
    optimiser = torch.optim.SGD([centres], lr=0.5)
    for _ in range(50):
        optimiser.zero_grad()
        dec_loss(z, centres).backward()
        optimiser.step()
    assert dec_loss(z, centres).item() < first.item()
    assert centres.grad is not None


def test_info_nce_matches_cross_entropy_and_rewards_alignment():
    torch.manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    aligned = info_nce(a, a.clone(), temperature=0.1)
    shuffled = info_nce(a, a.roll(1, dims=0), temperature=0.1)
    assert aligned < shuffled
    logits = a @ a.T / 0.1
    assert torch.allclose(aligned, torch.nn.functional.cross_entropy(logits, torch.arange(6)))
    with_hard = info_nce(a, a.clone(), 0.1, hard_negatives=a.roll(1, dims=0))
    assert with_hard > aligned
    with pytest.raises(ValueError, match="same shape"):
        info_nce(a, a[:3], 0.1)
