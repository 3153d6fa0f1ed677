"""Cached generation: KVCache, sample_next_token, the calculator and the Engine."""

import ast
import operator

import torch


class KVCache:
    """Per layer keys and values for positions [0, get_pos()), as two tensors of shape
    (num_layers, batch_size, num_heads, capacity, head_dim).

    With a device (and dtype) the storage is allocated at once; without, on the first insert, from the
    keys. When full it doubles (at least to what is needed).
    """

    def __init__(self, batch_size, num_heads, seq_len, head_dim, num_layers, device=None, dtype=None):
        self.initial_shape = self.shape = (num_layers, batch_size, num_heads, seq_len, head_dim)
        self.device, self.dtype = device, dtype
        self.keys = self.values = None
        self.pos = 0
        if device is not None:
            self._allocate(dtype or torch.float32, device)

    def _allocate(self, dtype, device):
        self.keys = torch.zeros(self.shape, dtype=dtype, device=device)
        self.values = torch.zeros(self.shape, dtype=dtype, device=device)

    def reset(self):
        self.pos = 0
        self.shape = self.initial_shape
        self.keys = self.values = None
        if self.device is not None:
            self._allocate(self.dtype or torch.float32, self.device)

    def get_pos(self):
        return self.pos

    def prefill(self, other):
        """Take over another cache's positions; a batch of one is copied into every row."""
        if other.keys is None or other.pos == 0:
            raise ValueError("the other cache holds nothing")
        if self.pos != 0:
            raise ValueError("prefill wants a cache that holds nothing yet")
        layers, batch, heads, capacity, head_dim = self.shape
        if other.shape[0] != layers or other.shape[2] != heads or other.shape[4] != head_dim:
            raise ValueError("caches of different models")
        if other.shape[1] not in (1, batch):
            raise ValueError(f"a batch of {other.shape[1]} cannot fill {batch} rows")
        self.shape = (layers, batch, heads, max(capacity, other.pos), head_dim)
        self._allocate(other.keys.dtype, other.keys.device)
        self.keys[:, :, :, : other.pos] = other.keys[:, :, :, : other.pos]
        self.values[:, :, :, : other.pos] = other.values[:, :, :, : other.pos]
        self.pos = other.pos

    def insert_kv(self, layer_idx, k, v):
        """Write k, v (B, H, T, D) at positions [pos, pos + T) of one layer; return that layer's
        keys and values for [0, pos + T). The position moves on after the last layer."""
        if self.keys is None:
            self._allocate(k.dtype, k.device)
        end = self.pos + k.shape[2]
        if end > self.keys.shape[3]:
            self._grow(end)
        self.keys[layer_idx, :, :, self.pos : end] = k
        self.values[layer_idx, :, :, self.pos : end] = v
        keys, values = self.keys[layer_idx, :, :, :end], self.values[layer_idx, :, :, :end]
        if layer_idx == self.shape[0] - 1:
            self.pos = end
        return keys, values

    def _grow(self, needed):
        capacity = max(needed, 2 * self.keys.shape[3])
        old_keys, old_values = self.keys, self.values
        self.shape = (*self.shape[:3], capacity, self.shape[4])
        self._allocate(old_keys.dtype, old_keys.device)
        self.keys[:, :, :, : self.pos] = old_keys[:, :, :, : self.pos]
        self.values[:, :, :, : self.pos] = old_values[:, :, :, : self.pos]


@torch.inference_mode()
def sample_next_token(logits, rng, temperature=1.0, top_k=None):
    """(B, 1) ids from (B, V) logits: argmax at temperature 0, else a draw from softmax(logits / T),
    restricted to the top_k largest logits when top_k is given."""
    if temperature < 0:
        raise ValueError("temperature must be >= 0")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    scaled = logits / temperature
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth_largest = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth_largest, float("-inf"))
    return torch.multinomial(scaled.softmax(dim=-1), 1, generator=rng)


# --- the calculator: + - * / and str.count on literals, nothing else -------------------------------

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_LARGEST = 10**30  # numbers past this are refused: results must stay short


def _value(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        result = _OPERATORS[type(node.op)](_value(node.left), _value(node.right))
        if abs(result) > _LARGEST:
            raise ValueError("too large")
        return result
    raise ValueError(f"not arithmetic: {type(node).__name__}")


def _count(node):
    """'text'.count('x') on two string literals."""
    call = node.body if isinstance(node, ast.Expression) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "count"):
        raise ValueError("not a count")
    if len(call.args) != 1 or call.keywords:
        raise ValueError("count takes one argument")
    text, needle = call.func.value, call.args[0]
    if not all(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in (text, needle)):
        raise ValueError("count works on string literals")
    return text.value.count(needle.value)


