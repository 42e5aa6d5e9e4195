//! Hostile inputs that must never panic: the generated battery and the kill-and-resume loop
//! (`battery`), property tests of the readers (`readers`), and the address-space limit
//! (`memory_limits`).

mod battery;
mod memory_limits;
mod readers;
