//! `bitbake -p` and `bitbake -g` for every machine, on the pinned layer snapshots, as an unprivileged user.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};

use super::*;
use crate::setup::is_root;

// --- bitbake ----------------------------------------------------------------------------

/// For each machine: a build directory under the cache (its parse cache kept between
/// runs), `bitbake -p`, then `bitbake -g portal-image portal-bundle`. The machines share
/// `BB_CACHEDIR` and `PERSISTENT_DIR`, so the second machine's parse reuses the first
/// one's code-parser cache.
pub(super) fn bitbake_checks(root: &Path, snapshots: &Path) -> Result<()> {
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

pub(super) fn locale_available() -> bool {
    Command::new("locale").arg("-a").output().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.eq_ignore_ascii_case("en_US.utf8") || l == "en_US.UTF-8")
    })
}

pub(super) fn builder_ids() -> Result<Option<(u32, u32)>> {
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
