//! An interceptor that lets keyframe requests from the remote reach the application.
//!
//! On webrtc-rs 0.21's default chain, inbound RTCP stops at the interceptors (receiver
//! reports, NACK, TWCC); a PLI or FIR about a track we send never reaches us. This
//! interceptor, placed last (application-most), keeps only PLI and FIR packets and marks
//! them [`Attribute::DeliverToApplication`]; webrtc-rs then hands them to the sending
//! track's `TrackLocal::poll` as `TrackLocalEvent::OnRtcpPacket`, where the peer adapter
//! turns them into `PeerEvent::KeyframeRequested` events. Modelled on the
//! crate's `rtcp-processing` example.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use portal_proto::media::KeyframeRequest;

/// Position in the chain: after every built-in interceptor (the last named slot is 13 000).
pub const FORWARDER_SLOT: usize = 14_000;

/// Adds the forwarder to `registry` at [`FORWARDER_SLOT`].
pub fn with_keyframe_forwarder(registry: Registry) -> Registry {
    registry.with(Slot::from(FORWARDER_SLOT), KeyframeForwarder::default())
}

/// Passes inbound PLI and FIR on to the application and drops all other inbound RTCP
/// (which the interceptors before it have already acted on).
#[derive(Default)]
pub struct KeyframeForwarder {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl std::fmt::Debug for KeyframeForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyframeForwarder")
            .field("queued_reads", &self.read_queue.len())
            .field("queued_writes", &self.write_queue.len())
            .finish()
    }
}

/// The keyframe request an RTCP packet is, if any.
pub fn keyframe_request(packet: &dyn rtc::rtcp::Packet) -> Option<KeyframeRequest> {
    let any = packet.as_any();
    if any.is::<PictureLossIndication>() {
        Some(KeyframeRequest::Pli)
    } else if any.is::<FullIntraRequest>() {
        Some(KeyframeRequest::Fir)
    } else {
        None
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requests: Vec<Box<dyn rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| keyframe_request(p.as_ref()).is_some())
                .cloned()
                .collect();
            if requests.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for KeyframeForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keyframe_requests_are_recognised() {
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: 2,
        };
        assert_eq!(keyframe_request(&pli), Some(KeyframeRequest::Pli));
        let fir = FullIntraRequest {
            sender_ssrc: 1,
            media_ssrc: 2,
            fir: vec![],
        };
        assert_eq!(keyframe_request(&fir), Some(KeyframeRequest::Fir));
        let rr = rtc::rtcp::receiver_report::ReceiverReport::default();
        assert_eq!(keyframe_request(&rr), None);
    }
}
