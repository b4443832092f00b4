//! Everything a Spinfer server says and hears, independent of where inference runs: routing,
//! request decoding, preprocessing, response encoding and the error type. Shared by every
//! component and by the native host, so no piece of it is written twice.

pub mod backend;
pub mod card;
pub mod error;
pub mod http;
pub mod predict;
pub mod preprocess;
pub mod router;
pub mod v2;

pub use backend::Backend;
pub use card::{Catalog, CatalogEntry, ModelCard, TensorSpec};
pub use error::ApiError;
pub use http::{MAX_BODY_BYTES, Request, Response};
pub use router::handle;
