"""A real one-machine SLURM cluster for the tests: munged, slurmctld and slurmd from Debian's packages (``slurm-wlm``,
``munge``; installed by .ci/run), started in a temporary folder with their own ports, key and state, as root.

Linux process tracking (``proctrack/linuxproc``), no cgroups, no accounting; a requeued job may start again after
5 s (``cred_expire``, 120 s by default) and the scheduler looks at the queue every second.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing() -> list[str]:
    """The programs of the cluster that this machine lacks."""
    found = {name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin") for name in (*DAEMONS, "sbatch")}
    return [name for name, path in found.items() if path is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """A running one-node cluster; ``env`` is the environment for its commands (``SLURM_CONF``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.node = socket.gethostname().split(".")[0]
        self.env = {**os.environ, "SLURM_CONF": str(self.folder / "slurm.conf")}
        for key in [k for k in self.env if k.startswith(("SLURM_", "SBATCH_", "SRUN_"))]:
            if key != "SLURM_CONF":
                del self.env[key]

    def start(self) -> SlurmCluster:
        f = self.folder
        for sub in ("state", "spool", "log"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        (f / "munge.key").write_bytes(os.urandom(1024))
        os.chmod(f / "munge.key", 0o400)
        sbin = "/usr/sbin:/sbin:" + os.environ.get("PATH", "")
        self.run(
            shutil.which("munged", path=sbin) or "munged",
            "--force",
            f"--socket={f / 'munge.socket'}",
            f"--key-file={f / 'munge.key'}",
            f"--log-file={f / 'log' / 'munged.log'}",
            f"--pid-file={f / 'munged.pid'}",
            f"--seed-file={f / 'munged.seed'}",
        )
        cpus = os.cpu_count() or 1
        (f / "slurm.conf").write_text(
            "\n".join(
                [
                    "ClusterName=eeaptest",
                    f"SlurmctldHost={self.node}(127.0.0.1)",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"SlurmctldPort={free_port()}",
                    f"SlurmdPort={free_port()}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={f / 'munge.socket'},cred_expire=5",
                    f"StateSaveLocation={f / 'state'}",
                    f"SlurmdSpoolDir={f / 'spool'}",
                    f"SlurmctldPidFile={f / 'slurmctld.pid'}",
                    f"SlurmdPidFile={f / 'slurmd.pid'}",
                    f"SlurmctldLogFile={f / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={f / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/none",
                    "SchedulerType=sched/backfill",
                    "SchedulerParameters=sched_interval=1,bf_interval=1",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU",
                    "ReturnToService=2",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "JobRequeue=1",
                    "KillWait=20",
                    "MinJobAge=600",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
                    f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
                ]
            )
            + "\n"
        )
        conf = str(f / "slurm.conf")
        self.run(shutil.which("slurmctld", path=sbin) or "slurmctld", "-f", conf, "-i")
        self.run(shutil.which("slurmd", path=sbin) or "slurmd", "-f", conf, "-N", self.node)
        deadline = time.time() + 60
        while time.time() < deadline:
            state = self.run("sinfo", "-h", "-N", "-o", "%t", check=False).stdout.strip()
            if state in ("idle", "mix", "alloc"):
                return self
            time.sleep(0.5)
        raise RuntimeError(f"the SLURM node did not come up (state {state!r}); see {f / 'log'}")

    def stop(self) -> None:
        self.run("scontrol", "shutdown", check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.folder / f"{name}.pid"
            if pid_file.is_file():
                try:
                    os.kill(int(pid_file.read_text().strip()), 15)
                except (ProcessLookupError, ValueError):
                    pass

    def run(self, *command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=check, timeout=60, **kwargs)

    def sbatch(self, *args: str, cwd: Path, env: dict | None = None) -> str:
        """Submit a batch job; its id."""
        done = subprocess.run(
            ["sbatch", "--parsable", *args], env={**self.env, **(env or {})}, cwd=cwd, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().split(";")[0]

    def job(self, job: str) -> dict[str, str]:
        """``scontrol show job``'s fields (JobState, Restarts, ...)."""
        text = self.run("scontrol", "-o", "show", "job", job).stdout
        return dict(part.split("=", 1) for part in text.split() if "=" in part)

    def wait(self, job: str, until: tuple[str, ...] = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"), timeout=300):
        """Wait for the job to reach one of the states ``until``; its fields then."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            fields = self.job(job)
            if fields.get("JobState") in until:
                return fields
            time.sleep(0.5)
        raise TimeoutError(f"job {job} still {fields.get('JobState')} after {timeout} s")
