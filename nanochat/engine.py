"""Inference: a key/value cache, token sampling, and the Engine that streams tokens and runs tools.

The engine prefills the prompt once with batch size 1, copies that cache into a cache for
`num_samples` rows, then decodes one token per row per step. Each row has its own state: tokens the
engine must force next (tool output), whether it is inside a python block, and whether it finished.
"""

from collections import deque

import torch
import torch.nn.functional as F

from nanochat.tools import use_calculator

CACHE_GROWTH_CHUNK = 1024  # the cache grows in whole chunks of this many positions


class KVCache:
    """Keys and values of every layer, for positions [0, pos), in one tensor.

    Layout: (num_layers, 2, batch_size, num_heads, capacity, head_dim), allocated on first insert so
    that it takes the dtype and device of the keys. Every layer inserts the same positions in turn;
    the position advances once the last layer has inserted.

    Storage is zero-filled rather than left uninitialised: a read past `pos` (always a mistake) then
    gives the same wrong answer on every run instead of whatever the allocator left there, so such
    mistakes fail tests reproducibly. The fill costs one memset per allocation.
    """

    def __init__(self, batch_size, num_heads, seq_len, head_dim, num_layers):
        # the shape a fresh (or reset) cache allocates; growth replaces the tensor, not this
        self.kv_shape = (num_layers, 2, batch_size, num_heads, seq_len, head_dim)
        self.kv_cache = None
        self.pos = 0

    def reset(self):
        """Forget everything: the next insert starts at position 0 in a fresh allocation."""
        self.pos = 0
        self.kv_cache = None

    def get_pos(self):
        return self.pos

    def capacity(self):
        """Positions the cache can hold before it must grow."""
        return self.kv_shape[4] if self.kv_cache is None else self.kv_cache.size(4)

    def prefill(self, other):
        """Start from another cache's contents (usually a batch-1 prompt cache, broadcast over rows)."""
        assert self.kv_cache is None, "prefill needs an empty cache"
        assert other.kv_cache is not None, "nothing to prefill from"
        num_layers, _, batch, heads, capacity, head_dim = self.kv_shape
        o_layers, _, o_batch, o_heads, _, o_head_dim = other.kv_cache.shape
        assert (num_layers, heads, head_dim) == (o_layers, o_heads, o_head_dim), "cache shapes differ"
        assert o_batch in (1, batch), "cannot broadcast the other cache's batch"
        assert other.pos <= capacity, "the other cache holds more positions than this one can"
        self.kv_cache = torch.zeros(self.kv_shape, dtype=other.kv_cache.dtype, device=other.kv_cache.device)
        self.kv_cache[..., : other.pos, :] = other.kv_cache[..., : other.pos, :]
        self.pos = other.pos

    def insert_kv(self, layer_idx, k, v):
        """Store k, v of shape (B, H, T, D) at positions [pos, pos + T) of this layer.

        Returns this layer's keys and values for positions [0, pos + T).
        """
        if self.kv_cache is None:
            self.kv_cache = torch.zeros(self.kv_shape, dtype=k.dtype, device=k.device)
        t0, t1 = self.pos, self.pos + k.size(2)
        if t1 > self.kv_cache.size(4):
            # Grow to what is needed plus one chunk of headroom, rounded up to whole chunks, so
            # that decoding one token at a time does not reallocate at every step.
            capacity = t1 + CACHE_GROWTH_CHUNK
            capacity = (capacity + CACHE_GROWTH_CHUNK - 1) // CACHE_GROWTH_CHUNK * CACHE_GROWTH_CHUNK
            grown_shape = list(self.kv_cache.shape)
            grown_shape[4] = capacity
            grown = torch.zeros(grown_shape, dtype=self.kv_cache.dtype, device=self.kv_cache.device)
            grown[..., :t0, :] = self.kv_cache[..., :t0, :]
            self.kv_cache = grown
        self.kv_cache[layer_idx, 0, :, :, t0:t1] = k
        self.kv_cache[layer_idx, 1, :, :, t0:t1] = v
        keys = self.kv_cache[layer_idx, 0, :, :, :t1]
        values = self.kv_cache[layer_idx, 1, :, :, :t1]
        # All layers write the same positions; move on only after the last one has.
        if layer_idx == self.kv_cache.size(0) - 1:
            self.pos = t1
        return keys, values


@torch.inference_mode()
def sample_next_token(logits, rng, temperature=1.0, top_k=None, top_p=None):
    """Next token ids (B, 1) from logits (B, V).

    temperature 0 is greedy (argmax); top_k keeps only the k most likely tokens before sampling; top_p
    (nucleus sampling) then keeps the most likely tokens whose probabilities, after temperature, first
    reach top_p together (at least one token); rng is a torch.Generator so that sampling is reproducible.
    """
    assert temperature >= 0.0, "temperature must be non-negative"
    if temperature == 0.0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    candidates = None
    if top_k is not None and top_k > 0:
        logits, candidates = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1)
    probs = F.softmax(logits / temperature, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # of the more likely tokens
        sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)  # multinomial renormalises
    choice = torch.multinomial(probs, num_samples=1, generator=rng)
    return choice if candidates is None else candidates.gather(-1, choice)


