//! Cells to features: [`Columns::locate`] finds the model's columns in a file, and
//! [`Columns::encode`] turns its rows into the feature matrix with the fitted map (fills,
//! one-hot categories, missing indicators, unseen categories counted).

use std::collections::HashMap;

use downhill_core::error::Result;

use super::{
    Cell, Columns, Encoded, Encoding, FALSE_WORDS, TRUE_WORDS, Table, Unseen, fits_f32, is_missing,
    number, parse_bool, parse_number, quoted,
};

impl Columns {
    /// For each of [`Columns::columns`], the column of `table` holding it (`None`: a dropped
    /// column the file does not have), and the targets' columns when `need_targets`.
    ///
    /// By name when both files have a header: every feature column must be there, targets too
    /// when needed, and no column may be unknown to the model (the error names the missing and the
    /// unknown ones). By position otherwise: the file must have the training file's columns
    /// (`file_width`), or those without the targets when they are not needed.
    pub fn locate(
        &self,
        table: &Table,
        need_targets: bool,
    ) -> Result<(Vec<Option<usize>>, Vec<usize>)> {
        if self.has_header && table.has_header {
            self.locate_by_name(table, need_targets)
        } else {
            self.locate_by_position(table, need_targets)
        }
    }

    /// [`Columns::locate`] by the header's names: every used column and (if `need_targets`)
    /// the target must be there, and (unless lenient) no column the model does not know.
    fn locate_by_name(
        &self,
        table: &Table,
        need_targets: bool,
    ) -> Result<(Vec<Option<usize>>, Vec<usize>)> {
        let find = |n: &str| table.names.iter().position(|h| h == n);
        let mut missing = Vec::new();
        let mut map = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let j = find(&c.name);
            if j.is_none() && !c.is_dropped() {
                missing.push(c.name.clone());
            }
            map.push(j);
        }
        let mut targets = Vec::new();
        for t in &self.targets {
            match find(t) {
                Some(j) => targets.push(j),
                None if need_targets => missing.push(format!("{t} (the target)")),
                None => {}
            }
        }
        let unknown: Vec<&str> = table
            .names
            .iter()
            .filter(|h| {
                !self.lenient
                    && !self.columns.iter().any(|c| &c.name == *h)
                    && !self.targets.contains(h)
            })
            .map(String::as_str)
            .collect();
        if missing.is_empty() && unknown.is_empty() {
            return Ok((map, targets));
        }
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing: {}", missing.join(", ")));
        }
        if !unknown.is_empty() {
            parts.push(format!("not in the training data: {}", unknown.join(", ")));
        }
        let used: Vec<&str> = self
            .columns
            .iter()
            .filter(|c| !c.is_dropped())
            .map(|c| c.name.as_str())
            .collect();
        Err(table.error(
            "header",
            format!(
                "the file's columns do not match the model's: {}. The model reads {} feature columns by name: {}{}",
                parts.join("; "),
                used.len(),
                used.join(", "),
                if need_targets {
                    format!(", and the target {}", self.targets.join(", "))
                } else {
                    String::new()
                }
            ),
        ))
    }

    /// [`Columns::locate`] by position, for a file (or a model) without a header: the training
    /// file's width, or (if not `need_targets`) its width without the targets.
    fn locate_by_position(
        &self,
        table: &Table,
        need_targets: bool,
    ) -> Result<(Vec<Option<usize>>, Vec<usize>)> {
        let full = self.file_width();
        let without = self.columns.len();
        if table.width() == full {
            let features: Vec<usize> = (0..full)
                .filter(|j| !self.target_positions.contains(j))
                .collect();
            Ok((
                features.into_iter().map(Some).collect(),
                self.target_positions.clone(),
            ))
        } else if table.width() == without && !need_targets {
            Ok(((0..without).map(Some).collect(), Vec::new()))
        } else {
            let hint = if need_targets {
                format!(
                    "{full} columns (the features and the target, in the training file's order)"
                )
            } else {
                format!(
                    "{without} feature columns (or {full} with the target), in the training file's order"
                )
            };
            Err(table.error(
                "line 1",
                format!(
                    "{} columns, but without a header to match by name the model needs {hint}",
                    table.width()
                ),
            ))
        }
    }

    /// The feature matrix of `rows` of `table`, whose columns `map` gives (from [`Columns::locate`]).
    /// Long tables are encoded in parallel, in one block of rows per core; the result (and the
    /// first error, in row order) is the same as one thread's.
    pub fn encode(&self, table: &Table, map: &[Option<usize>], rows: &[usize]) -> Result<Encoded> {
        let w = self.n_features();
        let mut x = reserve_features(table, rows.len(), w)?;
        x.resize(rows.len() * w, 0.0);
        let index: Vec<Option<CategoryIndex>> = self
            .columns
            .iter()
            .map(|c| match &c.encoding {
                Encoding::Categorical { categories, .. } => Some(CategoryIndex::new(categories)),
                _ => None,
            })
            .collect();
        let block = rows.len().div_ceil(crate::cores_for(rows.len())).max(1);
        let parts = crate::in_parallel(
            x.chunks_mut((block * w).max(1)).zip(rows.chunks(block)),
            |(out, rows)| self.encode_rows(table, map, rows, &index, out),
        );
        let (mut unseen, mut imputed) = (Vec::new(), 0);
        for part in parts {
            let (u, i) = part?;
            imputed += i;
            for u in u {
                merge_unseen(&mut unseen, u);
            }
        }
        Ok(Encoded {
            x,
            n_features: w,
            unseen,
            imputed,
        })
    }

    /// [`Columns::encode`] of a block of rows into `out` (`rows.len()` × the features, zeros):
    /// the categories not seen in training, and the missing cells filled in.
    fn encode_rows(
        &self,
        table: &Table,
        map: &[Option<usize>],
        rows: &[usize],
        index: &[Option<CategoryIndex>],
        out: &mut [f32],
    ) -> Result<(Vec<Unseen>, usize)> {
        // The rows in the table's order, each written to its place: the columns are read
        // forward (in the rows' own order, a shuffled split, nearly every cell would miss the
        // cache). An error is looked for again in the rows' order, so that it is the first.
        let mut order: Vec<(usize, usize)> =
            rows.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        order.sort_unstable();
        match self.encode_in(table, map, &order, index, out, 256) {
            Ok(done) => Ok(done),
            Err(e) => {
                let order: Vec<(usize, usize)> =
                    rows.iter().enumerate().map(|(p, &i)| (i, p)).collect();
                self.encode_in(table, map, &order, index, out, 1)?;
                Err(e)
            }
        }
    }

    /// [`Columns::encode_rows`] of the rows `order` lists (table row, place in `out`), `tile`
    /// rows at a time: one column after another over the tile's rows, so that each column is
    /// read forward and the tile's rows of `out` stay in the cache. With a tile of 1, row by
    /// row (the first error met is the first in `order`).
    fn encode_in(
        &self,
        table: &Table,
        map: &[Option<usize>],
        order: &[(usize, usize)],
        index: &[Option<CategoryIndex>],
        out: &mut [f32],
        tile: usize,
    ) -> Result<(Vec<Unseen>, usize)> {
        let mut unseen: Vec<Unseen> = Vec::new();
        let mut imputed = 0;
        let w = self.n_features();
        // Where each column's features start in a row.
        let mut offsets = Vec::with_capacity(self.columns.len());
        let mut at = 0;
        for c in &self.columns {
            offsets.push(at);
            at += c.width();
        }
        for rows in order.chunks(tile.max(1)) {
            for (k, c) in self.columns.iter().enumerate() {
                if c.is_dropped() {
                    continue;
                }
                let j = map[k].expect("located");
                // The common case in one tight loop: a numeric column's numbers, missing cells
                // filled with the median (and marked).
                if let (Some(values), Encoding::Numeric { fill: Some(fill) }) =
                    (table.numbers(j), &c.encoding)
                {
                    let at = offsets[k];
                    for &(i, p) in rows {
                        let v = values[i];
                        let miss = v.is_nan();
                        imputed += usize::from(miss);
                        out[p * w + at] = if miss { *fill } else { v } as f32;
                        if c.indicator {
                            out[p * w + at + 1] = if miss { 1.0 } else { 0.0 };
                        }
                    }
                    continue;
                }
                for &(i, p) in rows {
                    let x = &mut out[p * w..(p + 1) * w];
                    let mut at = offsets[k];
                    let cell = table.cell(i, j);
                    let miss = cell.is_missing();
                    imputed += usize::from(miss);
                    match &c.encoding {
                        Encoding::Numeric { fill } => {
                            x[at] = numeric_cell(table, (i, j), cell, *fill)? as f32;
                            at += 1;
                        }
                        Encoding::Boolean { fill } => {
                            let v = if miss {
                                *fill
                            } else {
                                boolean_cell(table, (i, j), &cell.text(), &c.name)?
                            };
                            x[at] = if v { 1.0 } else { 0.0 };
                            at += 1;
                        }
                        Encoding::Categorical { categories, fill } => {
                            let index = index[k].as_ref().expect("categorical");
                            let found = if miss {
                                index.by_text.get(fill.as_str()).copied()
                            } else {
                                index.find(cell)
                            };
                            match found {
                                Some(h) => x[at + h] = 1.0,
                                None if miss => note_unseen(&mut unseen, &c.name, fill),
                                None => note_unseen(&mut unseen, &c.name, &cell.text()),
                            }
                            at += categories.len();
                        }
                        Encoding::Dropped { .. } => unreachable!("skipped above"),
                    }
                    if c.indicator {
                        x[at] = if miss { 1.0 } else { 0.0 };
                    }
                }
            }
        }
        Ok((unseen, imputed))
    }
}

