"""3D segmentation: the Attention U-Net's parts in 3D, NIfTI volumes read, resampled and scaled, patches, the
sliding window, per-volume scores, predicted label volumes on the scan's grid, and bad input in one line."""

import json
import math
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eeap.config.registry import ATTEND, DATA, TASK
from eeap.data.volumes import Intensity, VolumeReading, read_volume, resample, restore, scale_intensity, write_like
from eeap.errors import ConfigError, DataError
from eeap.model.metrics import PerVolume
from eeap.tasks.segmentation.info import SegmentationInfo
from eeap.tasks.segmentation.volumes import draw_patch
from tests.conftest import ROOT

VOLUMES = ROOT / "configs" / "segmentation" / "volumes.yaml"
READING = {"orientation": "RAS", "spacing": None, "intensity": {"clip": None, "scale": None, "zscore": False}}
LPS = np.array([[-1.5, 0, 0, 30.0], [0, -1.5, 0, 20.0], [0, 0, 3.0, -10.0], [0, 0, 0, 1]])


def volume_task(patch=(16, 16, 16), classes=("background", "target"), channels=1, **model):
    section = {
        "type": "segmentation",
        "encode": {"type": "unet_conv", "channels": [4, 8, 16]},
        "predict": {"type": "attention_unet"},
        **model,
    }
    info = SegmentationInfo(list(classes), channels, tuple(patch), volume=READING)
    return TASK.build(section, "model", info=info)


def save(path, array, affine=LPS):
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def test_3d_gate_by_hand():
    """α = σ(ψ(ReLU(θx + φg))) with 3D convolutions, φg resampled trilinearly to θx's grid and α to x's."""
    torch.manual_seed(0)
    gate = ATTEND.build(
        {"type": "attention_gate", "inter_channels": 2}, in_channels=3, gating_channels=5, spatial_dims=3
    ).eval()
    assert isinstance(gate.theta, torch.nn.Conv3d) and gate.theta.kernel_size == (2, 2, 2)
    x, g = torch.randn(2, 3, 8, 8, 8), torch.randn(2, 5, 4, 4, 4)
    with torch.no_grad():
        gate.psi.weight.zero_()
        gate.psi.bias.fill_(math.log(4.0))  # α = σ(log 4) = 0.8 everywhere
    out, alpha = gate(x, g)
    assert alpha.shape == (2, 1, 8, 8, 8) and torch.allclose(alpha, torch.full_like(alpha, 0.8))
    torch.testing.assert_close(out, gate.out(0.8 * x))
    gate.psi.weight.data.normal_()
    g = torch.randn(2, 5, 4, 4, 4)  # on θx's grid (stride 2): φg needs no resampling
    with torch.no_grad():
        _, alpha = gate(x, g)
        # by hand at coarse voxel (1, 2, 3): θ (kernel = stride = 2) reads x[..., 2:4, 4:6, 6:8]; φ and ψ are 1×1×1
        theta = (gate.theta.weight[None] * x[:, None, :, 2:4, 4:6, 6:8]).sum((2, 3, 4, 5))  # (batch, inter)
        phi = g[..., 1, 2, 3] @ gate.phi.weight.flatten(1).T + gate.phi.bias  # (batch, inter)
        voxel = torch.sigmoid(F.relu(theta + phi) @ gate.psi.weight.flatten() + gate.psi.bias)  # (batch,)
        coarse = torch.sigmoid(gate.psi(F.relu(gate.theta(x) + gate.phi(g))))  # (batch, 1, 4, 4, 4)
    torch.testing.assert_close(coarse[:, 0, 1, 2, 3], voxel)
    torch.testing.assert_close(alpha, F.interpolate(coarse, size=(8, 8, 8), mode="trilinear", align_corners=False))


