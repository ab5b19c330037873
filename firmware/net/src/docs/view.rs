//! What the kiosk reads of the room's document: [`DocView`] snapshots and the awareness
//! states in them, read as the browser editor writes them (`signaling/web/src/features/
//! editor-doc.ts`): untrusted JSON, validated field by field, with the same fallbacks.

use std::sync::Arc;

use super::DocError;

/// The language ids the browser editor offers (Monaco ids), in its order.
pub const LANGUAGE_IDS: [&str; 9] = [
    "c",
    "cpp",
    "java",
    "python",
    "javascript",
    "typescript",
    "go",
    "rust",
    "plaintext",
];

/// The language shown when the document names none (or one not on offer).
pub const DEFAULT_LANGUAGE: &str = "plaintext";

/// The browser editor's palette: a name without a valid colour gets one of these.
const PALETTE: [&str; 10] = [
    "#e5484d", "#f76b15", "#ffc53d", "#46a758", "#12a594", "#0090ff", "#8e4ec6", "#d6409f",
    "#a18072", "#5eb1ef",
];

/// Longest display name, in characters.
const MAX_NAME: usize = 64;

/// One snapshot of the room's document as this read-only client holds it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DocView {
    /// `Y.Text "code"`. Shared between snapshots while it does not change, so a cursor
    /// moving in a large document does not copy the text.
    pub text: Arc<str>,
    /// `Y.Map "meta"` key `language` as stored, when it is a string (see
    /// [`DocView::language_id`] for what to show).
    pub language: Option<String>,
    /// Everyone with an awareness state, sorted by name then client id.
    pub peers: Vec<AwarenessPeer>,
    /// Synced with the server on an open connection (its sync step 2 arrived).
    pub connected: bool,
    /// The client whose content arrived last in a live update (not in a catch-up sync).
    /// An update that only deletes carries no author, so it leaves this as it was.
    pub last_edit_by: Option<u64>,
    /// The 1-based line where the last live edit happened, in the text as it is now.
    pub last_edit_line: Option<u32>,
    /// Connection attempts that failed since the last synced connection.
    pub attempts: u32,
    /// Why the client is not connected, when it is not. [`DocError::is_final`] errors
    /// wait for a fresh token ([`super::DocClient::set_token`]).
    pub error: Option<DocError>,
}

impl DocView {
    /// The language to show, as the browser editor reads it: the stored value trimmed and
    /// lower-cased when it is one of [`LANGUAGE_IDS`], else [`DEFAULT_LANGUAGE`].
    pub fn language_id(&self) -> &'static str {
        self.language
            .as_deref()
            .map(|l| l.trim().to_lowercase())
            .and_then(|l| LANGUAGE_IDS.iter().copied().find(|id| *id == l))
            .unwrap_or(DEFAULT_LANGUAGE)
    }

    /// The peer with this awareness client id.
    pub fn peer(&self, client_id: u64) -> Option<&AwarenessPeer> {
        self.peers.iter().find(|p| p.client_id == client_id)
    }
}

/// One awareness state, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct AwarenessPeer {
    /// The client's Y.Doc client id (the awareness key).
    pub client_id: u64,
    /// Trimmed, at most 64 characters, "Anonymous" when missing.
    pub name: String,
    /// `#rrggbb`: the state's own when valid, else the one the browser derives from the
    /// name.
    pub color: String,
    /// Whether the state says it presents (the server strips read-only viewers' claims).
    pub presenter: bool,
    /// When presenting started, server time in ms since the Unix epoch, as claimed
    /// (`None` when not presenting or not a finite, non-negative number). Who to follow
    /// is the engine's decision; it should not trust a start in the future.
    pub presenter_since: Option<f64>,
    /// The 1-based line of the cursor (`selection.head`, a Yjs relative position resolved
    /// against the text); `None` without a selection in `code`.
    pub cursor_line: Option<u32>,
}

