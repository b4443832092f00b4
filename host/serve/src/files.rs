//! A component's `files` as Spin places them: directory or file mounts, glob patterns and
//! `exclude_files`.
//!
//! Mounts of whole directories, none excluded, are preopened in place (as `spin up
//! --direct-mounts` does), so the guest sees each folder as it is now. A glob or an
//! `exclude_files` entry is served the way Spin serves every mount: from a read-only copy made
//! at start that holds the matching files only, mounted at `/`. Patterns and exclusions are
//! paths relative to the app's folder (`models/*.onnx`); an excluded file is one whose path
//! relative to the app's folder matches an exclusion.
//!
//! A snapshot is taken with the folders in place, exclusions or not ([`Mounts::for_snapshot`]):
//! what the guest reads of a file's metadata (times, the inode's hash) stays in its memory, and
//! only the files themselves give the same metadata on every run, so the same snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::manifest::{ComponentDef, FileMount, Manifest};

/// What a component's instances preopen: host directory → guest path, read-only.
#[derive(Clone, Debug, Default)]
pub struct Mounts {
    pub dirs: Vec<(PathBuf, String)>,
    /// The copy that `dirs` points into, if one was made; removed with the last clone.
    _copy: Option<Arc<tempfile::TempDir>>,
}

impl Mounts {
    /// The component's mounts: in place when they are whole directories and nothing is
    /// excluded, else a copy of the files they select.
    pub fn place(manifest: &Manifest, def: &ComponentDef) -> Result<Mounts> {
        Mounts::place_with(manifest, def, def.exclude_files.is_empty())
    }

    /// The mounts to pre-initialise the component with: whole folders in place even where
    /// files are excluded (the guest may see more than it will serve, never less).
    pub fn for_snapshot(manifest: &Manifest, def: &ComponentDef) -> Result<Mounts> {
        Mounts::place_with(manifest, def, true)
    }

    fn place_with(manifest: &Manifest, def: &ComponentDef, folders_in_place: bool) -> Result<Mounts> {
        let in_place = folders_in_place
            && def
                .files
                .iter()
                .all(|mount| manifest.resolve(&mount.paths().0).is_dir());
        if in_place {
            let dirs = def
                .files
                .iter()
                .map(|mount| {
                    let (source, destination) = mount.paths();
                    (manifest.resolve(&source), destination)
                })
                .collect();
            return Ok(Mounts { dirs, _copy: None });
        }
        let copy = tempfile::Builder::new()
            .prefix("spinfer-files-")
            .tempdir()
            .context("making the folder for the component's files")?;
        let excluded = def
            .exclude_files
            .iter()
            .map(|pattern| {
                glob::Pattern::new(pattern).with_context(|| format!("exclude_files pattern {pattern:?}"))
            })
            .collect::<Result<Vec<_>>>()?;
        // Absolute, so that what the patterns match can be taken apart by prefix.
        let root = std::path::absolute(&manifest.root)
            .with_context(|| format!("the app's folder {}", manifest.root.display()))?;
        let placer = Placer {
            root: &root,
            copy: copy.path(),
            excluded: &excluded,
        };
        for mount in &def.files {
            placer.place(mount)?;
        }
        Ok(Mounts {
            dirs: vec![(copy.path().to_path_buf(), "/".into())],
            _copy: Some(Arc::new(copy)),
        })
    }

    /// The host folder behind the guest folder `guest` (`/models`), through the mount that
    /// holds it; `None` when no mount does.
    pub fn host_dir(&self, guest: &str) -> Option<PathBuf> {
        let guest = Path::new(guest);
        self.dirs
            .iter()
            .filter_map(|(host, mounted)| {
                let rest = guest.strip_prefix(mounted).ok()?;
                Some((mounted.len(), host.join(rest)))
            })
            .max_by_key(|(depth, _)| *depth)
            .map(|(_, host)| host)
            .filter(|host| host.is_dir())
    }
}

/// Copies what one mount selects into the copy.
struct Placer<'a> {
    root: &'a Path,
    copy: &'a Path,
    excluded: &'a [glob::Pattern],
}

