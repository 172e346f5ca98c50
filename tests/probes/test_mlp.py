"""The stacked network is the study's MLP, its hand-written backward equals autograd, and the stacked
Adam equals torch.optim.Adam per group."""

import numpy as np
import pytest
import torch

from bioprobe.probes.mlp import StackedAdam, StackedMLP


def test_stacked_network_is_the_study_mlp():
    """One group of StackedMLP computes Linear-LayerNorm-ReLU x3 -> Linear with the same weights."""
    torch.manual_seed(0)
    net = StackedMLP(in_dim=20, hidden_sizes=[128, 64, 32], n_classes=5)
    net.init([torch.Generator().manual_seed(1)], "cpu")
    reference = torch.nn.Sequential(
        torch.nn.Linear(20, 128), torch.nn.LayerNorm(128), torch.nn.ReLU(),
        torch.nn.Linear(128, 64), torch.nn.LayerNorm(64), torch.nn.ReLU(),
        torch.nn.Linear(64, 32), torch.nn.LayerNorm(32), torch.nn.ReLU(),
        torch.nn.Linear(32, 5),
    )
    tensors = iter(t.detach()[0] for t in net.tensors)
    with torch.no_grad():
        for module in reference:
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(next(tensors))  # [out, in], nn.Linear's layout
                module.bias.copy_(next(tensors))
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(next(tensors))
                module.bias.copy_(next(tensors))
        x = torch.randn(7, 20)
        np.testing.assert_allclose(net.forward(x[None])[0].numpy(), reference(x).numpy(), atol=1e-5)
    # nn.Linear's default initialisation bound 1/sqrt(fan_in)
    assert net.tensors[0].abs().max() <= 1 / np.sqrt(20)
    assert sum(t[0].numel() for t in net.tensors) == sum(p.numel() for p in reference.parameters())


@pytest.mark.parametrize("hidden, mix", [([9, 7], None), ([], None), ([6], 3)])
def test_hand_written_backward_equals_autograd(hidden, mix):
    """StackedMLP.backward gives autograd's gradients of the summed per-group mean cross-entropy."""
    torch.manual_seed(0)
    n_groups, batch, dim, n_classes = 3, 5, 8, 4
    net = StackedMLP(dim, hidden, n_classes, mix_layers=mix)
    net.init([torch.Generator().manual_seed(g) for g in range(n_groups)], "cpu")
    for t in net.tensors:  # move LayerNorm/mixing parameters off their trivial initial values
        t.add_(0.1 * torch.randn_like(t))
    x = torch.randn(n_groups, batch, *((mix,) if mix else ()), dim)
    y = torch.randint(0, n_classes, (n_groups, batch))

    leaves = [t.clone().requires_grad_(True) for t in net.tensors]
    logits = net.forward(x, leaves)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, n_classes), y.reshape(-1), reduction="none")
    loss.view(n_groups, batch).mean(dim=1).sum().backward()

    saved, grads = [], [torch.full_like(t, float("nan")) for t in net.tensors]
    with torch.no_grad():
        logits = net.forward(x, saved=saved)
        d_logits = torch.softmax(logits, dim=-1) - torch.nn.functional.one_hot(y, n_classes)
        net.backward(saved, d_logits / batch, grads)
    for (name, _shape, _init), leaf, grad in zip(net.spec, leaves, grads):
        assert leaf.grad.abs().max() > 0, name
        np.testing.assert_allclose(grad.numpy(), leaf.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_stacked_adam_equals_torch_adam_per_group():
    """Each group's update is torch.optim.Adam's with that group's own learning rate, also after
    the rates diverge and after a group is dropped."""
    torch.manual_seed(0)
    shapes = [(4, 16), (6, 5), (6,)]  # the first goes to the kernel whole for all groups
    stacked = [torch.randn(3, *shape) for shape in shapes]
    reference = [[t[g].clone().requires_grad_(True) for t in stacked] for g in range(3)]
    adam = StackedAdam(stacked, np.array([1e-2, 1e-2, 1e-2]), weight_decay=0.01)
    torch_adams = [torch.optim.Adam(params, lr=1e-2, weight_decay=0.01) for params in reference]
    rows = [0, 1, 2]  # original group of each stacked row
    for step in range(8):
        if step == 3:  # a plateau lowers group 1's rate
            adam.lrs[1] = 1e-3
            torch_adams[1].param_groups[0]["lr"] = 1e-3
        if step == 5:  # group 0 stops
            stacked = adam.keep([1, 2])
            rows = [1, 2]
        for local, g in enumerate(rows):
            for buffer, param in zip(adam.grads, reference[g]):
                grad = torch.randn_like(param)
                buffer[local] = grad
                param.grad = grad.clone()
            torch_adams[g].step()
        adam.step()
        for local, g in enumerate(rows):
            for t, param in zip(stacked, reference[g]):
                np.testing.assert_allclose(t[local].numpy(), param.detach().numpy(), rtol=1e-6, atol=1e-7)
