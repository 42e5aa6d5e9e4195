//! IDX files, the format of MNIST and Fashion-MNIST (raw or `.gz`).
//!
//! Big-endian header: two zero bytes, a type byte (0x08 = unsigned byte), the number of
//! dimensions d, then d 32-bit sizes, then the data. Images are `idx3` (count × rows × cols),
//! labels `idx1` (count). The image and label files of a set are checked against each other.

use std::path::{Path, PathBuf};

use crate::csv::read_maybe_gz;
use downhill_core::data::{Dataset, Features, Targets};
use downhill_core::error::{Error, Result};

/// Where Debian's `dataset-fashion-mnist` package puts its files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's class names, by label.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

fn bad(path: &Path, location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        location: location.into(),
        message: message.into(),
    }
}

/// Parses an IDX file of unsigned bytes with `dims` dimensions; returns the sizes and the data.
pub fn read_idx(path: &Path, dims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = read_maybe_gz(path)?;
    if bytes.len() < 4 {
        return Err(bad(
            path,
            "byte 0",
            format!("{} bytes: too short for an IDX header", bytes.len()),
        ));
    }
    let want = [0u8, 0, 0x08, dims as u8];
    if bytes[..4] != want {
        return Err(bad(
            path,
            "byte 0",
            format!(
                "magic number {:02x?}, expected {want:02x?} (IDX, unsigned bytes, {dims} dimensions)",
                &bytes[..4]
            ),
        ));
    }
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(bad(path, "byte 4", "the header is cut off"));
    }
    let sizes: Vec<usize> = (0..dims)
        .map(|d| {
            u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let len: usize = sizes.iter().product();
    let have = bytes.len() - header;
    if have < len {
        return Err(bad(
            path,
            format!("byte {}", bytes.len()),
            format!(
                "truncated: the header promises {sizes:?} = {len} bytes of data, the file holds {have}"
            ),
        ));
    }
    if have > len {
        return Err(bad(
            path,
            format!("byte {}", header + len),
            format!("{} bytes after the {len} the header promises", have - len),
        ));
    }
    Ok((sizes, bytes[header..].to_vec()))
}

/// Reads an image file and its label file into a classification set (pixels as bytes).
pub fn load_pair(images: &Path, labels: &Path) -> Result<Dataset> {
    let (isz, pixels) = read_idx(images, 3)?;
    if isz[0] == 0 {
        return Err(bad(
            images,
            "header",
            "the file holds no images (its header counts 0)",
        ));
    }
    if isz[1] == 0 || isz[2] == 0 {
        return Err(bad(
            images,
            "header",
            format!(
                "images of {} rows × {} columns: an image needs at least one pixel",
                isz[1], isz[2]
            ),
        ));
    }
    let (lsz, labs) = read_idx(labels, 1)?;
    if isz[0] != lsz[0] {
        return Err(bad(
            labels,
            "header",
            format!(
                "{} labels, but {} holds {} images",
                lsz[0],
                images.display(),
                isz[0]
            ),
        ));
    }
    if let Some((i, &l)) = labs.iter().enumerate().find(|&(_, &l)| l > 9) {
        return Err(bad(
            labels,
            format!("label {i}"),
            format!("{l} is not a class 0..9"),
        ));
    }
    let width = isz[1] * isz[2];
    let mut d = Dataset::new(
        Features::U8(pixels),
        width,
        Targets::Classes {
            labels: labs.into_iter().map(u32::from).collect(),
            n_classes: 10,
        },
    )?;
    d.image = Some(downhill_core::layers::ImageShape::new(1, isz[1], isz[2]));
    Ok(d)
}

/// The file `name` in `dir`, raw or with `.gz`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.exists())
}

/// A folder of MNIST-format files: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
/// and, if present, the `t10k-` test pair. Returns (train, test).
pub fn load_dir(dir: &Path) -> Result<(Dataset, Option<Dataset>)> {
    let need = |name: &str| {
        find(dir, name).ok_or_else(|| bad(dir, name, format!("no {name} or {name}.gz in this folder (an MNIST-format folder holds train-images-idx3-ubyte and train-labels-idx1-ubyte)")))
    };
    let train = load_pair(
        &need("train-images-idx3-ubyte")?,
        &need("train-labels-idx1-ubyte")?,
    )?;
    let test = match (
        find(dir, "t10k-images-idx3-ubyte"),
        find(dir, "t10k-labels-idx1-ubyte"),
    ) {
        (Some(i), Some(l)) => Some(load_pair(&i, &l)?),
        _ => None,
    };
    Ok((train, test))
}

/// Fashion-MNIST from the Debian package, with its class names.
pub fn fashion_mnist() -> Result<(Dataset, Option<Dataset>)> {
    fashion_mnist_in(Path::new(FASHION_MNIST_DIR))
}

/// Fashion-MNIST from `dir` (the package's folder, or a copy of it).
pub fn fashion_mnist_in(dir: &Path) -> Result<(Dataset, Option<Dataset>)> {
    if !dir.exists() {
        return Err(bad(
            dir,
            "folder",
            "Fashion-MNIST is not installed; install it with `apt-get install dataset-fashion-mnist`",
        ));
    }
    let (mut train, mut test) = load_dir(dir)?;
    let names: Vec<String> = FASHION_CLASSES.iter().map(|s| s.to_string()).collect();
    train.class_names = Some(names.clone());
    if let Some(t) = test.as_mut() {
        t.class_names = Some(names);
    }
    Ok((train, test))
}
