"""A run over two machines (workflow/launch.py: one ``accelerate launch`` per machine, as srun starts them
under SLURM), tested as 2 machines × 1 process on this host: after the run every process holds the same
parameters (bit for bit), and the run equals one process with the same global batch (2 accumulation
steps): the same loss at every step and the same gradients at the first optimiser step, to float32
round-off; a process that fails ends both machines' launchers within seconds, its one line on stderr.

Gradients, not the parameters after the run, are what "the same global batch" is compared by: AdamW
scales each element of the gradient by its own running magnitude, so an element whose true gradient is 0
(the bias of a convolution followed by BatchNorm) moves by about ±lr on its round-off alone. Measured on
an AMD EPYC (AVX-512) here: first-step gradients differ by at most 6.6e-8 (gradients up to 1.3e-2), losses
by 4.8e-6 (relative, step 4), and after 4 steps at lr 1e-3 the parameters by 8.7e-4, the largest on such a bias. Two processes on
one machine and two machines hold bitwise the same gradients; DDP and accumulation sum the same values
through different kernels, bitwise equal on some CPUs and not on others (this one).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, env, free_port, launch, losses

from pointsd.diffusion.stable_diffusion import write_tiny_sd

sys.path.insert(0, str(ROOT / "workflow"))
from launch import accelerate_command, job_command, parse

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(600)]
WORKER = str(ROOT / "tests" / "distributed" / "pretrain_worker.py")
GRAD_TOLERANCE = 1e-4  # largest |difference| of a first-step gradient over the largest |gradient| (measured 4.9e-6;
# a wrong shard, a lost sample or a missed 1/2 makes it O(1))
LOSS_TOLERANCE = 1e-4  # relative difference of a step's loss (measured 4.8e-6 by step 4), as test_pretrain_distributed.py


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd")


def two_machines(tmp_path, sd, *extra: str) -> list[subprocess.Popen]:
    """Machine 0 and machine 1 of one run, each one process, started as launch.py starts them."""
    port, out = free_port(), tmp_path / "2m"
    program = [WORKER, "--stage", "1", "--sd", str(sd), "--out", str(out), "--seen", str(tmp_path / "2m-seen"),
               "--batch-size", "4", *extra]
    return [subprocess.Popen(accelerate_command(2, 1, rank, "127.0.0.1", port, program), cwd=ROOT, env=env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]


def test_two_machines_hold_the_parameters_of_one_process(tmp_path, sd):
    machines = two_machines(tmp_path, sd)
    outputs = [m.communicate(timeout=300) for m in machines]
    assert [m.returncode for m in machines] == [0, 0], outputs
    launch(1, WORKER, "--stage", "1", "--sd", str(sd), "--out", str(tmp_path / "1p"), "--seen",
           str(tmp_path / "1p-seen"), "--batch-size", "4", "--grad-accum", "2")
    ranks = [torch.load(tmp_path / "2m-seen" / f"params-{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys() and all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    grads, single = (torch.load(tmp_path / run / "grads-0.pt", weights_only=True) for run in ("2m-seen", "1p-seen"))
    assert grads.keys() == single.keys() == ranks[0].keys()
    largest = max(g.abs().max().item() for g in single.values())
    worst = max((grads[k].double() - single[k].double()).abs().max().item() for k in single)
    two, one = losses(tmp_path / "2m"), losses(tmp_path / "1p")
    print(f"2 machines vs 1 process × 2 accumulation steps: first-step gradients differ by {worst:.2e} "
          f"(largest {largest:.2e}), losses {two} vs {one}")
    assert largest > 0 and worst <= GRAD_TOLERANCE * largest
    assert len(two) == 4 and two == pytest.approx(one, rel=LOSS_TOLERANCE)
    assert torch.load(tmp_path / "2m" / "ckpt-stage1.pt", weights_only=True)


def test_a_failing_process_ends_every_machine_within_seconds(tmp_path, sd):
    started = time.monotonic()
    machines = two_machines(tmp_path, sd, "--fail-at", "2")
    outputs = [m.communicate(timeout=120) for m in machines]
    ended = time.monotonic() - started
    codes = [m.returncode for m in machines]
    print(f"a process failed after step 2: both machines ended {ended:.1f} s after the start, exits {codes}")
    assert all(code != 0 for code in codes), outputs
    failing = outputs[1][1].count("worker: process 1 fails after step 2 (on purpose)")
    assert failing == 1 and ended < 90, outputs[1][1][-3000:]
    assert not (tmp_path / "2m").exists()  # nothing published


def test_slurm_environment_gives_rank_address_and_port(monkeypatch):
    """Under SLURM, one machine's launcher takes its rank from SLURM_NODEID, the address from the job's first
    host and the port from the job id; a job over several nodes is one srun of a launcher per node."""
    monkeypatch.setattr("launch.first_host", lambda nodelist: {"gpu[07-08]": "gpu07"}[nodelist])
    slurm = {"SLURM_JOB_ID": "123456", "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "gpu[07-08]"}
    node = job_command(parse(["--node", "--nodes", "2", "--gpus", "4", "--", "pretrain", "--stage", "1"]), slurm)
    assert node == accelerate_command(2, 4, 1, "gpu07", 20000 + 123456 % 20000, ["-m", "pointsd", "pretrain",
                                                                                     "--stage", "1"])
    job = job_command(parse(["--nodes", "2", "--gpus", "4", "--", "pretrain"]), {"SLURM_JOB_ID": "7"})
    assert job[:5] == ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert job[-7:] == ["--node", "--nodes", "2", "--gpus", "4", "--", "pretrain"]
    with pytest.raises(SystemExit, match="needs a SLURM allocation"):
        job_command(parse(["--nodes", "2", "--gpus", "1", "--", "pretrain"]), {})
