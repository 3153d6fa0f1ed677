"""KV cache: positions, reset, growth and prefill.

The cache's final position is right even when it advances at the wrong layer, so these tests compare
what the model computes through the cache with the full forward pass at every step.

The portable tests judge storage only by what a cache holds (the bytes of its tensors), not by how it
holds it: the API leaves open the layout, the growth rule, and whether storage is allocated at once.
The tests of this project's own layout and rule (kv_cache, capacity()) are marked project_extras.
"""

import inspect

import pytest
import torch

from nanochat.engine import KVCache


def make_cache(batch_size, num_heads, seq_len, head_dim, num_layers, device):
    """KVCache(batch_size, num_heads, seq_len, head_dim, num_layers), with device and dtype where the
    constructor takes them too (the API leaves such extra arguments open)."""
    accepted = inspect.signature(KVCache).parameters
    extra = {name: value for name, value in (("device", device), ("dtype", torch.float32)) if name in accepted}
    return KVCache(
        batch_size=batch_size, num_heads=num_heads, seq_len=seq_len, head_dim=head_dim, num_layers=num_layers, **extra
    )


def new_cache(model, batch_size=1, seq_len=4):
    c = model.config
    return make_cache(batch_size, c.n_kv_head, seq_len, c.n_embd // c.n_head, c.n_layer, model.get_device())


def held_bytes(cache):
    """Bytes of the distinct tensor storages a cache holds in its attributes (or in lists, tuples or
    dicts of them): what it keeps allocated, however it lays it out."""
    storages = {}

    def visit(value):
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(value, list | tuple):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)

    visit(vars(cache))
    return sum(storages.values())


def feed(model, cache, ids, chunk_sizes):
    """Run ids (B, T) through the cache in chunks; returns the logits of every position, concatenated."""
    logits, start, pos = [], 0, cache.get_pos()
    with torch.no_grad():
        for size in chunk_sizes:
            logits.append(model(ids[:, start : start + size], kv_cache=cache))
            start += size
            assert cache.get_pos() == pos + start
    assert start == ids.size(1)
    return torch.cat(logits, dim=1)


@pytest.mark.parametrize(
    "chunk_sizes",
    [
        pytest.param([5] + [1] * 7, id="prefill-then-decode"),
        pytest.param([3, 1, 4, 2, 1, 1], id="chunked-prefill"),
    ],
)
def test_cached_logits_equal_full_forward(model, device, tol, assert_close, chunk_sizes):
    # n_layer=3: a position advanced after the first, a middle, or every layer corrupts later layers
    ids = torch.randint(0, model.config.vocab_size, (2, sum(chunk_sizes)), device=device)
    with torch.no_grad():
        full = model(ids)
    # seq_len 4 < 12 positions: the cache also has to grow on the way
    cached = feed(model, new_cache(model, batch_size=2, seq_len=4), ids, chunk_sizes)
    assert_close(cached, full, **tol)


def test_reset_returns_to_fresh_state(model, device):
    ids = torch.randint(0, model.config.vocab_size, (1, 6), device=device)
    other = torch.randint(0, model.config.vocab_size, (1, 6), device=device)
    fresh = new_cache(model, seq_len=16)
    assert fresh.get_pos() == 0

    used = new_cache(model, seq_len=16)
    feed(model, used, other, [6])
    used.reset()
    # nothing remembered, nothing more held than by a new cache
    assert used.get_pos() == 0
    assert held_bytes(used) <= held_bytes(new_cache(model, seq_len=16))

    expected = feed(model, fresh, ids, [4, 1, 1])
    got = feed(model, used, ids, [4, 1, 1])
    assert torch.equal(got, expected)


def test_reset_after_growth_releases_storage(model, device):
    used = new_cache(model, seq_len=2)
    feed(model, used, torch.randint(0, model.config.vocab_size, (1, 5), device=device), [5])
    assert held_bytes(used) > held_bytes(new_cache(model, seq_len=2))  # it grew
    used.reset()
    assert used.get_pos() == 0
    assert held_bytes(used) <= held_bytes(new_cache(model, seq_len=2))
    ids = torch.randint(0, model.config.vocab_size, (1, 4), device=device)
    assert torch.equal(feed(model, used, ids, [3, 1]), feed(model, new_cache(model, seq_len=2), ids, [3, 1]))


@pytest.mark.project_extras
def test_reset_forgets_this_projects_lazy_storage(model, device):
    fresh = new_cache(model, seq_len=16)
    assert (fresh.get_pos(), fresh.kv_cache, fresh.capacity()) == (0, None, 16)
    used = new_cache(model, seq_len=2)
    feed(model, used, torch.randint(0, model.config.vocab_size, (1, 5), device=device), [5])
    assert used.capacity() > 2
    used.reset()
    assert (used.get_pos(), used.kv_cache, used.capacity()) == (0, None, 2)


