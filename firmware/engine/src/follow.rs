//! Which line the kiosk's read-along view of the room's editor keeps in sight.
//!
//! The rule: the presenter's cursor (a browser that pressed Present; when several
//! did, the one that pressed last); with no presenter, the line of the most recent
//! edit; else the top. Lines are 1-based and kept within the document. The inputs are
//! what the document client reads from awareness and updates (`portal_net::docs`); the
//! engine decides, the view scrolls.

/// One peer's cursor as the room's awareness says it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    pub client: u64,
    pub name: String,
    /// When the peer pressed Present (its own clock, ms), if it is presenting.
    pub presenter_since: Option<f64>,
    /// The 1-based line of its cursor, when it has one in the document.
    pub line: Option<u32>,
}

/// What the view follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Followed {
    /// The presenter's name, when someone presents.
    pub presenter: Option<String>,
    /// The awareness client whose cursor is followed, if any.
    pub client: Option<u64>,
    /// The 1-based line to keep in sight.
    pub line: u32,
}

/// Decides what to follow in a document of `lines` lines (at least 1), given the
/// cursors and the most recent edit (`(client, line)`).
pub fn follow(cursors: &[Cursor], last_edit: Option<(u64, u32)>, lines: u32) -> Followed {
    let lines = lines.max(1);
    let clamp = |line: u32| line.clamp(1, lines);
    let presenter = cursors
        .iter()
        .filter_map(|c| c.presenter_since.filter(|t| t.is_finite()).map(|t| (t, c)))
        .max_by(|(a, ca), (b, cb)| a.total_cmp(b).then(ca.client.cmp(&cb.client)))
        .map(|(_, c)| c);
    if let Some(p) = presenter {
        let line = p
            .line
            .or_else(|| last_edit.filter(|(c, _)| *c == p.client).map(|(_, l)| l))
            .map_or(1, clamp);
        return Followed {
            presenter: Some(p.name.clone()),
            client: Some(p.client),
            line,
        };
    }
    match last_edit {
        Some((client, line)) => Followed {
            presenter: None,
            client: Some(client),
            line: clamp(line),
        },
        None => Followed {
            presenter: None,
            client: None,
            line: 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(client: u64, since: Option<f64>, line: Option<u32>) -> Cursor {
        Cursor {
            client,
            name: format!("peer {client}"),
            presenter_since: since,
            line,
        }
    }

    #[test]
    fn the_presenters_cursor_wins_over_the_last_edit() {
        let cursors = [cursor(1, None, Some(3)), cursor(2, Some(10.0), Some(40))];
        let f = follow(&cursors, Some((1, 7)), 100);
        assert_eq!(f.presenter.as_deref(), Some("peer 2"));
        assert_eq!((f.client, f.line), (Some(2), 40));
    }

    #[test]
    fn the_newest_presenter_wins() {
        let cursors = [
            cursor(1, Some(20.0), Some(5)),
            cursor(2, Some(10.0), Some(9)),
        ];
        assert_eq!(follow(&cursors, None, 100).client, Some(1));
    }

    #[test]
    fn no_presenter_follows_the_last_edit_else_the_top() {
        let cursors = [cursor(1, None, Some(3))];
        assert_eq!(follow(&cursors, Some((1, 12)), 100).line, 12);
        let f = follow(&cursors, None, 100);
        assert_eq!((f.presenter, f.client, f.line), (None, None, 1));
    }

    #[test]
    fn lines_stay_inside_the_document() {
        let cursors = [cursor(1, Some(1.0), Some(500))];
        assert_eq!(follow(&cursors, None, 20).line, 20);
        assert_eq!(follow(&[], Some((3, 0)), 0).line, 1);
        // A presenter without a cursor: its own last edit, else the top.
        let cursors = [cursor(4, Some(1.0), None)];
        assert_eq!(follow(&cursors, Some((4, 8)), 50).line, 8);
        assert_eq!(follow(&cursors, Some((5, 8)), 50).line, 1);
        // A presenting time that is not a number does not count.
        let cursors = [cursor(6, Some(f64::NAN), Some(2))];
        assert_eq!(follow(&cursors, Some((6, 9)), 50).presenter, None);
    }
}
