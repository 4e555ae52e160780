"""What hard, local and gated attention decide beyond their weights (``Attention.notes``), as ``predict --attention``
reports it for every one of beam search's n best: the decoder's replay equals beam search's weights, and each note
agrees with the weights it explains."""

import pytest
import torch

from eeap import build
from eeap.attend.base import Attention, noting
from eeap.config.loader import load_config
from eeap.data.text import BOS
from eeap.model.prediction import DecodeOptions
from tests.conftest import DATES, QUIET

SMALL = [
    "data.train_size=64",
    "data.val_size=8",
    "data.test_size=8",
    "model.encode.hidden=16",
    "model.predict.hidden=16",
]
ATTENDS = {
    "hard": ["model.attend={type: hard}"],
    "local-m": ["model.attend={type: local, mode: monotonic, window: 2}"],
    "local-p": ["model.attend={type: local, mode: predictive, window: 2}"],
    "gated": ["model.attend={type: gated, threshold: 0.5}"],
    "additive": ["model.attend={type: additive}"],
}
STYLES = {"parallel": [], "stepwise": ["model.predict.style=bahdanau"]}  # one attention call, or one per step
INPUTS = ["4 March 2021", "12/25/23"]


def task_with(attend, style):
    torch.manual_seed(0)
    module, _ = build(load_config(DATES, [*QUIET, *SMALL, *ATTENDS[attend], *STYLES[style]]))
    return module.model.eval()


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("attend", list(ATTENDS))
def test_every_hypothesis_has_its_own_alignment_and_the_replay_decides_as_decoding_did(attend, style):
    task = task_with(attend, style)
    records, problems = task.predict_lines(INPUTS, DecodeOptions(beam_size=3, n_best=3, attention=True))
    assert not problems.messages
    src = task.inputs.collate([task.read_input(text, 1, problems) for text in INPUTS])
    memory, mask = task.encode(src)
    hyps = task.seq2seq.decode(memory, mask, 3, n_best=3)
    for row, record in enumerate(records):
        assert len(record["n_best"]) == 3
        assert {k: v for k, v in record["n_best"][0].items()} == {k: record[k] for k in record["n_best"][0]}
        outputs = [hyp["output"] for hyp in record["n_best"]]
        assert len(set(outputs)) == 3  # three different hypotheses, each with its own rows
        for rank, hyp in enumerate(record["n_best"]):
            length = int(hyps.ranked_lengths[row, rank])
            assert len(hyp["attention"]) == len(hyp["output_pieces"]) == length
            # the decoder reading this hypothesis teacher-forced gives the weights beam search kept for it
            tokens = hyps.ranked_tokens[row, rank : rank + 1]  # (1, steps)
            read = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], 1)
            with torch.no_grad():
                _, weights = task.seq2seq.decoder(read, memory[row : row + 1], mask[row : row + 1], need_weights=True)
            torch.testing.assert_close(torch.tensor(hyp["attention"]), weights[0, :length], atol=1e-4, rtol=0)
            details = hyp.get("attention_details")
            attention = torch.tensor(hyp["attention"])  # (length, src_len)
            real = mask[row]  # (src_len,)
            if attend == "additive":
                assert details is None
            elif attend == "hard":
                assert set(details) == {"choice", "probability"}
                assert details["choice"] == attention.argmax(-1).tolist()
                assert torch.equal(attention, torch.nn.functional.one_hot(attention.argmax(-1), real.numel()).float())
                probability = torch.tensor(details["probability"])
                torch.testing.assert_close(probability.sum(-1), torch.ones(length), atol=1e-3, rtol=0)
                assert details["choice"] == probability.argmax(-1).tolist()  # evaluation takes the most probable
            elif attend.startswith("local"):
                first, last = torch.tensor(details["first"]), torch.tensor(details["last"])
                positions = torch.arange(real.numel())
                outside = (positions < first[:, None]) | (positions > last[:, None])  # (length, src_len)
                assert attention[outside].abs().max() == 0 and attention[~outside].sum() > 0
                assert int(last.max()) <= int(real.sum()) - 1 and int(first.min()) >= 0
                if attend == "local-m":  # p_t = t
                    assert details["centre"] == [float(t) for t in range(length)]
            else:  # gated
                gate, opened = torch.tensor(details["gate"]), torch.tensor(details["open"])
                assert torch.equal(attention > 0, opened > 0)  # weight where, and only where, the gate is open
                assert float(gate[:, ~real].abs().sum()) == 0 and 0 <= float(gate.min()) <= float(gate.max()) <= 1
                for t in range(length):
                    above = gate[t] > 0.5
                    expected = (
                        above
                        if bool(above.any())
                        else torch.nn.functional.one_hot(gate[t].argmax(), real.numel()).bool()
                    )
                    assert torch.equal(opened[t] > 0, expected)  # above the threshold, or the most probable alone