def expected_capacity(capacity, needed, chunk=1024):
    """The growth rule: what is needed plus one chunk of headroom, rounded up to whole chunks."""
    if needed <= capacity:
        return capacity
    return -(-(needed + chunk) // chunk) * chunk


GROWTH_STEPS = [5, 700, 398, 1000, 1, 1]  # insert sizes: past 8, past 1024, past 2048, then small


def test_growth_preserves_contents_and_holds_at_most_double_or_two_chunks_more_than_needed(device):
    layers, batch, heads, head_dim = 3, 2, 2, 4
    cache = make_cache(batch, heads, 8, head_dim, layers, device)
    bytes_per_position = layers * 2 * batch * heads * head_dim * 4  # keys and values, float32
    inserted = [torch.empty(2, batch, heads, 0, head_dim, device=device) for _ in range(layers)]
    for size in GROWTH_STEPS:
        needed = cache.get_pos() + size
        for layer in range(layers):
            kv = torch.randn(2, batch, heads, size, head_dim, device=device)
            inserted[layer] = torch.cat([inserted[layer], kv], dim=3)
            keys, values = cache.insert_kv(layer, kv[0], kv[1])
            # everything inserted so far comes back bit for bit, across every growth
            assert torch.equal(keys, inserted[layer][0])
            assert torch.equal(values, inserted[layer][1])
        assert cache.get_pos() == needed
        # doubling the capacity, or what is needed plus a chunk of headroom rounded up to whole chunks
        # (1024): either stays under this bound; doubling what is needed and adding the chunk does not
        bound = bytes_per_position * max(2 * needed, needed + 2048)
        assert held_bytes(cache) <= bound, f"needed {needed} positions: holds {held_bytes(cache)} bytes > {bound}"


@pytest.mark.project_extras
def test_growth_preserves_contents_and_bounds_capacity(device):
    layers, batch, heads, head_dim = 3, 2, 2, 4
    cache = KVCache(batch_size=batch, num_heads=heads, seq_len=8, head_dim=head_dim, num_layers=layers)
    inserted_k = [torch.empty(batch, heads, 0, head_dim, device=device) for _ in range(layers)]
    inserted_v = [torch.empty(batch, heads, 0, head_dim, device=device) for _ in range(layers)]
    capacity = 8
    # outgrows 8 at 705 (-> 2048), passes 1024 inside that, outgrows 2048 at 2103 (-> 4096), then fits
    for size in GROWTH_STEPS:
        needed = cache.get_pos() + size
        capacity = expected_capacity(capacity, needed)
        for layer in range(layers):
            k = torch.randn(batch, heads, size, head_dim, device=device)
            v = torch.randn(batch, heads, size, head_dim, device=device)
            inserted_k[layer] = torch.cat([inserted_k[layer], k], dim=2)
            inserted_v[layer] = torch.cat([inserted_v[layer], v], dim=2)
            keys, values = cache.insert_kv(layer, k, v)
            # everything inserted so far comes back bit for bit, across every growth
            assert torch.equal(keys, inserted_k[layer])
            assert torch.equal(values, inserted_v[layer])
        assert cache.get_pos() == needed
        assert cache.capacity() == capacity, f"needed {needed}: capacity {cache.capacity()}, expected {capacity}"
        assert cache.kv_cache.shape == (layers, 2, batch, heads, capacity, head_dim)
    assert capacity == 4096  # the cache did grow twice


def test_prefill_copies_a_batch1_cache_into_every_row(model, device, tol, assert_close):
    vocab = model.config.vocab_size
    prompt = torch.randint(0, vocab, (1, 5), device=device)
    source = new_cache(model, batch_size=1, seq_len=5)
    feed(model, source, prompt, [5])

    rows = new_cache(model, batch_size=3, seq_len=12)
    rows.prefill(source)
    assert rows.get_pos() == 5

    # each row then continues with its own tokens, as if it had been prefilled itself
    continuation = torch.randint(0, vocab, (3, 2), device=device)
    cached = feed(model, rows, continuation, [1, 1])
    with torch.no_grad():
        full = model(torch.cat([prompt.expand(3, -1), continuation], dim=1))
    assert_close(cached, full[:, 5:], **tol)


@pytest.mark.project_extras
def test_prefill_copies_this_projects_layout(model, device):
    source = new_cache(model, batch_size=1, seq_len=5)
    feed(model, source, torch.randint(0, model.config.vocab_size, (1, 5), device=device), [5])
    rows = new_cache(model, batch_size=3, seq_len=12)
    rows.prefill(source)
    assert torch.equal(rows.kv_cache[..., :5, :], source.kv_cache[..., :5, :].expand(-1, -1, 3, -1, -1, -1))
