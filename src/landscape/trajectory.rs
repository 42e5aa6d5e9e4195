//! The training trajectory: the weights before training and after each epoch (kept by
//! `downhill train --snapshots` in `trajectory.safetensors`), and its two principal directions.
//!
//! With w* the final weights and mₑ = wₑ − w* (one row per snapshot), the principal directions
//! are the top two eigenvectors of MᵀM; they are found from the small Gram matrix G = MMᵀ
//! (snapshots × snapshots): if Gu = λu then Mᵀu is an eigenvector of MᵀM with the same λ.
//! Each snapshot's coordinates are its projections mₑ·d₁, mₑ·d₂ on the unit directions, and
//! λ₁/Σλ, λ₂/Σλ are the shares of the path's variance they explain (Li et al. 2018, §7).

use std::path::Path;

use safetensors::Dtype;

use crate::error::{Error, Result};
use crate::io::{self, bad};

/// File name of the snapshots in a run folder.
pub const FILE: &str = "trajectory.safetensors";

/// Writes the snapshots as one F32 tensor `"trajectory"` of shape [snapshots, parameters].
pub fn save(path: &Path, snapshots: &[Vec<f32>]) -> Result<()> {
    let p = snapshots.first().map_or(0, Vec::len);
    let bytes: Vec<u8> = snapshots.iter().flat_map(|s| io::f32_bytes(s)).collect();
    let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![snapshots.len(), p], &bytes)
        .map_err(|e| bad(path, "trajectory", e.to_string()))?;
    let data = safetensors::serialize([("trajectory", view)], None)
        .map_err(|e| bad(path, "trajectory", e.to_string()))?;
    io::write_atomic(path, &data)
}

/// Reads snapshots written by [`save`] or a [`Writer`]; each must have `params` values.
pub fn load(path: &Path, params: usize) -> Result<Vec<Vec<f32>>> {
    let bytes = io::read(path)?;
    let st = io::parse(path, described(&bytes))?;
    let view = st
        .tensor("trajectory")
        .map_err(|_| bad(path, "tensor trajectory", "missing"))?;
    let shape = view.shape().to_vec();
    if view.dtype() != Dtype::F32 || shape.len() != 2 || shape[1] != params {
        return Err(bad(
            path,
            "tensor trajectory",
            format!(
                "shape {shape:?} {:?}, but the model has {params} parameters (F32)",
                view.dtype()
            ),
        ));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let (snapshot, value) = (i / params.max(1), i % params.max(1));
        return Err(bad(
            path,
            format!(
                "tensor trajectory, snapshot {} of {} (the weights {}), value {}",
                snapshot + 1,
                shape[0],
                if snapshot == 0 {
                    "before training".to_string()
                } else {
                    format!("after epoch {snapshot}")
                },
                value + 1
            ),
            format!(
                "{} is not a finite number: training writes only finite weights (the file was \
                 edited or damaged)",
                values[i]
            ),
        ));
    }
    Ok(values.chunks(params.max(1)).map(<[f32]>::to_vec).collect())
}

/// The part of a safetensors file's `bytes` that its header describes: without the bytes of
/// a snapshot that a [`Writer`] appended before it was killed (before the header said so).
fn described(bytes: &[u8]) -> &[u8] {
    let Some(n) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    else {
        return bytes;
    };
    let Some(header) = usize::try_from(n)
        .ok()
        .and_then(|n| bytes.get(8..8usize.checked_add(n)?))
    else {
        return bytes;
    };
    let end = serde_json::from_slice::<serde_json::Value>(header)
        .ok()
        .and_then(|v| v["trajectory"]["data_offsets"][1].as_u64())
        .and_then(|e| usize::try_from(e).ok())
        .and_then(|e| e.checked_add(8 + header.len()));
    match end {
        Some(e) if e < bytes.len() => &bytes[..e],
        _ => bytes,
    }
}

/// Room for the header of a file written by [`Writer`]: the JSON padded with spaces (as the
/// safetensors format allows) to a fixed size, so that it can be rewritten in place for more
/// snapshots (a multiple of 8, keeping the data aligned).
const HEADER_ROOM: usize = 200;

