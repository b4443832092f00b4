use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use spinfer_nn::{NnBackend, NnOptions, NnTarget};
use spinfer_serve::{App, AppOptions, Manifest, ReusePolicy, engine, metrics, process, server};

#[derive(clap::Args)]
pub struct UpCommand {
    /// The Spin manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Run each component's build command first.
    #[arg(long)]
    build: bool,
    /// Linear-memory limit per instance, in MiB.
    #[arg(long, default_value_t = 128)]
    memory_limit_mb: usize,
    /// Deadline per request, in seconds (epoch interruption).
    #[arg(long, default_value_t = 30.0)]
    request_timeout: f64,
    /// Largest accepted request body, in bytes (larger ones get 413).
    #[arg(long, default_value_t = spinfer_app::options().max_body)]
    max_body: usize,
    /// Seconds a client has to send a request's headers, and then its body; a slower client
    /// is cut off (its body with 408).
    #[arg(long, default_value_t = AppOptions::default().read_timeout.as_secs_f64())]
    read_timeout: f64,
    /// Requests one `wasi:http` 0.3 instance may serve (Spin 4's default); 1 = a fresh instance
    /// per request. `wasi:http` 0.2 components always get a fresh instance.
    #[arg(long, default_value_t = ReusePolicy::SPIN.max_reuse)]
    max_instance_reuse_count: usize,
    /// Requests one 0.3 instance may serve at once when reused.
    #[arg(long, default_value_t = ReusePolicy::SPIN.max_concurrent)]
    max_instance_concurrent_reuse_count: usize,
    /// How long an idle reused instance is kept, in seconds.
    #[arg(long, default_value_t = ReusePolicy::SPIN.idle_timeout.as_secs_f64())]
    idle_instance_timeout: f64,
    /// Requests in the server at once (reading, waiting or running); past it a request gets
    /// 503 with `Retry-After` at once. Defaults to the instance pool's size.
    #[arg(long, default_value_t = AppOptions::default().max_in_flight)]
    max_in_flight: usize,
    /// Requests running in components at once (default: 4 per CPU core); the others wait their
    /// turn in arrival order.
    #[arg(long, default_value_t = AppOptions::default().max_running)]
    max_running: usize,
    /// Milliseconds a request may wait for a running slot; one that waits longer is shed with
    /// 503 and `Retry-After`.
    #[arg(long, default_value_t = AppOptions::default().max_queue_wait.as_secs_f64() * 1e3)]
    max_queue_wait_ms: f64,
    /// Compile every start instead of using the compiled-component cache.
    #[arg(long)]
    no_cache: bool,
    /// Use on-demand instead of pooled instance allocation.
    #[arg(long)]
    no_pooling: bool,
    /// Reset pooled memories as Spin does (the lowest 2 MiB by copy, the rest by `madvise`)
    /// rather than only the pages an instance dirtied, found with Linux's `PAGEMAP_SCAN`.
    #[arg(long)]
    no_pagemap_scan: bool,
    /// Extra environment for the components, KEY=VALUE (overrides the manifest).
    #[arg(short = 'e', long = "env", value_parser = parse_pair)]
    env: Vec<(String, String)>,
    /// An application variable, key=value; outranks SPIN_VARIABLE_<KEY> and the manifest's
    /// default, as in `spin up`.
    #[arg(long = "variable", value_parser = parse_pair)]
    variables: Vec<(String, String)>,
    /// A PEM certificate (chain) to serve HTTPS with; needs --tls-key.
    #[arg(long, requires = "tls_key", env = "SPIN_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", env = "SPIN_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Provide `wasi:nn` with this native backend, `tract` or `ort` (overrides
    /// `[component.<id>.tool.spinfer] nn`).
    #[arg(long)]
    nn: Option<NnBackend>,
    /// Where `wasi:nn` runs, `cpu` or `gpu`; a GPU that cannot be used is an error, never a CPU
    /// fallback.
    #[arg(long, default_value = "cpu", requires = "nn")]
    nn_target: NnTarget,
    /// Serve Prometheus metrics at http://<addr>/metrics (off by default; the app's own routes
    /// are never touched).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
}

fn parse_pair(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{raw:?} is not KEY=VALUE"))
}

impl UpCommand {
    fn options(&self) -> AppOptions {
        AppOptions {
            memory_limit: self.memory_limit_mb << 20,
            request_timeout: Duration::from_secs_f64(self.request_timeout),
            max_body: self.max_body,
            read_timeout: Duration::from_secs_f64(self.read_timeout),
            reuse: ReusePolicy {
                max_reuse: self.max_instance_reuse_count.max(1),
                max_concurrent: self.max_instance_concurrent_reuse_count.max(1),
                idle_timeout: Duration::from_secs_f64(self.idle_instance_timeout),
            },
            cache_dir: (!self.no_cache).then(engine::default_cache_dir),
            pooling: !self.no_pooling,
            pagemap_scan: !self.no_pagemap_scan,
            environment: self.env.clone(),
            variables: self.variables.clone(),
            max_in_flight: self.max_in_flight,
            max_running: self.max_running,
            max_queue_wait: Duration::from_secs_f64(self.max_queue_wait_ms / 1e3),
            nn: self.nn.map(|backend| {
                spinfer_app::nn_settings(NnOptions {
                    backend,
                    target: self.nn_target,
                })
            }),
            hooks: spinfer_app::hooks(),
        }
    }

    pub fn run(self) -> Result<()> {
        let manifest = Manifest::load(&self.manifest)?;
        if self.build {
            manifest.build()?;
        }
        let options = self.options();
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(server::tls_config(cert, key)?),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async {
            let exporter = match self.metrics_listen {
                Some(addr) => Some((metrics::install()?, server::bind(addr).await?)),
                None => None,
            };
            let app = Arc::new(App::load(&manifest, &options)?);
            let listener = server::bind(self.listen).await?;
            let addr = listener.local_addr()?;
            // The line tests and scripts wait for comes first.
            println!("{}", process::banner(&app.name, scheme, addr));
            println!("spinfer: draw a digit at {scheme}://{addr}/ (the API is described at /openapi.json)");
            if let Some((handle, listener)) = exporter {
                println!("spinfer: metrics at http://{}/metrics", listener.local_addr()?);
                tokio::spawn(metrics::serve(handle, listener));
            }
            server::serve(app, listener, tls, shutdown_signal()).await
        })
    }
}

/// Ctrl-C or SIGTERM (what `kill`, systemd and Kubernetes send): the server stops accepting and
/// lets in-flight requests finish.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
