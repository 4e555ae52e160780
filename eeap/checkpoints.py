"""Reading a checkpoint written by ``eeap train``, checked: every load (predict, export, test, resume, ``eeap.load``)
goes through here, so a bad file ends in one line, never a traceback.

Checkpoints are read weights-only, whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says, so a crafted file cannot run
code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from eeap.errors import EEAPError


def read_checkpoint(path: str | Path, where: str, error: type[EEAPError], map_location: Any = "cpu") -> dict:
    """The checkpoint at ``path`` as a dict with model weights (``state_dict``) and EEAP's section (``eeap``, with the
    run's config); ``where`` starts each error line, ``error`` is its class."""
    import torch

    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001  (truncated, random bytes, pickled code: the same one line)
        raise error(f"{where} not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("eeap"), dict):
        raise error(f"{where} not a checkpoint written by eeap train (no 'eeap' section)")
    if "config" not in checkpoint["eeap"]:
        raise error(f"{where} not a checkpoint written by eeap train (no config in its 'eeap' section)")
    if not isinstance(checkpoint.get("state_dict"), Mapping):
        raise error(f"{where} not a checkpoint written by eeap train (no model weights, 'state_dict')")
    return checkpoint


def check_weights(ours: Mapping[str, Any], theirs: Mapping[str, Any], where: str, error: type[EEAPError]) -> None:
    """Refuse weights that do not fit the model: a tensor missing on either side, or of another shape. ``ours`` and
    ``theirs`` are state dicts (the model's, the checkpoint's)."""
    for key in sorted(set(ours) | set(theirs)):
        found = tuple(theirs[key].shape) if key in theirs else "missing"
        wanted = tuple(ours[key].shape) if key in ours else "not in this model"
        if found != wanted:
            raise error(
                f"{where} the checkpoint holds another model than this config builds ({key}: {found} in the "
                f"checkpoint, {wanted} here)"
            )
