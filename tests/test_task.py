"""The task base: the optimizer built from ``model.optim``."""

from types import SimpleNamespace

import torch

from eeap.task import Task


class Linear(Task):
    """The smallest task: one layer, a loss."""

    def metric_names(self):
        return ["loss"]


def build(optim, precision="32-true"):
    task = Linear(optim)
    task.layer = torch.nn.Linear(3, 2)
    task._trainer = SimpleNamespace(precision=precision, estimated_stepping_batches=100)
    return task


def test_adam_is_fused_on_the_cpu_but_not_under_mixed_precision():
    optimizer = build({"name": "adamw", "lr": 0.01, "weight_decay": 0.1}).configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]
    assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["weight_decay"] == 0.1
    for precision in ("16-mixed", "bf16-mixed", "bf16-true"):
        assert not build({"name": "adam"}, precision=precision).configure_optimizers().defaults["fused"]


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