def test_notes_are_kept_only_inside_noting():
    task = task_with("hard", "parallel")
    attention = next(m for m in task.modules() if isinstance(m, Attention) and m.notes)
    src = task.inputs.collate([task.read_input(INPUTS[0], 1, None)])
    task.decode(src)
    assert attention.noted is None
    memory, mask = task.encode(src)
    tokens = torch.tensor([[BOS, 5, 6]])
    with noting(task) as notes:
        assert attention.noted == []
        task.seq2seq.decoder(tokens, memory, mask)
        assert notes == {}  # filled when the block ends
    assert attention.noted is None
    (kept,) = notes.values()
    assert kept["choice"].shape == (1, 3) and kept["probability"].shape == (1, 3, memory.shape[1])


def test_progress_reports_each_step_and_ends_at_the_greedy_answer():
    task = task_with("additive", "parallel")
    seen: list[list[str]] = []
    records, _ = task.predict_lines(INPUTS, DecodeOptions(beam_size=1, progress=seen.append))
    assert len(seen) >= 2 and all(len(step) == len(INPUTS) for step in seen)
    for row, record in enumerate(records):
        # greedy: each step's answer extends the last one, and the last step's is the output
        texts = [step[row] for step in seen]
        assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
        assert texts[-1] == record["output"]
    steps = max(len(record["output"]) + 1 for record in records)  # characters, then the end; or the longest allowed
    assert len(seen) == min(steps, task.seq2seq.max_output_len + 1)


@pytest.mark.parametrize("heads", [True, False])
def test_a_transformers_record_has_every_layers_attention_for_every_hypothesis(heads):
    from tests.conftest import ROOT

    torch.manual_seed(0)
    config = ROOT / "configs" / "translation" / "dates_transformer.yaml"
    sizes = ["data.train_size=64", "data.val_size=8", "data.test_size=8", f"model.attend.average_heads={not heads}"]
    module, _ = build(load_config(config, [*QUIET, *sizes]))
    task = module.model.eval()
    records, _ = task.predict_lines(INPUTS, DecodeOptions(beam_size=2, n_best=2, attention=True))
    for record in records:
        for hyp in record["n_best"]:
            layers = torch.tensor(hyp["attention_layers"])  # (layers, [heads,] output pieces, source pieces)
            shape = (2, 4, len(hyp["attention"])) if heads else (2, len(hyp["attention"]))
            assert layers.shape[:-1] == shape
            # the last layer's is the attention beam search kept; the first is another
            kept = torch.tensor(hyp["attention_heads"] if heads else hyp["attention"])
            torch.testing.assert_close(layers[-1], kept, atol=2e-4, rtol=0)
            assert not torch.allclose(layers[0], layers[-1], atol=1e-3)
            torch.testing.assert_close(layers.sum(-1), torch.ones(shape), atol=1e-3, rtol=0)
    recurrent = task_with("additive", "parallel").predict_lines(INPUTS, DecodeOptions(attention=True))[0]
    assert all("attention_layers" not in record for record in recurrent)  # one attending layer: nothing more
