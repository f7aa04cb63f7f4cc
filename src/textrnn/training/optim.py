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
  (`flush`). The result follows dense Adam closely: the skipped moves are summed over at most
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

import math
from typing import Iterable

import torch
from torch import nn


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
        if table is not None:
            self.state[table] = {"exp_avg": torch.zeros_like(table), "exp_avg_sq": torch.zeros_like(table),
                                 # the last step each row's moments and weights were brought up to date
                                 "row_step": torch.zeros(table.shape[0], dtype=torch.long, device=table.device)}
            # step sizes lr * sqrt(1 - b2^t) / (1 - b1^t) of every step so far, for the catch-up sums
            self._step_sizes = torch.zeros(1024 + self.catch_up_horizon, dtype=torch.float64, device=table.device)
            # log of the weight-decay factor (1 - lr * wd) summed over steps 1..t, for decay over any gap
            self._log_keep = torch.zeros_like(self._step_sizes)
            beta1, beta2 = betas
            self._offsets = torch.arange(1, self.catch_up_horizon + 1, device=table.device)
            self._decay = (beta1 / math.sqrt(beta2)) ** self._offsets.double()  # momentum left after k steps
            if self.catch_up:
                self._hook = embedding.register_forward_pre_hook(lambda module, args: self._catch_up(args[0]))

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
        state = self.state[table]
        rows = torch.unique(tokens) if tokens is not None else torch.arange(table.shape[0], device=table.device)
        missed = self.steps - state["row_step"][rows]
        behind = missed > 0
        if not bool(behind.any()):
            return
        rows, missed = rows[behind], missed[behind]
        beta1, beta2 = self.param_groups[0]["betas"]
        eps = self.param_groups[0]["eps"]
        # sum over the missed steps j = last+1 .. now of step_size_j * (b1 / sqrt(b2)) ** (j - last)
        # _step_sizes holds zeros past the current step, so steps after "now" add nothing to the sum
        horizon = min(self.catch_up_horizon, int(missed.max()))
        last = (self.steps - missed)[:, None]
        steps = last + self._offsets[None, :horizon]  # (rows, horizon)
        sizes = self._step_sizes[steps]
        decayed = bool(self.param_groups[0]["weight_decay"])
        if decayed:
            # a move made at step j is shrunk by the decay of steps j+1..now; the row itself by that of last+1..now
            log_now = self._log_keep[self.steps]
            sizes = sizes * torch.exp(log_now - self._log_keep[steps])
            keep = torch.exp(log_now - self._log_keep[last[:, 0]]).to(table.dtype)[:, None]
        factor = (sizes @ self._decay[:horizon]).to(table.dtype)[:, None]
        m = state["exp_avg"].index_select(0, rows)
        v = state["exp_avg_sq"].index_select(0, rows)
        # Dense Adam adds eps * sqrt(1 - b2^j) to the denominator at each step j; the first missed step carries
        # most of the weight, so its value stands for all of them.
        eps_row = (eps * torch.sqrt(1 - beta2 ** (last[:, 0] + 1).double())).to(table.dtype)[:, None]
        move = -factor * m / (v.sqrt() + eps_row)
        if decayed:
            table.index_copy_(0, rows, table.index_select(0, rows) * keep + move)
        else:
            table.index_add_(0, rows, move)
        state["exp_avg"].index_copy_(0, rows, m.mul_((beta1 ** missed.double()).to(m.dtype)[:, None]))
        state["exp_avg_sq"].index_copy_(0, rows, v.mul_((beta2 ** missed.double()).to(v.dtype)[:, None]))
        state["row_step"][rows] = self.steps

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
            grad = table.grad.coalesce()  # one row per distinct token, repeated tokens summed
            rows, values = grad.indices()[0], grad.values()
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

        if self.dense_params:
            g, m, v = self.flat_grad, self.flat_exp_avg, self.flat_exp_avg_sq
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            if wd:
                self.flat.mul_(1 - lr * wd)
            self.flat.addcdiv_(m, v.sqrt().div_(sqrt_bias2).add_(eps), value=-step_size)

        if table is None:
            return None
        if self.steps + self.catch_up_horizon >= len(self._step_sizes):
            self._step_sizes = torch.cat([self._step_sizes, torch.zeros_like(self._step_sizes)])
            self._log_keep = torch.cat([self._log_keep, torch.zeros_like(self._log_keep)])
        self._step_sizes[self.steps] = step_size * sqrt_bias2
        self._log_keep[self.steps] = self._log_keep[self.steps - 1] + math.log1p(-lr * wd)
        if rows is None:
            return None
        state = self.state[table]
        # The rows with a gradient were read by this step's forward pass, so the hook has caught them up already.
        m = state["exp_avg"].index_select(0, rows).lerp_(values, 1 - beta1)
        v = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(values, values, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, m)
        state["exp_avg_sq"].index_copy_(0, rows, v)
        state["row_step"][rows] = self.steps
        if wd:
            table.index_copy_(0, rows, table.index_select(0, rows).mul_(1 - lr * wd))
        table.index_add_(0, rows, m.div_(v.sqrt_().div_(sqrt_bias2).add_(eps)), alpha=-step_size)
        return None

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
            if not meta["hooked"] and self._hook is not None:
                self._hook.remove()
                self._hook = None
        self.steps = int(meta["steps"])
        self.param_groups[0]["lr"] = meta["lr"]
        self.param_groups[0]["initial_lr"] = meta["initial_lr"]
