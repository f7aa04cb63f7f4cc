"""Data-parallel training on PyTorch's own engine: torchrun starts the processes, `torch.distributed` joins them,
DistributedDataParallel averages the gradients. This module holds what the loop needs to know about that.

A run is distributed when torchrun (or `textrnn train --nproc N`, which calls torchrun's launcher) has set
WORLD_SIZE > 1 in the environment; `setup` then joins the process group (gloo on the CPU, NCCL on GPUs).

How a distributed run stays the same run as a single process's:

* Every rank draws the epoch's batches from the same seeded RNG, `batch_size * world_size` rows at a time (one
  global batch per step), and trains on its own slice of each (`data.batching.part_of`): the slices together
  are the whole batch, each text once, and a length-bucketed batch stays bucketed in every slice.
* Each rank's loss is its slice's share of the global batch's mean (`loss_weight`), so the gradient DDP
  averages is the gradient of the global batch's mean loss, also when the last batch splits unevenly.
* Dropout masks come from torch's RNG seeded afresh at every step from (seed, rank, step) (`step_seed`), so a
  resumed run draws the same masks on every rank without a checkpoint holding every rank's RNG.
* The running loss and accuracy, and a Ctrl-C on any rank, are summed over the ranks after every step in one
  small all-reduce (`Totals`), so every rank stops at the same step and every rank's position is the same.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ..errors import TextrnnError

log = logging.getLogger("textrnn")

# a collective that waits longer than this has lost a peer (rank 0 validates while the others wait in one)
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)

# This process's last collective, held from Python until its next one (or the interpreter's end). A gloo worker
# thread drops its reference to a collective just after completing it; were that the last one, the collective
# would be destroyed there, and with it its references to tensors Python made, which needs the GIL. A rank that
# returned from training and went straight on to end its interpreter could leave that thread waiting for the GIL
# until the interpreter finalized, which ends such a thread, and the C++ runtime then aborted the rank ("terminate
# called without an active exception", pytorch/pytorch#190489): 8 of 53 two-process language-model fits through
# the Python API under torchrun, 0 of 110 since. Held here, a collective is always destroyed by Python, with the
# GIL. (Holding the collective's tensors instead did not help, 6 of 40: the thread then drops a reference to a
# tensor Python holds, which needs the GIL as well.)
_last_collective = None


def _complete(work) -> None:
    """Wait for a collective started with async_op=True, and hold it (above)."""
    global _last_collective
    work.wait()
    _last_collective = work


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank `rank` of `size` processes (1 and 0 when not distributed)."""

    size: int = 1
    rank: int = 0
    local_rank: int = 0
    local_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """The rank that logs, validates, checkpoints and saves."""
        return self.rank == 0


def world_from_env() -> World:
    """The world torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE)."""
    env = os.environ
    size = int(env.get("WORLD_SIZE", 1))
    if size <= 1:
        return World()
    return World(size, int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)),
                 int(env.get("LOCAL_WORLD_SIZE", size)))


def current_world() -> World:
    """The world of the process group this process has joined; a single process when it has joined none."""
    if dist.is_available() and dist.is_initialized():
        env = world_from_env()
        return World(dist.get_world_size(), dist.get_rank(), env.local_rank, env.local_size)
    return World()


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun describes, once (gloo for the CPU, NCCL for CUDA); the world and the
    device this rank trains on (its own GPU: cuda:LOCAL_RANK)."""
    world = world_from_env()
    if not world.distributed:
        return world, device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
        # Leave the group before the interpreter tears itself down, for scripts that call the Python API under
        # torchrun (`end_process`, which `python -m textrnn` ends its processes with, skips the teardown instead).
        atexit.register(_leave_process_group)
        log.info("rank %d of %d joined the %s process group", world.rank, world.size, backend)
    return current_world(), device


def _leave_process_group() -> None:
    if dist.is_initialized():  # the caller may have left it already
        dist.destroy_process_group()


def end_process(status: int) -> None:
    """End this process with `status` at once where it has joined a process group (return otherwise): its
    output flushed, without the interpreter's teardown.

    Teardown is where a finished rank crashed now and then: a gloo worker thread still releasing the tensors of the
    last collective waited for the GIL, the interpreter, finalizing, ended that thread, and the C++ runtime aborted
    ("terminate called without an active exception", pytorch/pytorch#190489; the collectives here are now destroyed
    by Python, `_last_collective`, which ends that for scripts as well); a rank whose peer had died could also crash
    there on the broken connections. Everything the run keeps is written and closed before this."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, a stream already closed: nothing left to say
            pass
    os._exit(status)


