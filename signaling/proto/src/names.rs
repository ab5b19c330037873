//! Display names (and the names chat lines are shown under): untrusted text that other
//! people read on a kiosk's wall and in every browser of the room.
//!
//! One rule, here, for the server (which admits a name at `hello`), the kiosk (which
//! checks its configured name and cleans received file names with [`is_invisible`]) and
//! the browser (`signaling/web/src/names.ts`, fed with the generated
//! [`INVISIBLE_RANGES`] and limits):
//!
//! - characters that change how the text around them is shown without being seen
//!   themselves are removed: bidirectional controls (U+202A–202E, U+2066–2069,
//!   U+200E/200F, U+061C), zero-width characters (U+200B–200D, U+2060, U+FEFF) and a few
//!   more invisible format characters ([`INVISIBLE_RANGES`]);
//! - every run of white space becomes one space, and the ends are trimmed, so "Room 4.01"
//!   cannot be told apart from "Room\u{3000}\u{3000}4.01" only by its width;
//! - any other control character refuses the name;
//! - what is left must hold a visible character, at most [`MAX_NAME_CHARS`] characters
//!   and [`MAX_NAME_BYTES`] bytes, and no more than [`MAX_COMBINING_RUN`] combining marks
//!   on one character (stacked marks draw over the lines above and below).
//!
//! Stripping rather than refusing keeps a name pasted with a stray zero-width space (or an
//! emoji built with a zero-width joiner) usable; what the others see is the cleaned name,
//! never the raw one.

use crate::Invalid;

/// Longest display name, in characters (Unicode scalar values), after cleaning.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest display name, in UTF-8 bytes, after cleaning.
pub const MAX_NAME_BYTES: usize = 256;
/// Most combining marks allowed on one base character.
pub const MAX_COMBINING_RUN: usize = 4;
/// Longest raw name looked at: anything longer is refused before it is cleaned.
pub const MAX_RAW_NAME_BYTES: usize = 1024;

/// Invisible characters removed from names, as inclusive code point ranges.
pub const INVISIBLE_RANGES: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x034F, 0x034F),   // combining grapheme joiner
    (0x061C, 0x061C),   // Arabic letter mark (bidi)
    (0x115F, 0x1160),   // Hangul choseong/jungseong fillers (draw as blanks)
    (0x17B4, 0x17B5),   // Khmer inherent vowels (invisible)
    (0x180B, 0x180F),   // Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),   // zero-width space, non-joiner, joiner; LRM, RLM
    (0x202A, 0x202E),   // bidi embeddings and overrides
    (0x2060, 0x2064),   // word joiner and invisible operators
    (0x2066, 0x206F),   // bidi isolates and deprecated format controls
    (0x3164, 0x3164),   // Hangul filler
    (0xFE00, 0xFE0F),   // variation selectors
    (0xFEFF, 0xFEFF),   // zero-width no-break space (BOM)
    (0xFFA0, 0xFFA0),   // halfwidth Hangul filler
    (0xFFF9, 0xFFFB),   // interlinear annotation controls
    (0xE0000, 0xE007F), // tag characters
];

/// Combining marks counted against [`MAX_COMBINING_RUN`], as inclusive ranges.
pub const COMBINING_RANGES: &[(u32, u32)] = &[
    (0x0300, 0x036F),
    (0x0483, 0x0489),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x20D0, 0x20FF),
    (0xFE20, 0xFE2F),
];

fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    let c = u32::from(c);
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Bidirectional controls, zero-width and other invisible format characters: what
/// [`clean_display_name`] removes. Also used for received file names.
pub fn is_invisible(c: char) -> bool {
    in_ranges(c, INVISIBLE_RANGES)
}

/// A combining mark that stacks on the character before it.
pub fn is_combining(c: char) -> bool {
    in_ranges(c, COMBINING_RANGES)
}

