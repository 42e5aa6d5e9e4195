//! Roles and kinds from the cells: [`Columns::fit`] decides each column's role on the training
//! rows (the rules in the module documentation of [`crate::columns`]) — dropped, numeric,
//! boolean or categorical — with its fill value and categories.

use std::borrow::Cow;
use std::collections::HashMap;

use downhill_core::error::{Error, Result};

use super::{
    Cell, Column, Columns, Encoding, Overrides, Table, fits_f32, is_missing, number, parse_bool,
    parse_number, quoted,
};

/// Share of distinct values (among non-missing training values) from which a column is ID-like.
pub const ID_SHARE: f64 = 0.95;

/// A text column without an ID-like name is judged ID-like only with at least this many values.
pub const ID_MIN_ROWS: usize = 20;

/// The most categories one column is one-hot encoded with.
pub const MAX_CATEGORIES: usize = 100;

/// Whether a column name says "identifier": `id`, `index`, `rownames`, `Unnamed: 0` or empty
/// (ignoring case), a name ending in `_id`, ` id`, `-id` or `.id` (ignoring case), or a camel-case
/// name ending in `Id` or `ID` after a lower-case letter (`PassengerId`, `customerID`).
pub fn looks_like_id(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    if ["", "id", "index", "rownames", "unnamed: 0"].contains(&lower.as_str()) {
        return true;
    }
    if ["_id", " id", "-id", ".id"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        return true;
    }
    let chars: Vec<char> = name.trim().chars().collect();
    let n = chars.len();
    n >= 3
        && chars[n - 2] == 'I'
        && (chars[n - 1] == 'd' || chars[n - 1] == 'D')
        && chars[n - 3].is_lowercase()
}

fn overridden_names(
    table: &Table,
    flag: &'static str,
    names: &[String],
    targets: &[usize],
) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for n in names {
        let j = table.names.iter().position(|h| h == n).or_else(|| {
            n.parse::<usize>()
                .ok()
                .filter(|&j| !table.has_header && j < table.width())
        });
        let Some(j) = j else {
            return Err(Error::setting(
                flag,
                n,
                format!(
                    "no such column in {}; columns: {}",
                    table.path.display(),
                    table.names.join(", ")
                ),
            ));
        };
        if targets.contains(&j) {
            return Err(Error::setting(
                flag,
                n,
                "is the target column; name feature columns only",
            ));
        }
        out.push(j);
    }
    Ok(out)
}

impl Columns {
    /// Decides every non-target column's role and statistics from the training `rows` of `table`
    /// (the rules in the module documentation). Errors: an unknown column in the overrides, a
    /// column both in `--features` and `--drop`, a numeric cell that is not finite or beyond f32,
    /// and no feature column left.
    pub fn fit(
        table: &Table,
        targets: &[usize],
        rows: &[usize],
        ov: &Overrides,
    ) -> Result<Columns> {
        let named = Named::resolve(table, targets, ov)?;
        // The statistics do not depend on the rows' order: read them in file order, so that
        // each pass over a column walks memory forward (a shuffled split would miss the cache
        // on nearly every cell), and examples in messages are the earliest in the file.
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        let rows = &sorted[..];
        let features: Vec<usize> = (0..table.width())
            .filter(|j| !targets.contains(j))
            .collect();
        // The columns in one group per core, each scanned 64 / cores columns at a time, so
        // that at most 64 columns' numbers are held at once.
        let cores = crate::cores_for(rows.len()).min(features.len()).max(1);
        let per = (64 / cores).max(1);
        let groups = features.chunks(features.len().div_ceil(cores).max(1));
        let fitted = crate::in_parallel(groups, |group| -> Result<Vec<Column>> {
            let mut out = Vec::with_capacity(group.len());
            for block in group.chunks(per) {
                for (&j, s) in block.iter().zip(scan(table, block, rows)) {
                    out.push(fit_column(table, j, rows, s, &named)?);
                }
            }
            Ok(out)
        });
        let mut columns = Vec::with_capacity(features.len());
        for group in fitted {
            columns.extend(group?);
        }
        let plan = Columns {
            columns,
            targets: targets.iter().map(|&j| table.names[j].clone()).collect(),
            target_positions: targets.to_vec(),
            has_header: table.has_header,
            lenient: false,
        };
        if plan.n_features() == 0 {
            let why: Vec<String> = plan
                .columns
                .iter()
                .map(|c| match &c.encoding {
                    Encoding::Dropped { reason } => format!("{} ({reason})", c.name),
                    _ => c.name.clone(),
                })
                .collect();
            return Err(table.error(
                "columns",
                format!(
                    "no feature column left: {}. Name the columns to use with --features",
                    why.join("; ")
                ),
            ));
        }
        Ok(plan)
    }
}

