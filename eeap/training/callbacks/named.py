"""Callbacks a config names in ``trainer.callbacks`` (``[swa, {type: lr_finder, max_lr: 0.1}]``): Lightning's own,
built from a checked section, with what an EEAP run needs around them (the finder's figure in the run folder, no
search repeated on resume).

A new one is a class here registered with ``@CALLBACK.register("name")`` filling ``RunCallback``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional, Union

from lightning.pytorch.callbacks import (
    BatchSizeFinder,
    GradientAccumulationScheduler,
    LearningRateFinder,
    StochasticWeightAveraging,
)

from eeap.config.registry import CALLBACK, Fraction, PositiveFloat, PositiveInt
from eeap.training.callbacks import RunCallback


@CALLBACK.register("swa")
class SWA(StochasticWeightAveraging, RunCallback):
    """Stochastic weight averaging (Izmailov et al., 2018): from epoch ``swa_epoch_start`` (counted from 1) to the
    last, the weights each epoch starts from are averaged, and the run ends with their average (batch-norm
    statistics recomputed on the training data). Lightning's callback, whose average leaves out the last epoch's
    own updates.

    The averaged weights exist only once training ends, so the run saves them as ``checkpoints/swa.ckpt`` and tests
    that checkpoint instead of the best one.

    # Parameters
    swa_lrs: the learning rate annealed to from ``swa_epoch_start`` on.
    swa_epoch_start: the epoch averaging starts at (a count), or the fraction of ``max_epochs`` after which it does.
    annealing_epochs: epochs over which the learning rate moves to ``swa_lrs``.
    annealing_strategy: ``cos`` or ``linear``.
    """

    replaces_weights = True  # the run tests the weights it ends with (eeap.training.run)

    def __init__(
        self,
        swa_lrs: PositiveFloat = 1e-3,
        swa_epoch_start: Union[PositiveInt, Fraction] = 0.8,
        annealing_epochs: PositiveInt = 10,
        annealing_strategy: Literal["cos", "linear"] = "cos",
    ) -> None:
        if isinstance(swa_epoch_start, float) and not 0 < swa_epoch_start < 1:
            raise ValueError(f"swa_epoch_start: a fraction must lie strictly between 0 and 1, got {swa_epoch_start}")
        super().__init__(
            swa_lrs=swa_lrs,
            swa_epoch_start=swa_epoch_start,
            annealing_epochs=annealing_epochs,
            annealing_strategy=annealing_strategy,
        )


@CALLBACK.register("lr_finder")
class LRFinder(LearningRateFinder, RunCallback):
    """The learning-rate range test (Smith, 2017): before training, ``num_training_steps`` steps with the learning
    rate growing from ``min_lr`` to ``max_lr``; training then starts from the untouched weights with the suggested
    rate (steepest fall of the loss). The curve is saved as ``figures/lr_finder.png`` and the numbers as
    ``lr_finder.json`` in the run folder; a resumed run keeps the rate it had.

    # Parameters
    min_lr, max_lr: the range tried.
    num_training_steps: steps of the test.
    mode: ``exponential`` or ``linear`` growth.
    early_stop_threshold: stop the test when the loss exceeds this multiple of the best loss (null: never).
    """

    def __init__(
        self,
        min_lr: PositiveFloat = 1e-6,
        max_lr: PositiveFloat = 1.0,
        num_training_steps: PositiveInt = 100,
        mode: Literal["exponential", "linear"] = "exponential",
        early_stop_threshold: Optional[PositiveFloat] = 4.0,
    ) -> None:
        if min_lr >= max_lr:
            raise ValueError(f"min_lr ({min_lr}) must be below max_lr ({max_lr})")
        super().__init__(
            min_lr, max_lr, num_training_steps, mode, early_stop_threshold, update_attr=True, attr_name="lr"
        )
        self.suggestion: Optional[float] = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.ckpt_path:  # resuming: the optimizer state restored holds the rate found before
            return
        epochs = trainer.fit_loop.max_epochs  # the test runs its steps across epochs if an epoch is shorter
        trainer.fit_loop.max_epochs = -1 if epochs in (None, -1) else max(epochs, self._num_training_steps)
        try:
            self.lr_find(trainer, pl_module)
        finally:
            trainer.fit_loop.max_epochs = epochs
        self.suggestion = self.optimal_lr.suggestion() if self.optimal_lr is not None else None
        if trainer.is_global_zero and self.optimal_lr is not None:
            self.save(self.optimal_lr, Path(trainer.default_root_dir))
        if self.suggestion is None:
            import warnings

            warnings.warn(
                f"lr_finder: no suggestion from {self._num_training_steps} steps (it skips the first 10 and needs a "
                f"falling loss); training with model.optim.lr={pl_module.lr}",
                stacklevel=2,
            )
            return
        for config in trainer.lr_scheduler_configs:  # a schedule scales its base rate: make it the one found
            if hasattr(config.scheduler, "base_lrs"):
                config.scheduler.base_lrs = [self.suggestion] * len(config.scheduler.base_lrs)
        for logger in trainer.loggers:
            logger.log_hyperparams({"lr_finder/suggestion": self.suggestion})

    def save(self, finder: Any, run_dir: Path) -> None:
        from eeap.model.plotting import save_figure
        from eeap.paths import write_atomically

        results = finder.results
        record = {"suggestion": self.suggestion, "lr": list(results["lr"]), "loss": list(results["loss"])}
        write_atomically(run_dir / "lr_finder.json", json.dumps(record, indent=1) + "\n")
        save_figure(finder.plot(suggest=True, show=False), run_dir / "figures" / "lr_finder.png")


@CALLBACK.register("batch_size_finder")
class BatchSizeSearch(BatchSizeFinder, RunCallback):
    """Find the largest training batch that fits: from ``init_val``, ``power`` doubles the batch size until a step
    runs out of memory (or ``max_trials`` doublings), ``binsearch`` then narrows it; training uses the size found
    (``data.batch_size``), recorded in ``batch_size_finder.json`` in the run folder. A resumed run keeps its size.

    # Parameters
    mode: ``power`` or ``binsearch``.
    steps_per_trial: training steps run at each size.
    init_val: the first size tried.
    max_trials: the most sizes tried.
    """

    def __init__(
        self,
        mode: Literal["power", "binsearch"] = "power",
        steps_per_trial: PositiveInt = 3,
        init_val: PositiveInt = 2,
        max_trials: PositiveInt = 25,
    ) -> None:
        super().__init__(mode, steps_per_trial, init_val, max_trials, batch_arg_name="batch_size")

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.ckpt_path:
            return
        self.scale_batch_size(trainer, pl_module)
        if trainer.is_global_zero:
            from eeap.paths import write_atomically

            path = Path(trainer.default_root_dir) / "batch_size_finder.json"
            write_atomically(path, json.dumps({"batch_size": self.optimal_batch_size}) + "\n")
        for logger in trainer.loggers:
            logger.log_hyperparams({"batch_size_finder/batch_size": self.optimal_batch_size})


@CALLBACK.register("accumulate")
class AccumulationSchedule(GradientAccumulationScheduler, RunCallback):
    """A gradient-accumulation schedule: ``scheduling`` maps an epoch (from 0) to the number of batches whose
    gradients make one optimizer step from that epoch on (``{0: 8, 4: 4, 8: 1}``, say). Replaces
    ``trainer.accumulate_grad_batches`` (which must then stay 1).

    # Parameters
    scheduling: epoch → batches per optimizer step.
    """

    def __init__(self, scheduling: dict) -> None:
        if not scheduling:
            raise ValueError("scheduling: give at least one epoch: batches pair, e.g. {0: 4}")
        for epoch, factor in scheduling.items():
            if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
                raise ValueError(f"scheduling: epochs are whole numbers from 0, got {epoch!r}")
            if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
                raise ValueError(
                    f"scheduling: epoch {epoch} accumulates {factor!r} batches; expected a whole number ≥ 1"
                )
        super().__init__(scheduling={int(k): int(v) for k, v in scheduling.items()})
