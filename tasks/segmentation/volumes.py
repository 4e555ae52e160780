"""3D segmentation data: NIfTI volumes in the Medical Segmentation Decathlon layout or a plain folder, preprocessed
once and cached, trained on random patches and evaluated on whole volumes; and a seeded generator of CT-like volumes
written in the Decathlon layout, so the shipped config reads its data as a user's scans are read."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from eeap.config.loader import validate
from eeap.config.registry import DATA, Fraction, NonNegativeInt, PositiveFloat, PositiveInt
from eeap.data.base import CachedFiles, DataModule, write_generated
from eeap.data.volumes import Intensity, VolumeReading, is_nifti, read_volume
from eeap.errors import ConfigError, DataError
from eeap.tasks.segmentation.info import SegmentationInfo


def draw_patch(
    example: dict, generator: torch.Generator, size: Sequence[int], foreground: float, flip: bool, rotate: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random patch of ``size`` from a volume example (image (C, X, Y, Z), labels (X, Y, Z)), centred with
    probability ``foreground`` on a random labelled voxel and otherwise on any voxel (as MONAI's
    RandCropByPosNegLabel), kept inside the volume; then flipped along each axis with probability 1/2 and turned by
    a random multiple of 90° in the axial (X, Y) plane. Every draw comes from ``generator``."""
    image, labels = torch.as_tensor(example["image"]), torch.as_tensor(example["labels"])
    shape = labels.shape
    on_target = bool(torch.rand(1, generator=generator) < foreground)
    targets = torch.nonzero(labels.flatten()).flatten() if on_target else torch.empty(0, dtype=torch.long)
    if len(targets):
        flat = int(targets[torch.randint(len(targets), (1,), generator=generator)])
        centre: tuple = tuple(int(c) for c in np.unravel_index(flat, tuple(shape)))
    else:
        centre = tuple(int(torch.randint(n, (1,), generator=generator)) for n in shape)
    starts = [min(max(int(c) - s // 2, 0), n - s) for c, s, n in zip(centre, size, shape)]
    box = tuple(slice(a, a + s) for a, s in zip(starts, size))
    image, labels = image[(slice(None), *box)], labels[box]  # (C, *size), (*size)
    if flip:
        axes = [a for a, on in enumerate((torch.rand(3, generator=generator) < 0.5).tolist()) if on]
        if axes:
            image, labels = image.flip([a + 1 for a in axes]), labels.flip(axes)
    if rotate and size[0] == size[1]:
        turns = int(torch.randint(4, (1,), generator=generator))
        image, labels = image.rot90(turns, (1, 2)), labels.rot90(turns, (0, 1))
    return image.contiguous(), labels.contiguous()


class Repeated(Sequence):
    """Each example of ``examples`` ``times`` times in a row: several patches drawn per volume and epoch."""

    def __init__(self, examples: Sequence, times: int) -> None:
        self.examples, self.times = examples, times

    def __len__(self) -> int:
        return len(self.examples) * self.times

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.examples[index // self.times]


class VolumeData(CachedFiles, DataModule):
    """Base of 3D segmentation data: ``volume_pairs()`` names (image, label) files and the classes; each volume is
    read (``eeap.data.volumes.read_volume``: orientation, spacing, intensity), cropped to the body, and cached.
    Training draws random patches (``draw_patch``); validation and test read whole volumes, one at a time, which
    the model covers with a sliding window.

    # Parameters
    seed: supplied from the run's seed.
    patch_size: [X, Y, Z] voxels of a training patch (also the model's sliding window).
    batch_size: patches per training batch.
    samples_per_volume: patches drawn from each training volume per epoch.
    foreground: share of patches centred on a labelled voxel.
    flip, rotate: random flips along each axis, and 90° turns in the axial plane, of training patches.
    orientation, spacing, intensity: how volumes are read (``eeap.data.volumes.VolumeReading``); e.g. ``spacing:
        [1.5, 1.5, 2.0]`` mm and ``intensity: {clip: [-175, 250], scale: [0, 1]}`` for abdominal CT, or
        ``intensity: {zscore: true}`` for MRI.
    crop_foreground: crop each volume to the box around the body (voxels above the minimum), with ``margin`` voxels.
    val_fraction, test_fraction: held-out shares of the labelled volumes (at least one each).
    split_seed: the seed that draws the held-out volumes; unset, the run's seed. Set it to compare seeds on one test
        split.
    eval_batch_size: 1: validation and test volumes are read whole, one at a time.
    num_workers, cache, cache_dir: as for every data source.
    """

    info_class = SegmentationInfo

    def __init__(
        self,
        seed: int,
        patch_size: Sequence[PositiveInt] = (64, 64, 64),
        batch_size: PositiveInt = 2,
        samples_per_volume: PositiveInt = 4,
        foreground: Fraction = 0.5,
        flip: bool = True,
        rotate: bool = True,
        orientation: Optional[str] = "RAS",
        spacing: Optional[list[PositiveFloat]] = None,
        intensity: Optional[dict] = None,
        crop_foreground: bool = True,
        margin: NonNegativeInt = 4,
        val_fraction: Fraction = 0.2,
        test_fraction: Fraction = 0.2,
        num_workers: NonNegativeInt = 0,
        eval_batch_size: PositiveInt = 1,
        split_seed: Optional[NonNegativeInt] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed, batch_size, 1, num_workers, **kwargs)
        if eval_batch_size != 1:
            raise ConfigError(
                f"data.eval_batch_size: volumes are evaluated whole, one at a time (1), got {eval_batch_size}; "
                "model.inference.batch_size sets how many sliding windows run together"
            )
        if len(patch_size) != 3:
            raise ConfigError(
                f"data.patch_size: volumes take 3 sides [X, Y, Z], got {list(patch_size)} (2D images are read by "
                "segmentation_folder, shapes and cluttered_shapes)"
            )
        if spacing is not None and len(spacing) != 3:
            raise ConfigError(f"data.spacing: [x, y, z] in mm, got {list(spacing)}")
        settings = validate(dict(intensity or {}), Intensity, "data.intensity")
        settings.check("data.intensity")
        self.reading = VolumeReading(orientation, list(spacing) if spacing else None, settings)
        self.patch_size = [int(s) for s in patch_size]
        self.samples, self.foreground, self.flip, self.rotate = samples_per_volume, foreground, flip, rotate
        self.crop, self.margin, self.fractions = crop_foreground, margin, (val_fraction, test_fraction)
        self.split_seed = seed if split_seed is None else split_seed

    def volume_pairs(self) -> tuple[list[tuple[Path, Path]], list[str], int]:
        """The (image, label) files, the class names (background first) and the images' channels."""
        raise NotImplementedError

    def data_files(self) -> list[Path]:
        pairs, _, _ = self.volume_pairs()
        return [f for pair in pairs for f in pair]

    def make_splits(self) -> tuple[dict[str, Sequence], SegmentationInfo]:
        from eeap.data.volumes import foreground_box

        pairs, classes, channels = self.volume_pairs()
        if len(pairs) < 3:
            raise DataError(f"data: {len(pairs)} labelled volumes; at least 3 are needed (train, validation and test)")
        examples = []
        for image_file, label_file in pairs:
            volume = read_volume(image_file, self.reading, label_file)
            image, labels = volume.image, volume.labels
            assert labels is not None
            if image.shape[0] != channels:
                raise DataError(f"{image_file}: {image.shape[0]} channels, where the data set has {channels}")
            if labels.max() >= len(classes):
                raise DataError(
                    f"{label_file}: holds class index {int(labels.max())}, but only {len(classes)} classes are "
                    f"named: {classes}"
                )
            if self.crop:
                box = foreground_box(image, self.margin)
                image, labels = image[(slice(None), *box)], labels[box]
            small = [f"{n}<{s}" for n, s in zip(labels.shape, self.patch_size) if n < s]
            if small:
                raise DataError(
                    f"data.patch_size: {self.patch_size} is larger than {image_file.name} after resampling and "
                    f"cropping ({list(labels.shape)} voxels); choose a patch_size of at most its sides"
                )
            examples.append(
                {
                    "image": np.ascontiguousarray(image, dtype=np.float32),
                    "labels": np.ascontiguousarray(labels, dtype=np.int64),
                    "spacing": volume.spacing.astype(np.float32),
                    "name": image_file.name,
                }
            )
        order = list(range(len(examples)))
        random.Random(self.split_seed).shuffle(order)
        n_val = max(1, round(len(order) * self.fractions[0]))
        n_test = max(1, round(len(order) * self.fractions[1]))
        if n_val + n_test >= len(order):
            raise DataError(
                f"data: {len(order)} volumes leave none to train on after {n_val} validation and {n_test} test"
            )
        chosen = [examples[i] for i in order]
        splits: dict[str, Sequence] = {
            "val": chosen[:n_val],
            "test": chosen[n_val : n_val + n_test],
            "train": chosen[n_val + n_test :],
        }
        info = SegmentationInfo(classes, channels, tuple(self.patch_size), volume=self.reading.state())
        return splits, info

    def prepare(self) -> None:
        super().prepare()
        if not isinstance(self.splits["train"], Repeated):
            self.splits["train"] = Repeated(self.splits["train"], self.samples)

    def augment(self, example: Any, generator: torch.Generator) -> Any:
        return draw_patch(example, generator, self.patch_size, self.foreground, self.flip, self.rotate)

    def train_collate(self, examples: list) -> dict:
        """Patches (batch, C, X, Y, Z) and their labels (batch, X, Y, Z)."""
        return {"images": torch.stack([e[0] for e in examples]), "masks": torch.stack([e[1] for e in examples])}

    def collate(self, examples: list) -> dict:
        """Whole volumes, one at a time: images (1, C, X, Y, Z), masks (1, X, Y, Z), spacing (1, 3) in mm."""
        return {
            "images": torch.stack([torch.as_tensor(e["image"]) for e in examples]),
            "masks": torch.stack([torch.as_tensor(e["labels"]) for e in examples]),
            "spacing": torch.stack([torch.as_tensor(e["spacing"]) for e in examples]),
        }


def nifti_files(folder: Path) -> list[Path]:
    """The NIfTI files directly in ``folder``, sorted."""
    return sorted(f for f in folder.iterdir() if f.is_file() and is_nifti(f)) if folder.is_dir() else []


def stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nii")


def read_dataset_json(root: Path) -> dict:
    """``root/dataset.json`` of the Decathlon layout, checked for what training needs."""
    path = root / "dataset.json"
    if not path.is_file():
        raise DataError(f"data.root: {path} not found (the Decathlon layout: dataset.json, imagesTr/, labelsTr/)")
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise DataError(f"{path}: not valid JSON") from None
    for key in ("training", "labels"):
        if key not in meta:
            raise DataError(f"{path}: no '{key}' key (a Decathlon dataset.json has training, labels, modality)")
    entries = meta["training"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) and {"image", "label"} <= set(e) for e in entries):
        raise DataError(f"{path}: 'training' must be a list of {{image: ..., label: ...}} entries")
    return meta


@DATA.register("decathlon")
class DecathlonData(VolumeData):
    """Volumes in the Medical Segmentation Decathlon layout (what nnU-Net and MONAI read): ``root/dataset.json``
    listing ``training`` pairs of ``imagesTr/*.nii.gz`` and ``labelsTr/*.nii.gz``, its ``labels`` naming the classes
    and ``modality`` the channels (a 4D image holds one channel per modality, last). Validation and test volumes are
    held out of ``training`` (its ``test`` list has no labels: give those files to ``eeap predict``).

    # Parameters
    root: the folder holding ``dataset.json``.
    (the rest as for every volume source: see ``VolumeData``.)
    """

    def __init__(self, seed: int, root: str, **kwargs: Any) -> None:
        super().__init__(seed, **kwargs)
        self.root = Path(root)

    def volume_pairs(self) -> tuple[list[tuple[Path, Path]], list[str], int]:
        meta = read_dataset_json(self.root)
        pairs = [(self.root / e["image"], self.root / e["label"]) for e in meta["training"]]
        for image, label in pairs:
            if not image.is_file():
                raise DataError(f"{self.root / 'dataset.json'}: lists {image}, which is not there")
            if not label.is_file():
                raise DataError(f"{self.root / 'dataset.json'}: no label volume {label} for {image.name}")
        try:
            labels = {int(k): str(v) for k, v in meta["labels"].items()}
        except (AttributeError, ValueError):
            raise DataError(f"{self.root / 'dataset.json'}: 'labels' must map class indices to names") from None
        classes = [labels.get(i, f"class_{i}") for i in range(max(labels) + 1)]
        if len(classes) < 2:
            raise DataError(
                f"{self.root / 'dataset.json'}: 'labels' names {classes}; at least background and one class"
            )
        channels = len(meta.get("modality", {"0": "?"}))
        return pairs, classes, channels


@DATA.register("volume_folder")
class VolumeFolderData(VolumeData):
    """The user's volumes in a plain folder: ``root/images/NAME.nii.gz`` with ``root/labels/NAME.nii.gz``.

    # Parameters
    root: the folder holding ``images/`` and ``labels/``.
    classes: class names, background first (default: ``background`` and ``class_1`` … ``class_N``, N the largest index
        in the first label volume).
    channels: the images' channels (a 4D file holds them last).
    (the rest as for every volume source: see ``VolumeData``.)
    """

    def __init__(
        self, seed: int, root: str, classes: Optional[list[str]] = None, channels: PositiveInt = 1, **kwargs: Any
    ) -> None:
        super().__init__(seed, **kwargs)
        self.root, self.classes, self.channels = Path(root), classes, channels

    def volume_pairs(self) -> tuple[list[tuple[Path, Path]], list[str], int]:
        images_dir, labels_dir = self.root / "images", self.root / "labels"
        for folder in (images_dir, labels_dir):
            if not folder.is_dir():
                raise DataError(
                    f"data.root: folder not found: {folder} (expected {self.root}/images and {self.root}/labels "
                    "holding .nii.gz files of matching names)"
                )
        others = sorted(f.name for f in images_dir.iterdir() if f.is_file() and not is_nifti(f))
        if others:
            raise DataError(f"data.root: {images_dir / others[0]} is not a NIfTI file (.nii.gz or .nii)")
        labels = {stem(f): f for f in nifti_files(labels_dir)}
        images = nifti_files(images_dir)
        missing = [f.name for f in images if stem(f) not in labels]
        if missing:
            raise DataError(f"data.root: no label volume in {labels_dir} for {len(missing)} images, e.g. {missing[0]}")
        pairs = [(f, labels[stem(f)]) for f in images]
        classes = list(self.classes) if self.classes else []
        if not classes and pairs:
            from eeap.data.volumes import load_nifti

            largest = int(np.asarray(load_nifti(pairs[0][1]).dataobj).max())
            classes = ["background", *[f"class_{i}" for i in range(1, max(largest, 1) + 1)]]
        return pairs, classes, self.channels


# The generated CT-like volumes: Hounsfield units of air, fat, soft tissue and organs, and the target's neighbours.
AIR, FAT, TISSUE = -1000.0, -100.0, 40.0
VERSION = 1


def draw_ct_volume(rng: np.random.Generator, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """One CT-like volume (X, Y, Z) in HU and its labels: air around an elliptic body of fat and soft tissue, a few
    large organs of varying intensity and texture, a bright "vessel" tube running along Z, and small blobs of the
    target's intensity; the target (label 1) is the one blob that touches the vessel, as the pancreas is told from
    its neighbours by where it lies. Blobs elsewhere are distractors (label 0)."""
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"))  # (3, X, Y, Z)
    centre = np.asarray(shape, dtype=np.float32)[:, None, None, None] / 2
    radii = np.asarray([shape[0] * rng.uniform(0.40, 0.46), shape[1] * rng.uniform(0.32, 0.40), shape[2] * 0.6])
    body = (((grid - centre) / radii[:, None, None, None]) ** 2).sum(0) <= 1  # (X, Y, Z)
    volume = np.full(shape, AIR, dtype=np.float32)
    volume[body] = FAT + rng.normal(0, 15, body.sum())
    inner = (((grid - centre) / (0.85 * radii[:, None, None, None])) ** 2).sum(0) <= 1
    volume[inner] = TISSUE + rng.normal(0, 10, inner.sum())

    def blob(at: np.ndarray, size: np.ndarray) -> np.ndarray:
        return (((grid - at[:, None, None, None]) / size[:, None, None, None]) ** 2).sum(0) <= 1

    for _ in range(rng.integers(2, 4)):  # organs: liver-, spleen-, kidney-like regions
        at = centre[:, 0, 0, 0] + rng.uniform(-0.45, 0.45, 3) * radii * np.asarray([1, 1, 0.3])
        organ = blob(at, radii * rng.uniform(0.22, 0.35, 3)) & inner
        volume[organ] = rng.uniform(50, 110) + rng.normal(0, 12, organ.sum())
    vessel_at = centre[:, 0, 0, 0] + np.asarray(
        [rng.uniform(-0.25, 0.25) * radii[0], rng.uniform(-0.2, 0.2) * radii[1], 0]
    )
    tube = ((grid[:2] - vessel_at[:2, None, None, None]) ** 2).sum(0) <= (0.06 * shape[0]) ** 2
    volume[tube & inner] = 190 + rng.normal(0, 15, (tube & inner).sum())
    labels = np.zeros(shape, dtype=np.int64)
    target_hu = rng.uniform(60, 90)
    side = np.asarray(shape, dtype=np.float64) * 0.08
    offset = 0.06 * shape[0] + side[0] * 0.9  # just touching the tube
    angle = rng.uniform(0, 2 * np.pi)
    target_at = vessel_at + np.asarray(
        [offset * np.cos(angle), offset * np.sin(angle), rng.uniform(-0.15, 0.15) * shape[2]]
    )
    spots = [(target_at, 1)]
    for _ in range(rng.integers(2, 4)):  # distractors: the same intensity, away from the vessel
        for _attempt in range(20):
            at = centre[:, 0, 0, 0] + rng.uniform(-0.6, 0.6, 3) * radii * np.asarray([1, 1, 0.5])
            if np.hypot(*(at[:2] - vessel_at[:2])) > 0.3 * shape[0]:
                spots.append((at, 0))
                break
    for at, label in spots:
        region = blob(at, side * rng.uniform(0.9, 1.3, 3)) & inner
        volume[region] = target_hu + rng.normal(0, 10, region.sum())
        if label:
            labels[region] = label
    return np.clip(volume + rng.normal(0, 8, shape), -1024, 3071).astype(np.int16), labels


def write_ct_volumes(root: Path, count: int, shape: Sequence[int], spacing: Sequence[float], seed: int) -> None:
    """``count`` generated volumes in the Decathlon layout in ``root`` (``dataset.json``, ``imagesTr/``,
    ``labelsTr/``), written with nibabel once (``write_generated``: under a temporary name, renamed into place; a
    folder already made with the same settings is kept). The files are stored in LPS orientation (as DICOM
    converters write them) with anisotropic voxels, so reading them exercises reorientation and resampling."""
    import nibabel as nib

    def write(folder: Path) -> None:
        (folder / "imagesTr").mkdir()
        (folder / "labelsTr").mkdir()
        rng = np.random.default_rng(seed)
        affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])  # LPS: x to the left, y to the back
        affine[:3, 3] = [spacing[0] * shape[0] / 2, spacing[1] * shape[1] / 2, -spacing[2] * shape[2] / 2]
        entries = []
        for i in range(count):
            volume, labels = draw_ct_volume(rng, shape)
            name = f"ct_{i:03d}.nii.gz"
            nib.save(nib.Nifti1Image(volume, affine), str(folder / "imagesTr" / name))
            nib.save(nib.Nifti1Image(labels.astype(np.uint8), affine), str(folder / "labelsTr" / name))
            entries.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        meta = {
            "name": "ct_volumes",
            "description": "EEAP's generated CT-like volumes: a small target told from look-alikes by its neighbour",
            "tensorImageSize": "3D",
            "modality": {"0": "CT"},
            "labels": {"0": "background", "1": "target"},
            "numTraining": count,
            "numTest": 0,
            "training": entries,
            "test": [],
        }
        (folder / "dataset.json").write_text(json.dumps(meta, indent=1))

    settings = {"version": VERSION, "count": count, "shape": list(shape), "spacing": list(spacing), "seed": seed}
    write_generated(root, "ct_volumes.json", settings, "volumes", write)


@DATA.register("ct_volumes")
class CTVolumesData(DecathlonData):
    """Seeded CT-like volumes (``draw_ct_volume``), written in the Decathlon layout in ``root`` on first use and read
    back through the ``decathlon`` source; replace this section with ``{type: decathlon, root: ...}`` to train on
    your own scans.

    # Parameters
    root: where the set is written.
    volumes: how many (split into train, validation and test by the fractions).
    shape: [X, Y, Z] voxels of each generated volume.
    voxel_size: their voxel size in mm (anisotropic, as CT's thicker slices).
    volume_seed: the generator's seed (the set stays the same when the run's seed changes).
    (the rest as for every volume source: see ``VolumeData``.)
    """

    def __init__(
        self,
        seed: int,
        root: str = "data/ct_volumes",
        volumes: PositiveInt = 30,
        shape: Sequence[PositiveInt] = (64, 64, 32),
        voxel_size: Sequence[PositiveFloat] = (1.5, 1.5, 3.0),
        volume_seed: NonNegativeInt = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed, root, **kwargs)
        if len(shape) != 3 or len(voxel_size) != 3:
            raise ConfigError(
                f"data.shape and data.voxel_size: three values each, got {list(shape)} and {list(voxel_size)}"
            )
        self.count, self.shape, self.voxel_size, self.volume_seed = volumes, list(shape), list(voxel_size), volume_seed

    def volume_pairs(self) -> tuple[list[tuple[Path, Path]], list[str], int]:
        write_ct_volumes(self.root, self.count, self.shape, self.voxel_size, self.volume_seed)
        return super().volume_pairs()
