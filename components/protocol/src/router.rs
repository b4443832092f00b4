//! Maps a request to its endpoint and runs it; every failure becomes a JSON error response.

use ::http::StatusCode;
use serde_json::json;

use crate::backend::Backend;
use crate::card::ModelCard;
use crate::error::ApiError;
use crate::http::{Request, Response};
use crate::{predict, v2};

#[derive(Debug, PartialEq)]
enum Route<'a> {
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
}

fn route(path: &str) -> Option<Route<'_>> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    Some(match segments.as_slice() {
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
    let card = backend
        .card(name)
        .ok_or_else(|| ApiError::not_found(format!("unknown model {name:?}")))?;
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
    let names = || backend.cards().iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    match route {
        Route::Healthz => Ok(Response::json(
            StatusCode::OK,
            &json!({ "status": "ok", "models": names() }),
        )),
        Route::Predict => predict::handle(backend, request),
        Route::Server => Ok(Response::json(StatusCode::OK, &v2::server_metadata())),
        Route::Live => Ok(Response::json(StatusCode::OK, &json!({ "live": true }))),
        Route::Ready => {
            for name in names() {
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
        assert_eq!(route("/"), None);
        assert_eq!(route("/nope"), None);
    }
}
