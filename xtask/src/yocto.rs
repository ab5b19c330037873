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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};

use crate::setup::is_root;
use crate::tally::Tally;
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

// ---------------------------------------------------------------------------------------
// The checks

/// `cargo xtask test`'s part: the checks below, as their own process so that a failure
/// is counted and the rest of the suite still runs.
pub(crate) fn test(tally: &mut Tally) -> Result<()> {
    let me = std::env::current_exe().context("the xtask binary")?;
    tally.run(
        "yocto image checks (offline)",
        Command::new(me).arg("yocto"),
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

// --- layout agreement -------------------------------------------------------------------

/// One partition of the wks file, numbered as the kernel will (`mmcblk0pN`).
#[derive(Debug)]
struct Part {
    number: u32,
    mount: String,
    fstype: String,
    source: Option<String>,
}

fn wks_parts(text: &str) -> Result<Vec<Part>> {
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("part "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let gpt = text
        .lines()
        .any(|l| l.trim().starts_with("bootloader") && l.contains("--ptable gpt"));
    let mut parts = Vec::new();
    for (index, words) in lines.iter().enumerate() {
        let index = u32::try_from(index)?;
        // An msdos table has four primaries; beyond that wic makes the fourth an
        // extended partition and numbers the logical ones from 5.
        let number = if gpt || lines.len() <= 4 || index < 3 {
            index + 1
        } else {
            index + 2
        };
        let option = |name: &str| {
            words
                .iter()
                .position(|w| *w == name)
                .and_then(|i| words.get(i + 1))
                .map(|v| {
                    v.trim_start_matches(&['=', '"'][..])
                        .trim_end_matches('"')
                        .to_owned()
                })
                .or_else(|| {
                    words
                        .iter()
                        .find_map(|w| w.strip_prefix(&format!("{name}=")).map(str::to_owned))
                })
        };
        parts.push(Part {
            number,
            mount: words.get(1).map(|s| (*s).to_owned()).unwrap_or_default(),
            fstype: option("--fstype").context("a wks part without --fstype")?,
            source: option("--source"),
        });
    }
    Ok(parts)
}

/// `[section]` → key → value of an ini file (RAUC's system.conf, a systemd unit; a
/// repeated key keeps its last value).
fn ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            name.clone_into(&mut current);
        } else if let Some((key, value)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    sections
}

/// fstab: mount point → (device, fstype, options).
fn fstab(text: &str) -> BTreeMap<String, (String, String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| {
                (
                    f[1].to_owned(),
                    (f[0].to_owned(), f[2].to_owned(), f[3].to_owned()),
                )
            })
        })
        .collect()
}

fn partition_number(device: &str) -> Option<u32> {
    device.strip_prefix("/dev/mmcblk0p")?.parse().ok()
}

/// The mount point (of `mounts`) that holds `path`: the longest prefix.
fn mount_of<'a>(path: &str, mounts: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    mounts
        .filter(|m| {
            path == m.as_str()
                || m.as_str() == "/"
                || path.starts_with(&format!("{}/", m.trim_end_matches('/')))
        })
        .max_by_key(|m| m.len())
}

/// RAUC's slots are the wks's root partitions, the fstab mounts what the wks lays out,
/// and what RAUC and the kiosk keep lies on the data partition.
fn layout_agrees(root: &Path) -> Result<()> {
    let read =
        |p: &str| std::fs::read_to_string(root.join(p)).with_context(|| format!("reading {p}"));
    layout_agrees_text(
        &read(SYSTEM_CONF)?,
        &read(WKS)?,
        &read(FSTAB)?,
        &read(KIOSK_UNIT)?,
    )
}

