//! The pairing settings: the device token (in the config file or a file of its own, so
//! the config file can stay world-readable) and the room "Present" joins from home.

use std::path::Path;

use anyhow::{Context, bail};

/// The device token from `--device-token-file` (first) or the config file's
/// `device_token`; checked for shape so a pasted line break or quote is caught here.
pub(super) fn device_token(
    file: Option<&Path>,
    inline: Option<String>,
) -> anyhow::Result<Option<String>> {
    let token = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the device token from {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => inline.map(|t| t.trim().to_owned()),
    };
    match token {
        Some(t) if !portal_proto::pairing::valid_token_shape(&t) => {
            bail!("the device token is not one `portal-server kiosk add` prints")
        }
        other => Ok(other),
    }
}

/// A room name made from the kiosk's name: "Room 4.01" → "room-4.01".
pub(super) fn room_for(name: &str) -> String {
    let mut room = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            room.push(c.to_ascii_lowercase());
        } else if !room.is_empty() && !room.ends_with('-') {
            room.push('-');
        }
    }
    let room = room.trim_end_matches('-');
    let room: String = room.chars().take(portal_proto::MAX_ROOM_NAME_LEN).collect();
    if room.is_empty() || !room.as_bytes()[0].is_ascii_alphanumeric() {
        "kiosk".to_owned()
    } else {
        room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_made_from_names_are_valid() {
        assert_eq!(room_for("Room 4.01"), "room-4.01");
        assert_eq!(room_for("  Café  Nord "), "caf-nord");
        assert_eq!(room_for("***"), "kiosk");
        assert_eq!(room_for(".hidden"), "kiosk");
        for name in ["Room 4.01", "Ünïcødé", "a".repeat(200).as_str(), "-x-"] {
            assert!(
                portal_proto::validate_room_name(&room_for(name)).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn tokens_are_checked() {
        assert_eq!(device_token(None, None).unwrap(), None);
        assert_eq!(
            device_token(None, Some(" abc_DEF-1\n".into()))
                .unwrap()
                .as_deref(),
            Some("abc_DEF-1")
        );
        assert!(device_token(None, Some("has space".into())).is_err());
        assert!(device_token(Some(Path::new("/nonexistent/token")), None).is_err());
    }
}
