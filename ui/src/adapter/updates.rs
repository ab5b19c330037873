//! The over-the-air update section of the settings page.

use crate::generated as g;
use crate::generated::Api;
use crate::view::{UpdatePhase, UpdateView};

/// Shows what the update agent reports; `None`: no agent on this kiosk.
pub(super) fn show_update(api: &Api<'_>, view: Option<&UpdateView>) {
    let Some(view) = view else {
        api.set_has_update_agent(false);
        api.set_update(g::UpdateState::default());
        return;
    };
    let progress = view.shown_progress();
    api.set_update(g::UpdateState {
        version: format!("Version {}", view.current).into(),
        status: view.status().into(),
        failed: view.phase == UpdatePhase::Failed,
        last_error: view.last_error().unwrap_or_default().into(),
        shows_progress: progress.is_some(),
        progress: progress.unwrap_or_default(),
        can_check: view.can_check(),
        can_install: view.can_install(),
    });
    api.set_has_update_agent(true);
}
