"""Run by tests/translation/test_train.py: a real 2-process CPU DDP training that saves each rank's weights.

Lightning's DDP launcher starts the second process by running this same command again.
Usage: python tests/ddp_worker.py OUT_DIR CONFIG [key=value ...]
"""

import sys
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eeap.config.loader import load_config  # noqa: E402
from eeap.training.run import train  # noqa: E402


class SaveRankWeights(Callback):
    """Writes rank<N>.pt with the model's weights when training ends, and rank<N>.json with the source texts of the
    training examples that rank saw."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.seen: list = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.seen += list(batch["src_text"])

    def on_train_end(self, trainer, module) -> None:
        import json

        self.folder.mkdir(parents=True, exist_ok=True)
        torch.save(module.state_dict(), self.folder / f"rank{trainer.global_rank}.pt")
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))


if __name__ == "__main__":
    out, config, *overrides = sys.argv[1:]
    train(load_config(config, overrides), callbacks=[SaveRankWeights(out)])
