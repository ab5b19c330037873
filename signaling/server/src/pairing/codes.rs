//! Pairing codes: made from a CSPRNG, each pointing at one kiosk, single use, with an
//! expiry. Dead codes (used, expired, replaced) are kept a while so that a late or
//! repeated try reads `codeExpired` rather than `invalidCode`, then forgotten.

use std::collections::HashMap;

use portal_proto::pairing::{CODE_ALPHABET, CODE_LEN};
use rand::Rng as _;

use super::KioskId;
use crate::hub::Millis;

/// How long a dead code is remembered (in memory and in the store).
pub const DEAD_CODE_KEEP_MS: Millis = 3600.0 * 1000.0;

/// One code as issued.
#[derive(Clone, Debug, PartialEq)]
pub struct Code {
    pub kiosk: KioskId,
    pub issued: Millis,
    pub expires: Millis,
    pub used: bool,
}

impl Code {
    /// Whether it can still be redeemed at `now`.
    pub fn live(&self, now: Millis) -> bool {
        !self.used && now < self.expires
    }
}

/// A fresh random code: [`CODE_LEN`] characters of [`CODE_ALPHABET`], each drawn
/// uniformly from the thread's CSPRNG (ChaCha seeded from the OS).
pub fn random_code() -> String {
    let alphabet = CODE_ALPHABET.as_bytes();
    let mut rng = rand::rng();
    (0..CODE_LEN)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// Every code issued and not yet forgotten.
#[derive(Debug, Default)]
pub struct Codes {
    by_code: HashMap<String, Code>,
}

impl Codes {
    /// Codes loaded from the store. They all count as dead: a restart hands out fresh
    /// codes, so one read off a screen before it stays dead.
    pub fn loaded(rows: Vec<(String, Code)>) -> Self {
        let by_code = rows
            .into_iter()
            .map(|(code, mut c)| {
                c.used = true;
                (code, c)
            })
            .collect();
        Self { by_code }
    }

    pub fn get(&self, code: &str) -> Option<&Code> {
        self.by_code.get(code)
    }

    /// A new code for `kiosk`, valid for `ttl_ms` from `now`, unlike any remembered.
    pub fn issue(&mut self, kiosk: KioskId, now: Millis, ttl_ms: Millis) -> (String, Code) {
        let code = loop {
            let candidate = random_code();
            if !self.by_code.contains_key(&candidate) {
                break candidate;
            }
        };
        let entry = Code {
            kiosk,
            issued: now,
            expires: now + ttl_ms,
            used: false,
        };
        self.by_code.insert(code.clone(), entry.clone());
        (code, entry)
    }

    /// Marks `code` used; its row as it is now.
    pub fn mark_used(&mut self, code: &str) -> Option<Code> {
        let c = self.by_code.get_mut(code)?;
        c.used = true;
        Some(c.clone())
    }

    /// Ends `code` at `now` if it is still live; its row when it changed.
    pub fn retire(&mut self, code: &str, now: Millis) -> Option<Code> {
        let c = self.by_code.get_mut(code)?;
        if !c.live(now) {
            return None;
        }
        c.expires = now;
        Some(c.clone())
    }

    /// Ends every live code of `kiosk` at `now`; their rows.
    pub fn retire_kiosk(&mut self, kiosk: KioskId, now: Millis) -> Vec<(String, Code)> {
        let mut retired = Vec::new();
        for (code, c) in &mut self.by_code {
            if c.kiosk == kiosk && c.live(now) {
                c.expires = now;
                retired.push((code.clone(), c.clone()));
            }
        }
        retired
    }

    /// Every live code, for rotation after too many wrong guesses.
    pub fn live_codes(&self, now: Millis) -> Vec<String> {
        self.by_code
            .iter()
            .filter(|(_, c)| c.live(now))
            .map(|(code, _)| code.clone())
            .collect()
    }

    /// Forgets codes of `kiosk` (it was removed).
    pub fn forget_kiosk(&mut self, kiosk: KioskId) {
        self.by_code.retain(|_, c| c.kiosk != kiosk);
    }

    /// Forgets codes dead for longer than [`DEAD_CODE_KEEP_MS`].
    pub fn prune(&mut self, now: Millis) {
        self.by_code
            .retain(|_, c| c.live(now) || now - c.expires.min(now) < DEAD_CODE_KEEP_MS);
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portal_proto::pairing::normalize_code;

    #[test]
    fn codes_are_well_formed_and_spread_over_the_alphabet() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let code = random_code();
            assert_eq!(normalize_code(&code).as_deref(), Some(code.as_str()));
            seen.extend(code.chars());
        }
        assert_eq!(seen.len(), CODE_ALPHABET.len());
    }

    #[test]
    fn a_code_lives_until_used_expired_or_retired() {
        let mut codes = Codes::default();
        let (a, c) = codes.issue(KioskId(1), 0.0, 1000.0);
        assert!(c.live(999.0) && !c.live(1000.0));
        assert!(codes.mark_used(&a).is_some());
        assert!(!codes.get(&a).unwrap().live(1.0));
        let (b, _) = codes.issue(KioskId(1), 0.0, 1000.0);
        assert_eq!(codes.retire(&b, 10.0).map(|c| c.expires), Some(10.0));
        assert!(codes.retire(&b, 20.0).is_none(), "already dead");
        assert!(codes.live_codes(20.0).is_empty());
        // Dead codes are remembered for an hour, then forgotten.
        codes.prune(10.0 + DEAD_CODE_KEEP_MS - 1.0);
        assert_eq!(codes.len(), 2);
        codes.prune(1000.0 + DEAD_CODE_KEEP_MS);
        assert!(codes.is_empty());
    }

    #[test]
    fn loaded_codes_are_dead() {
        let row = Code {
            kiosk: KioskId(1),
            issued: 0.0,
            expires: 1e15,
            used: false,
        };
        let codes = Codes::loaded(vec![("ABCDEF".into(), row)]);
        assert!(!codes.get("ABCDEF").unwrap().live(1.0));
    }
}
