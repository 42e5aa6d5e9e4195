//! How long reading a CSV into typed columns takes (the first part of loading a table: no
//! column roles, encoding or split), the file read from disk first. To compare with pandas:
//!
//! ```text
//! cargo run --release --example read_csv -- table.csv [repeats]
//! ```

use downhill::data::csv::read_table;
use downhill::data::table::AsText;
use std::path::Path;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: read_csv FILE [REPEATS]");
        std::process::exit(2);
    };
    let repeats: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(1);
    for _ in 0..repeats {
        let started = Instant::now();
        match read_table(Path::new(&path), None, None, &AsText::default()) {
            Ok(t) => println!(
                "{} rows × {} columns in {:.3} s",
                t.len(),
                t.width(),
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
}