def test_3d_unet_keeps_the_contract_pads_odd_sides_and_matches_channels_last():
    torch.manual_seed(0)
    task = volume_task().eval()
    assert all(isinstance(m, torch.nn.Conv3d) for m in [task.encoder.levels[0][0], task.decoder.head])
    volume = torch.randn(1, 1, 13, 16, 10)  # odd sides: padded to 16, cropped back
    logits, gates, aux = task(volume)
    assert logits.shape == (1, 1, 13, 16, 10) and aux == []
    assert [tuple(g.shape) for g in gates] == [(1, 1, 13, 16, 10), (1, 1, 7, 8, 5)]  # finest first
    assert all(0 < float(g.min()) and float(g.max()) < 1 for g in gates)
    fast = volume_task(channels_last=True).eval()
    fast.load_state_dict(task.state_dict())
    torch.testing.assert_close(fast(volume)[0], logits, atol=1e-5, rtol=1e-4)
    plain = volume_task(attend="none", predict={"type": "attention_unet", "upsample": "transposed", "block": "single"})
    assert plain.train()(torch.randn(2, 1, 16, 16, 16))[0].shape == (2, 1, 16, 16, 16)


def test_the_reader_gives_nibabels_voxels_and_orientation(tmp_path):
    data = np.random.default_rng(0).normal(size=(6, 5, 4)).astype(np.float32)
    path = save(tmp_path / "scan.nii.gz", data)
    kept = read_volume(path, VolumeReading(None))
    np.testing.assert_array_equal(kept.image[0], nib.load(str(path)).get_fdata(dtype=np.float32))
    np.testing.assert_allclose(kept.spacing, [1.5, 1.5, 3.0])
    ras = read_volume(path, VolumeReading("RAS"))
    canonical = nib.as_closest_canonical(nib.load(str(path)))
    np.testing.assert_array_equal(ras.image[0], canonical.get_fdata(dtype=np.float32))
    np.testing.assert_array_equal(ras.image[0], data[::-1, ::-1, :])  # LPS → RAS: x and y flipped
    four = save(tmp_path / "mri.nii.gz", np.stack([data, 2 * data], axis=-1))  # channels last, as MSD's
    both = read_volume(four, VolumeReading(None))
    assert both.image.shape == (2, 6, 5, 4)
    np.testing.assert_array_equal(both.image[1], 2 * data)


def test_resampling_and_intensity_by_hand(tmp_path):
    ramp = np.array([0.0, 1.0], dtype=np.float32).reshape(1, 2, 1, 1)
    # trilinear, voxel centres aligned: from 2 to 4 voxels the centres sit at 1/4, 3/4, 5/4, 7/4 of the old voxels
    np.testing.assert_allclose(resample(ramp, (4, 1, 1))[0, :, 0, 0], [0.0, 0.25, 0.75, 1.0])
    labels = np.array([0, 1, 2]).reshape(3, 1, 1)
    np.testing.assert_array_equal(resample(labels, (6, 1, 1), labels=True)[:, 0, 0], [0, 0, 1, 1, 2, 2])
    hu = np.array([-1000.0, -175.0, 37.5, 250.0, 3000.0], dtype=np.float32).reshape(1, 5, 1, 1)
    window = scale_intensity(hu, Intensity(clip=[-175, 250], scale=[0, 1]))
    np.testing.assert_allclose(window[0, :, 0, 0], [0.0, 0.0, 0.5, 1.0, 1.0])
    z = scale_intensity(np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32).reshape(1, 4, 1, 1), Intensity(zscore=True))
    np.testing.assert_allclose(z[0, :, 0, 0], np.array([-1.5, -0.5, 0.5, 1.5]) / math.sqrt(1.25), rtol=1e-6)
    # a 4×4×2 scan of 1.5 × 1.5 × 3 mm resampled to 3 mm: 2×2×2 voxels, the labels by nearest neighbour
    scan = np.arange(32, dtype=np.float32).reshape(4, 4, 2)
    marks = np.zeros((4, 4, 2), dtype=np.uint8)
    marks[2:, 2:, 1] = 1
    save(tmp_path / "s.nii.gz", scan, np.diag([1.5, 1.5, 3.0, 1.0]))
    save(tmp_path / "l.nii.gz", marks, np.diag([1.5, 1.5, 3.0, 1.0]))
    read = read_volume(tmp_path / "s.nii.gz", VolumeReading("RAS", [3.0, 3.0, 3.0]), tmp_path / "l.nii.gz")
    assert read.image.shape == (1, 2, 2, 2) and read.labels.shape == (2, 2, 2)
    np.testing.assert_allclose(read.spacing, [3.0, 3.0, 3.0])
    np.testing.assert_allclose(read.image[0, 0, 0], scan[0:2, 0:2].mean((0, 1)))  # the mean of each 2×2 block
    assert read.labels[1, 1, 1] == 1 and read.labels.sum() == 1


