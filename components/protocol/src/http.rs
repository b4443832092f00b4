//! The host-independent request and response that every server adapter converts to and from.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ::http::StatusCode;

use crate::BINARY_HEADER;
use crate::error::ApiError;

#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub content_type: Option<&'a str>,
    /// `Inference-Header-Content-Length` of the binary tensor extension.
    pub inference_header_length: Option<&'a str>,
    /// `Origin`, for CORS.
    pub origin: Option<&'a str>,
    /// `Access-Control-Request-Method`: set on a CORS preflight.
    pub cors_request_method: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The request an HTTP server received, with its body already read.
    pub fn from_parts(parts: &'a ::http::request::Parts, body: &'a [u8]) -> Request<'a> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            content_type: header("content-type"),
            inference_header_length: header(BINARY_HEADER),
            origin: header("origin"),
            cors_request_method: header("access-control-request-method"),
            body,
        }
    }

    /// The first value of a query parameter, percent-decoded (`+` is a space), as a form
    /// would send it.
    pub fn query_param(&self, key: &str) -> Option<Cow<'a, str>> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The media type without parameters, lowercased.
    pub fn media_type(&self) -> Option<String> {
        self.content_type
            .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .filter(|ct| !ct.is_empty())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: StatusCode,
    /// Content-Type and any other headers, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).expect("responses serialise"),
        }
    }

    /// A fixed document compiled into the component (the page, the OpenAPI description).
    pub fn asset(content_type: &str, body: &'static str) -> Response {
        Response {
            status: StatusCode::OK,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn error(error: &ApiError) -> Response {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(allow) = error.allow {
            headers.push(("allow".into(), allow.into()));
        }
        Response {
            status: error.status,
            headers,
            body: error.body(),
        }
    }

    /// As an `http` response, for whichever server sends it.
    pub fn into_http(self) -> ::http::Response<Vec<u8>> {
        let mut builder = ::http::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(self.body)
            .expect("statuses and headers made by this crate are valid")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn with_header(mut self, name: &str, value: String) -> Response {
        self.headers.push((name.into(), value));
        self
    }
}

/// Durations that go into the `server-timing` header.
#[derive(Clone, Debug, Default)]
pub struct Timing {
    pub decode: Duration,
    pub infer: Duration,
}

impl Timing {
    pub fn between(started: Instant, decoded: Instant, done: Instant) -> Timing {
        Timing {
            decode: decoded - started,
            infer: done - decoded,
        }
    }

    pub fn header(&self) -> String {
        format!(
            "{}, {}",
            server_timing("decode", self.decode),
            server_timing(INFER_TIMING, self.infer)
        )
    }
}

/// The `server-timing` metric that carries the model's run (the runner's inference histogram).
pub const INFER_TIMING: &str = "infer";

/// One `server-timing` metric (`name;dur=<ms>`): each layer that serves a request (the host,
/// the component, the API) adds its own `server-timing` header, so a client sees where the time
/// went.
pub fn server_timing(name: &str, duration: Duration) -> String {
    format!("{name};dur={:.3}", duration.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_metrics_are_written() {
        let timing = Timing {
            decode: Duration::from_micros(125),
            infer: Duration::from_micros(350),
        };
        assert_eq!(timing.header(), "decode;dur=0.125, infer;dur=0.350");
    }
}
