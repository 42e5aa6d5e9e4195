#!/usr/bin/env python3
"""Golden values for `downhill explain`, from PyTorch's autograd on the same weights.

For each case below it runs `downhill explain --json` with the case's flags, rebuilds the same
network in PyTorch (float64) with the weights the trace printed, and records what autograd gives:
per example z, a (forward), δ = ∂ℓ/∂z and ∂ℓ/∂a (retain_grad), ∂ℓ/∂W and ∂ℓ/∂b; for the
mini-batch L and ∇L; after one torch.optim step the weights, the optimiser's buffers and the loss.
The test tests/suite/cli/explain.rs reruns the same flags and compares every number with these.

Usage (in a venv with scripts/requirements-golden.txt):
    cargo build --release --bin downhill
    python scripts/explain_golden.py [path/to/downhill] > tests/fixtures/explain_golden.json
"""

import json
import subprocess
import sys

import torch
import torch.nn.functional as F

CASES = [
    ["--optimizer", "sgd", "--lr", "0.5"],
    ["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--batch", "3"],
    ["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--nesterov", "--weight-decay", "0.01"],
    ["--optimizer", "adam", "--lr", "0.01", "--batch", "4", "--hidden", "4,3", "--activation", "tanh"],
    ["--optimizer", "adamw", "--lr", "0.01", "--batch", "2", "--activation", "relu", "--seed", "3"],
    ["--loss", "mse", "--input", "1,2", "--target", "0.5,-0.5", "--input", "-1,0.3",
     "--target", "0,1", "--hidden", "3", "--activation", "gelu", "--lr", "0.05"],
    ["--loss", "bce", "--batch", "3", "--outputs", "2", "--activation", "sigmoid", "--lr", "0.3"],
]

ACT = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky-relu": lambda z: F.leaky_relu(z, 0.01),
    "gelu": F.gelu,
    "identity": lambda z: z,
    None: lambda z: z,
}


def per_example_loss(loss, out, target):
    """ℓ of each row: the notes' conventions (mse ½‖z − y‖², bce averaged over outputs)."""
    if loss == "cross-entropy":
        return F.cross_entropy(out, target, reduction="none")
    if loss == "mse":
        return 0.5 * ((out - target) ** 2).sum(dim=1)
    return F.binary_cross_entropy_with_logits(out, target, reduction="none").mean(dim=1)


def forward(params, acts, x):
    zs, as_ = [], []
    a = x
    for (w, b), act in zip(params, acts):
        z = a @ w.T + b
        a = ACT[act](z)
        if z.requires_grad:
            z.retain_grad()
            if a is not z:
                a.retain_grad()
        zs.append(z)
        as_.append(a)
    return zs, as_


def targets_of(trace):
    ys = [e["target"] for e in trace["examples"]]
    if trace["loss"] == "cross-entropy":
        return torch.tensor(ys, dtype=torch.long)
    return torch.tensor(ys, dtype=torch.float64)


def tolist(t):
    return t.detach().tolist()


def case(downhill, flags):
    trace = json.loads(subprocess.run([downhill, "explain", "--json", *flags], check=True,
                                      capture_output=True, text=True).stdout)
    acts = trace["activations"]
    loss = trace["loss"]
    y = targets_of(trace)
    x = torch.tensor([e["x"] for e in trace["examples"]], dtype=torch.float64)

    def params():
        return [(torch.tensor(p["weight"], dtype=torch.float64, requires_grad=True),
                 torch.tensor(p["bias"], dtype=torch.float64, requires_grad=True))
                for p in trace["params"]]

    examples = []
    for i in range(x.shape[0]):
        ps = params()
        zs, as_ = forward(ps, acts, x[i:i + 1])
        ell = per_example_loss(loss, as_[-1], y[i:i + 1]).sum()
        ell.backward()
        examples.append({
            "loss": ell.item(),
            "layers": [{"z": tolist(z[0]), "a": tolist(a[0]), "delta": tolist(z.grad[0]),
                        "delta_a": tolist((a.grad if a is not z else z.grad)[0])}
                       for z, a in zip(zs, as_)],
            "grads": [{"weight": tolist(w.grad), "bias": tolist(b.grad)} for w, b in ps],
        })

    ps = params()
    flat = [t for p in ps for t in p]
    _, as_ = forward(ps, acts, x)
    L = per_example_loss(loss, as_[-1], y).mean()
    L.backward()
    grads = [{"weight": tolist(w.grad), "bias": tolist(b.grad)} for w, b in ps]

    o = trace["optimizer"]
    if o["name"] == "sgd":
        opt = torch.optim.SGD(flat, lr=o["lr"], momentum=o["momentum"], dampening=o["dampening"],
                              nesterov=o["nesterov"], weight_decay=o["weight_decay"])
    elif o["name"] in ("adam", "adamw"):
        cls = torch.optim.Adam if o["name"] == "adam" else torch.optim.AdamW
        opt = cls(flat, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                  weight_decay=o["weight_decay"])
    else:
        raise SystemExit(f"no golden for {o['name']}")
    opt.step()
    state = {}
    for w, b in ps:
        for name in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
            if name in opt.state[w] and opt.state[w][name] is not None:
                state.setdefault(name, []).append({"weight": tolist(opt.state[w][name]),
                                                   "bias": tolist(opt.state[b][name])})
    with torch.no_grad():
        _, as_ = forward([(w.detach(), b.detach()) for w, b in ps], acts, x)
        after = per_example_loss(loss, as_[-1], y).mean().item()
    return {
        "flags": flags,
        "params": trace["params"],
        "examples": examples,
        "batch": {"loss": L.item(), "grads": grads},
        "step": {"params": [{"weight": tolist(w), "bias": tolist(b)} for w, b in ps],
                 "state": [{"name": k, "layers": v} for k, v in state.items()],
                 "loss": after},
    }


def main():
    downhill = sys.argv[1] if len(sys.argv) > 1 else "target/release/downhill"
    torch.set_default_dtype(torch.float64)
    out = {
        "reference": f"PyTorch {torch.__version__} autograd, float64, by scripts/explain_golden.py",
        "cases": [case(downhill, flags) for flags in CASES],
    }
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
