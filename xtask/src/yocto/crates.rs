//! `cargo xtask yocto-crates`: meta-portal's crate list from `Cargo.lock`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail, ensure};

use super::*;

// ---------------------------------------------------------------------------------------
// yocto-crates

/// `cargo xtask yocto-crates [--check]`.
pub(crate) fn crates(root: &Path, check: bool) -> Result<()> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let want = crates_inc(&lock)?;
    let path = root.join(CRATES_INC);
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if check {
        if have != want {
            let entries = |text: &str| -> BTreeSet<String> {
                text.lines()
                    .filter_map(|l| l.trim().strip_prefix("crate://crates.io/"))
                    .map(|l| l.trim_end_matches(" \\").to_owned())
                    .collect()
            };
            let (old, new) = (entries(&have), entries(&want));
            let added: Vec<_> = new.difference(&old).cloned().collect();
            let gone: Vec<_> = old.difference(&new).cloned().collect();
            bail!(
                "{CRATES_INC} does not match Cargo.lock (in the lock, not the list: {}; in the \
                 list, not the lock: {}): run `cargo xtask yocto-crates`",
                list_or_none(&added),
                list_or_none(&gone)
            );
        }
        eprintln!("yocto-crates: {CRATES_INC} matches Cargo.lock");
    } else if have == want {
        eprintln!("yocto-crates: {CRATES_INC} is up to date");
    } else {
        std::fs::write(&path, want).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("yocto-crates: wrote {CRATES_INC}");
    }
    Ok(())
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The `.inc` for a lock file: every crates.io package with its checksum, in lock order
/// (`SRC_URI[NAME-VERSION.sha256sum]`, as oe-core's `cargo-update-recipe-crates` writes).
/// Workspace members (no `source`) need nothing; a git or other-registry dependency is
/// refused: cargo.bbclass wants those as `git://` entries with `name=` and `destsuffix=`,
/// written by hand in the recipe.
fn crates_inc(lock: &str) -> Result<String> {
    let lock: toml::Table = lock.parse().context("Cargo.lock is not TOML")?;
    let packages = lock
        .get("package")
        .and_then(toml::Value::as_array)
        .context("Cargo.lock has no [[package]]")?;
    let mut uris = String::new();
    let mut sums = String::new();
    for package in packages {
        let field = |key: &str| package.get(key).and_then(toml::Value::as_str);
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            bail!("a Cargo.lock package without name or version: {package}");
        };
        let Some(source) = field("source") else {
            continue; // a workspace member or path dependency: built from the checkout
        };
        if source.starts_with("git+") {
            bail!(
                "{name} {version} is a git dependency ({source}): cargo.bbclass needs it as a \
                 git:// SRC_URI entry (name=, destsuffix=) in portal-kiosk's recipe; add it \
                 there by hand or depend on a crates.io release"
            );
        }
        ensure!(
            source == CRATES_IO,
            "{name} {version} comes from {source}, not crates.io: no crate:// fetcher for it"
        );
        let checksum = field("checksum")
            .with_context(|| format!("{name} {version} has no checksum in Cargo.lock"))?;
        writeln!(uris, "    crate://crates.io/{name}/{version} \\")?;
        writeln!(sums, "SRC_URI[{name}-{version}.sha256sum] = \"{checksum}\"")?;
    }
    Ok(format!(
        "# Generated from Cargo.lock by `cargo xtask yocto-crates`; do not edit.\n\
         # `cargo xtask yocto-crates --check` fails when it no longer matches the lock file.\n\
         \n\
         SRC_URI += \"\\\n{uris}\"\n\n{sums}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_list_from_a_lock_file() {
        let lock = r#"
version = 4

[[package]]
name = "portal-kiosk"
version = "0.1.0"

[[package]]
name = "serde"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "abc"
"#;
        let inc = crates_inc(lock).unwrap();
        assert!(inc.contains("    crate://crates.io/serde/1.0.0 \\\n"));
        assert!(inc.contains("SRC_URI[serde-1.0.0.sha256sum] = \"abc\"\n"));
        assert!(!inc.contains("portal-kiosk"));
        let git = lock.replace(
            "registry+https://github.com/rust-lang/crates.io-index",
            "git+https://example.invalid/serde#0123",
        );
        let err = crates_inc(&git).unwrap_err().to_string();
        assert!(err.contains("git dependency"), "{err}");
    }
}