/// The trajectory file of a run in progress, kept up to date at each checkpoint at a cost
/// proportional to the snapshots added (rewriting the whole file each time made a run with
/// `--checkpoint-every epoch --snapshots` quadratic in its epochs). The first [`Writer::sync`]
/// writes the file whole (atomically); later ones append the new snapshots and then rewrite the
/// fixed-size header. A kill between the two leaves bytes after the data the header describes,
/// which [`load`] ignores: the file then holds the snapshots of the previous sync.
pub struct Writer {
    path: std::path::PathBuf,
    written: usize,
    /// The running XXH3 of the bytes of the `written` snapshots.
    hash: xxhash_rust::xxh3::Xxh3,
}

impl Writer {
    pub fn new(path: &Path) -> Writer {
        Writer {
            path: path.to_path_buf(),
            written: 0,
            hash: xxhash_rust::xxh3::Xxh3::new(),
        }
    }

    /// Brings the file up to `snapshots` (each of the same length), and says what the file then
    /// holds — the number of snapshots and the XXH3 of their bytes — for a checkpoint to record
    /// (see [`check_covered`]).
    pub fn sync(&mut self, snapshots: &[Vec<f32>]) -> Result<crate::checkpoint::Covered> {
        use std::io::{Seek, SeekFrom, Write};
        let p = snapshots.first().map_or(0, Vec::len);
        let header = padded_header(&self.path, snapshots.len(), p)?;
        let io_err = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        if self.written == 0 || self.written > snapshots.len() {
            let mut bytes = header;
            for s in snapshots {
                bytes.extend_from_slice(&io::f32_bytes(s));
            }
            io::write_atomic(&self.path, &bytes)?;
            self.hash = xxhash_rust::xxh3::Xxh3::new();
            self.hash.update(&bytes[HEADER_ROOM + 8..]);
        } else if self.written < snapshots.len() {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(io_err)?;
            let start = (header.len() + self.written * p * 4) as u64;
            f.seek(SeekFrom::Start(start)).map_err(io_err)?;
            let mut added = Vec::with_capacity((snapshots.len() - self.written) * p * 4);
            for s in &snapshots[self.written..] {
                added.extend_from_slice(&io::f32_bytes(s));
            }
            f.write_all(&added).map_err(io_err)?;
            self.hash.update(&added);
            f.sync_data().map_err(io_err)?;
            f.seek(SeekFrom::Start(0)).map_err(io_err)?;
            f.write_all(&header).map_err(io_err)?;
            f.sync_data().map_err(io_err)?;
        }
        self.written = snapshots.len();
        Ok(crate::checkpoint::Covered {
            epochs: self.written,
            xxh3: self.hash.digest(),
        })
    }
}

/// The first `covered.epochs` of `snapshots` (read from `path`, a run's trajectory beside its
/// checkpoint), checked against the XXH3 the checkpoint recorded: a resumed run continues its
/// own path, never one copied from another run, cut short or edited.
pub fn check_covered(
    path: &Path,
    mut snapshots: Vec<Vec<f32>>,
    covered: crate::checkpoint::Covered,
) -> Result<Vec<Vec<f32>>> {
    if snapshots.len() < covered.epochs {
        return Err(bad(
            path,
            "tensor trajectory",
            format!(
                "holds {} snapshots, but the checkpoint was written after {} (cut short, or \
                 copied from another run?): this run's training path cannot continue; put \
                 back the run's own file, or train again",
                snapshots.len(),
                covered.epochs
            ),
        ));
    }
    snapshots.truncate(covered.epochs);
    let mut hash = xxhash_rust::xxh3::Xxh3::new();
    for s in &snapshots {
        hash.update(&io::f32_bytes(s));
    }
    if hash.digest() != covered.xxh3 {
        return Err(bad(
            path,
            "tensor trajectory",
            format!(
                "its first {} snapshots are not the ones the checkpoint recorded (copied from \
                 another run, or edited?): this run's training path cannot continue; put back \
                 the run's own file, or train again",
                covered.epochs
            ),
        ));
    }
    Ok(snapshots)
}

