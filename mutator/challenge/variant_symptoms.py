"""What each variant of each class does, as a user would report it, and its kind (see symptoms).

Entries are tried in order; the first whose class, variant globs and (optional) function globs and site
(text of a clean line the mutant changes) match a mutant describes it. Kinds were measured (each mutant alone against the visible tests and the probes)
and validation checks them again for every drawn bug. Texts say what goes wrong and in which quantity,
never where the code is or what its correct form would be. Variants that no visible test detects are
never drawn; their entries keep the table complete.
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
        kind="silent",
        text="Token ids above 32767 come out changed once they pass through generation.",
        **{"class": "token-dtype", "variants": ["to-int16"], "functions": ["*generate"]},
    ),
    dict(
        kind="silent",
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
        kind="silent",
        text="Fine-tuning batches pair inputs with the wrong targets.",
        **{"class": "target-shift", "variants": ["*"]},
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
]
