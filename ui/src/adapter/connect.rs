//! `Api` callbacks to [`UiEvent`]s.

use std::rc::Rc;

use super::editor::pin_content;
use crate::event::UiEvent;
use crate::generated::Api;

/// Wires every `Api` callback to `on_event`.
pub(super) fn connect(api: &Api<'_>, on_event: &Rc<dyn Fn(UiEvent)>) {
    let text = |f: fn(String) -> UiEvent| {
        let on_event = Rc::clone(on_event);
        move |text: slint::SharedString| on_event(f(text.into()))
    };
    api.on_join_room(text(UiEvent::JoinRoom));
    api.on_join_by_code(text(UiEvent::JoinByCode));
    api.on_accept_file(text(UiEvent::AcceptFile));
    api.on_decline_file(text(UiEvent::DeclineFile));
    api.on_open_file(text(UiEvent::OpenFile));
    api.on_choose_camera(text(UiEvent::ChooseCamera));
    api.on_choose_microphone(text(UiEvent::ChooseMicrophone));
    api.on_choose_speaker(text(UiEvent::ChooseSpeaker));
    api.on_unpair(text(UiEvent::Unpair));

    let trimmed = |f: fn(String) -> UiEvent| {
        let on_event = Rc::clone(on_event);
        move |text: slint::SharedString| {
            let text = text.trim();
            if !text.is_empty() {
                on_event(f(text.into()));
            }
        }
    };
    api.on_send_chat(trimmed(UiEvent::SendChat));
    api.on_set_device_name(trimmed(UiEvent::SetDeviceName));
    api.on_set_server(trimmed(UiEvent::SetServer));

    let flag = |f: fn(bool) -> UiEvent| {
        let on_event = Rc::clone(on_event);
        move |value: bool| on_event(f(value))
    };
    api.on_set_mic_muted(flag(UiEvent::SetMicMuted));
    api.on_set_camera_off(flag(UiEvent::SetCameraOff));
    api.on_full_screen_changed(flag(UiEvent::ScreenFullScreen));

    let plain = |event: UiEvent| {
        let on_event = Rc::clone(on_event);
        move || on_event(event.clone())
    };
    api.on_leave(plain(UiEvent::Leave));
    api.on_close_image(plain(UiEvent::CloseImage));
    api.on_dismiss_join_failure(plain(UiEvent::DismissJoinFailure));
    api.on_check_for_updates(plain(UiEvent::CheckForUpdates));
    api.on_install_update_now(plain(UiEvent::InstallUpdateNow));

    {
        let on_event = Rc::clone(on_event);
        api.on_set_volume(move |volume| on_event(UiEvent::SetVolume(volume.clamp(0.0, 1.0))));
    }
    {
        let on_event = Rc::clone(on_event);
        api.on_pin(move |peer| {
            if peer.is_empty() {
                on_event(UiEvent::Pin(None));
            } else if let Ok(id) = peer.parse() {
                on_event(UiEvent::Pin(Some(id)));
            } else {
                tracing::warn!(%peer, "pin for a tile without a peer id");
            }
        });
    }
    {
        let on_event = Rc::clone(on_event);
        api.on_pin_content(move |content, peer, screen| {
            if let Some(event) = pin_content(content, &peer, screen) {
                on_event(event);
            }
        });
    }
    {
        let on_event = Rc::clone(on_event);
        api.on_join_with_password(move |room, password| {
            if !password.is_empty() {
                on_event(UiEvent::JoinWithPassword {
                    room: room.into(),
                    password: password.into(),
                });
            }
        });
    }
    api.on_mask(|text| "•".repeat(text.chars().count()).into());
    api.on_drop_last_character(|text| {
        let mut text = text.to_string();
        text.pop();
        text.into()
    });
}
