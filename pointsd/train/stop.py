"""Stop requests: SIGTERM or SIGUSR1 ask a training run to stop after its current optimiser step.

What a cluster sends before it ends a job (SLURM: ``--signal``, the time limit, ``scancel``,
preemption) becomes a flag that the loop reads between steps (:func:`pointsd.train.loop.train`):
the step in progress finishes, the resume state is written, and the command exits with
:data:`pointsd.errors.EXIT_STOPPED`. In a run of several processes every process reads the flag of
all (one all-reduce per step), so they stop after the same step whichever of them was signalled.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Self

import torch
from accelerate import Accelerator

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopRequest:
    """While entered: SIGTERM and SIGUSR1 set :attr:`signal_name` instead of ending the process
    (the previous handlers come back on exit). Outside the main thread (where Python runs no signal
    handlers) it installs nothing and no stop is ever asked for."""

    def __init__(self, accelerator: Accelerator) -> None:
        self.accelerator = accelerator
        self.signal_name: str | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in SIGNALS:
            self.previous[sig] = signal.signal(sig, self._note)
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _note(self, signum: int, frame: FrameType | None) -> None:
        """The handler: only notes the first signal (the loop reports it when it stops)."""
        if self.signal_name is None:
            self.signal_name = signal.Signals(signum).name

    def agreed(self) -> str | None:
        """The signal's name if any process was asked to stop (every process gets the same answer)."""
        if self.accelerator.num_processes == 1:
            return self.signal_name
        code = 0 if self.signal_name is None else SIGNALS.index(signal.Signals[self.signal_name]) + 1
        flag = torch.tensor([code], device=self.accelerator.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        code = int(flag.item())
        return None if code == 0 else SIGNALS[code - 1].name
