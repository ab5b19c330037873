//! The browser editor's languages, mapped onto syntect's bundled syntaxes, and the one
//! colour theme. Both sets load once, lazily: parsing the bundled dumps takes tens of
//! milliseconds, which a kiosk that never shows code should not pay.

use std::sync::OnceLock;

use syntect::highlighting::{Color, Highlighter, Theme, ThemeSet};
use syntect::parsing::{SyntaxReference, SyntaxSet};

/// The theme: dark, with saturated token colours that stay apart from each other when
/// read across a room.
const THEME: &str = "base16-ocean.dark";

/// A language of the room's editor, by the browser's id (`LANGUAGE_IDS` in
/// `signaling/web/src/features/editor-doc.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) enum Language {
    #[default]
    PlainText,
    C,
    Cpp,
    Go,
    Java,
    JavaScript,
    Python,
    Rust,
    /// Shown with the JavaScript syntax: syntect's bundled syntaxes have no TypeScript,
    /// and JavaScript's colours the shared keywords, strings, comments and numbers (type
    /// annotations stay plain).
    TypeScript,
}

impl Language {
    /// The language for a browser id, read the way the browser reads it (trimmed, any
    /// case); anything else is plain text, as in the browser.
    pub(crate) fn from_id(id: &str) -> Self {
        match id.trim().to_ascii_lowercase().as_str() {
            "c" => Self::C,
            "cpp" => Self::Cpp,
            "go" => Self::Go,
            "java" => Self::Java,
            "javascript" => Self::JavaScript,
            "python" => Self::Python,
            "rust" => Self::Rust,
            "typescript" => Self::TypeScript,
            _ => Self::PlainText,
        }
    }

    /// The name people see, as the browser's language picker writes it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::PlainText => "Plain text",
            Self::C => "C",
            Self::Cpp => "C++",
            Self::Go => "Go",
            Self::Java => "Java",
            Self::JavaScript => "JavaScript",
            Self::Python => "Python",
            Self::Rust => "Rust",
            Self::TypeScript => "TypeScript",
        }
    }

    /// The name of the syntect syntax that colours it.
    fn syntax_name(self) -> &'static str {
        match self {
            Self::PlainText => "Plain Text",
            Self::C => "C",
            Self::Cpp => "C++",
            Self::Go => "Go",
            Self::Java => "Java",
            Self::JavaScript | Self::TypeScript => "JavaScript",
            Self::Python => "Python",
            Self::Rust => "Rust",
        }
    }

    /// The syntax to parse with; plain text if the bundled set lacks the one named.
    pub(crate) fn syntax(self) -> &'static SyntaxReference {
        let set = syntaxes();
        set.find_syntax_by_name(self.syntax_name())
            .unwrap_or_else(|| set.find_syntax_plain_text())
    }
}

/// Loads the syntaxes and the theme now, if they are not loaded yet.
pub(crate) fn load() {
    syntaxes();
    highlighter();
}

/// syntect's bundled syntaxes, in the flavour that expects each line with its `\n`.
pub(crate) fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn theme() -> &'static Theme {
    static THEME_SET: OnceLock<Theme> = OnceLock::new();
    THEME_SET.get_or_init(|| {
        let mut set = ThemeSet::load_defaults();
        set.themes.remove(THEME).unwrap_or_default()
    })
}

/// The theme's highlighter (its scope selectors compiled once).
pub(crate) fn highlighter() -> &'static Highlighter<'static> {
    static HIGHLIGHTER: OnceLock<Highlighter<'static>> = OnceLock::new();
    HIGHLIGHTER.get_or_init(|| Highlighter::new(theme()))
}

/// An opaque colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Rgb {
    pub(crate) r: u8,
    pub(crate) g: u8,
    pub(crate) b: u8,
}

impl Rgb {
    pub(crate) fn from_syntect(color: Color) -> Self {
        Self {
            r: color.r,
            g: color.g,
            b: color.b,
        }
    }

    /// `color` drawn over `self` with its alpha (themes give highlights as veils).
    fn under(self, color: Color) -> Self {
        let mix = |below: u8, above: u8| {
            let alpha = u16::from(color.a);
            let mixed = (u16::from(above) * alpha + u16::from(below) * (255 - alpha) + 127) / 255;
            u8::try_from(mixed).unwrap_or(u8::MAX)
        };
        Self {
            r: mix(self.r, color.r),
            g: mix(self.g, color.g),
            b: mix(self.b, color.b),
        }
    }
}

/// The theme's colours around the tokens, for the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Palette {
    pub(crate) background: Rgb,
    pub(crate) foreground: Rgb,
    pub(crate) line_highlight: Rgb,
    pub(crate) gutter: Rgb,
}

/// The palette of the theme, with fallbacks for settings it leaves out.
pub(crate) fn palette() -> Palette {
    const fn rgb(r: u8, g: u8, b: u8) -> Rgb {
        Rgb { r, g, b }
    }
    let settings = &theme().settings;
    let background = settings
        .background
        .map_or(rgb(0x2b, 0x30, 0x3b), Rgb::from_syntect);
    Palette {
        background,
        foreground: settings
            .foreground
            .map_or(rgb(0xc0, 0xc5, 0xce), Rgb::from_syntect),
        // The selection colour, not the theme's line highlight: that one is a veil meant
        // for a desk, too faint to find across a room.
        line_highlight: settings
            .selection
            .or(settings.line_highlight)
            .map_or(rgb(0x3e, 0x48, 0x56), |veil| background.under(veil)),
        gutter: settings
            .gutter_foreground
            .map_or(rgb(0x65, 0x73, 0x7e), |veil| background.under(veil)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_browser_language_has_its_syntax() {
        for id in [
            "c",
            "cpp",
            "go",
            "java",
            "javascript",
            "python",
            "rust",
            "typescript",
        ] {
            let language = Language::from_id(id);
            assert_ne!(language, Language::PlainText, "{id}");
            assert_ne!(language.syntax().name, "Plain Text", "{id} has a syntax");
        }
        assert_eq!(Language::from_id(" Rust "), Language::Rust);
        assert_eq!(Language::from_id("cobol"), Language::PlainText);
        assert_eq!(Language::from_id(""), Language::PlainText);
        assert_eq!(Language::TypeScript.syntax().name, "JavaScript");
        assert_eq!(Language::PlainText.syntax().name, "Plain Text");
    }

    #[test]
    fn the_palette_reads_on_its_background() {
        let palette = palette();
        let light = |c: Rgb| u32::from(c.r) + u32::from(c.g) + u32::from(c.b);
        assert!(light(palette.foreground) > light(palette.background) + 200);
        assert!(
            light(palette.line_highlight) > light(palette.background) + 40,
            "a highlight shows"
        );
        assert!(
            light(palette.line_highlight) + 150 < light(palette.foreground),
            "text reads on it"
        );
        assert!(light(palette.gutter) > light(palette.background) + 60);
    }
}
