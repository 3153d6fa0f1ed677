"""RustBPETokenizer: merges learned by rustbpe, encoding by tiktoken, and the chat format."""

import json
from pathlib import Path

import rustbpe
import tiktoken

SPECIALS = (
    "<|bos|>",
    "<|user_start|>",
    "<|user_end|>",
    "<|assistant_start|>",
    "<|assistant_end|>",
    "<|python_start|>",
    "<|python_end|>",
    "<|output_start|>",
    "<|output_end|>",
)
# words, then numbers of one or two digits, then runs of punctuation, then whitespace
PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}"""
    r"""| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""
)
SAVED_AS = "bpe.json"


class RustBPETokenizer:
    def __init__(self, pattern, ranks):
        self.pattern, self.ranks = pattern, ranks
        specials = {name: len(ranks) + i for i, name in enumerate(SPECIALS)}
        self.enc = tiktoken.Encoding("othernanochat", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)

    @classmethod
    def train_from_iterator(cls, text_iterator, vocab_size):
        """vocab_size includes the special tokens; a corpus may run out of merges before it is reached."""
        trainer = rustbpe.Tokenizer()
        trainer.train_from_iterator(text_iterator, vocab_size - len(SPECIALS), pattern=PATTERN)
        return cls(trainer.get_pattern(), {bytes(piece): rank for piece, rank in trainer.get_mergeable_ranks()})

    def save(self, tokenizer_dir):
        folder = Path(tokenizer_dir)
        folder.mkdir(parents=True, exist_ok=True)
        by_rank = sorted(self.ranks.items(), key=lambda item: item[1])
        data = {"pattern": self.pattern, "pieces_hex": [piece.hex() for piece, _ in by_rank]}
        (folder / SAVED_AS).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def from_directory(cls, tokenizer_dir):
        data = json.loads((Path(tokenizer_dir) / SAVED_AS).read_text(encoding="utf-8"))
        return cls(data["pattern"], {bytes.fromhex(piece): rank for rank, piece in enumerate(data["pieces_hex"])})

    def get_vocab_size(self):
        return self.enc.n_vocab

    def get_special_tokens(self):
        return set(SPECIALS)

    def get_bos_token_id(self):
        return self.encode_special("<|bos|>")

    def encode_special(self, text):
        return self.enc.encode_single_token(text)

    def id_to_token(self, token_id):
        return self.enc.decode([token_id])

    def encode(self, text, prepend=None, append=None, num_threads=4):
        """Ids of a string (a list of id lists for a list of strings); special-token text is ordinary text."""
        head = [] if prepend is None else [prepend if isinstance(prepend, int) else self.encode_special(prepend)]
        tail = [] if append is None else [append if isinstance(append, int) else self.encode_special(append)]
        if isinstance(text, str):
            return [*head, *self.enc.encode_ordinary(text), *tail]
        if isinstance(text, list):
            return [[*head, *ids, *tail] for ids in self.enc.encode_ordinary_batch(text, num_threads=num_threads)]
        raise ValueError(f"cannot encode {type(text).__name__}")

    __call__ = encode

    def decode(self, ids):
        return self.enc.decode(ids)

    def render_conversation(self, conversation, max_tokens=2048):
        """(ids, mask) of a chat; mask is 1 on what the assistant writes itself."""
        messages = list(conversation["messages"])
        if messages and messages[0]["role"] == "system":
            if len(messages) < 2 or messages[1]["role"] != "user":
                raise AssertionError("a system message goes before a user message")
            merged = dict(messages[1], content=messages[0]["content"] + "\n\n" + messages[1]["content"])
            messages = [merged, *messages[2:]]
        if not messages:
            raise AssertionError("empty conversation")

        tok = self.encode_special
        pieces = [([self.get_bos_token_id()], 0)]
        for turn, message in enumerate(messages):
            wanted = ("user", "assistant")[turn % 2]
            if message["role"] != wanted:
                raise AssertionError(f"turn {turn} should be {wanted}, is {message['role']}")
            content = message["content"]
            if wanted == "user":
                if not isinstance(content, str):
                    raise AssertionError("a user turn is a string")
                pieces += [([tok("<|user_start|>")], 0), (self.encode(content), 0), ([tok("<|user_end|>")], 0)]
                continue
            pieces.append(([tok("<|assistant_start|>")], 0))
            if isinstance(content, str):
                pieces.append((self.encode(content), 1))
            elif isinstance(content, list):
                for part in content:
                    pieces += self._assistant_part(part)
            else:
                raise ValueError("assistant content is a string or a list of parts")
            pieces.append(([tok("<|assistant_end|>")], 1))

        ids = [i for tokens, _ in pieces for i in tokens]
        mask = [m for tokens, m in pieces for _ in tokens]
        return ids[:max_tokens], mask[:max_tokens]

    def _assistant_part(self, part):
        tok, body = self.encode_special, self.encode(part["text"])
        if part["type"] == "text":
            return [(body, 1)]
        if part["type"] == "python":
            return [([tok("<|python_start|>")], 1), (body, 1), ([tok("<|python_end|>")], 1)]
        if part["type"] == "python_output":
            return [([tok("<|output_start|>")], 0), (body, 0), ([tok("<|output_end|>")], 0)]
        raise ValueError(f"unknown part type {part['type']!r}")

    def render_for_completion(self, conversation):
        """The chat without its final assistant turn, then <|assistant_start|>: the prompt for that turn."""
        messages = conversation["messages"]
        if not messages or messages[-1]["role"] != "assistant":
            raise AssertionError("the conversation must end with the assistant")
        ids, _ = self.render_conversation({"messages": messages[:-1]})
        return [*ids, self.encode_special("<|assistant_start|>")]

    def visualize_tokenization(self, ids, mask, with_token_id=False):
        """Tokens joined by spaces, trained ones in [brackets] (plain text: no terminal colours)."""
        shown = []
        for token_id, trained in zip(ids, mask, strict=True):
            text = self.decode([token_id]) + (f"#{token_id}" if with_token_id else "")
            shown.append(f"[{text}]" if trained else text)
        return " ".join(shown)


def get_tokenizer():
    from nanochat.common import get_base_dir

    return RustBPETokenizer.from_directory(Path(get_base_dir()) / "tokenizer")
