"""Reading a checkpoint written by ``eeap train``, checked: every load (predict, export, test, resume, ``eeap.load``)
goes through here, so a bad file ends in one line, never a traceback; ``load_task`` rebuilds the trained task.

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


PREFIX = (
    "model."  # where a training checkpoint keeps the task's weights (``eeap.training.module.TrainingModule.model``)
)


def model_weights(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's weights as the task's own state dict: without the trainer's ``model.`` prefix (checkpoints
    written before the trainer wrapped the task have none)."""
    if state_dict and all(key.startswith(PREFIX) for key in state_dict):
        return {key[len(PREFIX) :]: value for key, value in state_dict.items()}
    return dict(state_dict)


def training_weights(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's weights as the trainer's state dict (``model.`` before each of the task's keys)."""
    return {PREFIX + key: value for key, value in model_weights(state_dict).items()}


WEIGHTS, CONFIG, DATA_STATE, CARD = "model.safetensors", "config.yaml", "data.json", "README.md"  # a model folder


def load_task(path: str | Path, map_location: Any = "cpu") -> Any:
    """Rebuild a task from a checkpoint written by ``eeap train`` (config and vocabularies travel inside it), or from
    a model folder (``eeap export CHECKPOINT --format folder``: safetensors weights, the config, the data state)."""
    from eeap.errors import DataError

    path = Path(path)
    if path.is_dir():
        return load_folder(path, map_location)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    checkpoint = read_checkpoint(path, f"{path}:", DataError, map_location)
    return restore_task(checkpoint, checkpoint["eeap"]["config"], f"{path}:")


def restore_task(checkpoint: dict, config: dict, where: str) -> Any:
    """The task ``config`` (a run config; the checkpoint's own, or it with overrides) builds for the checkpoint's
    data state (vocabularies: read by the checkpoint's own data type), with the checkpoint's weights, checked to fit;
    in eval mode."""
    from eeap.errors import DataError

    task = build_task(config, checkpoint["eeap"]["data_state"])
    weights = model_weights(checkpoint["state_dict"])
    check_weights(task.state_dict(), weights, where, DataError)
    task.load_state_dict(weights)
    return task.eval()


def build_task(config: dict, state: dict) -> Any:
    """The untrained task a run config builds for a data state (vocabularies, classes), carrying both."""
    from eeap import kernels
    from eeap.config.registry import TASK

    kernels.use(config.get("kernels", "auto"))
    info = TASK.get(config["model"]["type"], "model.type").info_class.from_state(state)  # not the data module's
    task = TASK.build(config["model"], "model", info=info)
    task.eeap_config, task.eeap_data_state = config, state
    return task


def load_folder(folder: Path, map_location: Any = "cpu") -> Any:
    """A task from a model folder: ``config.yaml`` (the run's config as built), ``data.json`` (its data state) and
    ``model.safetensors`` (its weights, read without unpickling anything), checked to fit; in eval mode."""
    import json

    import yaml
    from safetensors import SafetensorError
    from safetensors.torch import load_file, load_model

    from eeap.errors import DataError

    where = f"{folder}:"
    if not (folder / WEIGHTS).is_file():
        raise DataError(
            f"{where} not a model folder (no {WEIGHTS}); give a .ckpt, or write a folder with "
            "eeap export CHECKPOINT --format folder --out DIR"
        )
    try:
        config = yaml.safe_load((folder / CONFIG).read_text(encoding="utf-8"))
        state = json.loads((folder / DATA_STATE).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(f"{where} the model folder has no {Path(str(e.filename)).name}") from None
    except (ValueError, yaml.YAMLError) as e:  # JSON, YAML and UTF-8 errors
        raise DataError(f"{where} a file of the model folder cannot be read ({type(e).__name__})") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) or not isinstance(state, dict):
        raise DataError(f"{where} {CONFIG} holds no model section or {DATA_STATE} no data state")
    task = build_task(config, state)
    device = str(map_location) if isinstance(map_location, str) or hasattr(map_location, "type") else "cpu"
    try:
        stored = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError) as e:
        raise DataError(f"{where} {WEIGHTS} is not readable ({type(e).__name__})") from None
    ours = task.state_dict()
    shared = {
        key
        for key in ours
        if key not in stored
        and any(  # tied weights are stored once
            ours[key].data_ptr() == ours[other].data_ptr() for other in stored if other in ours
        )
    }
    check_weights({k: v for k, v in ours.items() if k not in shared}, stored, where, DataError)
    load_model(task, folder / WEIGHTS, strict=True, device=device)
    return task.eval()
