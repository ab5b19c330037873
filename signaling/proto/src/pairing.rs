//! Pairing a laptop with a kiosk: the kiosk's identity, the short code it shows, the
//! commands a paired laptop sends it and the state it reports back.
//!
//! The flow, all over the same `/ws` as calls:
//! 1. An enrolled kiosk says who it is in `hello` ([`DeviceHello`], its device token).
//!    Its control connection (`control: true`, one per kiosk, never joins a room) is
//!    sent a [`ServerMessage::PairingCode`](crate::ServerMessage::PairingCode) now and
//!    whenever the code rotates.
//! 2. A laptop sends [`ClientMessage::Pair`](crate::ClientMessage::Pair) with the code
//!    it read off the screen. The server answers `pairAccepted` (and tells the kiosk
//!    `paired`) or a typed error: `invalidCode`, `codeExpired`, `kioskOffline`,
//!    `rateLimited`.
//! 3. The laptop sends [`RemoteCommand`]s in `command` messages; the server relays them
//!    to the kiosk only while the pairing lives, the kiosk answers each with
//!    `commandResult`, and reports its [`KioskState`] to its laptops on every change.
//! 4. The pairing ends when the laptop leaves (its connection ends), either side sends
//!    `unpair`, the kiosk goes away, or after [`PAIRING_TTL_SECS`]: both sides hear
//!    `unpaired` with an [`UnpairReason`].

use serde::{Deserialize, Serialize};

use crate::PeerId;

/// Characters of a pairing code: upper-case letters and digits without the look-alikes
/// 0/O and 1/I/L, so a code read across a room is typed right.
pub const CODE_ALPHABET: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters in a pairing code: 31^6 ≈ 8.9 × 10^8 codes.
pub const CODE_LEN: usize = 6;
/// A code is good for this long at most (it also changes after each use).
pub const CODE_TTL_SECS: u64 = 600;
/// A pairing ends after this long even when both sides stay.
pub const PAIRING_TTL_SECS: u64 = 8 * 60 * 60;
/// The path of a pairing link: `https://SERVER/p/CODE`.
pub const PAIR_PATH: &str = "/p/";
/// Longest device token accepted in `hello` (tokens are 43 characters of base64url).
pub const MAX_DEVICE_TOKEN_LEN: usize = 128;

/// An enrolled kiosk's proof of identity in `hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct DeviceHello {
    /// The token `portal-server kiosk add` printed once.
    pub token: String,
    /// This is the kiosk's control connection: it gets the pairing code, the laptops'
    /// commands and `paired`/`unpaired`. A newer control connection replaces an older
    /// one. Call connections say `false`.
    #[serde(default)]
    pub control: bool,
}

/// What a paired laptop asks the kiosk to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RemoteCommand {
    /// The laptop is about to share its screen: the kiosk makes sure it is in a room
    /// (its own when it is at home), answers with the room, and puts this laptop's screen
    /// share on its stage as soon as it arrives.
    Present,
    /// Take the laptop's share off the stage.
    StopPresenting,
    /// Join this room (leaving the current one).
    JoinRoom {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        password: Option<String>,
    },
    /// Leave the call.
    Leave,
    /// Mute or unmute the room's microphone.
    SetMicMuted { muted: bool },
    /// Turn the room's camera off or on.
    SetCameraOff { off: bool },
    /// The room's speaker volume, 0 to 1.
    SetVolume { volume: f64 },
}

impl RemoteCommand {
    /// Checks the values a laptop put in: a valid room name and password, a volume in
    /// 0..=1.
    pub fn validate(&self) -> Result<(), crate::Invalid> {
        match self {
            RemoteCommand::JoinRoom { room, password } => {
                crate::validate_room_name(room)?;
                if let Some(p) = password {
                    crate::validate_password(p)?;
                }
                Ok(())
            }
            RemoteCommand::SetVolume { volume } if !(0.0..=1.0).contains(volume) => Err(
                crate::Invalid::Command("volume must be a number from 0 to 1"),
            ),
            _ => Ok(()),
        }
    }
}

