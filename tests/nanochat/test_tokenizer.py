"""RustBPETokenizer: training, saving and loading, encoding, and the special-token layout."""

import os

import pytest

from nanochat.common import get_base_dir
from nanochat.tokenizer import RustBPETokenizer, get_tokenizer

SPECIAL_NAMES = [
    "<|bos|>",
    "<|user_start|>",
    "<|user_end|>",
    "<|assistant_start|>",
    "<|assistant_end|>",
    "<|python_start|>",
    "<|python_end|>",
    "<|output_start|>",
    "<|output_end|>",
]
SAMPLES = ["The quick brown fox.", "Hello wörld 🙂 12345!", "  spaces\tand\nnewlines  ", ""]


def test_save_and_from_directory_round_trip(tokenizer, tmp_path):
    tokenizer.save(str(tmp_path / "tok"))
    loaded = RustBPETokenizer.from_directory(str(tmp_path / "tok"))
    assert loaded.get_vocab_size() == tokenizer.get_vocab_size() == 300
    for text in SAMPLES:
        assert loaded.encode(text) == tokenizer.encode(text)
    assert [loaded.encode_special(n) for n in SPECIAL_NAMES] == [tokenizer.encode_special(n) for n in SPECIAL_NAMES]
    assert loaded.get_bos_token_id() == tokenizer.get_bos_token_id()


def test_training_learns_merges(tokenizer):
    # the corpus repeats this sentence: even 35 merges save a quarter of its bytes
    text = "The quick brown fox jumps over the lazy dog."
    assert len(tokenizer.encode(text)) < 0.75 * len(text.encode("utf-8"))


def test_encode_decode_strings(tokenizer):
    bos, end = tokenizer.get_bos_token_id(), tokenizer.encode_special("<|assistant_end|>")
    for text in SAMPLES:
        ids = tokenizer.encode(text)
        assert all(isinstance(i, int) for i in ids)
        assert tokenizer.decode(ids) == text
        assert tokenizer.encode(text, prepend="<|bos|>", append="<|assistant_end|>") == [bos] + ids + [end]
        assert tokenizer.encode(text, prepend=bos, append=end) == [bos] + ids + [end]  # ids work too
        assert tokenizer(text) == ids
    # special-token text inside ordinary text is just text
    ids = tokenizer.encode("<|bos|>")
    assert bos not in ids and tokenizer.decode(ids) == "<|bos|>"
    with pytest.raises(ValueError):
        tokenizer.encode(42)


def test_encode_prepends_and_appends_for_a_string(tokenizer):
    bos, end = tokenizer.get_bos_token_id(), tokenizer.encode_special("<|assistant_end|>")
    plain = tokenizer.encode("The quick brown fox.")
    assert tokenizer.encode("The quick brown fox.", prepend="<|bos|>") == [bos] + plain
    assert tokenizer.encode("The quick brown fox.", prepend=bos, append=end) == [bos] + plain + [end]


def test_encode_prepends_and_appends_for_every_row_of_a_batch(tokenizer):
    bos, end = tokenizer.get_bos_token_id(), tokenizer.encode_special("<|assistant_end|>")
    rows = tokenizer.encode(SAMPLES, prepend="<|bos|>", append="<|assistant_end|>")
    assert rows == [[bos] + tokenizer.encode(document) + [end] for document in SAMPLES]


def test_encode_batches(tokenizer):
    bos = tokenizer.get_bos_token_id()
    end = tokenizer.encode_special("<|user_end|>")
    assert tokenizer.encode(SAMPLES) == [tokenizer.encode(t) for t in SAMPLES]
    batch = tokenizer.encode(SAMPLES, prepend="<|bos|>", append="<|user_end|>")
    assert batch == [[bos] + tokenizer.encode(t) + [end] for t in SAMPLES]


def test_special_tokens_follow_the_learned_vocabulary(tokenizer):
    n = tokenizer.get_vocab_size()
    assert [tokenizer.encode_special(name) for name in SPECIAL_NAMES] == list(range(n - 9, n))
    assert tokenizer.get_special_tokens() == set(SPECIAL_NAMES)
    assert tokenizer.get_bos_token_id() == n - 9
    assert [tokenizer.id_to_token(i) for i in range(n - 9, n)] == SPECIAL_NAMES
    # no ordinary text encodes into the special range
    assert max(max(tokenizer.encode(t), default=0) for t in SAMPLES) < n - 9


def test_special_tokens_follow_a_vocabulary_that_stopped_early():
    # one repeated word runs out of pairs to merge long before vocab_size: the specials still come
    # right after the learned tokens, with no gap
    tok = RustBPETokenizer.train_from_iterator(iter(["test"] * 1000), vocab_size=512)
    n = tok.get_vocab_size()
    assert n < 512
    assert [tok.encode_special(name) for name in SPECIAL_NAMES] == list(range(n - 9, n))
    assert tok.decode(tok.encode("test tests")) == "test tests"


def test_numbers_split_into_at_most_two_digits():
    tok = RustBPETokenizer.train_from_iterator(iter(["1234567 12345 987654 "] * 200), vocab_size=300)
    pieces = [tok.decode([i]) for i in tok.encode("1234567")]
    assert "".join(pieces) == "1234567"
    assert max(len(p) for p in pieces) == 2, pieces


def test_get_tokenizer_reads_the_base_dir(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("NANOCHAT_BASE_DIR", str(tmp_path / "base"))
    assert get_base_dir() == str(tmp_path / "base")
    assert os.path.isdir(tmp_path / "base")
    tokenizer.save(os.path.join(get_base_dir(), "tokenizer"))
    assert get_tokenizer().encode(SAMPLES[1]) == tokenizer.encode(SAMPLES[1])


@pytest.mark.project_extras  # the API names visualize_tokenization; its colours and layout are this project's
def test_visualize_tokenization_colours_by_mask(tokenizer):
    ids = tokenizer.encode("Hi there")
    a, b = tokenizer.decode(ids[:1]), tokenizer.decode(ids[1:2])
    green, red, reset = "\033[92m", "\033[91m", "\033[0m"
    assert tokenizer.visualize_tokenization(ids[:2], [0, 1]) == f"{red}{a}{reset}|{green}{b}{reset}"
    shown = tokenizer.visualize_tokenization(ids[:1], [1], with_token_id=True)
    assert shown == f"{green}{a}({ids[0]}){reset}"