/// A `selection` end as y-monaco writes it: a `Y.RelativePosition` as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelPos {
    /// Just before the character that item (client, clock) holds.
    Item {
        client: u64,
        clock: u32,
        before: bool,
    },
    /// The end of the text (the start when `assoc < 0`).
    End { start: bool },
}

/// A peer as read from its JSON state, with the cursor still unresolved.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ParsedPeer {
    pub(crate) peer: AwarenessPeer,
    pub(crate) head: Option<RelPos>,
}

/// Reads one awareness state as the browser's `readPeer` does; `None` for a state that
/// is empty or not an object (a client going away).
pub(crate) fn parse_peer(client_id: u64, json: &str) -> Option<ParsedPeer> {
    let state: serde_json::Value = serde_json::from_str(json).ok()?;
    let state = state.as_object().filter(|s| !s.is_empty())?;
    let user = state.get("user").and_then(serde_json::Value::as_object);
    let name = clean_name(
        user.and_then(|u| u.get("name"))
            .and_then(serde_json::Value::as_str),
    );
    let color = user
        .and_then(|u| u.get("color"))
        .and_then(serde_json::Value::as_str)
        .filter(|c| is_color(c))
        .map_or_else(|| color_for(&name).to_owned(), str::to_owned);
    let presenter = state.get("presenter") == Some(&serde_json::Value::Bool(true));
    let presenter_since = if presenter {
        state
            .get("presenterSince")
            .and_then(serde_json::Value::as_f64)
            .filter(|s| s.is_finite() && *s >= 0.0)
    } else {
        None
    };
    let head = state
        .get("selection")
        .and_then(|s| s.get("head"))
        .and_then(parse_rel_pos);
    Some(ParsedPeer {
        peer: AwarenessPeer {
            client_id,
            name,
            color,
            presenter,
            presenter_since,
            cursor_line: None,
        },
        head,
    })
}

/// A relative position in the root text `code` (`type` null, `tname` "code"); `None` for
/// any other type or a malformed one.
fn parse_rel_pos(pos: &serde_json::Value) -> Option<RelPos> {
    let pos = pos.as_object()?;
    if !pos.get("type").is_none_or(serde_json::Value::is_null)
        || pos.get("tname").and_then(serde_json::Value::as_str) != Some(super::CODE_TEXT)
    {
        return None;
    }
    let assoc = pos
        .get("assoc")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    match pos.get("item") {
        None | Some(serde_json::Value::Null) => Some(RelPos::End { start: assoc < 0.0 }),
        Some(item) => {
            let client = item.get("client")?.as_u64().filter(|c| *c < 1 << 53)?;
            let clock = u32::try_from(item.get("clock")?.as_u64()?).ok()?;
            Some(RelPos::Item {
                client,
                clock,
                before: assoc < 0.0,
            })
        }
    }
}

/// `#rrggbb`.
fn is_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The browser's `cleanName`: trimmed, at most 64 characters, "Anonymous" when empty.
fn clean_name(name: Option<&str>) -> String {
    let n = name.unwrap_or("").trim();
    if n.is_empty() {
        "Anonymous".to_owned()
    } else {
        n.chars().take(MAX_NAME).collect()
    }
}

/// The browser's `colorFor`: FNV-1a over the name's UTF-16 code units picks a palette
/// colour, so a name has the same colour on the kiosk as in every browser.
pub(crate) fn color_for(name: &str) -> &'static str {
    let mut h: u32 = 0x811c_9dc5;
    for unit in name.encode_utf16() {
        h ^= u32::from(unit);
        h = h.wrapping_mul(0x0100_0193);
    }
    PALETTE[h as usize % PALETTE.len()]
}