def test_patches_are_seeded_and_centred_on_the_target_as_often_as_asked():
    labels = np.zeros((32, 32, 32), dtype=np.int64)
    labels[28:30, 28:30, 28:30] = 1  # a small target in a corner
    example = {"image": np.random.default_rng(0).normal(size=(1, 32, 32, 32)).astype(np.float32), "labels": labels}

    def share(foreground, n=200):
        hits = 0
        for i in range(n):
            image, patch = draw_patch(example, torch.Generator().manual_seed(i), (8, 8, 8), foreground, True, True)
            assert image.shape == (1, 8, 8, 8) and patch.shape == (8, 8, 8)
            hits += bool(patch.any())
        return hits / n

    assert share(1.0) == 1.0
    assert share(0.0) < 0.1  # chance: the target is in few of the patches anywhere
    assert 0.4 <= share(0.5) <= 0.65
    a = draw_patch(example, torch.Generator().manual_seed(7), (8, 8, 8), 0.5, True, True)
    b = draw_patch(example, torch.Generator().manual_seed(7), (8, 8, 8), 0.5, True, True)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # flips and turns move image and labels together
    example["image"] = example["labels"][None].astype(np.float32)
    for i in range(20):
        image, patch = draw_patch(example, torch.Generator().manual_seed(i), (8, 8, 8), 1.0, True, True)
        assert torch.equal(image[0].long(), patch)


def test_the_sliding_window_covers_a_volume_as_its_windows_do():
    """Windows that tile the volume without overlap, constant weights: the logits are each window's own."""
    torch.manual_seed(0)
    task = volume_task(patch=(8, 8, 8), inference={"overlap": 0.0, "mode": "constant", "batch_size": 3}).eval()
    volume = torch.randn(1, 1, 16, 8, 8)
    with torch.no_grad():
        logits, gates = task.infer(volume)
        halves = [task(volume[:, :, :8])[0], task(volume[:, :, 8:])[0]]
    torch.testing.assert_close(logits, torch.cat(halves, dim=2))
    assert [tuple(g.shape) for g in gates] == [(1, 1, 16, 8, 8), (1, 1, 8, 4, 4)]
    gaussian = volume_task(patch=(8, 8, 8)).eval()  # overlapping, Gaussian-weighted: a blend within the windows'
    with torch.no_grad():
        one = gaussian(volume[:, :, :8])[0]
        assert torch.allclose(gaussian.infer(volume[:, :, :8])[0], one, atol=1e-5)  # one window: itself


def test_per_volume_dice_and_hd95_in_mm_by_hand():
    truth = torch.zeros(2, 10, 10, 10, dtype=torch.long)
    truth[:, 2:6, 2:6, 2:6] = 1
    predicted = torch.zeros_like(truth)
    predicted[0, 2:6, 2:6, 2:6] = 1  # volume 0: exact
    predicted[1, 3:7, 2:6, 2:6] = 1  # volume 1: shifted one voxel along x: Dice 2·48 / 128
    dice, hd = PerVolume(2, "dice"), PerVolume(2, "hd95")
    dice.update(predicted, truth)
    hd.update(predicted, truth, torch.tensor([[2.0, 1.0, 1.0], [2.0, 1.0, 1.0]]))
    assert float(dice.compute()) == pytest.approx((1 + 96 / 128) / 2)
    assert float(hd.compute()) == pytest.approx((0 + 2.0) / 2)  # one voxel of 2 mm along x
    empty = PerVolume(2, "hd95")
    empty.update(torch.zeros_like(truth[:1]), truth[:1], torch.ones(1, 3))
    assert math.isnan(float(empty.compute())) and float(empty.missed.sum()) == 1


