//! Training: the loop on problems with known answers (`learning`), its flags through the binary
//! (`flags`), class weights, the learning-rate range test, the imbalanced-class metrics, run
//! folders that are never damaged (`run_folders`), and `train_with`'s optional parts.

mod class_weight;
mod flags;
mod learning;
mod lr_find;
mod metrics;
mod run_folders;
mod train_with;
