//! `portal-server kiosk add|list|remove`: enrolment from the command line. It opens the
//! store's file directly (WAL lets it do so beside a running server, which notices a
//! removal within a couple of seconds).

use std::io::Write;
use std::path::Path;

use super::store::{self, EnrolError};
use crate::store::{StoreError, now_ms, open_connection};

/// What `portal-server kiosk` does.
#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum KioskCommand {
    /// Enrols a kiosk and prints its device token, once (the server keeps only a hash).
    Add {
        /// Its name, as people see it ("Room 4.01"); browsers cannot take it.
        name: String,
    },
    /// Lists the enrolled kiosks: name, id, enrolled, last seen (UTC).
    List,
    /// Removes a kiosk: its token stops working and its connections are closed.
    Remove {
        /// Its name (case does not matter).
        name: String,
    },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Enrol(#[from] EnrolError),
    #[error("cannot write: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs `cmd` against the store in `data_dir`, writing what it has to say to `out`.
pub fn run(data_dir: &Path, cmd: &KioskCommand, out: &mut dyn Write) -> Result<(), AdminError> {
    let conn = open_connection(data_dir)?;
    match cmd {
        KioskCommand::Add { name } => {
            let (kiosk, token) = store::enrol(&conn, name, now_ms())?;
            writeln!(
                out,
                "Enrolled kiosk {:?} (id {}). Its device token, shown only this once:",
                kiosk.name, kiosk.id
            )?;
            writeln!(out, "device_token = \"{token}\"")?;
        }
        KioskCommand::List => {
            let rows = store::list(&conn).map_err(EnrolError::from)?;
            writeln!(
                out,
                "{:<32} {:>6}  {:<20} LAST SEEN",
                "NAME", "ID", "ENROLLED"
            )?;
            for k in rows {
                let seen = k.last_seen.map_or_else(|| "never".to_owned(), utc);
                writeln!(
                    out,
                    "{:<32} {:>6}  {:<20} {}",
                    k.name,
                    k.id,
                    utc(k.created_at),
                    seen
                )?;
            }
        }
        KioskCommand::Remove { name } => {
            let k = store::remove(&conn, name)?;
            writeln!(out, "Removed kiosk {:?} (id {}).", k.name, k.id)?;
        }
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) for milliseconds since the Unix epoch.
pub fn utc(ms: f64) -> String {
    let secs = (ms / 1000.0).floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since the epoch to a civil date (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn dates_read_as_utc() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_709_210_096_000.0), "2024-02-29 12:34:56");
        assert_eq!(utc(1_796_083_200_000.0), "2026-12-01 00:00:00");
    }
}
