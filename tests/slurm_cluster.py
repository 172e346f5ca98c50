"""Test helper: a real one-node SLURM cluster (munged, slurmctld, slurmd) in a temporary folder.

The daemons are Debian's (``apt-get install slurm-wlm munge``), started in the foreground as
child processes of the test, with their own munge key and socket, configuration, state, spool,
logs and TCP ports, and stopped by their process ids (never by name). Nothing outside the folder
is touched, so a system-wide munge or SLURM on the machine is left alone.

The node has ``cpus`` CPUs (as declared, whatever the machine has:
``SlurmdParameters=config_overrides``), at most half the machine's memory, and one GPU that
SLURM can schedule but that does not exist (``gres.conf``: ``File=/dev/null``): enough for the
SLURM executor plugin's ``--gpus=1`` to be accepted and recorded as ``TresPerJob=gres:gpu:1``.
Accounting is off (no slurmdbd): jobs are followed with ``squeue``, and ``MinJobAge=600`` keeps
finished jobs visible to ``squeue`` and ``scontrol show job`` for ten minutes.

One shim: snakemake-executor-plugin-slurm-jobstep (0.6) drops every ``SLURM_*`` variable but a
few from the environment before it calls ``srun`` inside a job, ``SLURM_CONF`` included, so that
``srun`` looks for ``/etc/slurm/slurm.conf`` (or a configless cache under ``/run/slurm``). A real
cluster has its configuration there; this one lives in its temporary folder and writes nothing
outside it, so ``bin/srun`` there (first on ``PATH``) puts ``SLURM_CONF`` back and runs the real
``srun``.

``node_profile`` fits ``profiles/slurm`` to this node (memory capped, the local run's threads,
``squeue`` for status). Used by tests/test_slurm.py (the demo through the cluster) and
tests/test_slurm_profile.py (every job of the demo fits the node, no cluster needed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "slurm" / "config.yaml"
JOB_MEM_MB = 3000  # what one job may ask for on the test node (of its 8000 MB)

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "srun", "sinfo")
PARTITION = "bioprobe_test"


def missing_programs() -> list[str]:
    """The SLURM and munge programs that are not on PATH (or in /usr/sbin)."""
    return [p for p in DAEMONS + CLIENTS if _which(p) is None]


def node_profile(profile: dict, cores: int, job_mem_mb: int) -> dict:
    """``profiles/slurm`` fitted to one small node, polling quickly; everything else kept.

    Only what the profile sizes is capped: a rule's own ``resources:`` that the profile does not
    override reach ``sbatch`` as the rule states them (tests/test_slurm_profile.py checks that
    none of the demo's exceeds the node)."""
    out = dict(profile)
    # The threads of the local run (--cores 2 caps every rule at 2); --cores also caps the width
    # of a group job, so grouped probes run one after the other instead of asking for 6 CPUs.
    out["cores"] = cores
    out["set-threads"] = {rule: min(int(n), cores) for rule, n in profile.get("set-threads", {}).items()}

    def cap(resources: dict) -> dict:
        resources = dict(resources)
        if "mem_mb" in resources:
            resources["mem_mb"] = f"min({job_mem_mb}, {resources['mem_mb']})"
        if "cpus_per_task" in resources:
            resources["cpus_per_task"] = min(int(resources["cpus_per_task"]), cores)
        return resources

    out["default-resources"] = cap(profile.get("default-resources", {}))
    out["set-resources"] = {rule: cap(res) for rule, res in profile.get("set-resources", {}).items()}
    # No accounting database here: squeue for status, and no account (the plugin would ask
    # sacctmgr). MinJobAge=600 keeps finished jobs visible to squeue.
    out["slurm-status-command"] = "squeue"
    out["slurm-init-seconds-before-status-checks"] = 2
    out["slurm-keep-successful-logs"] = True
    out["latency-wait"] = 5
    return out


def _which(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _total_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("/proc/meminfo has no MemTotal line")


class SlurmCluster:
    """``with SlurmCluster() as cluster:``; ``cluster.env`` is the environment for clients."""

    def __init__(self, cpus: int = 2, max_mem_mb: int = 8000, root: Path | None = None):
        self.host = socket.gethostname().split(".")[0]
        self.cpus = cpus
        self.mem_mb = min(max_mem_mb, _total_memory_mb() // 2)
        # Short path: a unix socket's path is limited to 108 bytes.
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="bp-slurm-"))
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ, SLURM_CONF=str(self.conf), PATH=f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        for name in list(self.env):  # a test run inside a SLURM job must not leak into ours
            if name.startswith(("SLURM_", "SBATCH_", "SRUN_")) and name != "SLURM_CONF":
                del self.env[name]

    # ------------------------------------------------------------------ set-up
    def write_config(self) -> None:
        for sub in ("munge", "state", "spool", "log", "bin"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        srun = self.root / "bin" / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{_which("srun")}" "$@"\n')
        srun.chmod(0o755)
        os.chmod(self.root / "munge", 0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        r = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=bioprobe",
                    f"SlurmctldHost={self.host}(127.0.0.1)",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"StateSaveLocation={r}/state",
                    f"SlurmdSpoolDir={r}/spool",
                    f"SlurmctldPidFile={r}/slurmctld.pid",
                    f"SlurmdPidFile={r}/slurmd.pid",
                    f"SlurmctldLogFile={r}/log/slurmctld.log",
                    f"SlurmdLogFile={r}/log/slurmd.log",
                    "SlurmctldDebug=info",
                    "SlurmdDebug=info",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    "MpiDefault=none",
                    "SchedulerType=sched/backfill",
                    "SchedulerParameters=sched_interval=2",
                    "MinJobAge=600",
                    "ReturnToService=2",
                    "SlurmdParameters=config_overrides",
                    "GresTypes=gpu",
                    f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb} "
                    "Gres=gpu:1 State=UNKNOWN",
                    # Not the default partition: a job reaches it only if the profile names it.
                    f"PartitionName={PARTITION} Nodes={self.host} Default=NO MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        (self.root / "gres.conf").write_text(f"NodeName={self.host} Name=gpu File=/dev/null\n")

    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root)
        log.close()

    def start(self, timeout: float = 60) -> None:
        self.write_config()
        m = self.root / "munge"
        self._start(
            "munged",
            [_which("munged"), "--foreground", "--force", f"--key-file={m}/munge.key", f"--socket={self.munge_socket}",
             f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log", f"--seed-file={m}/munged.seed"],
        )
        self._wait(lambda: self.munge_socket.exists(), timeout, "munged did not create its socket")
        self._start("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self._run("scontrol", "ping").returncode == 0 and b"UP" in self._run("scontrol", "ping").stdout,
                   timeout, "slurmctld does not answer 'scontrol ping'")
        self._start("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.host])
        self._wait(self._node_idle, timeout, "the node did not become idle")

    def _node_idle(self) -> bool:
        out = self._run("sinfo", "-h", "-N", "-o", "%T", "-p", PARTITION).stdout.decode().split()
        return bool(out) and out[0].rstrip("*") in ("idle", "mixed")

    def _run(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([_which(cmd[0]), *cmd[1:]], capture_output=True, env=self.env, timeout=30)

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited early.\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{what} within {timeout:.0f} s.\n{self.logs()}")

    # ------------------------------------------------------------------ use
    def scontrol(self, *args: str) -> str:
        proc = self._run("scontrol", *args)
        if proc.returncode != 0:
            raise RuntimeError(f"scontrol {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc.stdout.decode()

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (``scontrol show job -o``), as key=value dicts."""
        out = self.scontrol("show", "job", "-o")
        records = []
        for line in out.splitlines():
            if not line.strip() or line.startswith("No jobs"):
                continue
            record = {}
            for field in line.split():
                key, sep, value = field.partition("=")
                if sep:
                    record[key] = value
            records.append(record)
        return records

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")) + [self.root / "munge" / "munged.log"]:
            if path.is_file():
                parts.append(f"--- {path}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ tear-down
    def stop(self) -> None:
        """Cancel what is left in this cluster's queue, then SIGTERM each daemon by its pid
        (slurmd first) and SIGKILL what does not exit."""
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None and _which("scancel"):
            try:
                self._run("scancel", "--full", f"--partition={PARTITION}")
            except (OSError, subprocess.SubprocessError):
                pass
        for name in reversed(DAEMONS):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self) -> "SlurmCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
