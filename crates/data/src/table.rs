//! A CSV file's cells, parsed once into typed columns.
//!
//! Each column is read in one pass, on one thread per block of lines:
//! - a column whose every present cell is a plain number (finite, within f32's range) holds the
//!   numbers as `f64` ([`ColumnCells::Numbers`]); a missing cell is a NaN that remembers how it was
//!   written (`NA`, `?`, empty), so that messages can quote it;
//! - any other column holds its text, each distinct cell once, and a code per row
//!   ([`ColumnCells::Text`]).
//!
//! A column that turns out to hold text after numbers (in the same block or in another) is read
//! again as text, so the text a message or a category shows is always the cell as written. The
//! roles and encodings ([`crate::columns`]) then read numbers without parsing them again.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use downhill_core::error::{Error, Result};

// What a cell says before any column's rules — missing or not, a number or not — and which
// separator the cells of a file are split at: the lowest layer of this crate, which the column
// rules (`columns`) and the reader (`csv`) build on (both re-export these names).

/// Cells that count as missing (compared trimmed and ignoring ASCII case).
pub const MISSING_WORDS: [&str; 6] = ["", "na", "n/a", "nan", "null", "?"];

/// Whether a cell is missing (one of [`MISSING_WORDS`]).
pub fn is_missing(cell: &str) -> bool {
    if cell.len() > 8 {
        return !cell.is_empty() && cell.trim().is_empty();
    }
    let c = cell.trim();
    MISSING_WORDS.iter().any(|w| c.eq_ignore_ascii_case(w))
}

/// A number as Rust (and Python's float()) read it; `None` for text.
pub fn parse_number(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok()
}

/// The field separator: comma, semicolon (as Excel writes CSV where the decimal mark is a comma)
/// or tab (TSV), counted outside quotes on the first (up to) five lines. A separator found the
/// same number of times (≥ 1) on each of them wins, the one found most often first (ties:
/// semicolon, tab, comma, so that `0,5;1,2` reads as two decimal-comma cells); if none is that
/// regular, the one most frequent on the first line; a comma when there is none.
pub fn sniff_delimiter(bytes: &[u8]) -> u8 {
    const CANDIDATES: [u8; 3] = [b';', b'\t', b','];
    let mut lines: Vec<[usize; 3]> = vec![[0; 3]];
    let mut quoted = false;
    for (k, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            // A line ends at `\n`, or at a `\r` not followed by one (old Mac files).
            b'\n' | b'\r' if !quoted && (b == b'\n' || bytes.get(k + 1) != Some(&b'\n')) => {
                if lines.len() == 5 || k + 1 == bytes.len() {
                    break;
                }
                lines.push([0; 3]);
            }
            _ if !quoted => {
                if let Some(c) = CANDIDATES.iter().position(|&d| d == b) {
                    lines.last_mut().expect("a line")[c] += 1;
                }
            }
            _ => {}
        }
    }
    let regular = (0..3)
        .filter(|&c| lines[0][c] > 0 && lines.iter().all(|l| l[c] == lines[0][c]))
        .max_by_key(|&c| (lines[0][c], std::cmp::Reverse(c)));
    let frequent = (0..3)
        .filter(|&c| lines[0][c] > 0)
        .max_by_key(|&c| (lines[0][c], std::cmp::Reverse(c)));
    regular.or(frequent).map_or(b',', |c| CANDIDATES[c])
}

/// One cell of a [`Table`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    /// A cell of a numeric column: its number.
    Number(f64),
    /// A missing cell of a numeric column, as written (trimmed).
    Missing(&'a str),
    /// A cell of a text column, as written (trimmed): text, a missing word, or a number.
    Text(&'a str),
}

impl<'a> Cell<'a> {
    /// Whether the cell is missing ([`is_missing`]).
    pub fn is_missing(self) -> bool {
        match self {
            Cell::Number(_) => false,
            Cell::Missing(_) => true,
            Cell::Text(t) => is_missing(t),
        }
    }

    /// The cell as a number, as [`parse_number`] reads its text.
    pub fn number(self) -> Option<f64> {
        match self {
            Cell::Number(v) => Some(v),
            Cell::Missing(t) | Cell::Text(t) => parse_number(t),
        }
    }

    /// The cell's text: as written, or (a numeric column's number) the shortest text that reads
    /// back as the same number (with an exponent below 10⁻⁵ and from 10¹⁶).
    pub fn text(self) -> Cow<'a, str> {
        match self {
            // (Tiny and huge numbers with an exponent: `1e-50`, not fifty digits.)
            Cell::Number(v) if v != 0.0 && !(1e-5..1e16).contains(&v.abs()) => {
                Cow::Owned(format!("{v:e}"))
            }
            Cell::Number(v) => Cow::Owned(format!("{v}")),
            Cell::Missing(t) | Cell::Text(t) => Cow::Borrowed(t),
        }
    }
}

/// The cells of one column.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnCells {
    /// Every present cell a number (finite, within f32's range). A NaN marks a missing cell; its
    /// low 32 bits index `missing`, the cell as written.
    Numbers {
        values: Vec<f64>,
        missing: Vec<String>,
    },
    /// Each row's code into `dict`, the distinct cells as written.
    Text { codes: Vec<u32>, dict: Vec<String> },
}

const MISSING_NAN: u64 = 0x7ff8_0000_0000_0000;

fn missing_value(k: usize) -> f64 {
    f64::from_bits(MISSING_NAN | k as u64)
}

fn missing_index(v: f64) -> usize {
    (v.to_bits() & 0xffff_ffff) as usize
}

