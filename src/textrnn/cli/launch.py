"""`--nproc N`: run the same command as N data-parallel processes on this machine, through torchrun's own
elastic launcher (what `torchrun --standalone --nproc-per-node N -m textrnn ...` does), and report a failed
process in one line."""

from __future__ import annotations

import logging
import os
import sys

from ..errors import TextrnnError


def add_nproc_flag(group) -> None:
    group.add_argument("--nproc", type=int, metavar="N", help="train data-parallel in N processes on this machine "
                       "(torchrun, gloo on the CPU, NCCL on GPUs); the batch size is per process. Several "
                       "machines: run `torchrun ... -m textrnn train` on each (README)")


def in_launched_process() -> bool:
    """Whether this process is one of torchrun's workers (which must not launch again)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", 1)) > 1


def without_nproc(argv: list[str]) -> list[str]:
    """`argv` with its --nproc flag (and value) taken out."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def relaunch(args, nproc: int | None, out, verb: str = "train") -> int | None:
    """Where the command asks for several processes and this is not one of them: run it as `nproc` processes
    under torchrun and return their exit status. None: carry on in this process."""
    if (nproc or 1) <= 1 or in_launched_process():
        return None
    return launch(nproc, without_nproc(args.argv), str(out), args.debug, verb)


def resumed_processes(args, checkpoint) -> int:
    """How many processes `--resume` runs: --nproc, else as many as the checkpointed run had."""
    return args.nproc or checkpoint.state["position"].get("processes", 1)


def main_process() -> bool:
    """Whether this process reports and saves: the only one, or rank 0 of a distributed run."""
    from ..training.distributed import world_from_env

    return world_from_env().main


def root_cause(failures: dict) -> tuple:
    """The (rank, failure) to report among torchrun's failed processes: one killed by a signal, else the first to
    fail (the others lost it), else the lowest rank. A SIGTERM comes last: it is what torchrun stops the survivors
    of a failure with, and failures are timed to the second, so the rank that failed and the ranks torchrun then
    stopped often tie."""
    import signal

    return min(failures.items(), key=lambda f: (f[1].exitcode == -signal.SIGTERM, f[1].exitcode >= 0,
                                                f[1].timestamp, f[0]))


def launch(nproc: int, argv: list[str], resume_hint: str | None = None, debug: bool = False,
           verb: str = "train") -> int:
    """Run `python -m textrnn *argv` as `nproc` processes under torchrun's agent; their exit status.

    Each process gets cores / nproc threads (OMP_NUM_THREADS, unless set already), so that together they do not
    oversubscribe the machine. Ctrl-C reaches every process, which stop after their current step (rank 0 saves
    what was trained); the agent kills any still running 30 s later.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from ..training.distributed import default_threads

    if nproc < 1:
        raise TextrnnError(f"--nproc must be at least 1, got {nproc}")
    os.environ.setdefault("OMP_NUM_THREADS", str(default_threads(nproc)))
    if not debug:  # the agent's own log lines repeat what the one line below says
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed")]:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    torchrun = ["--standalone", f"--nproc-per-node={nproc}", "--monitor-interval=0.5", "-m", "textrnn", *argv]
    try:
        run(parse_args(torchrun))
    except ChildFailedError as exc:
        rank, failure = root_cause(exc.failures)
        if failure.exitcode < 0:
            cause = f"was killed by {failure.signal_name()}"
        elif failure.exitcode in (1, 2):  # the process said why itself
            return failure.exitcode
        else:
            cause = f"exited with status {failure.exitcode}"
        hint = f"; continue with: textrnn {verb} --resume {resume_hint}" if resume_hint else ""
        print(f"textrnn: error: process {rank} of {nproc} (pid {failure.pid}) {cause}, so torchrun stopped the "
              f"others{hint}", file=sys.stderr)
        return 1
    except SignalException as exc:
        print(f"textrnn: interrupted (signal {exc.sigval.name}); every process stopped", file=sys.stderr)
        return 130
    return 0
