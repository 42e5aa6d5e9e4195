//! The browser playground's engine side, in plain Rust (the JavaScript bindings are in
//! `crate::wasm`, behind the `wasm` feature): the 2-D data sets ([`data2d`]), a network trained one
//! mini-batch at a time by the training loop's own `train::Trainer` ([`session`]), and
//! optimisers rolling on `downhill landscape`'s surfaces ([`hills`]).

pub mod data2d;
pub mod hills;
pub mod session;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use hills::Hills;
pub use session::{NetSpec, Progress, Session};

#[cfg(test)]
mod tests;