impl ColumnCells {
    fn len(&self) -> usize {
        match self {
            ColumnCells::Numbers { values, .. } => values.len(),
            ColumnCells::Text { codes, .. } => codes.len(),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Cell<'_> {
        match self {
            ColumnCells::Numbers { values, missing } => {
                let v = values[i];
                if v.is_nan() {
                    Cell::Missing(&missing[missing_index(v)])
                } else {
                    Cell::Number(v)
                }
            }
            ColumnCells::Text { codes, dict } => Cell::Text(&dict[codes[i] as usize]),
        }
    }
}

/// A CSV file's cells (trimmed), in typed columns, with its column names and each row's line.
#[derive(Clone, Debug)]
pub struct Table {
    pub path: PathBuf,
    /// Column names: the header's, or `column 0`, `column 1`, … without one.
    pub names: Vec<String>,
    pub has_header: bool,
    /// The cells, a column each.
    pub columns: Vec<ColumnCells>,
    /// 1-based line of each row in the file.
    pub lines: Vec<u64>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// The cell at row `i`, column `j`.
    #[inline]
    pub fn cell(&self, i: usize, j: usize) -> Cell<'_> {
        self.columns[j].get(i)
    }

    /// A numeric column's numbers (NaN where missing), or `None` for a text column.
    pub fn numbers(&self, j: usize) -> Option<&[f64]> {
        match &self.columns[j] {
            ColumnCells::Numbers { values, .. } => Some(values),
            ColumnCells::Text { .. } => None,
        }
    }

    /// "column NAME" of column `j`, for errors; a file without a header names its columns
    /// "column 0", "column 1", …, which are said as they are (not "column column 0").
    pub fn column(&self, j: usize) -> String {
        let name = &self.names[j];
        if !self.has_header && name.starts_with("column ") {
            name.clone()
        } else {
            format!("column {name}")
        }
    }

    /// "line L, column NAME" of a cell, for errors.
    pub fn at(&self, i: usize, j: usize) -> String {
        let name = &self.names[j];
        // A file without a header names its columns "column 0", "column 1", …
        if name.starts_with("column ") {
            format!("line {}, {name}", self.lines[i])
        } else {
            format!("line {}, column {name}", self.lines[i])
        }
    }

    /// An error about this file.
    pub fn error(&self, location: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Data {
            path: self.path.clone(),
            location: location.into(),
            message: message.into(),
        }
    }

    /// Puts `fields` (a record read at line `line`, of the table's width) before the first row.
    /// Fails (returns false, the table unchanged) when a field is text and its column holds
    /// numbers: the column's cells would have to be read again as text.
    pub(crate) fn prepend(&mut self, fields: &[String], line: u64) -> bool {
        let fits = fields.iter().zip(&self.columns).all(|(f, c)| match c {
            ColumnCells::Numbers { values, .. } => {
                is_missing(f) || plain_number(f).is_some() || values.iter().all(|v| v.is_nan())
            }
            ColumnCells::Text { .. } => true,
        });
        if !fits {
            return false;
        }
        for (f, c) in fields.iter().zip(&mut self.columns) {
            if matches!(c, ColumnCells::Numbers { .. })
                && !is_missing(f)
                && plain_number(f).is_none()
            {
                // Every cell below is missing: the column becomes text, exactly.
                let numbers = std::mem::replace(
                    c,
                    ColumnCells::Text {
                        codes: Vec::new(),
                        dict: Vec::new(),
                    },
                );
                *c = to_text(numbers);
            }
            match c {
                ColumnCells::Numbers { values, missing } => {
                    let v = if is_missing(f) {
                        missing_value(spelling(missing, f))
                    } else {
                        plain_number(f).expect("checked above")
                    };
                    values.insert(0, v);
                }
                ColumnCells::Text { codes, dict } => {
                    let k = match dict.iter().position(|d| d == f) {
                        Some(k) => k,
                        None => {
                            dict.push(f.clone());
                            dict.len() - 1
                        }
                    };
                    codes.insert(0, k as u32);
                }
            }
        }
        self.lines.insert(0, line);
        true
    }
}

/// A cell read as a numeric column's number: plain (no surrounding space), finite, within f32's
/// range. Anything else (text, `inf`, `1e39`) makes its column a text column, whose later reading
/// says what is wrong with it.
#[inline]
fn plain_number(cell: &str) -> Option<f64> {
    let b = cell.as_bytes().first()?;
    if !(b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Some(v) = short_decimal(cell.as_bytes()) {
        return Some(v);
    }
    cell.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && v.abs() <= f32::MAX as f64)
}

/// Exact powers of ten as `f64` (every one up to 10²² is).
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// A decimal `[+-]digits[.digits]` of at most 15 digits, the way most tables write numbers,
/// read without the general parser: its digits m are an exact `f64` (m < 10¹⁵ < 2⁵³), so is
/// 10^k for its k digits after the point, and one IEEE division rounds m / 10^k correctly —
/// the value `str::parse` gives (Clinger's fast path). `None` for anything else (the caller
/// then parses it in full).
#[inline]
fn short_decimal(b: &[u8]) -> Option<f64> {
    let (negative, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let (mut m, mut n, mut point) = (0u64, 0usize, None);
    for (k, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                m = m * 10 + (c - b'0') as u64;
                n += 1;
            }
            b'.' if point.is_none() => point = Some(k),
            _ => return None,
        }
    }
    if n == 0 || n > 15 {
        return None;
    }
    let after = point.map_or(0, |p| digits.len() - 1 - p);
    // (m < 2⁵³: as a signed integer it converts in one instruction.)
    let v = m as i64 as f64 / POWERS_OF_TEN[after];
    Some(if negative { -v } else { v })
}

