//! Syntax colours for a document that changes many times a second, with the work per
//! change bounded.
//!
//! syntect parses line by line, each line from the state the previous one left. The
//! [`Highlighter`] keeps that state at checkpoints (about every [`CHECKPOINT_INTERVAL`]
//! lines). A text change keeps the checkpoints before the first changed line, and keeps
//! the ones in the unchanged tail as candidates, shifted by the lines added or removed:
//! parsing on from the change, the first candidate whose state matches the fresh one
//! proves every later one right again. Tokens are only made for the lines asked for (the
//! visible window), so an edit costs the lines from the checkpoint before it to where
//! its effect ends, plus the window.

use std::fmt;
use std::sync::Arc;

use syntect::highlighting::{HighlightIterator, HighlightState};
use syntect::parsing::{ParseState, ScopeStack, ScopeStackOp};

use super::language::{Language, Rgb, highlighter, syntaxes};

/// Lines between checkpoints: a change re-parses at most this many lines before it.
pub(crate) const CHECKPOINT_INTERVAL: usize = 64;
/// Columns kept of a line; the view shows fewer, this only bounds the work.
pub(crate) const MAX_COLUMNS: usize = 200;
/// Bytes of a line given to the parser. A longer line (minified code) is parsed in
/// part: its colours past that point, and the state it leaves, may be off.
pub(crate) const MAX_PARSE_BYTES: usize = 4096;
/// Tab stops every 4 columns, as in the browser's editor.
const TAB_WIDTH: usize = 4;

/// A run of characters in one colour, starting at `column` (tabs expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) column: usize,
    pub(crate) text: String,
    pub(crate) color: Rgb,
}

/// The parser's state at the start of `line`.
#[derive(Clone)]
struct Checkpoint {
    line: usize,
    parse: ParseState,
    scopes: ScopeStack,
}

/// Incremental colouring of one document. See the module docs.
pub(crate) struct Highlighter {
    language: Language,
    text: Arc<str>,
    /// Byte offset where each line starts; an empty text has one empty line.
    starts: Vec<usize>,
    /// Sorted by line; `checkpoints[0]` is always line 0.
    checkpoints: Vec<Checkpoint>,
    /// `checkpoints[..trusted]` hold for the current text; the rest are candidates.
    trusted: usize,
    lines_parsed: u64,
}

impl fmt::Debug for Highlighter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Highlighter")
            .field("language", &self.language)
            .field("lines", &self.starts.len())
            .field("checkpoints", &self.checkpoints.len())
            .field("trusted", &self.trusted)
            .field("lines_parsed", &self.lines_parsed)
            .finish_non_exhaustive()
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect()
}

