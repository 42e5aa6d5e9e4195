//! Model files: one `.safetensors` file whose tensors are a PyTorch `nn.Sequential` `state_dict`
//! (`"0.weight"` `[out, in]`, `"0.bias"` `[out]`, activations and dropout taking their own
//! indices), so that in PyTorch
//!
//! ```python
//! model.load_state_dict(safetensors.torch.load_file(path))   # strict=True
//! ```
//!
//! succeeds. Everything else — architecture, loss, normalisation statistics, class names, the
//! training settings, the downhill version, and for a CSV model the column map
//! ([`downhill_data::columns::Columns`]: how each cell becomes features) and the regression targets'
//! scaling — is JSON under the key `"downhill"` of the file's `__metadata__`.
//!
//! Every file is written atomically: to a temporary file in the same folder, flushed to disk,
//! then renamed over the target, so a crash leaves the old complete file or the new one.

#[cfg(feature = "fs")]
pub mod checkpoint;

use std::collections::HashMap;
#[cfg(feature = "fs")]
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use downhill_core::data::Normalizer;
use downhill_core::error::{Error, Result};
use downhill_core::layers::Layer;
use downhill_core::loss::Loss;
use downhill_core::network::{Network, ParamTensor};
use downhill_data::columns::{Columns, TargetScaling};

/// Version of the metadata layout; bumped when it changes incompatibly.
/// Version 2 added `columns` and `target_scaling`: a version-1 reader would ignore them and
/// predict wrongly, so it refuses version 2.
pub const FORMAT_VERSION: u32 = 2;

/// What a model file says about the model besides its weights.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelMeta {
    pub format_version: u32,
    pub downhill_version: String,
    /// Features per example.
    pub inputs: usize,
    pub layers: Vec<Layer>,
    pub loss: Loss,
    pub normalizer: Normalizer,
    /// Class names (classification), indexed by the output unit.
    #[serde(default)]
    pub class_names: Option<Vec<String>>,
    /// Names of the feature columns, where the data had them.
    #[serde(default)]
    pub feature_names: Option<Vec<String>>,
    /// Names of the target columns (regression), where the data had them.
    #[serde(default)]
    pub target_names: Option<Vec<String>>,
    /// The settings the model was trained with (free-form, for the record).
    #[serde(default)]
    pub settings: serde_json::Value,
    /// Training was interrupted (Ctrl-C): these are the weights so far, not a finished run's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// How a CSV's columns become the network's inputs (before `normalizer`): see
    /// [`downhill_data::columns`]. Absent for images and for models from format version 1.
    #[serde(default)]
    pub columns: Option<Columns>,
    /// Regression targets were standardised for training: the network's outputs are
    /// (y − mean)/std, and predictions are `output·std + mean`.
    #[serde(default)]
    pub target_scaling: Option<TargetScaling>,
    /// The shape of one input as an image (C×H×W, `C·H·W = inputs`), for networks whose first
    /// layers take images; absent for networks of features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<downhill_core::layers::ImageShape>,
}

impl ModelMeta {
    /// The network's input shape: `input_shape` if given, else `inputs` features.
    pub fn shape(&self) -> downhill_core::network::Shape {
        match self.input_shape {
            Some(s) => downhill_core::network::Shape::Image(s),
            None => downhill_core::network::Shape::Flat(self.inputs),
        }
    }
}

impl ModelMeta {
    /// Metadata for `net` with the current downhill version and no names or settings.
    pub fn new(net: &Network<f32>, loss: Loss, normalizer: Normalizer) -> ModelMeta {
        ModelMeta {
            format_version: FORMAT_VERSION,
            downhill_version: env!("CARGO_PKG_VERSION").to_string(),
            inputs: net.inputs(),
            layers: net.layers().to_vec(),
            loss,
            normalizer,
            class_names: None,
            feature_names: None,
            target_names: None,
            settings: serde_json::Value::Null,
            interrupted: false,
            columns: None,
            target_scaling: None,
            input_shape: net.input_shape().image(),
        }
    }
}

