//! Run a Spin app's HTTP components on an embedded wasmtime: what `spinfer up` is.
//!
//! The runner knows no app: what is an app's own (names for its routes, a check of a mounted
//! folder, the wasi-nn backends, how errors are written) is handed in as [`Hooks`] by the
//! command that composes it.
//!
//! The root owns the vocabulary its modules share ([`AppOptions`], [`Hooks`], [`Sandbox`],
//! [`ReusePolicy`]); the modules form one chain and never import each other back:
//!
//! - [`manifest`]: the parts of `spin.toml` that are run; [`files`]: the files a component
//!   mounts, placed as Spin places them; [`sandbox`]: what a component's stores get from it
//!   (environment, mounts, outbound hosts, limits, wasi-nn graphs);
//! - [`engine`]: the wasmtime engine and the compiled-component cache; [`epoch`]: request
//!   deadlines;
//! - [`store`]: one store's host state and the linker; [`outbound`]: the outbound allow-list;
//! - [`handler`]: a component's pre-instance and its instances; [`reuse`]: how long each lives;
//! - [`app`]: routes → handlers, the one request path; [`admission`]: which requests run now,
//!   which wait and which are shed; [`server`]: TCP and HTTP/1.1;
//! - [`nn`]: `wasi:nn` over the graphs the command's loader makes; [`snapshot`]: Wizer
//!   pre-initialisation;
//! - [`metrics`]: Prometheus counters and histograms, and their listener;
//! - [`process`]: a `spinfer up` child process (benchmarks and tests start one).

pub mod admission;
pub mod app;
pub mod engine;
pub mod epoch;
pub mod files;
pub mod handler;
pub mod manifest;
pub mod metrics;
pub mod nn;
pub mod outbound;
pub mod process;
pub mod reuse;
pub mod sandbox;
pub mod server;
pub mod snapshot;
pub mod spin_headers;
pub mod store;
pub mod variables;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use app::App;
pub use manifest::Manifest;

/// How `spinfer up` runs an app; each field is a flag of `spinfer up`.
#[derive(Clone, Debug)]
pub struct AppOptions {
    pub memory_limit: usize,
    pub request_timeout: Duration,
    pub max_body: usize,
    /// How long a client has to send a request's headers, and then its body (408 after).
    pub read_timeout: Duration,
    pub reuse: ReusePolicy,
    /// `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    pub pooling: bool,
    /// Reset pooled memories with `PAGEMAP_SCAN` where the kernel has it (see `engine`).
    pub pagemap_scan: bool,
    /// Environment added to (and overriding) each component's manifest `environment`.
    pub environment: Vec<(String, String)>,
    /// Application variables, `--variable key=value`: they outrank `SPIN_VARIABLE_*` and the
    /// manifest's defaults.
    pub variables: Vec<(String, String)>,
    /// Overrides the manifest's `[component.<id>.tool.spinfer]` wasi-nn settings.
    pub nn: Option<nn::NnSettings>,
    /// Requests in the server at once (reading, waiting or running); more are answered 503
    /// with `Retry-After` straight away. The instance pool's size by default.
    pub max_in_flight: usize,
    /// Requests running in components at once; the others wait (see [`admission`]).
    pub max_running: usize,
    /// How long a request may wait for a running slot before it is shed with a 503.
    pub max_queue_wait: Duration,
    /// What the app tells the runner.
    pub hooks: Hooks,
}

/// What the app served tells the runner, handed in by the command that composes it; with the
/// defaults the runner assumes nothing of the app.
#[derive(Clone, Default)]
pub struct Hooks {
    /// The app's own names for its routes in metrics; without one (or for a path it does not
    /// name) a request is labelled with the manifest route that served it.
    pub route_labels: Option<RouteLabels>,
    /// The response header in which a component names the model that answered (the access
    /// log and the metrics' `model` label).
    pub model_header: Option<http::HeaderName>,
    /// The `server-timing` metric in which a component reports its inference time (the
    /// inference histogram).
    pub inference_timing: Option<&'static str>,
    /// Writes the runner's own error answers (no route, too large, too slow, shed, past the
    /// deadline, a failed component); plain text without it.
    pub error_body: Option<ErrorBody>,
    /// Checks of mounted folders, run once when a component is loaded (for serving or a
    /// snapshot): a failed one stops it, named.
    pub mount_checks: Vec<MountCheck>,
    /// Makes the `wasi:nn` graphs of the components that ask for them; without it such a
    /// component does not start.
    pub nn: Option<nn::NnLoader>,
}