fn initial(language: Language) -> Checkpoint {
    Checkpoint {
        line: 0,
        parse: ParseState::new(language.syntax()),
        scopes: ScopeStack::new(),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Highlighter {
    pub(crate) fn new(language: Language, text: Arc<str>) -> Self {
        Self {
            language,
            starts: line_starts(&text),
            text,
            checkpoints: vec![initial(language)],
            trusted: 1,
            lines_parsed: 0,
        }
    }

    pub(crate) fn language(&self) -> Language {
        self.language
    }

    pub(crate) fn line_count(&self) -> usize {
        self.starts.len()
    }

    /// Lines parsed since this highlighter was made: what a change cost.
    #[cfg(test)]
    pub(crate) fn lines_parsed(&self) -> u64 {
        self.lines_parsed
    }

    /// Another language parses everything afresh.
    pub(crate) fn set_language(&mut self, language: Language) {
        if language != self.language {
            self.language = language;
            self.checkpoints = vec![initial(language)];
            self.trusted = 1;
        }
    }

    /// Takes a new version of the text, keeping what the change cannot have affected.
    pub(crate) fn set_text(&mut self, text: Arc<str>) {
        if Arc::ptr_eq(&self.text, &text) || *self.text == *text {
            self.text = text;
            return;
        }
        let (old, new) = (self.text.as_bytes(), text.as_bytes());
        let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
        let room = old.len().min(new.len()) - prefix;
        let suffix = old
            .iter()
            .rev()
            .zip(new.iter().rev())
            .take(room)
            .take_while(|(a, b)| a == b)
            .count();
        // The state at the start of a line depends only on the lines before it.
        // (The text before `prefix` is the same in both, so are its line breaks.)
        let first_changed = self.starts.partition_point(|&start| start <= prefix) - 1;
        // A line of the old text whose preceding newline is in the unchanged tail starts
        // the same text in the new one, `delta` lines further.
        let tail = old.len() - suffix;
        let new_starts = line_starts(&text);
        let delta = new_starts.len().cast_signed() - self.starts.len().cast_signed();

        let mut kept = Vec::with_capacity(self.checkpoints.len());
        let mut trusted = 0;
        for (index, mut checkpoint) in std::mem::take(&mut self.checkpoints)
            .into_iter()
            .enumerate()
        {
            if checkpoint.line <= first_changed {
                if index < self.trusted && trusted == kept.len() {
                    trusted += 1;
                }
                kept.push(checkpoint);
            } else if self
                .starts
                .get(checkpoint.line)
                .is_some_and(|&start| start > tail)
            {
                let line = checkpoint.line.checked_add_signed(delta);
                if let Some(line) = line.filter(|&l| l > first_changed && l < new_starts.len()) {
                    checkpoint.line = line;
                    kept.push(checkpoint);
                }
            }
        }
        self.checkpoints = kept;
        self.trusted = trusted.max(1);
        self.starts = new_starts;
        self.text = text;
    }

    /// Line `index` without its line break.
    fn line(&self, index: usize) -> &str {
        let start = self.starts[index];
        let end = self
            .starts
            .get(index + 1)
            .map_or(self.text.len(), |next| next - 1);
        let line = &self.text[start..end];
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// Parses line `index` from `parse`, returning the text parsed (with its `\n`, as the
    /// syntaxes expect) and the scope changes.
    fn parse(
        &mut self,
        index: usize,
        parse: &mut ParseState,
    ) -> (String, Vec<(usize, ScopeStackOp)>) {
        let mut line = clip(self.line(index), MAX_PARSE_BYTES).to_owned();
        line.push('\n');
        self.lines_parsed += 1;
        let ops = parse.parse_line(&line, syntaxes()).unwrap_or_else(|error| {
            tracing::debug!(%error, line = index + 1, "line not coloured");
            Vec::new()
        });
        (line, ops)
    }

    /// Records the state at the start of `line` when walking the trusted frontier.
    /// Returns true when it matched a candidate, which makes every later one trusted.
    fn note(&mut self, line: usize, parse: &ParseState, scopes: &ScopeStack) -> bool {
        while self
            .checkpoints
            .get(self.trusted)
            .is_some_and(|c| c.line < line)
        {
            self.checkpoints.remove(self.trusted);
        }
        if let Some(candidate) = self.checkpoints.get_mut(self.trusted)
            && candidate.line == line
        {
            if candidate.parse == *parse && candidate.scopes == *scopes {
                self.trusted = self.checkpoints.len();
                return true;
            }
            candidate.parse = parse.clone();
            candidate.scopes = scopes.clone();
            self.trusted += 1;
            return false;
        }
        if line - self.checkpoints[self.trusted - 1].line >= CHECKPOINT_INTERVAL {
            self.checkpoints.insert(
                self.trusted,
                Checkpoint {
                    line,
                    parse: parse.clone(),
                    scopes: scopes.clone(),
                },
            );
            self.trusted += 1;
        }
        false
    }

    /// The parser's state at the start of line `target`.
    fn state_at(&mut self, target: usize) -> (ParseState, ScopeStack) {
        'restart: loop {
            let index = self.checkpoints[..self.trusted].partition_point(|c| c.line <= target) - 1;
            let frontier = index + 1 == self.trusted;
            let start = &self.checkpoints[index];
            let (mut parse, mut scopes, mut line) =
                (start.parse.clone(), start.scopes.clone(), start.line);
            while line < target {
                let (_, ops) = self.parse(line, &mut parse);
                for (_, op) in &ops {
                    // A syntax that pops more than it pushed: keep going with what is left.
                    let _ = scopes.apply(op);
                }
                line += 1;
                if frontier && self.note(line, &parse, &scopes) {
                    continue 'restart;
                }
            }
            return (parse, scopes);
        }
    }

    /// Tokens for `count` lines from line `first` (0-based); fewer at the end of the text.
    pub(crate) fn window(&mut self, first: usize, count: usize) -> Vec<Vec<Token>> {
        let end = first.saturating_add(count).min(self.line_count());
        if first >= end {
            return Vec::new();
        }
        let (mut parse, scopes) = self.state_at(first);
        let highlighter = highlighter();
        let mut state = HighlightState::new(highlighter, scopes);
        (first..end)
            .map(|index| {
                let (line, ops) = self.parse(index, &mut parse);
                let mut tokens = Tokens::default();
                for (style, piece) in HighlightIterator::new(&mut state, &ops, &line, highlighter) {
                    tokens.push(piece, Rgb::from_syntect(style.foreground));
                }
                tokens.done()
            })
            .collect()
    }

    /// Line `index` as shown: tabs expanded, at most [`MAX_COLUMNS`] columns.
    pub(crate) fn display_line(&self, index: usize) -> String {
        let mut tokens = Tokens::default();
        tokens.push(self.line(index), Rgb::default());
        tokens
            .done()
            .into_iter()
            .fold(String::new(), |mut line, token| {
                line.extend(std::iter::repeat_n(
                    ' ',
                    token.column - line.chars().count(),
                ));
                line.push_str(&token.text);
                line
            })
    }
}

/// Builds a line's tokens: tabs expanded, white space folded into the token before it
/// (or skipped at the start), neighbours of one colour merged, clipped at [`MAX_COLUMNS`].
#[derive(Default)]
struct Tokens {
    tokens: Vec<Token>,
    column: usize,
}

impl Tokens {
    fn push(&mut self, piece: &str, color: Rgb) {
        for c in piece.chars() {
            if self.column >= MAX_COLUMNS {
                return;
            }
            let width = match c {
                '\n' | '\r' => continue,
                '\t' => TAB_WIDTH - self.column % TAB_WIDTH,
                _ => 1,
            };
            let blank = c.is_whitespace();
            let contiguous = self
                .tokens
                .last()
                .filter(|t| t.column + t.text.chars().count() == self.column);
            match contiguous {
                Some(last) if blank || last.color == color => {
                    let last = self.tokens.last_mut().expect("just seen");
                    if c == '\t' {
                        last.text.extend(std::iter::repeat_n(' ', width));
                    } else {
                        last.text.push(c);
                    }
                }
                _ if blank => {}
                _ => self.tokens.push(Token {
                    column: self.column,
                    text: c.to_string(),
                    color,
                }),
            }
            self.column = (self.column + width).min(MAX_COLUMNS);
        }
    }

    /// The tokens, without trailing white space.
    fn done(mut self) -> Vec<Token> {
        for token in &mut self.tokens {
            token.text.truncate(token.text.trim_end().len());
        }
        self.tokens
    }
}

#[cfg(test)]
#[path = "highlight_tests.rs"]
mod tests;