/// A trained network with its metadata.
#[derive(Clone, Debug)]
pub struct Model {
    pub net: Network<f32>,
    pub meta: ModelMeta,
}

/// The folder `path` is in (`.` for a bare name).
#[cfg(feature = "fs")]
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temporary file beside `path`, to be renamed to it when complete: created with the mode the
/// finished file should have (the usual 0666 less the umask, or the mode of the file it
/// replaces; a temporary file is otherwise private, 0600). A failure names what is wrong with
/// the folder, not the temporary file's own name, which means nothing to the user.
#[cfg(feature = "fs")]
pub fn temporary_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = folder_of(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".downhill-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o666 & !umask());
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    builder.tempfile_in(dir).map_err(|e| {
        let why = if dir.is_dir() {
            format!("cannot write in the folder {}: {}", dir.display(), e.kind())
        } else {
            format!("the folder {} does not exist", dir.display())
        };
        Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(e.kind(), why),
        }
    })
}

#[cfg(feature = "fs")]
/// Writes `bytes` to `path` atomically (temporary file in the same folder, fsync, rename).
///
/// A path that names a device, a FIFO or the like (`--output /dev/stdout`) is written into
/// directly: renaming over it would replace the device node with a regular file. A symbolic link
/// to a file is followed, so the file it points to is replaced, not the link.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(m) = std::fs::metadata(path)
        && !m.is_file()
        && !m.is_dir()
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        return f.flush().map_err(io);
    }
    let linked;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(target) => {
                linked = target;
                linked.as_path()
            }
            Err(_) => path,
        },
        _ => path,
    };
    let dir = folder_of(path);
    let mut tmp = temporary_beside(path)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    // Make the rename itself durable where the platform allows opening a folder.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The process's file-creation mask (read without changing it, from /proc; 0o022 if unknown).
#[cfg(all(unix, feature = "fs"))]
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Umask:")
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
        })
        .unwrap_or(0o022)
}

/// A tensor to store beside the weights: name, dtype, little-endian bytes, shape.
pub type ExtraTensor = (String, Dtype, Vec<u8>, Vec<usize>);

/// The most bytes the `safetensors` crate accepts in a file's header (JSON of the tensors'
/// names, shapes and offsets, and of the metadata).
pub const MAX_HEADER: usize = 100_000_000;

/// Fails, before a run trains, if the model file of `meta` (with `tensors` tensors, and room for
/// a checkpoint's state) could not be written: its header would pass [`MAX_HEADER`]. The
/// message names what takes the room — a column's categories, the class names or the feature
/// names of the data `data`.
pub fn check_header_room(meta: &ModelMeta, tensors: usize, data: &str) -> Result<()> {
    let needed = escaped_len(meta) + tensors * 256 + (1 << 16);
    if needed <= MAX_HEADER {
        return Ok(());
    }
    let mb = |b: usize| format!("{:.0} MB", b as f64 / 1e6);
    let mut parts: Vec<(usize, String)> = Vec::new();
    for c in meta.columns.iter().flat_map(|c| &c.columns) {
        let name: String = c.name.chars().take(40).collect();
        let cut = if name.len() < c.name.len() { "…" } else { "" };
        parts.push((escaped_len(c), format!("column {name}{cut}")));
    }
    if let Some(n) = &meta.class_names {
        parts.push((escaped_len(n), "the class names".into()));
    }
    if let Some(n) = &meta.feature_names {
        parts.push((escaped_len(n), "the feature names".into()));
    }
    let (bytes, what) = parts
        .into_iter()
        .max()
        .unwrap_or((needed, "the model".into()));
    Err(Error::Data {
        path: PathBuf::from(data),
        location: what.clone(),
        message: format!(
            "the model file's description would take {} ({what}: {}), more than the {} a \
             safetensors header holds; drop the column (--drop) or shorten its values",
            mb(needed),
            mb(bytes),
            mb(MAX_HEADER),
        ),
    })
}