/// The index of the missing spelling `cell` in `missing`, added if new.
fn spelling(missing: &mut Vec<String>, cell: &str) -> usize {
    match missing.iter().position(|m| m == cell) {
        Some(k) => k,
        None => {
            missing.push(cell.to_string());
            missing.len() - 1
        }
    }
}

/// A numeric column as text: exact only when no cell is a number (every one missing).
fn to_text(c: ColumnCells) -> ColumnCells {
    match c {
        ColumnCells::Numbers { values, missing } => {
            debug_assert!(values.iter().all(|v| v.is_nan()));
            ColumnCells::Text {
                codes: values.iter().map(|&v| missing_index(v) as u32).collect(),
                dict: missing,
            }
        }
        text => text,
    }
}

/// Columns to read as text whatever they hold, so that their cells keep how they were written:
/// a classification target's labels (`1e15`, `1.50`), categories (`007`, `1.0` beside `1`).
/// Each entry names a column, or gives its 0-based position; `last`: the last column too.
/// (A column read as text that holds numbers is read as numbers would be, only slower.)
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AsText {
    pub entries: Vec<String>,
    pub last: bool,
}

impl AsText {
    /// Whether column `j` (of `width`), named `name`, is read as text.
    pub fn wants(&self, j: usize, name: &str, width: usize) -> bool {
        self.entries
            .iter()
            .any(|e| e == name || e.trim().parse::<usize>() == Ok(j))
            || (self.last && j + 1 == width)
    }

    /// The columns of `table` that it holds as text, by name and position (a test file's
    /// columns are matched to these by either).
    pub fn of_table(table: &Table) -> AsText {
        let mut entries = Vec::new();
        for (j, c) in table.columns.iter().enumerate() {
            if matches!(c, ColumnCells::Text { .. }) {
                entries.push(table.names[j].clone());
                entries.push(j.to_string());
            }
        }
        AsText {
            entries,
            last: false,
        }
    }
}

/// How a pass reads a column.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    /// Numbers while every present cell is one, else text.
    Auto,
    Text,
    Skip,
}

/// A column as one block's pass leaves it.
enum Building {
    Numbers {
        values: Vec<f64>,
        missing: Vec<String>,
        /// Whether a cell was a number (else every one so far is missing).
        present: bool,
    },
    Text {
        codes: Vec<u32>,
        dict: Vec<String>,
        index: hashbrown::HashMap<String, u32>,
    },
    /// Text met after numbers: the block's cells of this column must be read again as text.
    Demoted,
    Skipped,
}

impl Building {
    /// A column to be read as `plan` says, with room for `rows` cells.
    fn new(plan: Plan, rows: usize) -> Building {
        match plan {
            Plan::Auto => Building::Numbers {
                values: Vec::with_capacity(rows),
                missing: Vec::new(),
                present: false,
            },
            Plan::Text => Building::Text {
                codes: Vec::with_capacity(rows),
                dict: Vec::new(),
                index: hashbrown::HashMap::new(),
            },
            Plan::Skip => Building::Skipped,
        }
    }

    #[inline]
    fn push(&mut self, cell: &str) {
        match self {
            Building::Numbers {
                values,
                missing,
                present,
            } => {
                if let Some(v) = plain_number(cell) {
                    values.push(v);
                    *present = true;
                } else if is_missing(cell) {
                    let k = spelling(missing, cell);
                    values.push(missing_value(k));
                } else if *present {
                    *self = Building::Demoted;
                } else {
                    // Only missing cells so far: the column becomes text, exactly.
                    let (values, missing) = (std::mem::take(values), std::mem::take(missing));
                    let mut index = hashbrown::HashMap::new();
                    for (k, m) in missing.iter().enumerate() {
                        index.insert(m.clone(), k as u32);
                    }
                    *self = Building::Text {
                        codes: values.iter().map(|&v| missing_index(v) as u32).collect(),
                        dict: missing,
                        index,
                    };
                    self.push(cell);
                }
            }
            Building::Text { codes, dict, index } => {
                let k = match index.get(cell) {
                    Some(&k) => k,
                    None => {
                        let k = dict.len() as u32;
                        dict.push(cell.to_string());
                        index.insert(cell.to_string(), k);
                        k
                    }
                };
                codes.push(k);
            }
            Building::Demoted | Building::Skipped => {}
        }
    }
}

/// What one block's pass read: its columns, and each row's line.
struct Block {
    columns: Vec<Building>,
    lines: Vec<u64>,
}

impl Block {
    /// Columns to read as `plan` says, with room for `room` rows.
    fn new(plan: &[Plan], room: usize) -> Block {
        Block {
            columns: plan.iter().map(|&p| Building::new(p, room)).collect(),
            lines: Vec::new(),
        }
    }

    /// The record of `len` `fields` (trimmed) at `line`: every row needs the `width` fields
    /// of line `width_line`.
    fn take<'f>(
        &mut self,
        path: &Path,
        line: u64,
        (width, width_line): (usize, u64),
        len: usize,
        fields: impl Iterator<Item = &'f str>,
    ) -> Result<()> {
        if len != width {
            return Err(bad(
                path,
                format!("line {line}"),
                format!(
                    "{len} fields, but line {width_line} has {width}; every row needs the same \
                     number of columns"
                ),
            ));
        }
        for (f, c) in fields.zip(self.columns.iter_mut()) {
            c.push(f);
        }
        self.lines.push(line);
        Ok(())
    }
}

fn bad(path: &Path, location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        location: location.into(),
        message: message.into(),
    }
}

/// A CSV reader of `body` as downhill reads CSV: rows of any length. Fields are trimmed (of
/// Unicode white space) as they are taken, `str::trim` being what the reader's own trimming
/// does after copying every record.
fn reader(body: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(body)
}

