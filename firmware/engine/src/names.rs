//! File names for received files: what a remote peer offers is untrusted text.
//!
//! [`sanitize`] turns an offered name into a plain file name that is safe to create in the
//! download directory: only its last path component survives (`../../etc/passwd` becomes
//! `passwd`), control characters and characters other systems reserve become `_`, leading
//! dots go (no hidden files, no `.`/`..`), and the result fits [`MAX_FILE_NAME`] bytes with
//! its extension kept, and names other systems reserve for devices (`CON`, `nul.txt`) get a
//! leading `_`. [`unique`] then picks `name (1).ext`, `name (2).ext`, ... so a received
//! file never overwrites another. [`displayable`] is for showing an offered name as it was
//! offered, without the characters that would make it show as something else.

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
    let unreserved;
    let trimmed = if is_device_name(trimmed) {
        unreserved = format!("_{trimmed}");
        &unreserved
    } else {
        trimmed
    };
    let fitted = fit(trimmed, "", MAX_FILE_NAME);
    let fitted = trim_edges(&fitted);
    if fitted.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        fitted.to_owned()
    }
}

/// An offered name or mime type as it may be shown: control, zero-width and bidi
/// characters become `_`, and it is cut to [`MAX_FILE_NAME`] bytes. Not a path.
pub fn displayable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len().min(MAX_FILE_NAME));
    for c in text.chars() {
        let c = if c.is_control() || is_bidi_or_invisible(c) {
            '_'
        } else {
            c
        };
        if shown.len() + c.len_utf8() > MAX_FILE_NAME {
            break;
        }
        shown.push(c);
    }
    shown
}

/// Names Windows keeps for devices, with any extension (`CON`, `nul.txt`, `COM1.log`).
fn is_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let upper = stem.to_ascii_uppercase();
    matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit())
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

/// Zero-width and bidirectional controls, which let `txt.exe` show as `exe.txt`: the
/// same set display names lose ([`portal_proto::names`]).
fn is_bidi_or_invisible(c: char) -> bool {
    portal_proto::names::is_invisible(c)
}

/// `name`, or `stem (n).ext` with the smallest `n` that is not `taken`.
pub fn unique(name: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(name) {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    (1..=u32::MAX)
        .map(|n| fit(stem, &format!(" ({n}){ext}"), MAX_FILE_NAME))
        .find(|candidate| !taken(candidate))
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
    use std::collections::HashSet;

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
    fn device_names_and_what_is_shown() {
        assert_eq!(sanitize("CON"), "_CON");
        assert_eq!(sanitize("nul.txt"), "_nul.txt");
        assert_eq!(sanitize("com1.log"), "_com1.log");
        assert_eq!(sanitize("console.txt"), "console.txt");
        assert_eq!(sanitize("COM10"), "COM10");
        assert_eq!(displayable("a\u{202E}b\nc/d"), "a_b_c/d");
        assert!(displayable(&"é".repeat(400)).len() <= MAX_FILE_NAME);
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
        assert_eq!(unique("a.txt", |n| taken.contains(n)), "a.txt");
        taken.insert("a.txt".to_owned());
        assert_eq!(unique("a.txt", |n| taken.contains(n)), "a (1).txt");
        taken.insert("a (1).txt".to_owned());
        assert_eq!(unique("a.txt", |n| taken.contains(n)), "a (2).txt");
        taken.insert("README".to_owned());
        assert_eq!(unique("README", |n| taken.contains(n)), "README (1)");
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
                let next = unique(&name, |n| taken.contains(n));
                prop_assert!(!taken.contains(&next));
                prop_assert_eq!(sanitize(&next), next.clone());
                taken.insert(next);
            }
            prop_assert_eq!(taken.len(), n);
        }
    }
}
