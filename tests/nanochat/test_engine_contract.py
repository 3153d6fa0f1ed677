"""The engine's and the KV cache's smaller promises: generate_batch's defaults and keywords, rows that stop
at different times, python blocks that never opened or were refused, a cache that keeps the dtype and
the device of its keys, prefill into a cache that fits exactly, and (this project's own) growth at exact
chunk boundaries and its error messages.

Written against generic (mutmut) mutants that survived test_engine.py and test_kv_cache.py.
"""

import inspect

import pytest
import torch

from nanochat.engine import Engine, KVCache


class ScriptedModel:
    """Wraps a GPT (so a real cache fills); at step s, row r's logits put all mass on scripts[r][s]."""

    def __init__(self, model, scripts):
        self.model, self.config, self.scripts, self.step = model, model.config, scripts, 0

    def get_device(self):
        return self.model.get_device()

    def forward(self, ids, targets=None, kv_cache=None):
        logits = self.model.forward(ids, kv_cache=kv_cache)
        scripted = torch.full_like(logits, -1e4)
        for row in range(ids.size(0)):
            script = self.scripts[row]
            scripted[row, :, script[min(self.step, len(script) - 1)]] = 0.0
        self.step += 1
        return scripted


def cache(batch_size, seq_len, device="cpu", dtype=torch.float32, num_layers=2, num_heads=2, head_dim=4):
    """A KVCache, given device and dtype too where its constructor takes them (the API leaves that open)."""
    accepted = inspect.signature(KVCache).parameters
    extra = {name: value for name, value in (("device", device), ("dtype", dtype)) if name in accepted}
    return KVCache(
        batch_size=batch_size, num_heads=num_heads, seq_len=seq_len, head_dim=head_dim, num_layers=num_layers, **extra
    )


def fill(kv, batch, size, dtype=torch.float32, device="cpu", seed=0):
    """Insert `size` random positions into both layers of a (batch, 2 heads, head_dim 4) cache; returns what
    each layer got back, and what went in."""
    gen = torch.Generator().manual_seed(seed)
    layers, heads, head_dim = 2, 2, 4
    got, sent = [], []
    for layer in range(layers):
        k = torch.randn(batch, heads, size, head_dim, generator=gen).to(device=device, dtype=dtype)
        v = torch.randn(batch, heads, size, head_dim, generator=gen).to(device=device, dtype=dtype)
        got.append(kv.insert_kv(layer, k, v))
        sent.append((k, v))
    return got, sent


# --- generate_batch ------------------------------------------------------------------------------


def test_generate_batch_defaults_to_one_sample_and_passes_its_keywords_on(model, tokenizer):
    prompt = [tokenizer.get_bos_token_id()] + tokenizer.encode("Go")
    junk = tokenizer.encode("Z")[0]
    results, masks = Engine(ScriptedModel(model, [[junk] * 20]), tokenizer).generate_batch(prompt, max_tokens=3)
    assert results == [prompt + [junk] * 3]  # one row, and max_tokens reached generate
    assert masks == [[0] * len(prompt) + [1] * 3]


def test_generate_batch_keeps_later_rows_after_an_earlier_one_stops(model, tokenizer):
    end = tokenizer.encode_special("<|assistant_end|>")
    a, b = tokenizer.encode("Z")[0], tokenizer.encode("Hi")[0]
    scripts = [[a, end, a, a, a, a], [a, b, b, b, end, a]]  # row 0 stops first, row 1 goes on
    prompt = [tokenizer.get_bos_token_id()]
    results, masks = Engine(ScriptedModel(model, scripts), tokenizer).generate_batch(
        prompt, num_samples=2, max_tokens=10
    )
    assert results == [prompt + [a], prompt + [a, b, b, b]]
    assert masks == [[0, 1], [0, 1, 1, 1, 1]]


# --- the calculator's state machine --------------------------------------------------------------


def run(model, tokenizer, script, max_tokens):
    tokens = []
    for column, _ in Engine(ScriptedModel(model, [script]), tokenizer).generate([1, 2], max_tokens=max_tokens):
        tokens.append(column[0])
    return tokens


