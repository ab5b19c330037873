//! Why the document client is not connected.

use std::time::Duration;

/// Why a document connection could not be made or ended. Cloned into every [`super::DocView`]
/// that reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// The base URL is not `ws://` or `wss://`.
    #[error("document server URL {url:?} is not ws:// or wss://")]
    InvalidUrl { url: String },
    /// The room name is not one the server accepts (HTTP 400, or refused before asking).
    #[error("invalid room name {room:?}")]
    InvalidRoom { room: String },
    /// HTTP 403: the token is wrong or expired (a protected room). Final until a fresh
    /// token comes from the next `joined`.
    #[error("the server refused the document token")]
    Refused,
    /// Close 4404: the room does not exist (or went). Final until the room is joined again.
    #[error("the room's document does not exist")]
    NoRoom,
    /// Close 4401: the room became protected after this connection was let in. Final until
    /// the room is joined again (with its password).
    #[error("the room became protected: rejoin it")]
    Revoked,
    /// HTTP 429: this address or room is locked out for a while.
    #[error("rate limited by the server, retry after {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// The server sent something that is not the y-websocket protocol (or an update yrs
    /// cannot apply); the connection is dropped and made again.
    #[error("malformed document message: {0}")]
    Malformed(String),
    /// The server closed the connection with this code (1001 shutdown, 1011 store failure,
    /// 1013 too many documents, 4507 storage full, ...); tried again.
    #[error("the server closed the document connection ({code}: {reason})")]
    Closed { code: u16, reason: String },
    /// The connection could not be made, was refused with another HTTP status, dropped or
    /// went silent; tried again.
    #[error("document connection failed: {0}")]
    Connection(String),
}

impl DocError {
    /// Whether the client waits for [`super::DocClient::set_token`] before trying again
    /// (trying again alone could not help and would only count as failed checks).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            DocError::InvalidUrl { .. }
                | DocError::InvalidRoom { .. }
                | DocError::Refused
                | DocError::NoRoom
                | DocError::Revoked
        )
    }
}
