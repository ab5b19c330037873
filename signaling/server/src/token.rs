//! Document access tokens. `joined` hands each peer a token for its room's shared
//! document (`/yjs/{room}?token=...`), so a protected room's document needs no second
//! password check. A token is `v1.{peer}.{expiry_ms}.{mac}` where `mac` is
//! base64url(HMAC-SHA256(key, "v1|scope|peer|expiry")). A document token's scope is the
//! room and, for a protected room, its password hash: a token from an open room (or from
//! an earlier room of the same name with another password) opens nothing in a protected
//! room created later under that name. The key lives in the store, so tokens survive a
//! restart.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use portal_proto::PeerId;
use sha2::Sha256;

const RESUME_SCOPE: &str = "resume:";

/// Issues and checks document tokens (and resume tokens).
#[derive(Clone)]
pub struct DocTokens {
    key: [u8; 32],
    ttl_ms: f64,
}

impl std::fmt::Debug for DocTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocTokens")
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token is for another room or was tampered with")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

impl DocTokens {
    pub fn new(key: [u8; 32], ttl_ms: f64) -> Self {
        Self { key, ttl_ms }
    }

    pub fn issue(&self, room: &str, peer: PeerId, now_ms: f64) -> String {
        let expiry = (now_ms + self.ttl_ms) as u64;
        format!("v1.{peer}.{expiry}.{}", self.mac(room, peer.0, expiry))
    }

    /// Checks `token` for `room` at `now_ms`; returns the peer it was issued to.
    pub fn verify(&self, token: &str, room: &str, now_ms: f64) -> Result<PeerId, TokenError> {
        let mut parts = token.split('.');
        let (Some("v1"), Some(peer), Some(expiry), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        let peer: u64 = peer.parse().map_err(|_| TokenError::Malformed)?;
        let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        let given = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Malformed)?;
        self.hmac(room, peer, expiry)
            .verify_slice(&given)
            .map_err(|_| TokenError::BadSignature)?;
        if (expiry as f64) < now_ms {
            return Err(TokenError::Expired);
        }
        Ok(PeerId(peer))
    }

    /// A token for `room`'s document; `protection` is the room's password hash, if any.
    pub fn issue_doc(
        &self,
        room: &str,
        protection: Option<&str>,
        peer: PeerId,
        now_ms: f64,
    ) -> String {
        self.issue(&doc_scope(room, protection), peer, now_ms)
    }

    /// Checks a document token for `room` as it is protected now.
    pub fn verify_doc(
        &self,
        token: &str,
        room: &str,
        protection: Option<&str>,
        now_ms: f64,
    ) -> Result<PeerId, TokenError> {
        self.verify(token, &doc_scope(room, protection), now_ms)
    }

    /// A token that lets a peer come back under the same id (`hello.resume`). Scoped so
    /// it can never pass as a document token (room names have no ':').
    pub fn issue_resume(&self, peer: PeerId, now_ms: f64) -> String {
        self.issue(RESUME_SCOPE, peer, now_ms)
    }

    pub fn verify_resume(&self, token: &str, now_ms: f64) -> Result<PeerId, TokenError> {
        self.verify(token, RESUME_SCOPE, now_ms)
    }

    fn hmac(&self, room: &str, peer: u64, expiry: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(format!("v1|{room}|{peer}|{expiry}").as_bytes());
        mac
    }

    fn mac(&self, room: &str, peer: u64, expiry: u64) -> String {
        URL_SAFE_NO_PAD.encode(self.hmac(room, peer, expiry).finalize().into_bytes())
    }
}

/// Room names have no '|', so an open room's scope never equals a protected one's.
fn doc_scope(room: &str, protection: Option<&str>) -> String {
    match protection {
        None => room.to_owned(),
        Some(hash) => format!("{room}|{hash}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let tokens = DocTokens::new([7; 32], 1000.0);
        let t = tokens.issue("room-1", PeerId(3), 5000.0);
        assert_eq!(tokens.verify(&t, "room-1", 5500.0), Ok(PeerId(3)));
        assert_eq!(
            tokens.verify(&t, "room-2", 5500.0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            tokens.verify(&t, "room-1", 6001.0),
            Err(TokenError::Expired)
        );
        assert_eq!(
            tokens.verify("v1.3.6000.AAAA", "room-1", 0.0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            tokens.verify("nonsense", "room-1", 0.0),
            Err(TokenError::Malformed)
        );
        let other = DocTokens::new([8; 32], 1000.0);
        assert_eq!(
            other.verify(&t, "room-1", 5500.0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_document_token_is_bound_to_the_rooms_protection() {
        let tokens = DocTokens::new([7; 32], 1000.0);
        let open = tokens.issue_doc("4-01", None, PeerId(3), 0.0);
        assert_eq!(tokens.verify_doc(&open, "4-01", None, 1.0), Ok(PeerId(3)));
        // The open room went and someone made a protected one of the same name.
        assert_eq!(
            tokens.verify_doc(&open, "4-01", Some("$argon2id$A"), 1.0),
            Err(TokenError::BadSignature)
        );
        let a = tokens.issue_doc("4-01", Some("$argon2id$A"), PeerId(3), 0.0);
        assert_eq!(
            tokens.verify_doc(&a, "4-01", Some("$argon2id$A"), 1.0),
            Ok(PeerId(3))
        );
        assert_eq!(
            tokens.verify_doc(&a, "4-01", Some("$argon2id$B"), 1.0),
            Err(TokenError::BadSignature)
        );
    }
}