/// The length of `v` as JSON, escaped as a string inside another JSON (as a safetensors header
/// holds its metadata).
fn escaped_len<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    let json = serde_json::to_string(v).expect("metadata serialises");
    json.len() + json.bytes().filter(|&b| b == b'"' || b == b'\\').count() + 2
}

/// The model file's bytes: the `state_dict` tensors as F32, any `extra` tensors, the metadata
/// (`meta` under `"downhill"`, plus the `more` entries).
pub fn to_bytes_with(
    net: &Network<f32>,
    meta: &ModelMeta,
    extra: &[ExtraTensor],
    more: &[(&str, String)],
) -> Result<Vec<u8>> {
    let json = serde_json::to_string(meta).expect("metadata serialises");
    let mut info = HashMap::from([
        ("downhill".to_string(), json),
        ("format".to_string(), "pt".to_string()),
    ]);
    info.extend(more.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let mut tensors: Vec<ExtraTensor> = net
        .tensors()
        .into_iter()
        .map(|t| {
            (
                t.name,
                Dtype::F32,
                f32_bytes(&net.params()[t.range]),
                t.shape,
            )
        })
        .collect();
    tensors.extend(buffer_tensors(net));
    // `extra` is read where it is, not copied: a checkpoint's optimiser buffers are as large as
    // the weights.
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .chain(extra)
        .map(|(n, d, b, s)| {
            (
                n.clone(),
                TensorView::new(*d, s.clone(), b).expect("shape matches data"),
            )
        })
        .collect();
    safetensors::serialize(views, Some(info))
        .map(sorted_header)
        .map_err(|e| Error::Data {
            path: PathBuf::from("<model>"),
            location: "serialising".into(),
            message: e.to_string(),
        })
}

/// The same safetensors bytes with the JSON header's keys sorted (the crate writes its metadata
/// map in hash order), so that the same model always gives the same bytes. The header stays padded
/// with spaces to a multiple of 8 bytes; tensor offsets are relative to the data that follows it,
/// so they do not change.
pub fn sorted_header(bytes: Vec<u8>) -> Vec<u8> {
    let Some(n) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return bytes;
    };
    let Some(header) = bytes.get(8..8usize.saturating_add(n)) else {
        return bytes;
    };
    // serde_json's map is a BTreeMap (no `preserve_order`): keys come out sorted.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(header) else {
        return bytes;
    };
    let mut json = serde_json::to_string(&value).expect("JSON serialises");
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// The model file's bytes: the `state_dict` tensors and the metadata.
pub fn to_bytes(net: &Network<f32>, meta: &ModelMeta) -> Result<Vec<u8>> {
    to_bytes_with(net, meta, &[], &[])
}

/// The network's buffers as a PyTorch `state_dict` holds them: BatchNorm's `N.running_mean` and
/// `N.running_var` (F32, `[C]`) and `N.num_batches_tracked` (an I64 scalar, shape `[]`).
pub fn buffer_tensors(net: &Network<f32>) -> Vec<ExtraTensor> {
    let mut out: Vec<ExtraTensor> = net
        .buffer_tensors()
        .into_iter()
        .map(|t| {
            (
                t.name,
                Dtype::F32,
                f32_bytes(&net.buffers()[t.range]),
                t.shape,
            )
        })
        .collect();
    for (l, layer) in net.layers().iter().enumerate() {
        if layer.is_batchnorm() {
            out.push((
                format!("{l}.num_batches_tracked"),
                Dtype::I64,
                net.tracked()[l].to_le_bytes().to_vec(),
                vec![],
            ));
        }
    }
    out
}

