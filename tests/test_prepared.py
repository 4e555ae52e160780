"""Prepare once, reuse: the cache of prepared data (eeap.data.prepared), counted, not clocked."""

import subprocess
import sys
from pathlib import Path

import pytest

from eeap.config.registry import DATA, recording_settings
from tests.conftest import ROOT


def corpus(path, lines=400, change=None):
    rows = [f"the {i} cat sat\tdie {i} katze sass" for i in range(lines)]
    if change is not None:
        rows[change] = "a changed line\teine geänderte zeile"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tokenizer_fits(monkeypatch):
    """How many times a tokenizer was trained."""
    import eeap.tasks.translation.data as translation_data

    calls = []
    real = translation_data.fit_tokenizer

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(translation_data, "fit_tokenizer", counted)
    return calls


def prepared(train, cache, **settings):
    train = train if isinstance(train, dict) else str(train)
    section = {"type": "parallel", "train": train, "cache_dir": str(cache), "src_tokenizer": "subword"}
    section.update(settings)
    with recording_settings() as record:
        data = DATA.build(section, "data", seed=0)
    data.cache_settings = record["data"]
    data.prepare()
    return data


def tiny_ddp(train, cache):
    """Overrides of parallel.yaml for a tiny model on two CPU DDP ranks, reading ``train`` through ``cache``."""
    return [
        f"data.train={train}",
        f"data.cache_dir={cache}",
        "data.vocab_size=60",
        "data.batch_size=16",
        "model.embed.dim=8",
        "model.encode.hidden=8",
        "model.predict.embed_dim=8",
        "model.predict.hidden=8",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
    ]


def rows(split):
    return [dict(split[i]) for i in range(len(split))]


