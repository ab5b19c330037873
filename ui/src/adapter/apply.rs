//! [`Update`]s onto the `Api` global.

use slint::{ComponentHandle as _, Image, Model, VecModel};

use super::editor::{show_editor, show_stage, show_watch_available};
use super::model::model;
use super::pairing::{show_paired, show_pairing};
use super::stage::set_peers;
use super::updates::show_update;
use super::{Frame, Shared};
use crate::frames::check_rgba;
use crate::generated as g;
use crate::generated::{Api, MainWindow};
use crate::view::{
    CallStatus, ChatLine, FileState, FileView, Page, Picture, StageView, Update, format_size,
};

/// Applies one update on the UI thread.
pub(super) fn apply(window: &MainWindow, shared: &Shared, update: Update) {
    let api = window.global::<Api>();
    match update {
        Update::Clock(text) => api.set_clock(text.into()),
        Update::Device(info) => {
            api.set_device_name(info.name.into());
            api.set_address(info.address.into());
            api.set_version(info.version.into());
        }
        Update::Rooms(rooms) => api.set_rooms(model(
            rooms
                .into_iter()
                .map(|room| g::Room {
                    id: room.id.into(),
                    name: room.name.into(),
                    detail: room.detail.into(),
                })
                .collect(),
        )),
        Update::Status(status) => {
            let attempt = match status {
                CallStatus::Reconnecting { attempt } => i32::try_from(attempt).unwrap_or(i32::MAX),
                _ => 0,
            };
            api.set_reconnect_attempt(attempt);
            api.set_status(match status {
                CallStatus::Idle => g::Status::Idle,
                CallStatus::Connecting => g::Status::Connecting,
                CallStatus::Connected => g::Status::Connected,
                CallStatus::Reconnecting { .. } => g::Status::Reconnecting,
                CallStatus::Offline => g::Status::Offline,
            });
        }
        Update::Call(Some(room)) => {
            api.set_has_join_failure(false);
            api.set_room_name(room.into());
            api.set_in_call(true);
            api.set_page(g::Page::Call);
        }
        Update::Call(None) => {
            api.set_in_call(false);
            api.set_room_name("".into());
            set_peers(&api, shared, &[]);
            show_editor(&api, shared, None);
            show_watch_available(&api, shared, false);
            show_stage(&api, StageView::Peer);
            api.set_chat(model(Vec::new()));
            api.set_unread_chat(0);
            api.set_has_file_prompt(false);
            api.set_screen_full_screen(false);
            if matches!(api.get_page(), g::Page::Call | g::Page::Chat) {
                api.set_page(g::Page::Home);
            }
        }
        Update::Peers(peers) => set_peers(&api, shared, &peers),
        Update::MicMuted(muted) => api.set_mic_muted(muted),
        Update::CameraOff(off) => api.set_camera_off(off),
        Update::Volume(volume) => api.set_volume(volume.clamp(0.0, 1.0)),
        Update::Chat(lines) => {
            api.set_chat(model(lines.into_iter().map(chat_message).collect()));
        }
        Update::ChatMessage(line) => {
            if !line.mine && api.get_page() != g::Page::Chat {
                api.set_unread_chat(api.get_unread_chat().saturating_add(1));
            }
            let chat = api.get_chat();
            if let Some(rows) = chat.as_any().downcast_ref::<VecModel<g::ChatMessage>>() {
                rows.push(chat_message(line));
            } else {
                let mut rows: Vec<_> = chat.iter().collect();
                rows.push(chat_message(line));
                api.set_chat(model(rows));
            }
        }
        Update::QuickReplies(replies) => {
            api.set_quick_replies(model(replies.into_iter().map(Into::into).collect()));
        }
        Update::FilePrompt(prompt) => {
            if let Some(prompt) = prompt {
                api.set_file_prompt(g::IncomingFile {
                    id: prompt.id.into(),
                    name: prompt.name.into(),
                    size: format_size(prompt.size).into(),
                    from: prompt.from.into(),
                });
                api.set_has_file_prompt(true);
            } else {
                api.set_has_file_prompt(false);
            }
        }
        Update::Files(files) => {
            api.set_files(model(files.into_iter().map(received_file).collect()));
        }
        Update::Image(picture) => show_picture(&api, picture),
        Update::Devices(devices) => {
            let names = |names: Vec<String>| model(names.into_iter().map(Into::into).collect());
            api.set_cameras(names(devices.cameras));
            api.set_microphones(names(devices.microphones));
            api.set_speakers(names(devices.speakers));
            api.set_camera(devices.camera.into());
            api.set_microphone(devices.microphone.into());
            api.set_speaker(devices.speaker.into());
        }
        Update::ShowPage(page) => api.set_page(match page {
            Page::Home => g::Page::Home,
            Page::Call => g::Page::Call,
            Page::Chat => g::Page::Chat,
            Page::Files => g::Page::Files,
            Page::Settings => g::Page::Settings,
        }),
        Update::FullScreen(full) => api.set_screen_full_screen(full),
        Update::JoinFailed(Some(failure)) => {
            api.set_join_failure(g::JoinFailure {
                room: failure.room.into(),
                message: failure.message.into(),
                ask_password: failure.ask_password,
            });
            api.set_has_join_failure(true);
        }
        Update::JoinFailed(None) => api.set_has_join_failure(false),
        Update::ServerSetup(Some(setup)) => {
            api.set_server_address(setup.address.into());
            api.set_server_error(setup.error.into());
            api.set_server_setup(true);
        }
        Update::ServerSetup(None) => {
            if api.get_server_setup() {
                api.set_server_setup(false);
                api.set_server_error("".into());
                api.set_page(g::Page::Home);
            }
        }
        Update::Update(view) => show_update(&api, view.as_ref()),
        Update::Pairing(pairing) => show_pairing(&api, pairing.as_ref()),
        Update::Paired(laptops) => show_paired(&api, laptops),
        Update::Editor(view) => show_editor(&api, shared, view),
        Update::WatchAvailable(available) => show_watch_available(&api, shared, available),
        Update::Stage(stage) => show_stage(&api, stage),
    }
}

fn chat_message(line: ChatLine) -> g::ChatMessage {
    g::ChatMessage {
        from: line.from.into(),
        text: line.text.into(),
        mine: line.mine,
    }
}

fn received_file(file: FileView) -> g::ReceivedFile {
    g::ReceivedFile {
        id: file.id.into(),
        name: file.name.into(),
        size: format_size(file.size).into(),
        from: file.from.into(),
        progress: file.progress.clamp(0.0, 1.0),
        state: match file.state {
            FileState::Waiting => g::FileState::Waiting,
            FileState::Receiving => g::FileState::Receiving,
            FileState::Done => g::FileState::Done,
            FileState::Failed => g::FileState::Failed,
            FileState::Declined => g::FileState::Declined,
        },
        is_image: file.is_image,
    }
}

fn show_picture(api: &Api<'_>, picture: Option<Picture>) {
    let Some(picture) = picture else {
        api.set_showing_image(false);
        api.set_viewer_image(Image::default());
        return;
    };
    if let Err(error) = check_rgba(picture.width, picture.height, picture.rgba.len()) {
        tracing::warn!(%error, title = %picture.title, "picture not shown");
        return;
    }
    let pixels = Frame::clone_from_slice(&picture.rgba, picture.width, picture.height);
    api.set_viewer_image(Image::from_rgba8(pixels));
    api.set_viewer_title(picture.title.into());
    api.set_showing_image(true);
}
