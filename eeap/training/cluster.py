"""Runs that other programs start: what launched this process (SLURM's ``srun``, ``torchrun``, or EEAP itself), the
job's identity and run folder that every rank shares, a requeued job's continuation, and the checks that a launcher's
world matches ``trainer.devices`` × ``trainer.num_nodes``.

- **SLURM**: ``srun`` starts one task per device on every node; ``SLURM_JOB_ID`` names the run folder
  (``runs/<name>/<job id>``, an array task ``<job>_<task>``), the same after a requeue; a requeued job
  (``SLURM_RESTART_COUNT`` ≥ 1) continues that folder from its ``last.ckpt``. The scheduler's warning signal
  (``#SBATCH --signal=USR1@90``) stops the run after its batch with ``last.ckpt`` and, with ``cluster.requeue``,
  rank 0 asks ``scontrol requeue`` for the job.
- **torchrun**: ``--rdzv-id`` names the run folder; without one (torchrun's id ``none``), rank 0's timestamped folder is
  handed to every rank through torchrun's own store. An elastic restart (``TORCHELASTIC_RESTART_COUNT`` ≥ 1)
  continues the folder as a requeue does.
- Either way, once the ranks are connected they compare their run folders, and a difference is one ``error:`` line.

Importing this module imports neither torch nor Lightning.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from eeap.errors import ConfigError, one_line

SLURM_WARNING_SIGNAL = "SIGUSR1"  # what `#SBATCH --signal=USR1@90` sends before the time limit
INTERACTIVE_JOB_NAMES = ("bash", "interactive")  # Lightning's convention: a shell inside an allocation, not a job


@dataclass(frozen=True)
class Launch:
    """Who started this process and where it stands.

    # Parameters
    launcher: ``slurm`` (``srun``), ``torchrun``, or ``local`` (EEAP, with Lightning's own launcher for DDP).
    world_size, rank: the processes of the job and this one's place (1 and 0 for ``local``: Lightning starts the
        others later).
    job: the job's identity (SLURM's job id, torchrun's ``--rdzv-id``), or None.
    restarts: how many times the scheduler has started this job again (SLURM's requeues, torchrun's restarts).
    """

    launcher: str
    world_size: int = 1
    rank: int = 0
    job: Optional[str] = None
    restarts: int = 0

    @property
    def external(self) -> bool:
        return self.launcher != "local"


def detect(env: Optional[Mapping[str, str]] = None) -> Launch:
    """The launcher of this process, from its environment. torchrun wins over SLURM when both are there (``srun
    torchrun ...`` starts torchrun's agents as SLURM's tasks; the trainers are torchrun's)."""
    env = os.environ if env is None else env
    if all(key in env for key in ("TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE", "LOCAL_RANK")):
        job = slurm_job(env) or (env["TORCHELASTIC_RUN_ID"] if env["TORCHELASTIC_RUN_ID"] != "none" else None)
        restarts = int(env.get("SLURM_RESTART_COUNT", 0)) + int(env.get("TORCHELASTIC_RESTART_COUNT", 0))
        return Launch("torchrun", int(env["WORLD_SIZE"]), int(env["RANK"]), job, restarts)
    job, restarts = slurm_job(env), int(env.get("SLURM_RESTART_COUNT", 0))
    if "SLURM_NTASKS" in env and job is not None and env.get("SLURM_JOB_NAME") not in INTERACTIVE_JOB_NAMES:
        tasks = int(env["SLURM_NTASKS"])
        if "SLURM_STEP_ID" in env:  # a task that srun started
            return Launch("slurm", tasks, int(env.get("SLURM_PROCID", 0)), job, restarts)
        if tasks > 1:  # the batch script itself: one process where the job asked for several
            raise ConfigError(
                f"SLURM job {job} has {tasks} tasks, but this process was started by its batch script, not by "
                "srun; start the training as 'srun python train.py ...' (one task per device)"
            )
    return Launch("local", job=job, restarts=restarts if job is not None else 0)


def slurm_job(env: Mapping[str, str]) -> Optional[str]:
    """SLURM's name for the job: ``<job id>``, or ``<array job id>_<task id>`` for a task of a job array."""
    if "SLURM_ARRAY_JOB_ID" in env and "SLURM_ARRAY_TASK_ID" in env:
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


def share_run_dir(run_dir: Path, launch: Launch, timeout_s: float) -> Path:
    """Rank 0's run folder, for every rank of a torchrun job without a ``--rdzv-id`` (each rank would stamp its own
    time otherwise): rank 0 puts it in torchrun's store, the others read it there."""
    if (
        launch.launcher != "torchrun"
        or launch.world_size == 1
        or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
    ):
        return run_dir
    from datetime import timedelta

    import torch.distributed as dist

    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    try:
        store = dist.TCPStore(host, port, is_master=False, timeout=timedelta(seconds=timeout_s))
        key = f"eeap/run_dir/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
        if launch.rank == 0:
            store.set(key, str(run_dir))
            return run_dir
        return Path(store.get(key).decode())
    except (RuntimeError, dist.DistError) as e:
        raise ConfigError(
            f"rank {launch.rank} could not reach torchrun's store at {host}:{port} within {timeout_s:g} s "
            f"(cluster.timeout) to learn rank 0's run folder: {one_line(e)}"
        ) from None


def requeue(job: str) -> str:
    """Ask SLURM to run ``job`` again (``scontrol requeue``); what happened, in words."""
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"could not requeue SLURM job {job} ({one_line(e)}); resubmit it to continue"
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        return f"SLURM refused to requeue job {job} ({reason[-1] if reason else f'exit {done.returncode}'})"
    return f"SLURM job {job} requeued; it continues from there when it starts again"


def requeues_on(signum: int, job: str) -> bool:
    """Whether a stop by ``signum`` requeues the job: SLURM's warning signal does; SIGTERM does when SLURM sent it at
    the job's time limit (SLURM reports the job timed out), not when ``scancel`` or a person sent it."""
    import signal

    if signum == getattr(signal, SLURM_WARNING_SIGNAL, None):
        return True
    return signum == signal.SIGTERM and at_time_limit(job)


def at_time_limit(job: str) -> bool:
    """SLURM's word on the job: ended for its time limit (``scontrol show job``'s ``Reason=TimeLimit``, which it
    shows from the moment it sends SIGTERM; a ``scancel`` leaves ``Reason=None``)."""
    try:
        done = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return timed_out(done.stdout)


def timed_out(job_line: str) -> bool:
    """Whether ``scontrol -o show job``'s line says the job reached its time limit."""
    return "Reason=TimeLimit" in job_line.split() or "JobState=TIMEOUT" in job_line.split()


def check_world(devices: Any, num_nodes: int, accelerator: str, launch: Launch) -> None:
    """Refuse in one line ``trainer.devices`` × ``trainer.num_nodes`` that differ from the processes the launcher
    started, and more CPU processes on a node than it has cores."""
    if isinstance(devices, int) and accelerator == "cpu" and not launch.external:  # EEAP starts the processes
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if devices > cores:
            raise ConfigError(
                f"trainer.devices: {devices} CPU processes, but this node has {cores} cores; "
                f"choose at most {cores} (or accelerator=gpu)"
            )
    if not launch.external or launch.world_size == 1 and num_nodes == 1:
        return
    if isinstance(devices, int) and devices * num_nodes != launch.world_size:
        per_node = os.environ.get("SLURM_NTASKS_PER_NODE") or os.environ.get("LOCAL_WORLD_SIZE")
        nodes = os.environ.get("SLURM_NNODES") or os.environ.get("GROUP_WORLD_SIZE")
        hint = f"; set trainer.devices={per_node} trainer.num_nodes={nodes}" if per_node and nodes else ""
        raise ConfigError(
            f"trainer.devices × trainer.num_nodes = {devices} × {num_nodes}, but {launch.launcher} started "
            f"{launch.world_size} processes{hint}"
        )
    if num_nodes > 1 and devices in ("auto", -1, "-1"):
        raise ConfigError(
            f"trainer.devices: give the processes a node runs ({launch.launcher} started {launch.world_size} in all "
            f"on trainer.num_nodes={num_nodes}), not {devices!r}"
        )


def environment(launch: Launch) -> list:
    """Lightning's cluster environment for this launcher, given explicitly: SLURM's without Lightning's own requeue
    (EEAP's signal handling writes the checkpoint it continues from, ``StopOnSignal``); torchrun's even inside a SLURM
    allocation (Lightning would take SLURM's tasks for the trainers)."""
    if launch.launcher == "slurm":
        import signal

        from lightning.fabric.plugins.environments import SLURMEnvironment

        return [SLURMEnvironment(auto_requeue=False, requeue_signal=signal.SIGUSR1)]
    if launch.launcher == "torchrun":
        from lightning.fabric.plugins.environments import TorchElasticEnvironment

        return [TorchElasticEnvironment()]
    return []


def strategy(name: str, timeout_s: float, launch: Launch, unused: bool = False) -> Any:
    """``trainer.strategy`` with ``cluster.timeout`` for the ranks' rendezvous and collectives, when it is one of
    Lightning's DDP strategies (``auto`` under an external launcher of several processes is DDP); else the name.
    ``unused``: some parameters get no gradient for part of the run (a frozen encoder), which DDP must be told."""
    from datetime import timedelta

    from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

    if name == "auto" and launch.external and launch.world_size > 1:
        name = "ddp"
    entry = StrategyRegistry[name] if name in StrategyRegistry else None
    if entry is None or not issubclass(entry["strategy"], DDPStrategy):
        return name
    extra = {"find_unused_parameters": True} if unused else {}
    return entry["strategy"](**{**entry["init_params"], **extra}, timeout=timedelta(seconds=timeout_s))


def failure_line(error: BaseException, rank: int, world: int, timeout_s: float) -> Optional[str]:
    """A distributed job's failure in one line, or None when ``error`` is not one: a rank that could not meet the
    others at the rendezvous within ``cluster.timeout``, or that lost another rank mid-run (its process ended, its
    node went away). The launcher's own report names the rank that ended (``srun: error: ... task 1``, torchrun's
    ``Root Cause``); two ranks name each other. ``rank`` of ``world``: this process's place in the job."""
    if not isinstance(error, RuntimeError):
        return None
    text = " ".join(str(error).split())
    where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    reason = re.sub(r"^\[[^\]]*\]\s*", "", text.split(" frame #0")[0].split(" Exception raised from")[0])
    reason = reason.split(". This is typically caused")[0][:300]
    meeting = ("trying to connect", "waiting for clients", "timed out", "Timed out", "Connection refused")
    lost = ("closed by peer", "reset by peer", "Connection closed", "Broken pipe", "got 0 bytes")
    if any(word in text for word in lost):
        other = f"rank {1 - rank}" if world == 2 else "another rank"
        return (
            f"rank {rank} lost {other} mid-run (its process ended or its node went away; the launcher's log names "
            f"it): the job ends here, and resume= or a requeue continues from its last checkpoint ({reason})"
        )
    if any(word in text for word in meeting):
        return (
            f"rank {rank} of {world} could not meet the others at the rendezvous {where} within "
            f"{timeout_s:g} s (cluster.timeout): is the first node up, and its port open to this one? ({reason})"
        )
    return None