/// The 1-based line holding UTF-16 offset `index` of `text` (an offset past the end is on
/// the last line).
pub(crate) fn line_at(text: &str, index: u32) -> u32 {
    let mut units = 0u32;
    let mut line = 1u32;
    for ch in text.chars() {
        if units >= index {
            break;
        }
        units += ch.len_utf16() as u32;
        if ch == '\n' {
            line += 1;
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_match_the_browser() {
        // What editor-doc.ts' colorFor gives for these names (run under node).
        assert_eq!(color_for("Ada"), "#0090ff");
        assert_eq!(color_for("Anonymous"), "#a18072");
        assert_eq!(color_for("Room 4.01"), "#f76b15");
        assert_eq!(color_for("Zoë 😀"), "#a18072");
    }

    #[test]
    fn a_browser_state_reads_as_written() {
        let json = r##"{"user":{"name":"  Ada ","color":"#0090ff","colorLight":"#0090ff33"},
            "presenter":true,"presenterSince":1700000000000,
            "selection":{"anchor":{"type":null,"tname":"code","item":{"client":7,"clock":3},"assoc":0},
                         "head":{"type":null,"tname":"code","item":null,"assoc":0}}}"##;
        let parsed = parse_peer(42, json).unwrap();
        assert_eq!(parsed.peer.name, "Ada");
        assert_eq!(parsed.peer.color, "#0090ff");
        assert!(parsed.peer.presenter);
        assert_eq!(parsed.peer.presenter_since, Some(1_700_000_000_000.0));
        assert_eq!(parsed.head, Some(RelPos::End { start: false }));
    }

    #[test]
    fn untrusted_states_fall_back_like_the_browser() {
        assert!(parse_peer(1, "{}").is_none());
        assert!(parse_peer(1, "null").is_none());
        assert!(parse_peer(1, "[1]").is_none());
        let p = parse_peer(
            1,
            r#"{"user":{"color":"red"},"presenter":"yes","presenterSince":5}"#,
        )
        .unwrap();
        assert_eq!(p.peer.name, "Anonymous");
        assert_eq!(p.peer.color, color_for("Anonymous"));
        assert!(!p.peer.presenter);
        assert_eq!(p.peer.presenter_since, None);
        let long = format!(r#"{{"user":{{"name":"{}"}}}}"#, "é".repeat(100));
        assert_eq!(parse_peer(1, &long).unwrap().peer.name.chars().count(), 64);
        // A selection in another type, or an item with a client id over 53 bits.
        let other = r#"{"selection":{"head":{"type":{"client":1,"clock":0},"tname":null,"item":null,"assoc":0}}}"#;
        assert_eq!(parse_peer(1, other).unwrap().head, None);
        let big = r#"{"selection":{"head":{"type":null,"tname":"code","item":{"client":9007199254740993,"clock":0},"assoc":-1}}}"#;
        assert_eq!(parse_peer(1, big).unwrap().head, None);
        let before = r#"{"selection":{"head":{"type":null,"tname":"code","item":{"client":3,"clock":4},"assoc":-1}}}"#;
        assert_eq!(
            parse_peer(1, before).unwrap().head,
            Some(RelPos::Item {
                client: 3,
                clock: 4,
                before: true
            })
        );
    }

    #[test]
    fn lines_count_utf16_units() {
        let text = "a\nβ😀\nc";
        assert_eq!(line_at(text, 0), 1);
        assert_eq!(line_at(text, 1), 1);
        assert_eq!(line_at(text, 2), 2);
        // "β" is one unit, "😀" two: the second newline is at unit 5.
        assert_eq!(line_at(text, 5), 2);
        assert_eq!(line_at(text, 6), 3);
        assert_eq!(line_at(text, 100), 3);
    }

    #[test]
    fn languages_are_read_as_the_browser_reads_them() {
        let mut view = DocView::default();
        assert_eq!(view.language_id(), "plaintext");
        view.language = Some(" Rust ".into());
        assert_eq!(view.language_id(), "rust");
        view.language = Some("cobol".into());
        assert_eq!(view.language_id(), "plaintext");
    }
}
