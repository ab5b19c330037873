//! File names for received files: what a remote peer offers is untrusted text.
//!
//! [`sanitize`] turns an offered name into a plain file name that is safe to create in the
//! download directory: only its last path component survives (`../../etc/passwd` becomes
//! `passwd`), control characters and characters other systems reserve become `_`, leading
//! dots go (no hidden files, no `.`/`..`), and the result fits [`MAX_FILE_NAME`] bytes with
//! its extension kept. [`unique`] then picks `name (1).ext`, `name (2).ext`, ... so a
//! received file never overwrites another.

use std::collections::HashSet;
use std::hash::BuildHasher;

use portal_proto::channel::MAX_FILE_NAME;

/// Used when nothing of the offered name survives.
pub const FALLBACK_NAME: &str = "file";

/// A safe plain file name for an offered `name`. Never empty, never starts with `.`,
/// holds no `/`, `\` or control character, at most [`MAX_FILE_NAME`] bytes.
pub fn sanitize(name: &str) -> String {
    let last = name
        .rsplit(['/', '\\'])
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || is_bidi_or_invisible(c) || is_reserved(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = trim_edges(&cleaned);
    if trimmed.is_empty() {
        return FALLBACK_NAME.to_owned();
    }
    let fitted = fit(trimmed, "", MAX_FILE_NAME);
    let fitted = trim_edges(&fitted);
    if fitted.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        fitted.to_owned()
    }
}

/// Without leading or trailing dots and white space (`.hidden`, `name. `).
fn trim_edges(name: &str) -> &str {
    let edge = |c: char| c == '.' || c.is_whitespace();
    name.trim_start_matches(edge).trim_end_matches(edge)
}

/// Characters Windows and macOS refuse in names; a file copied off the kiosk keeps working.
fn is_reserved(c: char) -> bool {
    matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')
}

/// Zero-width and bidirectional controls, which let `txt.exe` show as `exe.txt`.
fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `name`, or `stem (n).ext` with the smallest `n` that is not in `taken`.
pub fn unique<S: BuildHasher>(name: &str, taken: &HashSet<String, S>) -> String {
    if !taken.contains(name) {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    (1..=u32::MAX)
        .map(|n| fit(stem, &format!(" ({n}){ext}"), MAX_FILE_NAME))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_else(|| FALLBACK_NAME.to_owned())
}

/// `("report.final", ".pdf")` for `report.final.pdf`; no extension for `README` or `.x`.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(0) | None => (name, ""),
        Some(i) if name.len() - i > 16 => (name, ""),
        Some(i) => name.split_at(i),
    }
}

/// `stem` + `suffix`, cutting `stem` (then the extension) at a char boundary to fit `max`.
fn fit(name: &str, suffix: &str, max: usize) -> String {
    let (stem, ext) = if suffix.is_empty() {
        split_extension(name)
    } else {
        (name, "")
    };
    let tail = format!("{suffix}{ext}");
    if stem.len() + tail.len() <= max {
        return format!("{stem}{tail}");
    }
    let room = max.saturating_sub(tail.len());
    let mut cut = room.min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut == 0 {
        // The extension alone is too long: cut the whole name instead.
        let whole = format!("{stem}{tail}");
        let mut cut = max.min(whole.len());
        while !whole.is_char_boundary(cut) {
            cut -= 1;
        }
        return whole[..cut].to_owned();
    }
    format!("{}{tail}", &stem[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn path_traversal_and_hidden_names() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("..\\..\\windows\\win.ini"), "win.ini");
        assert_eq!(sanitize("/etc/shadow"), "shadow");
        assert_eq!(sanitize(".bashrc"), "bashrc");
        assert_eq!(sanitize(".."), FALLBACK_NAME);
        assert_eq!(sanitize("dir/"), "dir");
        assert_eq!(sanitize(""), FALLBACK_NAME);
        assert_eq!(sanitize("  . "), FALLBACK_NAME);
        assert_eq!(sanitize("a\0b\nc.txt"), "a_b_c.txt");
        assert_eq!(sanitize("what?.txt"), "what_.txt");
        assert_eq!(sanitize("Résumé 2026.pdf"), "Résumé 2026.pdf");
        assert_eq!(sanitize("name. . ."), "name");
        assert_eq!(sanitize("invoice\u{202E}fdp.exe"), "invoice_fdp.exe");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.pdf", "é".repeat(300));
        let s = sanitize(&long);
        assert!(s.len() <= MAX_FILE_NAME);
        assert!(s.rsplit_once('.').is_some_and(|(_, ext)| ext == "pdf"));
    }

    #[test]
    fn unique_numbers_before_the_extension() {
        let mut taken = HashSet::new();
        assert_eq!(unique("a.txt", &taken), "a.txt");
        taken.insert("a.txt".to_owned());
        assert_eq!(unique("a.txt", &taken), "a (1).txt");
        taken.insert("a (1).txt".to_owned());
        assert_eq!(unique("a.txt", &taken), "a (2).txt");
        taken.insert("README".to_owned());
        assert_eq!(unique("README", &taken), "README (1)");
    }

    proptest! {
        #[test]
        fn sanitized_names_are_always_safe(name in ".{0,400}") {
            let s = sanitize(&name);
            prop_assert!(!s.is_empty());
            prop_assert!(!s.starts_with('.'));
            prop_assert!(!s.contains('/') && !s.contains('\\'));
            prop_assert!(!s.chars().any(char::is_control));
            prop_assert!(s.len() <= MAX_FILE_NAME);
            prop_assert_eq!(sanitize(&s), s.clone(), "sanitize is idempotent");
        }

        #[test]
        fn unique_never_returns_a_taken_name(
            name in "[a-z]{1,8}(\\.[a-z]{1,3})?",
            n in 0usize..20,
        ) {
            let mut taken = HashSet::new();
            for _ in 0..n {
                let next = unique(&name, &taken);
                prop_assert!(!taken.contains(&next));
                prop_assert_eq!(sanitize(&next), next.clone());
                taken.insert(next);
            }
            prop_assert_eq!(taken.len(), n);
        }
    }
}