/// The columns `--features` (if given), `--drop` and `--categorical` name, as positions.
struct Named {
    keep: Option<Vec<usize>>,
    /// [`Overrides::pixels`].
    pixels: bool,
    drop: Vec<usize>,
    categorical: Vec<usize>,
}

impl Named {
    /// The overrides' names found in `table` (never a target); a column both kept and dropped,
    /// or both dropped and one-hot encoded, is an error.
    fn resolve(table: &Table, targets: &[usize], ov: &Overrides) -> Result<Named> {
        let keep = ov
            .features
            .as_ref()
            .map(|f| overridden_names(table, "features", f, targets))
            .transpose()?;
        let drop = overridden_names(table, "drop", &ov.drop, targets)?;
        let categorical = overridden_names(table, "categorical", &ov.categorical, targets)?;
        if let Some(k) = &keep
            && let Some(j) = k.iter().find(|j| drop.contains(j))
        {
            return Err(Error::setting(
                "drop",
                &table.names[*j],
                "is also named by --features; name it in one of them",
            ));
        }
        if let Some(j) = categorical.iter().find(|j| drop.contains(j)) {
            return Err(Error::setting(
                "categorical",
                &table.names[*j],
                "is also named by --drop",
            ));
        }
        Ok(Named {
            keep,
            pixels: ov.pixels,
            drop,
            categorical,
        })
    }

    /// Why column `j` is left out whatever it holds: named by `--drop`, not named by
    /// `--features`, or no value in the training rows (`present` = 0).
    fn excluded(&self, j: usize, present: usize) -> Option<String> {
        if self.drop.contains(&j) {
            Some("--drop".into())
        } else if self.keep.as_ref().is_some_and(|k| !k.contains(&j)) {
            Some("not named by --features".into())
        } else {
            (present == 0).then(|| "no value in the training rows".into())
        }
    }
}

/// What the training rows hold in one column: its scan, the count of each distinct text cell
/// (for text, or numbers one-hot encoded by `--categorical`), how many distinct values and how
/// many present.
struct Seen<'a> {
    scan: Scan<'a>,
    counts: HashMap<Cow<'a, str>, usize>,
    distinct: usize,
    present: usize,
}

/// Adds the count of each non-missing cell of column `j` in `rows` to `counts`.
fn count_cells<'a>(
    table: &'a Table,
    j: usize,
    rows: &[usize],
    counts: &mut HashMap<Cow<'a, str>, usize>,
) {
    match &table.columns[j] {
        // Each distinct cell counted by its code, then named.
        crate::table::ColumnCells::Text { codes, dict } => {
            let mut n = vec![0usize; dict.len()];
            for &i in rows {
                n[codes[i] as usize] += 1;
            }
            for (d, n) in dict.iter().zip(n) {
                if n > 0 && !is_missing(d) {
                    *counts.entry(Cow::Borrowed(d.as_str())).or_default() += n;
                }
            }
        }
        // Numbers (under --categorical) by value, named by their shortest text.
        crate::table::ColumnCells::Numbers { values, .. } => {
            let mut n: HashMap<u64, usize> = HashMap::new();
            for &i in rows {
                let v = values[i];
                if !v.is_nan() {
                    *n.entry(if v == 0.0 { 0 } else { v.to_bits() }).or_default() += 1;
                }
            }
            for (bits, n) in n {
                *counts
                    .entry(Cow::Owned(format!("{}", f64::from_bits(bits))))
                    .or_default() += n;
            }
        }
    }
}

