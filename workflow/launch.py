"""Start a training command: on one process or several, on one node or several, inside a SLURM job or not.
Every training rule runs through it (workflow/rules/common.smk).

    python workflow/launch.py --nodes N --gpus G -- finetune --task ... # the job: one node, or srun over N
    python workflow/launch.py --nodes N --gpus G --machine-rank R --main-address HOST --port P -- ARGS

Each node runs one ``accelerate launch`` (torchrun) of ``pointsd ARGS`` with G processes; N × G processes
train data-parallel. Under SLURM with N > 1 the job runs ``srun --ntasks-per-node=1 --kill-on-bad-exit=1``
of this script, and each node's rank, main address and port come from SLURM's environment: the rank from
``SLURM_NODEID``, the address from the first host of ``SLURM_JOB_NODELIST`` (``scontrol show hostnames``),
the port from ``SLURM_JOB_ID`` (so two jobs on one node never share one). ``--machine-rank`` and friends
set them by hand (the tests: two machines on one host). One node without SLURM takes a free port.
A process that fails ends the job: torchrun stops the node's other processes, srun the other nodes.

Inside a SLURM job the command runs as its own job step (``srun --overlap``): SLURM sends a step's
signals (``--signal``, the time limit, ``scancel``, preemption) to the processes srun started, not to
their children, and Snakemake's jobstep makes Snakemake itself the task of the job's first step. As a
step's task, ``pointsd`` (or torchrun, which passes the signal on to its processes) gets SIGTERM, saves
its state and exits 75, while Snakemake, which also gets it, waits for the job to end.
Like workflow/stage_table.py, this script does not import the ``pointsd`` package.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys

PORT_BASE, PORT_SPAN = 20000, 20000


def free_port() -> int:
    """A TCP port free on this host now."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def job_port(job_id: str) -> int:
    """The rendezvous port of SLURM job ``job_id``: the same on every node of the job, different for
    jobs whose ids differ by less than ``PORT_SPAN``."""
    return PORT_BASE + int(job_id) % PORT_SPAN


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``node[01-04]`` → ``node01``)."""
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def accelerate_command(nodes: int, gpus: int, rank: int, address: str, port: int, program: list[str]) -> list[str]:
    """``accelerate launch`` of ``program`` (``-m pointsd ARGS``) as machine ``rank`` of ``nodes``, ``gpus`` each."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", str(nodes * gpus), "--num_machines", str(nodes),
            "--machine_rank", str(rank), "--main_process_ip", address, "--main_process_port", str(port),
            "--mixed_precision", "no", "--dynamo_backend", "no", *program]


def node_command(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    """This node's launcher: rank, address and port from the flags, else from SLURM's environment."""
    program = ["-m", "pointsd", *args.command]
    if args.nodes == 1 and args.machine_rank is None:
        port = job_port(env["SLURM_JOB_ID"]) if "SLURM_JOB_ID" in env else free_port()
        return accelerate_command(1, args.gpus, 0, "127.0.0.1", port, program)
    rank = args.machine_rank if args.machine_rank is not None else int(env["SLURM_NODEID"])
    address = args.main_address or first_host(env["SLURM_JOB_NODELIST"])
    port = args.port or job_port(env["SLURM_JOB_ID"])
    return accelerate_command(args.nodes, args.gpus, rank, address, port, program)


def job_log(job_id: str) -> str | None:
    """The file SLURM job ``job_id`` writes its output to (``scontrol show job``), if it says."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=False).stdout
    found = re.search(r"\bStdOut=(\S+)", out)
    return found.group(1) if found else None


def step_command(command: list[str], env: dict[str, str]) -> list[str]:
    """``command`` as a step of the SLURM job this runs in (sharing the job's CPUs, memory and GPUs), its output
    appended to the job's log (Snakemake empties a rule's log file before each attempt; the job's is one per
    attempt and kept); outside SLURM ``command`` as is."""
    if "SLURM_JOB_ID" not in env:
        return command
    step = ["srun", "--overlap", "--nodes=1", "--ntasks=1", f"--cpus-per-task={env.get('SLURM_CPUS_PER_TASK', '1')}"]
    if env.get("SLURM_GPUS_ON_NODE"):
        step.append(f"--gpus={env['SLURM_GPUS_ON_NODE']}")
    log = job_log(env["SLURM_JOB_ID"])
    if log:
        step += [f"--output={log}", "--open-mode=append"]
    return [*step, *command]


def job_command(args: argparse.Namespace, env: dict[str, str]) -> list[str]:
    """The command this invocation runs: ``pointsd``, this node's launcher, or srun of one launcher per node."""
    if args.machine_rank is not None or args.node:
        return node_command(args, env)
    if args.nodes == 1:
        single = [sys.executable, "-m", "pointsd", *args.command]
        return step_command(single if args.gpus == 1 else node_command(args, env), env)
    if "SLURM_JOB_ID" not in env:
        raise SystemExit(f"launch: --nodes {args.nodes} needs a SLURM allocation of {args.nodes} nodes "
                         "(or --machine-rank, --main-address and --port on each machine)")
    return ["srun", f"--nodes={args.nodes}", f"--ntasks={args.nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            sys.executable, os.path.abspath(__file__), "--node", "--nodes", str(args.nodes), "--gpus", str(args.gpus), "--",
            *args.command]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, required=True, help="machines (nodes) of the run")
    parser.add_argument("--gpus", type=int, required=True, help="processes (GPUs) per machine")
    parser.add_argument("--node", action="store_true", help="one machine of a SLURM job (what srun starts)")
    parser.add_argument("--machine-rank", type=int, help="this machine's rank (default: SLURM_NODEID)")
    parser.add_argument("--main-address", help="machine 0's address (default: the job's first host)")
    parser.add_argument("--port", type=int, help="machine 0's rendezvous port (default: from SLURM_JOB_ID)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the pointsd arguments")
    args = parser.parse_args(argv)
    args.command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.nodes < 1 or args.gpus < 1 or not args.command:
        parser.error("need --nodes >= 1, --gpus >= 1 and a pointsd command after --")
    return args


def main(argv: list[str] | None = None) -> None:
    command = job_command(parse(sys.argv[1:] if argv is None else argv), dict(os.environ))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
