"""The task base and its trainer: the optimizer built from ``model.optim``; the task a plain module that the
trainer wraps."""

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from eeap.model.task import Task
from eeap.training.module import TrainingModule


class Linear(Task):
    """The smallest task: one layer, a loss, a mean-error metric."""

    def __init__(self, optim):
        super().__init__(optim)
        self.layer = torch.nn.Linear(3, 2)

    def metric_names(self):
        return ["loss", "error"]

    def training_loss(self, batch):
        loss = F.mse_loss(self.layer(batch["x"]), batch["y"])
        return loss, {"loss": loss}

    def new_metrics(self):
        import torchmetrics

        return {"error": torchmetrics.MeanAbsoluteError()}

    def evaluate(self, batch, split, metrics):
        out = self.layer(batch["x"])
        metrics["error"].update(out, batch["y"])
        return F.mse_loss(out, batch["y"]), out


def build(optim, precision="32-true"):
    module = TrainingModule(Linear(optim))
    module._trainer = SimpleNamespace(precision=precision, estimated_stepping_batches=100)
    return module


def test_adam_is_fused_on_the_cpu_but_not_under_mixed_precision():
    optimizer = build({"name": "adamw", "lr": 0.01, "weight_decay": 0.1}).configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]
    assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["weight_decay"] == 0.1
    for precision in ("16-mixed", "bf16-mixed", "bf16-true"):
        assert not build({"name": "adam"}, precision=precision).configure_optimizers().defaults["fused"]


def test_the_trainer_wraps_the_task_its_weights_under_model_and_its_metrics_per_split():
    module = build({"name": "adam", "lr": 0.5})
    assert set(module.state_dict()) == {"model.layer.weight", "model.layer.bias"}  # metric states are not saved
    assert (
        set(module.metrics) == {"val", "test"} and module.metrics["val"]["error"] is not module.metrics["test"]["error"]
    )
    assert module.lr == 0.5 and module.monitor == ("val/loss", "min")
    module.lr = 0.1  # Lightning's learning-rate finder sets it here
    assert module.model.optim.lr == 0.1
    batch = {"x": torch.ones(4, 3), "y": torch.zeros(4, 2)}
    assert module.model.batch_size(batch) == 4
    logged = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, (value, kw))
    module.validation_step(batch, 0)
    assert set(logged) == {"val/loss", "val/error"} and logged["val/loss"][1]["batch_size"] == 4
    out = module.model.layer(batch["x"]).detach()
    assert float(module.metrics["val"]["error"].compute()) == float(out.abs().mean())  # by hand: |out − 0|


def test_fused_adam_steps_like_the_plain_loop():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    fused = torch.optim.Adam(a.parameters(), lr=0.01, fused=True)
    plain = torch.optim.Adam(b.parameters(), lr=0.01, foreach=False)
    for _ in range(3):
        x = torch.randn(5, 4)
        for model, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


def test_the_plateau_schedule_follows_the_metric_that_picks_the_best_checkpoint(tiny):
    # parallel.yaml keeps its best checkpoint by val/bleu, while its plateau halved the rate whenever exact match
    # (0 on real sentences) stalled: to 1/32 of it after 15 epochs, and the model stopped learning
    import eeap

    def schedule(*keys):
        module, _ = eeap.build(tiny("model.optim.scheduler=plateau", "model.optim.patience=3", *keys))
        module._trainer = SimpleNamespace(precision="32-true", estimated_stepping_batches=100)
        scheduler = module.configure_optimizers()["lr_scheduler"]
        return scheduler["monitor"], scheduler["scheduler"].mode, scheduler["scheduler"].patience

    assert schedule("checkpoint.monitor=val/loss", "checkpoint.mode=min") == ("val/loss", "min", 3)
    # the mode the checkpoint gets: unset, the task's (max)
    assert schedule("checkpoint.monitor=val/bleu", "checkpoint.mode=null") == ("val/bleu", "max", 3)
    assert schedule("checkpoint.monitor=null", "checkpoint.mode=null") == ("val/exact_match", "max", 3)