def use_calculator(expression):
    """The value of a small arithmetic expression or string count, or None when it is anything else."""
    if not isinstance(expression, str) or len(expression) > 200:
        return None
    try:
        if ".count(" in expression:
            return _count(ast.parse(expression.strip(), mode="eval"))
        return _value(ast.parse(expression.replace(",", "").strip(), mode="eval").body)
    except (ValueError, SyntaxError, ZeroDivisionError, OverflowError, RecursionError, MemoryError):
        return None


# --- the engine -----------------------------------------------------------------------------------


class Engine:
    """Generation with a KV cache and the calculator tool, for one prompt and several samples."""

    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer

    def _cache(self, batch_size, seq_len):
        config = self.model.config
        return KVCache(batch_size, config.n_kv_head, seq_len, config.n_embd // config.n_head, config.n_layer)

    @torch.inference_mode()
    def generate(self, tokens, num_samples=1, max_tokens=None, temperature=1.0, top_k=None, seed=42):
        """Yield (token_column, token_masks) per step; mask 0 marks a token forced by the calculator."""
        if not tokens or not all(isinstance(t, int) for t in tokens):
            raise ValueError("tokens must be a non-empty list of ints")
        device = self.model.get_device()
        rng = torch.Generator(device=device)
        rng.manual_seed(seed)
        marker = self.tokenizer.encode_special
        stops = {marker("<|assistant_end|>"), self.tokenizer.get_bos_token_id()}

        prompt_cache = self._cache(1, len(tokens))
        logits = self._last_logits(torch.tensor([tokens], device=device), prompt_cache)
        logits = logits.repeat(num_samples, 1)
        cache = self._cache(num_samples, len(tokens) + (max_tokens or self.model.config.sequence_len))
        cache.prefill(prompt_cache)

        queued = [[] for _ in range(num_samples)]  # calculator output still to be emitted, per row
        expression = [None] * num_samples  # tokens of an open python block, per row; None: none open
        finished = [False] * num_samples
        step = 0
        while not all(finished) and (max_tokens is None or step < max_tokens):
            drawn = sample_next_token(logits, rng, temperature, top_k).view(-1).tolist()
            column, masks = [], []
            for row in range(num_samples):
                if queued[row]:
                    token, mask = queued[row].pop(0), 0
                else:
                    token, mask = drawn[row], 1
                column.append(token)
                masks.append(mask)
                queued[row] += self._calculator_step(expression, row, token)
                finished[row] = finished[row] or token in stops
            yield column, masks
            step += 1
            logits = self._last_logits(torch.tensor(column, device=device).view(-1, 1), cache)

    def _last_logits(self, ids, cache):
        return self.model.forward(ids, kv_cache=cache)[:, -1, :]

    def _calculator_step(self, expression, row, token):
        """Follow one row's python block; the tokens to force when a block closes with a value."""
        marker = self.tokenizer.encode_special
        if token == marker("<|python_start|>"):
            expression[row] = []
        elif token == marker("<|python_end|>") and expression[row] is not None:
            ids, expression[row] = expression[row], None
            value = use_calculator(self.tokenizer.decode(ids)) if ids else None
            if value is not None:
                try:
                    text_ids = self.tokenizer.encode(str(value))
                except ValueError:
                    return []
                return [marker("<|output_start|>"), *text_ids, marker("<|output_end|>")]
        elif expression[row] is not None:
            expression[row].append(token)
        return []

    def generate_batch(self, tokens, num_samples=1, **kwargs):
        """All of generate at once: (results, masks) per row, prompt included, stop tokens left out."""
        stops = {self.tokenizer.encode_special("<|assistant_end|>"), self.tokenizer.get_bos_token_id()}
        results = [list(tokens) for _ in range(num_samples)]
        masks = [[0] * len(tokens) for _ in range(num_samples)]
        open_rows = set(range(num_samples))
        for column, column_masks in self.generate(tokens, num_samples, **kwargs):
            for row in sorted(open_rows):
                if column[row] in stops:
                    open_rows.discard(row)
                else:
                    results[row].append(column[row])
                    masks[row].append(column_masks[row])
            if not open_rows:
                break
        return results, masks
