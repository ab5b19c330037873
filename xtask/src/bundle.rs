//! `cargo xtask bundle`: a signed, plain RAUC bundle and the update feed's manifest for
//! it (`manifest.json` beside the bundle), ready to drop into
//! `portal-server --updates-dir DIR` as `DIR/{compatible}/`.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use portal_testkit::rauc::{BundleSpec, build_bundle, write_feed_manifest};

/// What `cargo xtask bundle` was given.
#[derive(clap::Args, Debug)]
pub(crate) struct BundleArgs {
    /// Images to put in the bundle: each file `CLASS.EXT` goes to slot class `CLASS`.
    #[arg(long)]
    dir: PathBuf,
    /// Signing certificate (PEM, extendedKeyUsage=codeSigning).
    #[arg(long)]
    cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// RAUC compatible string of the devices it is for.
    #[arg(long)]
    compatible: String,
    /// Semantic version of the update.
    #[arg(long)]
    version: String,
    /// Release notes shown on the kiosk.
    #[arg(long, default_value = "")]
    notes: String,
    /// The bundle to write (`.raucb`); `manifest.json` goes beside it.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn bundle(args: &BundleArgs) -> Result<()> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
    };
    if !valid(&args.compatible) || !valid(&args.version) {
        bail!("--compatible and --version are plain names ([A-Za-z0-9._+-])");
    }
    if !args.dir.is_dir() {
        bail!("--dir {} is not a directory", args.dir.display());
    }
    let built = build_bundle(&BundleSpec {
        content: &args.dir,
        cert: &args.cert,
        key: &args.key,
        compatible: &args.compatible,
        version: &args.version,
        out: &args.out,
        post_install_hook: None,
    })
    .context("rauc bundle")?;
    let manifest = write_feed_manifest(&built, &args.compatible, &args.version, &args.notes)?;
    println!(
        "{} ({} bytes, sha256 {})\n{}",
        built.path.display(),
        built.size,
        built.sha256,
        manifest.display()
    );
    Ok(())
}
