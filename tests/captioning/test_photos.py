"""Captioning real photo collections: Karpathy and COCO files, every reference, aspect-keeping crops, encoders from
local weight files, a frozen then fine-tuned encoder, the COCO results file, and the generated scenes config."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from eeap.config.registry import DATA, ENCODE
from eeap.data.images import read_image
from eeap.errors import ConfigError, DataError
from tests.conftest import ROOT

KARPATHY = ROOT / "configs" / "captioning" / "karpathy.yaml"
SMALL = [
    "data.train_size=24",
    "data.val_size=6",
    "data.test_size=6",
    "data.batch_size=16",
    "data.side=32",
    "data.image_size=[32,32]",
    "model.embed.dim=16",
    "model.predict.hidden=16",
    "model.predict.embed_dim=8",
    "model.beam_size=2",
]


def photo(path, height, width, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), colour).save(path)


def karpathy_folder(tmp_path, captions=None):
    """Six photos of different sizes in COCO's layout, with Karpathy's split file."""
    entries = []
    splits = ["train", "train", "restval", "val", "test", "test"]
    for i, split in enumerate(splits):
        folder = "train2014" if split in ("train", "restval") else "val2014"
        photo(tmp_path / "images" / folder / f"COCO_{i:012d}.jpg", 30 + 10 * i, 60, (40 * i, 0, 0))
        texts = (captions or {}).get(i) or [f"A photo number {i}.", f"picture {i} of red", "a red photo"]
        sentences = [{"tokens": t.lower().strip(".").split(), "raw": t} for t in texts]
        entries.append({"filepath": folder, "filename": f"COCO_{i:012d}.jpg", "split": split, "sentences": sentences})
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": entries, "dataset": "coco"}))
    return {"type": "karpathy", "file": str(tmp_path / "dataset_coco.json"), "images": str(tmp_path / "images")}


def test_karpathy_trains_on_every_caption_and_scores_each_image_against_all(tmp_path):
    section = {**karpathy_folder(tmp_path), "image_size": [32, 32], "min_freq": 1, "cache": False}
    data = DATA.build(section, "data", seed=0)
    data.prepare()
    assert len(data.splits["train"]) == 9  # three images (restval joins training) × three captions
    assert {e["name"] for e in data.splits["train"]} == {f"train2014/COCO_{i:012d}.jpg" for i in range(3)}
    assert len(data.splits["val"]) == 1 and len(data.splits["test"]) == 2  # one example per image
    val = data.splits["val"][0]
    assert val["references"] == ["a photo number 3", "picture 3 of red", "a red photo"]
    assert val["image"].shape == (3, 32, 32)
    batch = data.collate([data.splits["test"][0], data.splits["test"][1]])
    assert len(batch["references"]) == 2 and len(batch["references"][0]) == 3
    assert data.lengths("train") == [len(e["tgt"]) for e in data.splits["train"]]
    # min_freq 5 (the standard preprocessing): words seen fewer times are unknown
    data = DATA.build({**section, "min_freq": 5}, "data", seed=0)
    data.prepare()
    target = data.info().target  # "a", "red", "photo" six times each in training, "picture" and "number" three
    assert target.decode(target.encode("a red picture number")) == "a red <unk> <unk>"
    # restval left out
    data = DATA.build({**section, "restval": "none"}, "data", seed=0)
    data.prepare()
    assert len(data.splits["train"]) == 6


def test_karpathy_cache_stores_an_image_once_and_reads_back_the_same(tmp_path):
    section = {**karpathy_folder(tmp_path), "image_size": [32, 32], "min_freq": 1, "cache_dir": str(tmp_path / "c")}
    data = DATA.build(section, "data", seed=0)
    data.cache_settings = section
    data.prepare()
    again = DATA.build(section, "data", seed=0)
    again.cache_settings = section
    again.prepare()
    assert not again.prepared_here
    assert type(again.splits["train"].images).__name__ == "ArrowRows" and len(again.splits["train"].images) == 3
    for a, b in zip(data.splits["train"], again.splits["train"]):
        assert a["tgt_text"] == b["tgt_text"] and np.array_equal(a["image"], b["image"])
    assert again.lengths("train") == data.lengths("train")
    assert again.splits["val"][0]["references"] == data.splits["val"][0]["references"]


def test_photos_keep_their_aspect_ratio_and_are_centre_cropped(tmp_path):
    image = np.zeros((40, 80, 3), dtype=np.uint8)
    image[:, 20:60] = 255  # a white middle half
    Image.fromarray(image).save(tmp_path / "wide.png")
    cropped = read_image(tmp_path / "wide.png", 3, (20, 20), resize=False, crop=True)
    # scaled to 20×40 (aspect kept), the centre 20×20 cut: the white middle half of the width, all of it
    assert cropped.shape == (3, 20, 20) and cropped[:, :, 2:18].min() > 0.9
    stretched = read_image(tmp_path / "wide.png", 3, (20, 20), resize=True)
    assert stretched[:, :, 0].max() < 0.1 and stretched[:, :, 10].min() > 0.9  # squeezed: black sides stay


@pytest.mark.parametrize(
    "problem, match",
    [
        ("no_images", r"dataset_coco.json has no 'images' list; a Karpathy split file holds"),
        ("missing", r"data.images: 1 listed images are not in .*images, e.g. val2014/COCO_000000000003.jpg"),
        ("empty", r"caption 2 of train2014/COCO_000000000000.jpg is empty once tokenized \(''\)"),
        ("undecodable", r"COCO_000000000004.jpg: not a readable image"),
        ("not_json", r"data.file: .*dataset_coco.json is not JSON"),
    ],
)
def test_karpathy_bad_input_is_one_line(tmp_path, problem, match):
    section = {**karpathy_folder(tmp_path, {0: ["a photo", ""]} if problem == "empty" else None), "cache": False}
    file, images = tmp_path / "dataset_coco.json", tmp_path / "images"
    if problem == "no_images":
        file.write_text(json.dumps({"annotations": []}))
    elif problem == "missing":
        (images / "val2014" / "COCO_000000000003.jpg").unlink()
    elif problem == "undecodable":
        (images / "val2014" / "COCO_000000000004.jpg").write_bytes(b"not a jpeg")
    elif problem == "not_json":
        file.write_text("{")
    with pytest.raises(DataError, match=match):
        DATA.build(section, "data", seed=0).prepare()


def test_coco_captions_file_groups_an_images_captions(tmp_path):
    images, notes = [], []
    for i in range(10):
        photo(tmp_path / "train2014" / f"COCO_train2014_{i:012d}.jpg", 40, 50, (0, 20 * i, 0))
        images.append({"id": 100 + i, "file_name": f"COCO_train2014_{i:012d}.jpg"})
        notes += [{"image_id": 100 + i, "id": 2 * i + k, "caption": f"A Green Photo, number {i}."} for k in range(2)]
    (tmp_path / "captions.json").write_text(json.dumps({"images": images, "annotations": notes}))
    section = {
        "type": "coco",
        "annotations": str(tmp_path / "captions.json"),
        "images": str(tmp_path / "train2014"),
        "image_size": [32, 32],
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "cache": False,
    }
    data = DATA.build(section, "data", seed=0)
    data.prepare()
    assert len(data.splits["val"]) == 2 and len(data.splits["test"]) == 2 and len(data.splits["train"]) == 12
    assert data.splits["val"][0]["references"][0].startswith("a green photo, number")  # lower-cased
    notes.append({"image_id": 7, "id": 99, "caption": "lost"})
    (tmp_path / "captions.json").write_text(json.dumps({"images": images, "annotations": notes}))
    with pytest.raises(DataError, match="a caption of image_id 7 names no image"):
        DATA.build(section, "data", seed=0).prepare()
    notes.pop()
    (tmp_path / "captions.json").write_text(json.dumps({"images": images, "annotations": notes}))

    def held_out(seed, **settings):  # the run's seed draws the held-out images, unless split_seed fixes them
        data = DATA.build({**section, **settings}, "data", seed=seed)
        data.prepare()
        return [sorted(e["references"][0] for e in data.splits[split]) for split in ("val", "test")]

    assert held_out(0) != held_out(1)
    assert held_out(1, split_seed=0) == held_out(0) and held_out(0, split_seed=1) == held_out(1)


def test_encoder_weights_from_a_local_file_load_exactly(tmp_path):
    import timm
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    resnet = (
        torchvision.models.resnet18().eval()
    )  # a classifier's weights, its head included, as torchvision saves them
    torch.save(resnet.state_dict(), tmp_path / "resnet18.pth")
    encoder = ENCODE.build(
        {"type": "smp", "name": "resnet18", "weights": str(tmp_path / "resnet18.pth")}, "e", in_channels=3
    ).eval()
    assert torch.equal(encoder.encoder.layer4[1].conv2.weight, resnet.layer4[1].conv2.weight)
    x = torch.rand(2, 3, 64, 64)
    trunk = torch.nn.Sequential(*list(resnet.children())[:-2])
    assert torch.allclose(encoder(x)[-1], trunk(x), atol=1e-6)

    timm_model = timm.create_model("resnet10t").eval()
    save_file(timm_model.state_dict(), str(tmp_path / "resnet10t.safetensors"))
    section = {"type": "smp", "name": "tu-resnet10t", "weights": str(tmp_path / "resnet10t.safetensors")}
    encoder = ENCODE.build(section, "e", in_channels=3).eval()
    assert torch.allclose(encoder(x)[-1], timm_model.forward_features(x), atol=1e-6)
    gray = ENCODE.build(section, "e", in_channels=1)  # RGB weights summed for one channel, as timm adapts them
    assert torch.allclose(gray.encoder.model.conv1[0].weight, timm_model.conv1[0].weight.sum(1, keepdim=True))
    normalized = ENCODE.build({"type": "smp", "name": "resnet18", "normalize": True}, "e", in_channels=3)
    assert torch.allclose(normalized.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))

    broken = resnet.state_dict()
    del broken["layer2.0.bn1.weight"]
    torch.save(broken, tmp_path / "broken.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    for weights, name, match in [
        ("resnet10t.safetensors", "resnet18", r"lacks 64 of the 120 weights resnet18 has"),
        ("resnet18.pth", "resnet34", r"lacks 96 of the 216 weights resnet34 has"),
        ("broken.pth", "resnet18", r"lacks 1 of the 120 weights resnet18 has \(e.g. layer2.0.bn1.weight\)"),
        ("junk.pth", "resnet18", r"junk.pth is not a readable weights file"),
        ("absent.pth", "resnet18", r"file not found: .*absent.pth"),
    ]:
        with pytest.raises(ConfigError, match=match):
            ENCODE.build({"type": "smp", "name": name, "weights": str(tmp_path / weights)}, "e", in_channels=3)


def test_frozen_encoder_keeps_its_weights_until_fine_tuning_starts(tiny, tmp_path):
    from pathlib import Path

    from eeap.model.checkpoints import load_task
    from eeap.training.experiment import Experiment
    from eeap.training.run import train

    def encoder_state(task):
        return {k: v.clone() for k, v in task.embed.encoder.state_dict().items()}

    common = [*SMALL, f"data.root={tmp_path / 'scenes'}", "trainer.max_epochs=2", "model.finetune.freeze=true"]
    tuning = [*common, "model.finetune.lr=0.0001", "model.finetune.from_epoch=1"]
    fresh = Experiment(tiny(*tuning, config=KARPATHY)).build()[0].model
    start = encoder_state(fresh)  # the run's seed: the weights a run of this config starts from
    groups = fresh.parameter_groups()
    assert groups[1]["lr"] == 0.0001 and len(groups[1]["params"]) == len(list(fresh.embed.encoder.parameters()))
    assert fresh.embed.frozen and not fresh.embed.encoder.training  # frozen: batch norms in inference mode
    fresh.start_epoch(1)
    assert not fresh.embed.frozen

    frozen = train(tiny(*common, config=KARPATHY))  # frozen throughout
    task = load_task(Path(frozen["run_dir"]) / "checkpoints" / "last.ckpt")
    assert all(torch.equal(start[k], v) for k, v in encoder_state(task).items())  # batch-norm statistics too
    assert not torch.equal(task.embed.project.weight, fresh.embed.project.weight)  # the rest trained
    tuned = train(tiny(*common, "model.finetune.from_epoch=1", f"run_dir={tmp_path / 'tuned'}", config=KARPATHY))
    task = load_task(Path(tuned["run_dir"]) / "checkpoints" / "last.ckpt")
    assert any(not torch.equal(start[k], v) for k, v in encoder_state(task).items())  # trained from epoch 1

    with pytest.raises(ConfigError, match="model.finetune: embed 'cnn' has no pretrained encoder"):
        train(tiny(*common, "model.embed={type: cnn, channels: [8, 8]}", config=KARPATHY))


def test_scenes_config_trains_tests_every_metric_and_writes_coco_results(tiny, tmp_path):
    from eeap.training.run import train

    metrics = train(tiny(*SMALL, f"data.root={tmp_path / 'scenes'}", "trainer.max_epochs=1", config=KARPATHY))
    for name in ("bleu_1", "bleu_4", "rouge_l", "cider"):
        assert 0.0 <= metrics[f"test/{name}"] <= 10.0
    assert "best/val/cider" in metrics  # checkpoints follow CIDEr-D
    if "test/meteor" not in metrics:
        assert subprocess.run(["which", "java"], capture_output=True).returncode != 0
    listed = sorted((tmp_path / "scenes" / "images").glob("*.png"))[:3]
    (tmp_path / "list.txt").write_text("".join(f"{p}\n" for p in listed) + f"{tmp_path / 'absent.png'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "eeap", "predict", metrics["best_checkpoint"], "--input", str(tmp_path / "list.txt")]
        + ["--format", "coco", "--output", str(tmp_path / "results.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "line 4:" in result.stderr  # the missing image skipped, named
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["image_id"] for r in results] == [int(p.stem) for p in listed]
    assert all(isinstance(r["caption"], str) and r["caption"] for r in results)


def test_photo_augmentation_shifts_and_jitters_from_the_seeded_generator(tmp_path):
    section = {**karpathy_folder(tmp_path), "image_size": [32, 32], "min_freq": 1, "cache": False}
    image = np.zeros((3, 32, 32), dtype=np.float32)
    image[0, 10, 12] = 1.0
    shifted = DATA.build({**section, "shift": 3}, "data", seed=0)
    out = shifted.augment({"image": image, "tgt": [4]}, torch.Generator().manual_seed(5))
    dy, dx = torch.randint(-3, 4, (2,), generator=torch.Generator().manual_seed(5)).tolist()  # the same draw
    assert out["image"].shape == (3, 32, 32) and out["tgt"] == [4]
    assert out["image"][0, 10 + dy, 12 + dx] == 1.0 and out["image"].sum() == 1.0  # the content moved, nothing lost
    again = shifted.augment({"image": image, "tgt": [4]}, torch.Generator().manual_seed(5))
    assert np.array_equal(again["image"], out["image"])  # the same generator state, the same draw (exact resume)

    grey = np.full((3, 32, 32), 0.5, dtype=np.float32)
    jittered = DATA.build({**section, "jitter": 0.2}, "data", seed=0)
    out = jittered.augment({"image": grey}, torch.Generator().manual_seed(1))
    brightness = 1 + (torch.rand(2, generator=torch.Generator().manual_seed(1))[0].item() * 2 - 1) * 0.2
    assert np.allclose(out["image"], 0.5 * brightness)  # a flat image: contrast changes nothing, brightness scales
    plain = DATA.build(section, "data", seed=0)
    assert plain.augment({"image": image}, torch.Generator())["image"] is image
