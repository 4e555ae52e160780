"""Jobs that a cluster's launcher starts, not EEAP: a real SLURM (Debian's slurm-wlm, one machine, two CPU tasks under
DDP with gloo), torchrun agents as two nodes on one machine, requeues that continue exactly, ranks that fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from eeap.errors import ConfigError, stopped_line
from eeap.faults import Stopped
from eeap.training import cluster
from tests import slurm_cluster
from tests.conftest import ROOT

PARALLEL = ROOT / "configs" / "translation" / "parallel.yaml"


def corpus(path: Path, lines: int = 300) -> Path:
    path.write_text("".join(f"the {i} cat sat\tdie {i} katze sass\n" for i in range(lines)), encoding="utf-8")
    return path


def tiny(data: Path, cache: Path, *extra: str) -> list[str]:
    """A tiny translation model on ``data``: 270 train pairs, 9 batches an epoch on one rank of two (batch 16)."""
    return [
        f"data.train={data}",
        f"data.cache_dir={cache}",
        "data.vocab_size=60",
        "data.batch_size=16",
        "model.embed.dim=8",
        "model.embed.dropout=0.1",  # random draws that a resumed run must take back exactly
        "model.encode.hidden=8",
        "model.predict.embed_dim=8",
        "model.predict.hidden=8",
        "model.optim.scheduler=none",
        "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu",
        "trainer.log_every_n_steps=5",
        "test=false",
        *extra,
    ]


def weights(path: Path) -> tuple[int, dict]:
    checkpoint = torch.load(path, weights_only=True)
    return checkpoint["global_step"], checkpoint["state_dict"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def wandb_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


# ---------------------------------------------------------------- the launcher, from its environment


def test_the_launcher_and_the_job_are_read_from_the_environment():
    srun = {"SLURM_JOB_ID": "42", "SLURM_NTASKS": "4", "SLURM_PROCID": "3", "SLURM_STEP_ID": "0"}
    assert cluster.detect(srun) == cluster.Launch("slurm", 4, 3, "42", 0)
    assert cluster.detect({**srun, "SLURM_RESTART_COUNT": "2"}).restarts == 2
    array = {**srun, "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "7"}
    assert cluster.detect(array).job == "40_7"  # each array task its own folder
    # a shell inside an allocation (Lightning's convention) and a one-task batch script: EEAP launches
    assert cluster.detect({**srun, "SLURM_JOB_NAME": "interactive"}).launcher == "local"
    batch_one = {"SLURM_JOB_ID": "42", "SLURM_NTASKS": "1", "SLURM_RESTART_COUNT": "1"}
    assert cluster.detect(batch_one) == cluster.Launch("local", 1, 0, "42", 1)
    with pytest.raises(ConfigError, match="started by its batch script, not by srun; start the training as 'srun"):
        cluster.detect({"SLURM_JOB_ID": "42", "SLURM_NTASKS": "4"})
    elastic = {"TORCHELASTIC_RUN_ID": "exp1", "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}
    assert cluster.detect(elastic) == cluster.Launch("torchrun", 2, 1, "exp1", 0)
    assert cluster.detect({**elastic, "TORCHELASTIC_RUN_ID": "none"}).job is None  # rank 0's stamp is shared
    # srun torchrun ...: torchrun's trainers, named after the SLURM job
    assert cluster.detect({**elastic, **srun}) == cluster.Launch("torchrun", 2, 1, "42", 0)
    assert cluster.detect({}) == cluster.Launch("local")


def test_devices_and_nodes_that_differ_from_the_launchers_world_are_one_line(monkeypatch):
    slurm = cluster.Launch("slurm", 4, 0, "42")
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "2")
    monkeypatch.setenv("SLURM_NNODES", "2")
    cluster.check_world(2, 2, "cpu", slurm)
    with pytest.raises(ConfigError) as error:
        cluster.check_world(2, 1, "cpu", slurm)
    assert str(error.value) == (
        "trainer.devices × trainer.num_nodes = 2 × 1, but slurm started 4 processes; "
        "set trainer.devices=2 trainer.num_nodes=2"
    )
    with pytest.raises(ConfigError, match="give the processes a node runs"):
        cluster.check_world("auto", 2, "gpu", slurm)
    cores = len(os.sched_getaffinity(0))
    with pytest.raises(ConfigError, match=f"trainer.devices: {cores + 1} CPU processes, but this node has {cores}"):
        cluster.check_world(cores + 1, 1, "cpu", cluster.Launch("local"))


def test_a_ranks_distributed_failure_is_one_line_naming_it_and_other_errors_pass(monkeypatch):
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    lost = RuntimeError(
        "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:1420. "
        "This is typically caused by a remote worker crashing."
    )
    line = cluster.failure_line(lost, 1, 2, 30)
    assert line is not None and line.startswith("rank 1 lost rank 0 mid-run") and "\n" not in line
    assert line.endswith("(Connection closed by peer [127.0.0.1]:1420)")
    meet = RuntimeError("The client socket has timed out after 5000ms while trying to connect to (10.0.0.1, 29500).")
    line = cluster.failure_line(meet, 1, 2, 5)
    assert line is not None
    assert line.startswith("rank 1 of 2 could not meet the others at the rendezvous 10.0.0.1:29500 within 5 s")
    assert cluster.failure_line(RuntimeError("shape mismatch"), 1, 2, 5) is None
    assert cluster.failure_line(ValueError("closed by peer"), 1, 2, 5) is None


def test_a_requeued_stop_says_so_instead_of_a_command():
    stop = Stopped(signal.SIGUSR1, Path("runs/d/7/checkpoints/last.ckpt"), "epoch 1, step 9", "training", "requeued")
    assert stopped_line(stop, "eeap train") == (
        "stopped by SIGUSR1 at epoch 1, step 9; runs/d/7/checkpoints/last.ckpt holds the run so far; requeued"
    )


def test_a_requeued_job_continues_its_folder_and_a_fresh_one_is_still_refused(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from eeap.config.loader import check_config, resolve_config
    from eeap.training.run import resolve_run_dir

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith(("SLURM_", "TORCHELASTIC_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    run = check_config(OmegaConf.to_container(resolve_config("translation/dates")))
    assert resolve_run_dir(run) == (Path("runs/dates/4242"), None)  # the job's id names the folder
    last = tmp_path / "runs" / "dates" / "4242" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"checkpoint")
    with pytest.raises(ConfigError, match="already holds checkpoints"):  # the same id, not a requeue: refused
        resolve_run_dir(run)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert resolve_run_dir(run) == (Path("runs/dates/4242"), str(Path("runs/dates/4242/checkpoints/last.ckpt")))


# ---------------------------------------------------------------- a real SLURM


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    gone = slurm_cluster.missing()
    if gone:
        if os.environ.get("CI"):  # .ci/run installs slurm-wlm and munge: there, a missing daemon is a failure
            pytest.fail(f"SLURM is not installed: {', '.join(gone)} missing")
        pytest.skip(f"SLURM is not installed here ({', '.join(gone)}): apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        pytest.skip("the one-machine SLURM of the tests runs its daemons as root")
    if (os.cpu_count() or 1) < 2:
        pytest.skip("a two-task job needs two CPUs")
    cluster_ = slurm_cluster.SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    yield cluster_
    cluster_.stop()


@pytest.fixture(scope="module")
def job_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jobs")
    corpus(folder / "train.tsv")
    return folder


def submit(slurm, folder: Path, *overrides: str) -> str:
    """examples/slurm/train.sbatch as written, on two tasks of the one node, from ``folder``."""
    keys = tiny(folder / "train.tsv", folder / "cache", "trainer.max_epochs=4", *overrides)
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "WANDB_MODE": "offline"}
    script = ROOT / "examples" / "slurm" / "train.sbatch"
    return slurm.sbatch("--ntasks-per-node=2", str(script), str(PARALLEL), *keys, cwd=folder, env=env)


def output(folder: Path, job: str) -> str:
    path = folder / f"slurm-{job}.out"
    return path.read_text() if path.is_file() else ""


def wait_for(folder: Path, job: str, text: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while text not in output(folder, job):
        assert time.time() < deadline, f"no {text!r} in job {job}'s output:\n{output(folder, job)}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def unbroken(slurm, job_folder):
    """A two-task job run to its end: the one folder and one W&B run every rank shares, and the weights a broken
    job must end with."""
    job = submit(slurm, job_folder, "logger.use=[wandb,csv]")
    fields = slurm.wait(job)
    assert fields["JobState"] == "COMPLETED", output(job_folder, job)
    return job_folder / "runs" / "parallel" / job, job


def test_a_two_task_slurm_job_trains_into_one_folder_and_one_wandb_run(slurm, job_folder, unbroken):
    run_dir, job = unbroken
    text = output(job_folder, job)
    assert f"run folder runs/parallel/{job}\n" in text and text.count("run folder") == 1  # rank 0 speaks
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 36 and metrics["run_dir"] == f"runs/parallel/{job}"  # 9 batches a rank × 4 epochs
    assert text.count('"fit_time_s"') == 1  # the metrics once, not once a rank
    assert len(wandb_runs(run_dir)) == 1 and (run_dir / "wandb-id").is_file()
    assert [p.name for p in (job_folder / "runs" / "parallel").iterdir()] == [job]


def test_a_job_warned_by_its_scheduler_requeues_itself_and_ends_as_an_unbroken_job_bit_for_bit(
    slurm, job_folder, unbroken
):
    straight, _ = unbroken
    job = submit(slurm, job_folder, "logger=none")
    wait_for(job_folder, job, "step 17 ")  # mid-run: the second validation
    slurm.run("scancel", "--signal=USR1", job)  # what --signal=USR1@90 sends every task before the time limit
    wait_for(job_folder, job, "restart 1)")
    fields = slurm.wait(job)
    text = output(job_folder, job)
    assert fields["JobState"] == "COMPLETED" and fields["Restarts"] == "1", text
    assert f"SLURM job {job} requeued; it continues from there when it starts again" in text
    assert f"continuing runs/parallel/{job}/checkpoints/last.ckpt" in text
    step_a, a = weights(straight / "checkpoints" / "last.ckpt")
    step_b, b = weights(job_folder / "runs" / "parallel" / job / "checkpoints" / "last.ckpt")
    assert step_a == step_b == 36 and same_weights(a, b)


def test_scancel_stops_a_job_with_a_loadable_last_checkpoint_and_no_requeue(slurm, job_folder, unbroken, monkeypatch):
    job = submit(slurm, job_folder, "logger=none", "trainer.max_epochs=40")
    wait_for(job_folder, job, "step 8 ")
    slurm.run("scancel", job)
    fields = slurm.wait(job, until=("CANCELLED", "COMPLETED", "FAILED"))
    assert fields["JobState"] == "CANCELLED" and fields["Restarts"] == "0"
    last = job_folder / "runs" / "parallel" / job / "checkpoints" / "last.ckpt"
    wait_for(job_folder, job, f"{last.relative_to(job_folder)} holds the run so far; continue with:", timeout=30)
    step, state = weights(last)
    assert step >= 9 and state  # a whole checkpoint, read weights-only
    time.sleep(6)  # a requeue would start it again after cred_expire (5 s)
    assert slurm.job(job)["JobState"] == "CANCELLED"
    monkeypatch.setenv("SLURM_CONF", slurm.env["SLURM_CONF"])
    assert not cluster.at_time_limit(job)  # SLURM's own word: cancelled, not timed out


def test_a_sigterm_requeues_only_at_the_time_limit():
    """The lines of ``scontrol -o show job`` that SLURM 22.05 writes for a job it is ending at its time limit and
    for one ended by ``scancel`` (taken from the one-machine cluster, in the SIGTERM's handler)."""
    at_limit = "JobId=8 JobName=tl.sh JobState=COMPLETING Reason=TimeLimit Dependency=(null) Requeue=1 Restarts=0"
    cancelled = "JobId=7 JobName=tl.sh JobState=COMPLETING Reason=None Dependency=(null) Requeue=1 Restarts=0"
    assert cluster.timed_out(at_limit) and not cluster.timed_out(cancelled)
    assert cluster.requeues_on(signal.SIGUSR1, "7")  # the warning signal always asks for a requeue


def test_the_sigterm_of_the_requeue_itself_does_not_cut_its_report_short(tmp_path, monkeypatch):
    """``scontrol requeue`` makes SLURM send SIGTERM to the job while rank 0 still waits for scontrol's answer (seen
    under load: the run ended "stopped by SIGTERM" without saying it was requeued). That SIGTERM is the requeue's
    own: the run stops as the warning asked, with the requeue's report."""
    from types import SimpleNamespace

    from eeap.training.callbacks import StopOnSignal

    def requeue(job: str) -> str:
        os.kill(os.getpid(), signal.SIGTERM)  # what SLURM does to the job's tasks while scontrol runs
        time.sleep(0.2)  # the handler runs here
        return f"SLURM job {job} requeued; it continues from there when it starts again"

    monkeypatch.setattr(cluster, "requeue", requeue)
    last = tmp_path / "last.ckpt"
    trainer = SimpleNamespace(
        world_size=1, is_global_zero=True, current_epoch=2, global_step=20, save_checkpoint=lambda path: last.touch()
    )
    stop = StopOnSignal(last, requeue_job="7")
    stop.on_train_start(trainer, None)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)  # the scheduler's warning
        time.sleep(0.2)
        with pytest.raises(Stopped) as stopped:
            stop.on_train_batch_start(trainer, None, None, 0)
    finally:
        stop.teardown(trainer, None, "fit")
    assert stopped.value.signum == signal.SIGUSR1 and stopped.value.where == "epoch 2, step 20" and last.is_file()
    assert stopped.value.note == "SLURM job 7 requeued; it continues from there when it starts again"
    assert signal.getsignal(signal.SIGTERM) != stop.request  # the handlers from before training are back


