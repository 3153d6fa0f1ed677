"""A small decoder-only transformer with the nanochat model API.

Per block: RMSNorm (no weights) -> attention with rotary positions, RMS-normalised queries and keys
and grouped key/value heads -> residual; RMSNorm -> MLP with a squared ReLU -> residual. The final
logits go through 15 * tanh(logits / 15).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD_VOCAB_TO = 64  # the embedding and head get whole multiples of this many rows
ROTARY_TABLE_FACTOR = 4  # rotary tables cover this many times the training length
LOGIT_CAP = 15.0


@dataclass
class GPTConfig:
    sequence_len: int = 256
    vocab_size: int = 32768
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 4
    n_embd: int = 256


def rms_normalise(x, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)


def apply_rotary_emb(x, cos, sin):
    """x: (B, T, H, D). The first and second halves of the last axis form the rotated pairs."""
    d = x.shape[-1] // 2
    first, second = x.split(d, dim=-1)
    out = torch.cat((first * cos + second * sin, second * cos - first * sin), dim=-1)
    return out.type_as(x)


def rotary_tables(length, head_dim, theta=10000.0, device=None):
    """cos and sin, each (1, length, 1, head_dim // 2): position t turns pair i by t * theta^(-2i/head_dim)."""
    exponents = torch.arange(head_dim // 2, dtype=torch.float32, device=device) * 2 / head_dim
    frequencies = theta**-exponents
    angles = torch.arange(length, dtype=torch.float32, device=device)[:, None] * frequencies[None, :]
    return angles.cos().view(1, length, 1, -1), angles.sin().view(1, length, 1, -1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        if config.n_embd % config.n_head or config.n_head % config.n_kv_head:
            raise ValueError("n_embd must split into n_head heads, and n_head into n_kv_head groups")
        self.layer_idx = layer_idx
        self.n_head, self.n_kv_head = config.n_head, config.n_kv_head
        self.head_dim = config.n_embd // config.n_head
        self.c_q = nn.Linear(config.n_embd, config.n_head * self.head_dim, bias=False)
        self.c_k = nn.Linear(config.n_embd, config.n_kv_head * self.head_dim, bias=False)
        self.c_v = nn.Linear(config.n_embd, config.n_kv_head * self.head_dim, bias=False)
        self.c_proj = nn.Linear(config.n_head * self.head_dim, config.n_embd, bias=False)

    def forward(self, x, cos_sin, kv_cache):
        batch, steps, _ = x.shape
        cos, sin = cos_sin
        q = apply_rotary_emb(self.c_q(x).unflatten(-1, (self.n_head, self.head_dim)), cos, sin)
        k = apply_rotary_emb(self.c_k(x).unflatten(-1, (self.n_kv_head, self.head_dim)), cos, sin)
        v = self.c_v(x).unflatten(-1, (self.n_kv_head, self.head_dim))
        q, k = rms_normalise(q), rms_normalise(k)
        q, k, v = (t.permute(0, 2, 1, 3) for t in (q, k, v))  # heads first

        past = 0
        if kv_cache is not None:
            past = kv_cache.get_pos()
            k, v = kv_cache.insert_kv(self.layer_idx, k, v)
        # query head h reads key/value head h // group: repeat each kv head over its group
        group = self.n_head // self.n_kv_head
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)

        # query t (absolute position past + t) sees every key at a position <= its own
        query_pos = torch.arange(past, past + steps, device=x.device)[:, None]
        key_pos = torch.arange(k.shape[2], device=x.device)[None, :]
        visible = key_pos <= query_pos
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
        return self.c_proj(y.permute(0, 2, 1, 3).reshape(batch, steps, -1))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        hidden = F.relu(self.c_fc(x))
        return self.c_proj(hidden * hidden)


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.attn = CausalSelfAttention(config, layer_idx)
        self.mlp = MLP(config)

    def forward(self, x, cos_sin, kv_cache):
        x = x + self.attn(rms_normalise(x), cos_sin, kv_cache)
        return x + self.mlp(rms_normalise(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        rows = math.ceil(config.vocab_size / PAD_VOCAB_TO) * PAD_VOCAB_TO
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(rows, config.n_embd),
                h=nn.ModuleList(Block(config, i) for i in range(config.n_layer)),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, rows, bias=False)
        self._set_rotary_tables()

    def _set_rotary_tables(self):
        head_dim = self.config.n_embd // self.config.n_head
        length = ROTARY_TABLE_FACTOR * self.config.sequence_len
        cos, sin = rotary_tables(length, head_dim, device=self.transformer.wte.weight.device)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    @torch.no_grad()
    def init_weights(self):
        """Embedding N(0, 1); input projections uniform with std 1/sqrt(n_embd); output projections and
        the head start at zero."""
        self.transformer.wte.weight.normal_()
        limit = math.sqrt(3.0 / self.config.n_embd)
        for block in self.transformer.h:
            for linear in (block.attn.c_q, block.attn.c_k, block.attn.c_v, block.mlp.c_fc):
                linear.weight.uniform_(-limit, limit)
            block.attn.c_proj.weight.zero_()
            block.mlp.c_proj.weight.zero_()
        self.lm_head.weight.zero_()
        self._set_rotary_tables()

    def get_device(self):
        return self.lm_head.weight.device

    def forward(self, idx, targets=None, kv_cache=None, loss_reduction="mean"):
        steps = idx.shape[1]
        first = kv_cache.get_pos() if kv_cache is not None else 0
        if first + steps > self.cos.shape[1]:
            raise ValueError(f"positions up to {first + steps} do not fit rotary tables of {self.cos.shape[1]}")
        cos_sin = (self.cos[:, first : first + steps], self.sin[:, first : first + steps])

        x = rms_normalise(self.transformer.wte(idx))
        for block in self.transformer.h:
            x = block(x, cos_sin, kv_cache)
        logits = self.lm_head(rms_normalise(x))[..., : self.config.vocab_size].float()
        logits = LOGIT_CAP * torch.tanh(logits / LOGIT_CAP)
        if targets is None:
            return logits
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1, reduction=loss_reduction)

    @torch.inference_mode()
    def generate(self, tokens, max_tokens, temperature=1.0, top_k=None, seed=42):
        """Yield max_tokens token ids, recomputing the whole sequence each step (no cache)."""
        from nanochat.engine import sample_next_token

        device = self.get_device()
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        sequence = torch.tensor(tokens, dtype=torch.long, device=device)[None]
        for _ in range(max_tokens):
            chosen = sample_next_token(self(sequence)[:, -1], generator, temperature, top_k)
            sequence = torch.cat((sequence, chosen), dim=1)
            yield int(chosen[0, 0])
