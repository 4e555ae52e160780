"""What a translation model knows of its data: the two tokenizers and the length limits (no data module, no Lightning)."""

from __future__ import annotations

from dataclasses import dataclass

from eeap.data.info import DataInfo
from eeap.data.text import Tokenizer


@dataclass
class TranslationInfo(DataInfo):
    """What the model needs from the data: the two tokenizers and the length limits."""

    source: Tokenizer
    target: Tokenizer
    max_src_len: int
    max_tgt_len: int

    def state(self) -> dict:
        return {
            "source": self.source.state(),
            "target": self.target.state(),
            "max_src_len": self.max_src_len,
            "max_tgt_len": self.max_tgt_len,
        }

    @classmethod
    def from_state(cls, state: dict) -> TranslationInfo:
        return cls(
            Tokenizer.from_state(state["source"]),
            Tokenizer.from_state(state["target"]),
            state["max_src_len"],
            state["max_tgt_len"],
        )
