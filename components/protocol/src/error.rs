//! The one error type of the API: a status code and a message, sent as `{"error": "..."}`.

use std::fmt;

use ::http::StatusCode;
use spinfer_model::ModelError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// For 405: the methods the route accepts.
    pub allow: Option<&'static str>,
}

/// The longest message sent, in characters: a message that quotes what the client sent (a
/// model name, a JSON parser's excerpt) never echoes more than a short prefix of it.
pub const MAX_MESSAGE_CHARS: usize = 240;

impl ApiError {
    /// An error of any status; the message is cut to [`MAX_MESSAGE_CHARS`].
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        let mut message = message.into();
        if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
            message.truncate(cut);
            message.push('…');
        }
        ApiError {
            status,
            message,
            allow: None,
        }
    }

    /// 400: the request is malformed or its values are out of range.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such route, model or version.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 405, with the `Allow` header's methods.
    pub fn method_not_allowed(method: &str, allow: &'static str) -> ApiError {
        ApiError {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} is not allowed here; allowed: {allow}"),
            )
        }
    }

    /// 413: the body is over the limit.
    pub fn payload_too_large(limit: usize) -> ApiError {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the {limit}-byte limit"),
        )
    }

    /// 415: a content type the API does not read.
    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type {content_type:?}; use application/json, image/png or image/jpeg"
            ),
        )
    }

    /// 500: the server failed; the message names what, never a host path.
    pub fn internal(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 503: the model (or the server) cannot serve now.
    pub fn not_ready(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// The JSON body sent to the client.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "error": self.message })).expect("error serialises")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status.as_u16())
    }
}

impl std::error::Error for ApiError {}

/// A backend's error, answered with its status: 404, 400, 503 or 500.
impl From<ModelError> for ApiError {
    fn from(error: ModelError) -> ApiError {
        match error {
            ModelError::NotFound(message) => ApiError::not_found(message),
            ModelError::InvalidInput(message) => ApiError::bad_request(message),
            ModelError::NotReady(message) => ApiError::not_ready(message),
            ModelError::Failed(message) => ApiError::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_to_a_prefix() {
        let echo = ApiError::not_found(format!("unknown model {:?}", "é".repeat(10_000)));
        assert_eq!(echo.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(echo.message.ends_with('…'));
        assert_eq!(ApiError::bad_request("short").message, "short");
    }
}
