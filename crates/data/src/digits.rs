//! The embedded default data set: 5,000 MNIST digits (28×28 grey pixels 0..255, labels 0..9),
//! 500 per digit, from the file `data/mnist-5k.csv.gz` compiled into the library (provenance in
//! `data/README.md`). Rows are sorted by label, so any split or batch order must shuffle.

use std::io::Read;
use std::path::PathBuf;

use downhill_core::data::{Dataset, Features, Targets};
use downhill_core::error::{Error, Result};

/// The gzip-compressed CSV: no header, 784 pixel columns then the label.
pub const MNIST_5K_CSV_GZ: &[u8] = include_bytes!("../../../data/mnist-5k.csv.gz");

/// Pixels per image.
pub const PIXELS: usize = 28 * 28;

/// Loads the 5,000 embedded digits, pixels as bytes (normalise with `Normalization::Scale`).
pub fn load() -> Result<Dataset> {
    let path = PathBuf::from("<embedded>/mnist-5k.csv.gz");
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(MNIST_5K_CSV_GZ)
        .read_to_end(&mut text)
        .map_err(|e| Error::Data {
            path: path.clone(),
            location: "gzip stream".into(),
            message: e.to_string(),
        })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_slice());
    let (mut pixels, mut labels) = (Vec::with_capacity(5000 * PIXELS), Vec::with_capacity(5000));
    let mut record = csv::ByteRecord::new();
    let mut row = 0;
    let bad = |row: usize, msg: String| Error::Data {
        path: path.clone(),
        location: format!("row {}", row + 1),
        message: msg,
    };
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| bad(row, e.to_string()))?
    {
        if record.len() != PIXELS + 1 {
            return Err(bad(
                row,
                format!("{} columns, expected {}", record.len(), PIXELS + 1),
            ));
        }
        for field in record.iter().take(PIXELS) {
            pixels.push(parse_u8(field).ok_or_else(|| {
                bad(
                    row,
                    format!("pixel {:?} is not 0..255", String::from_utf8_lossy(field)),
                )
            })?);
        }
        let label = parse_u8(&record[PIXELS])
            .filter(|&l| l < 10)
            .ok_or_else(|| bad(row, "label is not 0..9".into()))?;
        labels.push(label as u32);
        row += 1;
    }
    let mut d = Dataset::new(
        Features::U8(pixels),
        PIXELS,
        Targets::Classes {
            labels,
            n_classes: 10,
        },
    )?;
    d.class_names = Some((0..10).map(|c| c.to_string()).collect());
    d.image = Some(downhill_core::layers::ImageShape::new(1, 28, 28));
    Ok(d)
}

fn parse_u8(field: &[u8]) -> Option<u8> {
    std::str::from_utf8(field).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn five_thousand_digits_five_hundred_each() {
        let d = super::load().unwrap();
        assert_eq!((d.len(), d.n_features()), (5000, 784));
        let downhill_core::data::Targets::Classes { labels, .. } = d.targets() else {
            panic!()
        };
        for c in 0..10 {
            assert_eq!(labels.iter().filter(|&&l| l == c).count(), 500);
        }
    }
}