/// Little-endian bytes of `f32` values.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(feature = "fs")]
/// Saves `net` with `meta` to `path`, atomically.
pub fn save(path: &Path, net: &Network<f32>, meta: &ModelMeta) -> Result<()> {
    write_atomic(path, &to_bytes(net, meta)?)
}

#[cfg(feature = "fs")]
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub fn bad(path: &Path, location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        location: location.into(),
        message: message.into(),
    }
}

/// Parses the safetensors container, with an error that says what the file is not.
pub fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| {
        bad(path, "header", format!("not a readable safetensors file ({e}); a model file is written by `downhill train` or safetensors' save_file"))
    })
}

#[cfg(feature = "fs")]
/// Loads a model saved by [`save`]: builds the network from the metadata and fills its weights.
pub fn load(path: &Path) -> Result<Model> {
    let bytes = read(path)?;
    load_bytes(path, &bytes)
}

/// The string metadata entry `key` of a safetensors file, if present.
pub fn metadata_entry(path: &Path, bytes: &[u8], key: &str) -> Result<Option<String>> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| bad(path, "header", e.to_string()))?;
    Ok(header.metadata().as_ref().and_then(|m| m.get(key)).cloned())
}

/// [`load`] from bytes already read (`path` names them in errors).
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<Model> {
    let st = parse(path, bytes)?;
    let meta = read_meta(path, bytes)?;
    check_claimed_sizes(path, &meta, bytes)?;
    let mut net =
        Network::with_zero_params_shaped(meta.shape(), meta.layers.clone()).map_err(|e| {
            let e = e.to_string().replace(
                downhill_core::network::IMAGE_SHAPE_HINT,
                "the model's metadata has no input_shape (C×H×W) for its image layers",
            );
            bad(path, "__metadata__.downhill.layers", e)
        })?;
    validate_meta(path, &meta, &net)?;
    validate_preprocessing(path, &meta, &net)?;
    // A tensor the network does not have is refused, as `--init` refuses it (PyTorch's strict
    // `load_state_dict`): a model file is its network's tensors, and a checkpoint those plus
    // its training state.
    fill_params(path, &st, &mut net, extra_for(bytes))?;
    Ok(Model { net, meta })
}

/// The `downhill` metadata entry, parsed, of a format version this build understands.
fn read_meta(path: &Path, bytes: &[u8]) -> Result<ModelMeta> {
    let json = metadata_entry(path, bytes, "downhill")?
        .ok_or_else(|| bad(path, "__metadata__", "no \"downhill\" entry: the file holds weights but not the architecture. Pass the architecture with flags and load the weights with --init"))?;
    let meta: ModelMeta = serde_json::from_str(&json).map_err(|e| {
        bad(
            path,
            "__metadata__.downhill",
            format!("unreadable metadata: {e}"),
        )
    })?;
    if meta.format_version > FORMAT_VERSION {
        return Err(bad(
            path,
            "__metadata__.downhill",
            format!(
                "format version {} is newer than this downhill understands ({FORMAT_VERSION}); upgrade downhill",
                meta.format_version
            ),
        ));
    }
    Ok(meta)
}

/// Refuses metadata whose sizes the file cannot back: layers claiming more weights than its
/// bytes hold, or an input shape other than the inputs it names.
fn check_claimed_sizes(path: &Path, meta: &ModelMeta, bytes: &[u8]) -> Result<()> {
    // The weights must be in the file: a small file whose metadata claims a huge layer is
    // refused before anything is reserved.
    let claimed = meta.layers.iter().try_fold(0u128, |acc, l| {
        l.param_len()?
            .checked_add(l.buffer_len() as u128)?
            .checked_add(acc)
    });
    if claimed.is_none_or(|p| p.saturating_mul(4) > bytes.len() as u128) {
        return Err(bad(
            path,
            "__metadata__.downhill.layers",
            format!(
                "the layers claim {} parameters ({} as F32), but the file has only {} bytes",
                claimed.map_or("more than 2¹²⁸".into(), |p| p.to_string()),
                claimed.map_or("too many bytes".into(), |p| downhill_core::memory::human(
                    p.saturating_mul(4)
                )),
                bytes.len()
            ),
        ));
    }
    if meta.input_shape.is_some_and(|s| {
        s.channels
            .checked_mul(s.height)
            .and_then(|v| v.checked_mul(s.width))
            != Some(meta.inputs)
    }) {
        return Err(bad(
            path,
            "__metadata__.downhill.input_shape",
            format!(
                "does not hold the {} inputs the metadata names",
                meta.inputs
            ),
        ));
    }
    Ok(())
}