/// The error of a record that cannot be read, at `line`.
fn record_error(path: &Path, line: u64, e: &csv::Error) -> Error {
    // (The reader's own position is left out: the line is the file's.)
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "the file is not UTF-8 text (field {}, after its first {} bytes); save it as UTF-8 \
             (e.g. from Latin-1: iconv -f latin1 -t utf-8)",
            err.field() + 1,
            err.valid_up_to()
        ),
        _ => e.to_string(),
    };
    bad(path, format!("line {line}"), message)
}

/// Line numbers of records from their byte offsets in `body`, which starts at line
/// `first_line` (the reader's own count is one short on CRLF files, and a record index is wrong
/// after a quoted field that spans lines). Offsets must be asked in increasing order.
struct Lines<'b> {
    body: &'b [u8],
    line: u64,
    counted: usize,
}

impl Lines<'_> {
    fn at(&mut self, byte: u64) -> u64 {
        // A record's offset can lie before line breaks that precede it (the preceding line's
        // `\n` on CRLF files, blank lines the reader skipped): its line is that of its first
        // byte that is not a line break.
        let body = self.body;
        let mut b = (byte as usize).min(body.len());
        while b < body.len() && matches!(body[b], b'\r' | b'\n') {
            b += 1;
        }
        if b > self.counted {
            self.line += line_breaks(&body[self.counted..b]);
            self.counted = b;
        }
        self.line
    }
}

/// The line breaks in `s`: `\n`, `\r\n` and `\r` alone (old Mac files), each one, as the CSV
/// reader ends records at each. A `\r` at the end of `s` counts as one, so `s` must not end
/// between the two bytes of a `\r\n`.
pub(crate) fn line_breaks(s: &[u8]) -> u64 {
    let lf = memchr::memchr_iter(b'\n', s).count();
    let lone_cr = memchr::memchr_iter(b'\r', s)
        .filter(|&i| s.get(i + 1) != Some(&b'\n'))
        .count();
    (lf + lone_cr) as u64
}

/// The offset just past the first line break of `s` (`\n`, `\r\n` or `\r` alone), if any.
fn past_line_break(s: &[u8]) -> Option<usize> {
    let p = s.iter().position(|&b| b == b'\n' || b == b'\r')?;
    Some(if s[p] == b'\r' && s.get(p + 1) == Some(&b'\n') {
        p + 2
    } else {
        p + 1
    })
}

/// The first record of `body` that is not blank: its fields, its line, and the offset where
/// the records after it start; `None` for a file without one.
fn first_record(
    path: &Path,
    body: &[u8],
    delimiter: u8,
) -> Result<Option<(Vec<String>, u64, usize)>> {
    let mut rd = reader(body, delimiter);
    let mut lines = Lines {
        body,
        line: 1,
        counted: 0,
    };
    let mut r = csv::StringRecord::new();
    loop {
        let more = rd.read_record(&mut r).map_err(|e| {
            let line = e.position().map_or(1, |p| lines.at(p.byte()));
            record_error(path, line, &e)
        })?;
        if !more {
            return Ok(None);
        }
        if r.len() == 1 && r[0].trim().is_empty() {
            continue;
        }
        let line = r.position().map_or(1, |p| lines.at(p.byte()));
        let end = (rd.position().byte() as usize).min(body.len());
        let fields = r.iter().map(|f| f.trim().to_string()).collect();
        return Ok(Some((fields, line, end)));
    }
}

/// One pass over a block of whole lines that starts at line `first_line`: each column read as
/// `plan` says; every row must have `width` fields.
fn read_block(
    path: &Path,
    body: &[u8],
    delimiter: u8,
    (first_line, width_line): (u64, u64),
    width: usize,
    plan: &[Plan],
    room: usize,
) -> Result<Block> {
    match plain_text(body).filter(|_| delimiter.is_ascii()) {
        Some(text) => read_plain_block(
            path,
            text,
            delimiter,
            (first_line, width_line),
            width,
            plan,
            room,
        ),
        None => read_csv_block(
            path,
            body,
            delimiter,
            (first_line, width_line),
            width,
            plan,
            room,
        ),
    }
}

/// [`read_block`] by the CSV reader (quoted fields, or bytes that are not UTF-8).
fn read_csv_block(
    path: &Path,
    body: &[u8],
    delimiter: u8,
    (first_line, width_line): (u64, u64),
    width: usize,
    plan: &[Plan],
    room: usize,
) -> Result<Block> {
    let mut rd = reader(body, delimiter);
    let mut lines = Lines {
        body,
        line: first_line,
        counted: 0,
    };
    let mut block = Block::new(plan, room);
    // One record, reused.
    let mut r = csv::StringRecord::new();
    loop {
        let more = rd.read_record(&mut r).map_err(|e| {
            let line = e.position().map_or(first_line, |p| lines.at(p.byte()));
            record_error(path, line, &e)
        })?;
        if !more {
            break;
        }
        if r.len() == 1 && r[0].trim().is_empty() {
            continue;
        }
        let line = r.position().map_or(first_line, |p| lines.at(p.byte()));
        block.take(
            path,
            line,
            (width, width_line),
            r.len(),
            r.iter().map(str::trim),
        )?;
    }
    Ok(block)
}

/// `body` as text when it can be read without a CSV reader: valid UTF-8 with no quote, so that
/// every line break ends a record and every delimiter ends a field.
fn plain_text(body: &[u8]) -> Option<&str> {
    if memchr::memchr(b'"', body).is_some() {
        return None;
    }
    std::str::from_utf8(body).ok()
}

