//! Property tests of the decoder that takes untrusted text on the server: any input is
//! refused or accepted without a panic, and every message a client can send survives
//! encode then decode unchanged. Case counts are bounded so the suite runs in seconds.

use proptest::prelude::*;

use crate::*;

fn text() -> impl Strategy<Value = String> {
    // Quotes, backslashes, control characters, astral characters and lone-surrogate
    // escapes' neighbours all go through serde_json's string escaping.
    "(\\PC|[\"\\\\\u{0}-\u{1f}\u{2028}\u{202E}\u{FEFF}]|😀){0,24}"
}

/// Numbers as clients send them (milliseconds, seconds, rates): up to 15 significant
/// digits. (serde_json's default float parsing is best-effort: a subnormal such as
/// `-8.793193931592336e-43` reads back one unit off, harmless for clocks and positions.)
fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-999_999_999_999_999i64..999_999_999_999_999).prop_map(|n| n as f64 / 1000.0),
        Just(0.0),
        Just(-0.0),
        Just(1e300),
    ]
}

fn signal_data() -> impl Strategy<Value = SignalData> {
    let sdp_type = prop_oneof![
        Just(SdpType::Offer),
        Just(SdpType::Answer),
        Just(SdpType::Pranswer),
        Just(SdpType::Rollback),
    ];
    prop_oneof![
        (sdp_type, text())
            .prop_map(|(kind, sdp)| SignalData::Sdp(SessionDescription { kind, sdp })),
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(any::<u16>()),
            proptest::option::of(text())
        )
            .prop_map(
                |(candidate, sdp_mid, sdp_m_line_index, username_fragment)| {
                    SignalData::Candidate(IceCandidate {
                        candidate,
                        sdp_mid,
                        sdp_m_line_index,
                        username_fragment,
                    })
                }
            ),
    ]
}

fn watch_state() -> impl Strategy<Value = WatchState> {
    let source = proptest::option::of(prop_oneof![
        text().prop_map(|video_id| VideoSource::Youtube { video_id }),
        text().prop_map(|url| VideoSource::Url { url }),
    ]);
    (source, any::<bool>(), finite(), finite()).prop_map(|(source, playing, position, rate)| {
        WatchState {
            source,
            playing,
            position,
            rate,
        }
    })
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    let role = prop_oneof![Just(Role::Browser), Just(Role::Kiosk)];
    prop_oneof![
        (any::<u32>(), text(), role, proptest::option::of(text())).prop_map(
            |(protocol, name, role, resume)| ClientMessage::Hello {
                protocol,
                name,
                role,
                resume,
                device: None,
            }
        ),
        (text(), proptest::option::of(text()))
            .prop_map(|(room, password)| ClientMessage::Join { room, password }),
        Just(ClientMessage::Leave),
        (any::<u64>(), signal_data()).prop_map(|(to, data)| ClientMessage::Signal {
            to: PeerId(to),
            data,
        }),
        watch_state().prop_map(|state| ClientMessage::Watch { state }),
        (any::<u64>(), finite())
            .prop_map(|(id, client_time)| ClientMessage::Ping { id, client_time }),
        proptest::collection::vec(text(), 0..40).prop_map(|rooms| ClientMessage::Rooms { rooms }),
        text().prop_map(|code| ClientMessage::Pair { code }),
        (any::<u32>(), text(), any::<bool>()).prop_map(|(id, room, muted)| {
            ClientMessage::Command {
                id,
                command: if muted {
                    pairing::RemoteCommand::SetMicMuted { muted }
                } else {
                    pairing::RemoteCommand::JoinRoom {
                        room,
                        password: None,
                    }
                },
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_client_message_survives_encode_then_decode(msg in client_message()) {
        let json = msg.to_json();
        let back = ClientMessage::parse(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn a_mangled_message_is_refused_or_read_without_panicking(
        msg in client_message(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = msg.to_json().into_bytes();
        let at = flip.index(bytes.len());
        bytes[at] = byte;
        bytes.truncate(cut.index(bytes.len() + 1));
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(parsed) = ClientMessage::parse(&text) {
            // Whatever was read encodes again and reads back the same.
            prop_assert_eq!(ClientMessage::parse(&parsed.to_json()).ok(), Some(parsed));
        }
    }

    #[test]
    fn display_name_cleaning_never_panics_on_decoded_names(msg in client_message()) {
        if let ClientMessage::Hello { name, .. } = msg {
            let _ = names::clean_display_name(&name);
        }
    }
}
