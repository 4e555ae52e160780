"""BLEU and chrF as logged agree with sacrebleu, the reference implementation."""

import sacrebleu
import torchmetrics

from tasks.translation.module import BLEU_TOKENIZE, bleu_signature

HYPS = ["the cat sat on the mat", "a quick brown fox jumps", "hello there world", "2021-03-04"]
REFS = ["the cat sat on a mat", "the quick brown fox jumped", "hello world", "2021-03-04"]


def test_bleu_matches_sacrebleu():
    ours = torchmetrics.text.SacreBLEUScore(tokenize=BLEU_TOKENIZE)
    ours.update(HYPS, [[r] for r in REFS])
    reference = sacrebleu.corpus_bleu(HYPS, [REFS], tokenize=BLEU_TOKENIZE)
    assert abs(float(ours.compute()) * 100 - reference.score) < 1e-3


def test_chrf_matches_sacrebleu():
    ours = torchmetrics.text.CHRFScore(n_word_order=0)
    ours.update(HYPS, [[r] for r in REFS])
    reference = sacrebleu.corpus_chrf(HYPS, [REFS])
    assert abs(float(ours.compute()) * 100 - reference.score) < 1e-2  # torchmetrics computes in float32


def test_signature_names_the_settings():
    signature = bleu_signature()
    assert "nrefs:1" in signature and "tok:13a" in signature and f"version:{sacrebleu.__version__}" in signature
