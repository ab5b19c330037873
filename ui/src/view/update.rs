//! The over-the-air update section of the settings page.

/// Where the over-the-air update agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdatePhase {
    /// Nothing running; an update may be waiting in [`UpdateView::available`].
    #[default]
    Idle,
    /// Asking the feed for a newer version.
    Checking,
    Downloading,
    /// Downloaded and checked; installs when allowed (no call, maintenance window).
    Ready,
    /// Writing the other slot.
    Installing,
    /// Installed; restarting into the new version.
    Rebooting,
    /// The last step failed; [`UpdateView::error`] says why.
    Failed,
}

/// The update section of the settings page: what the agent reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateView {
    pub phase: UpdatePhase,
    /// The running version, e.g. "1.3.0".
    pub current: String,
    /// The version the feed offers, e.g. "1.4.0", if newer than the running one.
    pub available: Option<String>,
    /// 0 to 1 while downloading or installing, when known.
    pub progress: Option<f32>,
    /// Ready, and waiting for the call to end before installing.
    pub deferred_by_call: bool,
    /// The last error, for people.
    pub error: Option<String>,
}

impl UpdateView {
    /// The one status line: "Up to date", "Downloading 1.4.0 – 42 %", "Update failed: …".
    pub fn status(&self) -> String {
        let version = self.available.as_deref().unwrap_or("update");
        let with_progress = |verb: &str| match self.progress {
            Some(progress) => format!("{verb} {version} – {} %", percent(progress)),
            None => format!("{verb} {version}"),
        };
        match self.phase {
            UpdatePhase::Checking => "Checking for updates…".to_owned(),
            UpdatePhase::Downloading => with_progress("Downloading"),
            UpdatePhase::Installing => with_progress("Installing"),
            UpdatePhase::Rebooting => "Restarting to finish the update".to_owned(),
            UpdatePhase::Failed => match &self.error {
                Some(error) => format!("Update failed: {error}"),
                None => "Update failed".to_owned(),
            },
            UpdatePhase::Ready if self.deferred_by_call => match &self.available {
                Some(version) => format!("Update {version} will install after this call"),
                None => "The update will install after this call".to_owned(),
            },
            UpdatePhase::Idle | UpdatePhase::Ready => match &self.available {
                Some(version) => format!("Update {version} available"),
                None if self.phase == UpdatePhase::Ready => "An update is ready".to_owned(),
                None => "Up to date".to_owned(),
            },
        }
    }

    /// "Last error: …" under any phase but `Failed` (whose status line says it already).
    pub fn last_error(&self) -> Option<String> {
        match (&self.error, self.phase) {
            (_, UpdatePhase::Failed) | (None, _) => None,
            (Some(error), _) => Some(format!("Last error: {error}")),
        }
    }

    /// The progress bar's value, shown while downloading or installing.
    pub fn shown_progress(&self) -> Option<f32> {
        match self.phase {
            UpdatePhase::Downloading | UpdatePhase::Installing => {
                self.progress.map(|p| p.clamp(0.0, 1.0))
            }
            _ => None,
        }
    }

    /// "Install now" makes sense: there is an update, and it is not being installed.
    pub fn can_install(&self) -> bool {
        (self.available.is_some() || self.phase == UpdatePhase::Ready)
            && !matches!(self.phase, UpdatePhase::Installing | UpdatePhase::Rebooting)
    }

    /// "Check now" makes sense: the agent is not busy with a check, a download or an
    /// install.
    pub fn can_check(&self) -> bool {
        matches!(
            self.phase,
            UpdatePhase::Idle | UpdatePhase::Ready | UpdatePhase::Failed
        )
    }
}

/// A share from 0 to 1 as a whole percentage, 0 to 100.
fn percent(share: f32) -> u32 {
    // Clamped to 0..=100 first, so the cast cannot truncate or wrap.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let percent = (share.clamp(0.0, 1.0) * 100.0).round() as u32;
    percent
}

#[cfg(test)]
mod tests {
    use super::{UpdatePhase, UpdateView};

