"""Adam, made cheap for an RNN classifier on a CPU, without changing what Adam computes.

With batches of 8-16 short texts, `torch.optim.Adam` spends longer on the optimizer step than on the model:
it updates every row of a 1.3-2.6 million-weight embedding table every step, although a batch touches a few
hundred rows, and it pays a per-tensor cost for each of the small RNN weights. `FastAdam` removes both costs:

* Every parameter but the embedding lives in one flat buffer, and so does its gradient, so the (exact) Adam
  update is a handful of vectorised operations on one tensor instead of a loop over tensors.
* The embedding gets a sparse gradient, and only the rows of the batch are updated. A row that is absent from
  a batch has a zero gradient, so dense Adam would only decay its moments (m <- b1 m, v <- b2 v) and keep
  moving it by the decaying momentum. Those skipped moves are deterministic, so they are applied later, in
  one go, just before the row is read again (a forward pre-hook on the embedding) or when training ends
  (`flush`). Their sums are kept up to date as training goes (one vectorised add a step, for the rows last
  updated at each recent step), so catching a row up reads one number rather than summing its missed steps,
  and a batch's rows are caught up, and later updated, by a few index operations on a table that holds both
  moments side by side. The result follows dense Adam closely: the skipped moves are summed over at most
  `catch_up_horizon` steps, by which time the momentum has decayed below 1e-6 of its size, and epsilon enters
  once per catch-up instead of once per step, which matters only for rows whose gradients are near epsilon.
  `catch_up=False` gives plain lazy Adam (`torch.optim.SparseAdam`, TensorFlow's LazyAdam) instead.

`weight_decay` is decoupled, as in `torch.optim.AdamW`: every step first shrinks every weight by
(1 - lr * weight_decay). A skipped embedding row is shrunk at catch-up by the product of the factors it
missed, kept exactly (as a running sum of their logarithms) however long ago it was last read; lazy Adam
shrinks a row only on the steps that read it.

`state_dict()` returns tensors and JSON-able numbers only (checkpoints are safetensors plus JSON, never
pickles); with `load_state_dict()` a resumed run continues bit for bit.
"""

from __future__ import annotations

import ctypes
import math
from functools import cache
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from .. import native

SOURCE = Path(__file__).with_name("adam_kernel.cpp")
ABI = 3  # adam_kernel.cpp's textrnn_adam_abi(): the argument lists below are for this version of the source
ENABLED_ENV = "TEXTRNN_ADAM_KERNEL"  # "0": FastAdam runs on PyTorch's operators only


_P, _I, _N, _D, _F = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_double, ctypes.c_float
SIGNATURES = {"textrnn_adam_catch_up": ([_N, _P, _N, _I, _N] + [_P] * 6 + [_D, _D, _I], _N),
              "textrnn_adam_coalesce": ([_N, _P, _P, _I, _P, _P, _P], _N),
              "textrnn_adam_rows": ([_N, _P, _P, _I, _N, _P, _P, _P] + [_F] * 7 + [_I], None),
              "textrnn_adam_dense": ([_N] + [_P] * 4 + [_F] * 7 + [_I], None)}


@cache
def kernel() -> ctypes.CDLL | None:
    """FastAdam's compiled step (adam_kernel.cpp), building it if this machine has not yet; None where it cannot
    be had (then PyTorch's operators do the same arithmetic)."""
    return native.load(SOURCE, "textrnn_adam_abi", ABI, ENABLED_ENV, SIGNATURES)


