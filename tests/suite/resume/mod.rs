//! Checkpoints and resume, bit for bit: in the library and through the binary for a killed run
//! (`checkpoints`), for every optimiser, on Ctrl-C and SIGTERM, and refused resumes (`cli`),
//! and with image layers (`image_layers`).

mod checkpoints;
mod cli;
mod image_layers;