    fn update(phase: UpdatePhase, available: Option<&str>) -> UpdateView {
        UpdateView {
            phase,
            current: "1.3.0".into(),
            available: available.map(Into::into),
            ..UpdateView::default()
        }
    }

    #[test]
    fn update_status_lines() {
        let status = |view: UpdateView| view.status();
        assert_eq!(status(update(UpdatePhase::Idle, None)), "Up to date");
        assert_eq!(
            status(update(UpdatePhase::Checking, None)),
            "Checking for updates…"
        );
        assert_eq!(
            status(update(UpdatePhase::Idle, Some("1.4.0"))),
            "Update 1.4.0 available"
        );
        assert_eq!(
            status(update(UpdatePhase::Ready, Some("1.4.0"))),
            "Update 1.4.0 available"
        );
        assert_eq!(
            status(UpdateView {
                deferred_by_call: true,
                ..update(UpdatePhase::Ready, Some("1.4.0"))
            }),
            "Update 1.4.0 will install after this call"
        );
        assert_eq!(
            status(UpdateView {
                progress: Some(0.42),
                ..update(UpdatePhase::Downloading, Some("1.4.0"))
            }),
            "Downloading 1.4.0 – 42 %"
        );
        assert_eq!(
            status(update(UpdatePhase::Downloading, Some("1.4.0"))),
            "Downloading 1.4.0"
        );
        assert_eq!(
            status(UpdateView {
                progress: Some(0.6),
                ..update(UpdatePhase::Installing, Some("1.4.0"))
            }),
            "Installing 1.4.0 – 60 %"
        );
        assert_eq!(
            status(UpdateView {
                progress: Some(1.7),
                ..update(UpdatePhase::Installing, Some("1.4.0"))
            }),
            "Installing 1.4.0 – 100 %"
        );
        assert_eq!(
            status(update(UpdatePhase::Rebooting, Some("1.4.0"))),
            "Restarting to finish the update"
        );
        assert_eq!(
            status(UpdateView {
                error: Some("checksum mismatch".into()),
                ..update(UpdatePhase::Failed, Some("1.4.0"))
            }),
            "Update failed: checksum mismatch"
        );
        assert_eq!(status(update(UpdatePhase::Failed, None)), "Update failed");
    }

    #[test]
    fn the_last_error_shows_under_other_phases_only() {
        let failed = UpdateView {
            error: Some("feed unreachable".into()),
            ..update(UpdatePhase::Failed, None)
        };
        assert_eq!(failed.last_error(), None);
        let idle = UpdateView {
            phase: UpdatePhase::Idle,
            ..failed
        };
        assert_eq!(
            idle.last_error().as_deref(),
            Some("Last error: feed unreachable")
        );
        assert_eq!(update(UpdatePhase::Idle, None).last_error(), None);
    }

    #[test]
    fn update_buttons_and_progress_follow_the_phase() {
        assert!(!update(UpdatePhase::Idle, None).can_install());
        assert!(update(UpdatePhase::Idle, Some("1.4.0")).can_install());
        assert!(update(UpdatePhase::Ready, None).can_install());
        assert!(update(UpdatePhase::Failed, Some("1.4.0")).can_install());
        assert!(!update(UpdatePhase::Installing, Some("1.4.0")).can_install());
        assert!(!update(UpdatePhase::Rebooting, Some("1.4.0")).can_install());

        assert!(update(UpdatePhase::Idle, None).can_check());
        assert!(update(UpdatePhase::Failed, None).can_check());
        assert!(!update(UpdatePhase::Checking, None).can_check());
        assert!(!update(UpdatePhase::Installing, None).can_check());

        let downloading = UpdateView {
            progress: Some(0.42),
            ..update(UpdatePhase::Downloading, Some("1.4.0"))
        };
        assert_eq!(downloading.shown_progress(), Some(0.42));
        let ready = UpdateView {
            phase: UpdatePhase::Ready,
            ..downloading
        };
        assert_eq!(ready.shown_progress(), None);
    }
}