/// Column `j` fitted on the training `rows`: its encoding (or why it is dropped), and whether
/// it gets a missing-value indicator.
fn fit_column<'a>(
    table: &'a Table,
    j: usize,
    rows: &[usize],
    scan: Scan<'a>,
    named: &Named,
) -> Result<Column> {
    let mut counts = HashMap::new();
    let distinct = if scan.numeric {
        distinct_numbers(&scan.values)
    } else {
        count_cells(table, j, rows, &mut counts);
        counts.len()
    };
    let present = rows.len() - scan.missing;
    let missing = scan.missing;
    let mut seen = Seen {
        scan,
        counts,
        distinct,
        present,
    };
    // An image's pixels are numbers, one feature each: no text, no indicator (the network's
    // input is the image's C·H·W values).
    if named.pixels && !seen.scan.numeric {
        let bad = rows.iter().copied().find(|&i| {
            let c = table.cell(i, j);
            !c.is_missing() && !matches!(c, Cell::Number(_)) && c.text().parse::<f64>().is_err()
        });
        if let Some(i) = bad {
            return Err(table.error(
                table.at(i, j),
                format!(
                    "{} is not a number: with --image-shape every column but the target is a pixel",
                    quoted(&table.cell(i, j).text())
                ),
            ));
        }
    }
    // Named by --features: kept whatever the heuristics below would say.
    let kept = named.pixels || named.keep.as_ref().is_some_and(|k| k.contains(&j));
    let encoding = if let Some(reason) = named.excluded(j, present) {
        Encoding::Dropped { reason }
    } else if named.categorical.contains(&j) {
        if seen.scan.numeric {
            count_cells(table, j, rows, &mut seen.counts);
        }
        categorical_encoding(&seen.counts)
    } else if let Some(reason) = (!kept).then(|| useless(table, j, &seen)).flatten() {
        Encoding::Dropped { reason }
    } else {
        encoding_of(table, j, rows, &mut seen, kept)?
    };
    let is_dropped = matches!(encoding, Encoding::Dropped { .. });
    Ok(Column {
        name: table.names[j].clone(),
        encoding,
        indicator: missing > 0 && !is_dropped && !named.pixels,
        missing,
        distinct,
    })
}

/// Why column `j` tells nothing, if it does not: one value on every training row, row names
/// (an unnamed first column with a different whole value on every row), or an identifier (named
/// like one, nearly every value different).
fn useless(table: &Table, j: usize, seen: &Seen) -> Option<String> {
    let (s, distinct, present) = (&seen.scan, seen.distinct, seen.present);
    let whole = !s.numeric || s.values.iter().all(|v| v.fract() == 0.0);
    if distinct == 1 && s.missing == 0 {
        let v = s.first.expect("one value").text();
        return Some(format!("constant: {} on every training row", quoted(&v)));
    }
    let unnamed = table.names[0].is_empty() || table.names[0].eq_ignore_ascii_case("unnamed: 0");
    if j == 0 && table.has_header && unnamed && distinct == present && whole {
        return Some("row names: unnamed first column, a different value on every row".into());
    }
    if table.has_header
        && looks_like_id(&table.names[j])
        && distinct as f64 >= ID_SHARE * present as f64
        && whole
    {
        return Some(format!(
            "ID-like: named like an identifier, {distinct} distinct values in {present} rows"
        ));
    }
    None
}

/// Column `j`'s encoding by what it holds: numbers (missing cells filled with the median),
/// booleans (filled with the more frequent), or categories — unless its text is numbers
/// written in a way this reader refuses (an error), or, unless `kept`, an identifier (nearly
/// every value different).
fn encoding_of(
    table: &Table,
    j: usize,
    rows: &[usize],
    seen: &mut Seen,
    kept: bool,
) -> Result<Encoding> {
    let (distinct, present) = (seen.distinct, seen.present);
    if seen.scan.numeric {
        let values = &mut seen.scan.values;
        if values.iter().any(|&v| !fits_f32(v)) {
            // The error names the first cell out of f32's range.
            for &i in rows {
                let c = table.cell(i, j);
                if !c.is_missing() {
                    number(table, i, j, &c.text())?;
                }
            }
        }
        return Ok(Encoding::Numeric {
            fill: Some(median(values)),
        });
    }
    let counts = &seen.counts;
    if counts.keys().all(|c| parse_bool(c).is_some()) {
        let yes: usize = counts
            .iter()
            .filter(|(c, _)| parse_bool(c) == Some(true))
            .map(|(_, n)| n)
            .sum();
        let no: usize = counts.values().sum::<usize>() - yes;
        return Ok(Encoding::Boolean { fill: yes > no });
    }
    if let Some(e) = misread_numbers(table, j, rows, counts) {
        return Err(e);
    }
    if !kept && present >= ID_MIN_ROWS && distinct as f64 >= ID_SHARE * present as f64 {
        return Ok(Encoding::Dropped {
            reason: format!("ID-like: text with {distinct} distinct values in {present} rows"),
        });
    }
    Ok(categorical_encoding(counts))
}