/// A categorical column's categories by their text, and (for a numeric column's cells, which
/// are numbers without their text) by the number a category reads as.
struct CategoryIndex<'c> {
    by_text: HashMap<&'c str, usize>,
    by_value: HashMap<u64, usize>,
}

/// A number's key in [`CategoryIndex::by_value`] (0 and −0 are one).
fn value_key(v: f64) -> u64 {
    if v == 0.0 { 0 } else { v.to_bits() }
}

impl<'c> CategoryIndex<'c> {
    fn new(categories: &'c [String]) -> CategoryIndex<'c> {
        let by_text = categories
            .iter()
            .enumerate()
            .map(|(k, v)| (v.as_str(), k))
            .collect();
        let mut by_value = HashMap::new();
        for (k, c) in categories.iter().enumerate() {
            if let Some(v) = parse_number(c) {
                by_value.entry(value_key(v)).or_insert(k);
            }
        }
        CategoryIndex { by_text, by_value }
    }

    /// The category of a present cell.
    fn find(&self, cell: Cell) -> Option<usize> {
        match cell {
            Cell::Number(v) => self.by_value.get(&value_key(v)).copied(),
            Cell::Missing(t) | Cell::Text(t) => self.by_text.get(t).copied(),
        }
    }
}

/// An empty feature matrix with room for `rows` × `w` values, checked against the memory
/// available first (a reservation alone succeeds under overcommit, and the process is then
/// killed while filling it): one-hot columns multiply a file's size.
fn reserve_features(table: &Table, rows: usize, w: usize) -> Result<Vec<f32>> {
    let mut x: Vec<f32> = Vec::new();
    let total = rows.saturating_mul(w);
    downhill_core::memory::check(
        format!("{}: {rows} rows × {w} features (f32)", table.path.display()),
        downhill_core::memory::product(&[rows, w, 4]),
    )?;
    x.try_reserve_exact(total).map_err(|_| {
        table.error(
            "columns",
            format!(
                "{rows} rows × {w} features would need {:.1} GB of memory",
                total as f64 * 4e-9
            ),
        )
    })?;
    Ok(x)
}

/// A numeric column's cell at (`i`, `j`): its number, or the training median `fill` if it is
/// missing (an error for a model trained without missing values).
fn numeric_cell(
    table: &Table,
    (i, j): (usize, usize),
    cell: Cell,
    fill: Option<f64>,
) -> Result<f64> {
    let cell = match cell {
        Cell::Number(v) if fits_f32(v) => return Ok(v),
        Cell::Number(_) => return number(table, i, j, &cell.text()),
        Cell::Text(t) if !is_missing(t) => return number(table, i, j, t),
        Cell::Missing(t) | Cell::Text(t) => t,
    };
    fill.ok_or_else(|| {
        table.error(
            table.at(i, j),
            format!(
                "missing value {}; this model was trained without missing values",
                quoted(cell)
            ),
        )
    })
}

/// A boolean column's (present) cell at (`i`, `j`), of the model's column `name`.
fn boolean_cell(table: &Table, (i, j): (usize, usize), cell: &str, name: &str) -> Result<bool> {
    parse_bool(cell).ok_or_else(|| {
        table.error(
            table.at(i, j),
            format!(
                "{} is not a yes/no value (the model's column {name} is boolean: {} / {})",
                quoted(cell),
                TRUE_WORDS.join("/"),
                FALSE_WORDS.join("/")
            ),
        )
    })
}

/// Counts a category of `column` not seen in training (encoded as all zeros), keeping up to
/// five different examples.
fn note_unseen(unseen: &mut Vec<Unseen>, column: &str, value: &str) {
    let at = match unseen.iter().position(|u| u.column == column) {
        Some(at) => at,
        None => {
            unseen.push(Unseen {
                column: column.to_string(),
                rows: 0,
                examples: Vec::new(),
            });
            unseen.len() - 1
        }
    };
    let u = &mut unseen[at];
    u.rows += 1;
    if u.examples.len() < 5 && !u.examples.iter().any(|e| e == value) {
        u.examples.push(value.to_string());
    }
}

/// Adds a later block's unseen categories `u` to `unseen` (as if noted row by row after it).
fn merge_unseen(unseen: &mut Vec<Unseen>, u: Unseen) {
    match unseen.iter_mut().find(|v| v.column == u.column) {
        Some(v) => {
            v.rows += u.rows;
            for e in u.examples {
                if v.examples.len() < 5 && !v.examples.contains(&e) {
                    v.examples.push(e);
                }
            }
        }
        None => unseen.push(u),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::tests::{fit, table};
    use crate::columns::{Column, Overrides};

    #[test]
    fn rule_numeric_boolean_categorical_and_their_encoding() {
        let t = table(&[
            "n,b,c,y",
            "1,yes,red,0",
            "NA,No,blue,1",
            "3,,red,0",
            "10,YES,,1",
            "2,y,green,0",
        ]);
        let c = fit(&t, &Overrides::default()).unwrap();
        assert_eq!(
            c.columns.iter().map(Column::role).collect::<Vec<_>>(),
            ["numeric", "boolean", "categorical"]
        );
        // Median of 1, 3, 10, 2 = 2.5; most frequent boolean: yes (3 of 4); most frequent
        // category: red.
        assert_eq!(c.columns[0].encoding, Encoding::Numeric { fill: Some(2.5) });
        assert_eq!(c.columns[1].encoding, Encoding::Boolean { fill: true });
        assert_eq!(
            c.columns[2].encoding,
            Encoding::Categorical {
                categories: vec!["blue".into(), "green".into(), "red".into()],
                fill: "red".into()
            }
        );
        assert_eq!(
            c.feature_names(),
            [
                "n",
                "n (missing)",
                "b",
                "b (missing)",
                "c=blue",
                "c=green",
                "c=red",
                "c (missing)"
            ]
        );
        assert_eq!(
            c.standardized_mask(),
            [true, false, false, false, false, false, false, false]
        );
        let (map, _) = c.locate(&t, true).unwrap();
        let e = c.encode(&t, &map, &[1, 3]).unwrap();
        assert_eq!(
            e.x,
            [
                2.5, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, // NA → median, indicator
                10.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, // "" → red, indicator
            ]
        );
        assert_eq!(e.imputed, 2);
        // An unseen category: all zeros, counted.
        let u = table(&["c,n,b,y", "purple,1,no,0", "purple,2,no,0", "red,3,no,1"]);
        let (map, _) = c.locate(&u, true).unwrap();
        let e = c.encode(&u, &map, &[0, 1, 2]).unwrap();
        assert_eq!(&e.x[4..8], [0.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            e.unseen,
            [Unseen {
                column: "c".into(),
                rows: 2,
                examples: vec!["purple".into()]
            }]
        );
        // A yes/no word that is not one: an error at the cell.
        let bad = table(&["c,n,b,y", "red,1,maybe,0"]);
        let (map, _) = c.locate(&bad, true).unwrap();
        let err = c.encode(&bad, &map, &[0]).unwrap_err().to_string();
        assert!(
            err.contains("line 2, column b") && err.contains("maybe"),
            "{err}"
        );
    }
}
