"""Tokenizers for text tasks: characters, words, or subwords (sentencepiece trained on the train split).

Every tokenizer keeps its vocabulary in ``state()`` so it can be rebuilt from a checkpoint with ``from_state``.
Ids 0-3 are the specials: padding, unknown, begin and end of sequence.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from typing import Any, Iterable

import torch

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
TOKENIZERS = ("char", "word", "subword")


def pad(sequences: list[list[int]]) -> torch.Tensor:
    """Right-pad id lists into one (batch, longest) tensor of ids."""
    longest = max(len(s) for s in sequences)
    return torch.tensor([s + [PAD] * (longest - len(s)) for s in sequences], dtype=torch.long)


class Tokenizer:
    """Text ↔ ids over a fixed vocabulary; subclasses split text into pieces and join pieces back."""

    kind = ""

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = vocab
        self.index = {piece: i for i, piece in enumerate(vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def join(self, pieces: list[str]) -> str:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Text → ids (no BOS/EOS); pieces outside the vocabulary become UNK."""
        return [self.index.get(piece, UNK) for piece in self.split(text)]

    def unknown(self, text: str) -> list[str]:
        """The pieces of ``text`` that are not in the vocabulary."""
        return [piece for piece in self.split(text) if piece not in self.index]

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """Ids → pieces, stopping at EOS and dropping padding and BOS."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.vocab[i])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Ids → text, stopping at EOS."""
        return self.join(self.pieces(ids))

    def state(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab}

    @staticmethod
    def from_state(state: dict) -> Tokenizer:
        cls: Any = {"char": CharTokenizer, "word": WordTokenizer, "space": SpaceTokenizer, "subword": SubwordTokenizer}[
            state["kind"]
        ]
        return cls.restore(state)

    @classmethod
    def restore(cls, state: dict) -> Tokenizer:
        return cls(state["vocab"])


def counted_vocab(pieces: Iterable[str], min_freq: int, max_size: int) -> list[str]:
    """Specials, then pieces seen at least ``min_freq`` times, most frequent first (ties alphabetical)."""
    counts = Counter(pieces)
    kept = sorted((p for p, c in counts.items() if c >= min_freq), key=lambda p: (-counts[p], p))
    return SPECIALS + kept[: max(max_size - len(SPECIALS), 0)]


class CharTokenizer(Tokenizer):
    """One piece per character."""

    kind = "char"

    def split(self, text: str) -> list[str]:
        return list(text)

    def join(self, pieces: list[str]) -> str:
        return "".join(pieces)


class WordTokenizer(Tokenizer):
    """Words and punctuation marks; joined back with single spaces."""

    kind = "word"
    pattern = re.compile(r"\w+|[^\w\s]")

    def split(self, text: str) -> list[str]:
        return self.pattern.findall(text)

    def join(self, pieces: list[str]) -> str:
        return " ".join(pieces)


class SpaceTokenizer(Tokenizer):
    """Pieces separated by whitespace, for text that is already tokenized (e.g. LaTeX markup ``\\frac { a } { 2 }``);
    joined back with single spaces."""

    kind = "space"

    def split(self, text: str) -> list[str]:
        return text.split()

    def join(self, pieces: list[str]) -> str:
        return " ".join(pieces)


class SubwordTokenizer(Tokenizer):
    """Sentencepiece (unigram) pieces; the trained model travels in ``state()``."""

    kind = "subword"

    def __init__(self, model: bytes) -> None:
        import sentencepiece as spm

        self.model = model
        self.processor = spm.SentencePieceProcessor(model_proto=model)
        super().__init__([self.processor.id_to_piece(i) for i in range(self.processor.get_piece_size())])

    def split(self, text: str) -> list[str]:
        return self.processor.encode(text, out_type=str)

    def join(self, pieces: list[str]) -> str:
        return self.processor.decode_pieces(pieces)

    def encode(self, text: str) -> list[int]:
        return self.processor.encode(text)

    def state(self) -> dict:
        return {"kind": self.kind, "model": self.model}

    @classmethod
    def restore(cls, state: dict) -> SubwordTokenizer:
        return cls(state["model"])


def fit_tokenizer(kind: str, texts: Iterable[str], vocab_size: int = 8000, min_freq: int = 1) -> Tokenizer:
    """A tokenizer of ``kind`` (char, word, space or subword) with its vocabulary taken from ``texts`` (read once: a
    stream will do)."""
    if kind == "char":
        return CharTokenizer(counted_vocab((c for t in texts for c in t), min_freq, vocab_size))
    if kind == "space":
        return SpaceTokenizer(counted_vocab((w for t in texts for w in t.split()), min_freq, vocab_size))
    if kind == "word":
        return WordTokenizer(
            counted_vocab((w for t in texts for w in WordTokenizer.pattern.findall(t)), min_freq, vocab_size)
        )
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=PAD,
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        hard_vocab_limit=False,
        character_coverage=1.0,
        input_sentence_size=1_000_000,  # a larger corpus: a random million, so memory stays bounded
        shuffle_input_sentence=True,
        minloglevel=2,
    )
    return SubwordTokenizer(model.getvalue())
