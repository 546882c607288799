//! CMake for WASI: kiln's toolchain file and platform module, and the targets CMake's file API reports.
//!
//! CMake 3.25 knows no WASI platform, so kiln writes what wasi-sdk ships
//! (a toolchain file and `Platform/WASI.cmake`) into the target directory
//! and configures with it. Which executable to build is read from the
//! codemodel CMake's file API writes (cmake-file-api(7)), not guessed from
//! the files a build leaves behind.

use anyhow::{Context, Result, bail};
use kiln_core::hinted;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The toolchain file, passed as `CMAKE_TOOLCHAIN_FILE`.
const TOOLCHAIN: &str = include_str!("cmake/wasi-toolchain.cmake");
/// The platform module the toolchain file puts on `CMAKE_MODULE_PATH`.
const PLATFORM: &str = include_str!("cmake/Platform/WASI.cmake");

/// Writes the toolchain file and platform module into `dir` (only when
/// they differ, so CMake does not reconfigure for nothing) and returns the
/// toolchain file's path.
pub(crate) fn write_toolchain(dir: &Path) -> Result<PathBuf> {
    let toolchain = dir.join("wasi-toolchain.cmake");
    for (path, text) in [
        (toolchain.clone(), TOOLCHAIN),
        (dir.join("Platform").join("WASI.cmake"), PLATFORM),
    ] {
        if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
            kiln_core::fs::write_atomic(&path, text.as_bytes())?;
        }
    }
    Ok(toolchain)
}

/// Asks CMake's file API for the codemodel of the build in `build_dir`;
/// CMake answers while it configures.
pub(crate) fn query_codemodel(build_dir: &Path) -> Result<()> {
    let query = build_dir.join(".cmake/api/v1/query/codemodel-v2");
    if !query.is_file() {
        kiln_core::fs::write_atomic(&query, b"")?;
    }
    Ok(())
}

/// A target of the configured project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Its name in CMakeLists.txt (`add_executable(NAME …)`).
    pub name: String,
    /// `EXECUTABLE`, `STATIC_LIBRARY`, `UTILITY`, …
    pub kind: String,
    /// The file it builds, when it builds one.
    pub artifact: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Index {
    reply: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Codemodel {
    configurations: Vec<Configuration>,
}

#[derive(Deserialize)]
struct Configuration {
    targets: Vec<TargetRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetRef {
    json_file: String,
}

#[derive(Deserialize)]
struct TargetJson {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    artifacts: Vec<Artifact>,
}

#[derive(Deserialize)]
struct Artifact {
    path: PathBuf,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("`{}` is not a CMake file API reply", path.display()))
}

/// The targets CMake reported for the build in `build_dir`, in its order.
pub(crate) fn targets(build_dir: &Path) -> Result<Vec<Target>> {
    let reply = build_dir.join(".cmake/api/v1/reply");
    // The newest index is the one whose name sorts last (cmake-file-api(7)).
    let index = std::fs::read_dir(&reply)
        .with_context(|| {
            format!(
                "CMake wrote no file API reply in `{}` (CMake 3.14 or newer is needed)",
                reply.display()
            )
        })?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("index-") && n.ends_with(".json"))
        .max()
        .with_context(|| format!("CMake wrote no file API index in `{}`", reply.display()))?;
    let index: Index = read_json(&reply.join(index))?;
    let Some(codemodel) = index
        .reply
        .get("codemodel-v2")
        .and_then(|c| c.get("jsonFile"))
        .and_then(|f| f.as_str())
    else {
        bail!(
            "CMake did not answer kiln's codemodel query in `{}`",
            reply.display()
        );
    };
    let codemodel: Codemodel = read_json(&reply.join(file_name(codemodel)?))?;
    let mut out = Vec::new();
    for configuration in codemodel.configurations.iter().take(1) {
        for target in &configuration.targets {
            let t: TargetJson = read_json(&reply.join(file_name(&target.json_file)?))?;
            out.push(Target {
                name: t.name,
                kind: t.kind,
                artifact: t
                    .artifacts
                    .into_iter()
                    .next()
                    .map(|a| build_dir.join(a.path)),
            });
        }
    }
    Ok(out)
}

/// A reply file's name, refused when it would lead out of the reply
/// directory.
fn file_name(name: &str) -> Result<&str> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        bail!("CMake's file API named an unexpected reply file `{name}`");
    }
    Ok(name)
}

/// The executable to build: the one named (`--cmake-target` or `[build]
/// cmake-target`), else the project's only executable.
pub(crate) fn choose<'a>(targets: &'a [Target], named: Option<&str>) -> Result<&'a Target> {
    let executables: Vec<&Target> = targets.iter().filter(|t| t.kind == "EXECUTABLE").collect();
    let listed = || {
        executables
            .iter()
            .map(|t| format!("`{}`", t.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = named {
        return match targets.iter().find(|t| t.name == name) {
            Some(t) if t.kind == "EXECUTABLE" => Ok(t),
            Some(t) => Err(hinted(
                format!(
                    "CMake target `{name}` is a {} target, not an executable",
                    t.kind.to_lowercase().replace('_', " ")
                ),
                if executables.is_empty() {
                    "kiln componentizes an executable; add one with `add_executable`".to_string()
                } else {
                    format!("name one of the executables: {}", listed())
                },
            )),
            None => Err(hinted(
                format!("the CMake project has no target `{name}`"),
                if executables.is_empty() {
                    "it defines no executable; add one with `add_executable`".to_string()
                } else {
                    format!("its executables are {}", listed())
                },
            )),
        };
    }
    match executables[..] {
        [one] => Ok(one),
        [] => Err(hinted(
            "the CMake project defines no executable target",
            "kiln componentizes an executable; add one with `add_executable`",
        )),
        _ => Err(hinted(
            format!(
                "the CMake project defines several executables: {}",
                listed()
            ),
            "choose one with `[build] cmake-target = \"NAME\"` in kiln.toml or `--cmake-target NAME`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, kind: &str) -> Target {
        Target {
            name: name.into(),
            kind: kind.into(),
            artifact: None,
        }
    }

    #[test]
    fn the_only_executable_is_chosen_unless_one_is_named() {
        let targets = [t("z", "STATIC_LIBRARY"), t("app", "EXECUTABLE")];
        assert_eq!(choose(&targets, None).unwrap().name, "app");
        assert_eq!(choose(&targets, Some("app")).unwrap().name, "app");
        let err = format!("{:#}", choose(&targets, Some("z")).unwrap_err());
        assert!(err.contains("static library"), "{err}");
        let err = format!("{:#}", choose(&targets, Some("nope")).unwrap_err());
        assert!(err.contains("no target `nope`"), "{err}");
    }

    #[test]
    fn several_executables_are_listed() {
        let targets = [t("example", "EXECUTABLE"), t("minigzip", "EXECUTABLE")];
        let err = choose(&targets, None).unwrap_err();
        let hint = err.downcast_ref::<kiln_core::Hinted>().unwrap();
        assert!(hint.message.contains("`example`, `minigzip`"), "{err}");
        assert!(hint.hint.contains("cmake-target"), "{err}");
        assert!(choose(&[t("z", "STATIC_LIBRARY")], None).is_err());
    }

    #[test]
    fn reply_file_names_stay_in_the_reply_directory() {
        assert!(file_name("target-a.json").is_ok());
        assert!(file_name("../x.json").is_err());
        assert!(file_name("/etc/passwd").is_err());
    }
}