impl Placer<'_> {
    fn place(&self, mount: &FileMount) -> Result<()> {
        match mount {
            // `path` (a file, a folder or a glob) lands at the same path under `/`.
            FileMount::Path(path) => {
                let source = self.root.join(path);
                if source.is_dir() {
                    self.copy_glob(&source.join("**/*"), self.root, self.copy)
                } else if source.is_file() {
                    self.copy_file(&source, &self.copy.join(path))
                } else if path.to_str().is_some_and(|p| p.contains(['*', '?', '['])) {
                    self.copy_glob(&source, self.root, self.copy)
                } else {
                    bail!("{} does not exist and is not a glob pattern", path.display())
                }
            }
            FileMount::Mapped { source, destination } => {
                let source = self.root.join(source);
                let destination = self.copy.join(destination.trim_start_matches('/'));
                if source.is_dir() {
                    self.copy_glob(&source.join("**/*"), &source, &destination)
                } else if source.is_file() {
                    self.copy_file(&source, &destination)
                } else {
                    bail!("file mount source {} does not exist", source.display())
                }
            }
        }
    }

    /// Every file `pattern` matches and no exclusion does, at its path relative to `prefix`
    /// under `destination`.
    fn copy_glob(&self, pattern: &Path, prefix: &Path, destination: &Path) -> Result<()> {
        let pattern = pattern
            .to_str()
            .with_context(|| format!("file pattern {} is not UTF-8", pattern.display()))?;
        let matches = glob::glob(pattern).with_context(|| format!("file pattern {pattern:?}"))?;
        for path in matches {
            let path = path?;
            if !path.is_file() {
                continue;
            }
            let in_app = path.strip_prefix(self.root).unwrap_or(&path);
            if self.excluded.iter().any(|p| p.matches_path(in_app)) {
                continue;
            }
            let relative = path.strip_prefix(prefix).unwrap_or(&path);
            self.copy_file(&path, &destination.join(relative))?;
        }
        Ok(())
    }

    /// Copies one file, read-only, creating its folders.
    fn copy_file(&self, source: &Path, destination: &Path) -> Result<()> {
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::copy(source, destination)
            .with_context(|| format!("copying {} to {}", source.display(), destination.display()))?;
        let mut permissions = std::fs::metadata(destination)?.permissions();
        permissions.set_readonly(true);
        std::fs::set_permissions(destination, permissions)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(files: &str) -> (tempfile::TempDir, Manifest) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "models/a.onnx",
            "models/a.json",
            "models/a-training.json",
            "models/a.png",
            "static/x/y.txt",
        ] {
            std::fs::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            std::fs::write(root.join(file), file).unwrap();
        }
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n[component.c]\nsource = \"c.wasm\"\n{files}\n"
        );
        std::fs::write(root.join("spin.toml"), text).unwrap();
        let manifest = Manifest::load(&root.join("spin.toml")).unwrap();
        (dir, manifest)
    }

    /// Every file the guest sees, as guest paths.
    fn seen(mounts: &Mounts) -> Vec<String> {
        let mut out = Vec::new();
        for (host, guest) in &mounts.dirs {
            for path in glob::glob(&format!("{}/**/*", host.display())).unwrap() {
                let path = path.unwrap();
                if path.is_file() {
                    let relative = path.strip_prefix(host).unwrap().display().to_string();
                    out.push(format!("{}/{relative}", guest.trim_end_matches('/')));
                }
            }
        }
        out.sort();
        out
    }

    fn place(files: &str) -> Vec<String> {
        let (_dir, manifest) = app(files);
        let mounts = Mounts::place(&manifest, manifest.component("c").unwrap()).unwrap();
        seen(&mounts)
    }

    #[test]
    fn whole_directories_are_mounted_in_place() {
        let (dir, manifest) = app(r#"files = [{ source = "models", destination = "/m" }, "static"]"#);
        let mounts = Mounts::place(&manifest, manifest.component("c").unwrap()).unwrap();
        assert_eq!(
            mounts.dirs,
            [
                (dir.path().join("models"), "/m".to_string()),
                (dir.path().join("static"), "/static".to_string())
            ]
        );
        assert_eq!(mounts.host_dir("/m"), Some(dir.path().join("models")));
        assert_eq!(mounts.host_dir("/static/x"), Some(dir.path().join("static/x")));
        assert_eq!(mounts.host_dir("/other"), None);
    }

    #[test]
    fn exclusions_and_globs_select_files_as_spin_does() {
        assert_eq!(
            place(
                "files = [{ source = \"models\", destination = \"/models\" }]\n\
                 exclude_files = [\"models/*.png\", \"models/*-training.json\"]"
            ),
            ["/models/a.json", "/models/a.onnx"]
        );
        assert_eq!(
            place(r#"files = ["models/*.onnx", "static"]"#),
            ["/models/a.onnx", "/static/x/y.txt"]
        );
        assert_eq!(
            place(r#"files = [{ source = "models/a.onnx", destination = "/b.onnx" }, "models/a.json"]"#),
            ["/b.onnx", "/models/a.json"]
        );
    }

    #[test]
    fn a_copy_is_read_only_and_gone_with_the_last_clone() {
        let (_dir, manifest) = app("files = [\"models/*.json\"]");
        let mounts = Mounts::place(&manifest, manifest.component("c").unwrap()).unwrap();
        let host = mounts.host_dir("/models").unwrap();
        assert!(
            std::fs::metadata(host.join("a.json"))
                .unwrap()
                .permissions()
                .readonly()
        );
        let copy = mounts.dirs[0].0.clone();
        let clone = mounts.clone();
        drop(mounts);
        assert!(copy.exists());
        drop(clone);
        assert!(!copy.exists());
    }

    #[test]
    fn a_snapshot_sees_the_folders_in_place() {
        let (dir, manifest) = app("files = [\"models\"]\nexclude_files = [\"models/*.png\"]");
        let def = manifest.component("c").unwrap();
        let mounts = Mounts::for_snapshot(&manifest, def).unwrap();
        assert_eq!(mounts.dirs, [(dir.path().join("models"), "/models".to_string())]);
        assert!(!seen(&Mounts::place(&manifest, def).unwrap()).contains(&"/models/a.png".to_string()));
    }

    #[test]
    fn a_missing_source_is_an_error() {
        let (_dir, manifest) = app(r#"files = ["nowhere"]"#);
        assert!(Mounts::place(&manifest, manifest.component("c").unwrap()).is_err());
    }
}