fn layout_agrees_text(system_conf: &str, wks: &str, fstab_text: &str, unit: &str) -> Result<()> {
    let parts = wks_parts(wks)?;
    let part = |n: u32| parts.iter().find(|p| p.number == n);
    let conf = ini(system_conf);
    let system = conf.get("system").context("system.conf has no [system]")?;
    ensure!(
        system.get("bootloader").map(String::as_str) == Some("uboot"),
        "system.conf: bootloader is not uboot"
    );

    // Slots ↔ the wks's root filesystems.
    let roots: BTreeSet<u32> = parts
        .iter()
        .filter(|p| p.mount == "/" && p.source.as_deref() == Some("rootfs"))
        .map(|p| p.number)
        .collect();
    ensure!(
        roots.len() == 2,
        "the wks has {} root partitions, not 2 (A/B)",
        roots.len()
    );
    let mut slot_parts = BTreeSet::new();
    let mut bootnames = BTreeSet::new();
    for (name, slot) in conf.iter().filter(|(n, _)| n.starts_with("slot.rootfs.")) {
        let device = slot
            .get("device")
            .with_context(|| format!("[{name}] has no device"))?;
        let n = partition_number(device)
            .with_context(|| format!("[{name}] device {device} is not a partition of mmcblk0"))?;
        let p =
            part(n).with_context(|| format!("[{name}] {device}: the wks has no partition {n}"))?;
        ensure!(
            roots.contains(&n),
            "[{name}] {device} is partition {n}, which the wks mounts at {:?}, not a root filesystem",
            p.mount
        );
        let kind = slot.get("type").map_or("raw", String::as_str);
        ensure!(
            kind == p.fstype,
            "[{name}] type={kind} but the wks makes partition {n} {}",
            p.fstype
        );
        ensure!(slot_parts.insert(n), "two slots on partition {n}");
        let bootname = slot
            .get("bootname")
            .with_context(|| format!("[{name}] has no bootname"))?;
        ensure!(
            bootnames.insert(bootname.clone()),
            "bootname {bootname} twice"
        );
    }
    ensure!(
        slot_parts == roots,
        "RAUC's slots are on partitions {slot_parts:?}, the wks's root filesystems on {roots:?}"
    );
    ensure!(
        bootnames == BTreeSet::from(["A".to_owned(), "B".to_owned()]),
        "bootnames are {bootnames:?}, not A and B (the U-Boot script knows those)"
    );

    // fstab ↔ wks: every mmcblk0 partition mounted is the one the wks lays out there.
    let mounts = fstab(fstab_text);
    for part in parts.iter().filter(|p| p.mount != "/") {
        let (device, fstype, _) = mounts.get(&part.mount).with_context(|| {
            format!(
                "the fstab does not mount {} (wks partition {})",
                part.mount, part.number
            )
        })?;
        ensure!(
            partition_number(device) == Some(part.number),
            "the fstab mounts {device} at {}, the wks puts it on partition {}",
            part.mount,
            part.number
        );
        ensure!(
            *fstype == part.fstype,
            "the fstab mounts {} as {fstype}, the wks makes it {}",
            part.mount,
            part.fstype
        );
    }
    for (mount, (device, _, _)) in &mounts {
        if let Some(n) = partition_number(device) {
            ensure!(
                part(n).is_some_and(|p| &p.mount == mount),
                "the fstab mounts {device} at {mount}, which the wks does not lay out there"
            );
            ensure!(
                !roots.contains(&n),
                "the fstab mounts root slot {device} at {mount}"
            );
        }
    }
    let (_, _, root_options) = mounts.get("/").context("the fstab has no / entry")?;
    ensure!(
        root_options.split(',').any(|o| o == "ro"),
        "the fstab mounts / read-write (the image is read-only)"
    );

    // What must survive an update lies on the data partition.
    let data = mounts
        .get("/data")
        .context("the fstab does not mount /data")?;
    ensure!(
        partition_number(&data.0).is_some(),
        "/data is not an mmcblk0 partition"
    );
    let data_dir = system
        .get("data-directory")
        .context("system.conf has no data-directory")?;
    let on_data = |path: &str| mount_of(path, mounts.keys()).is_some_and(|m| m == "/data");
    ensure!(
        on_data(data_dir),
        "RAUC's data-directory {data_dir} is not on the /data partition"
    );
    let unit_text = unit;
    let unit = ini(unit);
    let service = unit
        .get("Service")
        .context("the kiosk unit has no [Service]")?;
    for path in service
        .get("ReadWritePaths")
        .context("the kiosk unit has no ReadWritePaths")?
        .split_whitespace()
    {
        ensure!(on_data(path), "the kiosk unit writes {path}, not on /data");
    }
    let config = unit_text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Environment=PORTAL_KIOSK_CONFIG="))
        .context("the kiosk unit does not set PORTAL_KIOSK_CONFIG")?;
    ensure!(
        on_data(config),
        "PORTAL_KIOSK_CONFIG={config} is not on /data"
    );
    Ok(())
}

// --- kas --------------------------------------------------------------------------------

