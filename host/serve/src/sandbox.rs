//! What a component's instances get from the manifest and the options: the environment (with
//! the options' overrides), its file mounts (checked by the app's mount checks), its outbound
//! allow-list, the limits, and its wasi-nn graphs.

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::files::Mounts;
use crate::manifest::{ComponentDef, Manifest};
use crate::variables::{ComponentVariables, resolve_app};
use crate::{AppOptions, Sandbox};

impl Sandbox {
    /// What the component's instances get when it serves.
    pub fn for_component(manifest: &Manifest, def: &ComponentDef, options: &AppOptions) -> Result<Sandbox> {
        Sandbox::with_mounts(manifest, def, options, Mounts::place(manifest, def)?)
    }

    /// What the component gets when `spinfer snapshot` pre-initialises it: its folders in place.
    pub fn for_snapshot(manifest: &Manifest, def: &ComponentDef, options: &AppOptions) -> Result<Sandbox> {
        Sandbox::with_mounts(manifest, def, options, Mounts::for_snapshot(manifest, def)?)
    }

    fn with_mounts(
        manifest: &Manifest,
        def: &ComponentDef,
        options: &AppOptions,
        mounts: Mounts,
    ) -> Result<Sandbox> {
        let mut environment: Vec<(String, String)> = def
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, value) in &options.environment {
            environment.retain(|(k, _)| k != key);
            environment.push((key.clone(), value.clone()));
        }
        // Once, here (never per request): a failed check stops `spinfer up` and
        // `spinfer snapshot`, named.
        for check in &options.hooks.mount_checks {
            if let Some(host) = mounts.host_dir(&check.guest) {
                check
                    .run(&host)
                    .with_context(|| format!("the files mounted at {}", check.guest))?;
            }
        }
        let nn = match options.nn.clone().or_else(|| def.nn_settings()) {
            Some(settings) => {
                let loader = options
                    .hooks
                    .nn
                    .as_ref()
                    .context("the component asks for wasi:nn, which this runner was not given")?;
                Some(Arc::new(loader.load(&mounts, &settings)?))
            }
            None => None,
        };
        let app_variables = resolve_app(&manifest.variables, &options.variables, |key| {
            std::env::var(key).ok()
        })?;
        Ok(Sandbox {
            environment,
            mounts,
            allowed_outbound_hosts: def.allowed_outbound_hosts.clone(),
            variables: ComponentVariables::resolve(&def.variables, &app_variables)?,
            memory_limit: options.memory_limit,
            request_timeout: options.request_timeout,
            nn,
        })
    }
}