/// Why the kiosk did not do what a laptop asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CommandErrorCode {
    /// The sender is not paired with this kiosk (never reaches the kiosk's logic).
    NotPaired,
    /// A value out of range or a malformed room name.
    BadRequest,
    /// The command needs a call and there is none.
    NotInCall,
    /// The room refused the kiosk (`message` says why: wrong password, full, ...).
    JoinFailed,
    /// The kiosk cannot do it (no microphone, ...).
    Unavailable,
    /// The kiosk did not answer in time.
    Timeout,
}

/// A failed command's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct CommandError {
    pub code: CommandErrorCode,
    pub message: String,
}

/// What a kiosk shows its paired laptops about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct KioskState {
    /// The room of its call, when in one (joined or getting there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub room: Option<String>,
    /// `true` once joined.
    pub in_call: bool,
    pub mic_muted: bool,
    pub camera_off: bool,
    /// 0 to 1.
    pub volume: f64,
    /// The paired laptop whose screen share is on the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub presenting: Option<PeerId>,
}

/// Why a pairing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum UnpairReason {
    /// The laptop ended it, or its connection ended.
    LaptopLeft,
    /// Someone tapped "Unpair" on the kiosk.
    KioskEnded,
    /// The kiosk's control connection went away.
    KioskGone,
    /// [`PAIRING_TTL_SECS`] passed.
    Expired,
    /// The kiosk was removed from the server's enrolment.
    Removed,
}

/// A code as typed: upper-cased, spaces and dashes dropped ("k7p 2xm" → "K7P2XM").
/// `None` when it cannot be a code (wrong length, a character outside the alphabet).
pub fn normalize_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.chars().all(|c| CODE_ALPHABET.contains(c))).then_some(code)
}

/// A device token's shape: base64url characters, at most [`MAX_DEVICE_TOKEN_LEN`].
pub fn valid_token_shape(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_DEVICE_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_has_no_look_alikes() {
        for c in ['0', 'O', '1', 'I', 'L'] {
            assert!(!CODE_ALPHABET.contains(c), "{c}");
        }
        assert_eq!(CODE_ALPHABET.len(), 31);
        let mut seen = std::collections::HashSet::new();
        assert!(CODE_ALPHABET.chars().all(|c| seen.insert(c)));
    }

    #[test]
    fn codes_are_read_as_typed() {
        assert_eq!(normalize_code("k7p 2xm").as_deref(), Some("K7P2XM"));
        assert_eq!(normalize_code("K7P-2XM").as_deref(), Some("K7P2XM"));
        assert_eq!(normalize_code("K7P2X"), None);
        assert_eq!(normalize_code("K7P2XMM"), None);
        assert_eq!(normalize_code("K0P2XM"), None);
        assert_eq!(normalize_code("K7P2XÄ"), None);
        assert_eq!(normalize_code(&"A".repeat(100)), None);
    }

    #[test]
    fn commands_are_checked() {
        assert!(RemoteCommand::SetVolume { volume: 0.5 }.validate().is_ok());
        assert!(RemoteCommand::SetVolume { volume: 1.5 }.validate().is_err());
        assert!(
            RemoteCommand::SetVolume { volume: f64::NAN }
                .validate()
                .is_err()
        );
        let bad_room = RemoteCommand::JoinRoom {
            room: "../x".into(),
            password: None,
        };
        assert!(bad_room.validate().is_err());
        let json = serde_json::to_string(&RemoteCommand::SetMicMuted { muted: true }).unwrap();
        assert_eq!(json, r#"{"kind":"setMicMuted","muted":true}"#);
    }

    #[test]
    fn token_shapes() {
        assert!(valid_token_shape("abc-DEF_123"));
        assert!(!valid_token_shape(""));
        assert!(!valid_token_shape("a b"));
        assert!(!valid_token_shape(&"a".repeat(129)));
    }
}