def test_the_second_preparation_reuses_the_first_and_gives_the_same_examples(tmp_path, tokenizer_fits):
    train = corpus(tmp_path / "train.tsv")
    first = prepared(train, tmp_path / "cache", vocab_size=60)
    assert first.prepared_here and len(tokenizer_fits) == 2  # source and target tokenizers trained
    second = prepared(train, tmp_path / "cache", vocab_size=60, batch_size=7)  # batch size: not part of the key
    assert not second.prepared_here and len(tokenizer_fits) == 2  # trained no more
    for name in ("train", "val", "test"):
        assert rows(second.splits[name]) == rows(first.splits[name])
    assert second.info().state() == first.info().state()
    lengths = second.lengths("train")
    assert lengths.tolist() == first.lengths("train").tolist() == [len(e["src"]) for e in rows(first.splits["train"])]
    (folder,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert folder.name.startswith("parallel-") and (folder / "manifest.json").is_file()


def test_a_changed_file_or_setting_prepares_again(tmp_path, tokenizer_fits):
    train = corpus(tmp_path / "train.tsv")
    prepared(train, tmp_path / "cache", vocab_size=60)
    prepared(train, tmp_path / "cache", vocab_size=70)  # another setting
    assert len(tokenizer_fits) == 4
    corpus(train, change=5)  # another content
    data = prepared(train, tmp_path / "cache", vocab_size=60)
    assert data.prepared_here and len(tokenizer_fits) == 6
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 3


def test_training_on_cached_data_equals_training_on_fresh_data(tiny, tmp_path):
    from eeap.training.run import train

    data = corpus(tmp_path / "train.tsv", lines=300)
    keys = [
        f"data.train={data}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.vocab_size=60",
        "model.embed.dim=16",
        "model.encode.hidden=16",
        "model.predict.embed_dim=16",
        "model.predict.hidden=16",
        "trainer.max_epochs=2",
        "model.beam_size=1",
    ]
    parallel = ROOT / "configs" / "translation" / "parallel.yaml"
    fresh = train(tiny(*keys, f"run_dir={tmp_path}/a", config=parallel))
    cached = train(tiny(*keys, f"run_dir={tmp_path}/b", config=parallel))
    assert {k: v for k, v in fresh.items() if k.startswith("test/")} == {
        k: v for k, v in cached.items() if k.startswith("test/")
    }


def test_ranks_that_start_together_prepare_once(tmp_path):
    train = corpus(tmp_path / "train.tsv", lines=2000)
    command = [
        sys.executable,
        "-m",
        "eeap.cli",
        "prepare",
        str(ROOT / "configs" / "translation" / "parallel.yaml"),
        f"data.train={train}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.vocab_size=200",
    ]
    children = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = sorted(child.communicate(timeout=300)[0] for child in children)
    assert [child.returncode for child in children] == [0, 0]
    assert ["already prepared" in out for out in outputs] == [True, False]  # one prepared, the other reused
    assert all("1800 train, 100 val, 100 test examples" in out for out in outputs)


def test_generated_data_has_nothing_to_prepare(capsys):
    from eeap.training.run import prepare_main

    assert prepare_main([str(ROOT / "configs" / "translation" / "dates.yaml")]) == 0
    assert capsys.readouterr().out == "data 'dates' is made in memory on each run; there is nothing to prepare ahead\n"


def test_a_cached_split_reads_its_rows_from_the_file_in_any_order_without_mapping_it(tmp_path):
    """ArrowRows: whole record batches of ROWS_PER_BATCH rows (the last short), rows by index, slice and batch of
    indices in any order, a pickled copy that reopens the file, and no memory map of it in this process."""
    import pickle

    from eeap.data.prepared import ROWS_PER_BATCH, ArrowRows, column_lengths, write_rows

    examples = [{"src": list(range(i % 7 + 1)), "text": f"row {i}", "n": i} for i in range(3 * ROWS_PER_BATCH + 5)]
    chunks = [examples[:10], examples[10:150], examples[150:]]  # tables of odd sizes are cut into whole batches
    import pyarrow as pa

    assert write_rows(tmp_path / "a.arrow", (pa.Table.from_pylist(c) for c in chunks)) == len(examples)
    assert write_rows(tmp_path / "b.arrow", iter(examples)) == len(examples)
    for name in ("a.arrow", "b.arrow"):
        split = ArrowRows(tmp_path / name)
        sizes = [split.reader.get_batch(i).num_rows for i in range(split.reader.num_record_batches)]
        assert sizes == [ROWS_PER_BATCH] * 3 + [5] and len(split) == len(examples)
        assert [split[i] for i in range(len(split))] == examples and split[-1] == examples[-1]
        picks = [196, 3, 130, 3, 64, 63]
        assert split.__getitems__(picks) == [examples[i] for i in picks] and split[60:70] == examples[60:70]
        assert column_lengths(split, "src").tolist() == [len(e["src"]) for e in examples]
        assert pickle.loads(pickle.dumps(split))[130] == examples[130]
        with pytest.raises(IndexError):
            split[len(examples)]
    maps = Path("/proc/self/maps")
    if maps.is_file():
        assert str(tmp_path) not in maps.read_text()  # read with file reads: the process maps none of it
    write_rows(tmp_path / "empty.arrow", [])
    assert len(ArrowRows(tmp_path / "empty.arrow")) == 0


def test_labelled_texts_are_prepared_once_and_again_when_the_file_or_a_setting_changes(tmp_path, monkeypatch, capsys):
    """text_file classification: the tokenizer is trained once; the cached examples and batches are the fresh ones."""
    import eeap.tasks.classification.data as classification_data
    from eeap.training.run import prepare_main

    calls = []
    real = classification_data.fit_tokenizer
    monkeypatch.setattr(classification_data, "fit_tokenizer", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    path = tmp_path / "texts.tsv"
    path.write_text("".join(f"good thing {i}\tpos\nbad thing {i}\tneg\n" for i in range(30)), encoding="utf-8")

    def build(**settings):
        section = {"type": "text_file", "path": str(path), "cache_dir": str(tmp_path / "cache"), "tokenizer": "word"}
        with recording_settings() as record:
            data = DATA.build({**section, **settings}, "data", seed=0)
        data.cache_settings = record["data"]
        data.prepare()
        return data

    first, second = build(), build(batch_size=5)  # the batch size is not part of the key
    assert first.prepared_here and not second.prepared_here and calls == ["word"]
    assert second.info().state() == first.info().state()
    plain = build(cache=False)  # made in memory: its tokenizer trained too
    assert calls == ["word", "word"]
    for name in ("train", "val", "test"):
        assert rows(second.splits[name]) == rows(first.splits[name]) == plain.splits[name]
    fresh, cached = plain.collate(plain.splits["val"][:4]), second.collate(rows(second.splits["val"])[:4])
    assert fresh["inputs"].equal(cached["inputs"]) and fresh["labels"].equal(cached["labels"])
    build(tokenizer="char")  # another setting
    path.write_text(path.read_text(encoding="utf-8").replace("good thing 3", "fine thing 3"), encoding="utf-8")
    build()  # another content
    assert calls == ["word", "word", "char", "word"]
    config = ROOT / "configs" / "classification" / "text_file.yaml"
    keys = [f"data.path={path}", f"data.cache_dir={tmp_path / 'cache'}"]
    assert prepare_main([str(config), *keys, "data.max_len=50"]) == 0
    assert prepare_main([str(config), *keys, "data.max_len=50"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("data 'text_file' prepared: 42 train, 6 val, 12 test examples")
    assert out[1].startswith("data 'text_file' already prepared (reused): 42 train, 6 val, 12 test examples")


def test_a_damaged_cache_is_one_line_that_says_how_to_rebuild_it(tmp_path):
    from eeap.errors import DataError

    train = corpus(tmp_path / "train.tsv")
    prepared(train, tmp_path / "cache", vocab_size=60)
    (folder,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    (folder / "info.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=rf"^data.cache_dir: {folder} is damaged \(.*\); delete it to prepare again$"):
        prepared(train, tmp_path / "cache", vocab_size=60)


def test_a_run_on_cached_data_resumes_exactly(tiny, tmp_path):
    """Bucketing, the seeded epoch order and the mid-epoch skip work on the memory-mapped splits as on lists."""
    import torch

    from eeap.training.run import train

    data = corpus(tmp_path / "train.tsv", lines=300)
    keys = [
        f"data.train={data}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.vocab_size=60",
        "data.batch_size=32",
        "model.embed.dim=16",
        "model.encode.hidden=16",
        "model.predict.embed_dim=16",
        "model.predict.hidden=16",
        "model.encode.dropout=0.3",
        "model.optim.scheduler=none",
        "trainer.val_check_interval=0.5",  # checkpoints mid-epoch too
        "test=false",
    ]
    parallel = ROOT / "configs" / "translation" / "parallel.yaml"
    train(tiny(*keys, "trainer.max_epochs=2", f"run_dir={tmp_path}/straight", config=parallel))
    train(tiny(*keys, "trainer.max_epochs=1", f"run_dir={tmp_path}/broken", config=parallel))
    train(tiny(*keys, "trainer.max_epochs=2", f"resume={tmp_path}/broken", config=parallel))

    def weights(name):
        return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]

    a, b = weights("straight"), weights("broken")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_ddp_ranks_read_disjoint_shards_of_the_cached_split_that_cover_it(tmp_path):
    import json

    data = corpus(tmp_path / "train.tsv", lines=300)
    out = tmp_path / "seen"
    overrides = [
        *tiny_ddp(data, tmp_path / "cache"),
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "model.optim.scheduler=none",  # plateau needs validations
        "test=false",
        f"run_dir={tmp_path / 'run'}",
    ]
    parallel = ROOT / "configs" / "translation" / "parallel.yaml"
    result = subprocess.run(
        [sys.executable, "tests/ddp_worker.py", str(out), str(parallel), *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = (json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1))
    (folder,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]  # prepared once for both ranks
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(first) == len(second) == manifest["examples"]["train"] // 2  # 270 train pairs: 135 each
    assert not set(first) & set(second) and len(set(first) | set(second)) == manifest["examples"]["train"]


def test_two_ddp_ranks_resume_a_mid_epoch_checkpoint_on_cached_data_exactly(tmp_path):
    """Two CPU DDP ranks on the cached split, dropout on: a run stopped mid-epoch and resumed ends with the weights
    of an unbroken run; each rank skips the part of its share it had trained on and takes back its own random
    state (the checkpoint keeps every rank's)."""
    import torch

    data = corpus(tmp_path / "train.tsv", lines=300)  # 270 train pairs: 135 a rank, 9 batches of 16, validation every 4
    keys = [
        *tiny_ddp(data, tmp_path / "cache"),
        "model.optim.scheduler=none",
        "trainer.max_epochs=2",
        "trainer.val_check_interval=0.5",  # last.ckpt mid-epoch too
        "test=false",
    ]
    parallel = ROOT / "configs" / "translation" / "parallel.yaml"

    def run(*extra):
        command = [sys.executable, "tests/ddp_worker.py", str(tmp_path / "weights"), str(parallel), *keys, *extra]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]

    def checkpoint(name):
        return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)

    run(f"run_dir={tmp_path}/straight")
    run(f"run_dir={tmp_path}/broken", "trainer.max_steps=13")  # stops at epoch 2's first validation, 4 batches in
    broken = checkpoint("broken")
    assert broken["global_step"] == 13 and len(broken["eeap"]["rng_ranks"]) == 2
    run(f"resume={tmp_path}/broken")
    a, b = checkpoint("straight"), checkpoint("broken")
    assert a["global_step"] == b["global_step"] > 11
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


@pytest.mark.parametrize("tokenizer", ["char", "subword"])
@pytest.mark.parametrize("layout", ["tsv", "aligned"])
def test_the_streamed_preparation_gives_exactly_the_examples_of_the_in_memory_one(
    tmp_path, tokenizer, layout, monkeypatch
):
    """Held-out shares, tokenizers, dropped pairs and orders: the cache's splits equal make_splits' lists, for a TSV
    file and for two aligned text files (both streamed: make_splits is never called for the cache), each split
    sorted on disk through several runs."""
    import eeap.data.prepared
    from eeap.tasks.translation.data import ParallelData

    monkeypatch.setattr(eeap.data.prepared, "RUN_ROWS", 37)  # train: ~12 sorted runs, merged 5 rows of each at a time
    monkeypatch.setattr(eeap.data.prepared, "MERGE_ROWS", 5)

    rows_ = [f"the {i} cat{'s' * (i % 3)} sat\tdie {i} katze{'n' * (i % 3)} sass" for i in range(500)]
    rows_[7] = "\tempty source"  # left out: an empty side
    rows_[9] = "x " * 80 + "\ttoo long"  # left out: over max_src_len
    rows_[13] = "a\u2028b\x0cc\tcarried whole"  # characters str.splitlines would break a line at
    if layout == "tsv":
        rows_[11] = "one column only"  # a bad line, skipped
        train: object = tmp_path / "train.tsv"
        train.write_text("\n".join(rows_) + "\n", encoding="utf-8")
    else:
        (tmp_path / "src.txt").write_bytes(b"".join(r.split("\t")[0].encode() + b"\r\n" for r in rows_))
        lines = [r.split("\t")[1].encode() for r in rows_]
        lines[11] = b"not utf-8 \xff"  # a bad line, skipped with its pair
        (tmp_path / "tgt.txt").write_bytes(b"\n".join(lines))  # no newline at the end
        train = {"source": str(tmp_path / "src.txt"), "target": str(tmp_path / "tgt.txt")}
    val = tmp_path / "val.tsv"
    val.write_text("".join(f"a {i} dog\tein {i} hund\n" for i in range(30)), encoding="utf-8")
    settings = {"vocab_size": 60, "src_tokenizer": tokenizer, "tgt_tokenizer": tokenizer, "on_bad_line": "skip"}
    spec = train if isinstance(train, dict) else str(train)
    for extra in ({}, {"val": str(val)}):
        with monkeypatch.context() as patched:
            patched.setattr(ParallelData, "make_splits", None)  # the cache must stream
            with pytest.warns(UserWarning, match="left out 1 bad lines"):
                cached = prepared(train, tmp_path / "cache", **settings, **extra)
        plain = DATA.build({"type": "parallel", "train": spec, "cache": False, **settings, **extra}, "d", seed=0)
        plain.prepare()
        assert cached.info().state() == plain.info().state()
        for name in ("train", "val", "test"):
            assert rows(cached.splits[name]) == plain.splits[name], name
        texts = [e["src_text"] for name in ("train", "val", "test") for e in plain.splits[name]]
        dropped = "one column only" if layout == "tsv" else "the 11 catss sat"  # its target is the bad line
        assert "a\u2028b\x0cc" in texts and "the 12 cat sat" in texts and dropped not in texts


def test_sorted_rows_come_back_in_key_order_through_many_runs(tmp_path, monkeypatch):
    """The external sort: rows added in a shuffled order, spilled in runs of 10 and merged 3 rows of each at a
    time, come back whole and in key order (the key column left out)."""
    import random

    import eeap.data.prepared
    from eeap.data.prepared import SortedRows

    monkeypatch.setattr(eeap.data.prepared, "RUN_ROWS", 10)
    monkeypatch.setattr(eeap.data.prepared, "MERGE_ROWS", 3)
    keys = random.Random(0).sample(range(10_000), 95)  # unique keys, any spread
    rows_ = SortedRows(tmp_path / "runs")
    for key in keys:
        rows_.add(key, {"ids": list(range(key % 5)), "text": f"row {key}"})
    tables = list(rows_.tables())
    assert len(rows_.runs) == 10 and rows_.count == 95
    back = [row for table in tables for row in table.to_pylist()]
    assert back == [{"ids": list(range(k % 5)), "text": f"row {k}"} for k in sorted(keys)]
    assert list(SortedRows(tmp_path / "none").tables()) == []


def test_aligned_files_stream_in_step_and_name_a_bad_line_or_a_count_mismatch(tmp_path):
    from eeap.errors import DataError
    from eeap.tasks.translation.files import read_pairs

    (tmp_path / "s.txt").write_bytes(b"one\ntwo\xfe\nthree\n")
    (tmp_path / "t.txt").write_bytes(b"eins\nzwei\ndrei\nvier\n")
    spec = {"source": str(tmp_path / "s.txt"), "target": str(tmp_path / "t.txt")}
    with pytest.raises(DataError, match=r"data.train.source: .*s.txt line 2 is not UTF-8 text \(bytes b'\\xfe'\)"):
        read_pairs(spec, "data.train")
    with pytest.raises(DataError, match=r"data.train: .*s.txt has 3 lines but .*t.txt has 4"):
        read_pairs(spec, "data.train", on_bad_line="skip")
    (tmp_path / "t.txt").write_bytes(b"eins\nzwei\ndrei\n")
    with pytest.warns(UserWarning, match=r"data.train.source: left out 1 bad lines"):
        assert read_pairs(spec, "data.train", on_bad_line="skip") == [("one", "eins"), ("three", "drei")]


def test_records_give_back_the_examples_they_were_made_of():
    """to_record / from_record: float pixels that are whole 255ths and small integers kept as one byte each, any
    other array as it is; tuples and dicts come back as they were, to the bit."""
    import numpy as np

    from eeap.data.prepared import from_record, record_kind, to_record

    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4).astype(np.float32) / 255.0
    mask = np.array([[0, 1], [2, 255]], dtype=np.int64)
    other = np.array([0.5, 1 / 3], dtype=np.float32)  # 1/3 is no whole 255th: kept as float32
    wide = np.array([0, 256], dtype=np.int64)
    example = (pixels, mask, other, wide, 7)
    record = to_record(example)
    assert record["0.bytes"] and record["1.bytes"] and not record["2.bytes"] and not record["3.bytes"]
    assert len(record["0"]) == 24 and len(record["1"]) == 4 and len(record["2"]) == 8 and record["4"] == 7
    back = from_record(record, record_kind(example))
    assert isinstance(back, tuple) and back[4] == 7
    for a, b in zip(back[:4], example[:4]):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    captioned = {"image": pixels, "tgt": [1, 2], "tgt_text": "a b"}
    assert record_kind(captioned) == "dict" and record_kind({"src": [1], "text": "x"}) is None
    again = from_record(to_record(captioned), "dict")
    assert np.array_equal(again.pop("image"), pixels) and again == {"tgt": [1, 2], "tgt_text": "a b"}


@pytest.mark.parametrize("name", ["image_folder", "segmentation_folder", "caption_folder"])
def test_image_folders_are_decoded_once_into_the_cache_and_read_back_as_decoded(tmp_path, monkeypatch, name):
    """Preparing decodes (and resizes) every image once, into the cache, and the first run reads the cache too; the
    next run decodes none and checks no header; both give exactly the examples that decoding when read gives, in
    worker processes too; a changed image prepares again."""
    import numpy as np
    import torch
    from PIL import Image

    from eeap.data.base import make_loader
    from eeap.data.prepared import ArrowRows
    from tests.test_data import count_decodes, image_folders, image_of

    section = {"type": name, **image_folders(tmp_path)[name], "image_size": [16, 16], "resize": True}
    decoded = count_decodes(monkeypatch)

    def build(**extra):
        with recording_settings() as record:
            data = DATA.build({**section, "cache_dir": str(tmp_path / "cache"), **extra}, "data", seed=0)
        data.cache_settings = record["data"]
        data.prepare()
        return data

    first = build()
    assert first.prepared_here and len(decoded) == 12 and len(set(decoded)) == 12  # each image once
    # (captioning's training split reads one example per caption of the images the cache holds once: PerCaption)
    assert all(
        isinstance(getattr(first.splits[s], "images", first.splits[s]), ArrowRows) for s in ("train", "val", "test")
    )
    decoded.clear()
    second = build()
    assert not second.prepared_here and decoded == []
    plain = build(cache=False)
    assert not isinstance(getattr(plain.splits["train"], "images", plain.splits["train"]), ArrowRows)
    for split in ("train", "val", "test"):
        expected = [plain.splits[split][i] for i in range(len(plain.splits[split]))]
        for data in (first, second):
            got = [data.splits[split][i] for i in range(len(data.splits[split]))]
            assert len(got) == len(expected)
            for a, b in zip(got, expected):
                assert image_of(a).dtype == np.float32 and np.array_equal(image_of(a), image_of(b))
                if isinstance(b, tuple):  # the label, or the mask
                    assert np.array_equal(a[1], b[1]) and np.asarray(a[1]).dtype == np.asarray(b[1]).dtype
                else:
                    assert {k: v for k, v in a.items() if k != "image"} == {k: v for k, v in b.items() if k != "image"}
    if name == "caption_folder":
        assert second.lengths("train") == plain.lengths("train")
    key = "src" if name == "caption_folder" else "inputs" if name == "image_folder" else "images"
    one = list(make_loader(second.splits["val"], 2, second.collate, 0))
    two = list(make_loader(second.splits["val"], 2, second.collate, 0, num_workers=2))
    three = list(make_loader(plain.splits["val"], 2, plain.collate, 0))
    assert all(torch.equal(a[key], b[key]) and torch.equal(a[key], c[key]) for a, b, c in zip(one, two, three))
    images = {"image_folder": "cls/c1", "segmentation_folder": "seg/images", "caption_folder": "cap/images"}[name]
    changed = sorted((tmp_path / images).glob("*.png"))[0]
    Image.new("RGB", (16, 16), (9, 9, 9)).save(changed)
    assert build().prepared_here


def test_a_split_of_large_rows_is_written_in_small_record_batches(tmp_path):
    """Reading a row reads its record batch: rows of tens of KB (an image's pixels) go a few to a batch."""
    from eeap.data.prepared import BATCH_BYTES, ArrowRows, write_rows

    rows_ = [{"pixels": bytes([i % 256]) * 20_000, "label": i} for i in range(50)]
    write_rows(tmp_path / "big.arrow", iter(rows_))
    split = ArrowRows(tmp_path / "big.arrow")
    assert split.rows_per_batch == 3 == BATCH_BYTES // 20_008 and split.reader.num_record_batches == 17
    assert [split[i]["label"] for i in (49, 0, 25)] == [49, 0, 25] and split[7] == rows_[7]


def test_a_small_split_keeps_the_record_batches_it_reads_and_a_large_one_none(tmp_path, monkeypatch):
    """A split file of at most KEPT_BYTES reads each record batch from the file once; a larger one every time (its
    memory stays the same at any size); both give what was written."""
    import eeap.data.prepared
    from eeap.data.prepared import ArrowRows, write_rows

    rows_ = [{"ids": [i, i + 1, i + 2], "n": i} for i in range(640)]  # 10 record batches of 64
    write_rows(tmp_path / "s.arrow", iter(rows_))
    size = (tmp_path / "s.arrow").stat().st_size
    for budget, keeps in ((size, True), (size - 1, False)):
        monkeypatch.setattr(eeap.data.prepared, "KEPT_BYTES", budget)
        split = ArrowRows(tmp_path / "s.arrow")
        reads = []
        real = split.reader.get_batch
        counting = type(
            "Counting", (), {"get_batch": lambda self, n, real=real, reads=reads: reads.append(n) or real(n)}
        )
        monkeypatch.setattr(split, "reader", counting())
        assert split.__getitems__([0, 70, 1, 140, 65]) == [rows_[i] for i in (0, 70, 1, 140, 65)]
        assert split[5] == rows_[5] and split[639] == rows_[639]
        assert reads == ([0, 1, 2, 9] if keeps else [0, 1, 0, 2, 1, 0, 9])
        assert sorted(split.kept) == ([0, 1, 2, 9] if keeps else [])
