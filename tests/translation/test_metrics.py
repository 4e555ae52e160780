"""BLEU and chrF as logged agree with sacrebleu, the reference implementation."""

import sacrebleu
import torchmetrics

from eeap.model.metrics import CorpusBLEU, CorpusChrF, bleu_signature

BLEU_TOKENIZE = "13a"  # translation's

HYPS = ["the cat sat on the mat", "a quick brown fox jumps", "hello there world", "2021-03-04"]
REFS = ["the cat sat on a mat", "the quick brown fox jumped", "hello world", "2021-03-04"]


def test_bleu_matches_sacrebleu_over_batches():
    ours = CorpusBLEU(tokenize=BLEU_TOKENIZE)
    ours.update(HYPS[:2], [[r] for r in REFS[:2]])
    ours.update(HYPS[2:] + [""], [[r] for r in REFS[2:]] + [["1999-01-01"]])  # an empty output counts too
    reference = sacrebleu.corpus_bleu(HYPS + [""], [REFS + ["1999-01-01"]], tokenize=BLEU_TOKENIZE)
    assert abs(float(ours.compute()) * 100 - reference.score) < 1e-9

    # torchmetrics' SacreBLEUScore, logged before, agrees where every n-gram order has a match.
    ours.reset()
    ours.update(HYPS, [[r] for r in REFS])
    slow = torchmetrics.text.SacreBLEUScore(tokenize=BLEU_TOKENIZE)
    slow.update(HYPS, [[r] for r in REFS])
    assert abs(float(ours.compute()) - float(slow.compute())) < 1e-6


def test_bleu_is_smoothed_as_its_signature_says():
    hyps, refs = ["a b c d", "e f g"], ["a b c x", "e f g"]  # one 4-gram, not matched
    ours = CorpusBLEU(tokenize=BLEU_TOKENIZE)
    ours.update(hyps, [[r] for r in refs])
    reference = sacrebleu.corpus_bleu(hyps, [refs], tokenize=BLEU_TOKENIZE)
    assert "smooth:exp" in bleu_signature() and abs(reference.score - 69.144157) < 1e-5
    assert abs(float(ours.compute()) * 100 - reference.score) < 1e-9
    slow = torchmetrics.text.SacreBLEUScore(tokenize=BLEU_TOKENIZE)  # logged before: unsmoothed, so 0
    slow.update(hyps, [[r] for r in refs])
    assert float(slow.compute()) == 0.0


def test_bleu_of_a_perfect_corpus_is_one():
    ours = CorpusBLEU(tokenize=BLEU_TOKENIZE)
    ours.update(REFS, [[r] for r in REFS])
    assert sacrebleu.corpus_bleu(REFS, [REFS]).score > 100 and float(ours.compute()) == 1.0  # not 1.0000000000000004


def test_chrf_matches_sacrebleu_over_batches():
    ours = CorpusChrF()
    ours.update(HYPS[:1], [[r] for r in REFS[:1]])
    ours.update(HYPS[1:] + [""], [[r] for r in REFS[1:]] + [["1999-01-01"]])  # an empty output counts too
    reference = sacrebleu.corpus_chrf(HYPS + [""], [REFS + ["1999-01-01"]])
    assert abs(float(ours.compute()) * 100 - reference.score) < 1e-9

    # torchmetrics' CHRFScore, logged before, agrees without empty outputs (it scores an empty one differently).
    ours.reset()
    ours.update(HYPS, [[r] for r in REFS])
    slow = torchmetrics.text.CHRFScore(n_word_order=0)
    slow.update(HYPS, [[r] for r in REFS])
    assert abs(float(ours.compute()) - float(slow.compute())) < 1e-4


def test_chrf_of_nothing_is_zero_and_reset_starts_afresh():
    ours = CorpusChrF()
    assert float(ours.compute()) == 0.0
    ours.update(["abc"], [["abc"]])
    assert abs(float(ours.compute()) - 1.0) < 1e-9
    ours.reset()
    ours.update(["abc"], [["xyz"]])
    assert float(ours.compute()) == 0.0


def test_signature_names_the_settings():
    signature = bleu_signature()
    assert "nrefs:1" in signature and "tok:13a" in signature and f"version:{sacrebleu.__version__}" in signature


def test_exact_match_compares_references_as_the_tokenizer_writes_outputs():
    # A word tokenizer writes "a square." as "a square ." (pieces joined by spaces): a caption file's punctuation
    # and spacing must not make a right output count as wrong (it did: exact match 0 at BLEU-4 0.89).
    from eeap.data.text import fit_tokenizer
    from eeap.model.seq2seq import exact_matches

    words = fit_tokenizer("word", ["A large square.", "There is a circle, left."])
    outputs = ["A large square .", "There is a circle , left .", "A large square", "a large square ."]
    references = [["A large square."], ["No.", "There is  a circle, left."], ["A large square."], ["A large square."]]
    assert exact_matches(outputs, references, words).tolist() == [1.0, 1.0, 0.0, 0.0]  # case is the data's to fold
    chars = fit_tokenizer("char", ["2021-03-04"])
    assert exact_matches(["2021-03-04", "2021-03-4"], [["2021-03-04"], ["2021-03-04"]], chars).tolist() == [1.0, 0.0]