class FastAdam(torch.optim.Optimizer):
    """Adam with one flat buffer for dense parameters and row-wise updates for `embedding`'s table.

    `embedding` must produce sparse gradients (`nn.Embedding(..., sparse=True)`). Call `zero_grad()` between
    steps as usual (dense gradients are views of one buffer and are zeroed in place), and `flush()` before the
    weights are read other than through the embedding's forward (saving them, say); `fit` does this.
    """

    catch_up_horizon = 128  # (b1 / sqrt(b2)) ** 128 < 2e-6

    def __init__(self, params: Iterable[nn.Parameter], embedding: nn.Embedding | None = None, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, catch_up: bool = True,
                 max_grad_norm: float | None = None, weight_decay: float = 0.0):
        params = [p for p in params if p.requires_grad]
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.embedding = embedding
        self.max_grad_norm = max_grad_norm  # clip the whole gradient (dense and embedding rows) to this norm
        if embedding is not None and not embedding.weight.requires_grad:
            embedding = self.embedding = None  # a frozen embedding is not optimised
        table = embedding.weight if embedding is not None else None
        self.dense_params = [p for p in params if p is not table]
        self.catch_up = catch_up and table is not None
        self.steps = 0
        # A data-parallel step's gradient holds the rows every rank read, and this process's forward hook has
        # caught up only the rows it read itself: with this set, `step` catches up the others first.
        self.catch_up_gradient_rows = False
        self._flatten()
        self._hook = None
        # the compiled step (adam_kernel.cpp) where everything it writes is a float32 tensor in CPU memory
        tensors = [self.flat] + ([table] if table is not None else [])
        on_cpu = all(t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() for t in tensors)
        self._native = kernel() if on_cpu else None
        if table is not None:
            # Both moments of a row side by side, (rows, 2, dim): reading or writing a set of rows is one index op
            self._moments = torch.zeros(table.shape[0], 2, table.shape[1], dtype=table.dtype, device=table.device)
            self._row_step = torch.zeros(table.shape[0], dtype=torch.long, device=table.device)
            self.state[table] = {"exp_avg": self._moments[:, 0], "exp_avg_sq": self._moments[:, 1],
                                 # the last step each row's moments and weights were brought up to date
                                 "row_step": self._row_step}
            beta1, beta2 = betas
            self._betas = torch.tensor(betas, dtype=torch.float64, device=table.device)
            # (b1 / sqrt(b2)) ** k for k = horizon .. 1: the momentum a move k steps after a row's last update has
            self._momentum_left = (beta1 / math.sqrt(beta2)) ** torch.arange(
                self.catch_up_horizon, 0, -1, dtype=torch.float64, device=table.device)
            # Tables indexed by step t: the step size lr * sqrt(1 - b2^t) / (1 - b1^t); the log of the weight-decay
            # factor (1 - lr * wd) summed over steps 1..t; minus the catch-up sum of a row last updated at step t
            # (see _add_step); and eps * sqrt(1 - b2^(t+1)), the epsilon of a catch-up that starts after step t.
            self._step_sizes = torch.zeros(1024 + self.catch_up_horizon, dtype=torch.float64, device=table.device)
            self._log_keep = torch.zeros_like(self._step_sizes)
            self._catch_up_sums = torch.zeros_like(self._step_sizes)
            self._eps_after = self._epsilons(len(self._step_sizes))
            if self._native is not None:  # the compiled coalescing's scratch: each row's place in its output
                self._slot = torch.full((table.shape[0],), -1, dtype=torch.int32)
            if self.catch_up:
                self._hook = embedding.register_forward_pre_hook(lambda module, args: self._catch_up(args[0]))

    def _epsilons(self, size: int) -> torch.Tensor:
        eps, (_, beta2) = self.param_groups[0]["eps"], self.param_groups[0]["betas"]
        after = torch.arange(1, size + 1, dtype=torch.float64, device=self._step_sizes.device)
        return (eps * torch.sqrt(1 - beta2**after)).to(self.embedding.weight.dtype)

    def _add_step(self, now: int, size: float) -> None:
        """Add step `now`'s zero-gradient move (step size `size`) to the catch-up sums of the rows last updated
        `catch_up_horizon` steps or fewer before it.

        A row last updated at step t that is read again at step `now` has missed dense Adam's moves at steps
        j = t+1 .. now, each step_size_j * m_t * (b1 / sqrt(b2)) ** (j - t) / (sqrt(v_t) + eps) (the moments
        only decay while the gradient is zero), shrunk by the weight decay of steps j+1 .. now. Their sum
        is kept per t, relative to the decay up to t, and grows by one term a step, so a catch-up reads one
        number per row instead of summing its missed steps; moves more than `horizon` steps after t are left
        out (the momentum is below 2e-6 of itself by then).
        """
        first = max(0, now - self.catch_up_horizon)
        sums = self._catch_up_sums[first:now]
        left = self._momentum_left[self.catch_up_horizon - (now - first):]
        if self.param_groups[0]["weight_decay"]:
            decay = torch.exp(self._log_keep[first:now] - self._log_keep[now])
            sums.addcmul_(left, decay, value=-size)
        else:
            sums.add_(left, alpha=-size)

    def add_param_group(self, param_group: dict) -> None:
        # torch.optim.Optimizer.add_param_group is wrapped to keep torch.compile out, and that wrapper imports
        # torch._dynamo on its first call: 1.5 s of a 5-second `textrnn train`, for a compiler never used here.
        # FastAdam is never compiled, so it calls the plain method.
        add = torch.optim.Optimizer.add_param_group
        getattr(add, "__wrapped__", add)(self, param_group)

    def _flatten(self) -> None:
        """Move the dense parameters and their gradients into views of single flat tensors."""
        total = sum(p.numel() for p in self.dense_params)
        device = self.dense_params[0].device if self.dense_params else torch.device("cpu")
        self.flat = torch.empty(total, device=device)
        self.flat_grad = torch.zeros(total, device=device)
        self.flat_exp_avg = torch.zeros(total, device=device)
        self.flat_exp_avg_sq = torch.zeros(total, device=device)
        offset = 0
        with torch.no_grad():
            for p in self.dense_params:
                n = p.numel()
                view = self.flat[offset : offset + n].view_as(p)
                view.copy_(p)
                p.data = view
                # backward accumulates into an existing .grad in place, so it writes straight into flat_grad
                p.grad = self.flat_grad[offset : offset + n].view_as(p)
                self.state[p] = {"exp_avg": self.flat_exp_avg[offset : offset + n].view_as(p),
                                 "exp_avg_sq": self.flat_exp_avg_sq[offset : offset + n].view_as(p)}
                offset += n

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.flat_grad.zero_()
        if self.embedding is not None:
            self.embedding.weight.grad = None

    # -- the embedding's skipped steps -------------------------------------------------------------------------
    @torch.no_grad()
    def _catch_up(self, tokens: torch.Tensor | None = None) -> None:
        """Apply dense Adam's zero-gradient steps that the rows of `tokens` (all rows if None) have missed."""
        if self.steps == 0:
            return
        table = self.embedding.weight
        decayed = bool(self.param_groups[0]["weight_decay"])
        if self._native is not None:  # the same arithmetic, in one call
            rows = ((self._row_step < self.steps).nonzero()[:, 0] if tokens is None
                    else tokens.reshape(-1).to(torch.int64).contiguous())
            beta1, beta2 = self.param_groups[0]["betas"]
            bad = self._native.textrnn_adam_catch_up(
                rows.numel(), rows.data_ptr(), table.shape[0], table.shape[1], self.steps, table.data_ptr(),
                self._moments.data_ptr(), self._row_step.data_ptr(), self._catch_up_sums.data_ptr(),
                self._log_keep.data_ptr() if decayed else None, self._eps_after.data_ptr(), beta1, beta2,
                torch.get_num_threads())
            if bad >= 0:  # what the embedding's forward would have said, before anything was written
                raise IndexError(f"index {rows[bad].item()} is out of range for an embedding of {table.shape[0]} rows")
            return
        if tokens is None:
            rows = (self._row_step < self.steps).nonzero()[:, 0]
        else:
            # every row read is treated alike (a row already up to date moves by exactly 0): fewer, larger ops
            # than picking out the rows that are behind
            rows = torch.unique(tokens)
        last = self._row_step.index_select(0, rows)  # the step each row was last brought up to date at
        factor = self._catch_up_sums.index_select(0, last)  # minus the sum of the missed steps' sizes
        if decayed:  # the row and its missed moves shrink by the decay of steps last+1..now
            keep = torch.exp(self._log_keep[self.steps] - self._log_keep.index_select(0, last))
            factor, keep = factor * keep, keep.to(table.dtype)[:, None]
        factor = factor.to(table.dtype)[:, None]
        moments = self._moments.index_select(0, rows)
        m, v = moments[:, 0], moments[:, 1]
        # Dense Adam adds eps * sqrt(1 - b2^j) to the denominator at each step j; the first missed step carries
        # most of the weight, so its value stands for all of them.
        move = (m / v.sqrt().add_(self._eps_after.index_select(0, last)[:, None])).mul_(factor)
        if decayed:
            table.index_copy_(0, rows, table.index_select(0, rows).mul_(keep).add_(move))
        else:
            table.index_add_(0, rows, move)
        missed = (self.steps - last).double()
        moments.mul_(torch.pow(self._betas[None, :], missed[:, None]).to(moments.dtype)[:, :, None])
        self._moments.index_copy_(0, rows, moments)
        self._row_step.index_fill_(0, rows, self.steps)

    def catch_up_all(self) -> None:
        """Bring every embedding row up to date (before the weights are copied), and go on training."""
        if self.catch_up:
            self._catch_up(None)

    def flush(self) -> None:
        """Bring every embedding row up to date, and stop catching up (training is over)."""
        self.catch_up_all()
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    # -- the step ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        group = self.param_groups[0]
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        table = self.embedding.weight if self.embedding is not None else None
        rows = values = None
        if table is not None and table.grad is not None:
            rows, values = self._coalesce(table.grad)  # one row per distinct token, repeated tokens summed
            if self.catch_up_gradient_rows and self.catch_up:
                self._catch_up(rows)

        self.steps += 1
        bias1 = 1 - beta1**self.steps
        sqrt_bias2 = math.sqrt(1 - beta2**self.steps)
        step_size = lr / bias1
        if self.max_grad_norm is not None:
            squares = self.flat_grad.pow(2).sum() + (values.pow(2).sum() if values is not None else 0.0)
            scale = (self.max_grad_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
            self.flat_grad.mul_(scale)
            if values is not None:
                values = values * scale

        keep = 1 - lr * wd  # decoupled weight decay's factor for this step
        if self.dense_params and self._native is not None:
            self._native.textrnn_adam_dense(self.flat.numel(), self.flat.data_ptr(), self.flat_grad.data_ptr(),
                                            self.flat_exp_avg.data_ptr(), self.flat_exp_avg_sq.data_ptr(),
                                            1 - beta1, beta2, 1 - beta2, step_size, sqrt_bias2, eps, keep,
                                            torch.get_num_threads())
        elif self.dense_params:
            g, m, v = self.flat_grad, self.flat_exp_avg, self.flat_exp_avg_sq
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            if wd:
                self.flat.mul_(keep)
            self.flat.addcdiv_(m, v.sqrt().div_(sqrt_bias2).add_(eps), value=-step_size)

        if table is None:
            return None
        if self.steps + self.catch_up_horizon >= len(self._step_sizes):
            self._step_sizes = torch.cat([self._step_sizes, torch.zeros_like(self._step_sizes)])
            self._log_keep = torch.cat([self._log_keep, torch.zeros_like(self._log_keep)])
            self._catch_up_sums = torch.cat([self._catch_up_sums, torch.zeros_like(self._catch_up_sums)])
            self._eps_after = self._epsilons(len(self._step_sizes))
        self._step_sizes[self.steps] = step_size * sqrt_bias2
        if wd:  # without weight decay the table stays all zeros
            self._log_keep[self.steps] = self._log_keep[self.steps - 1] + math.log1p(-lr * wd)
        if self.catch_up:
            self._add_step(self.steps, step_size * sqrt_bias2)
        if rows is None:
            return None
        # The rows with a gradient were read by this step's forward pass, so the hook has caught them up already.
        if self._native is not None:
            values = values.contiguous()
            self._native.textrnn_adam_rows(len(rows), rows.data_ptr(), values.data_ptr(), table.shape[1],
                                           self.steps, table.data_ptr(), self._moments.data_ptr(),
                                           self._row_step.data_ptr(), 1 - beta1, beta2, 1 - beta2, step_size,
                                           sqrt_bias2, eps, keep, torch.get_num_threads())
            return None
        moments = self._moments.index_select(0, rows)
        m, v = moments[:, 0], moments[:, 1]
        m.lerp_(values, 1 - beta1)
        v.mul_(beta2).addcmul_(values, values, value=1 - beta2)
        self._moments.index_copy_(0, rows, moments)
        self._row_step.index_fill_(0, rows, self.steps)
        if wd:
            table.index_copy_(0, rows, table.index_select(0, rows).mul_(keep))
        table.index_add_(0, rows, m.div_(v.sqrt_().div_(sqrt_bias2).add_(eps)), alpha=-step_size)
        return None

    def _coalesce(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The distinct rows of the embedding's sparse gradient and their summed values."""
        if self._native is None or grad.is_coalesced():
            grad = grad.coalesce()
            return grad.indices()[0], grad.values()
        indices, values = grad._indices()[0].contiguous(), grad._values().contiguous()
        rows, summed = torch.empty_like(indices), torch.empty_like(values)
        count = self._native.textrnn_adam_coalesce(len(indices), indices.data_ptr(), values.data_ptr(),
                                                   values.shape[1], self._slot.data_ptr(), rows.data_ptr(),
                                                   summed.data_ptr())
        return rows[:count], summed[:count]

    # -- checkpoints --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """{"tensors": name -> tensor, "meta": JSON-able numbers}: all a resumed run needs, no pickles."""
        tensors = {"flat_exp_avg": self.flat_exp_avg, "flat_exp_avg_sq": self.flat_exp_avg_sq}
        if self.embedding is not None:
            state = self.state[self.embedding.weight]
            tensors.update({"embedding_exp_avg": state["exp_avg"], "embedding_exp_avg_sq": state["exp_avg_sq"],
                            "embedding_row_step": state["row_step"], "step_sizes": self._step_sizes,
                            "log_keep": self._log_keep})
        group = self.param_groups[0]
        meta = {"steps": self.steps, "lr": group["lr"], "initial_lr": group.get("initial_lr", group["lr"]),
                "catch_up": self.catch_up, "hooked": self._hook is not None}
        return {"tensors": {k: v.detach().cpu().clone() for k, v in tensors.items()}, "meta": meta}

    @torch.no_grad()
    def load_state_dict(self, state_dict: dict) -> None:
        tensors, meta = state_dict["tensors"], state_dict["meta"]
        self.flat_exp_avg.copy_(tensors["flat_exp_avg"])
        self.flat_exp_avg_sq.copy_(tensors["flat_exp_avg_sq"])
        if self.embedding is not None:
            state = self.state[self.embedding.weight]
            for key in ("exp_avg", "exp_avg_sq", "row_step"):
                state[key].copy_(tensors[f"embedding_{key}"])
            device = self._step_sizes.device
            self._step_sizes = tensors["step_sizes"].to(device).clone()
            self._log_keep = tensors["log_keep"].to(device).clone()
            self._eps_after = self._epsilons(len(self._step_sizes))
            # the catch-up sums, rebuilt by the same additions the run made, in the same order: the same bits
            self._catch_up_sums = torch.zeros_like(self._step_sizes)
            if meta["catch_up"]:
                for step, size in enumerate(self._step_sizes[1 : int(meta["steps"]) + 1].tolist(), start=1):
                    self._add_step(step, size)
            if not meta["hooked"] and self._hook is not None:
                self._hook.remove()
                self._hook = None
        self.steps = int(meta["steps"])
        self.param_groups[0]["lr"] = meta["lr"]
        self.param_groups[0]["initial_lr"] = meta["initial_lr"]
