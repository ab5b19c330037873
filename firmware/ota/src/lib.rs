//! Portal kiosk's update agent.
//!
//! - [`machine`]: every decision, sans I/O (time in, actions out): when to check, whether
//!   an offered version is taken, when to install (maintenance window, never during a
//!   call), the health check after booting the new slot, mark good or bad.
//! - [`state`]: the state file that makes each step resumable after a power cut.
//! - [`manifest`]: the feed's manifest and the version rules.
//! - [`download`]: the bundle over HTTP, resumed with `Range`, size and SHA-256 checked.
//! - [`rauc`]: RAUC's D-Bus API (`de.pengutronix.rauc.Installer`) through `zbus`.
//! - [`runner`]: the I/O loop that performs the machine's actions; the `portal-ota`
//!   binary runs it, and the kiosk can embed it.

pub mod download;
pub mod error;
pub mod machine;
pub mod manifest;
pub mod rauc;
pub mod runner;
pub mod state;

pub use error::{ErrorInfo, OtaError};
pub use machine::{Action, Agent, Input, Now, Policy};
pub use manifest::{Manifest, Window};
pub use state::{Persisted, Phase, Status};
