//! The commands, one file each: its flag checks, the library calls and what it prints.
//! ([`crate::cli`] dispatches to them.)

pub(super) mod bench;
pub(super) mod eval;
pub(super) mod explain;
pub(super) mod gradcheck;
pub(super) mod landscape;
pub(super) mod lr_find;
pub(super) mod playground;
pub(super) mod predict;
pub(super) mod train;
