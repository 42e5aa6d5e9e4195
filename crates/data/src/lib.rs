//! Tables and files of examples, read into downhill's in-memory data sets
//! ([`downhill_core::data::Dataset`]).
//!
//! | what                                               | module      |
//! |----------------------------------------------------|-------------|
//! | a CSV's cells: fields, lines, delimiter, types     | [`table`]   |
//! | reading a CSV file or bytes, with its options      | [`csv`]     |
//! | column roles, imputation, one-hot encoding, report | [`columns`] |
//! | the embedded 5,000 digits                          | [`digits`]  |
//! | IDX image files (MNIST, Fashion-MNIST)             | [`idx`]     |
//! | a run's data specification → train and test sets  | [`source`]  |

pub mod columns;
pub mod csv;
pub mod digits;
#[cfg(feature = "fs")]
pub mod idx;
#[cfg(feature = "fs")]
pub mod source;
pub mod table;

/// How many threads to give work over `items` rows: one per core (at most 8), but none extra
/// for fewer than 50,000 rows (the threads would cost more than they save), and one without
/// the `threads` feature.
pub(crate) fn cores_for(items: usize) -> usize {
    if !cfg!(feature = "threads") || items < 50_000 {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// `f` of each of `parts`, on a thread each (the first on the calling thread), results in order.
/// Without the `threads` feature, or for one part, everything runs on the calling thread.
pub(crate) fn in_parallel<P: Send, R: Send>(
    parts: impl Iterator<Item = P>,
    f: impl Fn(P) -> R + Sync,
) -> Vec<R> {
    let parts: Vec<P> = parts.collect();
    if !cfg!(feature = "threads") || parts.len() <= 1 {
        return parts.into_iter().map(f).collect();
    }
    // Each part in a slot that its thread empties; a part whose thread the system refused is
    // still in its slot, and runs here.
    let slots: Vec<std::sync::Mutex<Option<P>>> = parts
        .into_iter()
        .map(|p| std::sync::Mutex::new(Some(p)))
        .collect();
    let take = |k: usize| slots[k].lock().unwrap_or_else(|e| e.into_inner()).take();
    std::thread::scope(|s| {
        let (f, take) = (&f, &take);
        let others: Vec<_> = (1..slots.len())
            .map(|k| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || take(k).map(f))
                    .ok()
            })
            .collect();
        let mut out: Vec<R> = take(0).map(f).into_iter().collect();
        for (k, h) in (1..slots.len()).zip(others) {
            let r = h.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            out.extend(r.flatten().or_else(|| take(k).map(f)));
        }
        out
    })
}
