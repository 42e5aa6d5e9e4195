#!/usr/bin/env python3
"""Golden numbers for tests/suite/optim/optimizers.rs's step-for-step PyTorch tests of `--optimizer sgd`.

    python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-golden.txt
    .venv/bin/python scripts/sgd_golden.py

A 2-3-2 tanh network (nn.Sequential(Linear(2, 3), Tanh(), Linear(3, 2))) with the fixed initial
weights below, trained by torch.optim.SGD on the six rows below in file order (no shuffling),
mini-batches of 2, nn.CrossEntropyLoss (batch mean), 2 epochs = 6 steps, in float64. Prints the
final parameters, in state_dict order, for each optimiser setting the test runs through the
binary:

    plain     SGD(lr=0.1)                      (momentum 0: w <- w - lr * grad)
    momentum  SGD(lr=0.1, momentum=0.9)
    nesterov  SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
    one_cycle_sgd   SGD(lr=0.1) with OneCycleLR(max_lr=0.1, epochs=2, steps_per_epoch=3),
                    stepped after every optimiser step (it cycles SGD's momentum 0.95-0.85-0.95)
    one_cycle_adam  Adam(lr=0.05) with OneCycleLR(max_lr=0.05, epochs=2, steps_per_epoch=3,
                    pct_start=0.5) (it cycles beta1)
"""
import torch

X = [[0.5, -1.0], [1.5, 0.25], [-0.75, 0.5], [0.0, 1.25], [2.0, -0.5], [-1.25, -1.5]]
Y = [0, 1, 0, 1, 1, 0]
W1 = [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.25]]
B1 = [0.05, -0.1, 0.2]
W2 = [[0.6, -0.3, 0.2], [-0.4, 0.5, 0.1]]
B2 = [0.0, 0.1]

SETTINGS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.1, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "one_cycle_sgd": dict(lr=0.1, one_cycle=dict(max_lr=0.1)),
    "one_cycle_adam": dict(adam=True, lr=0.05, one_cycle=dict(max_lr=0.05, pct_start=0.5)),
}


def run(kw):
    kw = dict(kw)
    one_cycle = kw.pop("one_cycle", None)
    adam = kw.pop("adam", False)
    torch.set_default_dtype(torch.float64)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W1))
        net[0].bias.copy_(torch.tensor(B1))
        net[2].weight.copy_(torch.tensor(W2))
        net[2].bias.copy_(torch.tensor(B2))
    opt = (torch.optim.Adam if adam else torch.optim.SGD)(net.parameters(), **kw)
    sched = None
    if one_cycle:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, epochs=2, steps_per_epoch=3, **one_cycle)
    x, y = torch.tensor(X), torch.tensor(Y)
    for _epoch in range(2):
        for i in range(0, 6, 2):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[i:i + 2]), y[i:i + 2])
            loss.backward()
            opt.step()
            if sched:
                sched.step()
    return [v for p in net.state_dict().values() for v in p.flatten().tolist()]


if __name__ == "__main__":
    print(f"torch {torch.__version__}")
    for name, kw in SETTINGS.items():
        print(f"{name}: [{', '.join(repr(v) for v in run(kw))}]")
