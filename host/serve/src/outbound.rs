//! Outbound HTTP only to the manifest's `allowed_outbound_hosts`; `[]` means none at all.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

type SendResult = Result<(), wasmtime_wasi_http::Error>;
type IoFuture = Box<dyn Future<Output = SendResult> + Send>;
type ResponseFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>> + Send>;

#[derive(Clone)]
pub struct OutboundPolicy {
    allowed: Arc<Vec<String>>,
}

impl OutboundPolicy {
    pub fn new(allowed: &[String]) -> OutboundPolicy {
        OutboundPolicy {
            allowed: Arc::new(allowed.to_vec()),
        }
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        let Some(host) = uri.host() else { return false };
        let scheme = uri.scheme_str().unwrap_or("https");
        self.allowed.iter().any(|pattern| {
            pattern == "*://*:*"
                || pattern.split_once("://").is_some_and(|(s, h)| {
                    (s == "*" || s == scheme) && (h == "*" || h == host || h.split(':').next() == Some(host))
                })
        })
    }
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> ResponseFuture {
        if !self.allows(request.uri()) {
            tracing::warn!(uri = %request.uri(), "outbound request denied by allowed_outbound_hosts");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        _ = fut;
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as IoFuture))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_hosts_are_allowed() {
        let none = OutboundPolicy::new(&[]);
        assert!(!none.allows(&"https://example.com/".parse().unwrap()));
        let one = OutboundPolicy::new(&["https://example.com".into()]);
        assert!(one.allows(&"https://example.com/x".parse().unwrap()));
        assert!(!one.allows(&"http://example.com/x".parse().unwrap()));
        assert!(!one.allows(&"https://example.org/".parse().unwrap()));
        let all = OutboundPolicy::new(&["*://*:*".into()]);
        assert!(all.allows(&"http://anything:81/".parse().unwrap()));
    }
}
