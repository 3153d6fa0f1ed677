"""What each variant of each class does, as a user would report it, and its kind (see symptoms).

Entries are tried in order; the first that matches a mutant describes it: its class, one of its variant
globs, one of its function globs (optional), and its site (optional: text of a clean line the mutant
changes). Kinds were measured, each mutant alone against the visible tests and the probes, and
validation checks them again for every drawn bug. Texts say what goes wrong and in which quantity, never
where the code is or what its correct form would be. Variants that no visible test detects are never
drawn; their entries keep the table complete. The last entry of each class catches variants added later.
"""

SYMPTOMS = [
    # --- level 1: tokenizer and data pipeline ---
    dict(
        kind="crashes",
        text="Building a batch from a vocabulary larger than 32768 tokens fails: a large token id overflows.",
        **{"class": "token-dtype", "variants": ["to-int16"], "functions": ["make_batch"]},
    ),
    dict(
        kind="silent",
        text="The inputs of a batch come out as floating-point numbers rather than integer token ids.",
        **{"class": "token-dtype", "variants": ["to-float32"], "functions": ["make_batch"], "site": "inputs ="},
    ),
    dict(
        kind="silent",
        text="The targets of a batch come out as floating-point numbers rather than integer token ids.",
        **{"class": "token-dtype", "variants": ["to-float32"], "functions": ["make_batch"], "site": "targets ="},
    ),
    dict(
        kind="silent",
        text="The inputs of a batch take twice the memory they need: their integer type is wider than planned.",
        **{"class": "token-dtype", "variants": ["to-int64"], "functions": ["make_batch"]},
    ),
    dict(
        kind="silent",
        text="The targets of a batch are not of the integer type the loss takes for class indices.",
        **{"class": "token-dtype", "variants": ["to-int32"], "functions": ["make_batch"]},
    ),
    dict(
        kind="hidden",
        text="Token ids above 32767 come out changed once they pass through generation.",
        **{"class": "token-dtype", "variants": ["to-int16"], "functions": ["*generate"]},
    ),
    dict(
        kind="hidden",
        text="Fine-tuning batches hold token ids of another type than pre-training batches.",
        **{"class": "token-dtype", "variants": ["*"], "functions": ["sft_batch"]},
    ),
    dict(
        kind="crashes",
        text="Making a batch fails with a shape error: the token slices have the wrong length.",
        **{"class": "target-shift", "variants": ["cut-one-less", "cut-one-more"], "functions": ["make_batch"]},
    ),
    dict(
        kind="silent",
        text="The training loss falls to almost zero at once and generation just repeats its input:"
        " each target is not the token that follows its input.",
        **{"class": "target-shift", "variants": ["mirrored-*"], "functions": ["make_batch"]},
    ),
    dict(
        kind="silent",
        text="Consecutive training batches do not join up: at every boundary a token of the stream is skipped.",
        **{"class": "target-shift", "variants": ["cut-one-less"], "functions": ["tokenizing_data_loader"]},
    ),
    dict(
        kind="silent",
        text="Consecutive training batches do not join up: at every boundary a token of the stream is seen twice.",
        **{"class": "target-shift", "variants": ["cut-one-more"], "functions": ["tokenizing_data_loader"]},
    ),
    dict(
        kind="hidden",
        text="Fine-tuning batches pair inputs with the wrong targets.",
        **{"class": "target-shift", "variants": ["*"], "functions": ["sft_batch"]},
    ),
    dict(
        kind="silent",
        text="Documents run into each other in the training batches: no <|bos|> marks where one begins.",
        **{"class": "bos-missing", "variants": ["keyword-dropped", "insert-dropped", "bos-disabled"]},
    ),
    dict(
        kind="silent",
        text='encode(..., prepend="<|bos|>") leaves the <|bos|> out, for a single string and for a list alike.',
        **{"class": "bos-missing", "variants": ["prefix-dropped-everywhere"]},
    ),
    dict(
        kind="silent",
        text='encode(text, prepend="<|bos|>") leaves the <|bos|> out when text is a single string.',
        **{"class": "bos-missing", "variants": ["prefix-dropped"], "site": "encode_ordinary(text)"},
    ),
    dict(
        kind="silent",
        text='encode(texts, prepend="<|bos|>") leaves the <|bos|> out when texts is a list: so do the batches.',
        **{"class": "bos-missing", "variants": ["prefix-dropped"], "site": "encode_ordinary_batch"},
    ),
    # --- level 2: training ---
    dict(
        kind="silent",
        text="Training goes wrong from the first steps: the token embedding and the transformer blocks are"
        " stepped by each other's optimizer.",
        **{"class": "optimizer-groups", "variants": ["args-matrix_params-embedding_params"]},
    ),
    dict(
        kind="silent",
        text="Training goes wrong from the first steps: the token embedding and the output head learn at each"
        " other's learning rate.",
        **{"class": "optimizer-groups", "variants": ["*embedding_params-lm_head_params", "*lm_head_params-embedding*"]},
    ),
    dict(
        kind="silent",
        text="The two optimizers are built with each other's parameters and settings.",
        **{"class": "optimizer-groups", "variants": ["args-adamw-muon"]},
    ),
    dict(
        kind="silent",
        text="setup_optimizers hands back its optimizers in the other order than callers unpack them.",
        **{"class": "optimizer-groups", "variants": ["items-adamw-muon"]},
    ),
    dict(
        kind="silent",
        text="Parameters are stepped by the wrong optimizer or at the wrong rate.",
        **{"class": "optimizer-groups", "variants": ["*"]},
    ),
    dict(
        kind="silent",
        text="Warmup lasts many times longer than configured: the learning rate takes far too long to reach its"
        " base value.",
        **{"class": "lr-warmup", "variants": ["warmup_iters-x*"]},
    ),
    dict(
        kind="silent",
        text="Warmup ends far too early: the learning rate reaches its base value in a fraction of the"
        " configured warmup.",
        **{"class": "lr-warmup", "variants": ["warmup_iters-div*"]},
    ),
    dict(
        kind="silent",
        text="During warmup the learning rate stays far below its ramp, then jumps to its base value.",
        **{"class": "lr-warmup", "variants": ["warmup_iters-divisor-x*"]},
    ),
    dict(
        kind="silent",
        text="During warmup the learning rate overshoots its base value many times over.",
        **{"class": "lr-warmup", "variants": ["warmup_iters-divisor-div*"]},
    ),
    dict(
        kind="silent",
        text="The learning rate overshoots its base value at the step where warmup should end.",
        **{"class": "lr-warmup", "variants": ["warmup_iters-boundary"]},
    ),
    dict(
        kind="silent",
        text="The learning rate starts to fall far too early: the warmdown covers many more steps than configured.",
        **{"class": "lr-warmup", "variants": ["warmdown_iters-x*"]},
    ),
    dict(
        kind="silent",
        text="The learning rate holds its base value too long, then drops steeply over a fraction of the"
        " configured warmdown.",
        **{"class": "lr-warmup", "variants": ["warmdown_iters-div*"]},
    ),
    dict(
        kind="silent",
        text="During warmdown the learning rate falls far too slowly and ends well above its final value.",
        **{"class": "lr-warmup", "variants": ["warmdown_iters-divisor-x*"]},
    ),
    dict(
        kind="silent",
        text="During warmdown the learning rate falls far too fast, past its final value and below zero.",
        **{"class": "lr-warmup", "variants": ["warmdown_iters-divisor-div*"]},
    ),
    dict(
        kind="hidden",
        text="The learning rate leaves its base value one step early.",
        **{"class": "lr-warmup", "variants": ["warmdown_start-boundary"]},
    ),
    dict(
        kind="silent",
        text="The learning rate follows the wrong schedule: it reaches, holds or leaves its base value at the"
        " wrong steps.",
        **{"class": "lr-warmup", "variants": ["*"]},
    ),
    dict(
        kind="silent",
        text="Accumulated gradients are many times too small: results change with grad_accum_steps at the same"
        " total batch size.",
        **{"class": "grad-accum-normalisation", "variants": ["*-divisor-x*"]},
    ),
    dict(
        kind="silent",
        text="Accumulated gradients are many times too large: results change with grad_accum_steps at the same"
        " total batch size.",
        **{"class": "grad-accum-normalisation", "variants": ["*-divisor-div*", "update-dropped", "divisor-dropped"]},
    ),
    dict(
        kind="silent",
        text="Results change with grad_accum_steps at the same total batch size: the accumulated gradient is off.",
        **{"class": "grad-accum-normalisation", "variants": ["*"]},
    ),
    dict(
        kind="silent",
        text="After fine-tuning the model echoes prompts and has not learned to answer: the loss on the answer's"
        " tokens does not fall.",
        **{"class": "sft-mask", "variants": ["index-inverted"]},
    ),
    dict(
        kind="silent",
        text="Fine-tuning trains on every token, the prompt's and the padding's too.",
        **{"class": "sft-mask", "variants": ["ignore-dropped"]},
    ),
    dict(
        kind="crashes",
        text="Building a fine-tuning batch fails with an indexing error: the loss mask has the wrong shape.",
        **{"class": "sft-mask", "variants": ["cut-one-less", "cut-one-more"]},
    ),
    dict(
        kind="silent",
        text="Fine-tuning trains the wrong tokens: the trained span is shifted against the answer.",
        **{"class": "sft-mask", "variants": ["*"]},
    ),
    # --- level 3: architecture and performance ---
    dict(
        kind="silent",
        text="The rotary tables differ from the standard ones: channel pairs rotate at the wrong frequencies,"
        " which hurts long sequences; cached and full forwards still agree.",
        **{"class": "rotary-exponent", "variants": ["*"]},
    ),
    dict(
        kind="raises",
        text="Cached decoding diverges from the full forward pass and get_pos() runs ahead of the tokens fed;"
        " generating with the engine can fail on one of its own cache checks.",
        **{"class": "kv-position-layer", "variants": ["every-layer"]},
    ),
    dict(
        kind="raises",
        text="Cached decoding diverges from the full forward pass and get_pos() stays at 0 whatever is fed;"
        " the engine's tool handling can fail with an indexing error.",
        **{"class": "kv-position-layer", "variants": ["past-last"]},
    ),
    dict(
        kind="silent",
        text="Cached decoding diverges from the full forward pass, although get_pos() counts the tokens fed.",
        **{"class": "kv-position-layer", "variants": ["*"]},
    ),
    dict(
        kind="crashes",
        text="Every forward pass of a model with fewer key/value heads than query heads fails with a shape error.",
        **{"class": "gqa-predicate", "variants": ["flag-inverted"]},
    ),
    dict(
        kind="crashes",
        text="A full-sequence forward pass of a model with fewer key/value heads than query heads fails with a"
        " shape error.",
        **{"class": "gqa-predicate", "variants": ["keyword-negated"], "site": "is_causal=True"},
    ),
    dict(
        kind="crashes",
        text="Decoding one token at a time with the cache fails with a shape error when key/value heads are"
        " fewer than query heads.",
        **{"class": "gqa-predicate", "variants": ["keyword-negated"], "site": "is_causal=False"},
    ),
    dict(
        kind="crashes",
        text="Feeding a chunk after a cached prefix fails with a shape error when key/value heads are fewer"
        " than query heads.",
        **{"class": "gqa-predicate", "variants": ["keyword-negated"], "site": "attn_mask="},
    ),
    dict(
        kind="hidden",
        text="With a sliding attention window, query heads read the wrong key/value heads.",
        **{"class": "gqa-predicate", "variants": ["group-size-inverted"], "functions": ["sliding_window_attention"]},
    ),
    dict(
        kind="silent",
        text="Models whose key/value heads are fewer than their query heads attend wrongly.",
        **{"class": "gqa-predicate", "variants": ["*"]},
    ),
    dict(
        kind="crashes",
        text="Every forward pass of a model without a sliding attention window fails with a type error.",
        **{"class": "attention-mask", "variants": ["branch-inverted"], "site": "window_size is not None"},
    ),
    dict(
        kind="silent",
        text="A full forward pass lets positions see later tokens: its logits change when a later token changes.",
        **{"class": "attention-mask", "variants": ["is-causal-flipped"], "site": "is_causal=True"},
    ),
    dict(
        kind="silent",
        text="Decoding one token at a time with the cache diverges from the full forward pass.",
        **{"class": "attention-mask", "variants": ["is-causal-flipped"], "site": "is_causal=False"},
    ),
    dict(
        kind="silent",
        text="A chunk fed after a cached prefix disagrees with the full forward pass: its tokens see the wrong keys.",
        **{"class": "attention-mask", "variants": ["diagonal-*"]},
    ),
    dict(
        kind="hidden",  # no visible test or probe sees it
        text="With a sliding window, each position attends to exactly the keys it should not see.",
        **{"class": "attention-mask", "variants": ["fill-inverted"], "site": "masked_fill(~visible"},
    ),
    dict(
        kind="silent",
        text="Cached or chunked decoding disagrees with the full forward pass: queries see the wrong keys.",
        **{"class": "attention-mask", "variants": ["*"]},
    ),
    dict(
        kind="silent",
        text="After reset() the cache still reports its old position: the next generation continues where the"
        " last one stopped.",
        **{"class": "kv-reset-growth", "variants": ["drop-pos"]},
    ),
    dict(
        kind="silent",
        text="reset() keeps the old storage: memory is not released between generations, though the position"
        " goes back to 0.",
        **{"class": "kv-reset-growth", "variants": ["drop-kv_cache"]},
    ),
    dict(
        kind="silent",
        text="When the cache must grow it allocates far more positions than it needs.",
        **{"class": "kv-reset-growth", "variants": ["*-doubled"]},
    ),
    dict(
        kind="silent",
        text="When the cache must grow it allocates somewhat fewer positions than planned, at sizes that vary"
        " with the length fed.",
        **{"class": "kv-reset-growth", "variants": ["rounding-dropped"]},
    ),
    dict(
        kind="silent",
        text="The cache holds on to memory or state after a reset, or allocates the wrong amount when it grows.",
        **{"class": "kv-reset-growth", "variants": ["*"]},
    ),
    dict(
        kind="silent",
        text="The engine does not run the calculator on the model's tool calls.",
        **{"class": "tool-token-order", "variants": ["python-swapped"], "functions": ["Engine.*"]},
    ),
    dict(
        kind="silent",
        text="Calculator results come out of the engine between output markers in the wrong order.",
        **{"class": "tool-token-order", "variants": ["output-swapped"], "functions": ["Engine.*"]},
    ),
    dict(
        kind="silent",
        text="In rendered conversations, the special tokens around some turns or tool blocks come in the wrong"
        " order.",
        **{"class": "tool-token-order", "variants": ["*"], "functions": ["*render_conversation"]},
    ),
    dict(
        kind="silent",
        text="Calculator results appear at the wrong positions: special tokens come in the wrong order.",
        **{"class": "tool-token-order", "variants": ["*"]},
    ),
]
