//! One training step (forward, cross-entropy, backward, Adam) of a small sequential convnet,
//! composed from the vision kernels by hand, for benchmarks only: the network module does not
//! know these layers yet (issue 12 restructures it first). Dropout is left out (an elementwise
//! mask, a few µs at these sizes).

use downhill::layers::{
    Activation, Conv2d, ConvBackward, ConvForward, Dense, ImageShape, MaxPool2d,
};
use downhill::loss::{BatchTargets, Loss};
use downhill::optim::{Optimizer, OptimizerConfig};
use downhill::tensor::{Beta, Threads};

/// One layer of the benchmark network.
#[derive(Clone, Copy)]
pub enum Op {
    Conv(Conv2d),
    Relu,
    MaxPool2,
    Dense(Dense),
}

/// A layer with the shape of its input (per example) and its parameter ranges.
struct Node {
    op: Op,
    input: ImageShape,
    output: ImageShape,
    params: std::ops::Range<usize>,
    /// Where each maximum was, for a max-pooling layer.
    indices: Vec<u32>,
}

pub struct Step {
    nodes: Vec<Node>,
    n: usize,
    /// Activations: acts[0] is the input batch, acts[i + 1] the output of layer i.
    acts: Vec<Vec<f32>>,
    /// ∂L/∂acts[i].
    deltas: Vec<Vec<f32>>,
    params: Vec<f32>,
    grads: Vec<f32>,
    scratch: Vec<f32>,
    labels: Vec<u32>,
    opt: Box<dyn Optimizer<f32>>,
}

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i + seed) * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.1)
        .collect()
}

impl Step {
    /// The network `ops` on `n` images of shape `input`.
    pub fn new(input: ImageShape, ops: &[Op], n: usize) -> Step {
        let (mut nodes, mut shape, mut len) = (Vec::new(), input, 0);
        let mut scratch = 0;
        for &op in ops {
            let (out, plen) = match op {
                Op::Conv(c) => {
                    scratch = scratch.max(c.scratch_len(shape).unwrap());
                    (
                        c.output_shape(shape).unwrap(),
                        c.weight_len() + c.bias_len(),
                    )
                }
                Op::Relu => (shape, 0),
                Op::MaxPool2 => (MaxPool2d::new(2).output_shape(shape).unwrap(), 0),
                Op::Dense(d) => {
                    assert_eq!(d.inputs, shape.len(), "dense input");
                    scratch = scratch.max(d.scratch_len(n));
                    (ImageShape::new(d.outputs, 1, 1), d.weight_len() + d.outputs)
                }
            };
            let indices = match op {
                Op::MaxPool2 => vec![0; MaxPool2d::new(2).indices_len(shape, n).unwrap()],
                _ => Vec::new(),
            };
            nodes.push(Node {
                op,
                input: shape,
                output: out,
                params: len..len + plen,
                indices,
            });
            len += plen;
            shape = out;
        }
        let mut acts = vec![data(n * input.len(), 1)];
        acts.extend(nodes.iter().map(|nd| vec![0.0; n * nd.output.len()]));
        let deltas = acts.iter().map(|a| vec![0.0; a.len()]).collect();
        Step {
            n,
            acts,
            deltas,
            params: data(len, 2),
            grads: vec![0.0; len],
            scratch: vec![0.0; scratch],
            labels: (0..n as u32).map(|i| i % 10).collect(),
            opt: OptimizerConfig::default_for("adam").unwrap().build(len),
            nodes,
        }
    }

    /// FLOPs of the convolutions and dense products in one step (2 per multiply-add: forward,
    /// ∂W and ∂X except for the first layer's ∂X).
    pub fn flops(&self) -> f64 {
        let mut f = 0.0;
        for (i, nd) in self.nodes.iter().enumerate() {
            let macs = match nd.op {
                Op::Conv(c) => (nd.output.len() * c.patch_len()) as f64,
                Op::Dense(d) => (d.inputs * d.outputs) as f64,
                _ => 0.0,
            };
            f += 2.0 * macs * self.n as f64 * if i == 0 { 2.0 } else { 3.0 };
        }
        f
    }

    pub fn parameters(&self) -> usize {
        self.params.len()
    }

