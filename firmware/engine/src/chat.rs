//! The room's chat log as this kiosk saw it: lines it sent and lines peers sent on their
//! `chat` channels, in arrival order, bounded.
//!
//! A line counts once: browsers may send the same line again after a channel reopens, so
//! `(sender, id)` pairs already in the log are dropped. Text is kept as text; showing it
//! as markup is never right (the UI escapes nothing because it renders no markup).

use std::collections::{HashSet, VecDeque};

use portal_proto::PeerId;
use portal_proto::channel::{ChatChannelMessage, MAX_CHAT_TEXT};

/// One chat line.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatEntry {
    /// Who sent it; `None` is this kiosk.
    pub peer: Option<PeerId>,
    /// The sender's id for the line.
    pub id: String,
    /// Display name the sender gave.
    pub from: String,
    /// Sender's clock, ms since the Unix epoch.
    pub time: f64,
    pub text: String,
}

/// Why a chat line was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    #[error("chat message is empty")]
    Empty,
    #[error("chat message is longer than {MAX_CHAT_TEXT} characters")]
    TooLong,
}

/// Checks a line before it is sent or kept.
pub fn validate_text(text: &str) -> Result<(), ChatError> {
    if text.trim().is_empty() {
        Err(ChatError::Empty)
    } else if text.chars().count() > MAX_CHAT_TEXT {
        Err(ChatError::TooLong)
    } else {
        Ok(())
    }
}

/// A bounded chat log.
#[derive(Clone, Debug)]
pub struct ChatLog {
    capacity: usize,
    entries: VecDeque<ChatEntry>,
    seen: HashSet<(Option<PeerId>, String)>,
}

impl ChatLog {
    pub fn new(capacity: usize) -> Self {
        ChatLog {
            capacity: capacity.max(1),
            entries: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    pub fn entries(&self) -> impl ExactSizeIterator<Item = &ChatEntry> {
        self.entries.iter()
    }

    /// Adds a line; `false` when it was a duplicate or invalid.
    pub fn push(&mut self, entry: ChatEntry) -> bool {
        if validate_text(&entry.text).is_err() {
            tracing::debug!(peer = ?entry.peer, "dropping an empty or overlong chat line");
            return false;
        }
        if !self.seen.insert((entry.peer, entry.id.clone())) {
            return false;
        }
        if self.entries.len() == self.capacity
            && let Some(old) = self.entries.pop_front()
        {
            self.seen.remove(&(old.peer, old.id));
        }
        self.entries.push_back(entry);
        true
    }

    /// A `chat` line from peer `peer`, if the message is one.
    pub fn push_remote(&mut self, peer: PeerId, msg: &ChatChannelMessage) -> Option<&ChatEntry> {
        let ChatChannelMessage::Chat {
            id,
            from,
            time,
            text,
        } = msg
        else {
            return None;
        };
        let added = self.push(ChatEntry {
            peer: Some(peer),
            id: id.clone(),
            from: from.clone(),
            time: *time,
            text: text.clone(),
        });
        if added { self.entries.back() } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(peer: u64, id: &str, text: &str) -> ChatEntry {
        ChatEntry {
            peer: Some(PeerId(peer)),
            id: id.into(),
            from: "Ann".into(),
            time: 1.0,
            text: text.into(),
        }
    }

    #[test]
    fn duplicates_invalid_lines_and_capacity() {
        let mut log = ChatLog::new(2);
        assert!(log.push(line(1, "a", "hi")));
        assert!(!log.push(line(1, "a", "hi again")), "same sender and id");
        assert!(log.push(line(2, "a", "other sender, same id")));
        assert!(!log.push(line(1, "b", "   ")));
        assert!(!log.push(line(1, "c", &"x".repeat(MAX_CHAT_TEXT + 1))));
        assert!(log.push(line(1, "d", "third")));
        let texts: Vec<_> = log.entries().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["other sender, same id", "third"]);
        // The evicted line's id is free again.
        assert!(log.push(line(1, "a", "back")));
    }

    #[test]
    fn state_messages_are_not_chat_lines() {
        let mut log = ChatLog::new(10);
        let state = ChatChannelMessage::State {
            audio: true,
            video: true,
            screen: false,
            recording: false,
        };
        assert!(log.push_remote(PeerId(1), &state).is_none());
        assert_eq!(log.entries().len(), 0);
    }
}