# ---------------------------------------------------------------- torchrun agents as two nodes


def torchrun_nodes(tmp_path: Path, command: list[str], port: int, rdzv: str = "c10d", **kw) -> list:
    """Two torchrun agents with one process each, as two nodes meeting at 127.0.0.1:port; started, not waited."""
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    for key in [k for k in env if k.startswith("SLURM_")]:
        del env[key]
    agents = []
    for node in range(2):
        meet = (
            ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "nodes2"]
            if rdzv == "c10d"
            else ["--master-addr", "127.0.0.1", "--master-port", str(port), "--node-rank", str(node)]
        )
        agents.append(
            subprocess.Popen(
                [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1", *meet]
                + command,
                cwd=kw.get("cwd", tmp_path),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return agents


def finish(agents: list, timeout: float = 240) -> list[tuple[int, str, str]]:
    results = []
    for agent in agents:
        out, err = agent.communicate(timeout=timeout)
        results.append((agent.returncode, out, err))
    return results


def test_two_torchrun_nodes_share_one_folder_one_wandb_run_and_disjoint_shards(tmp_path):
    data = corpus(tmp_path / "train.tsv")
    keys = tiny(data, tmp_path / "cache", "trainer.max_epochs=1", "trainer.num_nodes=2", "trainer.devices=1")
    port = slurm_cluster.free_port()
    # static rendezvous, no run id: rank 0's timestamped folder reaches rank 1 through torchrun's store
    command = [str(ROOT / "tests" / "ddp_worker.py"), str(tmp_path / "seen"), str(PARALLEL), *keys]
    results = finish(torchrun_nodes(tmp_path, command, port, rdzv="static"))
    assert all(code == 0 for code, _, _ in results), results[0][2][-2000:] + results[1][2][-2000:]
    (run_dir,) = (tmp_path / "runs" / "parallel").iterdir()
    assert len(wandb_runs(run_dir)) == 1 and (run_dir / "checkpoints" / "last.ckpt").is_file()
    first, second = (json.loads((tmp_path / "seen" / f"rank{r}.json").read_text()) for r in (0, 1))
    assert len(first) == len(second) == 135 and not set(first) & set(second)  # 270 pairs, half each
    assert weights(run_dir / "checkpoints" / "last.ckpt")[0] == 9


def test_the_torchrun_example_trains_two_nodes_into_the_folder_of_its_rendezvous_id(tmp_path):
    data = corpus(tmp_path / "train.tsv")
    port = slurm_cluster.free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "NNODES": "2",
        "RDZV_ENDPOINT": f"127.0.0.1:{port}",
        "RDZV_ID": "exp7",
        "WANDB_MODE": "offline",
    }
    keys = tiny(data, tmp_path / "cache", "trainer.max_epochs=2", "logger=none")
    command = [str(ROOT / "examples" / "torchrun.sh"), str(PARALLEL), *keys]
    nodes = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = finish(nodes)
    assert all(code == 0 for code, _, _ in results), results[0][2][-2000:]
    metrics = json.loads((tmp_path / "runs" / "parallel" / "exp7" / "metrics.json").read_text())
    assert metrics["steps"] == 9 * 2  # 2 epochs of 9 batches a rank
    assert sum(out.count('"fit_time_s"') for _, out, _ in results) == 1  # one rank prints the metrics


def test_ranks_that_disagree_on_the_run_folder_stop_in_one_line(tmp_path):
    data = corpus(tmp_path / "train.tsv")
    keys = tiny(data, tmp_path / "cache", "trainer.num_nodes=2", "trainer.devices=1", "logger=none")
    script = str(ROOT / "train.py")
    port = slurm_cluster.free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    agents = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
            + ["--master-addr", "127.0.0.1", "--master-port", str(port), "--node-rank", str(node)]
            + [script, str(PARALLEL), *keys, f"run_dir={tmp_path / f'node{node}'}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in range(2)
    ]
    results = finish(agents)
    errors = [line for _, _, err in results for line in err.splitlines() if line.startswith("error:")]
    assert errors and all(
        line.startswith(f"error: run_dir: the ranks disagree on the run folder: rank 0 has {tmp_path / 'node0'}, ")
        for line in errors
    )
    assert not (tmp_path / "node0" / "checkpoints").exists()


def test_a_killed_rank_ends_the_job_in_seconds_with_one_line_naming_it(tmp_path):
    data = corpus(tmp_path / "train.tsv")
    keys = tiny(data, tmp_path / "cache", "trainer.max_epochs=200", "trainer.num_nodes=2", "trainer.devices=1")
    agents = torchrun_nodes(tmp_path, [str(ROOT / "train.py"), str(PARALLEL), *keys, "logger=none"], free_port())
    deadline = time.time() + 120
    while not list(tmp_path.glob("runs/parallel/nodes2/checkpoints/last.ckpt")):  # training under way
        assert time.time() < deadline and all(a.poll() is None for a in agents)
        time.sleep(0.3)
    workers = subprocess.run(["pgrep", "-f", "--", f"-u {ROOT / 'train.py'} "], capture_output=True, text=True)
    pids = sorted(int(pid) for pid in workers.stdout.split())
    assert len(pids) == 2
    victim = pids[-1]
    os.kill(victim, signal.SIGKILL)
    start = time.time()
    results = finish(agents, timeout=120)
    assert time.time() - start < 60  # bounded: not the collectives' 30-minute timeout
    errors = [line for _, _, err in results for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and " lost rank " in errors[0] and "mid-run" in errors[0], errors
    assert all(code != 0 for code, _, _ in results)


def free_port() -> int:
    return slurm_cluster.free_port()


def test_a_rank_that_cannot_reach_the_rendezvous_fails_in_one_line_within_the_timeout(tmp_path):
    """Rank 1 of a SLURM job whose rank 0 never comes: it gives up after cluster.timeout, naming the address."""
    data = corpus(tmp_path / "train.tsv")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_"))}
    env.update(
        SLURM_JOB_ID="77",
        SLURM_JOB_NAME="train",
        SLURM_NTASKS="2",
        SLURM_NTASKS_PER_NODE="2",
        SLURM_NNODES="1",
        SLURM_NODELIST="127.0.0.1",
        SLURM_PROCID="1",
        SLURM_LOCALID="1",
        SLURM_NODEID="0",
        SLURM_STEP_ID="0",
        MASTER_PORT=str(port),
    )
    keys = tiny(data, tmp_path / "cache", "trainer.devices=2", "logger=none", "cluster.timeout=4")
    start = time.time()
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), str(PARALLEL), *keys],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert errors[0].startswith(
        f"error: rank 1 of 2 could not meet the others at the rendezvous 127.0.0.1:{port} within 4 s (cluster.timeout)"
    )
    assert time.time() - start < 60
