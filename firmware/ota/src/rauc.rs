//! RAUC's D-Bus API (`de.pengutronix.rauc.Installer` on `/`), through `zbus`.
//!
//! Only what the agent needs: install a bundle and follow it to `Completed`, read the
//! slots, mark the booted slot good or bad. RAUC checks the bundle's signature and
//! compatible; its `LastError` is read into a typed [`OtaError`].

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedValue, Value};

use crate::error::OtaError;

#[zbus::proxy(
    interface = "de.pengutronix.rauc.Installer",
    default_service = "de.pengutronix.rauc",
    default_path = "/"
)]
trait Installer {
    fn install_bundle(&self, source: &str, args: HashMap<&str, Value<'_>>) -> zbus::Result<()>;
    fn mark(&self, state: &str, slot_identifier: &str) -> zbus::Result<(String, String)>;
    fn get_slot_status(&self) -> zbus::Result<Vec<(String, HashMap<String, OwnedValue>)>>;
    fn get_primary(&self) -> zbus::Result<String>;
    #[zbus(signal)]
    fn completed(&self, result: i32) -> zbus::Result<()>;
    #[zbus(property)]
    fn operation(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn progress(&self) -> zbus::Result<(i32, String, i32)>;
    #[zbus(property)]
    fn compatible(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn boot_slot(&self) -> zbus::Result<String>;
}

/// Which bus RAUC is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    System,
    /// A bus address, such as a test's private `unix:path=...`.
    Address(String),
}

/// One slot as `GetSlotStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub class: String,
    pub bootname: Option<String>,
    /// `booted`, `active`, `inactive`.
    pub state: String,
    /// The bootloader's view: `good` or `bad`.
    pub boot_status: Option<String>,
    /// The version of the bundle last installed into it.
    pub bundle_version: Option<String>,
}

/// A connection to the RAUC service.
#[derive(Debug, Clone)]
pub struct Rauc {
    proxy: InstallerProxy<'static>,
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(rauc_err)`
fn rauc_err(e: zbus::Error) -> OtaError {
    OtaError::Rauc(e.to_string())
}

impl Rauc {
    pub async fn connect(bus: &Bus) -> Result<Rauc, OtaError> {
        let conn = match bus {
            Bus::System => zbus::Connection::system().await,
            Bus::Address(addr) => match zbus::connection::Builder::address(addr.as_str()) {
                Ok(b) => b.build().await,
                Err(e) => Err(e),
            },
        }
        .map_err(rauc_err)?;
        let proxy = InstallerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(rauc_err)?;
        Ok(Rauc { proxy })
    }

    pub async fn compatible(&self) -> Result<String, OtaError> {
        self.proxy.compatible().await.map_err(rauc_err)
    }

    /// The slot RAUC will boot next (its name, e.g. `rootfs.1`).
    pub async fn primary(&self) -> Result<String, OtaError> {
        self.proxy.get_primary().await.map_err(rauc_err)
    }

    pub async fn slots(&self) -> Result<Vec<Slot>, OtaError> {
        let raw = self.proxy.get_slot_status().await.map_err(rauc_err)?;
        let text = |m: &HashMap<String, OwnedValue>, k: &str| {
            m.get(k).and_then(|v| String::try_from(v.clone()).ok())
        };
        Ok(raw
            .into_iter()
            .map(|(name, m)| Slot {
                class: text(&m, "class").unwrap_or_default(),
                bootname: text(&m, "bootname"),
                state: text(&m, "state").unwrap_or_default(),
                boot_status: text(&m, "boot-status"),
                bundle_version: text(&m, "bundle.version"),
                name,
            })
            .collect())
    }

    /// The booted slot.
    pub async fn booted(&self) -> Result<Slot, OtaError> {
        self.slots()
            .await?
            .into_iter()
            .find(|s| s.state == "booted")
            .ok_or_else(|| OtaError::Rauc("no slot is booted".into()))
    }

    /// Installs `bundle` (a local path) and waits for `Completed`, reporting progress in
    /// percent. Returns the slot that is now primary.
    pub async fn install(
        &self,
        bundle: &str,
        progress: &mut (dyn FnMut(u8) + Send),
    ) -> Result<String, OtaError> {
        let mut completed = self.proxy.receive_completed().await.map_err(rauc_err)?;
        self.proxy
            .install_bundle(bundle, HashMap::new())
            .await
            .map_err(|e| OtaError::from_rauc_error(&e.to_string()))?;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let code = loop {
            tokio::select! {
                signal = completed.next() => {
                    let Some(signal) = signal else {
                        return Err(OtaError::Install("RAUC left the bus during the install".into()));
                    };
                    break signal.args().map_err(rauc_err)?.result;
                }
                _ = tick.tick() => {
                    // An error here is RAUC gone from the bus (killed, crashed).
                    match self.proxy.progress().await {
                        Ok((pct, _, _)) => progress(pct.clamp(0, 100) as u8),
                        Err(e) => {
                            return Err(OtaError::Install(format!("RAUC stopped answering: {e}")));
                        }
                    }
                }
            }
        };
        if code != 0 {
            let last = self.proxy.last_error().await.map_err(rauc_err)?;
            return Err(OtaError::from_rauc_error(&last));
        }
        progress(100);
        self.primary().await
    }

    /// Marks a slot (`booted`, `other` or a name) `good`, `bad` or `active`.
    pub async fn mark(&self, state: &str, slot: &str) -> Result<(), OtaError> {
        self.proxy.mark(state, slot).await.map_err(rauc_err)?;
        Ok(())
    }
}
