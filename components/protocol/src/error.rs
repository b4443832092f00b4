//! The one error type of the API: a status code and a message, sent as `{"error": "..."}`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// For 405: the methods the route accepts.
    pub allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            allow: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(400, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(404, message)
    }

    pub fn method_not_allowed(method: &str, allow: &'static str) -> ApiError {
        ApiError {
            allow: Some(allow),
            ..Self::new(
                405,
                format!("method {method} is not allowed here; allowed: {allow}"),
            )
        }
    }

    pub fn payload_too_large(limit: usize) -> ApiError {
        Self::new(413, format!("request body is larger than the {limit}-byte limit"))
    }

    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        Self::new(
            415,
            format!(
                "unsupported content type {content_type:?}; use application/json, image/png or image/jpeg"
            ),
        )
    }

    pub fn not_ready(message: impl Into<String>) -> ApiError {
        Self::new(503, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        Self::new(500, message)
    }

    /// The JSON body sent to the client.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "error": self.message })).expect("error serialises")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ApiError {}