def default_threads(local_size: int) -> int:
    """Threads per process that share this machine's cores among its `local_size` processes without
    oversubscribing them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_size))


def loss_weight(local_rows: int, global_rows: int, world: World) -> float:
    """What a rank's mean loss is multiplied by so that DDP's average of the ranks' gradients is the gradient of
    the global batch's mean loss: its share of the batch, times the world size DDP divides by."""
    return local_rows * world.size / global_rows


def step_seed(seed: int, rank: int, step: int) -> int:
    """Torch's RNG seed for step `step` on rank `rank`: distinct streams for every (seed, rank, step)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


class Totals:
    """One all-reduce per step of what every rank must agree on: the batch's loss sum, correct predictions and
    rows, and whether any rank was asked to stop (Ctrl-C)."""

    def __init__(self, device: torch.device):
        self.buffer = torch.zeros(4, dtype=torch.float64, device=device)

    def reduce(self, loss_sum: torch.Tensor, correct: torch.Tensor, rows: int, stop: bool) -> tuple[float, int, int,
                                                                                                     bool]:
        b = self.buffer
        b[0], b[1], b[2], b[3] = loss_sum, correct, rows, float(stop)
        _complete(dist.all_reduce(b, async_op=True))
        loss, correct, rows, stop = b.tolist()
        return loss, int(correct), int(rows), stop > 0


def broadcast_floats(values: list[float | None], world: World, device: torch.device) -> list[float | None]:
    """Rank 0's `values` on every rank (None travels as NaN)."""
    if not world.distributed:
        return values
    t = torch.tensor([float("nan") if v is None else float(v) for v in values], dtype=torch.float64, device=device)
    _complete(dist.broadcast(t, 0, async_op=True))
    return [None if np.isnan(v) else v for v in t.tolist()]


def check_supported(config, device: torch.device, world: World) -> None:
    """What a distributed run cannot do, refused before any work."""
    if not world.distributed:
        return
    if config.gradual_unfreezing:
        # DDP fixes the parameters it averages when it wraps the model; unfreezing adds some later
        raise TextrnnError("gradual unfreezing changes which weights train during the run, which DDP cannot "
                           "follow: train distributed without it (--no-gradual-unfreezing)")
    if device.type == "cuda" and config.optimizer in ("fast-adam", "lazy-adam"):
        raise TextrnnError(f"NCCL cannot average sparse gradients: {config.optimizer} needs the CPU (gloo); on GPUs "
                           "use --optimizer adam (the default there)")


def wrap(model: torch.nn.Module, device: torch.device, world: World, find_unused: bool = False) -> torch.nn.Module:
    """`model` under DistributedDataParallel in a distributed run (the weights are broadcast from rank 0, the
    gradients averaged in backward); the model itself otherwise. find_unused: some weights may get no gradient in
    a step (an adaptive softmax's tail clusters), which DDP must then look for."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # the networks hold no buffers to keep in sync
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def broadcast_weights(model: torch.nn.Module, world: World) -> None:
    """Rank 0's weights (and buffers) copied into `model` on every rank."""
    if not world.distributed:
        return
    for tensor in model.state_dict().values():
        _complete(dist.broadcast(tensor, 0, async_op=True))


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """Whether `flag` is set on any rank (every rank gets the same answer)."""
    if not world.distributed:
        return flag
    t = torch.tensor([float(flag)], device=device)
    _complete(dist.all_reduce(t, op=dist.ReduceOp.MAX, async_op=True))
    return bool(t.item())


def gather_batch(tensor: torch.Tensor, world: World, dim: int) -> torch.Tensor:
    """Every rank's `tensor` (this rank's rows of a batch) joined along `dim`, in rank order, on every rank."""
    if not world.distributed:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world.size)]
    _complete(dist.all_gather(parts, tensor.contiguous(), async_op=True))
    return torch.cat(parts, dim)
