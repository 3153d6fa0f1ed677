"""Level 3 acceptance tests: each one checks a property the fixed code must have.

Run them with `pytest tests/`. They use a tiny model on the CPU and take a few seconds.
"""

import pytest
import torch

from nanochat.engine import Engine, KVCache
from nanochat.gpt import GPT, GPTConfig
from nanochat.tokenizer import RustBPETokenizer

CONFIG = dict(sequence_len=64, n_layer=3, n_head=4, n_kv_head=2, n_embd=32)


@pytest.fixture(scope="module")
def tokenizer():
    corpus = ["the quick brown fox jumps over the lazy dog 12345"] * 50
    return RustBPETokenizer.train_from_iterator(iter(corpus), vocab_size=300)


def make_model(vocab_size, seed=0, **overrides):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab_size, **{**CONFIG, **overrides}))
    model.init_weights()
    # Untrained output projections are small; give them weight so every layer matters.
    for block in model.transformer.h:
        torch.nn.init.normal_(block.attn.c_proj.weight, std=0.2)
        torch.nn.init.normal_(block.mlp.c_proj.weight, std=0.2)
    torch.nn.init.normal_(model.lm_head.weight, std=0.5)
    return model.eval()


def test_rotary_tables_follow_the_formula():
    """Position t, channel pair i rotates by t / 10000^(2i / head_dim)."""
    model = make_model(vocab_size=300)
    head_dim = CONFIG["n_embd"] // CONFIG["n_head"]
    steps = model.cos.size(1)
    angles = [[t / 10000 ** (2 * i / head_dim) for i in range(head_dim // 2)] for t in range(steps)]
    expected = torch.tensor(angles, dtype=torch.float64)
    assert model.cos.shape == (1, steps, 1, head_dim // 2)
    torch.testing.assert_close(model.cos[0, :, 0].double(), expected.cos(), atol=2e-3, rtol=0)
    torch.testing.assert_close(model.sin[0, :, 0].double(), expected.sin(), atol=2e-3, rtol=0)


def test_cached_generation_matches_the_full_forward():
    """Prefill, chunks and one-token steps through the cache give the logits of one full pass."""
    model = make_model(vocab_size=300)
    ids = torch.randint(0, 300, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids)
        cache = KVCache(batch_size=2, num_heads=2, seq_len=40, head_dim=8, num_layers=CONFIG["n_layer"])
        pieces, start = [], 0
        for size in (7, 1, 1, 5, 1, 10, 15):
            pieces.append(model(ids[:, start : start + size], kv_cache=cache))
            start += size
    assert cache.get_pos() == 40
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-4, rtol=1e-4)


def test_each_position_sees_exactly_the_tokens_before_it():
    """Changing a later token leaves earlier logits alone, with and without a cache holding a prefix."""
    model = make_model(vocab_size=300)
    ids = torch.randint(0, 300, (1, 24), generator=torch.Generator().manual_seed(3))
    changed = ids.clone()
    changed[0, 16] = (ids[0, 16] + 1) % 300
    with torch.no_grad():
        full, full_changed = model(ids), model(changed)
        cache = KVCache(batch_size=1, num_heads=2, seq_len=24, head_dim=8, num_layers=CONFIG["n_layer"])
        model(ids[:, :12], kv_cache=cache)
        chunk = model(ids[:, 12:20], kv_cache=cache)
    torch.testing.assert_close(full[:, :16], full_changed[:, :16], atol=1e-5, rtol=0)
    assert (full[:, 16:] - full_changed[:, 16:]).abs().max() > 1e-4  # the change is seen from where it is
    torch.testing.assert_close(chunk, full[:, 12:20], atol=1e-4, rtol=1e-4)


def test_grouped_query_attention_shares_each_kv_head_with_its_group():
    """GQA equals multi-head attention whose key/value heads are copied for each query head."""
    gqa = make_model(vocab_size=300)
    mha = make_model(vocab_size=300, n_kv_head=CONFIG["n_head"])
    group = CONFIG["n_head"] // CONFIG["n_kv_head"]
    head_dim = CONFIG["n_embd"] // CONFIG["n_head"]
    with torch.no_grad():
        for name, param in gqa.named_parameters():
            target = dict(mha.named_parameters())[name]
            if name.endswith(("attn.c_k.weight", "attn.c_v.weight")):
                heads = param.view(CONFIG["n_kv_head"], head_dim, -1)
                param = heads.repeat_interleave(group, dim=0).reshape(target.shape)
            target.copy_(param)
        ids = torch.randint(0, 300, (2, 24), generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(gqa(ids), mha(ids), atol=1e-4, rtol=1e-4)


def test_cache_reset_and_growth():
    """A reset cache behaves like a new one; growing keeps the contents and follows the chunk rule."""
    cache = KVCache(batch_size=1, num_heads=2, seq_len=16, head_dim=4, num_layers=2)
    fresh = KVCache(batch_size=1, num_heads=2, seq_len=16, head_dim=4, num_layers=2)
    written, capacities = [], []
    for _ in range(3):
        k = torch.randn(1, 2, 700, 4)
        for layer in range(2):
            keys, _ = cache.insert_kv(layer, k, -k)
        written.append(k)
        capacities.append(cache.kv_cache.size(4))
    # It grows to what is needed plus a chunk of 1024, rounded up to whole chunks:
    # 700 -> 2048, 1400 fits, 2100 -> 4096.
    assert capacities == [2048, 2048, 4096]
    torch.testing.assert_close(keys, torch.cat(written, dim=2))
    cache.reset()
    assert cache.get_pos() == 0 and cache.kv_cache is None
    k = torch.randn(1, 2, 3, 4)
    for layer in range(2):
        got, _ = cache.insert_kv(layer, k, k)
        want, _ = fresh.insert_kv(layer, k, k)
        torch.testing.assert_close(got, want)
    assert cache.kv_cache.shape == fresh.kv_cache.shape


class ScriptedModel(torch.nn.Module):
    """A real model whose next-token choice is taken from a script, to drive the engine exactly."""

    def __init__(self, model, script):
        super().__init__()
        self.model, self.config, self.script = model, model.config, script

    def get_device(self):
        return self.model.get_device()

    def forward(self, ids, kv_cache=None):
        logits = self.model(ids, kv_cache=kv_cache)
        step = kv_cache.get_pos() - self.prompt_len
        forced = torch.full_like(logits, -100.0)
        forced[:, -1, self.script[min(step, len(self.script) - 1)]] = 100.0
        return forced


def test_calculator_output_is_forced_in_order(tokenizer):
    """After <|python_start|>5+3<|python_end|> the engine forces <|output_start|> 8 <|output_end|>."""
    special = tokenizer.encode_special
    expression = tokenizer.encode("5+3")
    answer = tokenizer.encode("8")
    script = [special("<|python_start|>"), *expression, special("<|python_end|>")]
    script += [0] * (len(answer) + 2) + [special("<|assistant_end|>")]
    prompt = tokenizer.encode("what is 5+3?", prepend="<|bos|>")
    model = ScriptedModel(make_model(vocab_size=tokenizer.get_vocab_size()), script)
    model.prompt_len = len(prompt)
    tokens, masks = [], []
    for column, mask in Engine(model, tokenizer).generate(prompt, max_tokens=30):
        tokens.append(column[0])
        masks.append(mask[0])
    expected_forced = [special("<|output_start|>"), *answer, special("<|output_end|>")]
    forced_at = len(expression) + 2
    assert tokens[forced_at : forced_at + len(expected_forced)] == expected_forced
    assert masks[forced_at : forced_at + len(expected_forced)] == [0] * len(expected_forced)
    assert tokens[-1] == special("<|assistant_end|>")


def test_conversation_renders_tool_blocks_in_order(tokenizer):
    """Every *_start token comes right before its content and every *_end right after."""
    conversation = {
        "messages": [
            {"role": "user", "content": "What is 5+3?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me calculate: "},
                    {"type": "python", "text": "5+3"},
                    {"type": "python_output", "text": "8"},
                    {"type": "text", "text": " The answer is 8."},
                ],
            },
        ]
    }
    ids, mask = tokenizer.render_conversation(conversation)
    s = tokenizer.encode_special
    enc = tokenizer.encode
    expected = (
        [s("<|bos|>"), s("<|user_start|>"), *enc("What is 5+3?"), s("<|user_end|>"), s("<|assistant_start|>")]
        + enc("Let me calculate: ")
        + [s("<|python_start|>"), *enc("5+3"), s("<|python_end|>")]
        + [s("<|output_start|>"), *enc("8"), s("<|output_end|>")]
        + enc(" The answer is 8.")
        + [s("<|assistant_end|>")]
    )
    assert ids == expected
    assert len(mask) == len(ids)
