"""The stacked network and optimiser of the trained probes: :class:`StackedMLP` (G independent
MLPs or softmax regressions with parameters stacked on axis 0, forward and hand-written
backward) and :class:`StackedAdam` (torch's Adam update, one learning rate per group)."""

from __future__ import annotations

import math

import numpy as np

class StackedMLP:
    """G independent MLPs (or softmax regressions) whose parameters are stacked on axis 0.

    ``hidden_sizes=[128, 64, 32]`` is the study's probe; ``[]`` is a softmax regression.
    With ``mix_layers=L`` each group first mixes its ``[B, L, D]`` input with softmax weights
    over the L layers (SUPERB's weighted sum), initialised uniform.
    Parameter tensors (each ``[G, ...]``) are in :attr:`tensors`, in a fixed order; Linear
    weights are ``[G, out, in]`` (``torch.nn.Linear``'s layout).

    :meth:`forward` and :meth:`backward` are written out by hand rather than left to autograd:
    one step of G groups is then a few dozen batched kernels with no graph to build, and every gradient
    lands in a buffer that is reused from step to step (``torch`` would otherwise allocate, and
    the OS zero, a fresh 10 MB first-layer gradient every step). ``tests/probes/test_mlp.py`` checks
    the gradients against autograd's.
    """

    def __init__(self, in_dim: int, hidden_sizes: list[int], n_classes: int, mix_layers: int | None = None):
        self.in_dim = in_dim
        self.hidden_sizes = list(hidden_sizes)
        self.n_classes = n_classes
        self.mix_layers = mix_layers
        sizes = [in_dim, *self.hidden_sizes, n_classes]
        # (name, shape per group, init)
        self.spec: list[tuple[str, tuple[int, ...], str]] = []
        if mix_layers:
            self.spec.append(("mix_logits", (mix_layers,), "zeros"))
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.spec.append((f"linear{i}.weight", (fan_out, fan_in), f"uniform_t:{fan_in}"))
            self.spec.append((f"linear{i}.bias", (fan_out,), f"uniform:{fan_in}"))
            if i < len(self.hidden_sizes):
                self.spec.append((f"norm{i}.weight", (fan_out,), "ones"))
                self.spec.append((f"norm{i}.bias", (fan_out,), "zeros"))
        self.tensors: list = []

    def init(self, generators: list, device) -> None:
        """Draw each group's initial parameters from its own generator (nn.Linear's default rule)."""
        import torch

        per_group = []
        for gen in generators:
            params = []
            for _name, shape, rule in self.spec:
                if rule == "zeros":
                    params.append(torch.zeros(shape))
                elif rule == "ones":
                    params.append(torch.ones(shape))
                else:  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Linear
                    bound = 1.0 / math.sqrt(int(rule.split(":")[1]))
                    # weights are drawn as [in, out] and stored transposed: the draws of earlier
                    # versions, so a seed still gives the same initial probe
                    draw = shape[::-1] if rule.startswith("uniform_t") else shape
                    value = (torch.rand(draw, generator=gen) * 2.0 - 1.0) * bound
                    params.append(value.T.contiguous() if rule.startswith("uniform_t") else value)
            per_group.append(params)
        self.tensors = [torch.stack([params[k] for params in per_group]).to(device) for k in range(len(self.spec))]

    def forward(self, x, tensors=None, saved: list | None = None):
        """``x [G, B, D]`` (or ``[G, B, L, D]`` with mixing) -> logits ``[G, B, C]``.

        With a list as ``saved``, what :meth:`backward` needs is appended to it.
        """
        import torch

        params = iter(self.tensors if tensors is None else tensors)
        if self.mix_layers:
            weights = torch.softmax(next(params), dim=-1)  # [G, L]
            if saved is not None:
                saved.append((x, weights))
            x = torch.einsum("gbld,gl->gbd", x, weights)
        for i in range(len(self.hidden_sizes) + 1):
            weight, bias = next(params), next(params)
            z = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))  # [G, B, out]
            if i == len(self.hidden_sizes):
                if saved is not None:
                    saved.append((x,))
                return z
            gamma, beta = next(params), next(params)
            normed, mean, rstd = torch.native_layer_norm(z, [z.shape[-1]], None, None, LAYER_NORM_EPS)
            h = torch.relu_(torch.addcmul(beta.unsqueeze(1), normed, gamma.unsqueeze(1)))
            if saved is not None:
                saved.append((x, z, normed, mean, rstd, h))
            x = h

    def backward(self, saved: list, d_logits, grads: list) -> None:
        """Write into ``grads`` (one buffer per tensor) the gradient of the sum of the groups'
        losses, given ``d_logits [G, B, C]`` (its gradient w.r.t. the logits) and what
        :meth:`forward` saved. ``d_logits`` is overwritten."""
        import torch

        n_hidden = len(self.hidden_sizes)
        offset = 1 if self.mix_layers else 0
        k = len(self.tensors)  # walks back through the parameter list
        d = d_logits
        for i in range(n_hidden, -1, -1):
            entry = saved[offset + i]
            x = entry[0]
            if i < n_hidden:  # ReLU, the LayerNorm's affine, the LayerNorm
                _x, z, normed, mean, rstd, h = entry
                gamma = self.tensors[k - 2]
                d = d.masked_fill_(h <= 0, 0.0)
                torch.sum(d * normed, dim=1, out=grads[k - 2])
                torch.sum(d, dim=1, out=grads[k - 1])
                d = torch.ops.aten.native_layer_norm_backward(
                    d * gamma.unsqueeze(1), z, [z.shape[-1]], mean, rstd, None, None, [True, False, False]
                )[0]
                k -= 2
            weight = self.tensors[k - 2]
            torch.bmm(d.transpose(1, 2), x, out=grads[k - 2])  # [G, out, in]
            torch.sum(d, dim=1, out=grads[k - 1])
            k -= 2
            if i > 0 or self.mix_layers:
                d = torch.bmm(d, weight)  # gradient w.r.t. this Linear's input
        if self.mix_layers:
            x, weights = saved[0]
            d_weights = torch.einsum("gbd,gbld->gl", d, x)
            grads[0].copy_(weights * (d_weights - (weights * d_weights).sum(dim=-1, keepdim=True)))


