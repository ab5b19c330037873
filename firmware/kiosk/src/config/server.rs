//! The rooms server's address: checked ([`server_url`]) and saved into the config file by
//! the first-run screen ([`save_server`]).

use std::path::Path;

use anyhow::{Context, bail};

/// `ws://host:port` → `ws://host:port/ws`; a URL with a path is kept as it is.
pub(crate) fn ws_url(server: &str) -> anyhow::Result<String> {
    let server = server.trim();
    let Some((scheme, rest)) = server.split_once("://") else {
        bail!("{server:?} is not a ws:// or wss:// address");
    };
    if scheme != "ws" && scheme != "wss" {
        bail!("{server:?} is not a ws:// or wss:// address");
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{server:?} has no host name");
    }
    if rest.contains('/') {
        Ok(server.to_owned())
    } else {
        Ok(format!("{server}/ws"))
    }
}

/// [`ws_url`], and `ws://` only to this machine unless `insecure`: a room password sent
/// over plain WebSocket is readable by anyone on the path.
pub(crate) fn server_url(server: &str, insecure: bool) -> anyhow::Result<String> {
    let url = ws_url(server)?;
    if let Some(rest) = url.strip_prefix("ws://") {
        let host = rest.split('/').next().unwrap_or_default();
        let name = if let Some(v6) = host.strip_prefix('[') {
            v6.split(']').next().unwrap_or_default()
        } else {
            host.rsplit_once(':').map_or(host, |(name, _)| name)
        };
        let loopback = name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback && !insecure {
            bail!(
                "{server:?} is plain ws:// to another machine: room passwords would cross the \
                 network in clear; use wss:// (or --insecure, `insecure = true`)"
            );
        }
    }
    Ok(url)
}

/// Writes `server` into the config file at `path`, keeping its other settings (their
/// comments are not kept). The file is replaced in one rename, so a power cut leaves the
/// old file or the new one.
pub(crate) fn save_server(path: &Path, server: &str) -> anyhow::Result<()> {
    if path.exists() && !path.is_file() {
        bail!("{} is not a regular file; not replacing it", path.display());
    }
    let mut table: toml::Table = match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    table.insert("server".into(), toml::Value::String(server.to_owned()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let temp = path.with_extension("toml.new");
    let text = toml::to_string(&table).context("writing the settings as TOML")?;
    std::fs::write(&temp, text).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::super::read_file;
    use super::*;

    #[test]
    fn server_addresses_are_checked_and_saved_beside_the_other_settings() {
        assert_eq!(ws_url(" ws://h:8080 ").unwrap(), "ws://h:8080/ws");
        assert!(server_url("ws://rooms.example:8080", false).is_err());
        assert!(server_url("ws://rooms.example:8080", true).is_ok());
        for local in ["ws://127.0.0.1:8080", "ws://localhost", "ws://[::1]:8080"] {
            assert!(server_url(local, false).is_ok(), "{local}");
        }
        assert!(server_url("wss://rooms.example", false).is_ok());
        assert_eq!(ws_url("wss://h/rooms/ws").unwrap(), "wss://h/rooms/ws");
        for bad in ["", "wss://", "h:8080", "http://h", "ws:// h"] {
            assert!(ws_url(bad).is_err(), "{bad:?}");
        }
        let dir = std::env::temp_dir().join(format!("portal-config-{}", std::process::id()));
        let path = dir.join("kiosk.toml");
        let _ = std::fs::remove_dir_all(&dir);
        save_server(&path, "wss://rooms.example/ws").expect("saved into a new file");
        std::fs::write(
            &path,
            "name = \"Room 4.01\"\nserver = \"ws://old/ws\"\n[video]\nwidth = 320\n",
        )
        .unwrap();
        save_server(&path, "wss://rooms.example/ws").expect("saved");
        let file = read_file(&path).expect("still a valid config");
        assert_eq!(file.server.as_deref(), Some("wss://rooms.example/ws"));
        assert_eq!(file.name.as_deref(), Some("Room 4.01"));
        assert_eq!(file.video.width, Some(320));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
