//! Connections per client address: each accepted TCP connection (plain HTTP, TLS, and
//! the WebSocket it may become) holds a [`Slot`] of its address from accept to close.
//! An address at its limit is refused at accept, before any TLS handshake or HTTP
//! parsing, so one host cannot take every connection, file descriptor or handshake.
//! Addresses are counted by [`addr_key`] (IPv6 by its /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::guard::addr_key;

/// Open connections per address key.
#[derive(Debug)]
pub(crate) struct AddrSlots {
    /// 0: no limit.
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<AddrSlots>,
    key: IpAddr,
}

impl AddrSlots {
    pub(crate) fn new(max: usize) -> Arc<AddrSlots> {
        Arc::new(AddrSlots {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or `None` when that address holds its limit.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let key = addr_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if self.max != 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }

    /// Connections open from `ip`'s address key.
    #[cfg(test)]
    pub(crate) fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&addr_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What an address over its limit reads before the server closes: a complete HTTP
/// answer, so a browser or a WebSocket client says why.
pub(crate) const REFUSAL: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Retry-After: 5\r\n\
Connection: close\r\n\
Content-Length: 52\r\n\
\r\n\
rateLimited: too many connections from your address\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_slots_and_gets_them_back() {
        let slots = AddrSlots::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.take(a).unwrap();
        let second = slots.take(a).unwrap();
        assert!(slots.take(a).is_none());
        assert!(slots.take(b).is_some(), "other addresses are not affected");
        drop(first);
        let third = slots.take(a).unwrap();
        drop((second, third));
        assert_eq!(slots.open(a), 0);
        assert!(
            slots.open.lock().unwrap().is_empty(),
            "nothing kept for quiet addresses"
        );
    }

    #[test]
    fn ipv6_counts_by_its_64_and_zero_means_no_limit() {
        let slots = AddrSlots::new(1);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        let _held = slots.take(one).unwrap();
        assert!(slots.take(same_64).is_none());
        let unlimited = AddrSlots::new(0);
        let held: Vec<Slot> = (0..1000).filter_map(|_| unlimited.take(one)).collect();
        assert_eq!(held.len(), 1000);
    }

    #[test]
    fn the_refusal_is_a_complete_http_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
    }
}
