//! How the kiosk names a file transfer to people and tools: `PEER-ID`.
//!
//! Transfer ids are chosen by the sending side, so two peers may both offer a file with
//! id 1; a transfer is only named uniquely by its peer and id together. The status
//! endpoint and the touch screen show a [`FileKey`] as `PEER-ID`; a person typing a bare
//! id means the one offer waiting under it ([`FileRef`], resolved by
//! [`crate::Engine::resolve_offer`]).

use std::fmt;
use std::str::FromStr;

use portal_proto::PeerId;

/// One transfer with one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    pub peer: PeerId,
    pub id: u32,
}

impl FileKey {
    pub fn new(peer: PeerId, id: u32) -> Self {
        FileKey { peer, id }
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.peer.0, self.id)
    }
}

/// A file id that is neither `PEER-ID` nor `ID`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("file id {0:?} is not PEER-ID or ID")]
pub struct BadFileId(pub String);

impl FromStr for FileKey {
    type Err = BadFileId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.parse::<FileRef>()? {
            FileRef {
                peer: Some(peer),
                id,
            } => Ok(FileKey { peer, id }),
            FileRef { peer: None, .. } => Err(BadFileId(text.to_owned())),
        }
    }
}

/// What a person may type: `PEER-ID`, or a bare `ID` when only one offer has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRef {
    pub peer: Option<PeerId>,
    pub id: u32,
}

impl FromStr for FileRef {
    type Err = BadFileId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadFileId(text.to_owned());
        let number = |s: &str| -> Result<u64, BadFileId> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        let (peer, id) = match text.split_once('-') {
            Some((peer, id)) => (Some(PeerId(number(peer)?)), number(id)?),
            None => (None, number(text)?),
        };
        Ok(FileRef {
            peer,
            id: u32::try_from(id).map_err(|_| bad())?,
        })
    }
}

impl From<FileKey> for FileRef {
    fn from(key: FileKey) -> Self {
        FileRef {
            peer: Some(key.peer),
            id: key.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_refs_take_bare_ids() {
        let key = FileKey::new(PeerId(3), 7);
        assert_eq!(key.to_string(), "3-7");
        assert_eq!("3-7".parse::<FileKey>(), Ok(key));
        assert_eq!("7".parse::<FileRef>(), Ok(FileRef { peer: None, id: 7 }));
        assert_eq!("3-7".parse::<FileRef>(), Ok(FileRef::from(key)));
        for bad in [
            "",
            "x-7",
            "3-",
            "-7",
            "3-7-1",
            "+3-7",
            "3-99999999999",
            " 7",
        ] {
            assert!(bad.parse::<FileRef>().is_err(), "{bad:?}");
        }
        assert!("7".parse::<FileKey>().is_err());
    }
}