/// Checks the input and output transformations against the network: the normaliser's
/// statistics, the column map, and the target scaling (MSE regression only).
fn validate_preprocessing(path: &Path, meta: &ModelMeta, net: &Network<f32>) -> Result<()> {
    if meta.normalizer.shift.len() != meta.inputs || meta.normalizer.scale.len() != meta.inputs {
        return Err(bad(
            path,
            "__metadata__.downhill.normalizer",
            format!(
                "statistics for {} features, but the network takes {}",
                meta.normalizer.shift.len(),
                meta.inputs
            ),
        ));
    }
    // A trained normaliser's scales are positive (1/σ, 1/255 or 1) and its shifts finite.
    let n = &meta.normalizer;
    if let Some((j, v)) = n
        .scale
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v > 0.0))
    {
        return Err(bad(
            path,
            "__metadata__.downhill.normalizer.scale",
            format!(
                "feature {j}'s scale is {}; a normaliser's scales are finite and > 0 (was the file edited?)",
                downhill_core::error::short(f64::from(*v))
            ),
        ));
    }
    if let Some((j, v)) = n.shift.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(bad(
            path,
            "__metadata__.downhill.normalizer.shift",
            format!(
                "feature {j}'s shift is {}; a normaliser's shifts are finite (was the file edited?)",
                downhill_core::error::short(f64::from(*v))
            ),
        ));
    }
    if let Some(c) = &meta.columns {
        c.validate(path, meta.inputs)?;
    }
    // Every MSE model trained on a table learns standardised targets and records how: without
    // the record its outputs would be read in standard units, not the target's.
    if meta.target_scaling.is_none() && meta.columns.is_some() && meta.loss == Loss::Mse {
        return Err(bad(
            path,
            "__metadata__.downhill.target_scaling",
            "missing: a regression model trained on a table records its targets' mean and \
             standard deviation, and its outputs are meaningless without them (was the file edited?)",
        ));
    }
    if let Some(t) = &meta.target_scaling {
        if meta.loss != Loss::Mse {
            return Err(bad(
                path,
                "__metadata__.downhill.target_scaling",
                "target scaling belongs to an MSE regression model only",
            ));
        }
        t.validate(path, net.outputs())?;
    }
    Ok(())
}

