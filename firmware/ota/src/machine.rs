//! The agent's decisions, sans I/O: time and results come in, actions go out.
//!
//! `handle(now, input)` then drain `poll()`; `next_wake()` says when time alone changes
//! something. The I/O layer ([`crate::runner`]) performs each [`Action`] and answers
//! with an [`Input`]. It saves every [`Action::Save`] before performing what follows
//! it, so after a power cut the agent resumes from the last step it took.

use std::collections::VecDeque;

use semver::Version;

use crate::error::OtaError;
use crate::manifest::{Manifest, Window};
use crate::state::{Available, Persisted, Phase, Status};

/// When and how the agent updates.
#[derive(Debug, Clone)]
pub struct Policy {
    /// This device's RAUC compatible string.
    pub compatible: String,
    pub check_every_ms: u64,
    /// Installs start only inside it (unless asked to install now); `None`: any time.
    pub window: Option<Window>,
    /// How long a freshly booted slot has to reach the rooms server with its UI up.
    pub health_deadline_ms: u64,
    /// First wait before a dropped download is resumed; it doubles each time.
    pub retry_ms: u64,
    pub max_retries: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            compatible: String::new(),
            check_every_ms: 6 * 3600 * 1000,
            window: None,
            health_deadline_ms: 5 * 60 * 1000,
            retry_ms: 5000,
            max_retries: 6,
        }
    }
}

/// The time: monotonic milliseconds for timers, and the local minute of the day for the
/// maintenance window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub ms: u64,
    pub minute_of_day: u16,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// The first input after a start: what runs, and what the bootloader boots next.
    Started {
        current: Version,
        booted_slot: String,
        primary: Option<String>,
    },
    Tick,
    CallActive(bool),
    InstallNow,
    CheckNow,
    Manifest(Result<Manifest, OtaError>),
    /// The feed has no manifest for this device (HTTP 404): nothing to do.
    NothingOffered,
    DownloadProgress {
        done: u64,
        total: u64,
    },
    Downloaded(Result<(), OtaError>),
    InstallProgress(u8),
    /// The slot RAUC installed into.
    Installed(Result<String, OtaError>),
    ServerReached,
    UiUp,
    Marked(Result<(), OtaError>),
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Write the state file before anything that follows.
    Save(Persisted),
    FetchManifest,
    /// Fetch the bundle (resuming what is on disk), check size and SHA-256.
    Download(Manifest),
    Install(Manifest),
    Reboot,
    /// Start looking for the rooms server and the UI (answer `ServerReached`, `UiUp`).
    ProbeHealth,
    MarkGood,
    MarkBad,
    Status(Status),
}

/// The update agent's core.
#[derive(Debug)]
pub struct Agent {
    policy: Policy,
    p: Persisted,
    saved: Persisted,
    current: Option<Version>,
    booted: Option<String>,
    in_call: bool,
    /// An action whose answer is awaited.
    busy: bool,
    next_check: Option<u64>,
    retry_at: Option<u64>,
    retries: u32,
    health: Option<Health>,
    reboot_asked: bool,
    progress: Option<u8>,
    out: VecDeque<Action>,
    last_status: Option<Status>,
}

#[derive(Debug, Clone, Copy)]
struct Health {
    deadline: u64,
    server: bool,
    ui: bool,
    marking: bool,
}

impl Agent {
    /// An agent resuming from `persisted` (what [`crate::state::load`] read).
    pub fn new(policy: Policy, persisted: Persisted) -> Agent {
        Agent {
            policy,
            saved: persisted.clone(),
            p: persisted,
            current: None,
            booted: None,
            in_call: false,
            busy: false,
            next_check: None,
            retry_at: None,
            retries: 0,
            health: None,
            reboot_asked: false,
            progress: None,
            out: VecDeque::new(),
            last_status: None,
        }
    }

    pub fn persisted(&self) -> &Persisted {
        &self.p
    }

