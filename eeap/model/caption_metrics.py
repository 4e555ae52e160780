"""Caption metrics as the COCO caption evaluation computes them: BLEU-1…4, METEOR, ROUGE-L, CIDEr-D and SPICE from
pycocoevalcap's own scorers, over every reference of an image, after the Stanford PTB tokenizer (lower case,
punctuation removed) — the numbers captioning papers report.

Java runs the PTB tokenizer, METEOR and SPICE (``apt-get install default-jre-headless``). Without Java, METEOR and
SPICE are left out (a warning names them) and the tokenizer is ``python_ptb_tokenize``, which splits as the PTB
tokenizer does on ordinary captions (``tests/test_caption_metrics.py`` checks it against the Java one); SPICE also
needs the Stanford CoreNLP 3.6.0 jars in pycocoevalcap's ``spice/lib`` folder, which pycocoevalcap downloads on first
use: offline, SPICE is left out with a line saying where they go.

One image is one example: ``update`` takes each example's key (the image's name), its output and all its references;
an image seen twice (a distributed sampler's padding) counts once. CIDEr-D's document frequencies are the evaluated
split's references, as in the COCO evaluation, so the whole split is scored at once in ``compute`` (gathered from
every process under DDP)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torchmetrics

# pycocoevalcap's names for what each score is logged as
SCORES = {
    "bleu_1": "Bleu_1",
    "bleu_2": "Bleu_2",
    "bleu_3": "Bleu_3",
    "bleu_4": "Bleu_4",
    "meteor": "METEOR",
    "rouge_l": "ROUGE_L",
    "cider": "CIDEr",
    "spice": "SPICE",
}
EVERY_VALIDATION = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider")  # quick: pure Python
SLOW = ("meteor", "spice")  # a Java process each (METEOR loads a 60 MB paraphrase table: ~8 s)
PUNCTUATIONS = {
    "''",
    "'",
    "``",
    "`",
    "-LRB-",
    "-RRB-",
    "-LCB-",
    "-RCB-",
    ".",
    "?",
    "!",
    ",",
    ":",
    "-",
    "--",
    "...",
    ";",
}


def java() -> bool:
    """Whether a Java runtime is on the PATH."""
    return shutil.which("java") is not None


def spice_jars() -> Path:
    """Where pycocoevalcap's SPICE looks for the Stanford CoreNLP 3.6.0 jars."""
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__))) / "spice" / "lib"


def spice_ready() -> bool:
    """Whether SPICE can run here: Java, and the CoreNLP jars that pycocoevalcap would otherwise download."""
    lib = spice_jars()
    return java() and all((lib / f"stanford-corenlp-3.6.0{s}.jar").is_file() for s in ("", "-models"))


