//! Tensors as every backend and the API exchange them: an element type, a shape and the
//! values as little-endian bytes (what ONNX, wasi-nn and the Open Inference Protocol's binary
//! extension all carry), so one type serves every element type a graph may have.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// An element type a graph's input or output may have, by its ONNX name in cards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Float16,
    Float32,
    Float64,
}

impl DType {
    pub const ALL: [DType; 12] = [
        DType::Bool,
        DType::Uint8,
        DType::Uint16,
        DType::Uint32,
        DType::Uint64,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
    ];

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::Uint8 | DType::Int8 => 1,
            DType::Uint16 | DType::Int16 | DType::Float16 => 2,
            DType::Uint32 | DType::Int32 | DType::Float32 => 4,
            DType::Uint64 | DType::Int64 | DType::Float64 => 8,
        }
    }

    /// Its name in the Open Inference Protocol (`FP32`, `INT64`, `BOOL`…).
    pub fn oip(self) -> &'static str {
        match self {
            DType::Bool => "BOOL",
            DType::Uint8 => "UINT8",
            DType::Uint16 => "UINT16",
            DType::Uint32 => "UINT32",
            DType::Uint64 => "UINT64",
            DType::Int8 => "INT8",
            DType::Int16 => "INT16",
            DType::Int32 => "INT32",
            DType::Int64 => "INT64",
            DType::Float16 => "FP16",
            DType::Float32 => "FP32",
            DType::Float64 => "FP64",
        }
    }

    /// The type of that Open Inference Protocol name.
    pub fn from_oip(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.oip() == name)
    }

    /// Its name in cards (ONNX's, lowercase).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::Uint8 => "uint8",
            DType::Uint16 => "uint16",
            DType::Uint32 => "uint32",
            DType::Uint64 => "uint64",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::Float16 => "float16",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;

    fn from_str(name: &str) -> Result<DType, String> {
        DType::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| format!("unknown element type {name:?}"))
    }
}

/// A named tensor: `shape` of `dtype`, its elements row-major in `data`, little-endian.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl Tensor {
    /// A tensor whose bytes must fill its shape exactly.
    pub fn new(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        data: Vec<u8>,
    ) -> Result<Tensor, ModelError> {
        let name = name.into();
        let elements = elements(&shape).ok_or_else(|| {
            ModelError::InvalidInput(format!("tensor {name:?}: shape {shape:?} is too large"))
        })?;
        if elements.checked_mul(dtype.size()) != Some(data.len()) {
            return Err(ModelError::InvalidInput(format!(
                "tensor {name:?}: {} bytes do not hold {elements} {dtype} values of shape {shape:?}",
                data.len()
            )));
        }
        Ok(Tensor {
            name,
            dtype,
            shape,
            data,
        })
    }

    /// A float32 tensor.
    pub fn from_f32(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: &[f32],
    ) -> Result<Tensor, ModelError> {
        Tensor::new(
            name,
            DType::Float32,
            shape,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// The values of a float32 tensor.
    pub fn to_f32(&self) -> Result<Vec<f32>, ModelError> {
        if self.dtype != DType::Float32 {
            return Err(ModelError::Failed(format!(
                "tensor {:?} is {}, not float32",
                self.name, self.dtype
            )));
        }
        Ok(self
            .data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    pub fn elements(&self) -> usize {
        self.data.len() / self.dtype.size()
    }
}

/// The number of elements of `shape`, unless it overflows.
pub fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for dtype in DType::ALL {
            assert_eq!(DType::from_oip(dtype.oip()), Some(dtype));
            assert_eq!(dtype.name().parse::<DType>(), Ok(dtype));
            let json = serde_json::to_string(&dtype).unwrap();
            assert_eq!(json, format!("\"{}\"", dtype.name()));
        }
        assert_eq!(DType::from_oip("BF16"), None);
    }

    #[test]
    fn a_tensor_must_fill_its_shape() {
        let t = Tensor::from_f32("x", vec![2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(t.to_f32().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(t.elements(), 4);
        let err = Tensor::new("x", DType::Int64, vec![2], vec![0; 15]).unwrap_err();
        assert!(matches!(err, ModelError::InvalidInput(_)), "{err}");
        let huge = Tensor::new("x", DType::Uint8, vec![usize::MAX, 2], vec![]).unwrap_err();
        assert!(huge.to_string().contains("too large"), "{huge}");
    }
}
