//! A card for any ONNX model, read from its graph: what `spinfer import` writes beside a model
//! it copies into a models folder. The model is parsed, typed, optimised (and, where its shapes
//! allow, run once) by tract first, so a card is only ever written for a model Spinfer can serve.

use spinfer_model::{DType, Dim, ImageSpec, ModelCard, Tensor, TensorSpec};

use crate::{EngineError, Model};

/// What the importer is told besides the file.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    pub name: String,
    /// Fixed sizes for inputs' dimensions (by input name), symbols where they stay free.
    pub shapes: Vec<TensorSpec>,
    pub labels: Vec<String>,
    pub image: Option<ImageSpec>,
    pub description: Option<String>,
    /// Where the model came from, for the card.
    pub source: String,
}

/// `NAME=D1,D2,…` (a dimension a size or a symbol's name) as the input's pinned shape.
pub fn parse_shape(text: &str) -> Result<TensorSpec, String> {
    let (name, dims) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not INPUT=DIMS (for example x=1,3,48,192)"))?;
    let shape = dims
        .split(',')
        .map(|d| match d.trim().parse::<u32>() {
            Ok(0) => Err(format!("{text:?}: a dimension cannot be 0")),
            Ok(n) => Ok(Dim::Size(i64::from(n))),
            Err(_) if !d.trim().is_empty() && d.trim().chars().all(|c| c.is_alphanumeric() || c == '_') => {
                Ok(Dim::Symbol(d.trim().into()))
            }
            Err(_) => Err(format!("{text:?}: {d:?} is neither a size nor a symbol's name")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TensorSpec {
        name: name.trim().into(),
        // Only the sizes are used; the type is the graph's.
        dtype: DType::Float32,
        shape,
    })
}

/// A card, and what the importer did that the user did not ask for, a line each.
#[derive(Debug)]
pub struct Imported {
    pub card: ModelCard,
    pub notes: Vec<String>,
}

/// Loads `onnx` as `options` pin it, checks what the options ask of it, runs it once on zeros
/// where only the batch is left free, and writes its card. Where the image block gives the
/// first input's channels, height and width and the graph leaves them free (and `--shape`
/// does not pin that input), they are taken from it.
pub fn card(onnx: &[u8], options: &ImportOptions) -> Result<Imported, EngineError> {
    let declared = Model::declared_inputs(onnx)?;
    let mut notes = Vec::new();
    let mut shapes = options.shapes.clone();
    if let (Some(image), Some(first)) = (&options.image, declared.first())
        && !shapes.iter().any(|s| s.name == first.name)
        && first.shape.len() == 4
        && first.shape[1..].iter().any(|d| d.fixed().is_none())
    {
        let mut pinned = first.clone();
        for (dim, size) in pinned.shape[1..].iter_mut().zip(&image.shape()[1..]) {
            if dim.fixed().is_none() {
                *dim = Dim::Size(*size as i64);
            }
        }
        notes.push(format!(
            "input {:?}: the graph leaves {:?} free; the image block makes it {:?}",
            first.name,
            first.oip_shape(),
            pinned.oip_shape()
        ));
        shapes.push(pinned);
    }
    let model = Model::from_onnx_as(onnx, &shapes).map_err(|e| with_shape_hint(e, &declared, &shapes))?;
    let refuse = |why: String| EngineError::Load(why);
    let (first_in, first_out) = (&model.inputs()[0], &model.outputs()[0]);
    if let Some(image) = &options.image {
        image.check().map_err(refuse)?;
        if first_in.dtype != DType::Float32 || !first_in.accepts(&image.shape()) {
            return Err(refuse(format!(
                "the image block makes {:?} float32 tensors, but input {:?} is {} {:?}",
                image.shape(),
                first_in.name,
                first_in.dtype,
                first_in.oip_shape()
            )));
        }
    }
    if !options.labels.is_empty() {
        let classes = match first_out.shape.as_slice() {
            [_, classes] => classes.fixed(),
            _ => None,
        };
        if classes != Some(options.labels.len()) {
            return Err(refuse(format!(
                "{} labels, but output {:?} has shape {:?}, not [N, {}]",
                options.labels.len(),
                first_out.name,
                first_out.oip_shape(),
                options.labels.len()
            )));
        }
    }
    if let Some(zeros) = zero_inputs(model.inputs()) {
        model.run(zeros)?;
    }
    let mut limitations = None;
    if model.runs_item_by_item() {
        let why = "tract cannot type this graph with its batch free, so a batch runs item by item \
                   through a plan for one item";
        notes.push(format!("{why}; any batch size is served"));
        limitations = Some(format!("Runs item by item: {why}."));
    }
    for (graph, served) in declared.iter().zip(model.inputs()) {
        let free = graph.shape.first().is_some_and(|d| d.fixed().is_none());
        if free && served.shape.first() == Some(&Dim::Size(1)) && !shapes.iter().any(|s| s.name == graph.name)
        {
            let why = format!(
                "tract cannot type this graph with the batch of input {:?} free, and its \
                 outputs do not follow a batch, so its batch is pinned to 1",
                graph.name
            );
            notes.push(why.clone());
            limitations = Some(format!("Batch pinned to 1: {why}."));
        }
    }
    let card = ModelCard {
        name: options.name.clone(),
        version: "1".into(),
        description: options.description.clone().unwrap_or_default(),
        inputs: model.inputs().to_vec(),
        outputs: model.outputs().to_vec(),
        labels: options.labels.clone(),
        image: options.image.clone(),
        sha256: spinfer_catalog::sha256_hex(onnx),
        parameters: crate::cost::parameters(onnx).ok(),
        multiply_adds: model.multiply_adds(),
        source: Some(options.source.clone()),
        architecture: None,
        preprocessing: None,
        intended_use: None,
        limitations,
        training: None,
    };
    Ok(Imported { card, notes })
}

/// `error` with the `--shape` flag that pins each input the graph leaves free and `shapes`
/// does not pin, when there is one.
fn with_shape_hint(error: EngineError, declared: &[TensorSpec], shapes: &[TensorSpec]) -> EngineError {
    let EngineError::Load(why) = error else {
        return error;
    };
    let flags: Vec<String> = declared
        .iter()
        .filter(|input| !shapes.iter().any(|s| s.name == input.name))
        .filter(|input| input.shape.iter().any(|d| d.fixed().is_none()))
        .map(|input| {
            let dims: Vec<String> = input
                .shape
                .iter()
                .enumerate()
                .map(|(i, d)| match (i, d) {
                    (_, Dim::Size(n)) => n.to_string(),
                    (0, _) => "1".into(),
                    (_, Dim::Symbol(s)) => s.clone(),
                })
                .collect();
            format!("--shape {}={}", input.name, dims.join(","))
        })
        .collect();
    if flags.is_empty() {
        return EngineError::Load(why);
    }
    EngineError::Load(format!(
        "{why}\n  help: the graph leaves dimensions free; pin them, each symbol replaced by the \
         size the model is fed: {}",
        flags.join(" ")
    ))
}

/// One item of zeros for every input, when only first dimensions are symbolic.
fn zero_inputs(inputs: &[TensorSpec]) -> Option<Vec<Tensor>> {
    inputs
        .iter()
        .map(|spec| {
            let shape = spec
                .shape
                .iter()
                .enumerate()
                .map(|(i, d)| d.fixed().or((i == 0).then_some(1)))
                .collect::<Option<Vec<usize>>>()?;
            let bytes = spinfer_model::tensor::elements(&shape)? * spec.dtype.size();
            Tensor::new(spec.name.clone(), spec.dtype, shape, vec![0; bytes]).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/mnist-seed.onnx"))
            .unwrap()
    }

    #[test]
    fn shapes_parse_as_sizes_and_symbols() {
        let spec = parse_shape("x=N,3,48,192").unwrap();
        assert_eq!(spec.name, "x");
        assert_eq!(spec.oip_shape(), vec![-1, 3, 48, 192]);
        assert!(parse_shape("x").is_err());
        assert!(parse_shape("x=1,0").is_err());
        assert!(parse_shape("x=1,-3").is_err());
    }

    #[test]
    fn a_card_is_read_from_the_graph() {
        let options = ImportOptions {
            name: "digits".into(),
            labels: (0..10).map(|i| i.to_string()).collect(),
            source: "test".into(),
            ..Default::default()
        };
        let card = card(&seed(), &options).unwrap().card;
        assert_eq!(card.inputs[0].name, "input");
        assert_eq!(card.inputs[0].oip_shape(), vec![-1, 1, 28, 28]);
        assert_eq!(card.outputs[0].name, "probs");
        assert_eq!(card.outputs[0].oip_shape(), vec![-1, 10]);
        assert_eq!(card.parameters, Some(54_410));
        assert_eq!(card.multiply_adds, Some(32 * 9 * 26 * 26 + 5408 * 10));
    }

    #[test]
    fn pinned_shapes_and_what_the_options_ask_are_checked() {
        let pinned = ImportOptions {
            shapes: vec![parse_shape("input=1,1,28,28").unwrap()],
            ..Default::default()
        };
        assert_eq!(
            card(&seed(), &pinned).unwrap().card.outputs[0].oip_shape(),
            vec![1, 10]
        );
        let wrong = ImportOptions {
            shapes: vec![parse_shape("pixels=1,1,28,28").unwrap()],
            ..Default::default()
        };
        assert!(
            card(&seed(), &wrong)
                .unwrap_err()
                .to_string()
                .contains("no input \"pixels\"")
        );
        let labels = ImportOptions {
            labels: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        assert!(
            card(&seed(), &labels)
                .unwrap_err()
                .to_string()
                .contains("2 labels")
        );
        let image = ImportOptions {
            image: Some(serde_json::from_str(r#"{"height":32,"width":32,"channels":3}"#).unwrap()),
            ..Default::default()
        };
        assert!(
            card(&seed(), &image)
                .unwrap_err()
                .to_string()
                .contains("image block")
        );
    }

    #[test]
    fn an_op_tract_lacks_is_named_with_its_node() {
        // mnist-seed with its Relu's op type renamed to one no ONNX runtime has.
        let mut onnx = seed();
        let at = onnx
            .windows(4)
            .position(|w| w == b"Relu")
            .expect("the seed model has a Relu");
        onnx[at..at + 4].copy_from_slice(b"Relx");
        let err = card(&onnx, &ImportOptions::default()).unwrap_err().to_string();
        assert!(err.contains("(Relx)") && err.contains("node"), "{err}");
    }
}
