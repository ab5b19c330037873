use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use super::*;

const SAMPLES: [(&str, &str); 8] = [
    (
        "c",
        "#include <stdio.h>\nint main(void) {\n  return printf(\"%d\", 42); // out\n}\n",
    ),
    (
        "cpp",
        "#include <vector>\nclass A { public: int f() const { return 1; } };\n// note\nauto s = \"x\";\n",
    ),
    (
        "go",
        "package main\n\nfunc main() {\n\tx := 42 // answer\n\tprintln(\"hi\", x)\n}\n",
    ),
    (
        "java",
        "public class A {\n  // note\n  static int f() { return 42; }\n  String s = \"x\";\n}\n",
    ),
    (
        "javascript",
        "function f(a) {\n  // note\n  return a + 42 + \"x\";\n}\nconst g = () => null;\n",
    ),
    (
        "python",
        "def f(a):\n    # note\n    return a + 42 + len(\"x\")\n\nclass B: pass\n",
    ),
    (
        "rust",
        "fn main() {\n    // note\n    let s: &str = \"x\";\n    println!(\"{}\", 42);\n}\n",
    ),
    (
        "typescript",
        "function f(a: number) {\n  // note\n  return a + 42 + \"x\";\n}\n",
    ),
];

fn colours(tokens: &[Vec<Token>]) -> HashSet<Rgb> {
    tokens.iter().flatten().map(|t| t.color).collect()
}

fn rust_document(lines: usize) -> String {
    let mut text = String::new();
    for i in 0..lines {
        writeln!(
            text,
            "    let value_{i} = compute({i}, \"text\"); // line {}",
            i + 1
        )
        .unwrap();
    }
    text
}

#[test]
fn every_language_has_several_colours() {
    for (id, sample) in SAMPLES {
        let mut h = Highlighter::new(Language::from_id(id), sample.into());
        let tokens = h.window(0, 100);
        assert!(colours(&tokens).len() > 1, "{id}: {tokens:?}");
    }
}

#[test]
fn plain_text_is_one_colour() {
    let mut h = Highlighter::new(Language::PlainText, "fn main() { \"x\" }\n// 42".into());
    assert_eq!(colours(&h.window(0, 10)).len(), 1);
}

#[test]
fn tokens_carry_their_columns() {
    let mut h = Highlighter::new(Language::Rust, "\tlet x = 1;".into());
    let tokens = &h.window(0, 1)[0];
    assert_eq!(tokens[0].column, 4, "a tab is four columns");
    assert_eq!(tokens[0].text, "let", "white space ends no token");
    let text: String = tokens.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(text.replace(' ', ""), "letx=1;");
    // Each token starts where the text says it does.
    let line = h.display_line(0);
    for token in tokens {
        let at: String = line
            .chars()
            .skip(token.column)
            .take(token.text.chars().count())
            .collect();
        assert_eq!(at, token.text);
    }
    assert_eq!(line, "    let x = 1;");
    let mut h = Highlighter::new(Language::Go, "a\tb\n  \t c".into());
    assert_eq!(h.display_line(0), "a   b");
    assert_eq!(h.display_line(1), "     c");
    assert_eq!(h.window(1, 1)[0][0].column, 5);
}

#[test]
fn long_lines_are_clipped() {
    let long = format!("let s = \"{}\";", "é".repeat(10_000));
    let mut h = Highlighter::new(Language::Rust, long.into());
    let tokens = &h.window(0, 1)[0];
    let last = tokens.last().unwrap();
    assert_eq!(last.column + last.text.chars().count(), MAX_COLUMNS);
    assert_eq!(h.display_line(0).chars().count(), MAX_COLUMNS);
}

#[test]
fn empty_text_is_one_empty_line() {
    let mut h = Highlighter::new(Language::Rust, "".into());
    assert_eq!(h.line_count(), 1);
    assert_eq!(h.window(0, 10), vec![Vec::<Token>::new()]);
    assert!(h.window(1, 10).is_empty());
    let mut h = Highlighter::new(Language::Python, "x = 1\n".into());
    assert_eq!(h.line_count(), 2, "the line after the last break");
    assert_eq!(h.window(0, 10).len(), 2);
}

#[test]
fn windows_stop_at_the_end() {
    let mut h = Highlighter::new(Language::Rust, rust_document(10).into());
    assert_eq!(h.window(8, 10).len(), 3);
}

