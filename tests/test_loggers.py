"""TensorBoard and MLflow beside W&B and CSV: what each holds after a run, read back with their own readers."""

import pytest

from eeap.errors import ConfigError
from eeap.training.run import train

KEYS = ["trainer.max_epochs=1", "model.plot_examples=2", "early_stopping.stopping_threshold=null", "test=false"]


def test_tensorboard_holds_metrics_attention_images_and_the_examples_table(tiny, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = train(tiny(*KEYS, "logger.use=[tensorboard]", "trainer.log_every_n_steps=1"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    validated_at = metrics["steps"] - 1
    assert [e.step for e in events.Scalars("val/exact_match")] == [validated_at]
    assert len(events.Scalars("train/loss")) == metrics["steps"]
    assert [e.step for e in events.Images("val/attention_0")] == [validated_at]
    assert "learning_curve" in tags["images"]
    (text,) = events.Tensors("val/examples/text_summary")
    table = text.tensor_proto.string_val[0].decode()
    assert text.step == validated_at and table.startswith("| example | input | output | reference |")
    assert len(table.splitlines()) == 2 + 2  # header, rule, two examples


def test_mlflow_logs_to_a_local_store_and_a_resume_continues_its_run(tiny, tmp_path):
    import mlflow

    keys = [*KEYS, "logger.use=[mlflow]", "logger.mlflow.experiment_name=dates"]
    train(tiny(*keys))
    run_dir = tmp_path / "run"
    run_id = (run_dir / "mlflow-run-id").read_text().strip()
    train(tiny(*keys, "trainer.max_epochs=2", f"resume={run_dir}"))
    assert (run_dir / "mlflow-run-id").read_text().strip() == run_id
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")  # beside the run folder
    (experiment,) = [e for e in client.search_experiments() if e.name == "dates"]
    (run,) = client.search_runs([experiment.experiment_id])  # one MLflow run across the resume
    assert run.info.run_id == run_id
    history = client.get_metric_history(run_id, "val/exact_match")
    assert [m.step for m in history] == [9, 19]
    assert run.data.params["model/encode/type"] == "rnn"  # the config as built, flattened
    assert run.data.params["trainer/max_epochs"] == "1"  # MLflow's parameters cannot change: the first run's
    config = client.download_artifacts(run_id, "config.yaml", str(tmp_path))
    assert "max_epochs: 2" in open(config).read()  # the resumed run's
    figures = {a.path for a in client.list_artifacts(run_id, "figures")}
    assert "figures/val_attention_0-step0000009.png" in figures and "figures/learning_curve.png" in figures
    assert {a.path for a in client.list_artifacts(run_id, "examples")} == {
        "examples/step0000009.json",
        "examples/step0000019.json",
    }


def test_a_logger_whose_package_is_missing_is_refused_in_one_line(tiny, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(
        ConfigError, match=r"^logger.use: 'mlflow' needs the mlflow package: pip install 'eeap\[mlflow\]'"
    ):
        train(tiny("logger.use=[mlflow]"))