/// The kas files validate against the schema of the installed kas, their includes exist,
/// and the layers are pinned to the snapshots' commits.
fn kas_files(root: &Path, venv: &Path) -> Result<()> {
    let python = venv.join("bin/python3");
    ensure!(
        python.exists(),
        "{} is missing: run `cargo xtask setup`",
        python.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("yocto/kas"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    ensure!(!files.is_empty(), "no kas files in yocto/kas");
    for machine in MACHINES {
        ensure!(
            files.iter().any(|f| f.ends_with(format!("{machine}.yml"))),
            "yocto/kas/{machine}.yml is missing"
        );
    }
    let pins = pinned_commits(&root.join(SNAPSHOTS).join("README.md"))?;
    let mut cmd = Command::new(&python);
    cmd.arg("-c")
        .arg(KAS_CHECK)
        .arg(root)
        .arg(serde_json::to_string(&pins)?)
        .args(&files);
    eprintln!(
        "$ {} -c <kas schema check> {}",
        python.display(),
        files.len()
    );
    let status = cmd.status().context("running the kas check")?;
    ensure!(status.success(), "kas files: see above");
    Ok(())
}

/// The README's table of layer → (branch, commit); a fallback when the snapshots are not
/// on this machine (kas files are still checked against the schema).
fn pinned_commits(readme: &Path) -> Result<BTreeMap<String, (String, String)>> {
    let Ok(text) = std::fs::read_to_string(readme) else {
        eprintln!("yocto: {} absent: commits not compared", readme.display());
        return Ok(BTreeMap::new());
    };
    let mut pins = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if let [layer, _, branch, commit] = cells[..]
            && commit.len() == 40
            && commit.bytes().all(|b| b.is_ascii_hexdigit())
        {
            pins.insert(layer.to_owned(), (branch.to_owned(), commit.to_owned()));
        }
    }
    ensure!(
        !pins.is_empty(),
        "no pinned commits found in {}",
        readme.display()
    );
    Ok(pins)
}

/// Run with the venv's Python: argv = root, pins (JSON), kas files.
const KAS_CHECK: &str = r#"
import json, os, sys
import jsonschema, yaml
from kas.configschema import CONFIGSCHEMA
root, pins, files = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
validator = jsonschema.Draft7Validator(CONFIGSCHEMA)
problems = []
pinned = {}
for path in files:
    rel = os.path.relpath(path, root)
    with open(path) as f:
        data = yaml.safe_load(f)
    for e in sorted(validator.iter_errors(data), key=str):
        problems.append(f"{rel}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")
    for inc in (data.get("header") or {}).get("includes") or []:
        if isinstance(inc, str) and not os.path.isfile(os.path.join(root, inc)):
            problems.append(f"{rel}: includes {inc}, which does not exist (relative to the repository root)")
    for name, repo in (data.get("repos") or {}).items():
        if isinstance(repo, dict) and repo.get("url"):
            pinned[name] = repo
for name, (branch, commit) in pins.items():
    repo = pinned.get(name)
    if repo is None:
        problems.append(f"the kas files do not pin {name}")
    elif repo.get("commit") != commit or str(repo.get("branch")) != branch:
        problems.append(f"{name}: kas pins {repo.get('branch')}@{repo.get('commit')}, the snapshots are {branch}@{commit}")
for p in problems:
    print("kas:", p, file=sys.stderr)
print(f"kas: {len(files)} files checked against kas's schema, {len(pinned)} repos pinned", file=sys.stderr)
sys.exit(1 if problems else 0)
"#;

// --- oelint -----------------------------------------------------------------------------

/// `oelint-adv --quiet --release wrynose` over meta-portal's recipes: nothing above info.
fn oelint(root: &Path, venv: &Path) -> Result<()> {
    let tool = venv.join("bin/oelint-adv");
    ensure!(
        tool.exists(),
        "{} is missing: run `cargo xtask setup`",
        tool.display()
    );
    let mut recipes = Vec::new();
    collect(&root.join(META_PORTAL), &mut |p: &Path| {
        if p.extension().is_some_and(|e| e == "bb" || e == "bbappend") {
            recipes.push(p.to_owned());
        }
    })?;
    recipes.sort();
    let mut cmd = Command::new(&tool);
    // meta-rauc's variables (bundle.bbclass) are known to oelint-adv as the `rauc` layer.
    cmd.args([
        "--quiet",
        "--release",
        "wrynose",
        "--hide",
        "info",
        "--extra-layer",
        "rauc",
        "--",
    ])
    .args(&recipes)
    .current_dir(root);
    eprintln!("$ {}", display(&cmd));
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {}", tool.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(":warning:") || l.contains(":error:"))
        .collect();
    for line in text.lines() {
        eprintln!("{line}");
    }
    ensure!(
        findings.is_empty(),
        "oelint-adv: {} findings above info in {} recipes",
        findings.len(),
        recipes.len()
    );
    // oelint-adv exits with the number of findings; anything else is a crash.
    ensure!(
        out.status.success() || text.lines().any(|l| l.contains(":info:")),
        "oelint-adv failed ({})",
        out.status
    );
    eprintln!("oelint-adv: {} recipes, nothing above info", recipes.len());
    Ok(())
}

fn collect(dir: &Path, found: &mut dyn FnMut(&Path)) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, found)?;
        } else {
            found(&path);
        }
    }
    Ok(())
}

