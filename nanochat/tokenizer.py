"""BPE tokenizer: trained with rustbpe, encoded with tiktoken, plus nanochat's chat format.

A conversation renders to one token sequence with a parallel mask: 1 where the assistant's own tokens
are (what fine-tuning trains on), 0 elsewhere (prompts, and tool outputs the assistant did not write).
"""

import base64
import copy
import json
import os

import rustbpe
import tiktoken

SPECIAL_TOKENS = [
    "<|bos|>",  # begins every document
    "<|user_start|>",
    "<|user_end|>",
    "<|assistant_start|>",
    "<|assistant_end|>",
    "<|python_start|>",  # the assistant calls the calculator tool ...
    "<|python_end|>",
    "<|output_start|>",  # ... and the tool's answer is forced back into the stream
    "<|output_end|>",
]

# GPT-4's split pattern, except that numbers split into groups of at most two digits (not three):
# small vocabularies waste fewer tokens on number fragments.
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)

TOKENIZER_FILE = "tokenizer.json"


class RustBPETokenizer:
    """A tiktoken Encoding whose merges were learned by rustbpe, with the special tokens appended."""

    def __init__(self, enc: tiktoken.Encoding, bos_token: str = "<|bos|>"):
        self.enc = enc
        self.bos_token_id = self.encode_special(bos_token)

    @classmethod
    def train_from_iterator(cls, text_iterator, vocab_size):
        """Learn merges from an iterator of strings; vocab_size counts the special tokens too."""
        merges_budget = vocab_size - len(SPECIAL_TOKENS)
        assert merges_budget >= 256, f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)}"
        trainer = rustbpe.Tokenizer()
        trainer.train_from_iterator(text_iterator, merges_budget, pattern=SPLIT_PATTERN)
        ranks = {bytes(token): rank for token, rank in trainer.get_mergeable_ranks()}
        return cls(cls._encoding(trainer.get_pattern(), ranks))

    @staticmethod
    def _encoding(pattern, mergeable_ranks):
        # Special tokens take the ids right after the learned vocabulary. Training may stop early
        # (a tiny corpus runs out of pairs to merge), so that is not always vocab_size - 9.
        first_special = len(mergeable_ranks)
        special = {name: first_special + i for i, name in enumerate(SPECIAL_TOKENS)}
        return tiktoken.Encoding(
            name="rustbpe", pat_str=pattern, mergeable_ranks=mergeable_ranks, special_tokens=special
        )

    def save(self, tokenizer_dir):
        """Write the pattern and merges as JSON (plain data: loading it runs no code)."""
        os.makedirs(tokenizer_dir, exist_ok=True)
        ranks = self.enc._mergeable_ranks
        data = {
            "pattern": self.enc._pat_str,
            "mergeable_ranks": [[base64.b64encode(token).decode("ascii"), rank] for token, rank in ranks.items()],
        }
        with open(os.path.join(tokenizer_dir, TOKENIZER_FILE), "w", encoding="utf-8") as f:
            json.dump(data, f)

    @classmethod
    def from_directory(cls, tokenizer_dir):
        with open(os.path.join(tokenizer_dir, TOKENIZER_FILE), encoding="utf-8") as f:
            data = json.load(f)
        ranks = {base64.b64decode(token): rank for token, rank in data["mergeable_ranks"]}
        return cls(cls._encoding(data["pattern"], ranks))

    # --- vocabulary ---

    def get_vocab_size(self):
        return self.enc.n_vocab

    def get_special_tokens(self):
        return self.enc.special_tokens_set

    def get_bos_token_id(self):
        return self.bos_token_id

    def encode_special(self, text):
        return self.enc.encode_single_token(text)

    def id_to_token(self, token_id):
        return self.enc.decode([token_id])

    # --- encoding ---

    def _special_or_id(self, token):
        return token if isinstance(token, int) else self.encode_special(token)

    def encode(self, text, prepend=None, append=None, num_threads=8):
        """Token ids of a string, or a list of id lists for a list of strings.

        Special-token text inside `text` is encoded as ordinary text; prepend/append (a special token's
        name or an id) are added to each sequence.
        """
        before = [] if prepend is None else [self._special_or_id(prepend)]
        after = [] if append is None else [self._special_or_id(append)]
        if isinstance(text, str):
            return before + self.enc.encode_ordinary(text) + after
        if isinstance(text, list):
            return [before + ids + after for ids in self.enc.encode_ordinary_batch(text, num_threads=num_threads)]
        raise ValueError(f"encode takes a string or a list of strings, not {type(text).__name__}")

    def __call__(self, *args, **kwargs):
        return self.encode(*args, **kwargs)

    def decode(self, ids):
        return self.enc.decode(ids)

    # --- chat format ---

    def render_conversation(self, conversation, max_tokens=2048):
        """Tokenize a chat: returns (ids, mask), mask 1 on tokens the assistant is trained to produce.

        conversation = {"messages": [{"role": "user"|"assistant"|"system", "content": ...}, ...]}.
        A leading system message is merged into the first user message. An assistant's content is a
        string or a list of parts {"type": "text"|"python"|"python_output", "text": ...}.
        """
        ids, mask = [], []

        def emit(tokens, trained):
            tokens = [tokens] if isinstance(tokens, int) else tokens
            ids.extend(tokens)
            mask.extend([trained] * len(tokens))

        messages = conversation["messages"]
        if messages and messages[0]["role"] == "system":
            assert len(messages) > 1 and messages[1]["role"] == "user", "a system message must precede a user"
            messages = copy.deepcopy(messages)
            messages[1]["content"] = messages[0]["content"] + "\n\n" + messages[1]["content"]
            messages = messages[1:]
        assert len(messages) >= 1, "a conversation needs at least one message"

        special = self.encode_special
        emit(self.get_bos_token_id(), 0)
        for i, message in enumerate(messages):
            expected_role = "user" if i % 2 == 0 else "assistant"
            role, content = message["role"], message["content"]
            assert role == expected_role, f"message {i} is from {role}, expected {expected_role}"
            if role == "user":
                assert isinstance(content, str), "user content must be a string"
                emit(special("<|user_start|>"), 0)
                emit(self.encode(content), 0)
                emit(special("<|user_end|>"), 0)
                continue
            emit(special("<|assistant_start|>"), 0)
            if isinstance(content, str):
                emit(self.encode(content), 1)
            elif isinstance(content, list):
                for part in content:
                    text_ids = self.encode(part["text"])
                    if part["type"] == "text":
                        emit(text_ids, 1)
                    elif part["type"] == "python":
                        # the assistant writes the tool call: trained
                        emit(special("<|python_start|>"), 1)
                        emit(text_ids, 1)
                        emit(special("<|python_end|>"), 1)
                    elif part["type"] == "python_output":
                        # the tool writes its output at inference time: not trained
                        emit(special("<|output_start|>"), 0)
                        emit(text_ids, 0)
                        emit(special("<|output_end|>"), 0)
                    else:
                        raise ValueError(f"unknown content part type: {part['type']!r}")
            else:
                raise ValueError(f"assistant content must be a string or a list, not {type(content).__name__}")
            emit(special("<|assistant_end|>"), 1)

        return ids[:max_tokens], mask[:max_tokens]

    def render_for_completion(self, conversation):
        """Prompt ids for the model to write the last assistant turn: that turn is dropped and
        <|assistant_start|> appended."""
        messages = copy.deepcopy(conversation["messages"])
        assert messages and messages[-1]["role"] == "assistant", "the last message must be the assistant's"
        ids, _ = self.render_conversation({"messages": messages[:-1]})
        return ids + [self.encode_special("<|assistant_start|>")]

    def visualize_tokenization(self, ids, mask, with_token_id=False):
        """A terminal string of the tokens, green where mask is 1 and red where it is 0."""
        colors = {1: "\033[92m", 0: "\033[91m"}
        reset = "\033[0m"
        pieces = []
        for token_id, trained in zip(ids, mask, strict=True):
            text = self.decode([token_id])
            label = f"{text}({token_id})" if with_token_id else text
            pieces.append(f"{colors.get(trained, '')}{label}{reset}")
        return "|".join(pieces)


def get_tokenizer():
    """The tokenizer saved under the base directory."""
    from nanochat.common import get_base_dir

    return RustBPETokenizer.from_directory(os.path.join(get_base_dir(), "tokenizer"))
