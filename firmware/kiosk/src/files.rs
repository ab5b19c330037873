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
//!
//! None of this runs on the session task: [`FileWorker`] owns the store on a thread of its
//! own and takes [`Job`]s in order, so a slow disk (an SD card flushing, a full `fsync`)
//! never holds up the call's signaling or media. What it has done comes back as [`Done`],
//! with the free space of the directory after every change (the engine decides offers
//! with it). Received chunks are bounded per peer in bytes ([`QUEUE_BYTES_PER_PEER`]): a
//! peer's link takes a [`Budget`] permit per byte before it hands a chunk on, and the
//! worker gives them back once the bytes are written, so a peer that sends faster than the
//! disk writes finds its link no longer reading its data channel, and its SCTP window
//! holds the sender back.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use portal_proto::PeerId;
use tokio::sync::{Semaphore, mpsc};

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

    /// Closes the temp file of a transfer whose writing failed (it stays until discarded).
    pub(crate) fn drop_incoming(&mut self, peer: PeerId, id: u32) {
        self.incoming.remove(&(peer, id));
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

/// Free bytes (for an unprivileged writer) on the file system that holds `dir`.
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Received bytes one peer may have waiting for the disk.
pub(crate) const QUEUE_BYTES_PER_PEER: usize = 8 * 1024 * 1024;

/// Permits for received bytes on their way to the disk, one per byte: taken by a peer's
/// link for each chunk, given back when the chunk is written (or dropped).
pub(crate) type Budget = Arc<Semaphore>;

/// A fresh budget of [`QUEUE_BYTES_PER_PEER`] for one peer's link.
pub(crate) fn budget() -> Budget {
    Arc::new(Semaphore::new(QUEUE_BYTES_PER_PEER))
}

/// Bytes of a budget held by a chunk until it is written.
#[derive(Debug)]
pub(crate) struct Credit {
    pub budget: Budget,
    pub bytes: usize,
}

impl Drop for Credit {
    fn drop(&mut self) {
        self.budget.add_permits(std::mem::take(&mut self.bytes));
    }
}

/// Work for the file worker, done in the order given.
#[derive(Debug)]
pub(crate) enum Job {
    Create {
        peer: PeerId,
        id: u32,
        temp: String,
    },
    Write {
        peer: PeerId,
        id: u32,
        offset: u64,
        bytes: Vec<u8>,
        /// Given back once written.
        credit: Option<Credit>,
    },
    Commit {
        peer: PeerId,
        id: u32,
        temp: String,
        name: String,
    },
    Discard {
        peer: PeerId,
        id: u32,
        temp: String,
    },
    AddOutgoing {
        peer: PeerId,
        id: u32,
        path: PathBuf,
    },
    Read {
        peer: PeerId,
        id: u32,
        offset: u64,
        len: usize,
    },
    ForgetOutgoing {
        peer: PeerId,
        id: u32,
    },
}

/// What the file worker did, for the session to tell the engine.
#[derive(Debug)]
pub(crate) enum Done {
    /// The verified file is in place under its final name.
    Stored {
        peer: PeerId,
        id: u32,
        path: PathBuf,
    },
    /// Creating, writing or committing failed (told once per transfer).
    StoreFailed {
        peer: PeerId,
        id: u32,
        error: String,
    },
    Data {
        peer: PeerId,
        id: u32,
        bytes: Vec<u8>,
    },
    ReadFailed {
        peer: PeerId,
        id: u32,
        error: String,
    },
    /// The directory's free space, measured after a change.
    FreeBytes(Option<u64>),
}

/// The thread that owns a [`FileStore`]; dropping the handle lets it finish the jobs
/// queued and end.
#[derive(Debug)]
pub(crate) struct FileWorker {
    dir: PathBuf,
    jobs: std::sync::mpsc::Sender<Job>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often writes alone have the free space measured again.
const MEASURE_EVERY: Duration = Duration::from_millis(500);

impl FileWorker {
    pub(crate) fn start(store: FileStore) -> anyhow::Result<(Self, mpsc::UnboundedReceiver<Done>)> {
        let (jobs, rx) = std::sync::mpsc::channel();
        let (done, done_rx) = mpsc::unbounded_channel();
        let dir = store.dir().to_owned();
        let thread = std::thread::Builder::new()
            .name("portal-files".into())
            .spawn(move || work(store, &rx, &done))
            .context("starting the file worker")?;
        let worker = FileWorker {
            dir,
            jobs,
            thread: Some(thread),
        };
        Ok((worker, done_rx))
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn send(&self, job: Job) {
        if self.jobs.send(job).is_err() {
            tracing::warn!("the file worker has ended; a file job is lost");
        }
    }

    /// Ends the worker once its queue is done, waiting at most `limit`.
    pub(crate) async fn finish(mut self, limit: Duration) {
        let thread = self.thread.take();
        drop(self);
        if let Some(thread) = thread {
            let join = tokio::task::spawn_blocking(move || thread.join());
            if tokio::time::timeout(limit, join).await.is_err() {
                tracing::warn!("the file worker is still busy; leaving it");
            }
        }
    }
}

fn work(
    mut store: FileStore,
    jobs: &std::sync::mpsc::Receiver<Job>,
    done: &mpsc::UnboundedSender<Done>,
) {
    // Transfers whose storing failed: told once, their later chunks skipped.
    let mut failed: HashSet<(PeerId, u32)> = HashSet::new();
    let mut measured = Instant::now();
    let _ = done.send(Done::FreeBytes(free_bytes(store.dir())));
    let fail =
        |failed: &mut HashSet<(PeerId, u32)>, peer: PeerId, id: u32, error: &anyhow::Error| {
            if failed.insert((peer, id)) {
                let error = format!("{error:#}");
                let _ = done.send(Done::StoreFailed { peer, id, error });
            }
        };
    for job in jobs {
        let mut changed = true;
        match job {
            Job::Create { peer, id, temp } => {
                if let Err(e) = store.create(peer, id, &temp) {
                    fail(&mut failed, peer, id, &e);
                }
            }
            Job::Write {
                peer,
                id,
                offset,
                bytes,
                credit,
            } => {
                changed = measured.elapsed() >= MEASURE_EVERY;
                if let Err(e) = store.write(peer, id, offset, &bytes) {
                    store.drop_incoming(peer, id);
                    fail(&mut failed, peer, id, &e);
                }
                drop(credit);
            }
            Job::Commit {
                peer,
                id,
                temp,
                name,
            } => match store.commit(peer, id, &temp, &name) {
                Ok(path) => {
                    let _ = done.send(Done::Stored { peer, id, path });
                }
                Err(e) => fail(&mut failed, peer, id, &e),
            },
            Job::Discard { peer, id, temp } => {
                // The transfer has ended; its id may come again.
                failed.remove(&(peer, id));
                store.discard(peer, id, &temp);
            }
            Job::AddOutgoing { peer, id, path } => {
                changed = false;
                store.add_outgoing(peer, id, path);
            }
            Job::Read {
                peer,
                id,
                offset,
                len,
            } => {
                changed = false;
                let _ = done.send(match store.read(peer, id, offset, len) {
                    Ok(bytes) => Done::Data { peer, id, bytes },
                    Err(e) => Done::ReadFailed {
                        peer,
                        id,
                        error: format!("{e:#}"),
                    },
                });
            }
            Job::ForgetOutgoing { peer, id } => {
                changed = false;
                store.forget_outgoing(peer, id);
            }
        }
        if changed {
            measured = Instant::now();
            let _ = done.send(Done::FreeBytes(free_bytes(store.dir())));
        }
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

    #[tokio::test]
    async fn the_worker_writes_off_the_caller_and_gives_the_budget_back() {
        let s = store("worker");
        let dir = s.dir().to_owned();
        let (worker, mut done) = FileWorker::start(s).expect("worker");
        let peer = PeerId(3);
        let budget = budget();
        let permit = budget.clone().try_acquire_many_owned(5).expect("permits");
        permit.forget();
        assert_eq!(budget.available_permits(), QUEUE_BYTES_PER_PEER - 5);
        worker.send(Job::Create {
            peer,
            id: 1,
            temp: ".part-1".into(),
        });
        worker.send(Job::Write {
            peer,
            id: 1,
            offset: 0,
            bytes: b"hello".to_vec(),
            credit: Some(Credit {
                budget: budget.clone(),
                bytes: 5,
            }),
        });
        worker.send(Job::Commit {
            peer,
            id: 1,
            temp: ".part-1".into(),
            name: "h.txt".into(),
        });
        // A transfer whose temp file cannot be made fails once, however many chunks follow.
        worker.send(Job::Create {
            peer,
            id: 2,
            temp: "../x".into(),
        });
        for _ in 0..3 {
            worker.send(Job::Write {
                peer,
                id: 2,
                offset: 0,
                bytes: vec![1],
                credit: None,
            });
        }
        worker.finish(Duration::from_secs(5)).await;
        let mut stored = None;
        let mut failures = 0;
        let mut measured = 0;
        while let Ok(d) = done.try_recv() {
            match d {
                Done::Stored { id, path, .. } => stored = Some((id, path)),
                Done::StoreFailed { id, .. } => {
                    assert_eq!(id, 2);
                    failures += 1;
                }
                Done::FreeBytes(free) => {
                    assert!(free.is_some_and(|f| f > 0));
                    measured += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let (id, path) = stored.expect("stored");
        assert_eq!(id, 1);
        assert_eq!(std::fs::read(path).expect("read"), b"hello");
        assert_eq!(failures, 1);
        assert!(measured >= 2);
        assert_eq!(budget.available_permits(), QUEUE_BYTES_PER_PEER);
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
