//! The room's awareness states (cursors, names, colours), with the y-protocols rules:
//! a client's state replaces the known one only with a higher clock; a `null` state with
//! the same or a higher clock removes it.
//!
//! yrs' own `Awareness` owns a `Doc` and cannot cross threads without its `sync` feature;
//! the server needs only the table, the rules and the wire types, which these are.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};

const NULL: &str = "null";

/// An awareness update setting `entries` (client id, clock, JSON state). For tests and
/// tools that speak to the server (the unit tests here, the abuse tests in `tests/`).
pub fn awareness_update(entries: &[(u64, u32, &str)]) -> AwarenessUpdate {
    AwarenessUpdate {
        clients: entries
            .iter()
            .map(|(id, clock, json)| {
                (
                    ClientID::new(*id),
                    AwarenessUpdateEntry {
                        clock: *clock,
                        json: (*json).into(),
                    },
                )
            })
            .collect(),
    }
}

#[derive(Debug, Clone)]
struct State {
    clock: u32,
    /// `None` once removed; the clock is kept so an older state cannot come back.
    json: Option<Arc<str>>,
    /// Milliseconds (monotonic) of the last accepted change.
    updated: u64,
}

/// What applying an update changed.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// The accepted entries, to broadcast (empty: nothing to send).
    pub(crate) update: Option<AwarenessUpdate>,
    /// Clients that now have a state.
    pub(crate) set: Vec<u64>,
    /// Clients whose state was removed.
    pub(crate) removed: Vec<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct AwarenessTable {
    states: HashMap<u64, State>,
}

impl AwarenessTable {
    /// Applies a client's update at `now` (ms).
    pub(crate) fn apply(&mut self, update: AwarenessUpdate, now: u64) -> Applied {
        let mut applied = Applied::default();
        let mut accepted = HashMap::new();
        for (client, entry) in update.clients {
            let id = client.get();
            let new = (entry.json.as_ref() != NULL).then(|| entry.json.clone());
            let known = self.states.get(&id);
            let accept = match known {
                None => new.is_some(),
                Some(s) => {
                    s.clock < entry.clock
                        || (s.clock == entry.clock && new.is_none() && s.json.is_some())
                }
            };
            if !accept {
                continue;
            }
            if new.is_some() {
                applied.set.push(id);
            } else {
                applied.removed.push(id);
            }
            self.states.insert(
                id,
                State {
                    clock: entry.clock,
                    json: new,
                    updated: now,
                },
            );
            accepted.insert(client, entry);
        }
        if !accepted.is_empty() {
            applied.update = Some(AwarenessUpdate { clients: accepted });
        }
        applied
    }

    /// Removes the states of `clients` (a connection that left); the update to broadcast.
    pub(crate) fn remove(
        &mut self,
        clients: impl IntoIterator<Item = u64>,
        now: u64,
    ) -> Option<AwarenessUpdate> {
        let mut removed = HashMap::new();
        for id in clients {
            if let Some(s) = self.states.get_mut(&id)
                && s.json.is_some()
            {
                s.clock = s.clock.wrapping_add(1);
                s.json = None;
                s.updated = now;
                removed.insert(
                    ClientID::new(id),
                    AwarenessUpdateEntry {
                        clock: s.clock,
                        json: NULL.into(),
                    },
                );
            }
        }
        (!removed.is_empty()).then_some(AwarenessUpdate { clients: removed })
    }

    /// States not renewed for `timeout` ms (clients renew every 15 s), as the reference
    /// server drops them.
    pub(crate) fn expired(&self, now: u64, timeout: u64) -> Vec<u64> {
        self.states
            .iter()
            .filter(|(_, s)| s.json.is_some() && now.saturating_sub(s.updated) >= timeout)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every present state, for a newcomer or a query; `None` when there is none.
    pub(crate) fn snapshot(&self) -> Option<AwarenessUpdate> {
        let clients: HashMap<_, _> = self
            .states
            .iter()
            .filter_map(|(id, s)| {
                s.json.as_ref().map(|json| {
                    (
                        ClientID::new(*id),
                        AwarenessUpdateEntry {
                            clock: s.clock,
                            json: json.clone(),
                        },
                    )
                })
            })
            .collect();
        (!clients.is_empty()).then_some(AwarenessUpdate { clients })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_decide_and_removals_stick() {
        let mut t = AwarenessTable::default();
        let a = t.apply(awareness_update(&[(1, 1, r#"{"name":"a"}"#)]), 0);
        assert_eq!(a.set, vec![1]);
        assert!(a.update.is_some());
        // Same clock, different state: ignored (the sender must bump its clock).
        assert!(
            t.apply(awareness_update(&[(1, 1, r#"{"name":"b"}"#)]), 1)
                .update
                .is_none()
        );
        // A renewal with a higher clock is accepted and broadcast.
        assert!(
            t.apply(awareness_update(&[(1, 2, r#"{"name":"a"}"#)]), 2)
                .update
                .is_some()
        );
        // Removal with the same clock works (that is how clients say goodbye).
        let r = t.apply(awareness_update(&[(1, 2, "null")]), 3);
        assert_eq!(r.removed, vec![1]);
        assert!(t.snapshot().is_none());
        // An old state cannot come back.
        assert!(
            t.apply(awareness_update(&[(1, 2, r#"{"name":"a"}"#)]), 4)
                .update
                .is_none()
        );
        // An unknown client's removal changes nothing and is not broadcast.
        assert!(
            t.apply(awareness_update(&[(9, 5, "null")]), 5)
                .update
                .is_none()
        );
    }

    #[test]
    fn removal_bumps_the_clock_and_expiry_finds_silent_clients() {
        let mut t = AwarenessTable::default();
        t.apply(awareness_update(&[(1, 3, "{}"), (2, 1, "{}")]), 0);
        let gone = t.remove([1, 7], 10).unwrap();
        assert_eq!(gone.clients.len(), 1);
        assert_eq!(gone.clients[&ClientID::new(1)].clock, 4);
        assert_eq!(&*gone.clients[&ClientID::new(1)].json, "null");
        assert!(t.remove([1], 11).is_none());
        assert_eq!(t.snapshot().unwrap().clients.len(), 1);
        assert!(t.expired(20_000, 30_000).is_empty());
        assert_eq!(t.expired(30_000, 30_000), vec![2]);
    }
}