/// Checks the metadata's fields against the network before any is used: names as many as the
/// units they name, finite normalisation statistics.
fn validate_meta(path: &Path, meta: &ModelMeta, net: &Network<f32>) -> Result<()> {
    let names = [
        ("class_names", &meta.class_names, net.outputs(), "outputs"),
        ("target_names", &meta.target_names, net.outputs(), "outputs"),
        ("feature_names", &meta.feature_names, net.inputs(), "inputs"),
    ];
    for (field, v, want, what) in names {
        if let Some(v) = v
            && v.len() != want
        {
            return Err(bad(
                path,
                format!("__metadata__.downhill.{field}"),
                format!("{} names, but the network has {want} {what}", v.len()),
            ));
        }
    }
    // A repeated name would print two classes as one (predict's column names and labels).
    for (field, v) in [
        ("class_names", &meta.class_names),
        ("target_names", &meta.target_names),
    ] {
        let mut seen = std::collections::HashMap::new();
        if let Some(v) = v
            && let Some((i, j)) = v
                .iter()
                .enumerate()
                .find_map(|(j, n)| seen.insert(n, j).map(|i| (i, j)))
        {
            return Err(bad(
                path,
                format!("__metadata__.downhill.{field}"),
                format!(
                    "the name {:?} is repeated (entries {} and {}): each output needs its own \
                     name",
                    v[j],
                    i + 1,
                    j + 1
                ),
            ));
        }
    }
    if meta.class_names.is_some() && !meta.loss.takes_classes() {
        return Err(bad(
            path,
            "__metadata__.downhill.class_names",
            format!(
                "class names with the {} loss, which takes no classes",
                meta.loss.name()
            ),
        ));
    }
    let n = &meta.normalizer;
    if let Some(i) = (0..n.shift.len().min(n.scale.len()))
        .find(|&i| !(n.shift[i].is_finite() && n.scale[i].is_finite()))
    {
        return Err(bad(
            path,
            format!("__metadata__.downhill.normalizer feature {i}"),
            format!(
                "shift {} and scale {}: both must be finite numbers",
                n.shift[i], n.scale[i]
            ),
        ));
    }
    Ok(())
}

#[cfg(feature = "fs")]
/// Loads weights into `net` from any safetensors file with its `state_dict` names and shapes —
/// one saved by downhill, or by PyTorch's `safetensors.torch.save_file(model.state_dict(), path)`.
/// F32 and F64 tensors are accepted. Tensors beyond the network's are an error (as PyTorch's strict loading).
pub fn load_params(path: &Path, net: &mut Network<f32>) -> Result<()> {
    let bytes = read(path)?;
    let st = parse(path, &bytes)?;
    fill_params(path, &st, net, extra_for(&bytes))
}

/// The tensors a file may hold beyond its network's: a downhill checkpoint (its metadata has
/// `checkpoint`) also holds the training state, the tensors `optimizer.*` and `train.*`; any
/// other file none.
fn extra_for(bytes: &[u8]) -> Extra {
    let checkpoint = safetensors::SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().as_ref().map(|m| m.contains_key("checkpoint")))
        .unwrap_or(false);
    if checkpoint {
        Extra::TrainingState
    } else {
        Extra::Refused
    }
}

/// What [`fill_params`] does with a tensor that is none of the network's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    /// An error naming it.
    Refused,
    /// An error, unless it is a checkpoint's training state (`optimizer.*`, `train.*`).
    TrainingState,
}

/// Fills `net`'s parameters, buffers and batch counts from `st`; tensors beyond the network's
/// are treated as `extra` says.
fn fill_params(
    path: &Path,
    st: &SafeTensors<'_>,
    net: &mut Network<f32>,
    extra: Extra,
) -> Result<()> {
    let tensors = net.tensors();
    let buffers = net.buffer_tensors();
    for (t, is_buffer) in tensors
        .iter()
        .map(|t| (t, false))
        .chain(buffers.iter().map(|t| (t, true)))
    {
        let dst = if is_buffer {
            &mut net.buffers_mut()[t.range.clone()]
        } else {
            &mut net.params_mut()[t.range.clone()]
        };
        read_tensor(path, st, t, dst)?;
    }
    let mut tracked_names = Vec::new();
    for l in 0..net.layers().len() {
        if !net.layers()[l].is_batchnorm() {
            continue;
        }
        let (name, v) = read_tracked(path, st, l)?;
        net.tracked_mut()[l] = v;
        tracked_names.push(name);
    }
    let state = |n: &str| {
        extra == Extra::TrainingState && (n.starts_with("optimizer.") || n.starts_with("train."))
    };
    refuse_extra(path, st, &tensors, &buffers, &tracked_names, state)
}

