"""PyTorch's CPU time for the layers and one training step of the Keras "simple MNIST convnet" and
LeNet-5, batch 128, one thread — the side-by-side reference for downhill's vision kernels
(`cargo run --release --example ...` is not shipped; see benches/kernels.rs, groups `conv`,
`pool and batchnorm` and `convnet step, batch 128`).

Run:  bench/.venv/bin/python scripts/torch_vision_bench.py

Each figure is the minimum over repeated runs (robust on a shared machine), float32.
The step is forward, cross-entropy, backward and an Adam step (no dropout, as the Rust step).
"""
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
N = 128
REPS = 40


def best(fn, reps=REPS):
    fn()
    t = float("inf")
    for _ in range(reps):
        s = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - s)
    return t


def layer(name, module, shape, first):
    x = torch.randn(N, *shape)
    if not first:
        x.requires_grad_(True)
    y = module(x)
    dy = torch.randn_like(y)

    def fwd():
        module(x)

    def fwd_bwd():
        module.zero_grad(set_to_none=False)
        if x.grad is not None:
            x.grad = None
        module(x).backward(dy)

    tf, tfb = best(fwd), best(fwd_bwd)
    print(f"{name}: forward {tf * 1e3:.3f} ms, backward {max(tfb - tf, 0) * 1e3:.3f} ms "
          f"(forward+backward {tfb * 1e3:.3f} ms)")


def step(name, model):
    x = torch.randn(N, 1, 28, 28)
    y = torch.arange(N) % 10
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    t = best(run, 60)
    params = sum(p.numel() for p in model.parameters())
    print(f"{name} step batch 128: {t * 1e3:.3f} ms, epoch of 60,000 ≈ {t * 60000 / N:.2f} s "
          f"({params} parameters)")


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread")
    nn = torch.nn
    layer("keras conv1 1→32 3×3 28×28", nn.Conv2d(1, 32, 3), (1, 28, 28), True)
    layer("keras conv2 32→64 3×3 13×13", nn.Conv2d(32, 64, 3), (32, 13, 13), False)
    layer("lenet conv1 1→6 5×5 pad 2 28×28", nn.Conv2d(1, 6, 5, padding=2), (1, 28, 28), True)
    layer("lenet conv2 6→16 5×5 14×14", nn.Conv2d(6, 16, 5), (6, 14, 14), False)
    for name, shape in [("keras pool1", (32, 26, 26)), ("keras pool2", (64, 11, 11)),
                        ("lenet pool1", (6, 28, 28)), ("lenet pool2", (16, 10, 10))]:
        layer(f"maxpool 2 {name}", nn.MaxPool2d(2), shape, False)
    layer("batchnorm2d 32×26×26 (train)", nn.BatchNorm2d(32), (32, 26, 26), False)
    keras = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 10))
    lenet = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                          nn.Linear(84, 10))
    step("keras", keras)
    step("lenet", lenet)


if __name__ == "__main__":
    main()
