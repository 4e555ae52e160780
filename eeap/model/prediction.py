"""What a trained model's ``predict_lines`` takes and gives, for every task: the decoding options, the problems of
particular input lines, and numbers rounded for JSON records. Model side: the ``predict`` command
(``eeap.serving.inference``) and the tasks both use it; it imports nothing of EEAP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass
class DecodeOptions:
    """How ``eeap predict`` decodes and what it reports.

    beam_size: None for the model's own (``model.beam_size``); n_best: hypotheses (or classes) reported per input;
    length_penalty: GNMT's α, None for the model's; coverage: GNMT's coverage penalty β (0: none); batch_size: inputs
    per batch; attention: records carry the attention weights; maps: a volume segmentation model also writes each
    class's probability and each gate's coefficients as volumes; progress: called after each decoding step of a
    sequence model with each input's best output so far (its text), for a page that shows the output as it decodes.
    """

    beam_size: Optional[int] = None
    n_best: int = 1
    length_penalty: Optional[float] = None
    coverage: float = 0.0
    batch_size: int = 64
    attention: bool = False
    maps: bool = False
    progress: Optional[Callable[[list[str]], None]] = None

    def search(self) -> dict[str, Any]:
        """The keyword arguments of ``Seq2Seq.decode`` besides the beam size."""
        return {"n_best": self.n_best, "length_penalty": self.length_penalty, "coverage": self.coverage}


def rounded(values: Any, places: int = 4) -> Any:
    """Nested lists of floats rounded to ``places`` (for JSON: float32 values print with noise digits otherwise)."""
    if isinstance(values, list):
        return [rounded(v, places) for v in values]
    return round(values, places)


class Problems:
    """What went wrong with which input lines: messages for the user, and how many lines were skipped."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.skipped = 0

    def skip(self, message: str) -> None:
        self.messages.append(message)
        self.skipped += 1

    def warn(self, message: str) -> None:
        self.messages.append(message)
