//! Enrolled kiosks and pairing codes in the server's SQLite store.
//!
//! A device token is 32 bytes from the OS's CSPRNG, written as base64url (43
//! characters) and shown once; the store keeps its SHA-256 only (a fast hash is enough
//! for 256 random bits: nobody can search that space), and a token is compared with
//! every enrolled hash in constant time. These functions take a plain connection so that
//! `portal-server kiosk ...` can use them beside a running server (same file, WAL).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portal_proto::names::clean_display_name;
use portal_proto::pairing::valid_token_shape;
use rand::TryRngCore as _;
use rusqlite::{Connection, OptionalExtension as _, params};
use sha2::{Digest as _, Sha256};

use super::codes::Code;
use super::{EnrolledKiosk, KioskId};
use crate::hub::Millis;

/// Why an enrolment change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolError {
    #[error("invalid kiosk name: {0}")]
    Name(portal_proto::Invalid),
    #[error("a kiosk named {0:?} is already enrolled")]
    Taken(String),
    #[error("no kiosk named {0:?} is enrolled")]
    Unknown(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A code as stored.
pub type CodeRow = (String, Code);

/// One row of `kiosk list`.
#[derive(Clone, Debug, PartialEq)]
pub struct KioskRow {
    pub id: KioskId,
    pub name: String,
    pub created_at: Millis,
    pub last_seen: Option<Millis>,
}

/// A new device token: 32 random bytes, base64url without padding.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random source");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equality that takes as long whatever the bytes.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// Enrols a kiosk named `name` (cleaned like any display name, unique without regard to
/// case); returns it and its token, which is stored only as a hash.
pub fn enrol(
    conn: &Connection,
    name: &str,
    now: Millis,
) -> Result<(EnrolledKiosk, String), EnrolError> {
    let name = clean_display_name(name).map_err(EnrolError::Name)?;
    let folded = name.to_lowercase();
    if list(conn)?.iter().any(|k| k.name.to_lowercase() == folded) {
        return Err(EnrolError::Taken(name));
    }
    let token = new_token();
    conn.execute(
        "INSERT INTO kiosks (name, token_hash, created_at) VALUES (?1, ?2, ?3)",
        params![name, token_hash(&token).to_vec(), now],
    )?;
    let id = KioskId(conn.last_insert_rowid());
    Ok((EnrolledKiosk { id, name }, token))
}

/// Every enrolled kiosk, by name.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<KioskRow>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name, created_at, last_seen FROM kiosks ORDER BY name")?;
    stmt.query_map([], |r| {
        Ok(KioskRow {
            id: KioskId(r.get(0)?),
            name: r.get(1)?,
            created_at: r.get(2)?,
            last_seen: r.get(3)?,
        })
    })?
    .collect()
}

/// Removes the kiosk named `name` (without regard to case) and its codes.
pub fn remove(conn: &Connection, name: &str) -> Result<KioskRow, EnrolError> {
    let folded = name.trim().to_lowercase();
    let Some(row) = list(conn)?
        .into_iter()
        .find(|k| k.name.to_lowercase() == folded)
    else {
        return Err(EnrolError::Unknown(name.to_owned()));
    };
    conn.execute(
        "DELETE FROM pairing_codes WHERE kiosk = ?1",
        params![row.id.0],
    )?;
    conn.execute("DELETE FROM kiosks WHERE id = ?1", params![row.id.0])?;
    Ok(row)
}

/// The kiosk whose token this is, if any.
pub fn find_by_token(conn: &Connection, token: &str) -> rusqlite::Result<Option<EnrolledKiosk>> {
    if !valid_token_shape(token) {
        return Ok(None);
    }
    let hash = token_hash(token);
    let mut stmt = conn.prepare_cached("SELECT id, name, token_hash FROM kiosks")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                KioskId(r.get(0)?),
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut found = None;
    for (id, name, stored) in rows {
        // Every row is compared, so the time taken says nothing about which matched.
        if ct_eq(&stored, &hash) {
            found = Some(EnrolledKiosk { id, name });
        }
    }
    Ok(found)
}

/// Records that the kiosk said hello at `now`.
pub fn touch(conn: &Connection, kiosk: KioskId, now: Millis) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE kiosks SET last_seen = ?2 WHERE id = ?1")?
        .execute(params![kiosk.0, now])
        .map(drop)
}

