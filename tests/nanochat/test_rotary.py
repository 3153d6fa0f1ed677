"""Rotary position embeddings: the tables against the closed form, and relative-position invariance.

Cached-vs-full or relative-position checks cannot see a wrong frequency (both sides use the same
wrong tables), so the tables themselves are compared with a float64 spec.
"""

import torch

from nanochat.gpt import GPT, GPTConfig, apply_rotary_emb


def closed_form_angles(seq_len, head_dim, base=10000):
    """angle(t, i) = t / base^(2i / head_dim) for i < head_dim/2, in float64."""
    t = torch.arange(seq_len, dtype=torch.float64)[:, None]
    i = torch.arange(head_dim // 2, dtype=torch.float64)[None, :]
    return t / base ** (2 * i / head_dim)


def check_tables(model, head_dim, assert_close):
    seq_len = model.cos.size(1)  # how far past sequence_len the tables reach is the implementation's choice
    assert seq_len >= model.config.sequence_len
    expected = closed_form_angles(seq_len, head_dim)
    assert model.cos.shape == (1, seq_len, 1, head_dim // 2)
    assert model.sin.shape == (1, seq_len, 1, head_dim // 2)
    # float32 angles up to t=640 carry ~1e-5 of rounding; a wrong base or exponent is off by O(1)
    assert_close(model.cos[0, :, 0].cpu().double(), expected.cos(), atol=1e-4, rtol=0)
    assert_close(model.sin[0, :, 0].cpu().double(), expected.sin(), atol=1e-4, rtol=0)


def test_rotary_tables_match_closed_form(device, tiny_config, assert_close):
    config = GPTConfig(**{**tiny_config, "n_embd": 64})  # head_dim 16: eight frequencies
    model = GPT(config)
    check_tables(model, 16, assert_close)  # as built
    model.init_weights()
    check_tables(model.to(device), 16, assert_close)  # init_weights re-derives them


def test_apply_rotary_emb_rotates_each_pair_by_its_angle(device, assert_close):
    # Channel i pairs with channel i + D/2: (x1, x2) -> (x1 cos + x2 sin, x2 cos - x1 sin).
    B, T, H, D = 2, 5, 3, 8
    x = torch.randn(B, T, H, D, dtype=torch.float64)
    angles = torch.rand(T, D // 2, dtype=torch.float64) * 6
    cos, sin = angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    expected = torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)
    out = apply_rotary_emb(x.float().to(device), cos.float().to(device), sin.float().to(device))
    assert out.dtype == torch.float32
    assert_close(out.cpu().double(), expected, atol=1e-5, rtol=1e-5)


def test_rotated_scores_depend_only_on_relative_position(model, assert_close):
    # q at position m and k at position n score the same as at m + s and n + s.
    D = model.config.n_embd // model.config.n_head
    q, k = torch.randn(1, 1, 1, D), torch.randn(1, 1, 1, D)

    def score(m, n):
        cos, sin = model.cos.cpu(), model.sin.cpu()
        rq = apply_rotary_emb(q, cos[:, m : m + 1], sin[:, m : m + 1])
        rk = apply_rotary_emb(k, cos[:, n : n + 1], sin[:, n : n + 1])
        return (rq * rk).sum().item()

    base_scores = [score(m, n) for m, n in [(5, 2), (9, 9), (3, 7)]]
    for shift in (1, 40, min(300, model.cos.size(1) - 10)):  # within the tables, however long they are
        shifted = [score(m + shift, n + shift) for m, n in [(5, 2), (9, 9), (3, 7)]]
        assert_close(torch.tensor(shifted), torch.tensor(base_scores), atol=1e-4, rtol=1e-4)
    assert abs(score(5, 2) - score(5, 3)) > 1e-3, "the score must depend on the relative position"


def test_attention_is_invariant_to_a_common_position_shift(model, device, tol, assert_close):
    # The whole layer sees only relative positions: q and k both rotated, from the same tables.
    # Rotating only q, only k, or each from different rows breaks this.
    attn = model.transformer.h[0].attn
    T = 8
    x = torch.randn(2, T, model.config.n_embd, device=device)
    shifts = (0, 37, min(300, model.cos.size(1) - T))  # within the tables, however long they are
    with torch.no_grad():
        outputs = [attn(x, (model.cos[:, s : s + T], model.sin[:, s : s + T]), None) for s in shifts]
        unrotated = attn(x, (torch.ones_like(model.cos[:, :T]), torch.zeros_like(model.sin[:, :T])), None)
    for out in outputs[1:]:
        assert_close(out, outputs[0], **tol)
    # and position is actually encoded: without rotation the output differs
    assert (outputs[0] - unrotated).abs().max() > 1e-2
