"""Segmentation: shapes and folder data, the Attention U-Net decoder on both encoders, losses, metrics, predict.py."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from eeap.config.registry import DATA, TASK
from eeap.errors import ConfigError, DataError
from eeap.model.metrics import ForegroundIoU
from eeap.tasks.segmentation.data import SegmentationInfo, collate, flip, make_cluttered, make_shapes
from tests.conftest import QUIET, ROOT

SHAPES = ROOT / "configs" / "segmentation" / "shapes.yaml"
TINY = [
    "data.train_size=48",
    "data.val_size=8",
    "data.test_size=8",
    "data.image_size=32",
    "data.batch_size=8",
    "model.encode.channels=[8,16,32]",
]


def build_task(classes=("background", "a", "b"), channels=3, **model):
    section = {
        "type": "segmentation",
        "encode": {"type": "unet_conv", "channels": [8, 16, 32]},
        "predict": {"type": "attention_unet"},
        **model,
    }
    return TASK.build(section, "model", info=SegmentationInfo(list(classes), channels, (32, 32)))


def test_shapes_are_seeded_and_masks_cover_exactly_the_drawn_pixels():
    first = make_shapes(20, 32, ["circle", "rectangle", "triangle"], False, 1, 0.0, seed=3)
    again = make_shapes(20, 32, ["circle", "rectangle", "triangle"], False, 1, 0.0, seed=3)
    other = make_shapes(20, 32, ["circle", "rectangle", "triangle"], False, 1, 0.0, seed=4)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    for image, mask in first:  # one shape, no noise: its pixels have one colour, and it stands out from the rest
        assert image.shape == (3, 32, 32) and mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 1, 2, 3}
        inside = image[:, mask > 0]  # (3, pixels)
        assert inside.shape[1] > 0 and np.ptp(inside, axis=1).max() == 0
        colour = inside[:, :1]  # (3, 1)
        assert (np.abs(image[:, mask == 0] - colour).max(axis=0) > 0.05).all()
    labels = {int(m.max()) for _, m in make_shapes(30, 32, ["circle", "triangle"], False, 1, 0.0, seed=0)}
    assert labels == {1, 2}
    binary = make_shapes(10, 32, ["circle", "triangle"], True, 3, 0.0, seed=0)
    assert {int(v) for _, m in binary for v in np.unique(m)} == {0, 1}


def test_cluttered_masks_hold_the_targets_and_never_a_distractor():
    """Without noise every shape is one solid colour: the mask's pixels are the targets' colours (one to three per
    image), distractors show outside it in colours the mask never holds, and the set is seeded."""
    kinds = (["circle"], ["rectangle", "triangle"])
    first = make_cluttered(40, 48, *kinds, 3, 5, (0.06, 0.14), 0.0, seed=1)
    again = make_cluttered(40, 48, *kinds, 3, 5, (0.06, 0.14), 0.0, seed=1)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    distractor_pixels = 0
    for image, mask in first:
        assert image.shape == (3, 48, 48) and set(np.unique(mask)) <= {0, 1} and mask.any()
        colours, counts = np.unique(image.reshape(3, -1).T, axis=0, return_counts=True)
        solid = {tuple(c) for c, n in zip(colours, counts) if n >= 4}  # shapes; textured pixels are all distinct
        inside = {tuple(c) for c in image[:, mask == 1].T}
        assert 1 <= len(inside) <= 3 and inside <= solid
        outside = np.array([tuple(c) in solid - inside for c in image.reshape(3, -1).T]).reshape(48, 48)
        assert not (outside & (mask == 1)).any()
        distractor_pixels += int(outside.sum())
    assert distractor_pixels > 0
    sizes = [mask.mean() for _, mask in first]
    assert 0.005 < np.mean(sizes) < 0.1  # small objects
    with pytest.raises(DataError, match=r"data.distractors: \['circle'\] also in data.targets"):
        DATA.build({"type": "cluttered_shapes", "distractors": ["circle"]}, "data", seed=0)
    with pytest.raises(DataError, match="data.targets: unknown shape \\['star'\\]; allowed: circle"):
        DATA.build({"type": "cluttered_shapes", "targets": ["star"]}, "data", seed=0)


def test_flips_move_image_and_mask_together():
    image = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    mask = np.arange(4 * 5).reshape(4, 5)
    batch = collate([flip((image, mask), torch.Generator().manual_seed(i)) for i in range(16)])
    seen = set()
    for i in range(16):
        assert torch.equal(batch["images"][i, 0], batch["masks"][i].float())  # channel 0 is the mask's layout
        seen.add((bool(batch["masks"][i, 0, 0] == 4), bool(batch["masks"][i, 0, 0] == 15)))
    assert len(seen) >= 3  # horizontal, vertical, both or none all happen
    plain = collate([(image, mask)])
    assert torch.equal(plain["masks"][0], torch.as_tensor(mask))


def test_augmentation_draws_depend_on_seed_epoch_and_index_only():
    """An example's flips are the same in the same epoch whatever was drawn before (a resumed run, another worker)
    and change from epoch to epoch."""
    from eeap.data.base import Augmented, EpochShuffle

    examples = [(np.arange(16, dtype=np.float32).reshape(1, 4, 4), np.arange(16).reshape(4, 4))] * 8
    sampler = EpochShuffle(8, seed=3)
    data = Augmented(examples, flip, 3, sampler)
    first = [data[i][1] for i in range(8)]
    torch.manual_seed(123)  # the global random state plays no part
    again = [data[i][1] for i in reversed(range(8))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    sampler.set_epoch(1)
    assert not all(torch.equal(a, data[i][1]) for i, a in enumerate(first))


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def test_folder_data_reads_binary_masks_and_refuses_bad_folders(tmp_path):
    for i in range(5):
        write_png(tmp_path / "images" / f"img{i}.png", np.full((12, 10, 3), 40 * i))
        mask = np.zeros((12, 10))
        mask[2:6, 3:8] = 255
        write_png(tmp_path / "masks" / f"img{i}.png", mask)
    data = DATA.build({"type": "segmentation_folder", "root": str(tmp_path)}, "data", seed=0)
    data.prepare()
    assert data.info().classes == ["background", "foreground"] and data.info().image_size == (12, 10)
    assert sum(len(v) for v in data.splits.values()) == 5 and all(data.splits.values())
    image, mask = data.splits["train"][0]
    assert image.shape == (3, 12, 10) and mask.sum() == 20 and mask.max() == 1
    batch = next(iter(data.val_dataloader()))
    assert batch["images"].shape[1:] == (3, 12, 10) and batch["masks"].dtype == torch.long

    write_png(tmp_path / "masks" / "img4.png", np.full((12, 10), 7))  # index 7 with 2 named classes
    with pytest.raises(DataError, match="class index 7"):
        DATA.build(
            {"type": "segmentation_folder", "root": str(tmp_path), "classes": ["bg", "fg"]}, "data", seed=0
        ).prepare()
    write_png(tmp_path / "masks" / "img4.png", np.zeros((5, 5)))
    with pytest.raises(DataError, match="must match its image"):
        DATA.build({"type": "segmentation_folder", "root": str(tmp_path)}, "data", seed=0).prepare()
    (tmp_path / "masks" / "img4.png").unlink()
    with pytest.raises(DataError, match="no mask .* for 1 images, e.g. img4.png"):
        DATA.build({"type": "segmentation_folder", "root": str(tmp_path)}, "data", seed=0).prepare()
    with pytest.raises(DataError, match="folder not found"):
        DATA.build({"type": "segmentation_folder", "root": str(tmp_path / "nope")}, "data", seed=0).prepare()


def test_any_image_size_is_padded_and_cropped_back_and_gates_are_per_skip():
    task = build_task(predict={"type": "attention_unet", "deep_supervision": True}).train()
    logits, gates, aux = task(torch.rand(2, 3, 37, 45))
    assert logits.shape == (2, 3, 37, 45)
    assert [tuple(g.shape) for g in gates] == [(2, 1, 37, 45), (2, 1, 19, 23)]  # finest first, cropped
    assert len(aux) == 1 and aux[0].shape == logits.shape
    assert all(((g >= 0) & (g <= 1)).all() for g in gates)
    plain = build_task(attend="none").eval()
    _, gates, aux = plain(torch.rand(1, 3, 32, 32))
    assert gates == [] and aux == []
    with pytest.raises(ConfigError) as e:  # the role decides, not a list of names
        build_task(attend={"type": "additive"})
    assert str(e.value) == (
        "model.attend.type: 'additive' is a score attention, but here a U-Net skip gate is "
        "needed. Valid options: attention_gate"
    )


@pytest.mark.parametrize(
    "encode, predict, attend",
    [
        ({"downsample": "conv"}, {}, {}),
        ({}, {"upsample": "transposed"}, {}),
        ({}, {"block": "single", "deep_supervision": True}, {}),
        (
            {"downsample": "conv"},
            {"upsample": "transposed", "block": "single", "gating": "upsampled"},
            {"subsample": 1},
        ),
        ({}, {"gating": "upsampled"}, {}),
    ],
)
def test_unet_variants_keep_the_contract(encode, predict, attend):
    """Every arrangement (MONAI's strided convolutions, transposed upsampling, single blocks, gating after
    upsampling) gives logits at the input's size and one gate map per skip on the skip's grid, and trains."""
    task = build_task(
        encode={"type": "unet_conv", "channels": [8, 16, 32], **encode},
        predict={"type": "attention_unet", **predict},
        attend={"type": "attention_gate", **attend},
    ).train()
    logits, gates, aux = task(torch.rand(2, 3, 37, 45))
    assert logits.shape == (2, 3, 37, 45)
    assert [tuple(g.shape) for g in gates] == [(2, 1, 37, 45), (2, 1, 19, 23)]
    loss = task.loss(logits, torch.randint(0, 3, (2, 37, 45))) + sum(a.sum() for a in aux)
    loss.backward()
    assert all(p.grad is not None for p in task.parameters() if p.requires_grad)


def test_block_per_level_builds_each_levels_convolutions_finest_first():
    """``block: [single, double]`` (finest first, as ``decoder_channels``): the finest level merges with one 3×3
    convolution, the coarser with two; its output equals the modules' own arithmetic; a list of the wrong length is
    one line naming the levels."""
    task = build_task(
        encode={"type": "unet_conv", "channels": [8, 16, 32]},
        predict={"type": "attention_unet", "block": ["single", "double"]},
    ).eval()
    blocks = task.decoder.blocks  # coarse to fine
    convs = [[m for m in b.modules() if isinstance(m, torch.nn.Conv2d)] for b in blocks]
    assert [len(c) for c in convs] == [2, 1]  # the coarse level doubles, the finest is single
    assert [(c[0].in_channels, c[-1].out_channels) for c in convs] == [(32 + 16, 16), (16 + 8, 8)]
    same = [len([m for m in b.modules() if isinstance(m, torch.nn.Conv2d)]) for b in build_task().decoder.blocks]
    assert same == [2, 2]  # a single name applies to every level
    x = torch.rand(1, 24, 8, 8)  # the finest block alone: conv → BN (running statistics) → ReLU
    finest = blocks[1]
    conv, bn = finest[0], finest[1]
    by_hand = torch.relu(
        (torch.nn.functional.conv2d(x, conv.weight, padding=1) - bn.running_mean[:, None, None])
        / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
        * bn.weight[:, None, None]
        + bn.bias[:, None, None]
    )
    torch.testing.assert_close(finest(x), by_hand)
    with pytest.raises(ConfigError) as e:
        build_task(predict={"type": "attention_unet", "block": ["single", "double", "double"]})
    assert "model.predict" in str(e.value) and "a list of 2 of them" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        build_task(predict={"type": "attention_unet", "block": ["single", "triple"]})
    assert "model.predict.block" in str(e.value) and "'double'" in str(e.value)


def test_instance_norm_blocks_normalise_each_sample_by_its_own_statistics():
    """``norm: instance``: every decoder block normalises each sample over its own grid (with a learned scale and
    shift), by hand; so in training a sample's block output does not depend on the rest of the batch, as it does
    with BatchNorm."""
    torch.manual_seed(0)
    task = build_task(predict={"type": "attention_unet", "norm": "instance", "block": ["single", "double"]}).train()
    norms = [m for b in task.decoder.blocks for m in b.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert len(norms) == 3 and all(n.affine and n.num_groups == n.num_channels for n in norms)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for b in task.decoder.blocks for m in b.modules())
    finest = task.decoder.blocks[-1]  # conv → InstanceNorm → ReLU
    conv, norm = finest[0], finest[1]
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.rand(2, 24, 6, 7)
    y = torch.nn.functional.conv2d(x, conv.weight, padding=1)  # (2, 8, 6, 7)
    mean, var = y.mean((2, 3), keepdim=True), y.var((2, 3), unbiased=False, keepdim=True)  # (2, 8, 1, 1) each
    by_hand = torch.relu(
        (y - mean) / torch.sqrt(var + norm.eps) * norm.weight[:, None, None] + norm.bias[:, None, None]
    )
    torch.testing.assert_close(finest(x), by_hand)
    reference = torch.nn.InstanceNorm2d(8, affine=True)  # torch's own instance norm, with the same scale and shift
    reference.load_state_dict({"weight": norm.weight, "bias": norm.bias}, strict=False)
    torch.testing.assert_close(norm(y), reference(y))
    other = torch.cat([x[:1], torch.rand(1, 24, 6, 7) * 5])  # the same first sample beside a different second one
    torch.testing.assert_close(finest(other)[0], finest(x)[0])
    batch = build_task(predict={"type": "attention_unet", "block": "single"}).train().decoder.blocks[-1]
    assert not torch.allclose(batch(other)[0], batch(x)[0])  # BatchNorm's statistics mix the batch
    logits, _, _ = task(torch.rand(2, 3, 32, 32))
    task.loss(logits, torch.randint(0, 3, (2, 32, 32))).backward()
    assert all(p.grad is not None for p in task.parameters() if p.requires_grad)


def test_strided_encoder_levels_are_their_convolutions_by_hand():
    """``downsample: conv``: level i is conv(stride 2) → BN → ReLU → conv → BN → ReLU of level i − 1, no pooling;
    ``maxpool``: the same convolutions (stride 1) after 2×2 max pooling."""
    from eeap.config.registry import ENCODE

    F = torch.nn.functional
    torch.manual_seed(0)
    for downsample in ("conv", "maxpool"):
        encoder = ENCODE.build(
            {"type": "unet_conv", "channels": [4, 6, 8], "downsample": downsample}, in_channels=3
        ).eval()
        images = torch.rand(2, 3, 16, 16)
        features = encoder(images)
        assert [tuple(f.shape) for f in features] == [(2, 4, 16, 16), (2, 6, 8, 8), (2, 8, 4, 4)]
        for i in (1, 2):
            conv1, bn1, _, conv2, bn2, _ = encoder.levels[i]
            x = features[i - 1] if downsample == "conv" else F.max_pool2d(features[i - 1], 2)
            x = F.relu(bn1(F.conv2d(x, conv1.weight, stride=2 if downsample == "conv" else 1, padding=1)))
            x = F.relu(bn2(F.conv2d(x, conv2.weight, padding=1)))
            torch.testing.assert_close(features[i], x)


def test_transposed_upsampling_spreads_each_pixel_over_its_kernel_by_hand():
    """A 3×3 transposed convolution with stride 2 (padding 1, output padding 1) sends input pixel (i, j) to output
    pixels (2i − 1 + a, 2j − 1 + b) weighted by kernel[a, b]: a single 1 at (1, 1) gives the kernel at rows and
    columns 1–3 of the doubled grid, and zero elsewhere."""
    from eeap.predict.unet import transposed_up

    up = transposed_up(1, 1).eval()  # BatchNorm in eval with fresh statistics: the identity (up to its ε)
    with torch.no_grad():
        up[0].weight.copy_(torch.arange(1.0, 10.0).view(1, 1, 3, 3))
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0
    expected = torch.zeros(8, 8)
    expected[1:4, 1:4] = torch.arange(1.0, 10.0).view(3, 3)
    scale = 1 / (1 + up[1].eps) ** 0.5
    torch.testing.assert_close(up(x)[0, 0], expected * scale)
    from eeap.config.registry import PREDICT

    sizes = {"encoder_channels": [8, 16, 32], "num_classes": 1}  # a pyramid that skips a resolution
    with pytest.raises(ConfigError, match=r"upsample: 'transposed' .* encoder's strides are \[2, 8, 16\]"):
        PREDICT.build(
            {"type": "attention_unet", "upsample": "transposed"}, "model.predict", encoder_strides=[2, 8, 16], **sizes
        )
    PREDICT.build({"type": "attention_unet"}, "model.predict", encoder_strides=[2, 8, 16], **sizes)  # bilinear: any


def test_padding_does_not_change_what_the_model_sees_inside():
    """A 32×32 image (no padding needed) gives the same logits as the model run on the padded version by hand."""
    task = build_task().eval()
    image = torch.rand(1, 3, 30, 29)
    padded = torch.nn.functional.pad(image, (0, 3, 0, 2), mode="replicate")  # to 32 × 32
    torch.testing.assert_close(task(image)[0], task(padded)[0][..., :30, :29])


def test_smp_encoder_by_name_and_clear_errors():
    task = build_task(encode={"type": "smp", "name": "resnet18", "depth": 3}).eval()
    logits, gates, _ = task(torch.rand(1, 3, 40, 40))
    assert logits.shape == (1, 3, 40, 40) and len(gates) == 2  # strides 2, 4, 8: two skips, then up to full size
    with pytest.raises(ConfigError, match="unknown smp encoder 'resnet81'; did you mean resnet18"):
        build_task(encode={"type": "smp", "name": "resnet81"})
    with pytest.raises(ConfigError, match="Wrong pretrained weights `bogus`"):
        build_task(encode={"type": "smp", "name": "resnet18", "weights": "bogus"})


def test_pretrained_weights_offline_fail_with_one_line(tmp_path):
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "TORCH_HOME": str(tmp_path / "torch"),
        "PATH": "/usr/bin:/bin",
        "WANDB_MODE": "offline",
    }
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            str(SHAPES),
            "model.encode={type: smp, weights: imagenet}",
            f"run_dir={tmp_path / 'run'}",
            *QUIET,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: model.encode: weights: could not load 'imagenet'")
    assert "a local weights file (weights: path/to/file.safetensors) or null" in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_loss_and_metrics_by_hand():
    task = build_task(classes=("background", "fg"))
    logits = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])  # (1, 1, 2, 2): binary, one channel
    masks = torch.tensor([[[1, 0], [0, 0]]])
    p = logits.sigmoid().flatten()
    t = masks.float().flatten()
    dice = 1 - 2 * (p * t).sum() / (p.sum() + t.sum())
    bce = -(t * p.log() + (1 - t) * (1 - p).log()).mean()
    torch.testing.assert_close(task.loss(logits, masks), dice + bce)
    predicted = task.classes_of(logits)  # [[1, 0], [1, 0]]: 1 true positive, 1 false positive
    assert predicted.tolist() == [[[1, 0], [1, 0]]]
    metrics = task.new_metrics()  # one split's, as the trainer makes them
    assert list(metrics) == task.metric_names()[1:]
    metrics["dice"].update(predicted, masks)
    metrics["iou"].update(predicted, masks)
    assert metrics["dice"].compute().item() == pytest.approx(2 / 3)  # 2·1 / (2 + 1)
    assert metrics["iou"].compute().item() == pytest.approx(1 / 2)  # 1 / (2 + 1 − 1)

    multi = build_task()  # three classes: softmax, Dice over the two foreground classes
    predicted = torch.tensor([[[1, 1, 2, 0]]])
    truth = torch.tensor([[[1, 2, 2, 0]]])
    dice = multi.new_metrics()["dice"]
    dice.update(predicted, truth)
    assert dice.compute().item() == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_iou_is_pooled_over_the_split_like_dice():
    """Image A: class 1 right at its one pixel. Image B: class 1 (2 pixels) missed, predicted on a class-2 pixel;
    class 2 (2 pixels) found at one. Pooled: class 1 1/(1 + 3) = 1/4, class 2 1/2; mean 3/8. A per-image mean
    (torchmetrics' MeanIoU) would give mean(1, 0, 1/2) = 1/2."""
    iou = ForegroundIoU(3)
    predicted = torch.tensor([[[1, 0, 0, 0]], [[0, 0, 1, 2]]])  # (2, 1, 4)
    truth = torch.tensor([[[1, 0, 0, 0]], [[1, 1, 2, 2]]])
    iou.update(predicted[:1], truth[:1])
    iou.update(predicted[1:], truth[1:])
    assert iou.compute().item() == pytest.approx((1 / 4 + 1 / 2) / 2)
    single = ForegroundIoU(2)
    single.update(torch.tensor([[[1, 0], [1, 0]]]), torch.tensor([[[1, 0], [0, 0]]]))
    assert single.compute().item() == pytest.approx(1 / 2)  # one class: Dice 2/3 = 2 IoU / (1 + IoU)
    assert ForegroundIoU(3).compute().item() == 0.0  # nothing seen yet


def test_train_then_predict_masks_and_gate_maps(tiny, tmp_path):
    from eeap.training.run import train

    metrics = train(tiny(*TINY, "data.binary=false", "trainer.max_epochs=2", "model.plot_examples=1", config=SHAPES))
    assert 0.0 <= metrics["test/dice"] <= 1.0 and "test/iou" in metrics
    assert list((tmp_path / "run" / "figures").glob("val_attention_0-*.png"))
    write_png(tmp_path / "a.png", np.random.default_rng(0).integers(0, 255, (27, 35, 3)))
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'a.png'}\n\n{tmp_path / 'missing.png'}\n")
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    result = subprocess.run(
        [
            sys.executable,
            "predict.py",
            str(ckpt),
            "--input",
            str(tmp_path / "list.txt"),
            "--out-dir",
            str(tmp_path / "masks"),
            "--plot-attention",
            str(tmp_path / "gates"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1  # two lines skipped
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[1:] == ["", ""]
    mask = np.asarray(Image.open(lines[0]))
    assert mask.shape == (27, 35) and mask.max() <= 3
    assert (tmp_path / "gates" / "line00001.png").is_file()
    assert (
        "line 2: empty input" in result.stderr
        and "line 3:" in result.stderr
        and "missing.png: image file not found" in result.stderr
    )


def test_shapes_config_learns(tiny):
    """A shrunk shapes.yaml: binary masks of two shapes on 32×32 images, a few epochs, well above chance."""
    from eeap.training.run import train

    metrics = train(
        tiny(
            *TINY,
            "data.train_size=384",
            "data.val_size=32",
            "data.test_size=64",
            "data.binary=true",
            "data.batch_size=16",
            "trainer.max_epochs=10",
            "model.optim.lr=0.01",
            config=SHAPES,
        )
    )
    assert metrics["test/dice"] > 0.8


def test_folder_config_trains_on_a_users_folder(tiny, tmp_path):
    from eeap.training.run import train

    rng = np.random.default_rng(0)
    for i in range(6):
        image = rng.integers(0, 60, (20, 24, 3))
        mask = np.zeros((20, 24))
        mask[4:12, 5 + i : 15 + i] = 2
        mask[14:18, 2:6] = 1
        image[mask == 2] = 200
        write_png(tmp_path / "data" / "images" / f"{i}.jpg", image)
        write_png(tmp_path / "data" / "masks" / f"{i}.png", mask)
    metrics = train(
        tiny(
            f"data.root={tmp_path / 'data'}",
            "trainer.max_epochs=1",
            "model.encode.depth=3",
            "model.predict.decoder_channels=[8,16]",
            config=ROOT / "configs" / "segmentation" / "folder.yaml",
        )
    )
    assert metrics["steps"] == 1 and 0.0 <= metrics["test/dice"] <= 1.0


def test_cluttered_config_trains_with_and_without_gates(tiny, tmp_path):
    """configs/segmentation/cluttered.yaml, shrunk: one epoch with the attention gates and one without."""
    from eeap import build
    from eeap.training.run import train

    cluttered = ROOT / "configs" / "segmentation" / "cluttered.yaml"
    task, data = build(tiny(*TINY, config=cluttered))
    assert data.info().classes == ["background", "circle"] and len(task.model.decoder.gates) == 2
    for attend in ("{type: attention_gate}", "none"):
        keys = [*TINY, "trainer.max_epochs=1", f"model.attend={attend}", f"run_dir={tmp_path / attend[:4]}"]
        metrics = train(tiny(*keys, config=cluttered))
        assert 0 <= metrics["test/dice"] <= 1