/// The name others will see for `raw`, or why it cannot be one.
pub fn clean_display_name(raw: &str) -> Result<String, Invalid> {
    if raw.len() > MAX_RAW_NAME_BYTES {
        return Err(Invalid::DisplayName("far too long"));
    }
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    let mut combining = 0usize;
    for c in raw.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            combining = 0;
            continue;
        }
        if c.is_control() {
            return Err(Invalid::DisplayName("contains control characters"));
        }
        if is_combining(c) {
            combining += 1;
            if combining > MAX_COMBINING_RUN {
                return Err(Invalid::DisplayName("too many combining marks"));
            }
        } else {
            combining = 0;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    if !out.chars().any(|c| !is_combining(c)) {
        return Err(Invalid::DisplayName(
            "empty (only white space or invisible characters)",
        ));
    }
    if out.chars().count() > MAX_NAME_CHARS {
        return Err(Invalid::DisplayName("longer than 64 characters"));
    }
    if out.len() > MAX_NAME_BYTES {
        return Err(Invalid::DisplayName("longer than 256 bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(raw: &str) -> String {
        clean_display_name(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
    }

    #[test]
    fn bidi_and_zero_width_characters_are_removed() {
        assert_eq!(ok("Ada\u{202E}nimda"), "Adanimda");
        assert_eq!(ok("\u{2066}Room 4.01\u{2069}"), "Room 4.01");
        assert_eq!(ok("A\u{200B}d\u{200C}a\u{200D}\u{2060}\u{FEFF}"), "Ada");
        assert_eq!(ok("\u{200E}\u{200F}\u{061C}Bo"), "Bo");
        assert_eq!(ok("\u{202A}\u{202B}\u{202C}\u{202D}x"), "x");
        assert_eq!(ok("\u{2067}\u{2068}y"), "y");
    }

    #[test]
    fn white_space_is_collapsed_and_trimmed() {
        assert_eq!(ok("  Room \u{3000}\u{00A0} 4.01\t"), "Room 4.01");
        assert_eq!(ok("a\nb"), "a b");
        assert_eq!(ok("a\u{2028}b"), "a b");
    }

    #[test]
    fn empty_invisible_and_control_names_are_refused() {
        for bad in [
            "",
            "   ",
            "\u{200B}\u{200B}",
            " \u{202E} \u{FEFF} ",
            "\u{3164}",
            "\u{0301}\u{0301}",
            "\u{7}bell",
            "nul\0",
            "esc\u{1b}[31m",
            "del\u{7f}",
            "c1\u{85}x\u{9b}",
        ] {
            let e = clean_display_name(bad).expect_err(bad);
            assert_eq!(e.code(), crate::ErrorCode::InvalidName);
        }
    }

    #[test]
    fn length_is_counted_after_cleaning_in_chars_and_bytes() {
        assert_eq!(ok(&"é".repeat(64)).chars().count(), 64);
        assert!(clean_display_name(&"é".repeat(65)).is_err());
        // 64 four-byte characters are 256 bytes: the byte limit holds with the char one.
        assert!(clean_display_name(&"😀".repeat(64)).is_ok());
        assert!(clean_display_name(&"😀".repeat(65)).is_err());
        // Invisible padding does not count, but a huge raw name is refused outright.
        let padded = format!("Ada{}", "\u{200B}".repeat(300));
        assert_eq!(ok(&padded), "Ada");
        assert!(clean_display_name(&"\u{200B}".repeat(400)).is_err());
    }

    #[test]
    fn stacked_combining_marks_are_refused() {
        assert_eq!(ok("e\u{0301}\u{0308}"), "e\u{0301}\u{0308}");
        assert!(clean_display_name(&format!("Z{}", "\u{0336}".repeat(5))).is_err());
        assert!(clean_display_name(&format!("Z{}", "\u{0336}".repeat(4))).is_ok());
    }

    #[test]
    fn the_old_validator_follows_the_rule() {
        assert!(crate::validate_display_name(" Ada ").is_ok());
        assert!(crate::validate_display_name("\u{200B}").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn cleaned_names_are_safe_and_stable(raw in "(\\PC|\\p{Cf}|\\p{Cc}|\\p{Zs}|\\p{Mn}){0,80}") {
            if let Ok(name) = clean_display_name(&raw) {
                prop_assert!(!name.is_empty());
                prop_assert_eq!(name.trim(), name.as_str());
                prop_assert!(!name.chars().any(|c| is_invisible(c) || c.is_control()));
                prop_assert!(!name.contains("  "));
                prop_assert!(name.chars().count() <= MAX_NAME_CHARS);
                prop_assert!(name.len() <= MAX_NAME_BYTES);
                prop_assert_eq!(clean_display_name(&name), Ok(name.clone()), "idempotent");
            }
        }

        #[test]
        fn invisible_characters_never_change_the_outcome(
            name in "[a-zA-Z0-9 ]{1,40}",
            junk in proptest::collection::vec(
                prop_oneof![Just('\u{200B}'), Just('\u{202E}'), Just('\u{2066}'), Just('\u{FEFF}'), Just('\u{061C}')],
                0..8,
            ),
            at in 0usize..40,
        ) {
            let mut spiked: Vec<char> = name.chars().collect();
            for c in junk {
                spiked.insert(at.min(spiked.len()), c);
            }
            let spiked: String = spiked.into_iter().collect();
            prop_assert_eq!(clean_display_name(&spiked), clean_display_name(&name));
        }
    }
}