// --- bitbake ----------------------------------------------------------------------------

/// For each machine: a build directory under the cache (its parse cache kept between
/// runs), `bitbake -p`, then `bitbake -g portal-image portal-bundle`. The machines share
/// `BB_CACHEDIR` and `PERSISTENT_DIR`, so the second machine's parse reuses the first
/// one's code-parser cache.
fn bitbake_checks(root: &Path, snapshots: &Path) -> Result<()> {
    let cache = cache_dir()?;
    let layers = unpack_layers(snapshots, &cache.join("layers"))?;
    let builder = Builder::new(&cache, root)?;
    let persistent = cache.join("persistent");
    builder.own_dir(&persistent)?;
    let meta_portal = root.join(META_PORTAL);
    for machine in MACHINES {
        let build = cache.join(format!("build-{machine}"));
        builder.own_dir(&build)?;
        builder.own_dir(&build.join("conf"))?;
        let conf = build.join("conf");
        builder.write(&conf.join("local.conf"), &local_conf(machine, &persistent))?;
        builder.write(
            &conf.join("bblayers.conf"),
            &bblayers_conf(&layers, &meta_portal),
        )?;
        let started = Instant::now();
        let result = run(&mut builder.bitbake(&layers, &build, &["-p"])).and_then(|()| {
            eprintln!(
                "yocto: {machine}: bitbake -p took {:.0} s",
                started.elapsed().as_secs_f64()
            );
            run(&mut builder.bitbake(&layers, &build, &["-g", "portal-image", "portal-bundle"]))
        });
        // Stop the memory-resident server either way.
        let _ = builder.bitbake(&layers, &build, &["-m"]).output();
        result.with_context(|| format!("bitbake for {machine}"))?;
        eprintln!(
            "yocto: {machine}: bitbake -p and -g took {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn local_conf(machine: &str, persistent: &Path) -> String {
    format!(
        "# Written by `cargo xtask yocto`: the offline checks' configuration (the image's \
         settings are\n# meta-portal's distro, as with kas).\n\
         MACHINE = \"{machine}\"\n\
         DISTRO = \"portal\"\n\
         CONF_VERSION = \"2\"\n\
         BB_NO_NETWORK = \"1\"\n\
         # Shared by the machines: the second parse reuses the first one's code-parser cache\n\
         # (BB_CACHEDIR) and file checksums (PERSISTENT_DIR).\n\
         BB_CACHEDIR = \"{shared}\"\n\
         PERSISTENT_DIR = \"{shared}\"\n\
         # AUTOREV would ask git (ls-remote) at parse time, which BB_NO_NETWORK forbids.\n\
         PORTAL_SRCREV = \"0000000000000000000000000000000000000000\"\n",
        shared = persistent.display()
    )
}

fn bblayers_conf(layers: &Path, meta_portal: &Path) -> String {
    let mut s = String::from(
        "# Written by `cargo xtask yocto`.\nBBPATH = \"${TOPDIR}\"\nBBFILES ?= \"\"\nBBLAYERS = \" \\\n",
    );
    for layer in LAYERS {
        let _ = writeln!(s, "  {} \\", layers.join(layer).display());
    }
    let _ = writeln!(s, "  {} \\\n\"", meta_portal.display());
    s
}

/// Unpacks the snapshots once; again only when an archive's size or mtime changes.
fn unpack_layers(snapshots: &Path, dest: &Path) -> Result<PathBuf> {
    let mut archives: Vec<PathBuf> = std::fs::read_dir(snapshots)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.xz"))
        .collect();
    archives.sort();
    ensure!(
        !archives.is_empty(),
        "no .tar.xz in {}",
        snapshots.display()
    );
    let mut key = String::new();
    for archive in &archives {
        let meta = std::fs::metadata(archive)?;
        let mtime = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        writeln!(key, "{} {} {mtime}", archive.display(), meta.len())?;
    }
    let stamp = dest.join(".unpacked");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == key) {
        return Ok(dest.to_owned());
    }
    eprintln!(
        "yocto: unpacking the layer snapshots into {}",
        dest.display()
    );
    if dest.exists() {
        std::fs::remove_dir_all(dest)?;
    }
    std::fs::create_dir_all(dest)?;
    for archive in &archives {
        run(Command::new("tar")
            .arg("-xJf")
            .arg(archive)
            .arg("--no-same-owner")
            .arg("-C")
            .arg(dest))?;
    }
    std::fs::write(&stamp, key)?;
    Ok(dest.to_owned())
}

/// Who runs bitbake: this user, or (as root) the unprivileged [`BUILDER`].
struct Builder {
    /// uid and gid of [`BUILDER`] when running as root.
    ids: Option<(u32, u32)>,
    home: PathBuf,
}

impl Builder {
    fn new(cache: &Path, root: &Path) -> Result<Self> {
        ensure!(
            locale_available(),
            "the en_US.UTF-8 locale is missing: run `cargo xtask setup`"
        );
        std::fs::create_dir_all(cache)?;
        if !is_root() {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .context("HOME")?;
            return Ok(Self { ids: None, home });
        }
        let ids = builder_ids()?.context("no builder user: run `cargo xtask setup`")?;
        // The builder must reach the cache and read the checkout: let it traverse their
        // ancestors (search permission only, e.g. on /root).
        for dir in [cache, root] {
            for ancestor in dir.ancestors() {
                use std::os::unix::fs::PermissionsExt as _;
                let meta = std::fs::metadata(ancestor)?;
                let mode = meta.permissions().mode();
                if mode & 0o001 == 0 {
                    eprintln!(
                        "yocto: letting {BUILDER} traverse {} (o+x)",
                        ancestor.display()
                    );
                    std::fs::set_permissions(
                        ancestor,
                        std::fs::Permissions::from_mode(mode | 0o001),
                    )?;
                }
            }
        }
        let builder = Self {
            ids: Some(ids),
            home: cache.join("home"),
        };
        builder.own_dir(cache)?;
        builder.own_dir(&builder.home)?;
        Ok(builder)
    }

    /// Creates `dir` (if needed) owned by the builder.
    fn own_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        self.own(dir)
    }

    fn own(&self, path: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }

    /// Writes a file only when its content changes (an unchanged configuration keeps
    /// bitbake's parse cache valid).
    fn write(&self, path: &Path, content: &str) -> Result<()> {
        if std::fs::read_to_string(path).is_ok_and(|s| s == content) {
            return Ok(());
        }
        std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
        self.own(path)
    }

    /// `bitbake ARGS` in `build`, as the builder, with a clean environment.
    fn bitbake(&self, layers: &Path, build: &Path, args: &[&str]) -> Command {
        let mut cmd = if self.ids.is_some() {
            let mut c = Command::new("runuser");
            c.args(["-u", BUILDER, "--", "env", "-i"]);
            c
        } else {
            let mut c = Command::new("env");
            c.arg("-i");
            c
        };
        cmd.arg(format!("HOME={}", self.home.display()))
            .arg("LANG=en_US.UTF-8")
            .arg("LC_ALL=en_US.UTF-8")
            .arg(format!(
                "PATH={}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                layers.join("bitbake/bin").display()
            ))
            // Keep the server (and its parsed recipes) between -p and -g.
            .arg("BB_SERVER_TIMEOUT=60")
            .arg("bitbake")
            .args(args)
            .current_dir(build);
        cmd
    }
}

