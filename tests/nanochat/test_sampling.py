"""sample_next_token: greedy at temperature 0, top-k truncation, temperature scaling, seeded draws."""

import torch

from nanochat.engine import sample_next_token


def generator(seed, device):
    return torch.Generator(device=device).manual_seed(seed)


def test_temperature_zero_is_argmax(device):
    logits = torch.randn(6, 50, device=device)
    out = sample_next_token(logits, generator(0, device), temperature=0.0)
    assert out.shape == (6, 1)
    assert torch.equal(out[:, 0], logits.argmax(dim=-1))


def test_top_k_one_is_argmax(device):
    logits = torch.randn(6, 50, device=device)
    out = sample_next_token(logits, generator(0, device), temperature=1.0, top_k=1)
    assert out.shape == (6, 1)
    assert torch.equal(out[:, 0], logits.argmax(dim=-1))


def test_top_k_samples_only_and_all_of_the_top_k(device):
    k = 5
    logits = torch.randn(1, 40, device=device).expand(4000, -1)  # one row, drawn 4000 times
    draws = sample_next_token(logits, generator(0, device), temperature=1.5, top_k=k)[:, 0]
    top = set(logits[0].topk(k).indices.tolist())
    assert set(draws.tolist()) == top  # never outside the top k, and every one of them reachable


def test_frequencies_follow_softmax_of_logits_over_temperature(device, assert_close):
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]], device=device)
    for temperature, top_k in [(0.5, None), (2.0, None), (1.0, 2)]:
        draws = sample_next_token(logits.expand(5000, -1), generator(1, device), temperature, top_k)[:, 0]
        freq = torch.bincount(draws.cpu(), minlength=4).double() / draws.numel()
        scaled = logits[0].cpu().double() / temperature
        if top_k is not None:
            scaled[top_k:] = float("-inf")  # the logits are sorted: the top k are the first k
        # 5000 draws: the standard error of each frequency is below 0.0071
        assert_close(freq, torch.softmax(scaled, dim=0), atol=0.03, rtol=0)


def test_seeded_draws_are_reproducible_and_seed_dependent(device):
    logits = torch.zeros(200, 50, device=device)  # uniform: every draw is up to the generator
    first = sample_next_token(logits, generator(3, device), temperature=1.0)
    again = sample_next_token(logits, generator(3, device), temperature=1.0)
    other = sample_next_token(logits, generator(4, device), temperature=1.0)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.min() >= 0 and first.max() < 50
