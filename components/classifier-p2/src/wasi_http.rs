//! `wasi:http` 0.2.0's request and response resources as the `http` crate's types: the request
//! body as an `http_body::Body` read with blocking reads, and the response written out in the
//! chunks an output stream takes.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};
use wasi::io::streams::{InputStream, StreamError};

/// How much one read of the request body asks for.
const READ_CHUNK: u64 = 64 * 1024;
/// The most an output stream takes in one `blocking-write-and-flush`.
const WRITE_CHUNK: usize = 4096;

/// An incoming request's body. The stream is a child of the body, so it is dropped first.
pub struct RequestBody {
    stream: InputStream,
    _body: IncomingBody,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = String;

    /// Blocks until some bytes arrive or the body ends, so it is never pending.
    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, String>>> {
        Poll::Ready(match self.stream.blocking_read(READ_CHUNK) {
            Ok(bytes) => Some(Ok(Frame::data(Bytes::from(bytes)))),
            Err(StreamError::Closed) => None,
            Err(StreamError::LastOperationFailed(error)) => Some(Err(error.to_debug_string())),
        })
    }
}

/// The host's request as an `http::Request` whose body streams from it; why not, when the
/// `http` crate refuses its method, target or a header.
pub fn request(incoming: IncomingRequest) -> Result<http::Request<RequestBody>, String> {
    let method = match incoming.method() {
        Method::Get => http::Method::GET,
        Method::Head => http::Method::HEAD,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Delete => http::Method::DELETE,
        Method::Connect => http::Method::CONNECT,
        Method::Options => http::Method::OPTIONS,
        Method::Trace => http::Method::TRACE,
        Method::Patch => http::Method::PATCH,
        Method::Other(other) => {
            http::Method::from_bytes(other.as_bytes()).map_err(|e| format!("invalid method: {e}"))?
        }
    };
    let uri = incoming.path_with_query().unwrap_or_else(|| "/".to_string());
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in incoming.headers().entries() {
        builder = builder.header(name, value);
    }
    let body = incoming
        .consume()
        .map_err(|()| "the request body was taken".to_string())?;
    let stream = body
        .stream()
        .map_err(|()| "the request body's stream was taken".to_string())?;
    let body = RequestBody { stream, _body: body };
    builder.body(body).map_err(|e| format!("invalid request: {e}"))
}

/// The response with its whole body (the protocol's answers are built in memory).
pub async fn collect(response: http::Response<Full<Bytes>>) -> http::Response<Bytes> {
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    http::Response::from_parts(parts, bytes)
}

/// Sends `response` to the host: status and headers, then the body, in the chunks an output
/// stream takes. A client that has gone stops the writing; nothing is left to tell it.
pub fn send(response: http::Response<Bytes>, out: ResponseOutparam) {
    let (parts, body) = response.into_parts();
    let entries: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect();
    let headers = match Fields::from_list(&entries) {
        Ok(headers) => headers,
        Err(error) => return ResponseOutparam::set(out, Err(internal(format!("{error:?}")))),
    };
    let outgoing = OutgoingResponse::new(headers);
    if outgoing.set_status_code(parts.status.as_u16()).is_err() {
        return ResponseOutparam::set(out, Err(internal("invalid status code")));
    }
    let Ok(outgoing_body) = outgoing.body() else {
        return ResponseOutparam::set(out, Err(internal("the response body was taken")));
    };
    ResponseOutparam::set(out, Ok(outgoing));
    if let Ok(stream) = outgoing_body.write() {
        for chunk in body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    // The host has the status and headers; a body it cannot finish is its to report.
    let _ = OutgoingBody::finish(outgoing_body, None);
}

fn internal(message: impl Into<String>) -> ErrorCode {
    ErrorCode::InternalError(Some(message.into()))
}