fn locale_available() -> bool {
    Command::new("locale").arg("-a").output().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.eq_ignore_ascii_case("en_US.utf8") || l == "en_US.UTF-8")
    })
}

fn builder_ids() -> Result<Option<(u32, u32)>> {
    let id = |flag: &str| -> Result<Option<u32>> {
        let out = Command::new("id").args([flag, BUILDER]).output()?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(Some(String::from_utf8_lossy(&out.stdout).trim().parse()?))
    };
    Ok(match (id("-u")?, id("-g")?) {
        (Some(u), Some(g)) => Some((u, g)),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------
// setup

/// Part of `cargo xtask setup`: the en_US.UTF-8 locale, the unprivileged builder (as
/// root) and the Python tools (oelint-adv, kas, jsonschema) in a virtualenv.
pub(crate) fn setup() -> Result<()> {
    if !locale_available() {
        let gen_file = Path::new("/etc/locale.gen");
        let text = std::fs::read_to_string(gen_file).unwrap_or_default();
        if !text.lines().any(|l| l.trim() == "en_US.UTF-8 UTF-8") {
            let text = if text.contains("# en_US.UTF-8 UTF-8") {
                text.replace("# en_US.UTF-8 UTF-8", "en_US.UTF-8 UTF-8")
            } else {
                format!("{text}en_US.UTF-8 UTF-8\n")
            };
            sudo_write(gen_file, &text)?;
        }
        run(&mut sudo(&["locale-gen"]))?;
    }
    if is_root() && builder_ids()?.is_none() {
        run(Command::new("useradd").args([
            "--create-home",
            "--shell",
            "/bin/sh",
            "--comment",
            "runs bitbake for cargo xtask yocto",
            BUILDER,
        ]))?;
    }
    let venv = cache_dir()?.join("venv");
    let stamp = venv.join(".portal-tools");
    let wanted = PY_TOOLS.join("\n");
    if !std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PY_TOOLS))?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(())
}

fn sudo(args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    } else {
        let mut c = Command::new("sudo");
        c.args(args);
        c
    }
}

