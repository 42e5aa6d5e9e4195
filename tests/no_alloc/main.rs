//! The step loop allocates nothing after the first step: a counting global allocator, read by an
//! observer at every step, sees no allocation between the second and the last step of an epoch
//! (`dense`: every optimiser, dropout, one and two threads; `image_layers`: convolution,
//! pooling and BatchNorm).
//!
//! A binary of its own, without the test harness (`harness = false` in Cargo.toml): the counter
//! counts every thread of the process, so in the suite it would count the other tests'
//! allocations, and the harness's own threads allocate once in a while (one run of the whole
//! suite counted 4 allocations in one epoch's window, never again in 80 runs of the test alone).
//! Here the process holds only the training threads, and the tests run one after the other.
//!
//! `main` takes what `cargo test` passes: `--list` lists the tests, other words filter them by
//! name (as the harness does), other flags are ignored.

mod alloc_watch;
mod dense;
mod image_layers;

use alloc_watch::Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

const TESTS: &[(&str, fn())] = &[
    (
        "dense::no_allocation_per_step",
        dense::no_allocation_per_step,
    ),
    (
        "image_layers::no_allocation_per_step_with_image_layers",
        image_layers::no_allocation_per_step_with_image_layers,
    ),
];

/// The harness's options that take a value (`--skip NAME`, …): their value is not a filter.
const WITH_VALUE: &[&str] = &["--skip", "--test-threads", "--format", "--color", "-Z"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in TESTS {
            println!("{name}: test");
        }
        return;
    }
    let mut filters = Vec::new();
    let mut args = args.iter();
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            filters.push(a.as_str());
        }
    }
    let chosen: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();
    println!("running {} tests", chosen.len());
    for (name, test) in &chosen {
        test();
        println!("test {name} ... ok");
    }
    println!("test result: ok. {} passed", chosen.len());
}
