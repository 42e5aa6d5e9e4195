//! The playground's JavaScript bindings (feature `wasm`, built for `wasm32-unknown-unknown` by
//! `scripts/build-playground.sh`): thin wrappers around [`crate`], whose sessions
//! train with the library's own network, optimisers and training step. Settings and figures
//! cross as JSON strings; pictures and weights as typed arrays.

use wasm_bindgen::prelude::*;

use crate::{Hills, NetSpec, Session};
use downhill_core::landscape::Surface;
use downhill_core::landscape::descent;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn error(message: &str);
}

/// On load: a panic (a bug: bad input is an `Err`, never a panic) is written to the console with
/// its message and place before the module traps.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| error(&format!("downhill: {info}"))));
}

fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// The default settings of the network view, as JSON.
#[wasm_bindgen]
pub fn default_spec() -> String {
    serde_json::to_string(&NetSpec::default()).expect("settings serialise")
}

/// The learning rate `downhill landscape` uses by default for `method` on a surface.
#[wasm_bindgen]
pub fn default_lr(method: &str, surface: &str, condition: f64) -> Result<f64, JsError> {
    let s = Surface::from_name(surface, condition)
        .ok_or_else(|| js(format!("unknown surface {surface}")))?;
    Ok(descent::default_lr(method, &s))
}

/// A network being trained (see [`Session`]).
#[wasm_bindgen]
pub struct NetSession {
    inner: Session,
}

#[wasm_bindgen]
impl NetSession {
    /// A session from settings as JSON (the fields of [`NetSpec`]; missing ones take defaults).
    #[wasm_bindgen(constructor)]
    pub fn new(spec_json: &str) -> Result<NetSession, JsError> {
        let spec: NetSpec = serde_json::from_str(spec_json).map_err(js)?;
        Ok(NetSession {
            inner: Session::new(spec).map_err(js)?,
        })
    }

    /// A session on an uploaded CSV file's bytes (gzip allowed), read as `downhill train` reads
    /// a CSV; `name` names the file in errors.
    pub fn from_csv(spec_json: &str, name: &str, bytes: Vec<u8>) -> Result<NetSession, JsError> {
        let spec: NetSpec = serde_json::from_str(spec_json).map_err(js)?;
        Ok(NetSession {
            inner: Session::from_csv(spec, name, bytes).map_err(js)?,
        })
    }

    /// How an uploaded table's columns were read, one line per column, as JSON (`[]` otherwise).
    pub fn table_report(&self) -> String {
        serde_json::to_string(&self.inner.table_report()).expect("strings serialise")
    }

    /// Runs `steps` mini-batch steps; returns the last batch's mean loss.
    pub fn run(&mut self, steps: usize) -> Result<f64, JsError> {
        self.inner.run(steps).map_err(js)
    }

    /// Step, epoch, train/test loss and accuracy, learning rate, as JSON.
    pub fn progress(&self) -> Result<String, JsError> {
        let p = self.inner.progress().map_err(js)?;
        serde_json::to_string(&p).map_err(js)
    }

    /// The decision surface (probability of class 1) or regression surface over a res × res grid.
    pub fn surface(&mut self, res: usize) -> Result<Vec<f32>, JsError> {
        self.inner.surface(res).map_err(js)
    }

    /// Every neuron's picture over a res × res grid (inputs, hidden units, outputs).
    pub fn neurons(&self, res: usize) -> Result<Vec<f32>, JsError> {
        self.inner.neurons(res).map_err(js)
    }

    /// The Backprop panel's trace of training point `index`, as `downhill explain --json`
    /// prints it (see `Session::explain`).
    pub fn explain(&self, index: usize) -> Result<String, JsError> {
        let t = self.inner.explain(index).map_err(js)?;
        Ok(serde_json::to_string(&t).expect("trace serialises"))
    }

    /// Units per layer: inputs, hidden layers, outputs.
    pub fn widths(&self) -> Vec<u32> {
        self.inner.widths().iter().map(|&w| w as u32).collect()
    }

    /// All parameters, flat: per dense layer its weight [out, in] row-major, then its bias.
    pub fn params(&self) -> Vec<f32> {
        self.inner.net.params().to_vec()
    }

    /// The 2-D points, training set then test set, x and y interleaved.
    pub fn points(&self) -> Vec<f64> {
        self.inner
            .train_points
            .iter()
            .chain(&self.inner.test_points)
            .flat_map(|p| [p[0], p[1]])
            .collect()
    }

