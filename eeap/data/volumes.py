"""Medical volumes: NIfTI files read with nibabel, brought to one orientation and voxel spacing, their intensities
windowed or standardised (what a 3D model reads at training, validation and predict alike), and label volumes
written back on the input's own grid, with its affine and header, so they open aligned in 3D Slicer or ITK-SNAP.

Arrays are channels first: an image (C, X, Y, Z) in the file's voxel axes after reorientation (RAS by default: X
runs to the right, Y to the front, Z up, so a fixed Z is an axial slice), a label volume (X, Y, Z) of class indices.
No Lightning and no data module here: ``eeap predict`` reads its inputs with these functions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from eeap.errors import DataError

SUFFIXES = (".nii.gz", ".nii")


def require(package: str, needed_for: str = "reading medical volumes") -> None:
    """Stop with one line naming EEAP's ``medical`` extra where ``package`` (nibabel, monai) is not installed."""
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise DataError(
            f"{needed_for} needs the package '{package}', which comes with EEAP's medical extra: "
            "pip install 'eeap[medical]'"
        )


@dataclass
class Intensity:
    """``data.intensity``: how voxel values are brought to the model's range, per channel, in this order.

    clip: [low, high]: values outside are set to the bound (a CT window, e.g. [-175, 250] HU for the abdomen).
    scale: [a, b]: then mapped linearly to [a, b], from [low, high] where clipped, else from the volume's own range.
    zscore: then standardised to mean 0, standard deviation 1 (MRI, whose values have no fixed unit).
    """

    clip: Optional[list[float]] = None
    scale: Optional[list[float]] = None
    zscore: bool = False

    def check(self, where: str) -> None:
        for key in ("clip", "scale"):
            value = getattr(self, key)
            if value is not None and (len(value) != 2 or not value[0] < value[1]):
                raise DataError(f"{where}.{key}: [low, high] with low < high, got {value}")
        if self.scale is not None and self.zscore:
            raise DataError(f"{where}: scale and zscore each set the values' range; give one")


@dataclass
class VolumeReading:
    """How a volume is read before a model sees it: kept with the model, so ``eeap predict`` reads scans as training
    read them.

    orientation: the voxel axes' directions as three letters (``RAS``: towards the right, anterior, superior; the
    convention of nibabel and 3D Slicer), or None to keep the file's.
    spacing: the voxel size in mm to resample to ([x, y, z]), or None to keep each file's.
    intensity: see ``Intensity``.
    """

    orientation: Optional[str] = "RAS"
    spacing: Optional[list[float]] = None
    intensity: Intensity = field(default_factory=Intensity)

    def state(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> VolumeReading:
        return cls(state["orientation"], state["spacing"], Intensity(**state["intensity"]))


def is_nifti(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


def load_nifti(path: Path) -> Any:
    """The NIfTI image at ``path`` (nibabel's; its voxels read when asked for), or one line saying why not."""
    require("nibabel")
    import nibabel as nib

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if not is_nifti(path):
        raise DataError(f"{path}: not a NIfTI file (volumes are read from .nii.gz or .nii files)")
    try:
        image: Any = nib.load(str(path))
    except Exception as e:  # noqa: BLE001  (a damaged or foreign file: one line)
        raise DataError(f"{path}: not a readable NIfTI file ({type(e).__name__})") from None
    if len(image.shape) not in (3, 4):
        raise DataError(f"{path}: a volume has 3 axes (or 4 with channels last), this one has shape {image.shape}")
    return image


def reoriented(image: Any, orientation: Optional[str]) -> Any:
    """The image with its voxel axes turned to ``orientation`` (e.g. ``RAS``); the same voxels, a changed affine."""
    if orientation is None:
        return image
    from nibabel import orientations

    try:
        target = orientations.axcodes2ornt(tuple(orientation))
    except Exception:  # noqa: BLE001
        raise DataError(
            f"data.orientation: '{orientation}' is not three axis letters (one of R/L, A/P, S/I each), e.g. RAS"
        ) from None
    current = orientations.io_orientation(image.affine)
    return image.as_reoriented(orientations.ornt_transform(current, target))


def voxels(image: Any, path: Path) -> np.ndarray:
    """The image's voxels as float32 (C, X, Y, Z): a 4D file's last axis is its channels."""
    try:
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as e:  # noqa: BLE001  (a truncated file decodes only here)
        raise DataError(f"{path}: the voxels could not be read ({type(e).__name__}); is the file complete?") from None
    return data[None] if data.ndim == 3 else np.moveaxis(data, -1, 0)


def zooms(image: Any) -> np.ndarray:
    """The voxel size in mm along the image's three voxel axes."""
    return np.asarray(image.header.get_zooms()[:3], dtype=np.float64)


def resampled_shape(shape: Sequence[int], spacing: Any, target: Sequence[float]) -> tuple[int, ...]:
    """The grid size that covers the same extent at the ``target`` spacing: round(shape · spacing / target)."""
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target))


def resample(volume: np.ndarray, size: Sequence[int], labels: bool = False) -> np.ndarray:
    """A (C, X, Y, Z) image trilinearly, or an (X, Y, Z) label volume by nearest neighbour, resampled to ``size``
    (voxel centres aligned, as ``align_corners=False``); the volume itself when it has that size already."""
    if tuple(volume.shape[-3:]) == tuple(size):
        return volume
    if labels:
        tensor = torch.from_numpy(np.ascontiguousarray(volume))[None, None].float()  # (1, 1, X, Y, Z)
        out = F.interpolate(tensor, size=tuple(size), mode="nearest-exact")
        return out[0, 0].numpy().astype(volume.dtype)
    tensor = torch.from_numpy(np.ascontiguousarray(volume))[None]  # (1, C, X, Y, Z)
    return F.interpolate(tensor, size=tuple(size), mode="trilinear", align_corners=False)[0].numpy()


