"""``eeap export CHECKPOINT --format onnx|export|folder --out DIR``: a trained model as files that run without
EEAP's training code, and ``Runner``, which runs the graphs (``folder``: ``eeap.serving.folder``).

What is exported, per task:
- a task exported whole (classification, segmentation): ``model``: its inputs (``Task.example_inputs``) → its
  ``Task.exported_outputs`` (classification: logits (batch, classes) and, with attention pooling, the weights
  (batch, len); segmentation: logits (batch, outputs, H, W) at the data's image size);
- a sequence-to-sequence task (translation, captioning: it has ``seq2seq``): ``encoder``: inputs → memory (batch, src_len, dim) and its mask; ``start``: memory, mask
  → the decoder's first state; ``step``: the last token (or the whole prefix, for a Transformer decoder), memory, mask
  and state → logits (batch, vocab), the new state and the attention weights. ``Runner.decode`` runs EEAP's own
  greedy and beam search (``eeap.predict.search``) over these.

``export.json`` beside the graphs holds what running them needs: the task, the data state (vocabularies, classes,
image size), the graphs' input and output names, and the decoding settings. Both formats start from ``torch.export``
(batch and lengths dynamic): ``export`` saves its programs (``.pt2``, loaded with ``torch.export.load``; torch's
successor of TorchScript, whose ``torch.jit.trace`` this torch deprecates), ``onnx`` converts them (opset 18). EEAP's
fused CPU kernels are left out of exported graphs (``eeap.kernels.applies``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, cast

from eeap import threads
from eeap.errors import ConfigError, DataError

FORMATS = ("onnx", "export", "folder")  # folder: weights, config and a model card (eeap.serving.folder)
SUFFIX = {"onnx": ".onnx", "export": ".pt2"}
RETIRED = {"torchscript": "torch.jit.trace is deprecated in this torch; use --format export (torch.export, .pt2)"}


@dataclass
class Graph:
    """One exported graph: a module, example inputs, names, and each input's dynamic axes ({axis: name})."""

    name: str
    module: Any
    inputs: tuple
    input_names: list[str]
    output_names: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)


def graphs(task: Any) -> list[Graph]:
    """The graphs of a trained task (see the module's docstring)."""
    import torch

    from eeap.data.text import PAD

    info = task.info
    example = task.example_inputs()  # {name: (tensor, dynamic axes)}: of forward, or of encode_inputs
    names, inputs = list(example), tuple(tensor for tensor, _ in example.values())
    axes = {name: dynamic for name, (_, dynamic) in example.items()}
    if not hasattr(task, "seq2seq"):  # exported whole: forward's leading outputs
        outputs = task.exported_outputs()
        return [Graph("model", Outputs(task, len(outputs)), inputs, names, outputs, axes)]
    decoder = task.seq2seq.decoder
    if getattr(decoder, "cache", False):  # a Transformer's key-value cache is nested state of a growing length:
        decoder.cache = False  # the exported step recomputes the prefix (its reference path) on a fixed state layout
    if any(getattr(m, "uses_step", False) for m in decoder.modules()):
        raise ConfigError(
            "export: this model's attention depends on the decoding step's number (local-m), which an exported step "
            "does not carry; export models with another attention"
        )
    encoder = Graph("encoder", Encoder(task), inputs, names, ["memory", "mask"], axes)
    with torch.no_grad():
        memory, mask = encoder.module(*encoder.inputs)
        mask = mask.clone()
        mask[1, -2:] = False  # a padded example, so the mask is an input of its own
        state = decoder.start(memory, mask)
    names = state_names(state, decoder)
    values = tuple(state[n] for n in names)
    if not names:  # a decoder whose state is the memory alone (the Transformer's): no start graph
        start = None
    source_axes = {0: "batch", 1: "src"}
    start = (
        None
        if not names
        else Graph(
            "start",
            Start(decoder, names),
            (memory, mask),
            ["memory", "mask"],
            list(names),
            {"memory": source_axes, "mask": source_axes},
        )
    )
    tokens = torch.randint(PAD + 4, len(info.target), (3, 4 if decoder.needs_prefix else 1))
    step_inputs = ["tokens", "memory", "mask", *names]
    dynamic = {"tokens": {0: "batch", 1: "prefix"} if decoder.needs_prefix else {0: "batch"}}
    dynamic.update({n: source_axes if n in ("memory", "mask", "keys") else {0: "batch"} for n in step_inputs[1:]})
    with torch.no_grad():
        _, _, weights = decoder.step(tokens, {**state, "memory": memory, "mask": mask})
    outputs = ["logits", *(f"new_{n}" for n in names if n not in decoder.static_state)]
    outputs += ["weights"] if weights is not None else []
    step = Graph(
        "step",
        Step(decoder, names, weights is not None),
        (tokens, memory, mask, *values),
        step_inputs,
        outputs,
        dynamic,
    )
    return [encoder, start, step] if start is not None else [encoder, step]


