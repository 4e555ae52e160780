"""EEAP's fused CPU kernels: an optional backend of C++ loops for the small, many operations of recurrent models.

On CPU a GRU step or an additive-attention step is dozens of small operations, each with its own dispatch and
autograd bookkeeping. The kernels here do that elementwise work in one loop, with hand-written backward passes; the
date translator trains ~1.3× faster with them (bench/README.md). The components' plain torch code is the reference;
tests/test_kernels.py checks every kernel, and its gradients, against it.

One switch, the run's ``kernels`` key (``eeap.kernels.use`` from Python):

- ``auto`` (the default): the kernels where a C++ compiler and Python's headers are present, else the reference,
  silently;
- ``fused``: the kernels, built at once; a failed build stops the run with one line;
- ``reference``: plain torch everywhere.

The sources (``*.cpp`` beside this file) are compiled with torch's C++ extension tools on first use (~30 s on 2
cores), once per machine: the build lives under ``~/.cache/eeap/kernels/<hash>``, keyed by the sources, the flags and
the torch and Python versions, so every checkout of the same sources shares it. The kernels apply to float32 tensors
on the CPU outside autocast; elsewhere (a GPU, bf16) the components run the reference.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import sys
import sysconfig
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from eeap.console import say
from eeap.errors import ConfigError

SOURCES = ("bindings.cpp", "gru.cpp", "additive.cpp")
MODES = ("auto", "fused", "reference")

_mode = "auto"
_extension: Any = None
_tried = False


def use(mode: str) -> None:
    """Choose the backend: ``auto``, ``fused`` (built now; a failed build raises ConfigError) or ``reference``."""
    global _mode
    if mode not in MODES:
        raise ConfigError(f"kernels: unknown mode '{mode}'. Valid options: {', '.join(MODES)}")
    _mode = mode
    if mode == "fused" and extension() is None:
        raise ConfigError(
            "kernels=fused: EEAP's fused CPU kernels could not be built here (a C++ compiler and "
            "Python's headers are needed); use kernels=reference or kernels=auto"
        )


def mode() -> str:
    """The backend chosen: ``auto``, ``fused`` or ``reference``."""
    return _mode


def can_build() -> bool:
    """Whether this machine has what building the kernels needs: a C++ compiler and Python's headers."""
    compiler = os.environ.get("CXX", "c++")
    return shutil.which(compiler) is not None and Path(sysconfig.get_paths()["include"], "Python.h").is_file()


def build_flags() -> list[str]:
    """Compiler flags: vector instructions where the CPU has them."""
    flags = ["-O3", "-ffast-math", "-fopenmp-simd"]
    if platform.machine() in ("x86_64", "AMD64") and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    return flags


def build_directory(flags: list[str]) -> Path:
    """``~/.cache/eeap/kernels/<hash>``: one build per set of sources, flags and torch and Python versions."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    digest.update(" ".join([*flags, torch.__version__, sys.version]).encode())
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "eeap" / "kernels" / digest.hexdigest()[:16]


def extension() -> Any:
    """The compiled module, built on the first call; None where the reference runs instead."""
    global _extension, _tried
    if _mode == "reference":
        return None
    if _tried:
        return _extension
    _tried = True
    if _mode == "auto" and not can_build():
        return None
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime is found": CPU only
    from torch.utils.cpp_extension import load

    flags = build_flags()
    folder = build_directory(flags)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in SOURCES:  # one copy of the sources per build, so the build file is the same from any checkout
            target = folder / name
            if not target.is_file():
                shutil.copyfile(Path(__file__).parent / name, target)
        module = f"eeap_kernels_{folder.name}"
        building = not (folder / f"{module}.so").is_file() and os.environ.get("LOCAL_RANK", "0") == "0"
        if building:  # half a minute with nothing else to see: say why
            say("building EEAP's CPU kernels (once per machine)...")
            start = time.perf_counter()
        _extension = load(
            module,
            [str(folder / name) for name in SOURCES],
            extra_cflags=flags,
            build_directory=str(folder),
            verbose=False,
        )
        if building:
            say(f"EEAP's CPU kernels built in {time.perf_counter() - start:.0f} s (kept in {folder})")
    except Exception as e:  # noqa: BLE001  (a compiler that fails, a full disk: the reference does the work)
        if _mode == "auto":
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            warnings.warn(
                f"EEAP: the fused CPU kernels could not be built ({first}); using the reference "
                "(plain torch); kernels=reference silences this",
                stacklevel=2,
            )
    return _extension


def applies(*tensors: Tensor) -> bool:
    """Whether the fused kernels take these tensors: float32 on the CPU outside autocast, with the kernels on, and
    not while a model is traced or exported (``eeap export``: the graph must hold the reference's plain operations)."""
    return (
        _mode != "reference"
        and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and extension() is not None
    )
