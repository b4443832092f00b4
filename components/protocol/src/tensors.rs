//! Tensor values as the Open Inference Protocol writes them in JSON: numbers (booleans for
//! `BOOL`), nested or flat, converted to and from the little-endian bytes a [`Tensor`] holds,
//! each checked against its element type's range.

use serde_json::{Number, Value};
use spinfer_model::{DType, Tensor};

use crate::error::ApiError;

/// The JSON value `value` (a number, or a boolean for `BOOL`) as `dtype`, appended to `out`.
fn push(dtype: DType, value: &Value, out: &mut Vec<u8>) -> Result<(), ApiError> {
    let bad = || ApiError::bad_request(format!("{value} is not a {} value", dtype.oip()));
    let int = |min: i128, max: i128| -> Result<i128, ApiError> {
        let n = match value {
            Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
            _ => None,
        };
        n.filter(|n| (min..=max).contains(n)).ok_or_else(bad)
    };
    let float = |max: f64| -> Result<f64, ApiError> {
        value
            .as_f64()
            .filter(|v| v.is_finite() && v.abs() <= max)
            .ok_or_else(bad)
    };
    match dtype {
        DType::Bool => out.push(match value {
            Value::Bool(b) => u8::from(*b),
            _ => int(0, 1)? as u8,
        }),
        DType::Uint8 => out.push(int(0, u8::MAX.into())? as u8),
        DType::Uint16 => out.extend((int(0, u16::MAX.into())? as u16).to_le_bytes()),
        DType::Uint32 => out.extend((int(0, u32::MAX.into())? as u32).to_le_bytes()),
        DType::Uint64 => out.extend((int(0, u64::MAX.into())? as u64).to_le_bytes()),
        DType::Int8 => out.push(int(i8::MIN.into(), i8::MAX.into())? as i8 as u8),
        DType::Int16 => out.extend((int(i16::MIN.into(), i16::MAX.into())? as i16).to_le_bytes()),
        DType::Int32 => out.extend((int(i32::MIN.into(), i32::MAX.into())? as i32).to_le_bytes()),
        DType::Int64 => out.extend((int(i64::MIN.into(), i64::MAX.into())? as i64).to_le_bytes()),
        DType::Float16 => out.extend(half::f16::from_f64(float(f64::from(half::f16::MAX))?).to_le_bytes()),
        DType::Float32 => out.extend((float(f64::from(f32::MAX))? as f32).to_le_bytes()),
        DType::Float64 => out.extend(float(f64::MAX)?.to_le_bytes()),
    }
    Ok(())
}

/// The values of `data` (nested arrays flattened, row-major) as `dtype` bytes; at most `limit`
/// values are read before the request is refused.
pub fn from_json(dtype: DType, data: &Value, limit: usize) -> Result<Vec<u8>, ApiError> {
    fn walk(dtype: DType, value: &Value, out: &mut Vec<u8>, limit: usize) -> Result<(), ApiError> {
        match value {
            Value::Array(items) => items.iter().try_for_each(|item| walk(dtype, item, out, limit)),
            Value::Number(_) | Value::Bool(_) => {
                if out.len() / dtype.size() >= limit {
                    return Err(ApiError::bad_request(format!(
                        "tensor data holds more than the {limit} values its shape needs"
                    )));
                }
                push(dtype, value, out)
            }
            other => Err(ApiError::bad_request(format!(
                "tensor data must hold numbers, found {other}"
            ))),
        }
    }
    let mut out = Vec::with_capacity(limit.min(1 << 20) * dtype.size());
    walk(dtype, data, &mut out, limit)?;
    Ok(out)
}

/// Refuses binary data a JSON request could not have sent: non-finite floats, booleans other
/// than 0 and 1.
pub fn check_binary(dtype: DType, name: &str, data: &[u8]) -> Result<(), ApiError> {
    let bad =
        |i: usize, what: &str| ApiError::bad_request(format!("binary input {name:?}: value {i} is {what}"));
    match dtype {
        DType::Bool => match data.iter().position(|&b| b > 1) {
            Some(i) => Err(bad(i, "not 0 or 1")),
            None => Ok(()),
        },
        DType::Float16 => check_finite(
            data,
            2,
            |b| half::f16::from_le_bytes([b[0], b[1]]).is_finite(),
            bad,
        ),
        DType::Float32 => check_finite(
            data,
            4,
            |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite(),
            bad,
        ),
        DType::Float64 => check_finite(
            data,
            8,
            |b| f64::from_le_bytes(b.try_into().expect("8 bytes")).is_finite(),
            bad,
        ),
        _ => Ok(()),
    }
}

