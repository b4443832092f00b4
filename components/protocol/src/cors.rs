//! Cross-origin callers: which origins a deployer allows (the `allowed_origins` Spin variable,
//! none by default), the answer to a CORS preflight, and the headers every other answer gets.

use ::http::StatusCode;

use crate::http::{Request, Response};
use crate::{BINARY_HEADER, MODEL_HEADER, REQUEST_ID_HEADER, SERVER_TIMING_HEADER};

/// The methods the API has.
const METHODS: &str = "GET, POST, OPTIONS";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// Request headers a caller may send beyond the CORS-safelisted ones.
fn allowed_headers() -> String {
    format!("content-type, {BINARY_HEADER}, {REQUEST_ID_HEADER}")
}

/// Response headers a cross-origin script may read.
fn exposed_headers() -> String {
    format!("{SERVER_TIMING_HEADER}, {BINARY_HEADER}, {MODEL_HEADER}, {REQUEST_ID_HEADER}")
}

/// The origins allowed to call the API from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Same-origin only: no CORS headers at all (the default).
    #[default]
    None,
    /// `*`: any origin (the API takes no cookies, so no credentials are involved).
    Any,
    /// These exact origins (`scheme://host[:port]`, compared case-insensitively).
    List(Vec<String>),
}

impl AllowedOrigins {
    /// The variable's value: origins separated by commas or spaces, `*` for any; empty for none.
    pub fn parse(value: &str) -> AllowedOrigins {
        let origins: Vec<String> = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
            .filter(|origin| !origin.is_empty())
            .collect();
        if origins.iter().any(|origin| origin == "*") {
            AllowedOrigins::Any
        } else if origins.is_empty() {
            AllowedOrigins::None
        } else {
            AllowedOrigins::List(origins)
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if it is allowed.
    fn allow(&self, origin: Option<&str>) -> Option<String> {
        let origin = origin?;
        match self {
            AllowedOrigins::None => None,
            AllowedOrigins::Any => Some("*".into()),
            AllowedOrigins::List(list) => list
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
                .then(|| origin.to_string()),
        }
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), or
    /// `None` when `request` is not one. A preflight from an origin that is not allowed gets a
    /// 204 without CORS headers, so the browser stops there.
    pub fn preflight(&self, request: &Request) -> Option<Response> {
        if !request.method.eq_ignore_ascii_case("OPTIONS") {
            return None;
        }
        request.cors_request_method?;
        let mut response = Response {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: Vec::new(),
        };
        if let Some(allow) = self.allow(request.origin) {
            response.headers.extend([
                ("access-control-allow-origin".to_string(), allow),
                ("access-control-allow-methods".into(), METHODS.into()),
                ("access-control-allow-headers".into(), allowed_headers()),
                ("access-control-max-age".into(), MAX_AGE.into()),
            ]);
        }
        Some(self.vary(response))
    }

    /// Adds the CORS headers an answer to `origin` carries (and `Vary: Origin` whenever the
    /// answer depends on it).
    pub fn decorate(&self, origin: Option<&str>, response: Response) -> Response {
        let response = match self.allow(origin) {
            Some(allow) => response
                .with_header("access-control-allow-origin", allow)
                .with_header("access-control-expose-headers", exposed_headers()),
            None => response,
        };
        self.vary(response)
    }

    fn vary(&self, response: Response) -> Response {
        match self {
            AllowedOrigins::List(_) => response.with_header("vary", "origin".into()),
            AllowedOrigins::None | AllowedOrigins::Any => response,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight<'a>(origin: &'a str) -> Request<'a> {
        Request {
            method: "OPTIONS",
            path: "/predict",
            origin: Some(origin),
            cors_request_method: Some("POST"),
            ..Default::default()
        }
    }

    #[test]
    fn the_variable_parses() {
        assert_eq!(AllowedOrigins::parse(""), AllowedOrigins::None);
        assert_eq!(AllowedOrigins::parse(" , "), AllowedOrigins::None);
        assert_eq!(AllowedOrigins::parse("*"), AllowedOrigins::Any);
        assert_eq!(
            AllowedOrigins::parse("https://a.example, HTTP://B.example:8080/"),
            AllowedOrigins::List(vec!["https://a.example".into(), "http://b.example:8080".into()])
        );
    }

    #[test]
    fn no_origin_is_allowed_by_default() {
        let none = AllowedOrigins::default();
        let answer = none.preflight(&preflight("https://a.example")).unwrap();
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        assert_eq!(answer.header("access-control-allow-origin"), None);
        let plain = none.decorate(Some("https://a.example"), Response::json(StatusCode::OK, &1));
        assert_eq!(plain.header("access-control-allow-origin"), None);
    }

    #[test]
    fn listed_origins_get_their_own_origin_back() {
        let list = AllowedOrigins::parse("https://a.example");
        let answer = list.preflight(&preflight("https://a.example")).unwrap();
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some("https://a.example")
        );
        assert_eq!(answer.header("access-control-allow-methods"), Some(METHODS));
        assert_eq!(answer.header("vary"), Some("origin"));
        let other = list.preflight(&preflight("https://evil.example")).unwrap();
        assert_eq!(other.header("access-control-allow-origin"), None);
        let ok = list.decorate(Some("https://a.example"), Response::json(StatusCode::OK, &1));
        assert_eq!(
            ok.header("access-control-allow-origin"),
            Some("https://a.example")
        );
        assert_eq!(
            ok.header("access-control-expose-headers"),
            Some(exposed_headers().as_str())
        );
    }

    #[test]
    fn only_a_preflight_is_answered_here() {
        let any = AllowedOrigins::Any;
        let plain_options = Request {
            method: "OPTIONS",
            ..Default::default()
        };
        assert!(any.preflight(&plain_options).is_none());
        let get = Request {
            method: "GET",
            origin: Some("https://a.example"),
            cors_request_method: Some("GET"),
            ..Default::default()
        };
        assert!(any.preflight(&get).is_none());
        let answer = any.preflight(&preflight("https://x.example")).unwrap();
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    }
}