/// The colours of a window equal those of a highlighter that parsed the text afresh.
fn assert_same_as_fresh(h: &mut Highlighter, text: &Arc<str>, first: usize, count: usize) {
    let mut fresh = Highlighter::new(h.language(), Arc::clone(text));
    assert_eq!(
        h.window(first, count),
        fresh.window(first, count),
        "window at {first}"
    );
}

#[test]
fn a_large_document_reparses_only_what_changed() {
    const ROWS: usize = 30;
    let text: Arc<str> = rust_document(5000).into();
    let mut h = Highlighter::new(Language::Rust, Arc::clone(&text));
    h.window(3990, ROWS);
    let first = h.lines_parsed();
    assert!(first >= 3990 && first <= 3990 + ROWS as u64, "{first}");

    // Showing the same window again parses from the checkpoint before it.
    h.window(3990, ROWS);
    let again = h.lines_parsed() - first;
    assert!(again <= (CHECKPOINT_INTERVAL + ROWS) as u64, "{again}");

    // A keystroke inside the window.
    let mut edited = text.to_string();
    let at = edited.match_indices('\n').nth(3999).unwrap().0;
    edited.insert_str(at, " x");
    let edited: Arc<str> = edited.into();
    let before = h.lines_parsed();
    h.set_text(Arc::clone(&edited));
    h.window(3990, ROWS);
    let cost = h.lines_parsed() - before;
    assert!(
        cost <= (CHECKPOINT_INTERVAL + ROWS) as u64,
        "a keystroke re-parsed {cost} lines"
    );
    assert_same_as_fresh(&mut h, &edited, 3990, ROWS);

    // New lines near the top: parsing resumes until the state matches a shifted
    // checkpoint, then jumps to the window.
    let edited: Arc<str> = format!("// added\n// lines\n{edited}").into();
    let before = h.lines_parsed();
    h.set_text(Arc::clone(&edited));
    h.window(3990, ROWS);
    let cost = h.lines_parsed() - before;
    assert!(
        cost <= (3 * CHECKPOINT_INTERVAL + ROWS) as u64,
        "lines added at the top re-parsed {cost} lines"
    );
    assert_same_as_fresh(&mut h, &edited, 3990, ROWS);

    // Lines removed in the middle.
    let mut lines: Vec<&str> = edited.split_inclusive('\n').collect();
    lines.drain(2000..2100);
    let edited: Arc<str> = lines.concat().into();
    let before = h.lines_parsed();
    h.set_text(Arc::clone(&edited));
    h.window(3890, ROWS);
    let cost = h.lines_parsed() - before;
    assert!(
        cost <= (3 * CHECKPOINT_INTERVAL + ROWS) as u64,
        "removed lines re-parsed {cost}"
    );
    assert_same_as_fresh(&mut h, &edited, 3890, ROWS);
}

#[test]
fn a_change_that_carries_on_reparses_until_it_ends() {
    let text: Arc<str> = rust_document(1000).into();
    let mut h = Highlighter::new(Language::Rust, Arc::clone(&text));
    h.window(900, 20);
    // An unclosed block comment turns everything after it into a comment.
    let opened: Arc<str> = format!("/*\n{text}").into();
    h.set_text(Arc::clone(&opened));
    let before = h.lines_parsed();
    let tokens = h.window(900, 20);
    assert!(
        h.lines_parsed() - before >= 900,
        "everything after the change"
    );
    assert_eq!(colours(&tokens).len(), 1, "all comment");
    assert_same_as_fresh(&mut h, &opened, 900, 20);
    // Closing it again brings the colours back.
    h.set_text(Arc::clone(&text));
    assert!(colours(&h.window(900, 20)).len() > 1);
    assert_same_as_fresh(&mut h, &text, 900, 20);
}

#[test]
fn the_same_text_costs_nothing_new() {
    let text: Arc<str> = rust_document(500).into();
    let mut h = Highlighter::new(Language::Rust, Arc::clone(&text));
    h.window(0, 20);
    h.set_text(text.to_string().into());
    let before = h.lines_parsed();
    h.window(0, 20);
    assert_eq!(h.lines_parsed() - before, 20);
}

#[test]
fn changing_language_recolours() {
    let text: Arc<str> = "def f():\n    return 1\n".into();
    let mut h = Highlighter::new(Language::PlainText, Arc::clone(&text));
    assert_eq!(colours(&h.window(0, 5)).len(), 1);
    h.set_language(Language::Python);
    assert!(colours(&h.window(0, 5)).len() > 1);
}
