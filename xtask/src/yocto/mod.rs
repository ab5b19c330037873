//! The kiosk image (`yocto/`): the kiosk recipe's crate list and the offline checks.
//!
//! - `cargo xtask yocto-crates [--check]` writes (or checks) meta-portal's
//!   `portal-crates.inc` from `Cargo.lock`: the `crate://` entries and checksums that
//!   oe-core's `cargo` class fetches and builds with `--frozen`.
//! - `cargo xtask yocto` runs the checks that need no network: the crate list matches the
//!   lock file; RAUC's `system.conf`, the SD card layout (wks) and the fstab agree; the kas
//!   files validate against kas's own schema and pin the commits of
//!   `../shared/yocto-layers/README.md`; `oelint-adv` finds nothing above info; and, with
//!   the pinned layer snapshots, `bitbake -p` and `bitbake -g portal-image portal-bundle`
//!   report no error for every machine. Without `../shared/yocto-layers` the bitbake part
//!   is skipped with a message. The layers, the build directories (their parse caches)
//!   and the Python tools live under `$HOME/.cache/portal/yocto`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::tally::{Background, Tally};
use crate::{display, run};

/// The machines of `yocto/kas/` (one kas file each).
const MACHINES: &[&str] = &["raspberrypi4-64", "raspberrypi5"];
/// The generated crate list, relative to the repository root.
const CRATES_INC: &str = "yocto/meta-portal/recipes-portal/portal-kiosk/portal-crates.inc";
const META_PORTAL: &str = "yocto/meta-portal";
const SYSTEM_CONF: &str = "yocto/meta-portal/recipes-core/rauc/files/system.conf";
const WKS: &str = "yocto/meta-portal/files/wic/portal-sdimage.wks.in";
const FSTAB: &str = "yocto/meta-portal/recipes-core/base-files/files/fstab";
const KIOSK_UNIT: &str = "yocto/meta-portal/recipes-portal/portal-kiosk/files/portal-kiosk.service";
/// The pinned layer snapshots, relative to the repository root.
const SNAPSHOTS: &str = "../shared/yocto-layers";
/// The layers of the build, relative to the unpacked snapshots (the kas files name the
/// same ones).
const LAYERS: &[&str] = &[
    "openembedded-core/meta",
    "meta-openembedded/meta-oe",
    "meta-openembedded/meta-python",
    "meta-openembedded/meta-multimedia",
    "meta-openembedded/meta-networking",
    "meta-raspberrypi",
    "meta-rauc",
    "meta-rauc-community/meta-rauc-raspberrypi",
    "meta-webkit",
];
/// bitbake refuses to run as root: as root, the checks run it as this user.
const BUILDER: &str = "portal-yocto";
/// The Python tools, installed into a virtualenv by `cargo xtask setup`.
const PY_TOOLS: &[&str] = &["oelint-adv>=9,<10", "kas>=5,<6", "jsonschema>=4"];
const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

mod bitbake;
mod crates;
mod layout;
mod lint;
mod setup;

use bitbake::bitbake_checks;
pub(crate) use crates::crates;
use layout::layout_agrees;
use lint::{kas_files, oelint};
pub(crate) use setup::setup;

// ---------------------------------------------------------------------------------------
// The checks

/// `cargo xtask test`'s part: the checks below as their own process, started now and
/// running beside the other tests at the lowest priority (a cold bitbake parse is minutes
/// of CPU that the browser tests, which mostly wait, leave idle); a failure is counted
/// and the rest of the suite still runs.
pub(crate) fn start(log: &Path) -> Result<Background> {
    let me = std::env::current_exe().context("the xtask binary")?;
    Tally::start(
        "yocto image checks (offline)",
        Command::new(me).arg("yocto"),
        log,
    )
}

/// `cargo xtask yocto`: every check; prints `# pass N` / `# fail N` for the tally.
pub(crate) fn check(root: &Path) -> Result<()> {
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut passed = 0u32;
    let mut step = |name: &str, result: Result<()>| match result {
        Ok(()) => {
            passed += 1;
            eprintln!("yocto: ok   {name}");
        }
        Err(e) => {
            eprintln!("yocto: FAIL {name}: {e:#}");
            failures.push(name.to_owned());
        }
    };
    step("crate list matches Cargo.lock", crates(root, true));
    step("RAUC, wks and fstab agree", layout_agrees(root));
    let venv = cache_dir()?.join("venv");
    step("kas files", kas_files(root, &venv));
    step("oelint-adv", oelint(root, &venv));
    let snapshots = root.join(SNAPSHOTS);
    if snapshots.is_dir() {
        step("bitbake (all machines)", bitbake_checks(root, &snapshots));
    } else {
        eprintln!(
            "yocto: SKIP bitbake -p / -g: {} is absent (the pinned layer snapshots)",
            snapshots.display()
        );
    }
    println!("# pass {passed}");
    println!("# fail {}", failures.len());
    eprintln!(
        "yocto: checks took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("yocto checks failed: {}", failures.join("; "))
    }
}

fn cache_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/portal/yocto"))
}
