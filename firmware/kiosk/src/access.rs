//! Who may use the kiosk's local endpoint, and the private directory it writes to.
//!
//! The endpoint listens on loopback, where every program of the machine can reach it,
//! and so can every web page in a browser on it: a page may POST `text/plain` without a
//! preflight, and through DNS rebinding it may even read answers. So:
//!
//! - every request but `GET /healthz` carries `Authorization: Bearer TOKEN`, a secret
//!   drawn at each start from the operating system's random source and written to a file
//!   only the kiosk's user can read (`--status-token-file`, default
//!   `$XDG_RUNTIME_DIR/portal-kiosk/status-token`, else a private directory under the
//!   temp dir); local tools and tests read it from there. A page cannot read that file,
//!   and a cross-site request cannot set the header without a preflight the endpoint never
//!   answers;
//! - the `Host` header must be `localhost` or an IP address (a rebinding attacker's page
//!   sends its own host name);
//! - a request with a body must say `Content-Type: application/json`.
//!
//! The same private directory holds snapshots, created without following links.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// The endpoint's secret for this run.
#[derive(Clone)]
pub(crate) struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A fresh 256-bit secret, hex.
    pub(crate) fn generate() -> Token {
        let bytes: [u8; 32] = rand::random();
        Token(bytes.iter().fold(String::with_capacity(64), |mut hex, b| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
            hex
        }))
    }

    /// Whether an `Authorization` header value carries this token (compared in constant
    /// time: both sides hashed first, so timing says nothing about the secret).
    pub(crate) fn admits(&self, header: Option<&str>) -> bool {
        let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        let a = Sha256::digest(given.trim().as_bytes());
        let b = Sha256::digest(self.0.as_bytes());
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }

    /// Writes the token to `path` (mode 0600, replacing an older file of ours).
    pub(crate) fn write_to(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir)?;
        }
        let temp = path.with_extension("new");
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc_o_nofollow())
            .open(&temp)
            .with_context(|| format!("creating {}", temp.display()))?;
        file.write_all(self.0.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path).with_context(|| format!("replacing {}", path.display()))
    }
}

/// `O_NOFOLLOW` (Linux): never open through a symbolic link.
const fn libc_o_nofollow() -> i32 {
    0o400_000
}

/// The kiosk's private runtime directory: `$XDG_RUNTIME_DIR/portal-kiosk`, else
/// `portal-kiosk-UID` in the temp dir.
pub(crate) fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("portal-kiosk"),
        _ => {
            let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
            std::env::temp_dir().join(format!("portal-kiosk-{uid}"))
        }
    }
}

/// Makes `dir` (mode 0700) or checks that an existing one is a real directory owned by us
/// and closed to others, so nobody else can plant files or links in it.
pub(crate) fn private_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => {
            let uid = std::fs::metadata("/proc/self").map(|m| m.uid())?;
            if !meta.is_dir() || meta.file_type().is_symlink() {
                bail!("{} is not a directory", dir.display());
            }
            if meta.uid() != uid {
                bail!("{} belongs to another user", dir.display());
            }
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("closing {}", dir.display()))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display())),
        Err(e) => Err(e).with_context(|| format!("{}", dir.display())),
    }
}

/// Writes `bytes` as a new file `path` in a private directory, never through a link.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc_o_nofollow())
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

/// Whether a `Host` header names this machine by address (or `localhost`), as a local
/// tool does; a page that rebinds its own name to 127.0.0.1 sends that name.
pub(crate) fn local_host(header: Option<&str>) -> bool {
    let Some(host) = header else { return false };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bearer_of_the_token_is_admitted() {
        let token = Token::generate();
        assert_eq!(token.0.len(), 64);
        let header = format!("Bearer {}", token.0);
        assert!(token.admits(Some(&header)));
        assert!(!token.admits(None));
        assert!(!token.admits(Some(&token.0)));
        assert!(!token.admits(Some("Bearer ")));
        assert!(
            !Token::generate().admits(Some(&header)),
            "a new start, a new secret"
        );
        assert_eq!(format!("{token:?}"), "Token(..)", "never in a log");
    }

    #[test]
    fn hosts_by_address_pass_and_names_do_not() {
        for ok in [
            "127.0.0.1:8090",
            "localhost:8090",
            "[::1]:8090",
            "10.1.2.3",
            "LOCALHOST",
        ] {
            assert!(local_host(Some(ok)), "{ok}");
        }
        for bad in ["evil.example:8090", "127.0.0.1.nip.io:8090", "", "[evil]:1"] {
            assert!(!local_host(Some(bad)), "{bad}");
        }
        assert!(!local_host(None));
    }

    #[test]
    fn private_files_are_private_and_links_are_not_followed() {
        let dir = std::env::temp_dir().join(format!("portal-access-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let token = Token::generate();
        token.write_to(&dir.join("status-token")).expect("written");
        let meta = std::fs::metadata(dir.join("status-token")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::os::unix::fs::symlink("/etc/hostname", dir.join("snap.png")).unwrap();
        assert!(write_private(&dir.join("snap.png"), b"x").is_err());
        assert!(std::fs::read_to_string("/etc/hostname").is_ok_and(|t| t != "x"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
