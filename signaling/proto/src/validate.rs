//! Pure validation of what clients send: room names, display names, passwords, watch
//! states. Each refusal is an [`Invalid`] that maps to one [`ErrorCode`].

use std::fmt;

use crate::{
    ErrorCode, MAX_PASSWORD_LEN, MAX_ROOM_NAME_LEN, MAX_VIDEO_URL_LEN, VideoSource,
    WATCH_RATE_RANGE, WatchState, names,
};

/// Why a value from a client was refused. Each maps to one [`ErrorCode`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    RoomName(&'static str),
    DisplayName(&'static str),
    Password(&'static str),
    Watch(&'static str),
    /// A paired laptop's command ([`crate::pairing::RemoteCommand`]).
    Command(&'static str),
}

impl Invalid {
    pub fn code(&self) -> ErrorCode {
        match self {
            Invalid::RoomName(_) => ErrorCode::InvalidRoomName,
            Invalid::DisplayName(_) => ErrorCode::InvalidName,
            Invalid::Password(_) | Invalid::Watch(_) | Invalid::Command(_) => ErrorCode::BadRequest,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::RoomName(why) => write!(f, "invalid room name: {why}"),
            Invalid::DisplayName(why) => write!(f, "invalid name: {why}"),
            Invalid::Password(why) => write!(f, "invalid password: {why}"),
            Invalid::Watch(why) => write!(f, "invalid watch state: {why}"),
            Invalid::Command(why) => write!(f, "invalid command: {why}"),
        }
    }
}

impl std::error::Error for Invalid {}

/// Room names are 1 to 64 ASCII letters, digits, `-`, `_` and `.`, starting with a letter
/// or digit, so they sit in a URL path (`/r/{room}`, `/yjs/{room}`) without escaping.
pub fn validate_room_name(room: &str) -> Result<(), Invalid> {
    if room.is_empty() {
        return Err(Invalid::RoomName("empty"));
    }
    if room.len() > MAX_ROOM_NAME_LEN {
        return Err(Invalid::RoomName("longer than 64 characters"));
    }
    if !room.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(Invalid::RoomName("must start with a letter or digit"));
    }
    if !room
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Invalid::RoomName(
            "only letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

/// Whether `name` can be a display name: [`names::clean_display_name`] accepts it. The
/// server admits the cleaned name, not the raw one.
pub fn validate_display_name(name: &str) -> Result<(), Invalid> {
    names::clean_display_name(name).map(drop)
}

/// Passwords are 1 to 256 bytes. (An absent password means an open room.)
pub fn validate_password(password: &str) -> Result<(), Invalid> {
    if password.is_empty() {
        return Err(Invalid::Password("empty"));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Invalid::Password("longer than 256 bytes"));
    }
    Ok(())
}

impl WatchState {
    /// Checks ranges and the source: finite non-negative position, a rate within
    /// [`WATCH_RATE_RANGE`], an 11-character YouTube id, an `http(s)` URL.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !self.position.is_finite() || self.position < 0.0 {
            return Err(Invalid::Watch("position must be a finite number >= 0"));
        }
        let (lo, hi) = WATCH_RATE_RANGE;
        if !self.rate.is_finite() || self.rate < lo || self.rate > hi {
            return Err(Invalid::Watch("rate must be between 0.25 and 4"));
        }
        match &self.source {
            None => Ok(()),
            Some(VideoSource::Youtube { video_id }) => {
                if video_id.len() == 11
                    && video_id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    Ok(())
                } else {
                    Err(Invalid::Watch("a YouTube video id has 11 characters"))
                }
            }
            Some(VideoSource::Url { url }) => {
                if url.len() > MAX_VIDEO_URL_LEN {
                    Err(Invalid::Watch("URL longer than 2048 bytes"))
                } else if !(url.starts_with("https://") || url.starts_with("http://"))
                    || url.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    Err(Invalid::Watch("only http(s) URLs can be watched"))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Where the video stands `elapsed_ms` after the state's server time.
    pub fn position_after(&self, elapsed_ms: f64) -> f64 {
        if self.playing {
            self.position + elapsed_ms.max(0.0) / 1000.0 * self.rate
        } else {
            self.position
        }
    }
}