class RowState:
    """Per-sample state of a generation."""

    def __init__(self, tokens):
        self.tokens = list(tokens)  # everything so far, prompt included
        self.forced_tokens = deque()  # tokens to emit next instead of sampling (tool output)
        self.in_python_block = False
        self.python_expr_tokens = []
        self.completed = False


class Engine:
    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer

    def _new_cache(self, batch_size, seq_len):
        config = self.model.config
        return KVCache(
            batch_size=batch_size,
            num_heads=config.n_kv_head,
            seq_len=seq_len,
            head_dim=config.n_embd // config.n_head,
            num_layers=config.n_layer,
        )

    def _next_logits(self, ids, kv_cache):
        logits = self.model.forward(ids, kv_cache=kv_cache)[:, -1, :]
        # A model may have more outputs than the tokenizer has tokens (an untrained model sized
        # for a larger vocabulary, or a padded head). Never sample an id that cannot be decoded.
        return logits[:, : self.tokenizer.get_vocab_size()]

    @torch.inference_mode()
    def generate(self, tokens, num_samples=1, max_tokens=None, temperature=1.0, top_k=None, seed=42, top_p=None):
        """Stream (token_column, token_masks): one token per sample per step.

        A mask is 1 for a sampled token and 0 for a forced one (calculator output). A row completes on
        <|assistant_end|> or <|bos|>; that token is still yielded. Generation ends when every row has
        completed or after max_tokens steps. temperature, top_k and top_p go to sample_next_token.
        """
        assert isinstance(tokens, list) and all(isinstance(t, int) for t in tokens), "tokens: a list of ids"
        assert len(tokens) > 0, "the prompt needs at least one token"
        device = self.model.get_device()
        rng = torch.Generator(device=device)
        rng.manual_seed(seed)

        special = self.tokenizer.encode_special
        python_start, python_end = special("<|python_start|>"), special("<|python_end|>")
        output_start, output_end = special("<|output_start|>"), special("<|output_end|>")
        stop_tokens = {special("<|assistant_end|>"), self.tokenizer.get_bos_token_id()}

        # Prefill the prompt once, then share it among the rows.
        prompt_cache = self._new_cache(batch_size=1, seq_len=len(tokens))
        prompt = torch.tensor([tokens], dtype=torch.long, device=device)
        logits = self._next_logits(prompt, prompt_cache).expand(num_samples, -1)
        decode_len = len(tokens) + max_tokens if max_tokens is not None else self.model.config.sequence_len
        kv_cache = self._new_cache(batch_size=num_samples, seq_len=decode_len)
        kv_cache.prefill(prompt_cache)
        del prompt_cache

        rows = [RowState(tokens) for _ in range(num_samples)]
        steps = 0
        while (max_tokens is None or steps < max_tokens) and not all(row.completed for row in rows):
            sampled = sample_next_token(logits, rng, temperature, top_k, top_p)[:, 0].tolist()
            token_column, token_masks = [], []
            for row, sampled_token in zip(rows, sampled, strict=True):
                forced = len(row.forced_tokens) > 0
                token = row.forced_tokens.popleft() if forced else sampled_token
                token_column.append(token)
                token_masks.append(0 if forced else 1)
                row.tokens.append(token)
                self._advance_tool_state(row, token, python_start, python_end, output_start, output_end)
                if token in stop_tokens:
                    row.completed = True
            yield token_column, token_masks
            steps += 1
            column = torch.tensor(token_column, dtype=torch.long, device=device).unsqueeze(1)
            logits = self._next_logits(column, kv_cache)

    def _advance_tool_state(self, row, token, python_start, python_end, output_start, output_end):
        """The calculator state machine: collect a python block, then queue its result as output."""
        if token == python_start:
            row.in_python_block = True
            row.python_expr_tokens = []
        elif token == python_end and row.in_python_block:
            row.in_python_block = False
            if row.python_expr_tokens:
                result = use_calculator(self.tokenizer.decode(row.python_expr_tokens))
                if result is not None:
                    row.forced_tokens.append(output_start)
                    row.forced_tokens.extend(self.tokenizer.encode(str(result)))
                    row.forced_tokens.append(output_end)
        elif row.in_python_block:
            row.python_expr_tokens.append(token)

    def generate_batch(self, tokens, num_samples=1, **kwargs):
        """Run generate to the end: (results, masks), one list per sample, prompt included.

        Stop tokens are not included in the results.
        """
        stop_tokens = {self.tokenizer.encode_special("<|assistant_end|>"), self.tokenizer.get_bos_token_id()}
        results = [list(tokens) for _ in range(num_samples)]
        masks = [[0] * len(tokens) for _ in range(num_samples)]
        done = [False] * num_samples
        for token_column, token_masks in self.generate(tokens, num_samples, **kwargs):
            for i, (token, mask) in enumerate(zip(token_column, token_masks, strict=True)):
                if done[i]:
                    continue
                if token in stop_tokens:
                    done[i] = True
                else:
                    results[i].append(token)
                    masks[i].append(mask)
            if all(done):
                break
        return results, masks
