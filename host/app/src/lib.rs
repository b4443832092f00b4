//! Spinfer composed on the runner, as `wasmtime serve` composes wasi-http and wasi-nn: what
//! the runner (`spinfer-serve`) is told of Spinfer's app, and nothing else.
//!
//! - metrics name the API's routes by their templates (`/v2/models/{name}/infer`);
//! - the component names the model that answered in `spinfer-model`, and reports its
//!   inference time as the `infer` metric of `server-timing`;
//! - the runner's own errors are the API's JSON errors;
//! - the folder mounted at `/models` is checked in full when a component is loaded;
//! - `wasi:nn` serves those models with `spinfer-nn`'s backends.

use std::sync::Arc;

use anyhow::{Context, Result};
use http::HeaderName;
use spinfer_catalog::Catalog;
use spinfer_model::contract::MODELS_DIR;
use spinfer_nn::NnOptions;
use spinfer_protocol::http::INFER_TIMING;
use spinfer_protocol::{ApiError, MAX_BODY_BYTES, MODEL_HEADER, router};
use spinfer_serve::nn::{NnLoader, NnSettings};
use spinfer_serve::{AppOptions, Hooks, MountCheck, RouteLabels};

/// What the runner is told of Spinfer's app.
pub fn hooks() -> Hooks {
    Hooks {
        route_labels: Some(RouteLabels::new(router::route_template)),
        model_header: Some(HeaderName::from_static(MODEL_HEADER)),
        inference_timing: Some(INFER_TIMING),
        error_body: Some(Arc::new(|status, message| {
            ("application/json", ApiError::new(status, message).body())
        })),
        // A missing, truncated or replaced model stops the start, named.
        mount_checks: vec![MountCheck::new(MODELS_DIR, |models| {
            Catalog::verify(models)?;
            Ok(())
        })],
        nn: Some(NnLoader::new(|mounts, settings| {
            let models = mounts
                .host_dir(MODELS_DIR)
                .with_context(|| format!("wasi-nn serves the models mounted at {MODELS_DIR}"))?;
            spinfer_nn::load(&models, &nn_options(settings)?)
        })),
    }
}

/// The runner's defaults, with Spinfer's hooks and body limit.
pub fn options() -> AppOptions {
    AppOptions {
        max_body: MAX_BODY_BYTES,
        hooks: hooks(),
        ..AppOptions::default()
    }
}

/// The backend and target a component's settings name (the CPU when no target is named).
pub fn nn_options(settings: &NnSettings) -> Result<NnOptions> {
    Ok(NnOptions {
        backend: settings.backend.parse().map_err(anyhow::Error::msg)?,
        target: match &settings.target {
            Some(target) => target.parse().map_err(anyhow::Error::msg)?,
            None => spinfer_nn::NnTarget::Cpu,
        },
    })
}

/// The settings that ask for `options`, as `spinfer up --nn` overrides the manifest's.
pub fn nn_settings(options: NnOptions) -> NnSettings {
    NnSettings {
        backend: options.backend.to_string(),
        target: Some(options.target.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinfer_nn::{NnBackend, NnTarget};

    #[test]
    fn settings_name_the_backend_and_the_cpu_by_default() {
        let options = NnOptions {
            backend: NnBackend::Ort,
            target: NnTarget::Gpu,
        };
        assert_eq!(nn_options(&nn_settings(options)).unwrap(), options);
        let tract = NnSettings {
            backend: "tract".into(),
            target: None,
        };
        assert_eq!(nn_options(&tract).unwrap().target, NnTarget::Cpu);
        let unknown = NnSettings {
            backend: "openvino".into(),
            target: None,
        };
        assert!(
            nn_options(&unknown)
                .unwrap_err()
                .to_string()
                .contains("tract, ort")
        );
    }
}
