//! The headers Spin's HTTP trigger gives every request, with Spin's values, replacing any a
//! client sent under the same names (a client cannot spoof them).

use http::{HeaderMap, HeaderValue, Uri};

use crate::Connection;
use crate::manifest::Route;

pub const FULL_URL: &str = "spin-full-url";
pub const PATH_INFO: &str = "spin-path-info";
pub const MATCHED_ROUTE: &str = "spin-matched-route";
pub const BASE_PATH: &str = "spin-base-path";
pub const COMPONENT_ROUTE: &str = "spin-component-route";
pub const RAW_COMPONENT_ROUTE: &str = "spin-raw-component-route";
pub const CLIENT_ADDR: &str = "spin-client-addr";

/// The app's base path; Spin 2+ manifests have no other.
const BASE: &str = "/";

/// `(name, value)` of each header for a request to `uri` that `route` (written `raw` in the
/// manifest) matched.
pub fn values(
    uri: &Uri,
    host: &str,
    raw: &str,
    route: &Route,
    connection: &Connection,
) -> [(&'static str, String); 7] {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    [
        (
            FULL_URL,
            format!("{}://{host}{path_and_query}", connection.scheme),
        ),
        (PATH_INFO, route.path_info(uri.path()).to_string()),
        (MATCHED_ROUTE, raw.to_string()),
        (BASE_PATH, BASE.to_string()),
        (COMPONENT_ROUTE, route.component_route().to_string()),
        (RAW_COMPONENT_ROUTE, raw.to_string()),
        (CLIENT_ADDR, connection.client.to_string()),
    ]
}

/// Sets the headers on a request's `headers`, replacing what the client sent.
pub fn apply(headers: &mut HeaderMap, uri: &Uri, raw: &str, route: &Route, connection: &Connection) {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    for (name, value) in values(uri, &host, raw, route, connection) {
        // Every part is a URI piece, a route from the manifest or an address: valid header text.
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        } else {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        Connection {
            client: "127.0.0.1:8777".parse().unwrap(),
            scheme: "https",
        }
    }

    #[test]
    fn values_are_spins_for_a_wildcard_route() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("fermyon.dev"));
        // A client's attempt to set them is replaced.
        headers.insert(PATH_INFO, HeaderValue::from_static("/spoofed"));
        headers.append(CLIENT_ADDR, HeaderValue::from_static("10.0.0.1:1"));
        headers.append(CLIENT_ADDR, HeaderValue::from_static("10.0.0.2:2"));
        let uri: Uri = "/foo/bar?key1=value1".parse().unwrap();
        apply(
            &mut headers,
            &uri,
            "/foo/...",
            &Route::parse("/foo/..."),
            &connection(),
        );
        let get = |name: &str| {
            let values: Vec<_> = headers.get_all(name).iter().collect();
            assert_eq!(values.len(), 1, "{name}");
            values[0].to_str().unwrap().to_string()
        };
        assert_eq!(get(FULL_URL), "https://fermyon.dev/foo/bar?key1=value1");
        assert_eq!(get(PATH_INFO), "/bar");
        assert_eq!(get(MATCHED_ROUTE), "/foo/...");
        assert_eq!(get(BASE_PATH), "/");
        assert_eq!(get(RAW_COMPONENT_ROUTE), "/foo/...");
        assert_eq!(get(COMPONENT_ROUTE), "/foo");
        assert_eq!(get(CLIENT_ADDR), "127.0.0.1:8777");
    }

    #[test]
    fn the_catch_all_and_exact_routes() {
        let all = values(
            &"/predict".parse().unwrap(),
            "h",
            "/...",
            &Route::parse("/..."),
            &connection(),
        );
        assert_eq!(all[1], (PATH_INFO, "/predict".into()));
        assert_eq!(all[4], (COMPONENT_ROUTE, "".into()));
        let exact = values(
            &"/healthz".parse().unwrap(),
            "h",
            "/healthz",
            &Route::parse("/healthz"),
            &connection(),
        );
        assert_eq!(exact[1], (PATH_INFO, "".into()));
        assert_eq!(exact[4], (COMPONENT_ROUTE, "/healthz".into()));
    }
}
