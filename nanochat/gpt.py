"""The GPT model: a decoder-only transformer in the style of modern small LLMs.

- rotary position embeddings (no learned positions), cos/sin precomputed for 10x sequence_len
- QK-norm: queries and keys are RMS-normalised after rotation
- grouped-query attention: n_kv_head key/value heads shared by n_head query heads
- ReLU^2 MLP, parameter-free RMSNorm, untied embedding and head, no biases
- tanh soft-capping of the logits
- optional: a sliding attention window, a rotary base other than 10000, linear rotary position scaling
"""

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    sequence_len: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 6  # query heads
    n_kv_head: int = 6  # key/value heads (GQA when fewer than n_head)
    n_embd: int = 768
    # Optional, off by default (the seed's model): each query sees only its `window_size` most recent
    # keys, itself included; the rotary base; positions divided by `rope_scaling` (linear position
    # interpolation: a model trained on T positions reads rope_scaling * T).
    window_size: int | None = None
    rope_theta: float = 10000.0
    rope_scaling: float = 1.0


def norm(x):
    """Parameter-free RMSNorm over the last dimension."""
    return F.rms_norm(x, (x.size(-1),))


def apply_rotary_emb(x, cos, sin):
    """Rotate x of shape (B, T, H, D) by position: channel i pairs with channel i + D/2.

    cos and sin have shape (1, T, 1, D/2) and broadcast over batch and heads.
    """
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    rotated_1 = x1 * cos + x2 * sin
    rotated_2 = x2 * cos - x1 * sin
    return torch.cat([rotated_1, rotated_2], dim=-1).to(x.dtype)