def state_names(state: dict, decoder: Any) -> list[str]:
    """The decoder state's tensors besides the memory and its mask, in a fixed order."""
    import torch

    return sorted(k for k, v in state.items() if isinstance(v, torch.Tensor) and k not in ("memory", "mask"))


def _module_base() -> type:
    from torch import nn

    return nn.Module


class Outputs(_module_base()):  # type: ignore[misc]
    """A task's forward, its first ``count`` outputs."""

    def __init__(self, task: Any, count: int) -> None:
        super().__init__()
        self.task, self.count = task, count

    def forward(self, inputs: Any) -> Any:
        return tuple(self.task(inputs)[: self.count])


class Encoder(_module_base()):  # type: ignore[misc]
    """A sequence task's inputs → memory and mask."""

    def __init__(self, task: Any) -> None:
        super().__init__()
        self.task = task

    def forward(self, inputs: Any) -> Any:
        return self.task.encode_inputs(inputs)


class Start(_module_base()):  # type: ignore[misc]
    """A decoder's first state, flattened in ``names`` order."""

    def __init__(self, decoder: Any, names: Sequence[str]) -> None:
        super().__init__()
        self.decoder, self.names = decoder, list(names)

    def forward(self, memory: Any, mask: Any) -> Any:
        state = self.decoder.start(memory, mask)
        return tuple(state[n] for n in self.names)


class Step(_module_base()):  # type: ignore[misc]
    """One decoder step on a flattened state: logits, the changed state entries, the weights."""

    def __init__(self, decoder: Any, names: Sequence[str], with_weights: bool) -> None:
        super().__init__()
        self.decoder, self.names, self.with_weights = decoder, list(names), with_weights

    def forward(self, tokens: Any, memory: Any, mask: Any, *values: Any) -> Any:
        state = {"memory": memory, "mask": mask, "step": 0, **dict(zip(self.names, values))}
        logits, state, weights = self.decoder.step(tokens, state)
        changed = [state[n] for n in self.names if n not in self.decoder.static_state]
        return (logits, *changed, weights) if self.with_weights else (logits, *changed)