    /// Forward, loss, backward and an Adam step; returns the loss.
    pub fn run(&mut self) -> f32 {
        let n = self.n;
        let t = Threads::ONE;
        for (i, nd) in self.nodes.iter_mut().enumerate() {
            let (before, after) = self.acts.split_at_mut(i + 1);
            let (x, y) = (&before[i], &mut after[0]);
            let p = &self.params[nd.params.clone()];
            match nd.op {
                Op::Conv(c) => {
                    let (w, b) = p.split_at(c.weight_len());
                    c.forward(
                        ConvForward {
                            input: nd.input,
                            n,
                            x,
                            w,
                            b,
                            y,
                        },
                        &mut self.scratch,
                        t,
                    )
                    .unwrap()
                }
                Op::Relu => Activation::Relu.forward(x, y),
                Op::MaxPool2 => MaxPool2d::new(2)
                    .forward_indexed(nd.input, n, x, y, &mut nd.indices)
                    .unwrap(),
                Op::Dense(d) => {
                    let (w, b) = p.split_at(d.weight_len());
                    d.forward(x, n, w, b, y, &mut self.scratch, t)
                }
            }
        }
        let last = self.nodes.len();
        let k = self.nodes[last - 1].output.len();
        let loss = Loss::CrossEntropy.evaluate(
            &self.acts[last],
            n,
            k,
            BatchTargets::Classes(&self.labels),
            Some((&mut self.deltas[last], n as f32)),
        );
        for (i, nd) in self.nodes.iter().enumerate().rev() {
            let (before, after) = self.deltas.split_at_mut(i + 1);
            let (dx, dy) = (&mut before[i], &after[0]);
            let dx = if i == 0 { None } else { Some(&mut dx[..]) };
            let (x, y) = (&self.acts[i], &self.acts[i + 1]);
            let p = &self.params[nd.params.clone()];
            let g = &mut self.grads[nd.params.clone()];
            match nd.op {
                Op::Conv(c) => {
                    let (w, _) = p.split_at(c.weight_len());
                    let (dw, db) = g.split_at_mut(c.weight_len());
                    c.backward(
                        ConvBackward {
                            dy,
                            input: nd.input,
                            n,
                            x,
                            w,
                            dw,
                            db,
                            dx,
                            beta: Beta::Replace,
                        },
                        &mut self.scratch,
                        t,
                    )
                    .unwrap()
                }
                Op::Relu => Activation::Relu.backward(x, y, dy, dx.unwrap()),
                Op::MaxPool2 => MaxPool2d::new(2)
                    .backward_indexed(nd.input, n, &nd.indices, dy, dx.unwrap())
                    .unwrap(),
                Op::Dense(d) => {
                    let (w, _) = p.split_at(d.weight_len());
                    let (dw, db) = g.split_at_mut(d.weight_len());
                    d.backward(x, n, w, dy, dw, db, dx, Beta::Replace, t)
                }
            }
        }
        self.opt.step(&mut self.params, &self.grads, 1e-3);
        loss
    }
}

fn conv(i: usize, o: usize, k: usize, pad: usize) -> Op {
    Op::Conv(Conv2d::new(i, o, [k, k], [1, 1], [pad, pad], true).unwrap())
}

fn dense(i: usize, o: usize) -> Op {
    Op::Dense(Dense {
        inputs: i,
        outputs: o,
    })
}

/// Keras "simple MNIST convnet": conv 32·3×3, relu, pool 2, conv 64·3×3, relu, pool 2, flatten,
/// (dropout 0.5), dense 10 — 34,826 parameters.
pub fn keras() -> Vec<Op> {
    vec![
        conv(1, 32, 3, 0),
        Op::Relu,
        Op::MaxPool2,
        conv(32, 64, 3, 0),
        Op::Relu,
        Op::MaxPool2,
        dense(1600, 10),
    ]
}

/// LeNet-5 (with ReLU and max pooling, as the usual PyTorch rendition): conv 6·5×5 pad 2, pool,
/// conv 16·5×5, pool, 120, 84, 10 — 61,706 parameters.
pub fn lenet() -> Vec<Op> {
    vec![
        conv(1, 6, 5, 2),
        Op::Relu,
        Op::MaxPool2,
        conv(6, 16, 5, 0),
        Op::Relu,
        Op::MaxPool2,
        dense(400, 120),
        Op::Relu,
        dense(120, 84),
        Op::Relu,
        dense(84, 10),
    ]
}
