"""Grouped-query attention: n_kv_head key/value heads, each shared by n_head / n_kv_head query heads.

With n_kv_head in {1, n_head} a wrong predicate or head mapping can hide; 1 < n_kv_head < n_head
cannot. The oracle: GQA equals plain multi-head attention whose K/V weights repeat each kv head
over its group (query head h reads kv head h // group).
"""

import pytest
import torch


def as_mha(gqa_model, make_model):
    """An n_kv_head == n_head copy of gqa_model with its K/V projections duplicated per group."""
    c = gqa_model.config
    head_dim, group = c.n_embd // c.n_head, c.n_head // c.n_kv_head
    mha = make_model(n_kv_head=c.n_head, **{k: getattr(c, k) for k in ("n_layer", "n_head", "n_embd")})
    state = {}
    for name, weight in gqa_model.state_dict().items():
        if name.endswith(("attn.c_k.weight", "attn.c_v.weight")):
            # rows are (kv head, channel): repeat each head's block of rows `group` times in place
            weight = weight.view(c.n_kv_head, head_dim, c.n_embd).repeat_interleave(group, dim=0)
            weight = weight.reshape(c.n_head * head_dim, c.n_embd)
        state[name] = weight
    mha.load_state_dict(state)
    return mha


# kv4 is plain multi-head attention (n_kv_head == n_head): it must keep working too
@pytest.mark.parametrize("n_kv_head", [pytest.param(2, id="kv2"), pytest.param(1, id="kv1"), pytest.param(4, id="kv4")])
def test_gqa_equals_mha_with_duplicated_kv_heads(make_model, device, tol, assert_close, n_kv_head):
    gqa = make_model(n_kv_head=n_kv_head)
    mha = as_mha(gqa, make_model)
    ids = torch.randint(0, gqa.config.vocab_size, (2, 9), device=device)
    with torch.no_grad():
        out = gqa(ids)
        assert out.shape == (2, 9, gqa.config.vocab_size)
        assert_close(out, mha(ids), **tol)


def test_gqa_differs_from_reading_the_wrong_kv_head(make_model, device):
    # Guards the oracle itself: a model whose groups read the kv heads in another order is different.
    gqa = make_model(n_kv_head=2)
    mha = as_mha(gqa, make_model)
    with torch.no_grad():
        for block in mha.transformer.h:
            for linear in (block.attn.c_k, block.attn.c_v):
                linear.weight.copy_(linear.weight.view(4, -1).roll(1, dims=0).view_as(linear.weight))
    ids = torch.randint(0, gqa.config.vocab_size, (1, 9), device=device)
    with torch.no_grad():
        assert (gqa(ids) - mha(ids)).abs().max() > 1e-2


def test_kv_projections_have_n_kv_head_heads(make_model):
    model = make_model(n_head=4, n_kv_head=2, n_embd=32)
    attn = model.transformer.h[0].attn
    assert attn.c_q.weight.shape == (4 * 8, 32)
    assert attn.c_k.weight.shape == (2 * 8, 32)
    assert attn.c_v.weight.shape == (2 * 8, 32)
