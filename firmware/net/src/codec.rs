//! Codec registration and choice, following the contract in ARCHITECTURE.md.
//!
//! webrtc-rs matches H.264 strictly: `packetization-mode` must be present and equal, and
//! the first two bytes of `profile-level-id` (profile and constraint flags) must match. So
//! the kiosk registers exactly one H.264 format, constrained baseline
//! `42e01f` with packetization mode 1, then VP8, then Opus at 48 kHz.
//!
//! When answering, the kiosk reads the offer's media sections ([`media_sections`]) and
//! sends, per video slot, H.264 when the offer has a compatible format, else VP8
//! ([`choose_send_codec`]). Payload types always come from the negotiation, never from
//! the numbers registered here.

use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};

use portal_proto::media::{Codec, Slot};

/// The H.264 format Portal sends and prefers.
pub const H264_FMTP: &str =
    "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1";
/// Opus as browsers offer it.
pub const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";

/// The codec description webrtc-rs needs for a local track of `codec`.
pub fn rtp_codec(codec: Codec) -> RTCRtpCodec {
    let video_feedback = || {
        vec![
            RTCPFeedback {
                typ: "ccm".to_owned(),
                parameter: "fir".to_owned(),
            },
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: String::new(),
            },
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: "pli".to_owned(),
            },
        ]
    };
    match codec {
        Codec::H264 => RTCRtpCodec {
            mime_type: codec.mime_type().to_owned(),
            clock_rate: codec.clock_rate(),
            channels: 0,
            sdp_fmtp_line: H264_FMTP.to_owned(),
            rtcp_feedback: video_feedback(),
        },
        Codec::Vp8 => RTCRtpCodec {
            mime_type: codec.mime_type().to_owned(),
            clock_rate: codec.clock_rate(),
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: video_feedback(),
        },
        Codec::Opus => RTCRtpCodec {
            mime_type: codec.mime_type().to_owned(),
            clock_rate: codec.clock_rate(),
            channels: 2,
            sdp_fmtp_line: OPUS_FMTP.to_owned(),
            rtcp_feedback: vec![],
        },
    }
}

/// Registers Portal's codecs, H.264 first (the order is the preference in our offers).
pub fn register_codecs(engine: &mut MediaEngine) -> Result<(), rtc::shared::error::Error> {
    for (codec, payload_type, kind) in [
        (Codec::H264, 102, RtpCodecKind::Video),
        (Codec::Vp8, 96, RtpCodecKind::Video),
        (Codec::Opus, 111, RtpCodecKind::Audio),
    ] {
        engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: rtp_codec(codec),
                payload_type,
            },
            kind,
        )?;
    }
    Ok(())
}

/// One format of a media section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdpFormat {
    pub payload_type: u8,
    /// Encoding name as written, e.g. `H264`.
    pub name: String,
    pub clock_rate: u32,
    pub fmtp: String,
}

/// One `m=` section of a session description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaSection {
    /// `audio`, `video` or `application`.
    pub kind: String,
    pub mid: Option<String>,
    pub formats: Vec<SdpFormat>,
}

/// The media sections of an SDP, in order.
pub fn media_sections(sdp: &str) -> Vec<MediaSection> {
    let mut sections: Vec<MediaSection> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("m=") {
            let mut parts = rest.split_whitespace();
            let kind = parts.next().unwrap_or_default().to_owned();
            let formats = parts
                .skip(2)
                .filter_map(|pt| pt.parse::<u8>().ok())
                .map(|payload_type| SdpFormat {
                    payload_type,
                    name: String::new(),
                    clock_rate: 0,
                    fmtp: String::new(),
                })
                .collect();
            sections.push(MediaSection {
                kind,
                mid: None,
                formats,
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        if let Some(mid) = line.strip_prefix("a=mid:") {
            section.mid = Some(mid.to_owned());
        } else if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            let Some((pt, encoding)) = rest.split_once(' ') else {
                continue;
            };
            let mut enc = encoding.split('/');
            let name = enc.next().unwrap_or_default();
            let clock_rate = enc.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            if let Some(f) = format_mut(section, pt) {
                name.clone_into(&mut f.name);
                f.clock_rate = clock_rate;
            }
        } else if let Some(rest) = line.strip_prefix("a=fmtp:") {
            let Some((pt, params)) = rest.split_once(' ') else {
                continue;
            };
            if let Some(f) = format_mut(section, pt) {
                params.trim().clone_into(&mut f.fmtp);
            }
        }
    }
    sections
}

fn format_mut<'a>(section: &'a mut MediaSection, pt: &str) -> Option<&'a mut SdpFormat> {
    let pt: u8 = pt.trim().parse().ok()?;
    section.formats.iter_mut().find(|f| f.payload_type == pt)
}