def test_python_end_without_python_start_runs_nothing(model, tokenizer):
    special = tokenizer.encode_special
    script = tokenizer.encode("5+3") + [special("<|python_end|>")] + tokenizer.encode("Z") * 4
    assert run(model, tokenizer, script, len(script)) == script  # nothing forced: no block was open


@pytest.mark.parametrize("inside", ["x", "1+", ""], ids=["refused", "refused-prefix", "empty"])
def test_a_closed_block_does_not_stay_open(model, tokenizer, inside):
    # a block that runs nothing (a refused call, or an empty one), then text and a stray <|python_end|>:
    # that text is no expression to evaluate, neither alone nor appended to the closed block's ("1+" "2+2")
    special = tokenizer.encode_special
    closed = [special("<|python_start|>")] + tokenizer.encode(inside) + [special("<|python_end|>")]
    stray = tokenizer.encode("2+2") + [special("<|python_end|>")]
    script = closed + stray + tokenizer.encode("Z") * 4
    assert run(model, tokenizer, script, len(script)) == script


# --- the cache keeps its keys' dtype and device ------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=["float64", "bfloat16"])
def test_cache_keeps_the_dtype_of_its_keys_through_growth_and_prefill(dtype):
    kv = cache(1, 4, dtype=dtype)
    got, sent = fill(kv, 1, 3, dtype=dtype)
    assert got[0][0].dtype == dtype and torch.equal(got[1][1], sent[1][1])
    got, sent = fill(kv, 1, 6, dtype=dtype, seed=1)  # grows past 4
    assert got[0][0].dtype == got[0][1].dtype == dtype
    rows = cache(2, 16, dtype=dtype)
    rows.prefill(kv)
    got, _ = fill(rows, 2, 1, dtype=dtype, seed=2)
    assert got[0][0].dtype == dtype and got[0][0].shape[2] == 10


def test_cache_allocates_on_the_device_of_its_keys():
    # the meta device stands in for an accelerator: a CPU allocation would not hold meta keys
    kv = cache(1, 4, device="meta")
    got, _ = fill(kv, 1, 3, device="meta")
    assert got[0][0].device.type == "meta"
    got, _ = fill(kv, 1, 6, device="meta", seed=1)  # grows
    assert got[1][1].device.type == "meta"
    rows = cache(2, 16, device="meta")
    rows.prefill(kv)
    got, _ = fill(rows, 2, 1, device="meta", seed=2)
    assert got[0][0].device.type == "meta" and got[0][0].shape[2] == 10


def test_prefill_into_a_cache_that_fits_exactly():
    source = cache(1, 5)
    _, sent = fill(source, 1, 5)
    rows = cache(3, 5)
    rows.prefill(source)
    assert rows.get_pos() == 5
    got, _ = fill(rows, 3, 1, seed=1)
    assert torch.equal(got[0][0][:, :, :5], sent[0][0].expand(3, -1, -1, -1))


# --- this project's growth rule and messages ---------------------------------------------------------


@pytest.mark.project_extras
@pytest.mark.parametrize(
    "seq_len, insert, capacity",
    [
        pytest.param(8, 8, 8, id="exactly-full-does-not-grow"),
        pytest.param(8, 1023, 2048, id="needed-1023"),
        pytest.param(8, 1024, 2048, id="needed-one-chunk"),
        pytest.param(8, 1025, 3072, id="needed-one-chunk-and-one"),
    ],
)
def test_growth_at_chunk_boundaries(seq_len, insert, capacity):
    kv = cache(1, seq_len)
    fill(kv, 1, insert)
    assert kv.capacity() == capacity  # what is needed plus one chunk, rounded up to whole chunks


@pytest.mark.project_extras
def test_prefill_errors_say_what_is_wrong():
    full = cache(1, 4)
    fill(full, 1, 2)
    cases = [
        (full, cache(1, 4), "prefill needs an empty cache"),
        (cache(2, 4), cache(1, 4), "nothing to prefill from"),
        (cache(2, 4, num_heads=3), full, "cache shapes differ"),
        (cache(2, 1), full, "the other cache holds more positions than this one can"),
    ]
    three = cache(3, 4)
    fill(three, 3, 1)
    cases.append((cache(2, 4), three, "cannot broadcast the other cache's batch"))
    for target, source, message in cases:
        with pytest.raises(AssertionError) as raised:
            target.prefill(source)
        assert str(raised.value) == message
