//! MNIST in its original IDX format, gzipped or raw.
//!
//! The loader trusts nothing: magic numbers, dimensions and lengths are checked, and every
//! failure names the file and what is wrong with it.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
pub use spinfer_model::contract::{CLASSES, PIXELS, SIDE};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: wrong magic number {found:#010x}, expected {expected:#010x} ({kind} file)")]
    WrongMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        kind: &'static str,
    },
    #[error("{path}: truncated: header says {expected} bytes of data, file has {found}")]
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error("{path}: {extra} bytes after the data that the header describes")]
    TrailingBytes { path: PathBuf, extra: usize },
    #[error("{path}: header is {found} bytes, too short for an IDX {kind} header")]
    ShortHeader {
        path: PathBuf,
        found: usize,
        kind: &'static str,
    },
    #[error("{path}: images are {rows}×{cols}, expected 28×28")]
    WrongDimensions { path: PathBuf, rows: usize, cols: usize },
    #[error("{path}: label {label} at index {index} is not a digit 0–9")]
    BadLabel { path: PathBuf, index: usize, label: u8 },
    #[error("image/label count mismatch: {images} images in {images_path}, {labels} labels in {labels_path}")]
    CountMismatch {
        images: usize,
        labels: usize,
        images_path: PathBuf,
        labels_path: PathBuf,
    },
}

/// Images as raw 0–255 bytes, row-major 28×28 each, with their labels.
#[derive(Clone, Debug)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, index: usize) -> &[u8] {
        &self.images[index * PIXELS..(index + 1) * PIXELS]
    }

    /// Pixels scaled to [0, 1] for the listed images, NCHW-flat.
    pub fn normalized(&self, indices: impl IntoIterator<Item = usize>) -> Vec<f32> {
        indices
            .into_iter()
            .flat_map(|i| self.image(i).iter().map(|&p| f32::from(p) / 255.0))
            .collect()
    }

    /// The first `n` items (or all, if fewer).
    pub fn head(&self, n: usize) -> Split {
        self.range(0, n.min(self.len()))
    }

    /// Items `start..end`.
    pub fn range(&self, start: usize, end: usize) -> Split {
        Split {
            images: self.images[start * PIXELS..end * PIXELS].to_vec(),
            labels: self.labels[start..end].to_vec(),
        }
    }
}

/// The four files of the dataset, with the validation split held out of train.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train: Split,
    pub validation: Split,
    pub test: Split,
}

/// Images held out from the end of the training file for per-epoch validation.
pub const VALIDATION_SIZE: usize = 5_000;

impl Mnist {
    pub fn load(dir: &Path) -> Result<Mnist, IdxError> {
        let full_train = load_split(dir, "train")?;
        let test = load_split(dir, "t10k")?;
        let cut = full_train.len().saturating_sub(VALIDATION_SIZE);
        Ok(Mnist {
            train: full_train.range(0, cut),
            validation: full_train.range(cut, full_train.len()),
            test,
        })
    }

    /// Only the 10k test set, for evaluation.
    pub fn load_test(dir: &Path) -> Result<Split, IdxError> {
        load_split(dir, "t10k")
    }
}

/// Loads `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]`.
pub fn load_split(dir: &Path, prefix: &str) -> Result<Split, IdxError> {
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"));
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"));
    let images = parse_images(&images_path, &read(&images_path)?)?;
    let labels = parse_labels(&labels_path, &read(&labels_path)?)?;
    let count = images.len() / PIXELS;
    if count != labels.len() {
        return Err(IdxError::CountMismatch {
            images: count,
            labels: labels.len(),
            images_path,
            labels_path,
        });
    }
    Ok(Split { images, labels })
}

fn find(dir: &Path, stem: &str) -> PathBuf {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.exists() { gz } else { dir.join(stem) }
}

