use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use spinfer_engine::import::{ImportOptions, card, parse_shape};
use spinfer_model::card::{ChannelOrder, ImageSpec, Layout, Resize};

#[derive(Clone, Copy, clap::ValueEnum)]
enum Order {
    Rgb,
    Bgr,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LayoutArg {
    Nchw,
    Nhwc,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ResizeArg {
    Stretch,
    Fit,
}

/// Copies an ONNX model into a models folder with a card read from its graph, after tract has
/// loaded, typed, optimised and run it; refuses a model tract cannot run, naming the node and op.
#[derive(clap::Args)]
pub struct ImportCommand {
    /// The ONNX file.
    model: PathBuf,
    /// The model's name: its files are NAME.onnx and NAME.json, its routes use it.
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "models")]
    models_dir: PathBuf,
    /// A text file of class labels, one per line, for the first output `[N, classes]`.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Pins an input's dimensions: INPUT=D1,D2,… (sizes, or a name for one left free), e.g.
    /// x=1,3,48,192; repeat for several inputs.
    #[arg(long = "shape", value_name = "INPUT=DIMS")]
    shapes: Vec<String>,
    /// For `/predict`: the picture size the first input takes, HxW.
    #[arg(long, value_name = "HxW")]
    image: Option<String>,
    #[arg(long, default_value_t = 3, requires = "image")]
    channels: u8,
    #[arg(long, value_enum, default_value = "rgb", requires = "image")]
    order: Order,
    #[arg(long, value_enum, default_value = "nchw", requires = "image")]
    layout: LayoutArg,
    /// Each 0–255 value is multiplied by this, less the mean, over the std.
    #[arg(long, default_value_t = 1.0 / 255.0, requires = "image")]
    scale: f64,
    /// One value, or one per channel, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0", requires = "image")]
    mean: Vec<f64>,
    #[arg(long, value_delimiter = ',', default_value = "1", requires = "image")]
    std: Vec<f64>,
    #[arg(long, value_enum, default_value = "stretch", requires = "image")]
    resize: ResizeArg,
    /// MNIST's steps before scaling: invert a light background, crop to the ink, centre.
    #[arg(long, requires = "image")]
    digit: bool,
    #[arg(long)]
    description: Option<String>,
    /// Replace a model of the same name.
    #[arg(long)]
    force: bool,
}

impl ImportCommand {
    fn image(&self) -> Result<Option<ImageSpec>> {
        let Some(size) = &self.image else {
            return Ok(None);
        };
        let parsed = size
            .split_once(['x', 'X'])
            .and_then(|(h, w)| Some((h.parse().ok()?, w.parse().ok()?)));
        let Some((height, width)) = parsed else {
            bail!("--image {size:?} is not HxW (for example 48x192)");
        };
        Ok(Some(ImageSpec {
            height,
            width,
            channels: self.channels,
            order: match self.order {
                Order::Rgb => ChannelOrder::Rgb,
                Order::Bgr => ChannelOrder::Bgr,
            },
            layout: match self.layout {
                LayoutArg::Nchw => Layout::Nchw,
                LayoutArg::Nhwc => Layout::Nhwc,
            },
            scale: self.scale,
            mean: self.mean.clone(),
            std: self.std.clone(),
            resize: match self.resize {
                ResizeArg::Stretch => Resize::Stretch,
                ResizeArg::Fit => Resize::Fit,
            },
            digit: self.digit,
        }))
    }

    pub fn run(self) -> Result<()> {
        let valid = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !self.name.starts_with('.');
        if !valid {
            bail!(
                "--name {:?}: use letters, digits, '-', '_' and '.' (it names files and routes)",
                self.name
            );
        }
        let onnx = std::fs::read(&self.model).with_context(|| format!("reading {}", self.model.display()))?;
        let labels = match &self.labels {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            None => Vec::new(),
        };
        let options = ImportOptions {
            name: self.name.clone(),
            shapes: self
                .shapes
                .iter()
                .map(|s| parse_shape(s))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?,
            labels,
            image: self.image()?,
            description: self.description.clone(),
            source: format!(
                "imported by spinfer import from {}",
                self.model
                    .file_name()
                    .map_or_else(String::new, |f| f.to_string_lossy().into_owned())
            ),
        };
        let imported =
            card(&onnx, &options).with_context(|| format!("{} cannot be served", self.model.display()))?;
        let card = imported.card;
        let target = self.models_dir.join(format!("{}.onnx", self.name));
        if !self.force && (target.exists() || target.with_extension("json").exists()) {
            bail!(
                "{} already holds a model {:?}; pass --force to replace it",
                self.models_dir.display(),
                self.name
            );
        }
        std::fs::create_dir_all(&self.models_dir)?;
        write_both(&target, &onnx, &(serde_json::to_string_pretty(&card)? + "\n"))?;
        println!(
            "imported {} as {:?} into {}: inputs {}, outputs {}{}",
            self.model.display(),
            self.name,
            self.models_dir.display(),
            describe(&card.inputs),
            describe(&card.outputs),
            card.multiply_adds.map_or_else(String::new, |m| format!(
                ", {:.1} M multiply-adds per item",
                m as f64 / 1e6
            ))
        );
        for note in imported.notes {
            println!("  note: {note}");
        }
        Ok(())
    }
}

fn describe(specs: &[spinfer_model::TensorSpec]) -> String {
    let each: Vec<String> = specs
        .iter()
        .map(|s| format!("{} {} {:?}", s.name, s.dtype.oip(), s.oip_shape()))
        .collect();
    each.join(", ")
}

/// Writes the model and its card beside each other, or neither: each goes to a temporary file
/// in the folder first and is renamed into place, the card last (a catalog lists a model by its
/// card).
fn write_both(onnx_path: &Path, onnx: &[u8], card: &str) -> Result<()> {
    let dir = onnx_path.parent().unwrap_or(Path::new("."));
    let temporary = |bytes: &[u8]| -> Result<tempfile::NamedTempFile> {
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut file, bytes)?;
        // Readable as the folder's other files are (a temporary file is the owner's only).
        #[cfg(unix)]
        file.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        Ok(file)
    };
    let model = temporary(onnx)?;
    let json = temporary(card.as_bytes())?;
    model
        .persist(onnx_path)
        .with_context(|| format!("writing {}", onnx_path.display()))?;
    let card_path = onnx_path.with_extension("json");
    if let Err(e) = json.persist(&card_path) {
        let _ = std::fs::remove_file(onnx_path);
        return Err(e).with_context(|| format!("writing {}", card_path.display()));
    }
    Ok(())
}