/// What one pass over a column's training cells found.
struct Scan<'a> {
    missing: usize,
    /// The values as numbers, while every one is a number (else empty).
    values: Vec<f64>,
    numeric: bool,
    first: Option<Cell<'a>>,
}

/// Scans the columns `cols` over `rows`: a numeric column's numbers are read as they are, a
/// text column's distinct cells are each judged once.
fn scan<'a>(table: &'a Table, cols: &[usize], rows: &[usize]) -> Vec<Scan<'a>> {
    cols.iter()
        .map(|&j| {
            let mut s = Scan {
                missing: 0,
                values: Vec::new(),
                numeric: true,
                first: None,
            };
            match &table.columns[j] {
                crate::table::ColumnCells::Numbers { values, .. } => {
                    s.values.reserve(rows.len());
                    for &i in rows {
                        let v = values[i];
                        if v.is_nan() {
                            s.missing += 1;
                        } else {
                            s.values.push(v);
                        }
                    }
                    s.first = rows
                        .iter()
                        .map(|&i| table.cell(i, j))
                        .find(|c| !c.is_missing());
                }
                crate::table::ColumnCells::Text { codes, dict } => {
                    // Per distinct cell: missing, or its number.
                    let judged: Vec<(bool, Option<f64>)> = dict
                        .iter()
                        .map(|d| (is_missing(d), parse_number(d)))
                        .collect();
                    for &i in rows {
                        let k = codes[i] as usize;
                        let (miss, number) = judged[k];
                        if miss {
                            s.missing += 1;
                            continue;
                        }
                        s.first.get_or_insert(Cell::Text(&dict[k]));
                        if s.numeric {
                            match number {
                                Some(v) => s.values.push(v),
                                None => {
                                    s.numeric = false;
                                    s.values = Vec::new();
                                }
                            }
                        }
                    }
                }
            }
            s
        })
        .collect()
}

fn categorical_encoding(counts: &HashMap<Cow<str>, usize>) -> Encoding {
    let mut by_count: Vec<(&str, usize)> = counts.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let fill = by_count[0].0.to_string();
    let mut categories: Vec<String> = by_count
        .iter()
        .take(MAX_CATEGORIES)
        .map(|(k, _)| k.to_string())
        .collect();
    categories.sort();
    Encoding::Categorical { categories, fill }
}

/// A number written with a thousands separator (`12,345`, `1,234,567.5`), a decimal comma
/// (`0,5`), a percent sign (`45%`, `3.5 %`) or a currency sign (`$12`, `€3,50`, `£4`): what the
/// digits say, and the decoration.
pub fn decorated_number(cell: &str) -> Option<&'static str> {
    let mut c = cell.trim();
    let mut what = None;
    for sign in ['$', '€', '£', '¥'] {
        if let Some(rest) = c
            .strip_prefix(sign)
            .or_else(|| c.strip_prefix(&format!("-{sign}")[..]))
        {
            c = rest.trim_start();
            what = Some("a currency sign");
        }
    }
    if let Some(rest) = c.strip_suffix('%') {
        c = rest.trim_end();
        what = Some("a percent sign");
    }
    let digits = c.strip_prefix(['-', '+']).unwrap_or(c);
    if digits.contains(',') {
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let groups: Vec<&str> = int.split(',').collect();
        let grouped = !groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
            && frac.bytes().all(|b| b.is_ascii_digit());
        let decimal_comma = groups.len() == 2
            && !digits.contains('.')
            && groups
                .iter()
                .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()));
        // `1,250` reads both ways: 1250 with a separator, 1.25 with a decimal comma.
        if grouped && decimal_comma {
            return Some("a thousands separator or a decimal comma");
        }
        if grouped {
            return Some("a thousands separator");
        }
        return decimal_comma.then_some("a decimal comma");
    }
    match what {
        Some(w) if parse_number(c).is_some_and(f64::is_finite) => Some(w),
        _ => None,
    }
}

/// Share of a text column's values that must be numbers for the rest to be called stray text.
pub const NUMERIC_SHARE: f64 = 0.9;

