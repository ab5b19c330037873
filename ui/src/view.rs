//! Plain view types: what Rust tells the UI to show.

mod editor;
mod pairing;
mod update;

pub use editor::{EditorCursor, EditorView, StageView};
pub use pairing::{PairedLaptop, PairingView};
pub use update::{UpdatePhase, UpdateView};

/// A room configured on this kiosk, shown as a large target on the home page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomView {
    /// Handed back in [`UiEvent::JoinRoom`](crate::UiEvent::JoinRoom).
    pub id: String,
    pub name: String,
    /// A second line, e.g. "2 people here" (see [`occupancy`]); empty for none.
    pub detail: String,
}

/// Connection quality of a peer as the engine judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quality {
    /// Not known yet; nothing is shown.
    #[default]
    Unknown,
    Good,
    Fair,
    Poor,
}

/// A peer in the call. Rust decides the stage: exactly one peer should have `on_stage`
/// (screen share first, then active speaker, then the first peer, unless one is pinned).
// Independent facts about a peer, each shown on its own; not a state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeerView {
    pub id: u64,
    pub name: String,
    pub muted: bool,
    pub camera_off: bool,
    pub quality: Quality,
    pub on_stage: bool,
    pub pinned: bool,
    /// The peer shares a screen. On stage, the screen is shown instead of the camera, and
    /// the camera moves to the filmstrip.
    pub has_screen: bool,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatLine {
    pub from: String,
    pub text: String,
    /// Sent from this kiosk.
    pub mine: bool,
}

/// A file someone wants to send, waiting for this kiosk's consent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilePrompt {
    /// Handed back in [`UiEvent::AcceptFile`](crate::UiEvent::AcceptFile) / `DeclineFile`.
    pub id: String,
    pub name: String,
    /// Bytes.
    pub size: u64,
    pub from: String,
}

/// Where a received file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileState {
    #[default]
    Waiting,
    Receiving,
    Done,
    Failed,
    Declined,
}

/// A file in the received-files list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileView {
    /// Handed back in [`UiEvent::OpenFile`](crate::UiEvent::OpenFile).
    pub id: String,
    pub name: String,
    /// Bytes.
    pub size: u64,
    pub from: String,
    /// 0 to 1.
    pub progress: f32,
    pub state: FileState,
    /// A finished image can be opened full screen.
    pub is_image: bool,
}

/// The media devices to choose from, and the ones in use (empty for none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Devices {
    pub cameras: Vec<String>,
    pub microphones: Vec<String>,
    pub speakers: Vec<String>,
    pub camera: String,
    pub microphone: String,
    pub speaker: String,
}

/// Facts about this kiosk for the top bar and settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceInfo {
    pub name: String,
    pub address: String,
    pub version: String,
}

/// Connection to the room, shown as the status banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallStatus {
    /// Not in a call and nothing to report: no banner.
    #[default]
    Idle,
    Connecting,
    Connected,
    /// The connection dropped and is being made again; `attempt` counts from 1 (0: not
    /// counted, no number shown).
    Reconnecting {
        attempt: u32,
    },
    /// The signaling server cannot be reached.
    Offline,
}

/// Why a room could not be joined, shown on the home page until dismissed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinFailure {
    /// The room as it was asked for: shown in the title, and handed back in
    /// [`UiEvent::JoinWithPassword`](crate::UiEvent::JoinWithPassword).
    pub room: String,
    /// What went wrong, for people: "Wrong password for this room", "The room is full".
    pub message: String,
    /// Offer a password field and a "Join" button (the room needs a password, or the
    /// one given was wrong).
    pub ask_password: bool,
}

/// The first-run page: no rooms server is configured yet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerSetup {
    /// Put in the address field, replacing what was typed, e.g. `"wss://"`, or the
    /// address that failed so it can be corrected.
    pub address: String,
    /// Why the last address was not taken, shown in an error colour; empty for none.
    pub error: String,
}

/// A page of the UI. Outside a call, `Call` and `Chat` show the home page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Page {
    #[default]
    Home,
    Call,
    Chat,
    Files,
    Settings,
}

/// A decoded picture to show full screen: `rgba` holds `width * height * 4` bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Picture {
    pub title: String,
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