#: torch.nn.LayerNorm's default epsilon.
LAYER_NORM_EPS = 1e-5


class StackedAdam:
    """Adam (``torch.optim.Adam``'s update, defaults betas (0.9, 0.999), eps 1e-8, L2 weight
    decay) over the stacked ``[G, ...]`` tensors ``params``, updated in place, one learning rate
    per group (:attr:`lrs`).

    The update is torch's fused Adam kernel (``torch._fused_adam_``, the kernel behind
    ``torch.optim.Adam(fused=True)``): one pass over memory, elementwise. All groups still
    training have taken the same number of steps, so one step counter serves them all.

    Bit-identical to training a group alone: the kernel's vector body and its scalar tail round
    differently, so a value must reach the kernel at a position that is in the vector body
    whenever it is when the group is alone. A tensor whose per-group size is a multiple of
    :data:`_WHOLE_VECTORS` (the big weight matrices) has no tail either way and goes to one call
    for all groups while they share a learning rate; the other tensors (biases of odd sizes,
    the last layer) and every tensor once rates differ go one call per group on that group's
    rows. ``tests/probes/test_mlp.py`` checks the update against ``torch.optim.Adam``.
    """

    def __init__(self, params: list, lrs: np.ndarray, weight_decay: float):
        import torch

        self.params = list(params)
        self.lrs = np.asarray(lrs, dtype=np.float64).copy()
        self.weight_decay = float(weight_decay)
        self.exp_avg = [torch.zeros_like(t) for t in params]
        self.exp_avg_sq = [torch.zeros_like(t) for t in params]
        self.grads = [torch.zeros_like(t) for t in params]  # the backward pass writes here
        self.steps = torch.zeros((), dtype=torch.float32, device=params[0].device)
        self._whole = [k for k, t in enumerate(params) if t[0].numel() % _WHOLE_VECTORS == 0]
        self._views()

    def _views(self) -> None:
        """Argument lists of the kernel: whole tensors, and per group its rows of all / of the rest."""
        state = (self.params, self.grads, self.exp_avg, self.exp_avg_sq)
        rest = [k for k in range(len(self.params)) if k not in self._whole]
        self._stacked = tuple([tensors[k] for k in self._whole] for tensors in state)
        self._rows_all = [tuple([t[g] for t in tensors] for tensors in state) for g in range(self.lrs.shape[0])]
        self._rows_rest = [tuple([tensors[k][g] for k in rest] for tensors in state) for g in range(self.lrs.shape[0])]
        for lists in [self._stacked, *self._rows_all]:
            check_fused_adam_lists(lists, self.steps)

    def _update(self, lists, rate: float) -> None:
        import torch

        if lists[0]:
            torch._fused_adam_(
                *lists, [], [self.steps] * len(lists[0]),
                lr=rate, beta1=0.9, beta2=0.999, weight_decay=self.weight_decay, eps=1e-8,
                amsgrad=False, maximize=False, grad_scale=None, found_inf=None,
            )

    def step(self) -> None:
        self.steps += 1
        rates = self.lrs.tolist()
        if all(rate == rates[0] for rate in rates):
            self._update(self._stacked, rates[0])
            per_group = self._rows_rest
        else:
            per_group = self._rows_all
        for rate, lists in zip(rates, per_group):
            self._update(lists, rate)

    def keep(self, rows) -> list:
        """Keep groups ``rows`` (local indices) only, in that order; returns the new parameter tensors."""
        import torch

        index = torch.as_tensor(np.asarray(rows), device=self.steps.device)
        for state in (self.params, self.exp_avg, self.exp_avg_sq, self.grads):
            state[:] = [t[index].contiguous() for t in state]
        self.lrs = self.lrs[np.asarray(rows)]
        self._views()
        return self.params


