//! Maps a request to its endpoint and runs it; every failure becomes a JSON error response.
//! The page and the OpenAPI description are compiled in, so nothing but `/models` is mounted.

use ::http::StatusCode;
use serde_json::json;

use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::{predict, v2};
use spinfer_model::Backend;
use spinfer_model::ModelCard;

/// The draw-a-digit page served at `/`.
const PAGE: &str = include_str!("../assets/index.html");
/// The OpenAPI 3 description served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../assets/openapi.json");

#[derive(Debug, PartialEq)]
enum Route<'a> {
    Page,
    OpenApi,
    Healthz,
    Predict,
    Server,
    Live,
    Ready,
    Model { name: &'a str, version: Option<&'a str> },
    ModelReady { name: &'a str, version: Option<&'a str> },
    Infer { name: &'a str, version: Option<&'a str> },
}

impl Route<'_> {
    fn allow(&self) -> &'static str {
        match self {
            Route::Predict | Route::Infer { .. } => "POST",
            _ => "GET",
        }
    }

    /// The route's template: a label with few values, for metrics.
    fn template(&self) -> &'static str {
        match self {
            Route::Page => "/",
            Route::OpenApi => "/openapi.json",
            Route::Healthz => "/healthz",
            Route::Predict => "/predict",
            Route::Server => "/v2",
            Route::Live => "/v2/health/live",
            Route::Ready => "/v2/health/ready",
            Route::Model { .. } => "/v2/models/{name}",
            Route::ModelReady { .. } => "/v2/models/{name}/ready",
            Route::Infer { .. } => "/v2/models/{name}/infer",
        }
    }
}

/// The template of the API route `path` goes to (`/v2/models/{name}/infer`), if any: the
/// runner labels its metrics with it.
pub fn route_template(path: &str) -> Option<&'static str> {
    route(path).map(|route| route.template())
}

fn route(path: &str) -> Option<Route<'_>> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    Some(match segments.as_slice() {
        [] => Route::Page,
        ["openapi.json"] => Route::OpenApi,
        ["healthz"] => Route::Healthz,
        ["predict"] => Route::Predict,
        ["v2"] => Route::Server,
        ["v2", "health", "live"] => Route::Live,
        ["v2", "health", "ready"] => Route::Ready,
        ["v2", "models", name, rest @ ..] => {
            let (version, rest) = match rest {
                ["versions", v, rest @ ..] => (Some(*v), rest),
                _ => (None, rest),
            };
            match rest {
                [] => Route::Model { name, version },
                ["ready"] => Route::ModelReady { name, version },
                ["infer"] => Route::Infer { name, version },
                _ => return None,
            }
        }
        _ => return None,
    })
}

fn model<'b>(backend: &'b dyn Backend, name: &str, version: Option<&str>) -> Result<&'b ModelCard, ApiError> {
    let card = backend.card(name).ok_or_else(|| backend.unknown(name))?;
    match version {
        Some(v) if v != card.version => Err(ApiError::not_found(format!(
            "model {name:?} has no version {v:?} (served: {:?})",
            card.version
        ))),
        _ => Ok(card),
    }
}

fn dispatch(backend: &dyn Backend, request: &Request) -> Result<Response, ApiError> {
    let route =
        route(request.path).ok_or_else(|| ApiError::not_found(format!("no route for {}", request.path)))?;
    if !request.method.eq_ignore_ascii_case(route.allow()) {
        return Err(ApiError::method_not_allowed(request.method, route.allow()));
    }
    match route {
        Route::Page => Ok(Response::asset("text/html; charset=utf-8", PAGE)),
        Route::OpenApi => Ok(Response::asset("application/json", OPENAPI)),
        Route::Healthz => Ok(Response::json(
            StatusCode::OK,
            &json!({ "status": "ok", "models": backend.names(), "default": backend.default_model() }),
        )),
        Route::Predict => predict::handle(backend, request),
        Route::Server => Ok(Response::json(StatusCode::OK, &v2::server_metadata())),
        Route::Live => Ok(Response::json(StatusCode::OK, &json!({ "live": true }))),
        Route::Ready => {
            for name in backend.names() {
                backend.ready(&name)?;
            }
            Ok(Response::json(StatusCode::OK, &json!({ "ready": true })))
        }
        Route::Model { name, version } => Ok(Response::json(
            StatusCode::OK,
            &v2::model_metadata(model(backend, name, version)?),
        )),
        Route::ModelReady { name, version } => {
            let card = model(backend, name, version)?;
            backend.ready(&card.name)?;
            Ok(Response::json(
                StatusCode::OK,
                &json!({ "name": card.name, "ready": true }),
            ))
        }
        Route::Infer { name, version } => v2::infer(backend, model(backend, name, version)?, request),
    }
}

