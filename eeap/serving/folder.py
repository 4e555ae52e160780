"""``eeap export CHECKPOINT --format folder --out DIR``: a trained model as a folder anyone can load without
Lightning's pickle: ``model.safetensors`` (the weights), ``config.yaml`` (the run's config as built: what rebuilds the
model), ``data.json`` (the vocabularies or classes) and ``README.md``, a model card (task, parts, data, metrics, how
to load). ``eeap.load(DIR)`` and ``eeap predict DIR`` read it (``eeap.model.checkpoints.load_folder``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from eeap.model.checkpoints import CARD, CONFIG, DATA_STATE, WEIGHTS, load_task, read_checkpoint
from eeap.paths import write_atomically

PARTS = ("embed", "encode", "attend", "predict")  # the sections of a model config named first in the card


def write_folder(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the model folder of a checkpoint written by ``eeap train``; returns the folder."""
    import yaml
    from safetensors.torch import save_model

    from eeap.errors import DataError
    from eeap.version import __version__

    checkpoint, out = Path(checkpoint), Path(out)
    task = load_task(checkpoint)
    saved = read_checkpoint(checkpoint, f"{checkpoint}:", DataError)
    out.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "pt", "library": "eeap", "eeap_version": __version__, "task": task.registered_name}
    temporary = out / f".{WEIGHTS}.tmp"
    save_model(task, str(temporary), metadata=metadata)  # tied weights (a Transformer's embeddings) stored once
    umask = os.umask(0)
    os.umask(umask)
    temporary.chmod(0o666 & ~umask)  # readable as the folder's other files (safetensors writes it private)
    temporary.replace(out / WEIGHTS)
    write_atomically(out / CONFIG, yaml.safe_dump(task.eeap_config, sort_keys=False, allow_unicode=True))
    write_atomically(out / DATA_STATE, json.dumps(task.eeap_data_state, indent=1, ensure_ascii=False) + "\n")
    write_atomically(out / CARD, model_card(task, metrics_of(checkpoint, saved), __version__))
    return out


def metrics_of(checkpoint: Path, saved: dict) -> dict[str, Any]:
    """The run's final metrics (``metrics.json`` of the run folder the checkpoint sits in), or else the monitored
    metric's best value the checkpoint carries."""
    run_file = checkpoint.parent.parent / "metrics.json"
    if checkpoint.parent.name == "checkpoints" and run_file.is_file():
        try:
            metrics = json.loads(run_file.read_text(encoding="utf-8"))
        except ValueError:
            metrics = {}
        return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and "/" in k}
    for key, state in saved.get("callbacks", {}).items():
        if str(key).startswith("BestValue") and isinstance(state, dict) and state.get("value") is not None:
            return {"best (validation)": state["value"], "best step": state.get("step")}
    return {}


def model_card(task: Any, metrics: dict[str, Any], version: str) -> str:
    """The folder's README.md: front matter as model hubs read it, then the task, parts, data, metrics and use."""
    config = task.eeap_config
    model, data = config["model"], config.get("data", {})
    name = config.get("name", task.registered_name)
    parameters = sum(p.numel() for p in task.parameters())
    lines = [
        "---",
        "library_name: eeap",
        f"tags: [eeap, {task.registered_name}, attention]",
        "---",
        "",
        f"# {name}",
        "",
        f"A {task.registered_name} model trained with EEAP {version}: {parameters:,} parameters.",
        "",
        "## Parts",
        "",
        "| part | component | settings |",
        "| --- | --- | --- |",
    ]
    sections = [k for k in PARTS if isinstance(model.get(k), dict)]
    sections += [k for k, v in model.items() if isinstance(v, dict) and "type" in v and k not in sections]
    for key in sections:
        settings = ", ".join(f"{k}={v}" for k, v in model[key].items() if k != "type" and not isinstance(v, dict))
        lines.append(f"| {key} | {model[key].get('type', '')} | {settings} |")
    lines += ["", "## Data", "", f"Trained on `{data.get('type', '?')}` data{data_line(task)}.", ""]
    lines += ["## Metrics", ""]
    if metrics:
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    else:
        lines.append("Not recorded with the checkpoint.")
    lines += [
        "",
        "## Use",
        "",
        "```bash",
        "pip install eeap",
        "eeap predict THIS_FOLDER --input inputs.txt",
        "```",
        "",
        "```python",
        "import eeap",
        "",
        'model = eeap.load("THIS_FOLDER")  # a torch.nn.Module, in eval mode',
        "```",
        "",
        "## Files",
        "",
        f"- `{WEIGHTS}`: the weights (safetensors);",
        f"- `{CONFIG}`: the run's config as built, every default filled in (`eeap train {CONFIG}` trains it again);",
        f"- `{DATA_STATE}`: the vocabularies or classes the model was trained with.",
        "",
    ]
    return "\n".join(lines)


def data_line(task: Any) -> str:
    """What the card says of the data state: vocabulary sizes, classes, image size."""
    info = task.info
    said: list[str] = []
    for label, attribute in (("source vocabulary", "source"), ("target vocabulary", "target")):
        vocabulary: Optional[Any] = getattr(info, attribute, None)
        if vocabulary is not None and hasattr(vocabulary, "__len__"):
            said.append(f"{label} of {len(vocabulary)} tokens")
    classes = getattr(info, "classes", None)
    if classes:
        shown = ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else "")
        said.append(f"{len(classes)} classes ({shown})")
    size = getattr(info, "image_size", None)
    if size and getattr(info, "channels", None):
        said.append(f"images of {info.channels} × {size[0]} × {size[1]}")
    return (": " + "; ".join(said)) if said else ""