def test_labels_are_put_back_on_the_scans_grid_with_its_affine(tmp_path):
    labels = np.zeros((8, 6, 4), dtype=np.uint8)
    labels[1:4, 2:5, 1:3] = 1
    scan = save(tmp_path / "scan.nii.gz", np.random.default_rng(0).normal(size=(8, 6, 4)).astype(np.float32))
    marks = save(tmp_path / "labels.nii.gz", labels)
    read = read_volume(scan, VolumeReading("RAS", [0.75, 0.75, 1.5]), marks)
    assert read.image.shape == (1, 16, 12, 8)  # twice as fine
    back = restore(read.labels, read, "RAS")
    np.testing.assert_array_equal(back, labels)
    write_like(back, read, tmp_path / "out.nii.gz")
    written = nib.load(str(tmp_path / "out.nii.gz"))
    np.testing.assert_array_equal(written.affine, nib.load(str(scan)).affine)
    np.testing.assert_array_equal(np.asarray(written.dataobj), labels)
    assert written.get_data_dtype() == np.uint8


def write_decathlon(root, count=4, shape=(20, 20, 12), labels=None):
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    entries = []
    for i in range(count):
        image = rng.normal(size=shape).astype(np.float32)
        mark = np.zeros(shape, dtype=np.uint8)
        mark[5:9, 5:9, 3:6] = 1
        save(root / "imagesTr" / f"v{i}.nii.gz", image)
        save(root / "labelsTr" / f"v{i}.nii.gz", mark)
        entries.append({"image": f"./imagesTr/v{i}.nii.gz", "label": f"./labelsTr/v{i}.nii.gz"})
    meta = {"labels": labels or {"0": "background", "1": "organ"}, "modality": {"0": "CT"}, "training": entries}
    (root / "dataset.json").write_text(json.dumps(meta))
    return meta


def prepared(section):
    data = DATA.build(section, "data", seed=0)
    data.prepare()
    return data


def test_decathlon_and_folder_sources_read_and_split(tmp_path):
    write_decathlon(tmp_path / "msd", count=5)
    data = prepared({"type": "decathlon", "root": str(tmp_path / "msd"), "patch_size": [8, 8, 8], "cache": False})
    info = data.info()
    assert info.classes == ["background", "organ"] and info.spatial_dims == 3 and info.image_size == (8, 8, 8)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [3 * 4, 1, 1]  # 4 patches a volume
    batch = next(iter(data.train_dataloader()))
    assert batch["images"].shape == (2, 1, 8, 8, 8) and batch["masks"].shape == (2, 8, 8, 8)
    whole = next(iter(data.val_dataloader()))
    assert whole["images"].shape[0] == 1 and whole["spacing"].tolist() == [[1.5, 1.5, 3.0]]
    folder = tmp_path / "folder"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for i in range(3):
        for kind in ("images", "labels"):
            (folder / kind / f"c{i}.nii.gz").write_bytes((tmp_path / "msd" / f"{kind}Tr" / f"v{i}.nii.gz").read_bytes())
    data = prepared({"type": "volume_folder", "root": str(folder), "patch_size": [8, 8, 8], "crop_foreground": False})
    assert data.info().classes == ["background", "class_1"]
    assert data.splits["val"][0]["image"].shape == (1, 20, 20, 12)


def test_split_seed_fixes_the_held_out_volumes(tmp_path):
    """Unset, the run's seed draws the held-out volumes; ``split_seed`` fixes them across run seeds."""
    write_decathlon(tmp_path / "msd", count=8, shape=(12, 12, 8))

    def held_out(seed, **settings):
        section = {"type": "decathlon", "root": str(tmp_path / "msd"), "patch_size": [8, 8, 8], "cache": False}
        data = DATA.build({**section, **settings}, "data", seed=seed)
        data.prepare()
        return [sorted(example["name"] for example in data.splits[split]) for split in ("val", "test")]

    assert held_out(0) != held_out(1)
    assert held_out(1, split_seed=0) == held_out(0) and held_out(0, split_seed=1) == held_out(1)


