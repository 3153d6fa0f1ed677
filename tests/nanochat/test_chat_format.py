"""render_conversation / render_for_completion: the exact token sequence and training mask of a chat.

The expected sequences are spelled out piece by piece, so swapping any *_start/*_end pair, moving a
tool block, or training on the wrong tokens changes an id or a mask bit.
"""

import copy

import pytest

CONVERSATION = {
    "messages": [
        {"role": "system", "content": "Be brief."},
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
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": "You're welcome."},
    ]
}


def expected_rendering(tokenizer):
    s, enc = tokenizer.encode_special, tokenizer.encode
    pieces = [
        ([tokenizer.get_bos_token_id()], 0),
        ([s("<|user_start|>")], 0),
        (enc("Be brief.\n\nWhat is 5+3?"), 0),  # the system message joins the first user message
        ([s("<|user_end|>")], 0),
        ([s("<|assistant_start|>")], 0),
        (enc("Let me calculate: "), 1),
        ([s("<|python_start|>")], 1),  # the assistant writes the tool call: trained
        (enc("5+3"), 1),
        ([s("<|python_end|>")], 1),
        ([s("<|output_start|>")], 0),  # the tool's output is forced at inference: not trained
        (enc("8"), 0),
        ([s("<|output_end|>")], 0),
        (enc(" The answer is 8."), 1),
        ([s("<|assistant_end|>")], 1),
        ([s("<|user_start|>")], 0),
        (enc("Thanks"), 0),
        ([s("<|user_end|>")], 0),
        ([s("<|assistant_start|>")], 0),
        (enc("You're welcome."), 1),
        ([s("<|assistant_end|>")], 1),
    ]
    ids = [i for tokens, _ in pieces for i in tokens]
    mask = [m for tokens, m in pieces for _ in tokens]
    return ids, mask


def test_render_conversation_exact_ids_and_mask(tokenizer):
    conversation = copy.deepcopy(CONVERSATION)
    ids, mask = tokenizer.render_conversation(conversation)
    expected_ids, expected_mask = expected_rendering(tokenizer)
    assert ids == expected_ids
    assert mask == expected_mask
    assert conversation == CONVERSATION, "rendering must not modify the caller's conversation"


def test_render_conversation_truncates_to_max_tokens(tokenizer):
    expected_ids, expected_mask = expected_rendering(tokenizer)
    for max_tokens in (7, len(expected_ids) - 1):
        ids, mask = tokenizer.render_conversation(CONVERSATION, max_tokens=max_tokens)
        assert ids == expected_ids[:max_tokens]
        assert mask == expected_mask[:max_tokens]


def test_render_for_completion_drops_last_turn_and_opens_the_assistant(tokenizer):
    conversation = {"messages": CONVERSATION["messages"][1:3]}  # user, then assistant
    before = copy.deepcopy(conversation)
    ids = tokenizer.render_for_completion(conversation)
    s = tokenizer.encode_special
    expected = (
        [tokenizer.get_bos_token_id(), s("<|user_start|>")]
        + tokenizer.encode("What is 5+3?")
        + [s("<|user_end|>"), s("<|assistant_start|>")]
    )
    assert ids == expected
    assert conversation == before
    with pytest.raises(AssertionError):
        tokenizer.render_for_completion({"messages": conversation["messages"][:1]})  # ends with the user


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([{"role": "assistant", "content": "hi"}], id="assistant-first"),
        pytest.param([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], id="user-twice"),
        pytest.param(
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "assistant", "content": "c"},
            ],
            id="assistant-twice",
        ),
        pytest.param(
            [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}], id="system-then-assistant"
        ),
        pytest.param([{"role": "tool", "content": "x"}], id="unknown-role"),
    ],
)
def test_render_conversation_rejects_bad_roles(tokenizer, messages):
    with pytest.raises(AssertionError):
        tokenizer.render_conversation({"messages": messages})


def test_render_conversation_rejects_unknown_part_type(tokenizer):
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "image", "text": "x"}]}]
    with pytest.raises(ValueError):
        tokenizer.render_conversation({"messages": messages})
