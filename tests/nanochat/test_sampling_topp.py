"""Top-k edge cases and top-p (nucleus) sampling, measured by the frequencies of many seeded draws.

top_k=0 means no truncation, a k above the vocabulary keeps every token; top_p keeps the most likely
tokens, in order, until their probability (after temperature) reaches top_p, the token that crosses it
included. 5000 draws: the standard error of each frequency is below 0.0071. The seed API has no top_p:
its tests are marked project_extras.
"""

import math

import pytest
import torch

from nanochat.engine import Engine, sample_next_token

DRAWS = 5000
TOP_P = pytest.mark.project_extras  # top_p is this nanochat's option, not the seed API
PROBS = [0.05, 0.5, 0.15, 0.3]  # not sorted: the nucleus is {1, 3} for top_p in (0.5, 0.8]


def frequencies(logits, device, **kwargs):
    rng = torch.Generator(device=device).manual_seed(7)
    draws = sample_next_token(logits.to(device).expand(DRAWS, -1), rng, **kwargs)[:, 0]
    return torch.bincount(draws.cpu(), minlength=logits.size(-1)).double() / DRAWS


def log_probs(probs):
    return torch.tensor([[math.log(p) for p in probs]])


def test_top_k_zero_and_a_k_above_the_vocabulary_do_not_truncate(device, assert_close):
    logits = torch.tensor([[1.0, 0.5, 0.0, -0.5, -1.0]])
    expected = torch.softmax(logits[0].double(), dim=0)
    for top_k in (0, 5, 1000):
        assert_close(frequencies(logits, device, temperature=1.0, top_k=top_k), expected, atol=0.03, rtol=0)


@TOP_P
def test_top_p_keeps_the_nucleus_and_renormalises(device, assert_close):
    freq = frequencies(log_probs(PROBS), device, temperature=1.0, top_p=0.7)
    expected = torch.tensor([0.0, 0.5, 0.0, 0.3], dtype=torch.float64) / 0.8
    assert freq[0] == 0 and freq[2] == 0  # never outside the nucleus
    assert_close(freq, expected, atol=0.03, rtol=0)


@TOP_P
def test_top_p_below_the_top_probability_keeps_the_top_token(device):
    freq = frequencies(log_probs(PROBS), device, temperature=1.0, top_p=0.1)
    assert freq.tolist() == [0.0, 1.0, 0.0, 0.0]


@TOP_P
def test_top_p_one_or_none_keeps_every_token(device, assert_close):
    expected = torch.tensor(PROBS, dtype=torch.float64)
    for top_p in (None, 1.0):
        assert_close(frequencies(log_probs(PROBS), device, temperature=1.0, top_p=top_p), expected, atol=0.03, rtol=0)


@TOP_P
def test_top_p_applies_to_the_tempered_distribution(device, assert_close):
    # At temperature 2 the probabilities are proportional to sqrt(p): 0.7 of that mass takes three tokens.
    tempered = torch.tensor(PROBS, dtype=torch.float64).sqrt()
    tempered /= tempered.sum()
    freq = frequencies(log_probs(PROBS), device, temperature=2.0, top_p=0.7)
    kept = tempered.clone()
    kept[0] = 0.0  # the least likely token is outside the tempered nucleus
    assert freq[0] == 0
    assert_close(freq, kept / kept.sum(), atol=0.03, rtol=0)


@TOP_P
def test_engine_passes_top_p_to_the_sampler(model, tokenizer):
    # A nucleus smaller than any top probability is greedy decoding, whatever the temperature.
    prompt = [tokenizer.get_bos_token_id()] + tokenizer.encode("The quick brown")
    engine = Engine(model, tokenizer)
    greedy, _ = engine.generate_batch(prompt, max_tokens=6, temperature=0.0)
    nucleus, _ = engine.generate_batch(prompt, max_tokens=6, temperature=1.5, top_p=1e-6, seed=3)
    assert nucleus == greedy
