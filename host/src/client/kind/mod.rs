//! `kiln kind`: write, build and ship your own job kinds, in Rust or Python.
//!
//! - `templates`: `kiln kind new`, the starter kinds (and the guest SDK and WIT) carried in the binary;
//! - `build`: `kiln kind build`, cargo or componentize-py, then the check an upload gets, run locally;
//! - `registry`: `push`, `versions`, `use`, `rm`: the kind routes of a Kiln's HTTP API;
//! - `dev`: `kiln kind dev`, rebuild, re-push and run a sample job on every change.
//!
//! A kind is a folder holding `kind.json` (the manifest, exactly what the server reads) and either a
//! `Cargo.toml` (Rust) or an `app.py` (Python); nothing else marks the language, so the manifest stays
//! the one the server accepts.

mod build;
mod dev;
mod registry;
mod templates;

use super::{Failure, Remote};
use crate::config::{KindCommand, KindLang};
use crate::kinds::Manifest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use build::{Built, build};

/// The languages a kind is written in.
pub type Lang = KindLang;

/// Runs one `kiln kind` command.
pub async fn run(command: KindCommand) -> Result<(), Failure> {
    match command {
        KindCommand::New { name, lang, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            templates::write(&name, lang, &dir)?;
            let next = match lang {
                Lang::Rust => "cargo test && kiln kind build && kiln kind push",
                Lang::Python => "python -m unittest && kiln kind build && kiln kind push",
            };
            eprintln!("kiln: wrote kind `{name}` in {}; next: cd {0} && {next}", dir.display());
            Ok(())
        }
        KindCommand::Build { dir } => {
            let project = Project::open(&dir)?;
            build(&project).await?.report()
        }
        KindCommand::Push { dir, no_build, remote } => {
            let project = Project::open(&dir)?;
            let remote = Remote::new(&remote)?;
            let built = if no_build {
                build::last_built(&project).await?
            } else {
                build(&project).await?
            };
            let version = registry::push(&remote, &project, &built).await?;
            super::commands::print_stdout(&format!("{version}\n"))
        }
        KindCommand::Dev(args) => dev::run(args).await,
        KindCommand::Versions { name, remote } => registry::versions(&Remote::new(&remote)?, &name).await,
        KindCommand::Use { name, version, remote } => {
            registry::use_version(&Remote::new(&remote)?, &name, &version).await
        }
        KindCommand::Rm { name, remote } => registry::remove(&Remote::new(&remote)?, &name).await,
    }
}

/// A kind's folder, its language and its manifest.
#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub lang: Lang,
    /// `kind.json` as written (uploaded as is).
    pub manifest_text: String,
    pub manifest: Manifest,
}

impl Project {
    /// Reads `dir/kind.json` and tells the language from the files beside it.
    pub fn open(dir: &Path) -> Result<Self, Failure> {
        let dir = std::path::absolute(dir)
            .map_err(|e| Failure::refused(format!("{} is not a usable path: {e}", dir.display())))?;
        let path = dir.join("kind.json");
        let manifest_text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::refused(format!(
                "cannot read {}: {e}; a kind's folder holds its kind.json (`kiln kind new NAME --lang rust|python` \
                 writes one)",
                path.display()
            ))
        })?;
        let manifest: Manifest = serde_json::from_str(&manifest_text)
            .map_err(|e| Failure::refused(format!("{} is not a valid manifest: {e}", path.display())))?;
        let lang = match (dir.join("Cargo.toml").is_file(), dir.join("app.py").is_file()) {
            (true, false) => Lang::Rust,
            (false, true) => Lang::Python,
            (true, true) => {
                return Err(Failure::refused(format!(
                    "{} holds both Cargo.toml and app.py: keep the one of the kind's language",
                    dir.display()
                )));
            }
            (false, false) => {
                return Err(Failure::refused(format!(
                    "{} holds neither Cargo.toml (a Rust kind) nor app.py (a Python kind)",
                    dir.display()
                )));
            }
        };
        Ok(Self {
            dir,
            lang,
            manifest_text,
            manifest,
        })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }
}

/// Folders that are outputs or tool state, not sources.
const IGNORED: &[&str] = &["target", "build", "__pycache__", "node_modules"];
/// Files the build itself writes (cargo creates the lock file on the first build).
const IGNORED_FILES: &[&str] = &["Cargo.lock"];

/// Size and mtime of every source file under `dir`.
pub fn sources(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name != ".cargo" {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                if !IGNORED.contains(&name.as_ref()) {
                    stack.push(entry.path());
                }
            } else if !IGNORED_FILES.contains(&name.as_ref()) {
                files.insert(entry.path(), (meta.len(), meta.modified().ok()));
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_comes_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let python = dir.path().join("py");
        templates::write("py", Lang::Python, &python).unwrap();
        let project = Project::open(&python).unwrap();
        assert_eq!((project.lang, project.name()), (Lang::Python, "py"));
        std::fs::write(python.join("Cargo.toml"), "").unwrap();
        assert!(Project::open(&python).unwrap_err().message.contains("both"));
        let error = Project::open(dir.path()).unwrap_err();
        assert!(error.message.contains("kind.json"), "{}", error.message);
    }
}