def one_line(call):
    with pytest.raises((DataError, ConfigError)) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_volumes_and_configs_are_one_line(tmp_path):
    root = tmp_path / "msd"
    meta = write_decathlon(root)
    section = {"type": "decathlon", "root": str(root), "patch_size": [8, 8, 8], "cache": False}
    (root / "labelsTr" / "v1.nii.gz").unlink()
    assert "no label volume" in one_line(lambda: prepared(section))
    save(root / "labelsTr" / "v1.nii.gz", np.zeros((20, 20, 10), dtype=np.uint8))
    assert "labels of shape (20, 20, 10) for an image of shape (20, 20, 12)" in one_line(lambda: prepared(section))
    save(root / "labelsTr" / "v1.nii.gz", np.zeros((20, 20, 12), dtype=np.uint8), np.diag([1.0, 1.0, 1.0, 1.0]))
    assert "affine differs" in one_line(lambda: prepared(section))
    save(root / "labelsTr" / "v1.nii.gz", np.zeros((20, 20, 12), dtype=np.uint8))
    big = {**section, "patch_size": [32, 8, 8]}
    assert "patch_size: [32, 8, 8] is larger than" in one_line(lambda: prepared(big))
    (root / "imagesTr" / "v0.nii.gz").write_bytes(b"not a volume")
    assert "not a readable NIfTI file" in one_line(lambda: prepared(section))
    (root / "imagesTr" / "v0.png").write_bytes(b"png")
    meta["training"][0]["image"] = "./imagesTr/v0.png"
    (root / "dataset.json").write_text(json.dumps(meta))
    assert "not a NIfTI file" in one_line(lambda: prepared(section))
    del meta["labels"]
    (root / "dataset.json").write_text(json.dumps(meta))
    assert "no 'labels' key" in one_line(lambda: prepared(section))
    assert "dataset.json not found" in one_line(lambda: prepared({**section, "root": str(tmp_path)}))
    assert "volumes take 3 sides" in one_line(lambda: prepared({**section, "patch_size": [8, 8]}))
    # a 2D part on 3D data, and 3D settings on 2D data
    smp = {"encode": {"type": "smp", "name": "resnet18", "depth": 3}}
    assert "works on 2D images only" in one_line(lambda: volume_task(**smp))
    assert "the data are 3D volumes" in one_line(lambda: volume_task(spatial_dims=2))
    flat = SegmentationInfo(["background", "a"], 3, (32, 32))
    model = {"type": "segmentation", "encode": {"type": "unet_conv"}, "predict": {"type": "attention_unet"}}
    assert "the data are 2D images" in one_line(lambda: TASK.build({**model, "spatial_dims": 3}, "model", info=flat))
    assert "sliding window is for volumes" in one_line(
        lambda: TASK.build({**model, "inference": {"overlap": 0.25}}, "model", info=flat)
    )