def scale_intensity(volume: np.ndarray, intensity: Intensity) -> np.ndarray:
    """The (C, X, Y, Z) image's values clipped, scaled or standardised per channel (``Intensity``)."""
    out = volume.astype(np.float32, copy=True)
    for c in range(out.shape[0]):
        channel = out[c]
        low, high = float(channel.min()), float(channel.max())
        if intensity.clip is not None:
            low, high = intensity.clip
            np.clip(channel, low, high, out=channel)
        if intensity.scale is not None:
            a, b = intensity.scale
            channel[...] = a + (channel - low) * ((b - a) / (high - low)) if high > low else a
        if intensity.zscore:
            std = float(channel.std())
            channel[...] = (channel - channel.mean()) / (std if std > 0 else 1.0)
    return out


def foreground_box(volume: np.ndarray, margin: int) -> tuple[slice, slice, slice]:
    """The box around the voxels above each channel's minimum (the body, not the air around it), ``margin`` voxels
    wider on every side (within the volume)."""
    above = (volume > volume.reshape(volume.shape[0], -1).min(1)[:, None, None, None]).any(0)  # (X, Y, Z)
    if not above.any():
        return (slice(None),) * 3
    box = []
    for axis in range(3):
        hits = np.flatnonzero(above.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, above.shape[axis])))
    return tuple(box)  # type: ignore[return-value]


@dataclass
class Volume:
    """A volume as the model reads it: image (C, X, Y, Z) float32, its voxel size in mm (after resampling), the
    labels (X, Y, Z) where known, and what is needed to put a prediction back on the file's own grid."""

    image: np.ndarray
    spacing: np.ndarray
    labels: Optional[np.ndarray] = None
    source: Any = None  # the nibabel image as the file holds it
    grid: tuple[int, ...] = ()  # the reoriented volume's size before resampling


def read_volume(path: Path, reading: VolumeReading, label_path: Optional[Path] = None) -> Volume:
    """A NIfTI image (and its label volume) reoriented, resampled and scaled as ``reading`` says. The label volume
    must have the image's grid: its shape and affine (to 1e-3 mm), or one line says which differs."""
    source = load_nifti(path)
    image = reoriented(source, reading.orientation)
    array = voxels(image, path)  # (C, X, Y, Z)
    spacing = zooms(image)
    grid = tuple(array.shape[1:])
    labels = None
    if label_path is not None:
        label_source = load_nifti(label_path)
        if tuple(label_source.shape[:3]) != tuple(source.shape[:3]) or len(label_source.shape) != 3:
            raise DataError(
                f"{label_path}: labels of shape {tuple(label_source.shape)} for an image of shape "
                f"{tuple(source.shape)} ({path.name}); a label volume has the image's grid"
            )
        if not np.allclose(label_source.affine, source.affine, atol=1e-3):
            raise DataError(
                f"{label_path}: its affine differs from its image's ({path.name}): the two are not on the same grid "
                "(resample the labels to the image first)"
            )
        values = voxels(reoriented(label_source, reading.orientation), label_path)[0]
        if np.any(values < 0) or np.any(values != np.round(values)):
            raise DataError(f"{label_path}: label volumes hold class indices 0, 1, 2, ...; this one holds other values")
        labels = values.astype(np.int64)
    if reading.spacing is not None:
        size = resampled_shape(grid, spacing, reading.spacing)
        array = resample(array, size)
        labels = resample(labels, size, labels=True) if labels is not None else None
        spacing = spacing * np.asarray(grid) / np.asarray(size)  # the exact voxel size of the new grid
    array = scale_intensity(array, reading.intensity)
    return Volume(array, spacing, labels, source, grid)


def restore(array: np.ndarray, volume: Volume, orientation: Optional[str]) -> np.ndarray:
    """A prediction on the model's grid put back on the file's: class indices (X', Y', Z') resampled to the
    reoriented grid by nearest neighbour, or maps (K, X', Y', Z') of floats (probabilities, gate coefficients)
    trilinearly and returned as (X, Y, Z, K); then turned to the file's own axes."""
    from nibabel import orientations

    labels = array.ndim == 3
    out = resample(array, volume.grid, labels=labels)
    out = out if labels else np.moveaxis(out, 0, -1)  # (X, Y, Z[, K])
    if orientation is None:
        return out
    target = orientations.io_orientation(volume.source.affine)
    turned = orientations.ornt_transform(orientations.axcodes2ornt(tuple(orientation)), target)
    return np.ascontiguousarray(orientations.apply_orientation(out, turned))


def write_like(array: np.ndarray, volume: Volume, path: Path) -> None:
    """``array`` (X, Y, Z), or (X, Y, Z, K) maps, on the file's grid written as NIfTI with its affine and header (an
    integer type for class indices, float32 for maps, the data's scaling dropped)."""
    import nibabel as nib

    header = volume.source.header.copy()
    data = array.astype(np.uint8 if array.dtype.kind in "iub" and array.max(initial=0) < 256 else np.float32)
    header.set_data_dtype(data.dtype)
    if header.get_data_shape() != data.shape:
        header.set_data_shape(data.shape)
    image = nib.Nifti1Image(data, volume.source.affine, header)
    image.header.set_slope_inter(1, 0)
    nib.save(image, str(path))