/// Reads the tensor `t` of `st` into `dst`: present, of `t`'s shape, F32 or F64, finite, and
/// (for a running variance) not below 0.
fn read_tensor(path: &Path, st: &SafeTensors<'_>, t: &ParamTensor, dst: &mut [f32]) -> Result<()> {
    let view = st.tensor(&t.name).map_err(|_| {
        bad(
            path,
            format!("tensor {}", t.name),
            format!(
                "missing; the network needs {} of shape {:?}",
                t.name, t.shape
            ),
        )
    })?;
    if view.shape() != t.shape.as_slice() {
        return Err(bad(
            path,
            format!("tensor {}", t.name),
            format!(
                "shape {:?}, but the network needs {:?}",
                view.shape(),
                t.shape
            ),
        ));
    }
    match view.dtype() {
        Dtype::F32 => {
            for (d, c) in dst.iter_mut().zip(view.data().chunks_exact(4)) {
                *d = f32::from_le_bytes(c.try_into().expect("4 bytes"));
            }
        }
        Dtype::F64 => {
            for (d, c) in dst.iter_mut().zip(view.data().chunks_exact(8)) {
                *d = f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32;
            }
        }
        other => {
            return Err(bad(
                path,
                format!("tensor {}", t.name),
                format!("dtype {other:?}; only F32 and F64 are read"),
            ));
        }
    }
    if let Some(i) = dst.iter().position(|v| !v.is_finite()) {
        return Err(bad(
            path,
            format!("tensor {} element {i}", t.name),
            "not a finite number",
        ));
    }
    if t.name.ends_with(".running_var")
        && let Some(i) = dst.iter().position(|&v| v < 0.0)
    {
        return Err(bad(
            path,
            format!("tensor {} element {i}", t.name),
            "a variance below 0",
        ));
    }
    Ok(())
}

/// The name and value of batch-norm layer `l`'s `num_batches_tracked`: an I64 scalar ≥ 0.
fn read_tracked(path: &Path, st: &SafeTensors<'_>, l: usize) -> Result<(String, i64)> {
    let name = format!("{l}.num_batches_tracked");
    let view = st.tensor(&name).map_err(|_| {
        bad(
            path,
            format!("tensor {name}"),
            "missing; the network needs it (an I64 scalar, as PyTorch's BatchNorm writes it)",
        )
    })?;
    if view.dtype() != Dtype::I64 || !view.shape().is_empty() {
        return Err(bad(
            path,
            format!("tensor {name}"),
            format!(
                "dtype {:?} shape {:?}, but num_batches_tracked is an I64 scalar (shape []), as PyTorch writes it",
                view.dtype(),
                view.shape()
            ),
        ));
    }
    let v = i64::from_le_bytes(
        view.data()
            .try_into()
            .map_err(|_| bad(path, format!("tensor {name}"), "not 8 bytes"))?,
    );
    if v < 0 {
        return Err(bad(
            path,
            format!("tensor {name}"),
            format!("{v} is below 0"),
        ));
    }
    Ok((name, v))
}

/// Refuses a tensor of `st` that is none of the network's parameters, buffers or batch counts
/// (nor `allowed`).
fn refuse_extra(
    path: &Path,
    st: &SafeTensors<'_>,
    tensors: &[ParamTensor],
    buffers: &[ParamTensor],
    tracked_names: &[String],
    allowed: impl Fn(&str) -> bool,
) -> Result<()> {
    let known: Vec<&str> = tensors
        .iter()
        .chain(buffers)
        .map(|t| t.name.as_str())
        .chain(tracked_names.iter().map(String::as_str))
        .collect();
    let mut names = st.names();
    names.sort_unstable();
    if let Some(extra) = names
        .into_iter()
        .find(|n| !known.contains(n) && !allowed(n))
    {
        return Err(bad(
            path,
            format!("tensor {extra}"),
            format!(
                "not a parameter of the network (which has {}); a file with other tensors is \
                 refused, as PyTorch's strict load_state_dict refuses it",
                known.join(", ")
            ),
        ));
    }
    Ok(())
}