/// `field` without the white space around it, as `str::trim` (which is only called when an
/// end is not plainly printable ASCII).
#[inline]
fn trimmed(field: &str) -> &str {
    let printable = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x7f);
    let b = field.as_bytes();
    if printable(b.first()) && printable(b.last()) {
        field
    } else {
        field.trim()
    }
}

/// [`read_block`] of a block without quotes, split as the CSV reader splits it: records end at
/// `\n`, `\r` or `\r\n` (blank lines skipped), fields at the delimiter.
fn read_plain_block(
    path: &Path,
    body: &str,
    delimiter: u8,
    (first_line, width_line): (u64, u64),
    width: usize,
    plan: &[Plan],
    room: usize,
) -> Result<Block> {
    let bytes = body.as_bytes();
    let mut lines = Lines {
        body: bytes,
        line: first_line,
        counted: 0,
    };
    let mut block = Block::new(plan, room);
    let mut fields: Vec<&str> = Vec::with_capacity(width);
    // Every delimiter and line break, in one pass: each ends a field, a line break its record.
    let mut ends = memchr::memchr3_iter(delimiter, b'\n', b'\r', bytes);
    let (mut record_start, mut field_start) = (0, 0);
    loop {
        let end = ends.next();
        let at_end = end.unwrap_or(bytes.len());
        // (Slicing at ASCII bytes is at character boundaries.)
        fields.push(&body[field_start..at_end]);
        field_start = at_end + 1;
        if end.is_some_and(|e| bytes[e] == delimiter) {
            continue;
        }
        // A record ends here: blank ones (an empty line, or white space) are skipped.
        if !(fields.len() == 1 && trimmed(fields[0]).is_empty()) {
            let line = lines.at(record_start as u64);
            let trimmed_fields = fields.iter().map(|f| trimmed(f));
            block.take(
                path,
                line,
                (width, width_line),
                fields.len(),
                trimmed_fields,
            )?;
        }
        fields.clear();
        record_start = field_start;
        if end.is_none() {
            break;
        }
    }
    Ok(block)
}

/// The blocks to read `body` in: one per core for a long file without quotes (so that no
/// field holds a line break), else one.
fn blocks_for(body: &[u8]) -> usize {
    if body.len() >= 8 << 20 && !body.contains(&b'"') {
        crate::cores_for(usize::MAX)
    } else {
        1
    }
}

/// The records of `body` (starting at line `first_line`, each of `width` fields) as typed
/// columns, and each row's line, read in `cores` blocks of whole lines, in parallel.
fn read_rows(
    path: &Path,
    body: &[u8],
    delimiter: u8,
    (first_line, width_line): (u64, u64),
    plan: &[Plan],
    cores: usize,
) -> Result<(Vec<ColumnCells>, Vec<u64>)> {
    let width = plan.len();
    let cores = cores.max(1);
    let mut ranges = Vec::with_capacity(cores);
    let mut start = 0usize;
    for k in 1..=cores {
        let end = match k == cores {
            true => body.len(),
            false => {
                let at = (body.len() * k / cores).max(start);
                // (Not between the `\r` and `\n` of a CRLF.)
                let at = if at > 0 && body[at - 1] == b'\r' && body.get(at) == Some(&b'\n') {
                    at + 1
                } else {
                    at
                };
                past_line_break(&body[at.min(body.len())..]).map_or(body.len(), |p| at + p)
            }
        };
        ranges.push(&body[start..end]);
        start = end;
    }
    // Each block's first line: the line breaks before it, counted on every core.
    let breaks = crate::in_parallel(ranges.iter(), |b| line_breaks(b));
    let mut blocks = Vec::with_capacity(cores);
    let mut line = first_line;
    for (b, &n) in ranges.into_iter().zip(&breaks) {
        blocks.push((b, line));
        line += n;
    }
    // Room for a cell per line (a guess: blank lines are counted), the first block's
    // for the whole file, which its columns grow into when the blocks are joined (growing them
    // then would copy each, and the copies freed would stay with the process).
    let total: u64 = breaks.iter().sum();
    let room = |k: usize| (if k == 0 { total } else { breaks[k] }) as usize + 1;
    let passes = crate::in_parallel(blocks.iter().enumerate(), |(k, &(block, first))| {
        read_block(
            path,
            block,
            delimiter,
            (first, width_line),
            width,
            plan,
            room(k),
        )
    });
    // The first error in the file's order.
    let mut read = Vec::with_capacity(passes.len());
    for p in passes {
        read.push(p?);
    }
    // A column with text in any block is text in every one: the blocks where it held numbers
    // (or met text after them) are read again, for those columns alone.
    let text_somewhere: Vec<bool> = (0..width)
        .map(|j| {
            read.iter()
                .any(|b| matches!(b.columns[j], Building::Text { .. } | Building::Demoted))
        })
        .collect();
    let again: Vec<Vec<Plan>> = read
        .iter()
        .map(|b| {
            (0..width)
                .map(|j| match &b.columns[j] {
                    Building::Demoted => Plan::Text,
                    Building::Numbers { present: true, .. } if text_somewhere[j] => Plan::Text,
                    _ => Plan::Skip,
                })
                .collect()
        })
        .collect();
    let redo: Vec<usize> = (0..read.len())
        .filter(|&k| again[k].contains(&Plan::Text))
        .collect();
    let redone = crate::in_parallel(redo.iter(), |&k| {
        let (block, first) = blocks[k];
        read_block(
            path,
            block,
            delimiter,
            (first, width_line),
            width,
            &again[k],
            room(k),
        )
    });
    for (&k, pass) in redo.iter().zip(redone) {
        let pass = pass?;
        for (j, c) in pass.columns.into_iter().enumerate() {
            if again[k][j] == Plan::Text {
                read[k].columns[j] = c;
            }
        }
    }
    let rows: usize = read.iter().map(|b| b.lines.len()).sum();
    let mut lines = Vec::with_capacity(rows);
    for b in &read {
        lines.extend_from_slice(&b.lines);
    }
    let mut columns = Vec::with_capacity(width);
    for (j, &text) in text_somewhere.iter().enumerate() {
        let parts: Vec<Building> = read
            .iter_mut()
            .map(|b| std::mem::replace(&mut b.columns[j], Building::Skipped))
            .collect();
        columns.push(merge(parts, rows, text));
    }
    Ok((columns, lines))
}

