//! The parts of a Spin manifest (v2) that `spinfer up` runs: HTTP routes, component sources,
//! file mounts, environment, allowed outbound hosts and build commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    pub application: Application,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDef>,
    /// `[variables]`: the application variables.
    #[serde(default)]
    pub variables: BTreeMap<String, crate::variables::VariableDef>,
    /// Directory the manifest's relative paths start from.
    #[serde(skip)]
    pub root: PathBuf,
}

#[derive(Debug, Deserialize)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
}

#[derive(Debug, Deserialize)]
pub struct HttpTrigger {
    pub route: String,
    pub component: String,
}

#[derive(Debug, Deserialize)]
pub struct ComponentDef {
    pub source: PathBuf,
    #[serde(default)]
    pub files: Vec<FileMount>,
    /// Files the mounts leave out: glob patterns relative to the app's folder.
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// `[component.<id>.variables]`: the component's variables, templates over `[variables]`.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub build: Option<Build>,
    /// Settings for tools other than Spin, `[component.<id>.tool.<name>]` as Spin allows.
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Value>,
}

impl ComponentDef {
    /// `[component.<id>.tool.spinfer]`'s `nn` and `nn_target`: the `wasi:nn` the component asks
    /// `spinfer up` for; `None` without an `nn` key.
    pub fn nn_settings(&self) -> Option<crate::nn::NnSettings> {
        self.tool
            .get("spinfer")
            .and_then(|value| value.clone().try_into().ok())
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FileMount {
    /// A directory, a file or a glob pattern, placed at the same path under `/`.
    Path(PathBuf),
    Mapped {
        source: PathBuf,
        destination: String,
    },
}

#[derive(Debug, Deserialize)]
pub struct Build {
    pub command: String,
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A route pattern: `/...` and `/prefix/...` match by prefix, anything else exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Prefix(String),
    Exact(String),
}

impl Route {
    pub fn parse(pattern: &str) -> Route {
        match pattern.strip_suffix("/...") {
            Some(prefix) => Route::Prefix(prefix.to_string()),
            None => Route::Exact(pattern.trim_end_matches('/').to_string()),
        }
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            Route::Prefix(prefix) => {
                path.starts_with(prefix.as_str())
                    && (path.len() == prefix.len() || path[prefix.len()..].starts_with('/'))
            }
            Route::Exact(exact) => path.trim_end_matches('/') == exact,
        }
    }

    /// What the route's wildcard matched of `path` (`spin-path-info`): the rest after the
    /// prefix, or nothing for an exact route.
    pub fn path_info<'p>(&self, path: &'p str) -> &'p str {
        match self {
            Route::Prefix(prefix) => path.get(prefix.len()..).unwrap_or(""),
            Route::Exact(_) => "",
        }
    }

    /// The route without its wildcard (`spin-component-route`).
    pub fn component_route(&self) -> &str {
        match self {
            Route::Prefix(prefix) | Route::Exact(prefix) => prefix,
        }
    }

    /// Longer, exact routes win over shorter, wildcard ones, as in Spin.
    pub fn specificity(&self) -> (usize, bool) {
        match self {
            Route::Prefix(p) => (p.len(), false),
            Route::Exact(e) => (e.len(), true),
        }
    }
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut manifest: Manifest =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if manifest.spin_manifest_version != 2 {
            bail!(
                "{}: spin_manifest_version {} is not supported (use 2)",
                path.display(),
                manifest.spin_manifest_version
            );
        }
        for trigger in &manifest.trigger.http {
            if !manifest.component.contains_key(&trigger.component) {
                bail!(
                    "{}: route {} names component {:?}, which is not defined",
                    path.display(),
                    trigger.route,
                    trigger.component
                );
            }
        }
        manifest.root = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(manifest)
    }

    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }

    /// Runs the build command of each component that has one, as `spin build` does.
    pub fn build(&self) -> Result<()> {
        for (name, component) in &self.component {
            let Some(build) = &component.build else { continue };
            let dir = self.resolve(build.workdir.as_deref().unwrap_or(Path::new(".")));
            tracing::info!(component = %name, command = %build.command, "building");
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(&build.command)
                .current_dir(&dir)
                .status()
                .with_context(|| format!("running the build command of {name}"))?;
            if !status.success() {
                bail!(
                    "build command of component {name} failed ({status}): {}",
                    build.command
                );
            }
        }
        Ok(())
    }

    /// The host folder a component mounts at `guest`.
    pub fn mount(&self, def: &ComponentDef, guest: &str) -> Result<PathBuf> {
        def.files
            .iter()
            .map(FileMount::paths)
            .find(|(_, mounted)| mounted == guest)
            .map(|(host, _)| self.resolve(&host))
            .with_context(|| format!("the component mounts nothing at {guest}"))
    }

    /// The component `id`, or an error naming the manifest.
    pub fn component(&self, id: &str) -> Result<&ComponentDef> {
        self.component
            .get(id)
            .with_context(|| format!("the manifest has no component {id:?}"))
    }
}

impl FileMount {
    /// Host path and guest path of the mount.
    pub fn paths(&self) -> (PathBuf, String) {
        match self {
            FileMount::Path(path) => (path.clone(), format!("/{}", path.display())),
            FileMount::Mapped { source, destination } => (source.clone(), destination.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_like_spin() {
        let all = Route::parse("/...");
        assert!(all.matches("/predict"));
        assert!(all.matches("/"));
        let api = Route::parse("/api/...");
        assert!(api.matches("/api/x"));
        assert!(api.matches("/api"));
        assert!(!api.matches("/apix"));
        let exact = Route::parse("/healthz");
        assert!(exact.matches("/healthz"));
        assert!(!exact.matches("/healthz/x"));
        assert!(exact.specificity() > Route::parse("/...").specificity());
    }

    #[test]
    fn parses_the_project_manifest() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
        let manifest = Manifest::load(&path).unwrap();
        assert_eq!(manifest.trigger.http[0].route, "/...");
        let component = &manifest.component["classifier"];
        assert!(component.allowed_outbound_hosts.is_empty());
        assert_eq!(component.files[0].paths().1, "/models");
        assert!(
            component
                .build
                .as_ref()
                .unwrap()
                .command
                .contains("wasm32-wasip2")
        );
        assert_eq!(component.variables["default_model"], "{{ default_model }}");
        assert_eq!(
            manifest.variables["default_model"].default.as_deref(),
            Some("mnist-compact")
        );
    }
}