/// Writes a code's row (unless its kiosk was removed meanwhile).
pub fn save_code(conn: &Connection, code: &str, row: &Code) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO pairing_codes (code, kiosk, issued_at, expires_at, used)
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM kiosks WHERE id = ?2)",
    )?
    .execute(params![
        code,
        row.kiosk.0,
        row.issued,
        row.expires,
        row.used
    ])
    .map(drop)
}

/// Forgets codes that died before `before`.
pub fn prune_codes(conn: &Connection, before: Millis) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "DELETE FROM pairing_codes WHERE (used = 1 AND issued_at < ?1) OR expires_at < ?1",
    )?
    .execute(params![before])
    .map(drop)
}

/// What the pairing registry starts from: the enrolled kiosks and the codes remembered.
/// Every code still live is marked used on the way: a restart hands out fresh codes.
pub fn load(conn: &Connection) -> rusqlite::Result<(Vec<EnrolledKiosk>, Vec<CodeRow>)> {
    conn.execute("UPDATE pairing_codes SET used = 1 WHERE used = 0", [])?;
    let kiosks = list(conn)?
        .into_iter()
        .map(|k| EnrolledKiosk {
            id: k.id,
            name: k.name,
        })
        .collect();
    let mut stmt =
        conn.prepare("SELECT code, kiosk, issued_at, expires_at, used FROM pairing_codes")?;
    let codes = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                Code {
                    kiosk: KioskId(r.get(1)?),
                    issued: r.get(2)?,
                    expires: r.get(3)?,
                    used: r.get(4)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((kiosks, codes))
}

/// The enrolled kiosks (for the periodic re-check of a running server).
pub fn enrolled(conn: &Connection) -> rusqlite::Result<Vec<EnrolledKiosk>> {
    Ok(list(conn)?
        .into_iter()
        .map(|k| EnrolledKiosk {
            id: k.id,
            name: k.name,
        })
        .collect())
}

/// Whether the kiosk `id` is still enrolled.
pub fn exists(conn: &Connection, id: KioskId) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM kiosks WHERE id = ?1", params![id.0], |_| {
        Ok(())
    })
    .optional()
    .map(|r| r.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(crate::store::MIGRATION_PAIRING).unwrap();
        conn
    }

    #[test]
    fn enrol_find_and_remove() {
        let conn = db();
        let (k, token) = enrol(&conn, "  Room 4.01 ", 5.0).unwrap();
        assert_eq!(k.name, "Room 4.01");
        assert_eq!(token.len(), 43);
        assert!(valid_token_shape(&token));
        assert!(matches!(
            enrol(&conn, "room 4.01", 6.0),
            Err(EnrolError::Taken(_))
        ));
        assert!(matches!(
            enrol(&conn, "\u{200B}", 6.0),
            Err(EnrolError::Name(_))
        ));
        assert_eq!(find_by_token(&conn, &token).unwrap(), Some(k.clone()));
        assert_eq!(find_by_token(&conn, &new_token()).unwrap(), None);
        assert_eq!(find_by_token(&conn, "not a token").unwrap(), None);
        // Only the hash is stored.
        let stored: Vec<u8> = conn
            .query_row("SELECT token_hash FROM kiosks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored.len(), 32);
        assert!(!String::from_utf8_lossy(&stored).contains(&token));
        touch(&conn, k.id, 9.0).unwrap();
        assert_eq!(list(&conn).unwrap()[0].last_seen, Some(9.0));
        let code = Code {
            kiosk: k.id,
            issued: 1.0,
            expires: 2.0,
            used: false,
        };
        save_code(&conn, "ABCDEF", &code).unwrap();
        assert!(matches!(remove(&conn, "nope"), Err(EnrolError::Unknown(_))));
        assert_eq!(remove(&conn, "ROOM 4.01").unwrap().id, k.id);
        assert!(list(&conn).unwrap().is_empty());
        assert_eq!(find_by_token(&conn, &token).unwrap(), None);
        // The codes went with it, and a late write for it is dropped.
        save_code(&conn, "ABCDEG", &code).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM pairing_codes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_token(), new_token());
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }
}