    /// How many of [`NetSession::points`] are training points.
    pub fn train_len(&self) -> usize {
        self.inner.train.len()
    }

    /// The targets of the points, training then test (class, or value).
    pub fn targets(&self) -> Vec<f32> {
        let t = |d: &downhill_core::data::Dataset| -> Vec<f32> {
            match d.targets() {
                downhill_core::data::Targets::Classes { labels, .. } => {
                    labels.iter().map(|&l| l as f32).collect()
                }
                downhill_core::data::Targets::Values { data, cols } => {
                    data.iter().step_by(*cols).copied().collect()
                }
            }
        };
        let mut v = t(&self.inner.train);
        v.extend(t(&self.inner.test));
        v
    }

    /// Class probabilities (or values) for raw feature rows.
    pub fn predict(&mut self, rows: &[f32]) -> Result<Vec<f32>, JsError> {
        self.inner.predict(rows).map_err(js)
    }

    /// The test set's confusion matrix, k × k (row: true class).
    pub fn confusion(&mut self) -> Result<Vec<u32>, JsError> {
        self.inner.confusion().map_err(js)
    }

    /// The model as `.safetensors` bytes (what `downhill train` writes).
    pub fn model_bytes(&self) -> Result<Vec<u8>, JsError> {
        self.inner.model_bytes().map_err(js)
    }

    /// PyTorch code that rebuilds the network and loads the downloaded file.
    pub fn pytorch(&self) -> String {
        self.inner.pytorch()
    }

    /// The test set as CSV (features, then the target), for `downhill eval`.
    pub fn test_csv(&self) -> String {
        self.inner.test_csv()
    }

    /// The resolved loss's name.
    pub fn loss(&self) -> String {
        serde_json::to_value(self.inner.loss)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Several optimisers rolling on a surface (see [`Hills`]).
#[wasm_bindgen]
pub struct HillsSession {
    inner: Hills,
}

#[wasm_bindgen]
impl HillsSession {
    /// `methods_json`: `[["adam", 0.05], ["gd", 0.001], …]`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        surface: &str,
        condition: f64,
        methods_json: &str,
        x: f64,
        y: f64,
        noise: f64,
        seed: u64,
    ) -> Result<HillsSession, JsError> {
        let s = Surface::from_name(surface, condition)
            .ok_or_else(|| js(format!("unknown surface {surface}")))?;
        let methods: Vec<(String, f64)> = serde_json::from_str(methods_json).map_err(js)?;
        Ok(HillsSession {
            inner: Hills::new(s, &methods, [x, y], noise, seed).map_err(js)?,
        })
    }

    pub fn run(&mut self, steps: usize) {
        self.inner.run(steps);
    }

    pub fn count(&self) -> usize {
        self.inner.balls.len()
    }

    /// Ball `i`'s path, x and y interleaved.
    pub fn path(&self, i: usize) -> Vec<f64> {
        self.inner.balls.get(i).map_or_else(Vec::new, |b| {
            b.points.iter().flat_map(|p| [p[0], p[1]]).collect()
        })
    }

    /// f along ball `i`'s path.
    pub fn losses(&self, i: usize) -> Vec<f64> {
        self.inner
            .balls
            .get(i)
            .map_or_else(Vec::new, |b| b.losses.clone())
    }

    pub fn diverged(&self, i: usize) -> bool {
        i < self.inner.balls.len() && self.inner.diverged(i)
    }

    /// f over a res × res grid of the frame (rows from the top).
    pub fn heights(&self, res: usize) -> Vec<f64> {
        self.inner.heights(res)
    }

    /// The frame: [x0, x1, y0, y1], the default start (x, y), then the minima (x, y pairs).
    pub fn frame(&self) -> Vec<f64> {
        let ([x0, x1], [y0, y1]) = self.inner.surface.frame();
        let [sx, sy] = self.inner.surface.default_start();
        let mut v = vec![x0, x1, y0, y1, sx, sy];
        v.extend(
            self.inner
                .surface
                .minima()
                .iter()
                .flat_map(|m| [m[0], m[1]]),
        );
        v
    }

    /// Whether the surface is drawn with logarithmic colours.
    pub fn log_scale(&self) -> bool {
        self.inner.surface.log_scale()
    }
}