/// A text column that is really numbers, so that encoding it as categories (or dropping it as
/// ID-like) would silently lose them: every value a number, some written with a thousands
/// separator, decimal comma, percent or currency sign; or at least [`NUMERIC_SHARE`] of the values
/// plain numbers and a few stray words ("three", "5 kg"). The error names the first such cell.
fn misread_numbers(
    table: &Table,
    j: usize,
    rows: &[usize],
    counts: &HashMap<Cow<str>, usize>,
) -> Option<Error> {
    let present: usize = counts.values().sum();
    let (mut plain, mut decorated) = (0, 0);
    for (c, n) in counts {
        if parse_number(c).is_some() {
            plain += n;
        } else if decorated_number(c).is_some() {
            decorated += n;
        }
    }
    let name = &table.names[j];
    // The first present cell that is not a plain number: the one the error shows.
    let first_text = || {
        rows.iter().copied().find(|&i| {
            let c = table.cell(i, j);
            !c.is_missing() && c.number().is_none()
        })
    };
    if decorated > 0 && plain + decorated == present {
        let i = first_text()?;
        let c = table.cell(i, j).text();
        let c = c.as_ref();
        return Some(table.error(
            table.at(i, j),
            format!(
                "{} is a number written with {}, and the column {name} holds only such numbers; \
                 downhill reads plain numbers (1234.5). Rewrite the column without the separator or sign, \
                 or pass --categorical {name} to use its values as categories, or --drop {name}",
                quoted(c),
                decorated_number(c).unwrap_or("a separator")
            ),
        ));
    }
    if plain > 0 && plain < present && plain as f64 >= NUMERIC_SHARE * present as f64 {
        let i = first_text()?;
        let c = table.cell(i, j).text();
        let c = c.as_ref();
        return Some(table.error(
            table.at(i, j),
            format!(
                "{} is not a number, but {plain} of the {present} values of the column {name} are; \
                 fix the cell or write it as missing (NA), or pass --categorical {name} to use the \
                 values as categories, or --drop {name}",
                quoted(c)
            ),
        ));
    }
    None
}