/// The 8-byte length and the JSON header of `n` snapshots of `p` values, padded with spaces to
/// [`HEADER_ROOM`].
fn padded_header(path: &Path, n: usize, p: usize) -> Result<Vec<u8>> {
    let end = n
        .checked_mul(p)
        .and_then(|v| v.checked_mul(4))
        .ok_or_else(|| bad(path, "trajectory", "too many values"))?;
    let mut json =
        format!(r#"{{"trajectory":{{"dtype":"F32","shape":[{n},{p}],"data_offsets":[0,{end}]}}}}"#);
    if json.len() > HEADER_ROOM {
        return Err(bad(path, "trajectory", "header too long"));
    }
    json.extend(std::iter::repeat_n(' ', HEADER_ROOM - json.len()));
    let mut out = (HEADER_ROOM as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    Ok(out)
}

/// Checks that `snapshots` (read from `path`) are the training path of the model whose weights
/// are `params`: the saved weights are those after one of its epochs (the last, or the best one
/// early stopping kept), bit for bit. A path copied from another run of the same architecture
/// passes the shape check of [`load`] but not this one. An interrupted run's model holds the
/// weights of a step within an epoch, which no snapshot has: its path is not checked.
pub fn check_belongs(
    path: &Path,
    snapshots: &[Vec<f32>],
    params: &[f32],
    interrupted: bool,
) -> Result<()> {
    let same = |s: &Vec<f32>| {
        s.iter()
            .zip(params)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    };
    if interrupted || snapshots.iter().any(same) {
        return Ok(());
    }
    Err(bad(
        path,
        "tensor trajectory",
        format!(
            "is not this model's training path: none of its {} snapshots holds the model's \
             weights (copied from another run, or the model replaced after training?); keep \
             the run folder's files together, or add --random-directions",
            snapshots.len()
        ),
    ))
}

/// The most snapshots a path is drawn (and its plane fitted) from. The plane's Gram matrix is
/// snapshots × snapshots and its eigendecomposition cubic in them: 100,000 epochs of snapshots
/// asked for 80 GB (a panic) where a picture shows at most a few hundred points apart.
pub const MAX_PATH_POINTS: usize = 1000;

/// At most `max` (≥ 2) of `snapshots`, evenly spaced in epochs, the first (the start) and the
/// last kept.
pub fn thin(snapshots: Vec<Vec<f32>>, max: usize) -> Vec<Vec<f32>> {
    let n = snapshots.len();
    if n <= max || max < 2 {
        return snapshots;
    }
    let keep: Vec<usize> = (0..max)
        .map(|i| (i * (n - 1) + (max - 1) / 2) / (max - 1))
        .collect();
    let mut next = keep.iter().peekable();
    snapshots
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| next.next_if(|&&k| k == i).map(|_| s))
        .collect()
}

/// The trajectory in its principal plane.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Trajectory {
    /// (mₑ·d₁, mₑ·d₂) for each snapshot, the last being the final weights at (0, 0).
    pub coords: Vec<[f64; 2]>,
    /// Shares of the variance explained by d₁ and d₂.
    pub explained: [f64; 2],
    #[serde(skip)]
    pub d1: Vec<f32>,
    #[serde(skip)]
    pub d2: Vec<f32>,
}

