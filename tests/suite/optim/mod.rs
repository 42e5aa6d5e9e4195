//! The optimisers' update rules, step for step (`optimizers`), and the learning-rate schedules
//! (`schedules`), against PyTorch's.

mod optimizers;
mod schedules;
