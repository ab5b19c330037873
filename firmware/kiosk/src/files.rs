//! The download directory: the file I/O that `portal-engine`'s transfers ask for.
//!
//! Incoming bytes go to the hidden temp file the engine names, in the download directory
//! itself (so the final rename stays on one file system). [`FileStore::commit`] renames
//! without replacing: a hard link to the final name (which fails if that name exists),
//! then the temp name is removed, so an existing file is never overwritten and a clash is
//! reported as a failure. Names come from the engine, which has sanitized them; this
//! module still refuses anything that is not one plain file name.
//!
//! Outgoing files (kiosk to browser) are read by offset from wherever they are.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use portal_proto::PeerId;

/// How the engine's temporary files begin (`FileConfig`'s temp prefix).
const PARTIAL_PREFIX: &str = ".portal-partial-";

/// Open temp files and outgoing files, by `(peer, transfer id)`.
#[derive(Debug)]
pub(crate) struct FileStore {
    dir: PathBuf,
    incoming: HashMap<(PeerId, u32), File>,
    outgoing: HashMap<(PeerId, u32), PathBuf>,
}

/// Whether `name` is one plain file name (no separator, not `.` or `..`).
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name().is_some_and(|n| n == name)
}

impl FileStore {
    /// Opens the download directory, and removes the partial files a transfer cut short
    /// by a crash or a power cut left behind (a running call's own are never there yet:
    /// one store serves one call at a time).
    pub(crate) fn new(dir: PathBuf) -> anyhow::Result<FileStore> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the files directory {}", dir.display()))?;
        for entry in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
            let name = entry.file_name();
            let is_partial = name.to_str().is_some_and(|n| n.starts_with(PARTIAL_PREFIX));
            if is_partial && entry.file_type().is_ok_and(|t| t.is_file()) {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => tracing::info!(file = ?name, "removed a partial file left behind"),
                    Err(e) => tracing::warn!(file = ?name, error = %e, "a partial file stays"),
                }
            }
        }
        Ok(FileStore {
            dir,
            incoming: HashMap::new(),
            outgoing: HashMap::new(),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Names in the directory now (the engine never picks one of these).
    pub(crate) fn existing(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        if !plain(name) {
            bail!("{name:?} is not a plain file name");
        }
        Ok(self.dir.join(name))
    }

    pub(crate) fn create(&mut self, peer: PeerId, id: u32, temp: &str) -> anyhow::Result<()> {
        let path = self.path(temp)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        self.incoming.insert((peer, id), file);
        Ok(())
    }

    pub(crate) fn write(
        &mut self,
        peer: PeerId,
        id: u32,
        offset: u64,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let Some(file) = self.incoming.get_mut(&(peer, id)) else {
            bail!("no temp file open for transfer {id}");
        };
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(bytes)?;
        Ok(())
    }

    /// Flushes the temp file and gives it its final name without replacing anything.
    pub(crate) fn commit(
        &mut self,
        peer: PeerId,
        id: u32,
        temp: &str,
        name: &str,
    ) -> anyhow::Result<PathBuf> {
        let temp_path = self.path(temp)?;
        let final_path = self.path(name)?;
        if let Some(file) = self.incoming.remove(&(peer, id)) {
            file.sync_all()
                .with_context(|| format!("flushing {}", temp_path.display()))?;
        }
        std::fs::hard_link(&temp_path, &final_path).with_context(|| {
            format!(
                "renaming {} to {} without replacing",
                temp_path.display(),
                final_path.display()
            )
        })?;
        std::fs::remove_file(&temp_path)
            .with_context(|| format!("removing {}", temp_path.display()))?;
        Ok(final_path)
    }

    /// Deletes a temp file; a missing one is fine.
    pub(crate) fn discard(&mut self, peer: PeerId, id: u32, temp: &str) {
        self.incoming.remove(&(peer, id));
        if let Ok(path) = self.path(temp)
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a partial file");
        }
    }

    /// Remembers where outgoing transfer `id` reads from.
    pub(crate) fn add_outgoing(&mut self, peer: PeerId, id: u32, path: PathBuf) {
        self.outgoing.insert((peer, id), path);
    }

    pub(crate) fn read(
        &self,
        peer: PeerId,
        id: u32,
        offset: u64,
        len: usize,
    ) -> anyhow::Result<Vec<u8>> {
        let Some(path) = self.outgoing.get(&(peer, id)) else {
            bail!("no outgoing file for transfer {id}");
        };
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0; len];
        file.read_exact(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(buf)
    }

    pub(crate) fn forget_outgoing(&mut self, peer: PeerId, id: u32) {
        self.outgoing.remove(&(peer, id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tag: &str) -> FileStore {
        let dir =
            std::env::temp_dir().join(format!("portal-kiosk-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        FileStore::new(dir).expect("store")
    }

    #[test]
    fn partial_files_left_behind_are_removed_at_start() {
        let s = store("partial");
        let dir = s.dir().to_owned();
        std::fs::write(dir.join(".portal-partial-3-1-7"), b"half").expect("write");
        std::fs::write(dir.join("kept.txt"), b"done").expect("write");
        let s = FileStore::new(dir.clone()).expect("reopened");
        assert_eq!(s.existing(), ["kept.txt"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn commit_never_replaces_and_refuses_paths() {
        let mut s = store("commit");
        let peer = PeerId(1);
        std::fs::write(s.dir().join("taken.txt"), b"old").expect("write");
        s.create(peer, 1, ".part-1").expect("create");
        s.write(peer, 1, 0, b"new").expect("write");
        assert!(s.commit(peer, 1, ".part-1", "taken.txt").is_err());
        assert_eq!(
            std::fs::read(s.dir().join("taken.txt")).expect("read"),
            b"old"
        );
        let path = s.commit(peer, 1, ".part-1", "fresh.txt").expect("commit");
        assert_eq!(std::fs::read(path).expect("read"), b"new");
        assert!(!s.dir().join(".part-1").exists());
        assert!(s.create(peer, 2, "../escape").is_err());
        assert!(s.create(peer, 2, "..").is_err());
        let _ = std::fs::remove_dir_all(s.dir());
    }
}
