//! The integration tests, in one test binary, by subject (one link, one harness run):
//!
//! - `cli`: the commands end to end — `train`/`eval`/`predict` and their flags, the settings
//!   refused before any work, the defaults sized to the data, the resolved plan, outputs
//!   (devices, pipes, `--out` folders, interrupted summaries), the pictures, `explain`.
//! - `data`: data files (CSV, IDX, gzip) and tables through the binary (column roles,
//!   separators, headers, missing cells, preprocessing metadata).
//! - `model_files`: safetensors model files read and written by the library.
//! - `training`: the training loop on problems with known answers, the training flags through
//!   the binary, class weights, the learning-rate range test, the metrics, run folders, and
//!   `train_with`.
//! - `optim`: the optimisers' update rules and the learning-rate schedules (against PyTorch).
//! - `layers`: backpropagation against finite differences, the vision kernels (against PyTorch
//!   and their definitions), their buffer checks, networks with image layers, and
//!   convolutional networks through the binary.
//! - `resume`: checkpoints and resume, bit for bit — in the library, through the binary for
//!   every optimiser and on Ctrl-C, and with image layers.
//! - `threads`: data-parallel threads.
//! - `playground`: `downhill playground`'s file server.
//! - `robustness`: the hostile battery of generated bad inputs and the kill-and-resume loop,
//!   property tests of the readers, and the address-space limit.
//!
//! Golden comparisons (PyTorch, scikit-learn) live with the subject they check rather than in a
//! module of their own, and so do the tests that pin defects found by hostile passes.
//!
//! Separate test binaries: `tests/no_alloc/` (no test harness: it installs a counting global
//! allocator, which here would count every test's allocations), `tests/playground_browser.rs`
//! (feature `browser-tests`) and `crates/playground/tests/wasm_bindings.rs` (wasm32 only).

mod common;

mod cli;
mod data;
mod layers;
mod model_files;
mod optim;
mod playground;
mod resume;
mod robustness;
mod threads;
mod training;