fn check_finite(
    data: &[u8],
    size: usize,
    finite: impl Fn(&[u8]) -> bool,
    bad: impl Fn(usize, &str) -> ApiError,
) -> Result<(), ApiError> {
    match data.chunks_exact(size).position(|b| !finite(b)) {
        Some(i) => Err(bad(i, "not finite")),
        None => Ok(()),
    }
}

/// The values of `tensor` as a flat JSON array.
pub fn to_json(tensor: &Tensor) -> Value {
    let size = tensor.dtype.size();
    let values = tensor.data.chunks_exact(size).map(|b| match tensor.dtype {
        DType::Bool => Value::Bool(b[0] != 0),
        DType::Uint8 => b[0].into(),
        DType::Uint16 => u16::from_le_bytes([b[0], b[1]]).into(),
        DType::Uint32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]).into(),
        DType::Uint64 => u64::from_le_bytes(b.try_into().expect("8 bytes")).into(),
        DType::Int8 => (b[0] as i8).into(),
        DType::Int16 => i16::from_le_bytes([b[0], b[1]]).into(),
        DType::Int32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]).into(),
        DType::Int64 => i64::from_le_bytes(b.try_into().expect("8 bytes")).into(),
        DType::Float16 => float(f64::from(half::f16::from_le_bytes([b[0], b[1]]))),
        // As f32 (not widened), so that JSON shows the value the model computed.
        DType::Float32 => {
            serde_json::to_value(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(Value::Null)
        }
        DType::Float64 => float(f64::from_le_bytes(b.try_into().expect("8 bytes"))),
    });
    Value::Array(values.collect())
}

/// A float as JSON; `null` where JSON has no number (NaN, infinities).
fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_round_trips_through_json() {
        let cases = [
            (DType::Bool, json!([true, false, 1])),
            (DType::Uint8, json!([0, 255])),
            (DType::Int8, json!([-128, 127])),
            (DType::Uint16, json!([65535])),
            (DType::Int16, json!([-32768])),
            (DType::Uint32, json!([4294967295u64])),
            (DType::Int32, json!([-5, 7])),
            (DType::Uint64, json!([u64::MAX])),
            (DType::Int64, json!([[i64::MIN], [i64::MAX]])),
            (DType::Float16, json!([0.5, -2.0])),
            (DType::Float32, json!([0.1, -3.5])),
            (DType::Float64, json!([0.1, 1e300])),
        ];
        for (dtype, data) in cases {
            let bytes = from_json(dtype, &data, 10).unwrap();
            let n = bytes.len() / dtype.size();
            let tensor = Tensor::new("t", dtype, vec![n], bytes).unwrap();
            let back = to_json(&tensor);
            let again = from_json(dtype, &back, 10).unwrap();
            assert_eq!(again, tensor.data, "{dtype}: {back}");
        }
        let f32s = to_json(&Tensor::from_f32("t", vec![1], &[0.1]).unwrap());
        assert_eq!(f32s, json!([0.1f32]));
    }

    #[test]
    fn values_out_of_range_or_of_the_wrong_kind_are_refused() {
        for (dtype, data) in [
            (DType::Uint8, json!([256])),
            (DType::Uint8, json!([-1])),
            (DType::Int8, json!([1.5])),
            (DType::Int32, json!(["1"])),
            (DType::Bool, json!([2])),
            (DType::Float16, json!([1e6])),
            (DType::Float32, json!([1e39])),
            (DType::Float32, json!([null])),
        ] {
            let err = from_json(dtype, &data, 10).unwrap_err();
            assert_eq!(err.status, 400, "{dtype} {data}");
        }
        let err = from_json(DType::Float32, &json!([1, 2, 3]), 2).unwrap_err();
        assert!(err.message.contains("more than the 2 values"), "{err}");
    }

    #[test]
    fn binary_floats_must_be_finite_and_booleans_bits() {
        let nan = f32::NAN.to_le_bytes();
        assert!(check_binary(DType::Float32, "x", &nan).is_err());
        assert!(check_binary(DType::Float32, "x", &1.0f32.to_le_bytes()).is_ok());
        assert!(check_binary(DType::Float16, "x", &half::f16::INFINITY.to_le_bytes()).is_err());
        assert!(check_binary(DType::Bool, "x", &[0, 1, 2]).is_err());
        assert!(check_binary(DType::Int32, "x", &[0xff; 8]).is_ok());
    }
}
