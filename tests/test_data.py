"""The shared sampler: reproducible per epoch, and length buckets that keep batches whole."""

import pytest
import torch

from eeap.config.registry import DATA
from eeap.data.base import EpochShuffle, make_loader
from eeap.errors import DataError


def test_same_seed_and_epoch_same_order():
    a, b = EpochShuffle(100, seed=3), EpochShuffle(100, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and sorted(a) == list(range(100))
    b.set_epoch(3)
    assert list(a) != list(b)


def test_buckets_keep_batches_of_similar_length_and_whole():
    torch.manual_seed(0)
    lengths = torch.randint(1, 60, (1000,)).tolist()
    sampler = EpochShuffle(1000, seed=0, lengths=lengths, batch_size=16)
    order = list(sampler)
    assert sorted(order) == list(range(1000))
    batches = [order[i : i + 16] for i in range(0, 1000, 16)]
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(spread) / len(spread) < 6  # random batches of 1..59 would spread ~50
    assert len(batches[-1]) == 1000 % 16  # the only short batch is the last one
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert sum(lengths) / padded > 0.9


def test_loader_leaves_the_global_random_state_alone():
    loader = make_loader(list(range(10)), 4, list, seed=0, shuffle=True)
    state = torch.get_rng_state()
    assert [x for batch in loader for x in batch] == list(loader.sampler)
    assert torch.equal(state, torch.get_rng_state())


def test_resume_skips_the_first_indices_of_that_epoch_once():
    sampler = EpochShuffle(50, seed=1, lengths=list(range(50)), batch_size=8)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.resume(2, 16)
    assert list(sampler) == full[16:]  # two batches of epoch 2 were trained before the stop
    assert list(sampler) == full  # only the first pass after resuming
    sampler.resume(1, 16)  # written at the end of epoch 1: the next epoch starts whole
    assert list(sampler) == full


def test_batch_transfer_moves_tensors_and_leaves_texts():
    texts = ["4 July 1776", "1/2/03"]
    batch = {
        "src": torch.ones(2, 3),
        "nested": {"mask": torch.ones(2, dtype=torch.bool)},
        "src_text": texts,
        "ids": [torch.zeros(1)],
        "empty": [],
    }
    data = DATA.build({"type": "dates"}, "data", seed=0)
    moved = data.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert moved["src"].is_meta and moved["nested"]["mask"].is_meta and moved["ids"][0].is_meta
    assert moved["src_text"] is texts and moved["empty"] == []
    pair = data.transfer_batch_to_device((torch.ones(1), torch.ones(2)), torch.device("meta"), 0)
    assert all(t.is_meta for t in pair)


LATIN1 = "caf\xe9\tcoffee\n".encode("latin-1")  # é as one byte: not UTF-8


@pytest.mark.parametrize(
    "name, section, file",
    [
        ("parallel", {"type": "parallel", "train": "{path}"}, "pairs.tsv"),
        ("text_file", {"type": "text_file", "path": "{path}"}, "texts.tsv"),
        ("caption_folder", {"type": "caption_folder", "root": "{folder}", "captions": "{path}"}, "captions.tsv"),
    ],
)
def test_text_that_is_not_utf8_is_one_line_with_file_and_line(tmp_path, name, section, file):
    path = tmp_path / file
    path.write_bytes(b"fine\tline\n" + LATIN1)
    section = {k: v.format(path=path, folder=tmp_path) if isinstance(v, str) else v for k, v in section.items()}
    with pytest.raises(DataError) as e:
        DATA.build(section, "data", seed=0).prepare()
    assert f"{path} line 2 is not UTF-8 text (bytes b'\\xe9')" in str(e.value) and "\n" not in str(e.value)


def test_predict_skips_an_input_line_that_is_not_utf8_with_one_warning(tmp_path, tiny):
    """From a file and from standard input: the bad line gets an empty output line and a warning naming it, the
    lines around it are translated, and the exit code is 1 (as for an empty line)."""
    import subprocess
    import sys

    from eeap.training.run import train
    from tests.conftest import ROOT

    checkpoint = train(tiny("trainer.max_epochs=1", "test=false"))["best_checkpoint"]
    lines = b"4 March 2021\n" + LATIN1 + b"5 March 2021\n"
    (tmp_path / "in.txt").write_bytes(lines)
    for extra, data in (([f"--input={tmp_path / 'in.txt'}"], b""), ([], lines)):
        result = subprocess.run(
            [sys.executable, "predict.py", checkpoint, *extra], input=data, cwd=ROOT, capture_output=True, timeout=120
        )
        assert result.returncode == 1
        assert result.stderr.decode() == "warning: line 2: not UTF-8 text (bytes b'\\xe9'); skipped\n"
        outputs = result.stdout.decode().split("\n")
        assert len(outputs) == 4 and outputs[1] == "" and outputs[3] == "" and outputs[0] and outputs[2]


def big_tsv(path, lines=300_000, bad=()):
    """A TSV of ``lines`` pairs with bad lines at the given (1-based) numbers: latin-1 bytes, or one column."""
    with open(path, "wb") as f:
        for number in range(1, lines + 1):
            if number in bad:
                f.write("grüße\tGrüße\n".encode("latin-1") if number % 2 else b"one column only\n")
            else:
                f.write(f"source {number}\ttarget {number}\n".encode())


def test_a_bad_line_deep_in_a_big_file_is_named_by_file_and_line(tmp_path):
    from eeap.errors import DataError
    from eeap.tasks.translation.files import read_pairs

    path = tmp_path / "big.tsv"
    big_tsv(path, bad={250_000, 250_001})
    with pytest.raises(
        DataError, match=rf"^data.train: {path} line 250000 has 1 column \('one column only'\), expected 2"
    ):
        read_pairs(str(path), "data.train")


def test_skip_leaves_bad_lines_out_counts_them_and_shows_the_first_few(tmp_path):
    from eeap.tasks.translation.files import read_pairs

    path = tmp_path / "big.tsv"
    bad = {10, 11, 20_001, 30_000, 30_001}
    big_tsv(path, lines=40_000, bad=bad)
    with pytest.warns(UserWarning) as caught:
        pairs = read_pairs(str(path), "data.train", on_bad_line="skip")
    assert len(pairs) == 40_000 - len(bad) and pairs[9] == ("source 12", "target 12")
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(f"data.train: left out 5 bad lines of {path}: {path} line 10 has 1 column")
    assert f"{path} line 11 is not UTF-8 text (bytes b'\\xfc')" in message and message.endswith("; 2 more")


def test_text_file_classification_reads_rows_with_the_same_bad_line_modes(tmp_path):
    from eeap.config.registry import DATA
    from eeap.errors import DataError

    path = tmp_path / "texts.tsv"
    path.write_bytes(b"".join(f"text {i}\tlabel{i % 2}\n".encode() for i in range(40)) + b"no label\n")
    data = DATA.build({"type": "text_file", "path": str(path)}, "data", seed=0)
    with pytest.raises(DataError, match=rf"data.path: {path} line 41 has 1 column"):
        data.prepare()
    data = DATA.build({"type": "text_file", "path": str(path), "on_bad_line": "skip"}, "data", seed=0)
    with pytest.warns(UserWarning, match="left out 1 bad lines"):
        data.prepare()
    assert sum(len(split) for split in data.splits.values()) == 40


def image_folders(root, count=12, size=(20, 24)):
    """The same ``count`` images as a classification folder (two classes), a segmentation folder and a caption folder."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    captions = []
    for i in range(count):
        pixels = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        for path in (
            root / "cls" / f"c{i % 2}" / f"{i}.png",
            root / "seg" / "images" / f"{i}.png",
            root / "cap" / "images" / f"{i}.png",
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
        mask = (rng.random(size) > 0.5).astype(np.uint8) * 255
        (root / "seg" / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(root / "seg" / "masks" / f"{i}.png")
        captions.append(f"{i}.png\tpicture number {i}")
    (root / "cap" / "captions.tsv").write_text("\n".join(captions) + "\n")
    return {
        "image_folder": {"root": str(root / "cls"), "channels": 3},
        "segmentation_folder": {"root": str(root / "seg")},
        "caption_folder": {"root": str(root / "cap")},
    }


def count_decodes(monkeypatch):
    """The paths of the images decoded from here on, in the order they are decoded (``read_image`` counted)."""
    import eeap.data.images

    decoded = []
    real = eeap.data.images.read_image

    def counting(path, *args, **kwargs):
        decoded.append(path)
        return real(path, *args, **kwargs)

    for module in ("tasks.classification.data", "tasks.segmentation.data", "tasks.captioning.data"):
        monkeypatch.setattr(f"eeap.{module}.read_image", counting)
    return decoded


def image_of(example):
    return example["image"] if isinstance(example, dict) else example[0]


@pytest.mark.parametrize("name", ["image_folder", "segmentation_folder", "caption_folder"])
def test_image_folders_decode_each_image_when_it_is_read(tmp_path, monkeypatch, name):
    """A folder of any size is held as file names: preparing checks every file's header and decodes no image; an
    example is decoded (and resized) when the loader reads it, in worker processes too, to what decoding it up
    front would give."""
    import numpy as np

    from eeap.data.base import DecodedOnRead
    from eeap.data.images import read_image

    section = {"type": name, **image_folders(tmp_path)[name], "image_size": [16, 16], "resize": True}
    decoded = count_decodes(monkeypatch)
    data = DATA.build(section, "data", seed=0, batch_size=4, eval_batch_size=4)
    data.prepare()
    stored = {s: getattr(data.splits[s], "images", data.splits[s]) for s in ("train", "val", "test")}  # PerCaption's
    assert decoded == [] and all(isinstance(split, DecodedOnRead) for split in stored.values())
    assert sum(len(data.splits[s]) for s in ("train", "val", "test")) == 12
    example = data.splits["train"][0]
    assert len(decoded) == 1 and image_of(example).shape == (3, 16, 16)
    np.testing.assert_array_equal(image_of(example), read_image(decoded[0], 3, (16, 16), True))
    monkeypatch.undo()
    one = [batch for batch in make_loader(data.splits["val"], 4, data.collate, 0)]
    two = [batch for batch in make_loader(data.splits["val"], 4, data.collate, 0, num_workers=2)]
    key = "src" if name == "caption_folder" else "inputs" if name == "image_folder" else "images"
    assert len(one) == len(two) and all(torch.equal(a[key], b[key]) for a, b in zip(one, two))


@pytest.mark.parametrize("name", ["image_folder", "segmentation_folder", "caption_folder", "text_file"])
def test_split_seed_fixes_the_held_out_examples_of_a_users_data(tmp_path, name):
    """Unset, the run's seed draws which files are held out; ``split_seed`` fixes them, so runs of several seeds are
    tested on one test split."""
    sections = image_folders(tmp_path, count=30)
    lines = "".join(f"text number {i}\tlabel{i % 2}\n" for i in range(40))
    (tmp_path / "texts.tsv").write_text(lines)
    sections["text_file"] = {"path": str(tmp_path / "texts.tsv")}

    def held_out(seed: int, **settings) -> list[str]:
        data = DATA.build({"type": name, **sections[name], **settings}, "data", seed=seed)
        data.prepare()
        names = []
        for split in ("val", "test"):
            stored = getattr(data.splits[split], "images", data.splits[split])  # caption_folder's PerCaption
            items = getattr(stored, "items", stored)
            names.append(
                sorted(
                    str(i["image"] if "image" in i else i["text"]) if isinstance(i, dict) else str(i[0]) for i in items
                )
            )
        return names

    assert held_out(0) != held_out(1)  # unset, the run's seed draws the held-out examples
    assert held_out(1, split_seed=0) == held_out(0) and held_out(0, split_seed=1) == held_out(1)
    assert held_out(2, split_seed=5) == held_out(3, split_seed=5) == held_out(5)


def test_image_folder_problems_are_found_before_training_in_one_line(tmp_path):
    """Header checks find a missing size or an unreadable file at prepare time; damaged pixels behind a good header
    are named, file and all, when the image is read."""
    sections = image_folders(tmp_path)
    (tmp_path / "cls" / "c0" / "0.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"0.png: not a readable image$"):
        DATA.build({"type": "image_folder", **sections["image_folder"]}, "data", seed=0).prepare()
    from PIL import Image

    Image.new("RGB", (30, 20)).save(tmp_path / "seg" / "images" / "3.png")
    with pytest.raises(DataError, match=r"3.png: image is 20×30 \(H×W\), expected 20×24; .*data.resize=true"):
        DATA.build({"type": "segmentation_folder", **sections["segmentation_folder"]}, "data", seed=0).prepare()
    damaged = tmp_path / "cap" / "images" / "5.png"
    damaged.write_bytes(damaged.read_bytes()[:200])  # the header survives, the pixel data does not
    data = DATA.build({"type": "caption_folder", **sections["caption_folder"]}, "data", seed=0)
    data.prepare()
    with pytest.raises(DataError, match=r"5.png: not a readable image \(its pixel data is damaged\)"):
        [data.splits[s][i] for s in ("train", "val", "test") for i in range(len(data.splits[s]))]


@pytest.mark.parametrize("size", [203, 204])
def test_a_rank_draws_the_share_that_lightnings_distributed_wrapper_gives_it(size):
    """RankShuffle against the reference, Lightning's DistributedSamplerWrapper around the whole-order sampler:
    the same indices in the same order on every rank and epoch (padded by repeating the start)."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    from eeap.data.base import RankShuffle

    lengths = torch.randint(1, 40, (size,), generator=torch.Generator().manual_seed(0)).tolist()
    for epoch in (0, 2):
        for rank in range(3):
            ours = RankShuffle(size, 4, lengths, 8, ranks=3, rank=rank)
            # as Lightning builds it for a sampler that is not a RandomSampler: shuffle=False
            theirs = DistributedSamplerWrapper(
                EpochShuffle(size, 4, lengths, 8), num_replicas=3, rank=rank, shuffle=False
            )
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs) and len(ours) == len(theirs) == -(-size // 3)
    shares = [set(RankShuffle(size, 4, lengths, 8, ranks=3, rank=r)) for r in range(3)]
    assert set.union(*shares) == set(range(size))