/// The whole API: one request in, one response out, never a panic for bad input.
pub fn handle(backend: &dyn Backend, request: &Request) -> Response {
    dispatch(backend, request).unwrap_or_else(|error| Response::error(&error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/healthz"), Some(Route::Healthz));
        assert_eq!(route("/predict/"), Some(Route::Predict));
        assert_eq!(
            route("/v2/models/m/versions/1/infer"),
            Some(Route::Infer {
                name: "m",
                version: Some("1")
            })
        );
        assert_eq!(
            route("/v2/models/m/ready"),
            Some(Route::ModelReady {
                name: "m",
                version: None
            })
        );
        assert_eq!(
            route("/v2/models/m"),
            Some(Route::Model {
                name: "m",
                version: None
            })
        );
        assert_eq!(route("/v2/models/m/other"), None);
        assert_eq!(route("/"), Some(Route::Page));
        assert_eq!(route("/nope"), None);
    }

    #[test]
    fn templates_name_routes_not_paths() {
        assert_eq!(
            route_template("/v2/models/mnist-cnn/infer"),
            Some("/v2/models/{name}/infer")
        );
        assert_eq!(
            route_template("/v2/models/x/versions/1/ready"),
            Some("/v2/models/{name}/ready")
        );
        assert_eq!(route_template("/predict"), Some("/predict"));
        assert_eq!(route_template("/etc/passwd"), None);
    }

    #[test]
    fn the_page_and_the_description_are_served() {
        struct NoModels;
        impl Backend for NoModels {
            fn cards(&self) -> Vec<&ModelCard> {
                Vec::new()
            }
            fn default_model(&self) -> Option<&str> {
                None
            }
            fn ready(&self, _: &str) -> Result<(), spinfer_model::ModelError> {
                Ok(())
            }
            fn run(
                &self,
                _: &str,
                _: Vec<spinfer_model::Tensor>,
            ) -> Result<Vec<spinfer_model::Tensor>, spinfer_model::ModelError> {
                Err(spinfer_model::ModelError::NotReady("no models".into()))
            }
        }
        let get = |path| {
            handle(
                &NoModels,
                &Request {
                    method: "GET",
                    path,
                    ..Default::default()
                },
            )
        };
        let page = get("/");
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(
            page.body.len() < 50 * 1024,
            "the page is {} bytes",
            page.body.len()
        );
        let description: serde_json::Value = serde_json::from_slice(&get("/openapi.json").body).unwrap();
        assert_eq!(description["openapi"], "3.0.3");
        // Every route the router has is described (the version forms share their paths).
        for path in [
            "/",
            "/openapi.json",
            "/healthz",
            "/predict",
            "/v2",
            "/v2/health/live",
            "/v2/health/ready",
        ] {
            assert!(description["paths"][path].is_object(), "{path} is not described");
            assert_eq!(route_template(path), Some(path));
        }
        for path in [
            "/v2/models/{name}",
            "/v2/models/{name}/ready",
            "/v2/models/{name}/infer",
        ] {
            assert!(description["paths"][path].is_object(), "{path} is not described");
        }
        let post = handle(
            &NoModels,
            &Request {
                method: "POST",
                path: "/",
                ..Default::default()
            },
        );
        assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