def export(checkpoint: str | Path, form: str, out: str | Path) -> Path:
    """Export a checkpoint's model to ``out`` (made if missing); returns the folder."""
    import torch

    from eeap import kernels
    from eeap.model.checkpoints import load_task

    if form in RETIRED:
        raise ConfigError(f"--format {form}: {RETIRED[form]}")
    if form not in FORMATS:
        raise ConfigError(f"--format: unknown format '{form}'. Valid options: {', '.join(FORMATS)}")
    if form == "folder":
        from eeap.serving.folder import write_folder

        return write_folder(checkpoint, out)
    if form == "onnx":
        needs_extra("onnxscript", "exporting to ONNX")
    out = Path(out)
    task = load_task(checkpoint)
    kernels.use("reference")  # plain operations in the graph
    out.mkdir(parents=True, exist_ok=True)
    made = graphs(task)
    for graph in made:
        target = out / f"{graph.name}{SUFFIX[form]}"
        try:
            with torch.no_grad():
                if form == "export":
                    torch.export.save(exported_program(graph), str(target))
                else:
                    save_onnx(graph, target)
        except Exception as e:  # noqa: BLE001  (the exporters' own refusals, in one line)
            raise ConfigError(
                f"export --format {form}: graph '{graph.name}' could not be exported ({exporter_reason(e)})"
            ) from None
    meta = {
        "format": form,
        "task": task.registered_name,
        "data_type": task.eeap_config["data"]["type"],
        "data_state": task.eeap_data_state,
        "graphs": {
            g.name: {"file": f"{g.name}{SUFFIX[form]}", "inputs": g.input_names, "outputs": g.output_names}
            for g in made
        },
    }
    if hasattr(task, "seq2seq"):
        s = task.seq2seq
        meta["decoding"] = {
            "max_len": s.max_output_len + 1,
            "beam_size": s.beam_size,
            "length_penalty": s.length_penalty,
            "needs_prefix": s.decoder.needs_prefix,
            "static_state": list(s.decoder.static_state),
        }
    (out / "export.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def needs_extra(module: str, what: str) -> None:
    """Stop with one line when a package of the ``export`` extra is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} needs the package {module}: pip install 'eeap[export]'")


def exporter_reason(error: Exception) -> str:
    """The line of an exporter's long message that says what failed."""
    text = str(error)
    if "## Exception summary" in text:
        text = text.split("## Exception summary", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__


def dynamic_shapes(graph: Graph, named: bool = True) -> tuple:
    """``torch.export``'s ``dynamic_shapes`` for a graph's inputs: one ``Dim`` per axis label, shared by the inputs
    that carry it (the memory's and the mask's ``src``); or, not ``named``, ``Dim.DYNAMIC`` on each dynamic axis,
    which lets the trace bound an axis (a Transformer's positions end at ``max_len``) but not fix it."""
    import torch

    dims: dict[str, Any] = {}
    shapes: list[Any] = []
    for name in graph.input_names:
        axes = graph.dynamic.get(name, {})
        shapes.append(
            {
                axis: dims.setdefault(label, torch.export.Dim(label)) if named else torch.export.Dim.DYNAMIC
                for axis, label in axes.items()
            }
            or None
        )
    if isinstance(graph.module, Step) and len(shapes) > 3:  # forward(tokens, memory, mask, *values): one argument
        shapes = [*shapes[:3], tuple(shapes[3:])]
    return tuple(shapes)


def exported_program(graph: Graph) -> Any:
    """One graph as a ``torch.export`` program, batch and lengths dynamic. Recurrent layers are captured as while
    loops (torch's own decompositions for export, which its ONNX exporter uses too), not unrolled at the example's
    length."""
    import torch
    from torch.export._patches import register_gru_while_loop_decomposition, register_lstm_while_loop_decomposition

    with register_gru_while_loop_decomposition(), register_lstm_while_loop_decomposition():
        return torch.export.export(graph.module.eval(), graph.inputs, dynamic_shapes=dynamic_shapes(graph, named=False))


def save_onnx(graph: Graph, target: Path) -> None:
    """One graph to ONNX through torch.export, with its dynamic axes."""
    import torch

    program = torch.onnx.export(
        graph.module,
        graph.inputs,
        dynamo=True,
        dynamic_shapes=dynamic_shapes(graph),
        input_names=graph.input_names,
        output_names=graph.output_names,
        opset_version=18,
        verbose=False,
    )
    cast(Any, program).save(str(target))


class Runner:
    """Runs an exported model (ONNX with onnxruntime, ``torch.export`` programs with torch) without EEAP's training
    code.

    ``Runner(folder)(inputs)`` for classification and segmentation gives the model's outputs; ``decode(inputs,
    beam_size)`` for translation and captioning gives ``Hypotheses`` from EEAP's search over the exported steps.
    ``info`` holds the vocabularies or classes (``info.source.encode``, ``info.target.decode``, ``info.classes``).
    """

    def __init__(self, folder: str | Path) -> None:
        from eeap.config.registry import DATA

        folder = Path(folder)
        meta_file = folder / "export.json"
        if not meta_file.is_file():
            raise DataError(f"{folder}: no export.json; export a model with eeap export")
        self.meta = json.loads(meta_file.read_text())
        if self.meta["format"] in RETIRED:
            raise DataError(
                f"{folder}: exported as {self.meta['format']}, which EEAP no longer runs; {RETIRED[self.meta['format']]}"
            )
        self.info = DATA.get(self.meta["data_type"]).info_class.from_state(self.meta["data_state"])
        self.graphs: dict[str, Any] = {}
        for name, spec in self.meta["graphs"].items():
            path = folder / spec["file"]
            if self.meta["format"] == "onnx":
                needs_extra("onnxruntime", "running ONNX graphs")
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.log_severity_level = 3  # errors only: not a warning per run about symbolic output shapes
                if name == "step":  # the search loop's tiny steps run faster on one thread (eeap.threads)
                    options.intra_op_num_threads = options.inter_op_num_threads = threads.SEARCH_THREADS
                self.graphs[name] = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            else:
                import torch

                self.graphs[name] = torch.export.load(str(path)).module()

    def run(self, name: str, *inputs: Any) -> list[Any]:
        """Run one graph on torch tensors; its outputs as torch tensors."""
        import torch

        graph, spec = self.graphs[name], self.meta["graphs"][name]
        if self.meta["format"] == "onnx":
            feed = {n: t.detach().cpu().numpy() for n, t in zip(spec["inputs"], inputs)}
            return [torch.from_numpy(o) for o in graph.run(spec["outputs"], feed)]
        with torch.no_grad():
            outputs = graph(*inputs)
        return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]

    def __call__(self, inputs: Any) -> list[Any]:
        return self.run("model", inputs)

    def decode(self, inputs: Any, beam_size: Optional[int] = None) -> Any:
        """Greedy (beam 1) or beam search with the exported encoder and decoder steps."""
        from eeap.predict.search import beam_search

        decoding = self.meta["decoding"]
        memory, mask = self.run("encoder", inputs)
        decoder = ExportedDecoder(self)
        with threads.for_search(memory.device):
            return beam_search(
                cast(Any, decoder),
                memory,
                mask.bool(),
                decoding["max_len"],
                beam_size or decoding["beam_size"],
                decoding["length_penalty"],
            )


class ExportedDecoder:
    """The exported ``start`` and ``step`` behind the decoder interface beam search uses."""

    def __init__(self, runner: Runner) -> None:
        decoding = runner.meta["decoding"]
        self.runner = runner
        self.needs_prefix = decoding["needs_prefix"]
        self.static_state = tuple(decoding["static_state"])
        self.names = runner.meta["graphs"]["start"]["outputs"] if "start" in runner.meta["graphs"] else []

    def start(self, memory: Any, mask: Any) -> dict:
        state = self.runner.run("start", memory, mask) if self.names else []
        return {"memory": memory, "mask": mask, **dict(zip(self.names, state))}

    def step(self, tokens: Any, state: dict) -> tuple[Any, dict, Any]:
        outputs = self.runner.run("step", tokens, state["memory"], state["mask"], *(state[n] for n in self.names))
        changed = [n for n in self.names if n not in self.static_state]
        new = {**state, **dict(zip(changed, outputs[1 : 1 + len(changed)]))}
        weights = outputs[1 + len(changed)] if len(outputs) > 1 + len(changed) else None
        return outputs[0], new, weights


def main(argv: Sequence[str] | None = None, prog: str = "eeap export") -> int:
    """``eeap export CHECKPOINT --format onnx|export|folder --out DIR``."""
    from eeap.errors import ArgumentParser, guarded

    parser = ArgumentParser(
        prog=prog,
        description="Export a trained model to ONNX or torch.export (.pt2) graphs, or as a model folder "
        "(safetensors weights, config, model card) that eeap.load and eeap predict read.",
    )
    parser.add_argument("checkpoint", help="a .ckpt written by eeap train, or a model folder (onnx, export)")
    parser.add_argument("--format", choices=[*FORMATS, *RETIRED], default="onnx", help="onnx, export or folder")
    parser.add_argument("--out", required=True, help="the folder to write the graphs and export.json to")

    def body() -> int:
        from eeap.paths import writable_folder

        args = parser.parse_args(argv)
        writable_folder(Path(args.out), "--out")
        folder = export(args.checkpoint, args.format, args.out)
        made = "a model folder" if args.format == "folder" else f"{args.format} graphs and export.json"
        print(f"exported {made} to {folder}")
        return 0

    return guarded(body, prog)


if __name__ == "__main__":
    sys.exit(main())
