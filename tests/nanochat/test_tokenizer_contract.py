"""The tokenizer's smaller promises: saving and loading anywhere, the call form, chat-format edge cases,
the base directory, and (this project's own) error messages and visualisation.

Written against generic (mutmut) mutants that survived the main tokenizer and chat-format tests.
"""

import copy
import os

import pytest

from nanochat.common import get_base_dir
from nanochat.tokenizer import RustBPETokenizer

SYSTEM, USER, REPLY = (
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
)


def test_save_twice_into_the_same_directory(tokenizer, tmp_path):
    tokenizer.save(str(tmp_path / "tok"))
    tokenizer.save(str(tmp_path / "tok"))  # an existing directory is fine
    assert RustBPETokenizer.from_directory(str(tmp_path / "tok")).encode("Hi there") == tokenizer.encode("Hi there")


def test_from_directory_reads_that_directory_not_the_working_one(tokenizer, tmp_path, monkeypatch):
    tokenizer.save(str(tmp_path / "tok"))
    other = RustBPETokenizer.train_from_iterator(iter(["zzz yyy"] * 50), vocab_size=270)
    other.save(str(tmp_path / "cwd"))  # a different tokenizer where the working directory is
    monkeypatch.chdir(tmp_path / "cwd")
    loaded = RustBPETokenizer.from_directory(str(tmp_path / "tok"))
    assert loaded.get_vocab_size() == tokenizer.get_vocab_size() != other.get_vocab_size()


def test_calling_the_tokenizer_takes_encode_keywords(tokenizer):
    bos, end = tokenizer.get_bos_token_id(), tokenizer.encode_special("<|assistant_end|>")
    assert tokenizer("Hi", prepend="<|bos|>", append=end) == [bos] + tokenizer.encode("Hi") + [end]


def test_render_conversation_truncates_to_2048_tokens_by_default(tokenizer):
    long_text = "The quick brown fox jumps over the lazy dog. " * 300
    ids, mask = tokenizer.render_conversation({"messages": [{"role": "user", "content": long_text}, REPLY]})
    full, _ = tokenizer.render_conversation({"messages": [{"role": "user", "content": long_text}, REPLY]}, 10**6)
    assert len(full) > 2048
    assert ids == full[:2048] and len(mask) == 2048


def test_a_system_message_with_one_user_message_renders(tokenizer):
    ids, mask = tokenizer.render_conversation({"messages": [SYSTEM, USER]})
    s = tokenizer.encode_special
    body = tokenizer.encode("Be brief.\n\nHi")
    assert ids == [tokenizer.get_bos_token_id(), s("<|user_start|>"), *body, s("<|user_end|>")]
    assert mask == [0] * len(ids)


def test_render_for_completion_of_a_system_prompt_and_one_turn(tokenizer):
    ids = tokenizer.render_for_completion({"messages": [SYSTEM, USER, REPLY]})
    expected, _ = tokenizer.render_conversation({"messages": [SYSTEM, USER]})
    assert ids == expected + [tokenizer.encode_special("<|assistant_start|>")]


def test_render_for_completion_keeps_every_earlier_turn(tokenizer):
    turns = [USER, REPLY, {"role": "user", "content": "And then?"}, {"role": "assistant", "content": "The end."}]
    ids = tokenizer.render_for_completion({"messages": turns})
    expected, _ = tokenizer.render_conversation({"messages": turns[:3]})
    assert ids == expected + [tokenizer.encode_special("<|assistant_start|>")]


def test_render_for_completion_refuses_a_conversation_that_ends_with_the_user(tokenizer):
    with pytest.raises(AssertionError):
        tokenizer.render_for_completion({"messages": [USER, REPLY, copy.deepcopy(USER)]})


def test_get_base_dir_defaults_to_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("NANOCHAT_BASE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = os.path.join(str(tmp_path), ".cache", "nanochat")
    assert get_base_dir() == expected
    assert os.path.isdir(expected)


# --- this project's own messages and layout -------------------------------------------------------


@pytest.mark.project_extras
@pytest.mark.parametrize(
    "messages, error, message",
    [
        pytest.param([SYSTEM], AssertionError, "a system message must precede a user", id="system-alone"),
        pytest.param([SYSTEM, REPLY], AssertionError, "a system message must precede a user", id="system-assistant"),
        pytest.param([], AssertionError, "a conversation needs at least one message", id="empty"),
        pytest.param(
            [{"role": "user", "content": ["x"]}], AssertionError, "user content must be a string", id="user-list"
        ),
        pytest.param(
            [USER, {"role": "assistant", "content": [{"type": "image", "text": "x"}]}],
            ValueError,
            "unknown content part type: 'image'",
            id="part-type",
        ),
        pytest.param(
            [USER, {"role": "assistant", "content": 7}],
            ValueError,
            "assistant content must be a string or a list, not int",
            id="assistant-int",
        ),
    ],
)
def test_render_conversation_errors_say_what_is_wrong(tokenizer, messages, error, message):
    with pytest.raises(error) as raised:
        tokenizer.render_conversation({"messages": messages})
    assert str(raised.value) == message


@pytest.mark.project_extras
def test_render_for_completion_error_says_what_is_wrong(tokenizer):
    for messages in ([], [USER]):
        with pytest.raises(AssertionError) as raised:
            tokenizer.render_for_completion({"messages": messages})
        assert str(raised.value) == "the last message must be the assistant's"


@pytest.mark.project_extras
def test_visualize_tokenization_needs_a_mask_bit_per_token_and_colours_only_0_and_1(tokenizer):
    ids = tokenizer.encode("Hi there")
    with pytest.raises(ValueError):
        tokenizer.visualize_tokenization(ids, [1] * (len(ids) - 1))
    text = tokenizer.decode(ids[:1])
    assert tokenizer.visualize_tokenization(ids[:1], [2]) == f"{text}\033[0m"  # no colour for other values


@pytest.mark.project_extras  # autodetect_device_type is this project's helper
@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")],
    ids=["cuda", "mps", "cpu"],
)
def test_autodetect_device_type_prefers_cuda_then_mps(monkeypatch, cuda, mps, expected):
    import torch

    from nanochat.common import autodetect_device_type

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert autodetect_device_type() == expected


def test_the_smallest_vocabulary_holds_every_byte_and_the_specials():
    smallest = 256 + 9
    assert RustBPETokenizer.train_from_iterator(iter(["ab ab"] * 5), smallest).get_vocab_size() == smallest


@pytest.mark.project_extras
def test_too_small_a_vocabulary_and_a_wrong_input_say_so(tokenizer):
    with pytest.raises(AssertionError) as raised:
        RustBPETokenizer.train_from_iterator(iter(["ab ab"] * 5), 256 + 8)
    assert str(raised.value) == "vocab_size must be at least 265"
    with pytest.raises(ValueError) as raised:
        tokenizer.encode(42)
    assert str(raised.value) == "encode takes a string or a list of strings, not int"
