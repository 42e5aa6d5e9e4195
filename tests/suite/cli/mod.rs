//! The commands end to end through the binary: every command and its flags (`commands`), the
//! settings refused before any work (`settings`), defaults sized to the data (`defaults`), the
//! settings resolved once (`plan`), where output goes and what an interrupted run says
//! (`outputs`), the pictures (`pictures`), and `downhill explain` (`explain`).

mod commands;
mod defaults;
mod explain;
mod outputs;
mod pictures;
mod plan;
mod settings;
