//! `downhill bench`: the benchmark tables, written or measured.

use std::process::ExitCode;

use downhill::Error;

use crate::cli::args::BenchArgs;

/// Bytes free (to an unprivileged user) on the file system that would hold `path`.
fn free_disk(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized output buffer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

pub(in crate::cli) fn bench(a: &BenchArgs) -> Result<ExitCode, Error> {
    let examples = a.examples.unwrap_or(60_000);
    let data_name = a.data.as_deref().unwrap_or("fashion-mnist");
    let epochs = a.epochs.unwrap_or(3);
    let table_rows = a.table_rows.unwrap_or(1_000_000);
    if let Some(path) = &a.write_table {
        if table_rows < 10 {
            return Err(Error::setting("table-rows", table_rows, "must be ≥ 10"));
        }
        if path.exists() {
            return Err(Error::setting(
                "write-table",
                path.display(),
                "exists; name a new file (it is not overwritten)",
            ));
        }
        // Written line by line (no memory to check), ~400 bytes a row: the disk is checked.
        let needed = (table_rows as u128) * 400;
        if let Some(free) = free_disk(path)
            && needed > free as u128
        {
            return Err(Error::setting(
                "table-rows",
                table_rows,
                format!(
                    "the table would take about {} on disk, but {} is free where {} goes",
                    downhill::memory::human(needed),
                    downhill::memory::human(free as u128),
                    path.display()
                ),
            ));
        }
        downhill::bench::write_table(path, table_rows, 0)?;
        outln!(
            "wrote {} ({} rows × 42 columns; target y)",
            path.display(),
            table_rows
        );
        return Ok(ExitCode::SUCCESS);
    }
    let workloads = downhill::bench::Workload::standard();
    let table = downhill::bench::table_name(table_rows);
    let wanted = |name: &str| a.only.as_ref().is_none_or(|o| name.contains(o.as_str()));
    // Flags no workload that runs reads are refused, not ignored.
    if let Some(n) = a.examples {
        if data_name != "synthetic" {
            return Err(Error::setting(
                "examples",
                n,
                format!(
                    "sizes the synthetic data only (--data synthetic); --data {} is its whole \
                     training set",
                    data_name
                ),
            ));
        }
        if !workloads.iter().any(|w| wanted(&w.name)) && wanted(&table) {
            return Err(Error::setting(
                "examples",
                n,
                "no workload on the synthetic images runs (--only picks the table's alone)",
            ));
        }
    }
    // The image workloads' flags, when only the table's runs.
    if wanted(&table) && !workloads.iter().any(|w| wanted(&w.name)) {
        for (flag, given) in [("epochs", a.epochs.is_some()), ("data", a.data.is_some())] {
            if given {
                return Err(Error::setting(
                    flag,
                    if flag == "epochs" {
                        epochs.to_string()
                    } else {
                        data_name.to_string()
                    },
                    "is for the image workloads, and --only picks the table's alone (which \
                     loads its table and trains one epoch)",
                ));
            }
        }
    }
    if let Some(f) = &a.table_file {
        if !wanted(&table) {
            return Err(Error::setting(
                "table-file",
                f.display(),
                format!(
                    "is the big-table workload's file, which --only {} leaves out",
                    a.only.as_deref().unwrap_or_default()
                ),
            ));
        }
        // Checked before any workload runs.
        if !f.is_file() {
            return Err(Error::setting(
                "table-file",
                f.display(),
                "is not a file (a CSV whose target column y holds two classes)",
            ));
        }
    }
    if let Some(n) = a.table_rows
        && !wanted(&table)
    {
        return Err(Error::setting(
            "table-rows",
            n,
            format!(
                "sizes the big-table workload, which --only {} leaves out",
                a.only.as_deref().unwrap_or_default()
            ),
        ));
    }
    // Sizes first, before anything is generated: 784 pixel bytes and a label per synthetic
    // example; per table row the file's ~340 bytes and, loaded, ~1.7 kB at the peak (measured
    // on the 1,000,000-row table).
    if data_name == "synthetic" {
        if examples == 0 {
            return Err(Error::setting("examples", 0, "must be ≥ 1"));
        }
        downhill::memory::check(
            format!("{examples} synthetic examples (--examples)"),
            downhill::memory::product(&[examples, 784 + 4]),
        )?;
    }
    if !matches!(data_name, "synthetic" | "digits" | "fashion-mnist") {
        return Err(Error::setting(
            "data",
            data_name,
            "accepted: fashion-mnist, digits, synthetic",
        ));
    }
    if epochs == 0 {
        return Err(Error::setting("epochs", 0, "must be ≥ 1"));
    }
    let mut all = Vec::new();
    // The images only when a workload trains on them (not for the table alone).
    let data = if workloads.iter().any(|w| wanted(&w.name)) {
        match data_name {
            "synthetic" => downhill::bench::synthetic(examples, 0),
            "digits" => downhill::data::digits::load()?,
            _ => downhill::data::idx::fashion_mnist()?.0,
        }
    } else {
        downhill::bench::synthetic(1, 0)
    };
    // The generated table is split into training and test parts, each of which needs rows of
    // both classes (at 3 rows the training part had one class only).
    const MIN_TABLE_ROWS: usize = 10;
    if table_rows < MIN_TABLE_ROWS {
        return Err(Error::setting(
            "table-rows",
            table_rows,
            format!(
                "must be ≥ {MIN_TABLE_ROWS}: the table is split into training and test rows, \
                 and each part needs both classes"
            ),
        ));
    }
    if wanted(&table) && a.table_file.is_none() {
        downhill::memory::check(
            format!("the benchmark table of {table_rows} rows (--table-rows)"),
            downhill::memory::product(&[table_rows, 1700 + 340]),
        )?;
    }
    if let Some(o) = &a.only
        && !workloads.iter().any(|w| w.name.contains(o.as_str()))
        && !table.contains(o.as_str())
    {
        let mut names: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
        names.push(&table);
        return Err(Error::setting(
            "only",
            o,
            format!("matches no workload; they are: {}", names.join("; ")),
        ));
    }
    // A given table file is measured first, so that a file that cannot be trained on fails
    // before the other workloads' minutes (its figures are printed in their usual place).
    let mut table_measured = match &a.table_file {
        Some(path) if wanted(&table) => Some(downhill::bench::measure_table_file(path, 0)?),
        _ => None,
    };
    for w in workloads {
        if !wanted(&w.name) {
            continue;
        }
        let m = downhill::bench::measure(&w, &data, epochs, 0)?;
        if !a.json {
            outln!(
                "{:<42} {:>8.3} s/epoch {:>9.0} ex/s {:>6.1} GFLOP/s   floor {:.3} s ({:.0} GFLOP/s)  share {:.2}",
                w.name,
                m.seconds_per_epoch,
                m.examples_per_second,
                m.effective_gflops,
                m.floor_seconds_per_epoch,
                m.gemm_gflops,
                m.share_of_floor
            );
        }
        all.push(m);
    }
    let speedups = downhill::bench::thread_speedups(&all);
    let mut json: Vec<serde_json::Value> = all
        .iter()
        .map(|m| serde_json::to_value(m).expect("measurements serialise"))
        .collect();
    if !a.json {
        for s in &speedups {
            outln!("{}", s.line());
        }
    }
    if wanted(&table) {
        let t = match table_measured.take() {
            Some(t) => t,
            None => downhill::bench::measure_table(table_rows, 0)?,
        };
        if !a.json {
            let mb = |b: u64| b as f64 / 1e6;
            outln!(
                "{:<42} load {:.2} s (read {:.2} s; {:.0} MB file, {} features)  epoch {:.2} s  peak memory {}  (encoded matrices {:.0} MB)",
                t.name,
                t.load_seconds,
                t.read_seconds,
                mb(t.file_bytes),
                t.features,
                t.epoch_seconds,
                t.peak_rss_bytes
                    .map_or("unknown".into(), |b| format!("{:.0} MB", mb(b))),
                mb(t.encoded_bytes),
            );
        }
        json.push(serde_json::to_value(&t).expect("measurements serialise"));
    }
    if a.json {
        // (The speed-ups follow from the measurements; the array holds measurements only.)
        outln!(
            "{}",
            serde_json::to_string(&json).expect("measurements serialise")
        );
    }
    Ok(ExitCode::SUCCESS)
}