    pub fn poll(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    /// When to call `handle(now, Input::Tick)` at the latest (the window is checked on
    /// every tick, so the caller also ticks at least once a minute).
    pub fn next_wake(&self) -> Option<u64> {
        [
            self.next_check,
            self.retry_at,
            self.health.map(|h| h.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle(&mut self, now: Now, input: Input) {
        let mut acts = Vec::new();
        self.apply(now, input, &mut acts);
        if self.current.is_some() {
            self.drive(now, &mut acts);
        }
        if self.p != self.saved {
            self.saved = self.p.clone();
            self.out.push_back(Action::Save(self.p.clone()));
        }
        if let Some(status) = self.status()
            && self.last_status.as_ref() != Some(&status)
        {
            self.last_status = Some(status.clone());
            self.out.push_back(Action::Status(status));
        }
        self.out.extend(acts);
    }

    /// What the UI shows; `None` before `Started`.
    pub fn status(&self) -> Option<Status> {
        let current = self.current.clone()?;
        Some(Status {
            state: self.p.phase,
            current,
            available: self.p.available.as_ref().map(|m| Available {
                version: m.version.clone(),
                notes: m.notes.clone(),
                size: m.size,
            }),
            progress: self.progress,
            error: self.p.error.clone(),
            deferred_by_call: self.in_call
                && matches!(
                    self.p.phase,
                    Phase::Downloading | Phase::Ready | Phase::Rebooting
                )
                && !self.busy
                && self.health.is_none(),
        })
    }

    fn apply(&mut self, now: Now, input: Input, acts: &mut Vec<Action>) {
        match input {
            Input::Started {
                current,
                booted_slot,
                primary,
            } => self.started(now, current, booted_slot, primary.as_deref(), acts),
            Input::Tick => {}
            Input::CallActive(active) => self.in_call = active,
            Input::InstallNow => {
                self.p.install_now = true;
                if matches!(self.p.phase, Phase::Idle | Phase::Failed) {
                    self.next_check = Some(now.ms);
                }
            }
            Input::CheckNow => self.next_check = Some(now.ms),
            Input::Manifest(result) => self.manifest(now, result),
            Input::NothingOffered => {
                self.busy = false;
                self.next_check = Some(now.ms + self.policy.check_every_ms);
                if self.p.phase == Phase::Checking {
                    self.p.phase = Phase::Idle;
                }
            }
            Input::DownloadProgress { done, total } => {
                self.progress = Some(percent(done, total));
            }
            Input::Downloaded(result) => {
                self.busy = false;
                match result {
                    Ok(()) => {
                        self.p.phase = Phase::Ready;
                        self.progress = None;
                        self.retries = 0;
                    }
                    Err(e) if e.is_transient() && self.retries < self.policy.max_retries => {
                        tracing::info!(error = %e, "download interrupted; resuming later");
                        self.retry_at = Some(now.ms + (self.policy.retry_ms << self.retries));
                        self.retries += 1;
                    }
                    Err(e) => self.fail(now, e),
                }
            }
            Input::InstallProgress(p) => self.progress = Some(p.min(100)),
            Input::Installed(result) => {
                self.busy = false;
                self.progress = None;
                match result {
                    Ok(slot) => {
                        self.p.phase = Phase::Rebooting;
                        self.p.target_slot = Some(slot);
                        self.p.previous_slot.clone_from(&self.booted);
                        self.p.install_now = false;
                    }
                    Err(e) => self.fail(now, e),
                }
            }
            Input::ServerReached | Input::UiUp => {
                if let Some(h) = &mut self.health {
                    if input == Input::ServerReached {
                        h.server = true;
                    } else {
                        h.ui = true;
                    }
                    if h.server && h.ui && !h.marking {
                        h.marking = true;
                        acts.push(Action::MarkGood);
                    }
                }
            }
            Input::Marked(result) => self.marked(now, result, acts),
        }
    }

    fn started(
        &mut self,
        now: Now,
        current: Version,
        booted: String,
        primary: Option<&str>,
        acts: &mut Vec<Action>,
    ) {
        self.current = Some(current);
        self.booted = Some(booted.clone());
        self.next_check = Some(now.ms);
        let target = self.p.target_slot.clone();
        match self.p.phase {
            Phase::Checking => self.p.phase = Phase::Idle,
            // Interrupted: RAUC either finished (the install is repeated, harmlessly) or
            // did not (the target slot is not primary).
            Phase::Installing => self.p.phase = Phase::Ready,
            Phase::Rebooting if target.as_deref() == Some(booted.as_str()) => {
                self.health = Some(Health {
                    deadline: now.ms + self.policy.health_deadline_ms,
                    server: false,
                    ui: false,
                    marking: false,
                });
                acts.push(Action::ProbeHealth);
            }
            Phase::Rebooting if primary.is_some() && primary == target.as_deref() => {
                // Installed, not yet restarted: restart when no call runs.
            }
            Phase::Rebooting => {
                self.p.refused_sha256 = self.p.available.as_ref().map(|m| m.sha256.clone());
                self.fail(now, OtaError::BootFailed(booted));
            }
            Phase::Failed
                if target.as_deref() == Some(booted.as_str())
                    && self
                        .p
                        .error
                        .as_ref()
                        .is_some_and(|e| e.code == "healthCheck") =>
            {
                // Power cut between deciding the slot is bad and marking it.
                self.busy = true;
                acts.push(Action::MarkBad);
            }
            _ => {}
        }
    }

    fn manifest(&mut self, now: Now, result: Result<Manifest, OtaError>) {
        self.busy = false;
        self.next_check = Some(now.ms + self.policy.check_every_ms);
        let m = match result {
            Ok(m) => m,
            // The feed unreachable for a while is no failed update.
            Err(e) if e.is_transient() => {
                tracing::info!(error = %e, "update check failed; trying again later");
                if self.p.phase == Phase::Checking {
                    self.p.phase = Phase::Idle;
                }
                return;
            }
            Err(e) => return self.fail(now, e),
        };
        if self.p.refused_sha256.as_deref() == Some(m.sha256.as_str()) {
            self.p.phase = if self.p.error.is_some() {
                Phase::Failed
            } else {
                Phase::Idle
            };
            return;
        }
        let current = self.current.clone().expect("started");
        match m.decide(&current, &self.policy.compatible) {
            Ok(false) => {
                self.p.phase = Phase::Idle;
                self.p.available = None;
                self.p.error = None;
                self.p.install_now = false;
            }
            Ok(true) => {
                self.p.phase = Phase::Downloading;
                self.p.available = Some(m);
                self.retries = 0;
                self.retry_at = None;
            }
            Err(e) => {
                self.p.refused_sha256 = Some(m.sha256.clone());
                self.fail(now, e);
            }
        }
    }

    fn marked(&mut self, now: Now, result: Result<(), OtaError>, acts: &mut Vec<Action>) {
        self.busy = false;
        let Some(h) = self.health.take() else {
            // The bad mark after a failed health check: restart into the old slot.
            if let Err(e) = result {
                tracing::warn!(error = %e, "marking the new slot bad failed");
            }
            self.reboot_asked = true;
            acts.push(Action::Reboot);
            return;
        };
        match result {
            Ok(()) if h.server && h.ui => {
                if let Some(m) = self.p.available.take() {
                    self.current = Some(m.version);
                }
                self.p = Persisted::default();
                self.next_check = Some(now.ms + self.policy.check_every_ms);
            }
            Ok(()) => {}
            Err(e) => self.fail(now, e),
        }
    }

    /// Moves on when nothing is awaited: checks, downloads, installs and restarts, each
    /// when its time has come and no call runs.
    fn drive(&mut self, now: Now, acts: &mut Vec<Action>) {
        if let Some(h) = self.health
            && now.ms >= h.deadline
            && !h.marking
        {
            self.health = None;
            let why = match (h.server, h.ui) {
                (false, false) => "rooms server not reached, UI not up",
                (false, true) => "rooms server not reached",
                _ => "UI not up",
            };
            self.p.refused_sha256 = self.p.available.as_ref().map(|m| m.sha256.clone());
            self.fail(now, OtaError::HealthCheck(why.into()));
            self.busy = true;
            acts.push(Action::MarkBad);
            return;
        }
        if self.busy || self.health.is_some() || self.reboot_asked {
            return;
        }
        match self.p.phase {
            Phase::Idle | Phase::Failed if self.next_check.is_some_and(|t| now.ms >= t) => {
                // A failure stays shown while the feed is asked again.
                if self.p.phase == Phase::Idle {
                    self.p.phase = Phase::Checking;
                }
                self.busy = true;
                acts.push(Action::FetchManifest);
            }
            Phase::Downloading if !self.in_call && self.retry_at.is_none_or(|t| now.ms >= t) => {
                self.retry_at = None;
                self.busy = true;
                self.progress.get_or_insert(0);
                acts.push(Action::Download(self.p.available.clone().expect("offered")));
            }
            Phase::Ready if !self.in_call && self.may_install(now) => {
                self.p.phase = Phase::Installing;
                self.busy = true;
                self.progress = Some(0);
                acts.push(Action::Install(self.p.available.clone().expect("offered")));
            }
            Phase::Rebooting if !self.in_call && !self.reboot_asked => {
                self.reboot_asked = true;
                acts.push(Action::Reboot);
            }
            _ => {}
        }
    }

    fn may_install(&self, now: Now) -> bool {
        self.p.install_now
            || self
                .policy
                .window
                .is_none_or(|w| w.contains(now.minute_of_day))
    }

    #[allow(clippy::needless_pass_by_value)] // callers hand over errors they are done with
    fn fail(&mut self, now: Now, e: OtaError) {
        tracing::warn!(error = %e, code = e.code(), "update failed");
        self.p.phase = Phase::Failed;
        self.p.error = Some(e.info());
        self.p.install_now = false;
        self.progress = None;
        self.retry_at = None;
        if e.refuses_bundle()
            && let Some(m) = &self.p.available
        {
            self.p.refused_sha256 = Some(m.sha256.clone());
        }
        if self.next_check.is_none_or(|t| t <= now.ms) {
            self.next_check = Some(now.ms + self.policy.check_every_ms);
        }
    }
}

fn percent(done: u64, total: u64) -> u8 {
    (done.min(total) * 100).checked_div(total).unwrap_or(0) as u8
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