def sliding_window_attention(q, k, v, window):
    """Attention of q (B, H, Tq, D) over k, v (B, H_kv, Tk, D), where the queries are the last Tq of the
    Tk positions (a chunk after a cached prefix, or the whole sequence): each query sees its `window`
    most recent keys, itself included.
    """
    Tq, Tk = q.size(2), k.size(2)
    query_pos = torch.arange(Tk - Tq, Tk, device=q.device)[:, None]
    key_pos = torch.arange(Tk, device=q.device)[None, :]
    distance = query_pos - key_pos
    visible = (distance >= 0) & (distance < window)
    bias = torch.zeros(Tq, Tk, dtype=q.dtype, device=q.device).masked_fill(~visible, float("-inf"))
    # Key/value heads are expanded here rather than by enable_gqa: with an explicit mask, SDPA's GQA
    # support leaves only its slowest kernel on CUDA.
    n_head, n_kv_head = q.size(1), k.size(1)
    group_size = n_head // n_kv_head
    kv_head_of = torch.arange(n_head, device=q.device) // group_size
    k, v = k[:, kv_head_of], v[:, kv_head_of]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=q.size(-1) ** -0.5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must divide evenly into heads"
        assert config.n_head % config.n_kv_head == 0, "query heads must divide evenly into kv groups"
        self.layer_idx = layer_idx
        self.n_head = config.n_head
        self.n_kv_head = config.n_kv_head
        self.head_dim = config.n_embd // config.n_head
        self.window_size = config.window_size
        self.c_q = nn.Linear(config.n_embd, self.n_head * self.head_dim, bias=False)
        self.c_k = nn.Linear(config.n_embd, self.n_kv_head * self.head_dim, bias=False)
        self.c_v = nn.Linear(config.n_embd, self.n_kv_head * self.head_dim, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x, cos_sin, kv_cache):
        B, T, _ = x.size()
        q = self.c_q(x).view(B, T, self.n_head, self.head_dim)
        k = self.c_k(x).view(B, T, self.n_kv_head, self.head_dim)
        v = self.c_v(x).view(B, T, self.n_kv_head, self.head_dim)

        cos, sin = cos_sin
        q, k = apply_rotary_emb(q, cos, sin), apply_rotary_emb(k, cos, sin)
        q, k = norm(q), norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, D)

        if kv_cache is not None:
            # the cache returns every key/value so far, this chunk included
            k, v = kv_cache.insert_kv(self.layer_idx, k, v)
        Tq, Tk = q.size(2), k.size(2)

        # SDPA repeats each kv head over its group of query heads only when told to
        enable_gqa = self.n_head != self.n_kv_head
        if self.window_size is not None:
            y = sliding_window_attention(q, k, v, self.window_size)
        elif Tq == Tk:
            # no prefix: plain causal attention (training, or the first chunk into a cache)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=enable_gqa)
        elif Tq == 1:
            # one new token attends to everything before it, itself included
            y = F.scaled_dot_product_attention(q, k, v, is_causal=False, enable_gqa=enable_gqa)
        else:
            # a chunk after a cached prefix: the whole prefix, then causal within the chunk
            prefix = Tk - Tq
            allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(diagonal=prefix)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, enable_gqa=enable_gqa)

        y = y.transpose(1, 2).contiguous().view(B, T, -1)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.attn = CausalSelfAttention(config, layer_idx)
        self.mlp = MLP(config)

    def forward(self, x, cos_sin, kv_cache):
        x = x + self.attn(norm(x), cos_sin, kv_cache)
        x = x + self.mlp(norm(x))
        return x


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.n_embd),
                "h": nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Tables cover 10x the training length so that generation can run past it.
        self.rotary_seq_len = config.sequence_len * 10
        head_dim = config.n_embd // config.n_head
        cos, sin = self._precompute_rotary_embeddings(
            self.rotary_seq_len, head_dim, base=config.rope_theta, scaling=config.rope_scaling
        )
        # not saved in checkpoints: they are a pure function of the config
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def _precompute_rotary_embeddings(self, seq_len, head_dim, base=10000, device=None, scaling=1.0):
        """cos/sin of shape (1, seq_len, 1, head_dim/2): angle(t, i) = (t / scaling) / base^(2i / head_dim)."""
        if device is None:
            device = self.transformer.wte.weight.device
        channel_range = torch.arange(0, head_dim, 2, dtype=torch.float32, device=device)
        inv_freq = 1.0 / (base ** (channel_range / head_dim))
        positions = torch.arange(seq_len, dtype=torch.float32, device=device) / scaling
        angles = torch.outer(positions, inv_freq)
        return angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]

    @torch.no_grad()
    def init_weights(self):
        """Initialise every weight in place (also re-derives the rotary tables on the current device).

        The output projections (attn.c_proj, mlp.c_proj) start small but not at zero. Zero projections
        make each block the identity at initialisation, so an untrained model cannot show any positional
        or attention behaviour: probes then compare outputs that are all exactly zero. A small scale keeps
        the residual stream dominated by the embeddings, which is what the zero init is for.
        """
        n_embd = self.config.n_embd
        nn.init.normal_(self.transformer.wte.weight, mean=0.0, std=1.0)
        nn.init.normal_(self.lm_head.weight, mean=0.0, std=0.001)
        bound = 3**0.5 * n_embd**-0.5  # uniform with the std of 1/sqrt(n_embd)
        for block in self.transformer.h:
            for linear in (block.attn.c_q, block.attn.c_k, block.attn.c_v, block.mlp.c_fc):
                nn.init.uniform_(linear.weight, -bound, bound)
            for linear in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.uniform_(linear.weight, -0.02 * bound, 0.02 * bound)
        head_dim = n_embd // self.config.n_head
        self.cos, self.sin = self._precompute_rotary_embeddings(
            self.rotary_seq_len, head_dim, base=self.config.rope_theta, scaling=self.config.rope_scaling
        )

    def get_device(self):
        return self.transformer.wte.weight.device

    def forward(self, idx, targets=None, kv_cache=None, loss_reduction="mean"):
        """Logits (B, T, vocab) for token ids idx (B, T); the loss instead when targets are given.

        With a kv_cache the tokens continue the cached sequence: their positions start at get_pos().
        """
        B, T = idx.size()
        start = 0 if kv_cache is None else kv_cache.get_pos()
        assert start + T <= self.cos.size(1), f"sequence of {start + T} exceeds rotary tables ({self.cos.size(1)})"
        cos_sin = self.cos[:, start : start + T], self.sin[:, start : start + T]

        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=idx.device.type == "cuda"):
            x = norm(self.transformer.wte(idx))
            for block in self.transformer.h:
                x = block(x, cos_sin, kv_cache)
            x = norm(x)
            logits = self.lm_head(x)

        softcap = 15.0  # keeps logits in (-15, 15) smoothly
        logits = softcap * torch.tanh(logits.float() / softcap)
        if targets is None:
            return logits
        return F.cross_entropy(
            logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1, reduction=loss_reduction
        )

    @torch.inference_mode()
    def generate(self, tokens, max_tokens, temperature=1.0, top_k=None, seed=42):
        """Naive generation without a cache: recompute the whole sequence for every new token."""
        from nanochat.engine import sample_next_token  # the engine imports this module

        device = self.get_device()
        rng = torch.Generator(device=device).manual_seed(seed) if temperature > 0 else None
        ids = torch.tensor([tokens], dtype=torch.long, device=device)
        for _ in range(max_tokens):
            logits = self.forward(ids)[:, -1, :]
            next_id = sample_next_token(logits, rng, temperature, top_k)
            ids = torch.cat([ids, next_id], dim=1)
            yield next_id.item()

    def setup_optimizers(self, unembedding_lr=0.004, embedding_lr=0.2, matrix_lr=0.02, weight_decay=0.0):
        """[AdamW, Muon]: AdamW for the embedding and the head, Muon for every matrix in the blocks.

        Muon orthogonalizes updates, which suits the blocks' linear maps but not the embedding (a lookup
        table: each row is its own vector) nor the head (one row per vocabulary entry). The two AdamW
        groups take their own learning rates. Every group records its lr as "initial_lr", which the
        schedule scales (nanochat.training.get_lr_multiplier).
        """
        from nanochat.muon import Muon  # muon.py is independent of the model; imported where used

        matrix_params = list(self.transformer.h.parameters())
        embedding_params = list(self.transformer.wte.parameters())
        lm_head_params = list(self.lm_head.parameters())
        assert len(list(self.parameters())) == len(matrix_params) + len(embedding_params) + len(lm_head_params)
        adam_groups = [
            dict(params=lm_head_params, lr=unembedding_lr),
            dict(params=embedding_params, lr=embedding_lr),
        ]
        adamw = torch.optim.AdamW(adam_groups, betas=(0.8, 0.95), eps=1e-10, weight_decay=weight_decay)
        muon = Muon(matrix_params, lr=matrix_lr, momentum=0.95)
        optimizers = [adamw, muon]
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["initial_lr"] = group["lr"]
        return optimizers