/// One column from its blocks' parts (every part numbers, or — `text` — every part text or
/// all missing).
fn merge(parts: Vec<Building>, rows: usize, text: bool) -> ColumnCells {
    if !text {
        // The first part's numbers grow into the column (a large vector grows in place).
        let numbers = |p: Building| match p {
            Building::Numbers {
                values, missing, ..
            } => (values, missing),
            _ => unreachable!("a numeric column's parts are numbers"),
        };
        let mut parts = parts.into_iter();
        let (mut values, mut missing) = parts.next().map(numbers).unwrap_or_default();
        values.reserve_exact(rows - values.len());
        for p in parts {
            let (v, m) = numbers(p);
            let map: Vec<usize> = m.iter().map(|s| spelling(&mut missing, s)).collect();
            if map.iter().enumerate().all(|(k, &g)| k == g) {
                values.extend_from_slice(&v);
            } else {
                values.extend(v.iter().map(|&x| {
                    if x.is_nan() {
                        missing_value(map[missing_index(x)])
                    } else {
                        x
                    }
                }));
            }
        }
        return ColumnCells::Numbers { values, missing };
    }
    let mut codes = Vec::with_capacity(rows);
    let mut dict: Vec<String> = Vec::new();
    let mut index: hashbrown::HashMap<String, u32> = hashbrown::HashMap::new();
    let mut first = true;
    for p in parts {
        let (c, d) = match p {
            Building::Text { codes, dict, .. } => (codes, dict),
            Building::Numbers {
                values, missing, ..
            } => match to_text(ColumnCells::Numbers { values, missing }) {
                ColumnCells::Text { codes, dict } => (codes, dict),
                ColumnCells::Numbers { .. } => unreachable!("converted"),
            },
            Building::Demoted | Building::Skipped => unreachable!("read again as text"),
        };
        if first {
            // The first part's codes stand as they are.
            for (k, s) in d.iter().enumerate() {
                index.insert(s.clone(), k as u32);
            }
            dict = d;
            codes = c;
            first = false;
            continue;
        }
        let map: Vec<u32> = d
            .into_iter()
            .map(|s| match index.get(&s) {
                Some(&k) => k,
                None => {
                    let k = dict.len() as u32;
                    index.insert(s.clone(), k);
                    dict.push(s);
                    k
                }
            })
            .collect();
        codes.extend(c.iter().map(|&k| map[k as usize]));
    }
    ColumnCells::Text { codes, dict }
}

