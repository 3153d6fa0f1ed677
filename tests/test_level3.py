"""The level-3 acceptance tests, ported from the acceptance notebook ("Level 3: Architecture & Performance").

These keep the notebook's probes and assertions as they are, weak ones included: the mutation tool
measures how much they miss, against the oracles in tests/nanochat/. Only what a notebook does by
printing is expressed the pytest way: a printed failure fails, a printed skip skips.
"""

import gc

import numpy as np
import pytest
import torch

from nanochat.engine import Engine
from nanochat.gpt import GPT, GPTConfig
from nanochat.tokenizer import RustBPETokenizer

# Seeds the weights and the random inputs, so every run is the same. Test 2 samples near-uniform
# logits (the untrained head has std 0.001) with the engine's own generator (seed=42): an early
# <|bos|> or <|assistant_end|> would end it before 30 tokens. Checked on CPU: with SEED = 0 (and any
# seed from 0 to 11) it generates 30 tokens, 10 distinct among the last 10.
SEED = 0


@pytest.fixture(scope="module")
def tokenizer():
    texts = ["test"] * 1000
    return RustBPETokenizer.train_from_iterator(iter(texts), vocab_size=512)


@pytest.fixture(scope="module")
def config():
    return GPTConfig(
        sequence_len=256,
        vocab_size=512,
        n_layer=4,
        n_head=8,
        n_kv_head=4,  # MQA: fewer KV heads than query heads
        n_embd=256,
    )


@pytest.fixture(scope="module")
def model(config, device):
    torch.manual_seed(SEED)
    model = GPT(config)
    model.init_weights()
    return model.to(device)


def test_1_rotary_embeddings_at_different_positions(model, device):
    torch.manual_seed(SEED)
    test_seq = torch.randint(0, 100, (1, 20), dtype=torch.int32).to(device)

    outputs_at_positions = []
    for pos in [0, 50, 100, 150, 200]:
        with torch.no_grad():
            T = test_seq.size(1)
            cos_sin = model.cos[:, pos : pos + T], model.sin[:, pos : pos + T]

            x = model.transformer.wte(test_seq)
            x = torch.nn.functional.rms_norm(x, (x.size(-1),))
            attn_out = model.transformer.h[0].attn(x, cos_sin, kv_cache=None)

            outputs_at_positions.append(attn_out[0, 0, :5].cpu().numpy())

    # Acceptance: outputs should have similar variance across positions
    variances = [np.var(out) for out in outputs_at_positions]
    assert variances[-1] > variances[0] * 0.1, "FAIL: Output degrades at high positions"


def test_2_kv_cache_consistency(model, tokenizer):
    engine = Engine(model, tokenizer)
    prompt = "test prompt"
    prompt_tokens = tokenizer.encode(prompt, prepend="<|bos|>")

    generated_tokens = []
    for token_col, _ in engine.generate(prompt_tokens, max_tokens=30):
        generated_tokens.append(token_col[0])

    # Acceptance: should generate without errors
    assert len(generated_tokens) == 30, f"FAIL: Generated {len(generated_tokens)} tokens, expected 30"
    # Check for excessive repetition (sign of cache corruption)
    unique_tokens = len(set(generated_tokens[-10:]))
    assert unique_tokens >= 3, f"FAIL: Too much repetition in last 10 tokens ({unique_tokens} unique)"


def test_3_mqa_shape_compatibility(model, config, device):
    torch.manual_seed(SEED)
    attn = model.transformer.h[0].attn
    B, T = 2, 10
    x = torch.randn(B, T, config.n_embd).to(device)

    q = attn.c_q(x).view(B, T, config.n_head, config.n_embd // config.n_head)
    k = attn.c_k(x).view(B, T, config.n_kv_head, config.n_embd // config.n_head)
    v = attn.c_v(x).view(B, T, config.n_kv_head, config.n_embd // config.n_head)
    print(f"Q shape: {q.shape}, K shape: {k.shape}, V shape: {v.shape}")

    # The notebook catches any exception here and prints "✗ Test 3 failed": here that fails the test.
    try:
        cos_sin = model.cos[:, :T], model.sin[:, :T]
        output = attn(x, cos_sin, kv_cache=None)
        assert output.shape == (B, T, config.n_embd), f"FAIL: Wrong output shape {output.shape}"
    except Exception as e:
        pytest.fail(f"Test 3 failed: {e}")


def test_4_memory_management(model, tokenizer, device):
    if device != "cuda":
        pytest.skip("Test 4 measures torch.cuda.memory_allocated: CUDA only")
    mem_usage = []

    for i in range(5):
        engine = Engine(model, tokenizer)
        tokens = tokenizer.encode(f"test {i}", prepend="<|bos|>")
        result, _ = engine.generate_batch(tokens, max_tokens=50)

        gc.collect()
        torch.cuda.empty_cache()
        mem = torch.cuda.memory_allocated() / 1024**2
        mem_usage.append(mem)

    mem_increase = mem_usage[-1] - mem_usage[0]
    assert mem_increase < 50, f"FAIL: Memory leak detected ({mem_increase:.2f} MB increase)"


def test_5_tool_use_token_order(tokenizer):
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

    special_tokens = []
    for i, token_id in enumerate(ids):
        decoded = tokenizer.decode([token_id])
        if decoded.startswith("<|") and decoded.endswith("|>"):
            special_tokens.append((i, decoded))

    # Acceptance: output_start should come before output_end
    output_tokens = [(pos, tok) for pos, tok in special_tokens if "output" in tok]
    if len(output_tokens) >= 2:
        assert "<|output_start|>" in output_tokens[0][1], "FAIL: output_start should come first"
        assert "<|output_end|>" in output_tokens[1][1], "FAIL: output_end should come after output_start"
    else:
        # the notebook prints "⊘ Test 5: Insufficient output tokens to verify order"
        pytest.skip("Insufficient output tokens to verify order")