def check_fused_adam_lists(lists, step) -> None:
    """Raise ``ValueError`` unless ``(params, grads, exp_avgs, exp_avg_sqs)`` and the step counter
    meet what torch's fused Adam kernel needs on every device (its CUDA kernel checks the first
    three conditions and reads the step counter from device memory, unchecked):

    * all tensors of the four lists on one device, with one floating dtype, strided and contiguous;
    * the i-th tensors of the four lists of the same shape (and so the same strides);
    * the step counter a float32 scalar tensor on that same device.
    """
    import torch

    if not lists[0]:
        return
    first = lists[0][0]
    for name, tensors in zip(("params", "grads", "exp_avgs", "exp_avg_sqs"), lists):
        if len(tensors) != len(lists[0]):
            raise ValueError(f"fused Adam: {len(tensors)} {name} for {len(lists[0])} params")
        for i, t in enumerate(tensors):
            if t.device != first.device or t.dtype != first.dtype or not t.dtype.is_floating_point:
                raise ValueError(f"fused Adam: {name}[{i}] is {t.dtype} on {t.device}, params[0] {first.dtype} on {first.device}")
            if t.layout != torch.strided or not t.is_contiguous() or t.shape != lists[0][i].shape:
                raise ValueError(f"fused Adam: {name}[{i}] of shape {tuple(t.shape)} is not a contiguous match of params[{i}] {tuple(lists[0][i].shape)}")
    if step.device != first.device or step.dtype != torch.float32 or step.dim() != 0:
        raise ValueError(f"fused Adam: the step counter is a {step.dtype} [{tuple(step.shape)}] on {step.device}; "
                         f"the kernel reads a float32 scalar on the params' device {first.device}")


#: A per-group size that is a multiple of this is all vector body in torch's fused Adam kernel
#: (a multiple of its vector width times unrolling on CPUs up to AVX-512).
_WHOLE_VECTORS = 64
