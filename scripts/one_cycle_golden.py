#!/usr/bin/env python3
"""Golden values for tests/suite/optim/schedules.rs: torch.optim.lr_scheduler.OneCycleLR's learning rate and
momentum at every optimiser step.

    python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-golden.txt
    .venv/bin/python scripts/one_cycle_golden.py

Cases (SGD(momentum=0.9), so the momentum is cycled; the scheduler stepped after every step):
    a: max_lr=0.1, epochs=4, steps_per_epoch=5 (20 steps), defaults (pct_start=0.3, ...)
    b: max_lr=2.0, total_steps=7, pct_start=0.25
"""
import torch

CASES = {
    "a": dict(max_lr=0.1, epochs=4, steps_per_epoch=5),
    "b": dict(max_lr=2.0, total_steps=7, pct_start=0.25),
}

if __name__ == "__main__":
    print(f"torch {torch.__version__}")
    for name, kw in CASES.items():
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        s = torch.optim.lr_scheduler.OneCycleLR(opt, **kw)
        total = s.total_steps
        lrs, moms = [], []
        for _ in range(total):
            lrs.append(opt.param_groups[0]["lr"])
            moms.append(opt.param_groups[0]["momentum"])
            opt.step()
            s.step()
        print(f"{name} lr: [{', '.join(repr(v) for v in lrs)}]")
        print(f"{name} momentum: [{', '.join(repr(v) for v in moms)}]")