/// The rows of a file's bytes (gunzipped; a UTF-8 byte-order mark skipped): the first record
/// apart (a header or the first row), then the rest as typed columns. `header`: whether the first
/// record is a header (`None`: decide with `is_header`, given the first record and the rest).
/// Returns the names (the header's or `column j`), whether there is a header, the columns and the
/// lines.
pub(crate) fn read(
    path: &Path,
    bytes: &[u8],
    header: Option<bool>,
    as_text: &AsText,
    is_header: impl FnOnce(&[String], &Table) -> bool,
) -> Result<Table> {
    // A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name.
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let delimiter = sniff_delimiter(body);
    let Some((first, first_line, end)) = first_record(path, body, delimiter)? else {
        return Err(bad(path, "line 1", "the file is empty"));
    };
    let width = first.len();
    let numbered = |w: usize| (0..w).map(|j| format!("column {j}")).collect::<Vec<_>>();
    let plan_for = |names: &[String]| -> Vec<Plan> {
        (0..width)
            .map(|j| match as_text.wants(j, &names[j], width) {
                true => Plan::Text,
                false => Plan::Auto,
            })
            .collect()
    };
    let whole = |names: Vec<String>| -> Result<Table> {
        let plan = plan_for(&names);
        let lines = (1, first_line);
        let (columns, lines) = read_rows(path, body, delimiter, lines, &plan, blocks_for(body))?;
        Ok(Table {
            path: path.to_path_buf(),
            names,
            has_header: false,
            columns,
            lines,
        })
    };
    if header == Some(false) {
        return whole(numbered(width));
    }
    // (The reader may stop between a CRLF's two bytes: its `\r` is then not a break of its own.)
    let upto = if end > 0 && body[end - 1] == b'\r' && body.get(end) == Some(&b'\n') {
        end - 1
    } else {
        end
    };
    let rest_line = 1 + line_breaks(&body[..upto]);
    let rest = &body[end..];
    // Read as if the first record were the header; without one, the columns' names change,
    // and so may the columns to read as text.
    let plan = plan_for(&first);
    let at = (rest_line, first_line);
    let (columns, lines) = read_rows(path, rest, delimiter, at, &plan, blocks_for(rest))?;
    let mut table = Table {
        path: path.to_path_buf(),
        names: first.clone(),
        has_header: true,
        columns,
        lines,
    };
    debug_assert!(table.columns.iter().all(|c| c.len() == table.len()));
    let has_header = match header {
        Some(h) => h,
        None => is_header(&first, &table),
    };
    if has_header {
        return Ok(table);
    }
    table.has_header = false;
    table.names = numbered(width);
    if plan_for(&table.names) == plan && table.prepend(&first, first_line) {
        Ok(table)
    } else {
        whole(numbered(width))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(text: &str, cores: usize) -> Result<(Vec<ColumnCells>, Vec<u64>)> {
        read_rows(
            Path::new("t.csv"),
            text.as_bytes(),
            b',',
            (1, 1),
            &[Plan::Auto; 3],
            cores,
        )
    }

    fn texts(cols: &[ColumnCells], j: usize) -> Vec<String> {
        (0..cols[j].len())
            .map(|i| cols[j].get(i).text().into_owned())
            .collect()
    }

    /// Read in blocks (one per core), a file gives the same columns, cells and line numbers as
    /// one reader over the whole file (blank lines, CRLF endings), and the same first error.
    #[test]
    fn a_file_read_in_blocks_is_the_file_read_whole() {
        let mut text = String::new();
        for i in 0..30_000 {
            text.push_str(&format!("{i}, {} ,x{}\r\n", i % 7, i % 3));
            if i % 1000 == 0 {
                text.push_str("\r\n\n");
            }
        }
        let whole = rows_of(&text, 1).unwrap();
        for cores in 2..5 {
            assert!(rows_of(&text, cores).unwrap() == whole, "{cores} blocks");
        }
        assert!(matches!(whole.0[0], ColumnCells::Numbers { .. }));
        assert!(matches!(whole.0[2], ColumnCells::Text { .. }));
        assert_eq!(whole.0[1].get(20_000), Cell::Number(f64::from(20_000 % 7)));
        // Not UTF-8 near the end: the error names the same line either way.
        let mut broken = text.into_bytes();
        let at = broken.len() - 10;
        broken[at] = 0xff;
        let read = |cores| {
            read_rows(
                Path::new("t.csv"),
                &broken,
                b',',
                (1, 1),
                &[Plan::Auto; 3],
                cores,
            )
            .unwrap_err()
            .to_string()
        };
        let e1 = read(1);
        assert_eq!(e1, read(3));
        assert!(e1.contains("not UTF-8"), "{e1}");
    }

    /// A block's cells as written (or "demoted"), for comparing two readers' blocks.
    fn cells_of(b: Result<Block>) -> std::result::Result<(Vec<Vec<String>>, Vec<u64>), String> {
        let b = b.map_err(|e| e.to_string())?;
        let rows = b.lines.len();
        let columns = b
            .columns
            .into_iter()
            .map(|c| {
                let text = match &c {
                    Building::Demoted => return vec!["demoted".to_string()],
                    Building::Skipped => return vec!["skipped".to_string()],
                    c => matches!(c, Building::Text { .. }),
                };
                let column = merge(vec![c], rows, text);
                (0..rows).map(|i| format!("{:?}", column.get(i))).collect()
            })
            .collect();
        Ok((columns, b.lines))
    }

    /// The reader of blocks without quotes splits records and fields as the CSV reader does:
    /// line breaks `\n`, `\r`, `\r\n` and runs of them, blank and white-space lines, empty
    /// fields, white space around fields (Unicode's too), rows of the wrong length (the same
    /// error), cells of every kind — on many generated files.
    #[test]
    fn the_reader_without_quotes_splits_as_the_csv_reader() {
        use rand::{Rng as _, SeedableRng};
        let cells = [
            "",
            " ",
            "1",
            "-2.5",
            "+3",
            "007",
            "1e3",
            "x",
            " y ",
            "\u{a0}5\u{a0}",
            "NA",
            "ü",
            "1.234567890123456",
            ".5",
            "5.",
            ".",
            "-",
            "+",
            "-0",
            "0.1",
            "9007199254740993",
            "3.4e38",
            "\t7\t",
            "na",
            "?",
            "1 2",
        ];
        let breaks = ["\n", "\r\n", "\r", "\n\n", "\r\r\n", "\n \n", "\n\t\n"];
        let mut rng = downhill_core::rng::Rng::seed_from_u64(7);
        for file in 0..400 {
            let mut text = String::new();
            let rows = rng.random_range(1..40);
            for r in 0..rows {
                let width = if file % 5 == 0 && r == rows / 2 {
                    rng.random_range(1..5)
                } else {
                    3
                };
                let row: Vec<&str> = (0..width)
                    .map(|_| cells[rng.random_range(0..cells.len())])
                    .collect();
                text.push_str(&row.join(","));
                if r + 1 < rows || rng.random_bool(0.5) {
                    text.push_str(breaks[rng.random_range(0..breaks.len())]);
                }
            }
            let plan = [Plan::Auto, Plan::Auto, Plan::Text];
            let path = Path::new("t.csv");
            let plain = read_plain_block(path, &text, b',', (1, 1), 3, &plan, 0);
            let csv = read_csv_block(path, text.as_bytes(), b',', (1, 1), 3, &plan, 0);
            assert_eq!(cells_of(plain), cells_of(csv), "{text:?}");
        }
    }

    /// Short decimals read without the general parser are the numbers it reads, bit for bit;
    /// anything else is left to it.
    #[test]
    fn short_decimals_are_the_parsers_numbers() {
        use rand::{Rng as _, SeedableRng};
        let mut rng = downhill_core::rng::Rng::seed_from_u64(11);
        for _ in 0..200_000 {
            let digits = rng.random_range(0..18);
            let mut s: String = match rng.random_range(0..4) {
                0 => "-".into(),
                1 => "+".into(),
                _ => String::new(),
            };
            let point = rng.random_range(0..=digits + 1);
            for k in 0..=digits {
                if k == point {
                    s.push('.');
                }
                if k < digits {
                    s.push(char::from(b'0' + rng.random_range(0..10u8)));
                }
            }
            if rng.random_bool(0.02) {
                s.push('e');
            }
            match short_decimal(s.as_bytes()) {
                Some(v) => assert_eq!(v.to_bits(), s.parse::<f64>().unwrap().to_bits(), "{s}"),
                None => assert!(digits == 0 || digits > 15 || s.ends_with('e'), "{s}"),
            }
        }
        for s in [
            "0.1",
            "-0",
            "999999999999999",
            "0.00000000000001",
            "+.5",
            "5.",
        ] {
            assert_eq!(
                short_decimal(s.as_bytes()).map(f64::to_bits),
                s.parse::<f64>().ok().map(f64::to_bits),
                "{s}"
            );
        }
        for s in [
            "1234567890123456",
            ".",
            "-",
            "1e5",
            "1..2",
            "--1",
            "0x10",
            "",
        ] {
            assert_eq!(short_decimal(s.as_bytes()), None, "{s}");
        }
    }

    /// `\r` alone ends a line too (old Mac files), as the CSV reader ends a record there: line
    /// numbers count it, in one block or several, mixed with `\n` and `\r\n` (ninth hostile
    /// pass, left open then: a `\r` file was all line 1).
    #[test]
    fn lone_carriage_returns_are_line_breaks() {
        let mut text = String::new();
        let (mut line, mut want) = (1u64, Vec::new());
        for i in 0..30_000 {
            let eol = ["\r", "\r", "\n", "\r\n"][usize::from(i >= 20_000) * (i % 4)];
            text.push_str(&format!("{i},{},x{}{eol}", i % 7, i % 3));
            want.push(line);
            line += 1;
            if i % 1000 == 0 {
                text.push_str("\r\r");
                line += 2;
            }
        }
        let whole = rows_of(&text, 1).unwrap();
        assert_eq!(whole.1, want);
        for cores in 2..5 {
            assert!(rows_of(&text, cores).unwrap() == whole, "{cores} blocks");
        }
        assert_eq!(line_breaks(b"a\rb\r\nc\nd\r"), 4);
        assert_eq!(line_breaks(b"a\r\r\n\n"), 3);
        assert_eq!(sniff_delimiter(b"a;b\r1;2\r3;4\r"), b';');
    }

    /// Text after numbers — later in the block, or in another block — makes the column text in
    /// every block, each cell as written ("1.50", not 1.5); a block of missing cells only
    /// joins a text column as its cells were written.
    #[test]
    fn a_column_with_text_anywhere_is_text_as_written() {
        let mut text = String::new();
        for i in 0..4_000 {
            let b = if i == 3_500 {
                "word".to_string()
            } else {
                format!("{i}.50")
            };
            let c = if i < 2_000 { "NA" } else { "x" };
            text.push_str(&format!("{i},{b},{c}\n"));
        }
        for cores in 1..5 {
            let (cols, lines) = rows_of(&text, cores).unwrap();
            assert_eq!(lines.len(), 4_000);
            assert!(matches!(cols[0], ColumnCells::Numbers { .. }));
            assert!(matches!(cols[1], ColumnCells::Text { .. }), "{cores}");
            assert!(matches!(cols[2], ColumnCells::Text { .. }), "{cores}");
            let b = texts(&cols, 1);
            assert_eq!(b[7], "7.50");
            assert_eq!(b[3_500], "word");
            let c = texts(&cols, 2);
            assert_eq!((c[0].as_str(), c[3_999].as_str()), ("NA", "x"));
            assert!(cols[2].get(0).is_missing() && !cols[2].get(3_999).is_missing());
        }
    }

    /// Missing cells keep how they were written; numbers that are not plain (`inf`, beyond
    /// f32, padded) leave the column as text, for its encoding to judge.
    #[test]
    fn missing_spellings_and_numbers_that_are_not_plain() {
        let text = "1,NA,inf\n2,?,3\n,n/a,1e39\n";
        let (cols, _) = rows_of(text, 1).unwrap();
        assert_eq!(cols[0].get(2), Cell::Missing(""));
        assert_eq!(cols[0].get(1), Cell::Number(2.0));
        let b: Vec<Cell> = (0..3).map(|i| cols[1].get(i)).collect();
        assert_eq!(
            b,
            [
                Cell::Missing("NA"),
                Cell::Missing("?"),
                Cell::Missing("n/a")
            ]
        );
        assert!(matches!(cols[2], ColumnCells::Text { .. }));
        assert_eq!(texts(&cols, 2), ["inf", "3", "1e39"]);
    }

    /// The first row is put back in front when it is not a header, as written; a text cell in
    /// a column of numbers makes the whole file read again with it.
    #[test]
    fn a_first_row_that_is_data() {
        let read_as = |text: &str, header: bool| {
            read(
                Path::new("t.csv"),
                text.as_bytes(),
                None,
                &AsText::default(),
                |_, _| header,
            )
            .unwrap()
        };
        let t = read_as("1,a\n2,b\n", false);
        assert_eq!(t.lines, [1, 2]);
        assert_eq!(t.cell(0, 0), Cell::Number(1.0));
        assert_eq!(t.cell(0, 1), Cell::Text("a"));
        let t = read_as("x,a\n2,b\n", false);
        assert_eq!(t.cell(0, 0), Cell::Text("x"));
        assert_eq!(t.cell(1, 0), Cell::Text("2"));
        let t = read_as("x,NA\n,NA\n", false);
        assert_eq!(t.cell(0, 0), Cell::Text("x"));
        assert_eq!(t.cell(1, 1), Cell::Missing("NA"));
        let t = read_as("x,y\n2,b\n", true);
        assert_eq!(
            (t.names.clone(), t.len()),
            (vec!["x".to_string(), "y".to_string()], 1)
        );
    }
}