def available(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The scores of ``names`` that can be computed here, and the lines saying why the others cannot."""
    kept, why = [], []
    for name in names:
        if name == "meteor" and not java():
            why.append("meteor: needs Java (apt-get install default-jre-headless); left out")
        elif name == "spice" and not spice_ready():
            why.append(
                "spice: needs Java and stanford-corenlp-3.6.0.jar with its -models.jar in "
                f"{spice_jars()} (pycocoevalcap downloads them on first use, this machine may be offline); left out"
            )
        else:
            kept.append(name)
    return kept, why


# the PTB tokenizer's splitting of ordinary English (Stanford's PTBTokenizer with -lowerCase), for a machine without
# Java: clitics split off (n't, 's, 're, ...), punctuation apart from words, brackets as -LRB- etc.
CLITICS = re.compile(r"(?i)(\w)(n't|'s|'re|'ve|'ll|'d|'m)\b")
PUNCTUATION = re.compile(r"(\.\.\.|--|[.,;:!?()\[\]{}\"`]|(?<!\w)'|'(?!\w))")
BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}


def python_ptb_tokenize(caption: str) -> str:
    """A caption as pycocoevalcap's PTB tokenization gives it, without Java: lower case, clitics and punctuation split
    off, then PTB's punctuation dropped."""
    text = PUNCTUATION.sub(r" \1 ", caption.replace("\n", " ").lower())
    text = CLITICS.sub(r"\1 \2", text)
    tokens = [BRACKETS.get(t, t) for t in text.split()]  # lower-cased, so not in PTB's list: kept, as Java keeps them
    tokens = ["''" if t == '"' else t for t in tokens]
    return " ".join(t for t in tokens if t not in PUNCTUATIONS)


def tokenize(captions: dict[Any, list[str]]) -> dict[Any, list[str]]:
    """{key: captions} after the PTB tokenizer (Java's where there is Java)."""
    if not java():
        return {key: [python_ptb_tokenize(c) for c in texts] for key, texts in captions.items()}
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with quiet_stderr():  # Java's "PTBTokenizer tokenized N tokens at ..." on every call
        return PTBTokenizer().tokenize({key: [{"caption": c} for c in texts] for key, texts in captions.items()})


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """The process's standard error (file descriptor 2, which child processes inherit) sent to /dev/null."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.lru_cache(maxsize=4)
def coco_scores(examples: tuple[tuple[str, str, tuple[str, ...]], ...], names: tuple[str, ...]) -> dict[str, float]:
    """The scores ``names`` of (key, output, references) examples, computed by pycocoevalcap's scorers as
    ``COCOEvalCap.evaluate`` does (one tokenizer call for the references and one for the outputs); cached, so the
    views of one evaluation (``CaptionScore``) compute it once."""
    import io

    references = tokenize({i: list(refs) for i, (_, _, refs) in enumerate(examples)})
    outputs = tokenize({i: [output] for i, (_, output, _) in enumerate(examples)})
    scores: dict[str, float] = {}
    with contextlib.redirect_stdout(io.StringIO()):  # the scorers print their progress
        if any(n.startswith("bleu_") for n in names):
            from pycocoevalcap.bleu.bleu import Bleu

            bleu, _ = Bleu(4).compute_score(references, outputs)
            scores.update({f"bleu_{n + 1}": float(b) for n, b in enumerate(bleu)})
        for name, module, cls in (
            ("meteor", "pycocoevalcap.meteor.meteor", "Meteor"),
            ("rouge_l", "pycocoevalcap.rouge.rouge", "Rouge"),
            ("cider", "pycocoevalcap.cider.cider", "Cider"),
            ("spice", "pycocoevalcap.spice.spice", "Spice"),
        ):
            if name in names:
                import importlib

                scorer = getattr(importlib.import_module(module), cls)()
                scores[name] = float(scorer.compute_score(references, outputs)[0])
                del scorer  # METEOR's Java process ends with its scorer
    return {name: scores[name] for name in names}


class CaptionScore(torchmetrics.Metric):
    """One COCO caption score (``name``: ``bleu_4``, ``cider``, ...) over a split: every example's key, output and
    references kept, the whole split scored by ``coco_scores`` in ``compute`` (with the other names of ``group``,
    so the views of one evaluation share one tokenization and one scoring).

    # Parameters
    name: the score this metric gives; group: every score computed with it.
    """

    full_state_update = False

    def __init__(self, name: str, group: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name, self.group = name, tuple(group)
        self.examples: list[tuple[str, str, tuple[str, ...]]] = []

    def update(self, keys: Sequence[str], outputs: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        """keys: each example's image; outputs: its caption; references: all of its reference captions."""
        self.examples += [(str(k), o, tuple(r)) for k, o, r in zip(keys, outputs, references)]

    def reset(self) -> None:
        super().reset()
        self.examples = []

    def compute(self) -> torch.Tensor:
        examples = self.examples
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, examples)
            examples = [e for part in gathered for e in part]
        unique = dict((key, (key, output, refs)) for key, output, refs in reversed(examples))  # the first of a key
        if not unique:
            return torch.tensor(0.0, dtype=torch.float64)
        ordered = tuple(unique[key] for key in sorted(unique))
        return torch.tensor(coco_scores(ordered, self.group)[self.name], dtype=torch.float64)


def caption_scores(names: Sequence[str]) -> dict[str, CaptionScore]:
    """A ``CaptionScore`` for each of ``names`` that can be computed here (``available``); a warning names the rest."""
    kept, why = available(names)
    for line in why:
        warnings.warn(f"caption metrics: {line}", stacklevel=2)
    return {name: CaptionScore(name, kept) for name in kept}