def test_volumes_config_trains_resumes_exactly_and_predicts_label_volumes(tiny, tmp_path):
    """A shrunk volumes.yaml: generated CT-like volumes, two epochs, once straight and once broken and resumed; then
    eeap predict writes a label volume on the scan's own grid and affine."""
    from eeap.training.run import train

    shrunk = [
        f"data.root={tmp_path / 'ct'}",
        "data.volumes=6",
        "data.shape=[32,32,16]",
        "data.patch_size=[16,16,16]",
        "data.samples_per_volume=2",
        "model.encode.channels=[4,8,16]",
        "early_stopping.stopping_threshold=null",
        "test=false",
    ]
    straight = train(tiny(*shrunk, "trainer.max_epochs=2", f"run_dir={tmp_path}/straight", config=VOLUMES))
    assert 0.0 <= straight["best/val/dice"] <= 1.0
    train(tiny(*shrunk, "trainer.max_epochs=1", f"run_dir={tmp_path}/broken", config=VOLUMES))
    train(tiny(*shrunk, "trainer.max_epochs=2", f"resume={tmp_path}/broken", config=VOLUMES))
    a = torch.load(tmp_path / "straight/checkpoints/last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "broken/checkpoints/last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    scan = tmp_path / "ct" / "imagesTr" / "ct_000.nii.gz"
    (tmp_path / "list.txt").write_text(f"{scan}\n{tmp_path / 'list.txt'}\n")
    result = subprocess.run(
        [sys.executable, "predict.py", str(tmp_path / "straight/checkpoints/last.ckpt"), "--input", str(tmp_path / "list.txt"),
         "--out-dir", str(tmp_path / "labels"), "--plot-attention", str(tmp_path / "gates"), "--maps"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1 and "not a NIfTI file" in result.stderr  # the second line is skipped
    written = nib.load(result.stdout.splitlines()[0])
    source = nib.load(str(scan))
    assert written.shape == source.shape and np.array_equal(written.affine, source.affine)
    assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1}
    assert (tmp_path / "gates" / "line00001.png").is_file()
    chance = nib.load(tmp_path / "labels" / "00001_ct_000_probability.nii.gz")  # --maps: the target's probability
    gate = nib.load(tmp_path / "labels" / "00001_ct_000_gate2.nii.gz")  # and each gate's map, on the scan's grid
    for made in (chance, gate):
        values = np.asarray(made.dataobj)
        assert made.shape == source.shape and np.array_equal(made.affine, source.affine)
        assert 0.0 <= values.min() and values.max() <= 1.0
    labels = np.asarray(written.dataobj)
    probability = np.asarray(chance.dataobj)
    decisive = np.abs(probability - 0.5) > 0.1  # away from the boundary, where resampling cannot flip a voxel
    agree = (labels == (probability > 0.5))[decisive].mean()  # the label volume is the thresholded probability
    assert decisive.sum() > 100 and agree > 0.99, (decisive.sum(), agree)  # two epochs: most voxels are near 0.5
    folder = subprocess.run(  # a folder of scans, and one scan itself, as --input
        [sys.executable, "-m", "eeap", "predict", str(tmp_path / "straight/checkpoints/last.ckpt"),
         "--input", str(tmp_path / "ct" / "labelsTr"), "--out-dir", str(tmp_path / "folder")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert folder.returncode == 0, folder.stderr
    assert len(folder.stdout.splitlines()) == 6 and len(list((tmp_path / "folder").glob("*.nii.gz"))) == 6
    one = subprocess.run(
        [sys.executable, "-m", "eeap", "predict", str(tmp_path / "straight/checkpoints/last.ckpt"),
         "--input", str(scan), "--out-dir", str(tmp_path / "one")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr
    np.testing.assert_array_equal(np.asarray(nib.load(one.stdout.strip()).dataobj), labels)
    explore_a_scan(tmp_path / "straight/checkpoints/last.ckpt", scan, labels)


def explore_a_scan(checkpoint, scan, labels):
    """eeap explore's page of the 3D model: an uploaded scan gives the three-plane figure and the label volume
    predict writes; a file that is not NIfTI gets a message."""
    pytest.importorskip("gradio", reason="the explore extra (pip install 'eeap[explore]')")
    from gradio_client import handle_file

    from tests.test_explore import client, start

    server, port = start(str(checkpoint))
    try:
        reach = client(f"http://127.0.0.1:{port}/")
        assert reach.predict(50, 50, 50, api_name="/slices") == (
            None,
            "Segment a scan first; then the sliders move the planes through it.",
        )
        planes, label_file, message, summary = reach.predict(handle_file(str(scan)), api_name="/segment_volume")
        assert message == "" and planes.endswith(".png")
        served = nib.load(label_file)
        assert np.array_equal(served.affine, nib.load(str(scan)).affine)
        np.testing.assert_array_equal(np.asarray(served.dataobj), labels)  # what eeap predict wrote
        assert summary["grid"] == list(labels.shape) and summary["voxel_mm"] == [1.5, 1.5, 3.0]
        assert summary["class_ml"]["target"] == pytest.approx(labels.sum() * 1.5 * 1.5 * 3.0 / 1000, abs=1e-3)
        # the sliders move the planes through the scan just segmented: another voxel, another figure
        first, note = reach.predict(0, 0, 100, api_name="/slices")
        other, _ = reach.predict(100, 100, 0, api_name="/slices")
        assert note == "" and first.endswith(".png") and Path(first).read_bytes() != Path(other).read_bytes()
        wrong = checkpoint.parent / "notes.txt"
        wrong.write_text("not a scan")
        assert "not a NIfTI file" in reach.predict(handle_file(str(wrong)), api_name="/segment_volume")[2]
        assert server.poll() is None
    finally:
        server.terminate()
        server.wait(timeout=30)


ARRANGEMENTS = [  # the paper's (bilinear, coarse gating, θ stride 2) and MONAI's (transposed, upsampled gating)
    ({"type": "attention_unet"}, {"type": "attention_gate"}),
    (
        {"type": "attention_unet", "upsample": "transposed", "gating": "upsampled"},
        {"type": "attention_gate", "subsample": 1},
    ),
]


@pytest.mark.parametrize("predict, attend", ARRANGEMENTS)
def test_checkpointing_gives_the_same_outputs_gradients_and_statistics(predict, attend):
    torch.manual_seed(0)
    plain = volume_task(predict=predict, attend=attend)
    saving = volume_task(predict=predict, attend=attend, checkpointing=True)
    saving.load_state_dict(plain.state_dict())
    assert saving.encoder.checkpointing and saving.decoder.checkpointing
    volume, truth = torch.randn(2, 1, 16, 16, 8), (torch.rand(2, 16, 16, 8) > 0.7).long()
    results = []
    for task in (plain, saving):
        task.train()
        logits, gates, _ = task(volume)
        task.loss(logits, truth).backward()
        results.append((logits.detach(), [g.detach() for g in gates], {n: p.grad for n, p in task.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b)
    for name, grad in results[0][2].items():
        torch.testing.assert_close(grad, results[1][2][name], atol=1e-6, rtol=1e-5)
    for (name, a), b in zip(plain.state_dict().items(), saving.state_dict().values()):
        assert torch.equal(a, b), name  # running means, variances and batch counts updated once, as without


def test_the_volume_figure_cuts_through_the_voxel_asked_for():
    from eeap.model.plotting import volume_figure

    image = np.zeros((1, 6, 5, 4), dtype=np.float32)
    mask = np.zeros((6, 5, 4), dtype=np.int64)
    mask[1, 1, 1] = 1  # the target's centre
    titles = lambda figure: [a.get_title() for a in figure.axes[::2]]  # noqa: E731  (each row's image: 2 panels a row)
    assert titles(volume_figure(image, [], [("predicted", mask)], 2)) == [
        "axial (z=1)",
        "coronal (y=1)",
        "sagittal (x=1)",
    ]
    moved = volume_figure(image, [], [("predicted", mask)], 2, centre=(5, 9, -2))  # outside: the nearest slice
    assert titles(moved) == ["axial (z=0)", "coronal (y=4)", "sagittal (x=5)"]


def test_maps_are_for_volume_models():
    from eeap.model.prediction import DecodeOptions

    flat = TASK.build(
        {
            "type": "segmentation",
            "encode": {"type": "unet_conv", "channels": [4, 8]},
            "predict": {"type": "attention_unet"},
        },
        "model",
        info=SegmentationInfo(["background", "a"], 3, (32, 32)),
    )
    assert "this model segments 2D images" in one_line(lambda: flat.check_options(DecodeOptions(maps=True)))
    volume_task().check_options(DecodeOptions(maps=True))


def test_checkpointing_needs_parts_that_have_it():
    section = {
        "type": "segmentation",
        "encode": {"type": "smp", "name": "resnet18", "depth": 3},
        "predict": {"type": "attention_unet"},
        "checkpointing": True,
    }
    info = SegmentationInfo(["background", "a"], 3, (32, 32))
    assert "'smp' has no per-level checkpointing" in one_line(lambda: TASK.build(section, "model", info=info))


def test_multichannel_multiclass_volumes_train_a_step(tmp_path):
    """Two MRI-like channels (a 4D file, channels last) and two foreground classes: read, batched, one loss and
    gradient step, scored per class."""
    root = tmp_path / "mri"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    entries = []
    for i in range(4):
        mark = np.zeros((16, 16, 12), dtype=np.uint8)
        mark[2:6, 2:6, 2:6], mark[9:13, 9:13, 5:9] = 1, 2
        save(root / "imagesTr" / f"m{i}.nii.gz", rng.normal(size=(16, 16, 12, 2)).astype(np.float32) + mark[..., None])
        save(root / "labelsTr" / f"m{i}.nii.gz", mark)
        entries.append({"image": f"./imagesTr/m{i}.nii.gz", "label": f"./labelsTr/m{i}.nii.gz"})
    meta = {"labels": {"0": "background", "1": "edema", "2": "tumour"}, "modality": {"0": "T1", "1": "FLAIR"}}
    (root / "dataset.json").write_text(json.dumps({**meta, "training": entries}))
    data = prepared(
        {"type": "decathlon", "root": str(root), "patch_size": [8, 8, 8], "intensity": {"zscore": True}, "cache": False}
    )
    info = data.info()
    assert info.channels == 2 and info.classes == ["background", "edema", "tumour"]
    image = data.splits["val"][0]["image"]
    np.testing.assert_allclose(image.reshape(2, -1).mean(1), 0, atol=1e-5)  # z-scored per channel
    task = volume_task(patch=(8, 8, 8), classes=info.classes, channels=2)
    batch = next(iter(data.train_dataloader()))
    loss, _ = task.training_loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and task.decoder.head.out_channels == 3
    metrics = task.new_metrics()
    with torch.no_grad():
        task.eval().evaluate(next(iter(data.val_dataloader())), "val", metrics)
    assert 0.0 <= float(metrics["dice"].compute()) <= 1.0 and metrics["dice"].count.shape == (2,)


def test_a_3d_step_in_bf16_mixed_precision_stays_near_float32():
    """What trainer.precision=bf16-mixed does to a step: autocast's bfloat16 convolutions, a loss and gradients near
    float32's."""
    torch.manual_seed(0)
    task = volume_task(patch=(8, 8, 8))
    volume, truth = torch.randn(2, 1, 16, 16, 8), (torch.rand(2, 16, 16, 8) > 0.7).long()
    losses, grads = [], []
    for mixed in (False, True):
        task.zero_grad()
        with torch.autocast("cpu", torch.bfloat16, enabled=mixed):
            logits, _, _ = task(volume)
            loss = task.loss(logits, truth)
        loss.backward()
        assert logits.dtype == (torch.bfloat16 if mixed else torch.float32)
        losses.append(float(loss))
        grads.append(torch.cat([p.grad.flatten() for p in task.parameters()]))
    assert losses[1] == pytest.approx(losses[0], rel=0.02)
    assert F.cosine_similarity(grads[0], grads[1], dim=0) > 0.95


def test_generated_volumes_are_written_once_and_a_folder_of_other_settings_is_refused(tmp_path):
    from eeap.tasks.segmentation.volumes import write_ct_volumes

    root = tmp_path / "ct"
    write_ct_volumes(root, 2, (24, 24, 12), (1.5, 1.5, 3.0), seed=0)
    made = (root / "imagesTr" / "ct_000.nii.gz").stat().st_mtime_ns
    write_ct_volumes(root, 2, (24, 24, 12), (1.5, 1.5, 3.0), seed=0)  # the same settings: kept as it is
    assert (root / "imagesTr" / "ct_000.nii.gz").stat().st_mtime_ns == made
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["labels"] == {"0": "background", "1": "target"} and len(meta["training"]) == 2
    image, labels = nib.load(root / "imagesTr" / "ct_000.nii.gz"), nib.load(root / "labelsTr" / "ct_000.nii.gz")
    assert nib.aff2axcodes(image.affine) == ("L", "P", "S") and image.header.get_zooms() == (1.5, 1.5, 3.0)
    assert np.asarray(labels.dataobj).any() and np.array_equal(image.affine, labels.affine)
    assert "generated with other settings" in one_line(
        lambda: write_ct_volumes(root, 2, (24, 24, 12), (1.5, 1.5, 3.0), 1)
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "scan.nii.gz").write_bytes(b"x")
    assert "not a folder of generated volumes" in one_line(
        lambda: write_ct_volumes(tmp_path / "mine", 2, (24, 24, 12), (1.5, 1.5, 3.0), 0)
    )
    assert not list(tmp_path.glob(".*.tmp-*"))  # no temporary folder left behind
