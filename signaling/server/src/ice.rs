//! ICE servers handed to each peer: STUN URLs as configured in `welcome`, and, with each
//! successful `join` (never before), TURN credentials made per peer with coturn's
//! shared-secret scheme
//! (`use-auth-secret`): username `expiry:peerId`, credential
//! `base64(HMAC-SHA1(secret, username))`, valid until `expiry` (Unix seconds).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use portal_proto::{IceServer, PeerId};
use sha1::Sha1;

#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    /// `stun:` URLs, given to everyone.
    pub stun_urls: Vec<String>,
    pub turn: Option<TurnConfig>,
}

#[derive(Clone)]
pub struct TurnConfig {
    /// `turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub secret: String,
    /// How long a credential stays valid, in seconds.
    pub ttl_secs: u64,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("secret", &"<redacted>")
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

impl IceConfig {
    /// Whether a TURN relay is configured (its credentials are sent only after a join).
    pub fn has_turn(&self) -> bool {
        self.turn.as_ref().is_some_and(|t| !t.urls.is_empty())
    }

    /// The servers anyone who said `hello` may know: STUN, no credentials.
    pub fn public_servers(&self) -> Vec<IceServer> {
        let mut servers = self.servers_for(PeerId(0), 0.0);
        servers.retain(|s| s.credential.is_none());
        servers
    }

    /// The full list for `peer` at server time `now_ms`, TURN credentials included: for
    /// a peer that has joined a room.
    pub fn servers_for(&self, peer: PeerId, now_ms: f64) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if let Some(turn) = &self.turn
            && !turn.urls.is_empty()
        {
            let expiry = (now_ms / 1000.0) as u64 + turn.ttl_secs;
            let (username, credential) = turn_credential(&turn.secret, expiry, peer);
            servers.push(IceServer {
                urls: turn.urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }
}

/// coturn's REST-API credential for `peer`, valid until `expiry` (Unix seconds).
pub fn turn_credential(secret: &str, expiry: u64, peer: PeerId) -> (String, String) {
    let username = format!("{expiry}:{peer}");
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(username.as_bytes());
    let credential = STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_matches_coturn_scheme() {
        // Reference computed independently:
        // python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b'north',b'1700000000:42',hashlib.sha1).digest()).decode())"
        let (user, cred) = turn_credential("north", 1_700_000_000, PeerId(42));
        assert_eq!(user, "1700000000:42");
        assert_eq!(cred, "DWX3FI7DiPIpadEYQAZsnZBAagI=");
    }

    #[test]
    fn servers_include_stun_and_timed_turn() {
        let ice = IceConfig {
            stun_urls: vec!["stun:stun.example.org:3478".into()],
            turn: Some(TurnConfig {
                urls: vec!["turn:turn.example.org:3478?transport=udp".into()],
                secret: "s".into(),
                ttl_secs: 3600,
            }),
        };
        let servers = ice.servers_for(PeerId(7), 1_000_000.0);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].username, None);
        assert_eq!(servers[1].username.as_deref(), Some("4600:7"));
        assert!(servers[1].credential.is_some());
        assert!(IceConfig::default().servers_for(PeerId(1), 0.0).is_empty());
        assert!(ice.has_turn());
        let public = ice.public_servers();
        assert_eq!(public.len(), 1);
        assert!(
            public
                .iter()
                .all(|s| s.username.is_none() && s.credential.is_none())
        );
    }
}