/// A change for the UI to show. Send with [`Ui::apply`](crate::Ui::apply) on the UI
/// thread or [`UiHandle::apply`](crate::UiHandle::apply) from any thread.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Update {
    /// The clock text, formatted by Rust (the UI never reads the time).
    Clock(String),
    Device(DeviceInfo),
    Rooms(Vec<RoomView>),
    Status(CallStatus),
    /// In a call in this room (switches to the call page), or `None`: back home, with the
    /// call's peers, chat and prompt cleared.
    Call(Option<String>),
    /// Everyone in the call except this kiosk.
    Peers(Vec<PeerView>),
    MicMuted(bool),
    CameraOff(bool),
    /// 0 to 1.
    Volume(f32),
    /// Replace the chat history.
    Chat(Vec<ChatLine>),
    /// Add one message at the end.
    ChatMessage(ChatLine),
    /// Replace the one-tap replies.
    QuickReplies(Vec<String>),
    /// Ask about an incoming file, or `None` to close the prompt.
    FilePrompt(Option<FilePrompt>),
    Files(Vec<FileView>),
    /// Show a picture full screen, or `None` to close it. A picture with the wrong number
    /// of bytes is ignored (and logged).
    Image(Option<Picture>),
    Devices(Devices),
    ShowPage(Page),
    /// Leave (or enter) full-screen screen share.
    FullScreen(bool),
    /// A join was refused for good: shown on the home page (with a password field when
    /// it asks for one) until `None` closes it. Joining a call closes it too.
    JoinFailed(Option<JoinFailure>),
    /// `Some`: show the first-run page instead of everything else (again with each
    /// `Some`: the address field takes its `address`); `None`: back to home.
    ServerSetup(Option<ServerSetup>),
    /// The over-the-air update section of the settings page; `None`: no update agent is
    /// set up on this kiosk (the section says so and offers no buttons).
    Update(Option<UpdateView>),
    /// Show a pairing code and its QR code (home page, and a corner of the call), or
    /// `None` to hide them.
    Pairing(Option<PairingView>),
    /// The laptops paired with this kiosk, listed on the home page.
    Paired(Vec<PairedLaptop>),
    /// The room's code document, shown read-only when the stage shows the editor, or
    /// `None`: the room has no document (no editor tab, and the view forgets the text).
    /// Send every change: only the lines on screen are coloured, and only the lines from
    /// shortly before a change are parsed again.
    Editor(Option<EditorView>),
    /// The room has a watch-together video (a "Video" tab above the stage), or no longer
    /// has one (its last frame is dropped). Its frames come with
    /// [`TileKey::Watch`](crate::TileKey::Watch).
    WatchAvailable(bool),
    /// What fills the stage. Until the first one, and after a call ends, the stage shows
    /// the peer on stage ([`StageView::Peer`]).
    Stage(StageView),
}

/// How many people are in a room, for [`RoomView::detail`]: "Empty", "1 person here",
/// "3 people here".
pub fn occupancy(peers: u32) -> String {
    match peers {
        0 => "Empty".to_owned(),
        1 => "1 person here".to_owned(),
        n => format!("{n} people here"),
    }
}

/// A byte count for people: "980 B", "12.5 KB", "845 KB", "3.4 MB" (powers of 1000; one
/// decimal below 100).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value >= 99.95 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::{format_size, occupancy};

    #[test]
    fn occupancy_counts_people() {
        assert_eq!(occupancy(0), "Empty");
        assert_eq!(occupancy(1), "1 person here");
        assert_eq!(occupancy(2), "2 people here");
        assert_eq!(occupancy(12), "12 people here");
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(999), "999 B");
        assert_eq!(format_size(1000), "1.0 KB");
        assert_eq!(format_size(12_500), "12.5 KB");
        assert_eq!(format_size(999_999), "1.0 MB");
        assert_eq!(format_size(3_400_000), "3.4 MB");
        assert_eq!(format_size(1_200_000_000), "1.2 GB");
        assert_eq!(format_size(99_949), "99.9 KB");
        assert_eq!(format_size(99_950), "100 KB");
        assert_eq!(format_size(845_000), "845 KB");
        assert_eq!(format_size(u64::MAX), "18446744 TB");
    }
}