/// The media sections that carry RTP (not data channels), in order: audio, camera,
/// screen for a Portal offer.
pub fn rtp_sections(sdp: &str) -> Vec<MediaSection> {
    media_sections(sdp)
        .into_iter()
        .filter(|s| s.kind == "audio" || s.kind == "video")
        .collect()
}

fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// Whether an offered format is H.264 that webrtc-rs will match with ours: packetization
/// mode 1 and a `profile-level-id` starting with `42e0` (constrained baseline).
pub fn is_compatible_h264(format: &SdpFormat) -> bool {
    if !format.name.eq_ignore_ascii_case("H264") {
        return false;
    }
    let mode_one = fmtp_param(&format.fmtp, "packetization-mode") == Some("1");
    let profile = fmtp_param(&format.fmtp, "profile-level-id")
        .is_some_and(|p| p.len() == 6 && p[..4].eq_ignore_ascii_case("42e0"));
    mode_one && profile
}

/// What the kiosk sends in `slot` of an offer whose section is `section`: H.264 when
/// offered compatibly and `allow_h264`, else VP8, Opus for audio; `None` when nothing fits.
pub fn choose_send_codec(slot: Slot, section: &MediaSection, allow_h264: bool) -> Option<Codec> {
    if slot.is_video() {
        if allow_h264 && section.formats.iter().any(is_compatible_h264) {
            return Some(Codec::H264);
        }
        section
            .formats
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case("VP8"))
            .then_some(Codec::Vp8)
    } else {
        section
            .formats
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case("opus") && f.clock_rate == 48_000)
            .then_some(Codec::Opus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The media part of an offer from Debian's Chromium, trimmed.
    const CHROMIUM_OFFER: &str = "v=0\r\n\
o=- 1 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
a=group:BUNDLE 0 1 2 3\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9\r\n\
a=mid:0\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:63 red/48000/2\r\n\
a=rtpmap:9 G722/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102 103 104 106 96 97\r\n\
a=mid:1\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 rtx/90000\r\n\
a=rtpmap:104 H264/90000\r\n\
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:106 H264/90000\r\n\
a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
a=mid:2\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
a=mid:3\r\n";

    #[test]
    fn sections_are_read_in_order() {
        let all = media_sections(CHROMIUM_OFFER);
        assert_eq!(all.len(), 4);
        let rtp = rtp_sections(CHROMIUM_OFFER);
        let mids: Vec<_> = rtp
            .iter()
            .map(|s| s.mid.clone().unwrap_or_default())
            .collect();
        assert_eq!(mids, ["0", "1", "2"]);
        assert_eq!(rtp[1].formats.len(), 6);
        assert_eq!(
            rtp[1].formats[3].fmtp,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
        );
    }

    #[test]
    fn h264_is_chosen_only_when_webrtc_rs_will_match_it() {
        let rtp = rtp_sections(CHROMIUM_OFFER);
        let compatible: Vec<u8> = rtp[1]
            .formats
            .iter()
            .filter(|f| is_compatible_h264(f))
            .map(|f| f.payload_type)
            .collect();
        assert_eq!(compatible, [106]);
        assert_eq!(
            choose_send_codec(Slot::Camera, &rtp[1], true),
            Some(Codec::H264)
        );
        assert_eq!(
            choose_send_codec(Slot::Camera, &rtp[1], false),
            Some(Codec::Vp8)
        );
        assert_eq!(
            choose_send_codec(Slot::Screen, &rtp[2], true),
            Some(Codec::Vp8)
        );
        assert_eq!(
            choose_send_codec(Slot::Audio, &rtp[0], true),
            Some(Codec::Opus)
        );
        let empty = MediaSection {
            kind: "video".into(),
            mid: None,
            formats: vec![],
        };
        assert_eq!(choose_send_codec(Slot::Camera, &empty, true), None);
    }

    #[test]
    fn registration_puts_h264_first() {
        let mut engine = MediaEngine::default();
        register_codecs(&mut engine).expect("codecs register");
        assert_eq!(rtp_codec(Codec::H264).sdp_fmtp_line, H264_FMTP);
        assert_eq!(rtp_codec(Codec::Opus).clock_rate, 48_000);
    }
}