/// The body of one of the runner's error answers, by status and message: its content type and
/// bytes.
pub type ErrorBody = Arc<dyn Fn(http::StatusCode, &str) -> (&'static str, Vec<u8>) + Send + Sync>;

/// A check of the folder a component mounts at `guest`, given its place on the host.
#[derive(Clone)]
pub struct MountCheck {
    pub guest: String,
    check: Arc<FolderCheck>,
}

type FolderCheck = dyn Fn(&Path) -> anyhow::Result<()> + Send + Sync;

impl MountCheck {
    pub fn new(
        guest: impl Into<String>,
        check: impl Fn(&Path) -> anyhow::Result<()> + Send + Sync + 'static,
    ) -> MountCheck {
        MountCheck {
            guest: guest.into(),
            check: Arc::new(check),
        }
    }

    pub fn run(&self, host: &Path) -> anyhow::Result<()> {
        (self.check)(host)
    }
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("route_labels", &self.route_labels)
            .field("model_header", &self.model_header)
            .field("inference_timing", &self.inference_timing)
            .field("error_body", &self.error_body.as_ref().map(|_| ".."))
            .field(
                "mount_checks",
                &self.mount_checks.iter().map(|c| &c.guest).collect::<Vec<_>>(),
            )
            .field("nn", &self.nn)
            .finish()
    }
}

/// How an app names the route of a path for metrics (`/v2/models/{name}/infer`): few values
/// whatever the paths; `None` for a path it does not name.
#[derive(Clone)]
pub struct RouteLabels(Arc<Labeller>);

type Labeller = dyn Fn(&str) -> Option<&'static str> + Send + Sync;

impl RouteLabels {
    pub fn new(label: impl Fn(&str) -> Option<&'static str> + Send + Sync + 'static) -> RouteLabels {
        RouteLabels(Arc::new(label))
    }

    pub fn label(&self, path: &str) -> Option<&'static str> {
        (self.0)(path)
    }
}

impl std::fmt::Debug for RouteLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteLabels(..)")
    }
}

/// Instances the pooling allocator holds (Spin's `SPIN_MAX_INSTANCE_COUNT` default).
pub const POOL_INSTANCES: u32 = 1_000;

/// The largest request body read by default, in bytes.
pub const MAX_BODY: usize = 10 << 20;

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            memory_limit: 128 << 20,
            request_timeout: Duration::from_secs(30),
            max_body: MAX_BODY,
            read_timeout: Duration::from_secs(10),
            reuse: ReusePolicy::SPIN,
            cache_dir: Some(engine::default_cache_dir()),
            pooling: true,
            pagemap_scan: true,
            environment: Vec::new(),
            variables: Vec::new(),
            nn: None,
            max_in_flight: POOL_INSTANCES as usize,
            max_running: admission::default_max_running(),
            max_queue_wait: admission::MAX_WAIT,
            hooks: Hooks::default(),
        }
    }
}

/// Where a request came from: the server puts it in the request's extensions; the app passes
/// it to the component as Spin does (`spin-client-addr`, `spin-full-url`).
#[derive(Clone, Copy, Debug)]
pub struct Connection {
    pub client: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
}

impl Connection {
    /// A request made in process (tests, benchmarks), not over a socket.
    pub const IN_PROCESS: Connection = Connection {
        client: SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0)),
        scheme: "http",
    };
}

/// What every store of a component gets.
#[derive(Clone)]
pub struct Sandbox {
    pub environment: Vec<(String, String)>,
    /// The component's `files`, mounted read-only.
    pub mounts: files::Mounts,
    pub allowed_outbound_hosts: Vec<String>,
    /// What `spin:variables/variables.get` answers.
    pub variables: variables::ComponentVariables,
    pub memory_limit: usize,
    pub request_timeout: Duration,
    /// The graphs `wasi:nn` serves, when the host provides it.
    pub nn: Option<Arc<nn::NnGraphs>>,
}

/// How long an instance lives: `max_reuse` requests (1 = a fresh instance per request, as Spin
/// does for `wasi:http` 0.2), `max_concurrent` at once, at most `idle_timeout` idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReusePolicy {
    pub max_reuse: usize,
    pub max_concurrent: usize,
    pub idle_timeout: Duration,
}

impl ReusePolicy {
    /// A fresh instance per request.
    pub const FRESH: ReusePolicy = ReusePolicy {
        max_reuse: 1,
        max_concurrent: 1,
        idle_timeout: Duration::from_secs(1),
    };

    /// Spin 4's defaults for `wasi:http` 0.3 instances: up to 128 requests each, 16 at once,
    /// dropped after 1 s idle.
    pub const SPIN: ReusePolicy = ReusePolicy {
        max_reuse: 128,
        max_concurrent: 16,
        idle_timeout: Duration::from_secs(1),
    };
}