fn sudo_write(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut child = sudo(&["tee", &path.to_string_lossy()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(text.as_bytes())?;
    ensure!(child.wait()?.success(), "cannot write {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask sits in the repository root")
            .to_owned()
    }

    #[test]
    fn rauc_wks_and_fstab_agree() {
        layout_agrees(&root()).unwrap();
    }

    const SYSTEM_CONF_OK: &str = "[system]\nbootloader=uboot\ndata-directory=/data/rauc\n\
        [slot.rootfs.0]\ndevice=/dev/mmcblk0p2\ntype=ext4\nbootname=A\n\
        [slot.rootfs.1]\ndevice=/dev/mmcblk0p3\ntype=ext4\nbootname=B\n";
    const WKS_OK: &str = "part /boot --source bootimg_partition --fstype=vfat --label boot\n\
        part / --source rootfs --fstype=ext4 --label rootfs_A\n\
        part / --source rootfs --fstype=ext4 --label rootfs_B\n\
        part /data --fstype=ext4 --label data --fixed-size 256M\n";
    const FSTAB_OK: &str = "/dev/root / auto ro 1 1\n/dev/mmcblk0p1 /boot vfat defaults 0 2\n\
        /dev/mmcblk0p4 /data ext4 defaults 0 2\n";
    const UNIT_OK: &str = "[Service]\nEnvironment=PORTAL_KIOSK_CONFIG=/data/portal/kiosk.toml\n\
        ReadWritePaths=/data/portal\n";

    #[test]
    fn layout_mismatches_are_caught() {
        layout_agrees_text(SYSTEM_CONF_OK, WKS_OK, FSTAB_OK, UNIT_OK).unwrap();
        let cases = [
            (
                SYSTEM_CONF_OK.replace("mmcblk0p3", "mmcblk0p4"),
                WKS_OK.to_owned(),
                FSTAB_OK.to_owned(),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.to_owned(),
                WKS_OK.to_owned(),
                FSTAB_OK.replace("mmcblk0p4", "mmcblk0p5"),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.to_owned(),
                WKS_OK.replace("part /data --fstype=ext4", "part /data --fstype=vfat"),
                FSTAB_OK.to_owned(),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.replace("/data/rauc", "/var/lib/rauc"),
                WKS_OK.to_owned(),
                FSTAB_OK.to_owned(),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.to_owned(),
                WKS_OK.to_owned(),
                FSTAB_OK.replace(" ro ", " defaults "),
                UNIT_OK.to_owned(),
            ),
            (
                SYSTEM_CONF_OK.to_owned(),
                WKS_OK.to_owned(),
                FSTAB_OK.to_owned(),
                UNIT_OK.replace(
                    "ReadWritePaths=/data/portal",
                    "ReadWritePaths=/var/lib/portal",
                ),
            ),
        ];
        for (conf, wks, fstab, unit) in cases {
            assert!(
                layout_agrees_text(&conf, &wks, &fstab, &unit).is_err(),
                "not caught:\n{conf}\n{wks}\n{fstab}\n{unit}"
            );
        }
    }

    #[test]
    fn msdos_tables_number_logical_partitions_from_five() {
        let wks = format!("{WKS_OK}part /home --fstype=ext4 --label home\n");
        let numbers: Vec<u32> = wks_parts(&wks).unwrap().iter().map(|p| p.number).collect();
        assert_eq!(numbers, [1, 2, 3, 5, 6]);
    }

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
