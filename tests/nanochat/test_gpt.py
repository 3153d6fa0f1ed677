"""The GPT forward pass against an independent float64 reference, plus causality, loss and init.

The reference is written from the model's description (rotary, QK-norm, grouped-query causal
attention, ReLU^2 MLP, parameter-free RMSNorm, tanh soft-cap), one head at a time, so it shares no
code path with the model.
"""

import math

import pytest
import torch
import torch.nn.functional as F


def rms(x):
    return x / x.pow(2).mean(-1, keepdim=True).sqrt()


def reference_logits(model, ids):
    """Logits for ids (T,) computed in float64 from the model's weights, one head at a time."""
    c = model.config
    W = {name: p.detach().cpu().double() for name, p in model.named_parameters()}
    head_dim, group = c.n_embd // c.n_head, c.n_head // c.n_kv_head
    T = len(ids)
    t = torch.arange(T, dtype=torch.float64)[:, None]
    angle = t / 10000 ** (2 * torch.arange(head_dim // 2, dtype=torch.float64)[None, :] / head_dim)

    def rotate(v):  # v: (T, head_dim); channel i pairs with i + head_dim/2
        a, b = v[:, : head_dim // 2], v[:, head_dim // 2 :]
        return torch.cat([a * angle.cos() + b * angle.sin(), b * angle.cos() - a * angle.sin()], dim=1)

    x = rms(W["transformer.wte.weight"][ids])
    for layer in range(c.n_layer):
        p = f"transformer.h.{layer}."
        h = rms(x)
        q, k, v = (h @ W[p + f"attn.c_{n}.weight"].T for n in "qkv")
        heads = []
        for head in range(c.n_head):
            kv = head // group  # query head -> its shared key/value head
            qh = rms(rotate(q[:, head * head_dim : (head + 1) * head_dim]))
            kh = rms(rotate(k[:, kv * head_dim : (kv + 1) * head_dim]))
            vh = v[:, kv * head_dim : (kv + 1) * head_dim]
            scores = qh @ kh.T / math.sqrt(head_dim)
            scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
            heads.append(scores.softmax(dim=-1) @ vh)
        x = x + torch.cat(heads, dim=1) @ W[p + "attn.c_proj.weight"].T
        x = x + torch.relu(rms(x) @ W[p + "mlp.c_fc.weight"].T).pow(2) @ W[p + "mlp.c_proj.weight"].T
    logits = rms(x) @ W["lm_head.weight"][: c.vocab_size].T  # a padded head has extra rows: not logits
    return 15 * torch.tanh(logits / 15)


def test_forward_matches_reference(model, device, tol, assert_close):
    ids = torch.randint(0, model.config.vocab_size, (2, 11), device=device)
    with torch.no_grad():
        logits = model(ids)
    assert logits.dtype == torch.float32
    for row in range(2):
        assert_close(logits[row].cpu().double(), reference_logits(model, ids[row].cpu()), **tol)


def test_future_tokens_do_not_change_past_logits(model, device, tol, assert_close):
    ids = torch.randint(0, model.config.vocab_size, (1, 10), device=device)
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % model.config.vocab_size
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert_close(a[:, :6], b[:, :6], **tol)
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-2


def test_loss_is_cross_entropy_ignoring_minus_one(model, device, assert_close):
    V = model.config.vocab_size
    ids = torch.randint(0, V, (2, 8), device=device)
    targets = torch.randint(0, V, (2, 8), device=device)
    targets[0, :3] = -1
    with torch.no_grad():
        logits = model(ids)
        loss = model(ids, targets=targets)
        per_token = model(ids, targets=targets, loss_reduction="none")
    expected = F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1, reduction="none")
    assert_close(per_token, expected)
    assert torch.equal(per_token[:3], torch.zeros(3, device=device))
    assert_close(loss, expected[3:].mean())


def test_logits_are_soft_capped_at_15(model, device, assert_close):
    raw = []
    model.lm_head.register_forward_hook(lambda module, args, out: raw.append(out.float()))
    with torch.no_grad():
        model.lm_head.weight.mul_(20)  # push raw logits far past the cap
        logits = model(torch.randint(0, model.config.vocab_size, (1, 6), device=device))
    raw[0] = raw[0][..., : model.config.vocab_size]  # a padded head has extra outputs: not logits
    assert_close(logits, 15 * torch.tanh(raw[0] / 15))
    assert logits.abs().max() < 15
    assert raw[0].abs().max() > 30


@pytest.mark.project_extras  # the API leaves the initial scales open
def test_init_weights_scales(make_model):
    model = make_model(n_embd=64)
    model.init_weights()  # make_model re-randomises after init: start again from init_weights
    bound = 3**0.5 * 64**-0.5
    assert abs(model.transformer.wte.weight.std().item() - 1.0) < 0.05
    assert abs(model.lm_head.weight.std().item() - 0.001) < 0.0001
    for block in model.transformer.h:
        for linear in (block.attn.c_q, block.attn.c_k, block.attn.c_v, block.mlp.c_fc):
            assert linear.weight.abs().max() <= bound
            assert abs(linear.weight.std().item() - bound / 3**0.5) < 0.1 * bound / 3**0.5
        for linear in (block.attn.c_proj, block.mlp.c_proj):
            # small, so blocks start near the identity, but not zero, so attention stays visible
            assert 0 < linear.weight.abs().max() <= 0.02 * bound


@pytest.mark.project_extras  # this project's tables cover 10x sequence_len; the API leaves the length open
def test_forward_refuses_positions_past_the_rotary_tables(make_model, device):
    model = make_model(sequence_len=4)  # tables for 40 positions
    with torch.no_grad():
        assert model(torch.zeros(1, 40, dtype=torch.long, device=device)).shape == (1, 40, model.config.vocab_size)
        with pytest.raises(AssertionError):
            model(torch.zeros(1, 41, dtype=torch.long, device=device))
