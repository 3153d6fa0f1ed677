"""Sliding-window attention (GPTConfig.window_size): each query sees itself and the window - 1 keys before it.

The spec oracle is a reference attention layer written from the definition, head by head: half-split
rotary (channel i with channel i + D/2), RMS-normalised q and k, query head h reading key/value head
h // (n_head / n_kv_head), a mask of the keys within the window, softmax(q.k / sqrt(D)). Differential
checks (cached vs full) cannot see a wrong scale, mask value or head map, which both sides share.
The sequences are longer than the window and than the head count; 1 < n_kv_head < n_head.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from nanochat.engine import KVCache

pytestmark = pytest.mark.project_extras  # window_size is this nanochat's option, not the seed API

WINDOW = 3


def reference_attention(attn, x, cos, sin, n_head, n_kv_head, window):
    B, T, C = x.shape
    D = C // n_head
    q = attn.c_q(x).view(B, T, n_head, D)
    k = attn.c_k(x).view(B, T, n_kv_head, D)
    v = attn.c_v(x).view(B, T, n_kv_head, D)

    def rotate(t):
        t1, t2 = t[..., : D // 2], t[..., D // 2 :]
        return torch.cat([t1 * cos + t2 * sin, t2 * cos - t1 * sin], dim=-1)

    q, k = F.rms_norm(rotate(q), (D,)), F.rms_norm(rotate(k), (D,))
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    visible = (j <= i) & (i - j < window)
    out = torch.zeros(B, T, n_head, D)
    for h in range(n_head):
        g = h // (n_head // n_kv_head)
        scores = q[:, :, h] @ k[:, :, g].transpose(-1, -2) / math.sqrt(D)
        weights = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)
        out[:, :, h] = weights @ v[:, :, g]
    return attn.c_proj(out.reshape(B, T, C))


def test_attention_layer_matches_the_reference(make_model, assert_close):
    model = make_model(window_size=WINDOW).cpu()
    config = model.config
    T = 10
    x = torch.randn(2, T, config.n_embd)
    cos, sin = model.cos[:, :T], model.sin[:, :T]
    with torch.no_grad():
        for block in model.transformer.h:
            expected = reference_attention(block.attn, x, cos, sin, config.n_head, config.n_kv_head, WINDOW)
            assert_close(block.attn(x, (cos, sin), None), expected, atol=1e-4, rtol=1e-4)


def test_window_as_long_as_the_sequence_is_plain_causal_attention(make_model, device, tol, assert_close):
    idx = torch.randint(0, 300, (2, 12), device=device)
    windowed, plain = make_model(window_size=12), make_model()
    with torch.no_grad():
        assert_close(windowed(idx), plain(idx), **tol)
        short = make_model(window_size=WINDOW)(idx)
    assert (short - plain(idx)).abs().max() > 1e-2  # a shorter window does change the logits


def _cache(config, batch, seq_len):
    head_dim = config.n_embd // config.n_head
    return KVCache(batch_size=batch, num_heads=config.n_kv_head, seq_len=seq_len, head_dim=head_dim,
                   num_layers=config.n_layer)  # fmt: skip


@pytest.mark.parametrize("chunks", [(6, 4), (6, 1, 1, 1, 1), (2, 3, 5)])
def test_cached_chunks_equal_the_full_forward(make_model, device, tol, assert_close, chunks):
    # Queries of a chunk are the last positions of the keys: the window is measured from them.
    model = make_model(window_size=WINDOW)
    T = sum(chunks)
    idx = torch.randint(0, 300, (2, T), device=device)
    with torch.no_grad():
        full = model(idx)
        cache, start, pieces = _cache(model.config, 2, T), 0, []
        for size in chunks:
            pieces.append(model(idx[:, start : start + size], kv_cache=cache))
            start += size
    assert_close(torch.cat(pieces, dim=1), full, **tol)
