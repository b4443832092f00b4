//! Spin's side of a Spinfer component: its settings come from Spin application variables
//! (`default_model`, `allowed_origins`), read through spin-sdk. Every Spin component's handler
//! is `spinfer_handler::serve::<SpinVariables, _>(request, open)`.

use spin_sdk::variables;
use spinfer_handler::{Settings, Source};
use spinfer_model::contract::{ALLOWED_ORIGINS_VARIABLE, DEFAULT_MODEL_VARIABLE};
use spinfer_protocol::{AllowedOrigins, ApiError};

/// A Spin variable's value, or `None` when the component defines none.
async fn variable(name: &str) -> Result<Option<String>, ApiError> {
    match variables::get(name).await {
        Ok(value) => Ok(Some(value)),
        Err(variables::Error::Undefined(_)) => Ok(None),
        Err(e) => Err(ApiError::not_ready(format!(
            "cannot read the {name} variable: {e}"
        ))),
    }
}

/// Settings from the component's Spin variables: the default model (none defined: the first
/// model by name) and the allowed origins (a variable that cannot be read allows none).
pub struct SpinVariables;

impl Source for SpinVariables {
    async fn settings() -> Result<Settings, ApiError> {
        let default_model = variable(DEFAULT_MODEL_VARIABLE).await?;
        let origins = match variable(ALLOWED_ORIGINS_VARIABLE).await {
            Ok(value) => value.unwrap_or_default(),
            Err(error) => {
                eprintln!("spinfer: {error}; no origin is allowed");
                String::new()
            }
        };
        Ok(Settings {
            default_model,
            origins: AllowedOrigins::parse(&origins),
        })
    }

    /// wit-bindgen's executor: Spin's variable reads are asynchronous host calls.
    fn block_on<T: 'static>(future: impl Future<Output = T>) -> T {
        wit_bindgen::block_on(future)
    }
}
