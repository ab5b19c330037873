//! What the views ask Rust to do.

/// A request from the person at the screen. Device toggles are requests: the UI shows the
/// new state only once Rust reports it with the matching [`Update`](crate::Update).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum UiEvent {
    /// Join a configured room, by its [`RoomView::id`](crate::RoomView::id).
    JoinRoom(String),
    /// Join the room with this code, typed on the keypad.
    JoinByCode(String),
    /// Leave the call.
    Leave,
    /// Pin this peer to the stage; `None` unpins.
    Pin(Option<u64>),
    /// Send a chat message (a quick reply or typed text), already trimmed and not empty.
    SendChat(String),
    /// Accept the incoming file with this id.
    AcceptFile(String),
    /// Decline the incoming file with this id.
    DeclineFile(String),
    /// Show the received file with this id (an image) full screen.
    OpenFile(String),
    /// Close the full-screen image.
    CloseImage,
    /// Mute (`true`) or unmute the microphone.
    SetMicMuted(bool),
    /// Turn the camera off (`true`) or on.
    SetCameraOff(bool),
    /// Set the call volume, 0 to 1.
    SetVolume(f32),
    /// Use this camera (one of [`Devices::cameras`](crate::Devices::cameras)).
    ChooseCamera(String),
    /// Use this microphone.
    ChooseMicrophone(String),
    /// Use this speaker.
    ChooseSpeaker(String),
    /// Rename this kiosk, already trimmed and not empty.
    SetDeviceName(String),
    /// Join this room with a password, typed after a [`JoinFailure`](crate::JoinFailure)
    /// that asked for one: `room` is the failure's, the password is as typed (not
    /// trimmed, not empty).
    JoinWithPassword { room: String, password: String },
    /// Close the join failure ("OK" or "Cancel"); Rust closes it with
    /// [`Update::JoinFailed(None)`](crate::Update::JoinFailed).
    DismissJoinFailure,
    /// Use this rooms server (typed on the first-run page), trimmed and not empty.
    SetServer(String),
    /// The shared screen went full screen (`true`) or back. This one is view state: the
    /// UI has already switched, Rust may use it (e.g. to ask for a sharper stream).
    ScreenFullScreen(bool),
    /// Ask the update agent to look for a new version now.
    CheckForUpdates,
    /// Install the available update now, without waiting for the maintenance window.
    InstallUpdateNow,
    /// Forget the paired laptop with this [`PairedLaptop::id`](crate::PairedLaptop::id).
    Unpair(String),
    /// A tab above the stage was tapped: put this on the stage. Sent again for what is
    /// already there (the engine decides; a second tap unpins).
    PinContent(StageTarget),
}

/// What a tab above the stage asks to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StageTarget {
    /// This peer's camera.
    Peer(u64),
    /// This peer's shared screen.
    Screen(u64),
    /// The read-along editor.
    Editor,
    /// The watch-together video.
    Watch,
}