/// Reads a file, gunzipping it when it starts with the gzip magic.
pub fn read(path: &Path) -> Result<Vec<u8>, IdxError> {
    let io = |source| IdxError::Io {
        path: path.to_owned(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice()).read_to_end(&mut out).map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn check_header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    header_len: usize,
    kind: &'static str,
) -> Result<(), IdxError> {
    if bytes.len() < header_len {
        return Err(IdxError::ShortHeader {
            path: path.to_owned(),
            found: bytes.len(),
            kind,
        });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(IdxError::WrongMagic {
            path: path.to_owned(),
            found,
            expected: magic,
            kind,
        });
    }
    Ok(())
}

fn check_length(path: &Path, data: &[u8], expected: usize) -> Result<(), IdxError> {
    match data.len().cmp(&expected) {
        std::cmp::Ordering::Less => Err(IdxError::Truncated {
            path: path.to_owned(),
            expected,
            found: data.len(),
        }),
        std::cmp::Ordering::Greater => Err(IdxError::TrailingBytes {
            path: path.to_owned(),
            extra: data.len() - expected,
        }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Parses an IDX3 image file into flat 0–255 pixels.
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, IdxError> {
    check_header(path, bytes, IMAGES_MAGIC, 16, "images")?;
    let count = be_u32(bytes, 4) as usize;
    let rows = be_u32(bytes, 8) as usize;
    let cols = be_u32(bytes, 12) as usize;
    if rows != SIDE || cols != SIDE {
        return Err(IdxError::WrongDimensions {
            path: path.to_owned(),
            rows,
            cols,
        });
    }
    let data = &bytes[16..];
    check_length(path, data, count * PIXELS)?;
    Ok(data.to_vec())
}

/// Parses an IDX1 label file.
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, IdxError> {
    check_header(path, bytes, LABELS_MAGIC, 8, "labels")?;
    let count = be_u32(bytes, 4) as usize;
    let data = &bytes[8..];
    check_length(path, data, count)?;
    if let Some((index, &label)) = data.iter().enumerate().find(|(_, l)| **l >= CLASSES as u8) {
        return Err(IdxError::BadLabel {
            path: path.to_owned(),
            index,
            label,
        });
    }
    Ok(data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
    }

    fn images_file(count: u32, rows: u32, cols: u32, data_len: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [IMAGES_MAGIC, count, rows, cols] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.resize(16 + data_len, 7);
        bytes
    }

    fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        bytes.extend_from_slice(labels);
        bytes
    }

    #[test]
    fn committed_files_match_published_checksums() {
        let expected = [
            (
                "train-images-idx3-ubyte.gz",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            (
                "train-labels-idx1-ubyte.gz",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            (
                "t10k-images-idx3-ubyte.gz",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            (
                "t10k-labels-idx1-ubyte.gz",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ];
        for (file, sha) in expected {
            let bytes = read(&data_dir().join(file)).unwrap();
            let digest = Sha256::digest(&bytes);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, sha, "{file}");
        }
    }

    #[test]
    fn loads_the_real_dataset_with_a_validation_split() {
        let mnist = Mnist::load(&data_dir()).unwrap();
        assert_eq!(mnist.train.len(), 55_000);
        assert_eq!(mnist.validation.len(), 5_000);
        assert_eq!(mnist.test.len(), 10_000);
        assert_eq!(mnist.test.labels[..5], [7, 2, 1, 0, 4]);
        let pixels = mnist.test.normalized([0]);
        assert_eq!(pixels.len(), PIXELS);
        assert!(pixels.iter().all(|p| (0.0..=1.0).contains(p)));
        assert!(pixels.contains(&1.0));
    }

    #[test]
    fn good_synthetic_files_parse() {
        let path = Path::new("x");
        assert_eq!(
            parse_images(path, &images_file(2, 28, 28, 2 * PIXELS))
                .unwrap()
                .len(),
            2 * PIXELS
        );
        assert_eq!(parse_labels(path, &labels_file(&[3, 9])).unwrap(), vec![3, 9]);
    }

    #[test]
    fn wrong_magic_is_named() {
        let mut bytes = labels_file(&[1]);
        bytes[3] = 0x03;
        let err = parse_labels(Path::new("l"), &bytes).unwrap_err();
        assert!(matches!(err, IdxError::WrongMagic { found: 0x803, .. }), "{err}");
        assert!(err.to_string().contains("wrong magic number 0x00000803"), "{err}");
        // An image file passed as labels is caught the same way.
        let err = parse_labels(Path::new("l"), &images_file(1, 28, 28, PIXELS)).unwrap_err();
        assert!(matches!(err, IdxError::WrongMagic { .. }), "{err}");
    }

    #[test]
    fn truncated_and_padded_files_are_named() {
        let err = parse_images(Path::new("i"), &images_file(3, 28, 28, 2 * PIXELS + 5)).unwrap_err();
        assert!(
            matches!(err, IdxError::Truncated { expected, found, .. } if expected == 3 * PIXELS && found == 2 * PIXELS + 5),
            "{err}"
        );
        let err = parse_images(Path::new("i"), &images_file(1, 28, 28, PIXELS + 1)).unwrap_err();
        assert!(matches!(err, IdxError::TrailingBytes { extra: 1, .. }), "{err}");
        let err = parse_labels(Path::new("l"), &[0, 0, 8]).unwrap_err();
        assert!(matches!(err, IdxError::ShortHeader { found: 3, .. }), "{err}");
    }

    #[test]
    fn wrong_dimensions_and_labels_are_named() {
        let err = parse_images(Path::new("i"), &images_file(1, 32, 28, 32 * 28)).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::WrongDimensions {
                    rows: 32,
                    cols: 28,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse_labels(Path::new("l"), &labels_file(&[1, 12])).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::BadLabel {
                    index: 1,
                    label: 12,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn count_mismatch_is_named() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        std::fs::write(
            dir.join("x-images-idx3-ubyte"),
            images_file(2, 28, 28, 2 * PIXELS),
        )
        .unwrap();
        std::fs::write(dir.join("x-labels-idx1-ubyte"), labels_file(&[1, 2, 3])).unwrap();
        let err = load_split(dir, "x").unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::CountMismatch {
                    images: 2,
                    labels: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn corrupted_gzip_is_an_io_error() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("bad.gz");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, IdxError::Io { .. }), "{err}");
    }
}