/// How many different numbers `v` holds (0 and −0 are one; every NaN is its own), counted in a
/// hash set (a sort costs a long column's time several times over). A long column is first
/// split by a hash of each number into parts whose sets fit in the cache (equal numbers fall in
/// one part), and the parts' counts are added: one set as large as the column would miss the
/// cache on nearly every number.
fn distinct_numbers(v: &[f64]) -> usize {
    const PARTS: usize = 256;
    let key = |x: f64| if x == 0.0 { 0 } else { x.to_bits() };
    let nans = v.iter().filter(|x| x.is_nan()).count();
    if v.len() < 1 << 16 {
        let mut seen = hashbrown::HashSet::with_capacity(v.len());
        for &x in v.iter().filter(|x| !x.is_nan()) {
            seen.insert(key(x));
        }
        return seen.len() + nans;
    }
    // The part of a key: the top byte of a multiplicative hash (Fibonacci hashing).
    let part = |k: u64| (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
    let mut starts = [0usize; PARTS + 1];
    for &x in v.iter().filter(|x| !x.is_nan()) {
        starts[part(key(x)) + 1] += 1;
    }
    for p in 0..PARTS {
        starts[p + 1] += starts[p];
    }
    let mut keys = vec![0u64; starts[PARTS]];
    let mut next = starts;
    for &x in v.iter().filter(|x| !x.is_nan()) {
        let k = key(x);
        let p = part(k);
        keys[next[p]] = k;
        next[p] += 1;
    }
    let largest = (0..PARTS)
        .map(|p| starts[p + 1] - starts[p])
        .max()
        .unwrap_or(0);
    let mut seen = hashbrown::HashSet::with_capacity(largest);
    let mut distinct = 0;
    for p in 0..PARTS {
        seen.clear();
        seen.extend(keys[starts[p]..starts[p + 1]].iter().copied());
        distinct += seen.len();
    }
    distinct + nans
}

/// The median (mean of the two middle values for an even count), as numpy's: the middle of
/// `v` in the order of [`f64::total_cmp`], found by selection (no sort; `v` is reordered).
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let (below, &mut mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        mid
    } else {
        let lower = below
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .expect("n is even and not 0");
        (lower + mid) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::tests::{fit, table};

    #[test]
    fn median_and_distinct_count_agree_with_a_sort() {
        use rand::{Rng as _, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in 1..60 {
            // Few distinct values, so that duplicates, 0 and -0 meet.
            let v: Vec<f64> = (0..n)
                .map(|_| match rng.random_range(0..4) {
                    0 => 0.0,
                    1 => -0.0,
                    _ => f64::from(rng.random_range(-5i32..5)) * 0.5,
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let want_median = if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            };
            let want_distinct = 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count();
            assert_eq!(distinct_numbers(&v), want_distinct, "{v:?}");
            let mut w = v.clone();
            assert_eq!(median(&mut w).to_bits(), want_median.to_bits(), "{v:?}");
        }
        assert_eq!(distinct_numbers(&[f64::NAN, f64::NAN, 1.0]), 3);
        // Long columns (counted in parts): many repeats, all different, ±0 and NaN.
        for (n, values) in [(70_000, 1_000u64), (300_000, 290_000), (100_000, 1 << 40)] {
            let mut v: Vec<f64> = (0..n)
                .map(|_| rng.random_range(0..values) as f64 * 0.25 - 7.0)
                .collect();
            v[5] = 0.0;
            v[6] = -0.0;
            v[7] = f64::NAN;
            let mut sorted: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            sorted.sort_by(f64::total_cmp);
            let want = 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count() + 1;
            assert_eq!(distinct_numbers(&v), want, "{n} values");
        }
    }

    /// `1,250` is 1250 or 1.25: both readings are named (the fourth hostile pass of issue 19
    /// found a decimal comma called a thousands separator).
    #[test]
    fn a_comma_is_named_by_what_it_can_mean() {
        let both = Some("a thousands separator or a decimal comma");
        assert_eq!(decorated_number("3,141"), both);
        assert_eq!(decorated_number("-1,250"), both);
        assert_eq!(
            decorated_number("12,345,678"),
            Some("a thousands separator")
        );
        assert_eq!(decorated_number("1,234.5"), Some("a thousands separator"));
        assert_eq!(decorated_number("0,5"), Some("a decimal comma"));
        assert_eq!(decorated_number("3,14"), Some("a decimal comma"));
        assert_eq!(decorated_number("1,2,3"), None);
    }

    /// What the columns fitted without overrides make of column `name` of the table `lines`.
    fn auto_kind(lines: &[&str], name: &str) -> String {
        kind(&fit(&table(lines), &Overrides::default()).unwrap(), name)
    }

    fn kind(c: &Columns, name: &str) -> String {
        let col = c.columns.iter().find(|c| c.name == name).unwrap();
        col.role().to_string()
    }

    #[test]
    fn id_names() {
        for n in [
            "id",
            "ID",
            "Id",
            "index",
            "",
            "Unnamed: 0",
            "rownames",
            "customer_id",
            "row id",
            "PassengerId",
            "customerID",
            "user.id",
        ] {
            assert!(looks_like_id(n), "{n:?}");
        }
        for n in ["valid", "grid", "UUID", "width", "idea", "bid_price", "i"] {
            assert!(!looks_like_id(n), "{n:?}");
        }
    }

    #[test]
    fn rule_constant_columns_are_dropped_unless_missing_or_named() {
        assert_eq!(
            auto_kind(&["a,k,y", "1,x,0", "2,x,1", "3,x,0"], "k"),
            "dropped"
        );
        // One value plus missing cells: the indicator carries information, so it is kept.
        let t = table(&["a,k,y", "1,x,0", "2,,1", "3,x,0"]);
        let c = fit(&t, &Overrides::default()).unwrap();
        assert_eq!(kind(&c, "k"), "categorical");
        assert!(c.columns[1].indicator);
        let t = table(&["a,k,y", "1,x,0", "2,x,1", "3,x,0"]);
        let ov = Overrides {
            features: Some(vec!["k".into()]),
            ..Default::default()
        };
        assert_eq!(kind(&fit(&t, &ov).unwrap(), "k"), "categorical");
    }

    #[test]
    fn rule_empty_columns_are_dropped() {
        let t = table(&["a,e,y", "1,NA,0", "2,,1", "3,?,0"]);
        let c = fit(&t, &Overrides::default()).unwrap();
        assert_eq!(kind(&c, "e"), "dropped");
        assert_eq!(c.n_features(), 1);
    }

    #[test]
    fn rule_row_names_and_id_like_columns_are_dropped() {
        // Unnamed first column with a value per row.
        assert_eq!(
            auto_kind(&[",a,y", "r1,1,0", "r2,2,1", "r3,3,0"], ""),
            "dropped"
        );
        // Named like an ID, numeric, distinct on every row (even a short table).
        assert_eq!(
            auto_kind(
                &["PassengerId,a,y", "7,1,0", "3,2,1", "9,3,0"],
                "PassengerId"
            ),
            "dropped"
        );
        // Named like an ID but repeating (< 95% distinct): kept.
        assert_eq!(
            auto_kind(&["user_id,a,y", "7,1,0", "7,2,1", "9,3,0"], "user_id"),
            "numeric"
        );
        // Text distinct on ≥ 95% of ≥ 20 rows: dropped; on 19 rows: categorical.
        let mut lines = vec!["name,a,y".to_string()];
        for i in 0..20 {
            lines.push(format!("person{i},{i},{}", i % 2));
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(auto_kind(&refs, "name"), "dropped");
        assert_eq!(auto_kind(&refs[..20], "name"), "categorical");
        // 19 distinct of 20 (95%): still ID-like; 18 of 20 (90%): categorical.
        let mut l19 = lines.clone();
        l19[20] = "person0,19,1".into();
        let refs: Vec<&str> = l19.iter().map(String::as_str).collect();
        assert_eq!(auto_kind(&refs, "name"), "dropped");
        l19[19] = "person0,18,0".into();
        let refs: Vec<&str> = l19.iter().map(String::as_str).collect();
        assert_eq!(auto_kind(&refs, "name"), "categorical");
        // A numeric column distinct on every row without an ID name is a feature.
        assert_eq!(
            auto_kind(&["weight,y", "1.5,0", "2.25,1", "3.125,0"], "weight"),
            "numeric"
        );
    }

    #[test]
    fn categories_beyond_the_cap_keep_the_most_frequent() {
        let mut lines = vec!["c,y".to_string()];
        for i in 0..(MAX_CATEGORIES + 20) {
            lines.push(format!("k{i:03},{}", i % 2));
            if i < MAX_CATEGORIES {
                lines.push(format!("k{i:03},{}", i % 2));
            }
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let c = fit(&table(&refs), &Overrides::default()).unwrap();
        match &c.columns[0].encoding {
            Encoding::Categorical { categories, .. } => {
                assert_eq!(categories.len(), MAX_CATEGORIES);
                assert!(categories.iter().all(|k| k.as_str() < "k100"));
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn numbers_beyond_f32_and_infinities_are_errors_with_the_cell() {
        for v in ["1e39", "-3.5e38", "inf", "-infinity"] {
            let t = table(&["a,y", "1,0", &format!("{v},1")]);
            let e = fit(&t, &Overrides::default()).unwrap_err().to_string();
            assert!(
                e.contains("t.csv") && e.contains("line 3, column a"),
                "{v}: {e}"
            );
        }
        let t = table(&["a,y", "3.4e38,0", "1,1"]);
        assert!(fit(&t, &Overrides::default()).is_ok());
    }

    #[test]
    fn overrides_are_checked() {
        let t = table(&["a,b,y", "1,2,0", "2,3,1"]);
        let ov = |f: Option<&[&str]>, d: &[&str], c: &[&str]| Overrides {
            features: f.map(|f| f.iter().map(|s| s.to_string()).collect()),
            drop: d.iter().map(|s| s.to_string()).collect(),
            categorical: c.iter().map(|s| s.to_string()).collect(),
            pixels: false,
        };
        let c = fit(&t, &ov(Some(&["b"]), &[], &[])).unwrap();
        assert_eq!(c.feature_names(), ["b"]);
        let c = fit(&t, &ov(None, &["a"], &["b"])).unwrap();
        assert_eq!(c.feature_names(), ["b=2", "b=3"]);
        for (o, needle) in [
            (ov(Some(&["zzz"]), &[], &[]), "zzz"),
            (ov(None, &["y"], &[]), "target"),
            (ov(Some(&["a"]), &["a"], &[]), "--features"),
            (ov(None, &["a"], &["a"]), "--drop"),
            (ov(None, &["a", "b"], &[]), "no feature column left"),
        ] {
            let e = fit(&t, &o).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