/// The principal plane of `snapshots` around `center` (the final weights).
pub fn principal_plane(snapshots: &[Vec<f32>], center: &[f32]) -> Result<Trajectory> {
    let e = snapshots.len();
    if e < 3 {
        return Err(Error::setting(
            "snapshots",
            e,
            "need at least 3 (train 2 or more epochs with --snapshots)",
        ));
    }
    let m: Vec<Vec<f64>> = snapshots
        .iter()
        .map(|s| {
            s.iter()
                .zip(center)
                .map(|(&w, &c)| (w - c) as f64)
                .collect()
        })
        .collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let gram = faer::Mat::<f64>::from_fn(e, e, |i, j| dot(&m[i], &m[j]));
    let eig = gram
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::setting("snapshots", format!("{e:?}"), "eigendecomposition failed"))?;
    let (u, s) = (eig.U(), eig.S());
    let total: f64 = (0..e).map(|i| s[i].max(0.0)).sum();
    let direction = |k: usize| -> Vec<f64> {
        // Eigenvalues come in nondecreasing order: the largest is last.
        let col = e - 1 - k;
        let mut d = vec![0.0; center.len()];
        for (r, row) in m.iter().enumerate() {
            let c = u[(r, col)];
            for (x, &v) in d.iter_mut().zip(row) {
                *x += c * v;
            }
        }
        let n = dot(&d, &d).sqrt();
        d.iter().map(|x| x / n.max(1e-30)).collect()
    };
    let (d1, d2) = (direction(0), direction(1));
    let coords = m.iter().map(|row| [dot(row, &d1), dot(row, &d2)]).collect();
    let explained = [
        s[e - 1].max(0.0) / total.max(1e-30),
        s[e - 2].max(0.0) / total.max(1e-30),
    ];
    Ok(Trajectory {
        coords,
        explained,
        d1: d1.iter().map(|&v| v as f32).collect(),
        d2: d2.iter().map(|&v| v as f32).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thinning keeps the first and last snapshot and `max` in all, in order, evenly spaced.
    #[test]
    fn thinning_keeps_the_ends_evenly() {
        let snaps: Vec<Vec<f32>> = (0..10_001).map(|i| vec![i as f32]).collect();
        let t = thin(snaps.clone(), 1000);
        assert_eq!(t.len(), 1000);
        assert_eq!((t[0][0], t[999][0]), (0.0, 10_000.0));
        assert!(
            t.windows(2)
                .all(|w| (w[1][0] - w[0][0] - 10.01).abs() < 1.0)
        );
        assert_eq!(thin(snaps[..5].to_vec(), 1000).len(), 5);
        assert_eq!(thin(snaps[..1001].to_vec(), 1000).len(), 1000);
    }

    /// A [`Writer`] appends: after syncs of 1, 3 and 6 snapshots the file reads back as all six
    /// (and parses as a plain safetensors file: the padded header is the format's); bytes of a
    /// snapshot appended by a writer killed before its header are ignored; fewer snapshots than
    /// written (a resumed run's truncated path) rewrite the file.
    #[test]
    fn the_writer_appends_and_survives_a_cut_append() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(FILE);
        let snaps: Vec<Vec<f32>> = (0..6)
            .map(|i| (0..5).map(|j| (i * 10 + j) as f32 * 0.5).collect())
            .collect();
        let mut w = Writer::new(&path);
        for n in [1, 3, 3, 6] {
            w.sync(&snaps[..n]).unwrap();
            assert_eq!(load(&path, 5).unwrap(), snaps[..n].to_vec());
        }
        let bytes = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("trajectory").unwrap().shape(), [6, 5]);
        // A kill between the append and the header: the old header, more bytes.
        let mut w = Writer::new(&path);
        w.sync(&snaps[..2]).unwrap();
        let mut cut = std::fs::read(&path).unwrap();
        cut.extend_from_slice(&io::f32_bytes(&snaps[2]));
        std::fs::write(&path, &cut).unwrap();
        assert_eq!(load(&path, 5).unwrap(), snaps[..2].to_vec());
        // A new writer (a resumed run) with fewer snapshots than the file holds rewrites it.
        let mut w = Writer::new(&path);
        w.sync(&snaps[..6]).unwrap();
        let mut w = Writer::new(&path);
        w.sync(&snaps[..4]).unwrap();
        w.sync(&snaps[..5]).unwrap();
        assert_eq!(load(&path, 5).unwrap(), snaps[..5].to_vec());
    }

    /// Snapshots on a known plane: w* + a·e₁ + b·e₂ with e₁, e₂ orthonormal; PCA recovers the
    /// plane (up to sign and rotation), explains all variance, and the coordinates preserve
    /// distances.
    #[test]
    fn recovers_a_known_plane() {
        let p = 50;
        let center: Vec<f32> = (0..p).map(|i| (i as f32 * 0.1).sin()).collect();
        let e1: Vec<f32> = (0..p).map(|i| if i == 3 { 1.0 } else { 0.0 }).collect();
        let e2: Vec<f32> = (0..p).map(|i| if i == 7 { 1.0 } else { 0.0 }).collect();
        let ab = [
            (3.0f32, 1.0f32),
            (2.0, -1.0),
            (1.0, 0.5),
            (0.5, -0.2),
            (0.0, 0.0),
        ];
        let snaps: Vec<Vec<f32>> = ab
            .iter()
            .map(|&(a, b)| (0..p).map(|i| center[i] + a * e1[i] + b * e2[i]).collect())
            .collect();
        let t = principal_plane(&snaps, &center).unwrap();
        assert!(
            (t.explained[0] + t.explained[1] - 1.0).abs() < 1e-6,
            "{:?}",
            t.explained
        );
        for (c, &(a, b)) in t.coords.iter().zip(&ab) {
            let r = (c[0] * c[0] + c[1] * c[1]).sqrt();
            assert!(
                (r - ((a * a + b * b) as f64).sqrt()).abs() < 1e-5,
                "{c:?} vs ({a}, {b})"
            );
        }
        let d1n: f32 = t.d1.iter().map(|x| x * x).sum::<f32>();
        assert!(
            (d1n - 1.0).abs() < 1e-5
                && t.d1
                    .iter()
                    .zip(&t.d2)
                    .map(|(x, y)| x * y)
                    .sum::<f32>()
                    .abs()
                    < 1e-5
        );
    }
}
