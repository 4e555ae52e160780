"""EEAP's fused CPU kernels: C++ loops for the small, many operations of recurrent models on CPU.

On CPU a GRU step or an additive-attention step is dozens of small operations, each with its own dispatch and
autograd bookkeeping. The kernels here do that elementwise work in one loop and have hand-written backward passes;
the date translator trains ~1.3× faster with them (bench/README.md). Each is checked against torch's own modules
(tests/test_kernels.py).

The C++ sources (``*.cpp`` beside this file) are compiled with torch's C++ extension tools on first use (~30 s on 2
cores, then cached under ``~/.cache/torch_extensions``). Where they cannot be built (no compiler) or do not apply (a
GPU, another dtype, autocast), the components use plain torch operations, with the same results up to float
rounding. ``EEAP_FUSED_KERNELS=0`` turns them off everywhere; each component has a ``fused`` key too.
"""

from __future__ import annotations

import os
import platform
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

SOURCES = ("bindings.cpp", "gru.cpp", "additive.cpp")

_extension: Any = None
_tried = False


def extension() -> Any:
    """The compiled module, built on the first call; None (after one warning) where it cannot be built."""
    global _extension, _tried
    if _tried:
        return _extension
    _tried = True
    if os.environ.get("EEAP_FUSED_KERNELS", "1") == "0":
        return None
    from torch.utils.cpp_extension import load

    flags = ["-O3", "-ffast-math", "-fopenmp-simd"]
    capability = torch.backends.cpu.get_cpu_capability()  # e.g. AVX2, AVX512, DEFAULT
    if platform.machine() in ("x86_64", "AMD64") and capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    here = Path(__file__).parent
    try:
        _extension = load(f"eeap_kernels_{capability.lower()}", [str(here / name) for name in SOURCES],
                          extra_cflags=flags, verbose=False)
    except Exception as e:  # no compiler, no Python headers, ...: plain torch operations do the work
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        warnings.warn(f"EEAP: the fused CPU kernels could not be built ({first}); using plain torch operations",
                      stacklevel=2)
    return _extension


def applies(*tensors: Tensor) -> bool:
    """Whether the fused kernels can take these tensors: float32 on CPU outside autocast, and the extension builds."""
    return (all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
            and not torch.is_autocast_enabled("cpu") and extension() is not None)
