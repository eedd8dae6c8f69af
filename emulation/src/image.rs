//! Where the Curve image's files are and which Curve version they belong to.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::EmulationError;

/// Environment variable naming the directory of the image's `/curvebs/conf` files.
pub const CONF_DIR_ENV: &str = "CURVE_IMAGE_CONF";
/// Environment variable naming the image's Curve version (e.g. `v1.2.6`).
pub const VERSION_ENV: &str = "CURVE_IMAGE_VERSION";
/// Where the config files are by default, relative to the workspace root.
const DEFAULT_CONF_DIR: &str = "../shared/curve-image/v1.2.6/conf";

/// A Curve release, e.g. `v1.2.6` or `v1.2.7-rc1`: the stand-ins' behaviour depends on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurveVersion {
    tag: String,
    number: String,
    release: (u32, u32, u32),
}

impl CurveVersion {
    /// Parses a tag such as `v1.2.6`, `1.2.6` or `v1.2.7-rc1`; `None` if it is not one.
    pub fn parse(tag: &str) -> Option<CurveVersion> {
        let number = tag.strip_prefix('v').unwrap_or(tag);
        let release_part = number.split(['-', '+']).next()?;
        let mut parts = release_part.split('.').map(|p| p.parse::<u32>().ok());
        let release = (parts.next()??, parts.next()??, parts.next()??);
        if parts.next().is_some() {
            return None;
        }
        Some(CurveVersion {
            tag: tag.to_string(),
            number: number.to_string(),
            release,
        })
    }

    /// The tag as given, e.g. `v1.2.6`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The version without the leading `v`, as Curve's tools print it (e.g. `1.2.6`).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// `curve_format -blockSize` exists from v1.2.7 on.
    pub fn has_block_size_flag(&self) -> bool {
        self.release >= (1, 2, 7)
    }
}

/// The files of the Curve image that the emulation copies into each container: its default
/// config files (the image's `/curvebs/conf`), and the version they belong to.
#[derive(Clone, Debug)]
pub struct ImageFiles {
    conf_dir: PathBuf,
    version: CurveVersion,
}

impl ImageFiles {
    /// Finds the image files: the directory named by `CURVE_IMAGE_CONF`, else
    /// `<workspace>/../shared/curve-image/v1.2.6/conf`, where `<workspace>` is the nearest
    /// directory at or above `caller_manifest_dir` whose `Cargo.toml` has a `[workspace]`
    /// (pass `env!("CARGO_MANIFEST_DIR")`). The error names the exact path looked for.
    pub fn locate(caller_manifest_dir: impl AsRef<Path>) -> Result<ImageFiles, EmulationError> {
        let conf_dir = match env::var_os(CONF_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => default_conf_dir(caller_manifest_dir.as_ref()),
        };
        ImageFiles::from_conf_dir(conf_dir)
    }

    /// Uses the config files in `conf_dir`. The version is `CURVE_IMAGE_VERSION` if set, else
    /// the name of `conf_dir`'s parent (`.../v1.2.6/conf`).
    pub fn from_conf_dir(conf_dir: impl Into<PathBuf>) -> Result<ImageFiles, EmulationError> {
        let conf_dir = conf_dir.into();
        if !conf_dir.is_dir() {
            return Err(EmulationError::ImageFilesMissing {
                looked_for: conf_dir,
            });
        }
        let version = version_of(&conf_dir)?;
        Ok(ImageFiles { conf_dir, version })
    }

    /// The same files, emulating another Curve version (e.g. `v1.2.7`).
    pub fn with_version(self, tag: &str) -> Result<ImageFiles, EmulationError> {
        let version = CurveVersion::parse(tag).ok_or_else(|| EmulationError::UnknownVersion {
            conf_dir: self.conf_dir.clone(),
            why: format!("{tag:?} is not a version like v1.2.6"),
        })?;
        Ok(ImageFiles { version, ..self })
    }

    /// The directory of the image's default config files.
    pub fn conf_dir(&self) -> &Path {
        &self.conf_dir
    }

    /// The Curve version emulated.
    pub fn version(&self) -> &CurveVersion {
        &self.version
    }
}

fn default_conf_dir(caller_manifest_dir: &Path) -> PathBuf {
    let workspace = caller_manifest_dir
        .ancestors()
        .find(|dir| declares_workspace(&dir.join("Cargo.toml")))
        .unwrap_or(caller_manifest_dir);
    // Lexically, so that the error message shows a clean path.
    let mut dir = workspace.to_path_buf();
    for part in Path::new(DEFAULT_CONF_DIR).components() {
        match part {
            std::path::Component::ParentDir => {
                dir.pop();
            }
            other => dir.push(other),
        }
    }
    dir
}

fn declares_workspace(manifest: &Path) -> bool {
    fs::read_to_string(manifest)
        .map(|text| text.lines().any(|line| line.trim() == "[workspace]"))
        .unwrap_or(false)
}

fn version_of(conf_dir: &Path) -> Result<CurveVersion, EmulationError> {
    let unknown = |why: String| EmulationError::UnknownVersion {
        conf_dir: conf_dir.to_path_buf(),
        why,
    };
    if let Ok(tag) = env::var(VERSION_ENV) {
        return CurveVersion::parse(&tag).ok_or_else(|| {
            unknown(format!(
                "{VERSION_ENV}={tag:?} is not a version like v1.2.6"
            ))
        });
    }
    let parent_name = conf_dir
        .canonicalize()
        .ok()
        .and_then(|dir| Some(dir.parent()?.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default();
    CurveVersion::parse(&parent_name).ok_or_else(|| {
        unknown(format!(
            "its parent directory {parent_name:?} is not named after a version (like v1.2.6) and {VERSION_ENV} is not set"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_tags() {
        let v = CurveVersion::parse("v1.2.6").unwrap();
        assert_eq!((v.tag(), v.number()), ("v1.2.6", "1.2.6"));
        assert!(!v.has_block_size_flag());
        assert!(
            CurveVersion::parse("v1.2.7-rc1")
                .unwrap()
                .has_block_size_flag()
        );
        assert!(CurveVersion::parse("1.3.0").unwrap().has_block_size_flag());
        assert_eq!(CurveVersion::parse("latest"), None);
        assert_eq!(CurveVersion::parse("v1.2"), None);
        assert_eq!(CurveVersion::parse("v1.2.6.1"), None);
    }

    #[test]
    fn default_location_is_beside_the_workspace() {
        let root = tempfile::tempdir().unwrap();
        let workspace = root.path().join("main");
        fs::create_dir_all(workspace.join("e2e")).unwrap();
        fs::write(workspace.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        fs::write(workspace.join("e2e/Cargo.toml"), "[package]\n").unwrap();
        let expected = root.path().join("shared/curve-image/v1.2.6/conf");
        assert_eq!(default_conf_dir(&workspace.join("e2e")), expected);
        assert_eq!(default_conf_dir(&workspace), expected);
    }

    #[test]
    fn missing_files_name_the_path_looked_for() {
        let err = ImageFiles::from_conf_dir("/nonexistent/v1.2.6/conf").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("/nonexistent/v1.2.6/conf"), "{message}");
        assert!(message.contains(CONF_DIR_ENV), "{message}");
    }
}
