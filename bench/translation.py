"""Date-translator training speed: target tokens per second and the time to 100% validation exact match.

Tokens are the non-padding target tokens, EOS included, of the training batches; the time is training wall time
with validation left out, as JoeyNMT counts its "Tokens per Sec" (data loading and the training loop's own work are
in). Time to 100% is wall time from the start of fitting to the end of the first validation at 100% exact match.

Reference (the issue, measured on this kind of 2-core machine): JoeyNMT 2.3 with the same model (biGRU encoder,
GRU decoder, Bahdanau attention, embeddings 64, hidden 128, batch 64 sentences) on the same data did 7.0k tokens/s and
reached 100% test exact match after 10 epochs, 152 s. Targets: at least 2× its tokens/s, at most half its time.

    python bench/translation.py [key=value overrides of configs/translation/dates.yaml]

EEAP's fused CPU kernels (eeap.kernels) are compiled, or loaded from the cache, before the clock starts; the time
that takes is printed. ``kernels=reference`` measures without them (``bench/kernels.py`` runs both, taking turns).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

JOEYNMT_TOKENS_PER_S = 7000.0
JOEYNMT_TIME_TO_FULL_S = 152.0


def main() -> None:
    from lightning.pytorch.callbacks import Callback

    from eeap import kernels
    from eeap.config.loader import load_config
    from eeap.data.text import PAD
    from eeap.training.run import train

    overrides = [
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"run_dir={ROOT / 'runs' / 'bench' / str(time.time())}",
    ]
    cfg = load_config(ROOT / "configs" / "translation" / "dates.yaml", overrides + sys.argv[1:])
    kernels.use(cfg.kernels)
    start = time.perf_counter()
    built = kernels.extension() is not None
    took = time.perf_counter() - start
    print(f"fused CPU kernels: {'ready' if built else 'not used'} ({took:.1f} s to build or load)")

    class Meter(Callback):
        def __init__(self) -> None:
            self.tokens, self.busy, self.reached, self.history = 0, 0.0, None, []

        def on_fit_start(self, trainer, module) -> None:
            self.fit_start = time.perf_counter()

        def on_train_epoch_start(self, trainer, module) -> None:
            self.mark = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self.tokens += int((batch["tgt_out"] != PAD).sum())

        def on_validation_start(self, trainer, module) -> None:
            if not trainer.sanity_checking:
                self.busy += time.perf_counter() - self.mark

        def on_train_epoch_end(self, trainer, module) -> None:
            self.busy += time.perf_counter() - self.mark

        def on_validation_end(self, trainer, module) -> None:
            if trainer.sanity_checking:
                return
            self.mark = time.perf_counter()
            exact = trainer.callback_metrics.get("val/exact_match")
            if exact is None:
                return
            elapsed = time.perf_counter() - self.fit_start
            self.history.append(f"step {trainer.global_step} ({elapsed:.1f} s): {float(exact):.3f}")
            if self.reached is None and float(exact) >= 1.0:
                self.reached = elapsed

    meter = Meter()
    metrics = train(cfg, [meter])
    rate = meter.tokens / meter.busy
    print(
        f"training throughput: {rate:,.0f} target tokens/s ({rate / JOEYNMT_TOKENS_PER_S:.2f}× JoeyNMT's "
        f"{JOEYNMT_TOKENS_PER_S:,.0f}; target 2×)"
    )
    if meter.reached is None:
        print("never reached 100% validation exact match")
    else:
        print(
            f"time to 100% validation exact match: {meter.reached:.1f} s ({meter.reached / JOEYNMT_TIME_TO_FULL_S:.2f}× "
            f"JoeyNMT's {JOEYNMT_TIME_TO_FULL_S:.0f} s; target ≤ 0.5×), {metrics['epochs']} epochs"
        )
    print("validation exact match: " + ", ".join(meter.history))
    print(f"test exact match: {metrics['test/exact_match']:.4f}")


if __name__ == "__main__":
    main()
