//! Pairing a laptop with this kiosk.

/// A code for pairing a laptop with this kiosk, shown with its QR code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PairingView {
    /// The code to type, e.g. "K7P2XM".
    pub code: String,
    /// Where a laptop pairs, e.g. "https://rooms.example.org/p/K7P2XM"; the QR code holds it.
    pub url: String,
    /// Seconds until the code is replaced (not shown yet).
    pub expires_in_secs: u32,
}

impl PairingView {
    /// The code in groups of three, to read across a room: "K7P 2XM".
    pub fn grouped_code(&self) -> String {
        let mut grouped = String::with_capacity(self.code.len() + self.code.len() / 3);
        for (i, c) in self.code.chars().enumerate() {
            if i > 0 && i % 3 == 0 {
                grouped.push(' ');
            }
            grouped.push(c);
        }
        grouped
    }

    /// The address to type in a browser: the URL without its scheme,
    /// "rooms.example.org/p/K7P2XM".
    pub fn address(&self) -> &str {
        ["https://", "http://"]
            .iter()
            .find_map(|scheme| self.url.strip_prefix(scheme))
            .unwrap_or(&self.url)
    }

    /// "Pair a laptop: open rooms.example.org/p/K7P2XM or scan the code".
    pub fn instructions(&self) -> String {
        format!("Pair a laptop: open {} or scan the code", self.address())
    }
}

/// A laptop paired with this kiosk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PairedLaptop {
    /// Handed back in [`UiEvent::Unpair`](crate::UiEvent::Unpair).
    pub id: String,
    pub name: String,
    /// Its screen is on this kiosk's display now.
    pub presenting: bool,
}

#[cfg(test)]
mod tests {
    use super::PairingView;

    #[test]
    fn pairing_codes_are_grouped_and_the_address_loses_its_scheme() {
        let pairing = PairingView {
            code: "K7P2XM".into(),
            url: "https://rooms.example.org/p/K7P2XM".into(),
            expires_in_secs: 300,
        };
        assert_eq!(pairing.grouped_code(), "K7P 2XM");
        assert_eq!(pairing.address(), "rooms.example.org/p/K7P2XM");
        assert_eq!(
            pairing.instructions(),
            "Pair a laptop: open rooms.example.org/p/K7P2XM or scan the code"
        );
        let grouped = |code: &str| {
            PairingView {
                code: code.into(),
                ..PairingView::default()
            }
            .grouped_code()
        };
        assert_eq!(grouped(""), "");
        assert_eq!(grouped("K7P"), "K7P");
        assert_eq!(grouped("K7P2XMQ9"), "K7P 2XM Q9");
        let plain = PairingView {
            url: "http://10.0.0.5:8080/p/AB".into(),
            ..PairingView::default()
        };
        assert_eq!(
            plain.instructions(),
            "Pair a laptop: open 10.0.0.5:8080/p/AB or scan the code"
        );
    }
}
