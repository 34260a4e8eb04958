//! The journal on disk: the lock that keeps a journal to one queue, the file, and the writer
//! thread. The writer appends whatever records have piled up since its last write, then syncs
//! once for all of them (group commit), then reports the last record it made durable.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::core::error::{Error, Result};

/// Where the writer puts bytes. Files in production; tests swap in memory that can fail.
pub trait Storage: Send + 'static {
    /// Appends `bytes` and makes them durable.
    fn append_durable(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Replaces the whole journal with `contents`, atomically and durably.
    fn replace_durable(&mut self, contents: &[u8]) -> io::Result<()>;
}

/// Called on the writer thread after each group: the last durable record's sequence number,
/// or the error that stopped the journal.
pub type Notify = Box<dyn Fn(u64, Option<String>) + Send + Sync>;

fn io_error(path: &str, what: &str, e: io::Error) -> Error {
    Error::JournalIo {
        path: path.to_string(),
        detail: format!("{what}: {e}"),
    }
}

/// Journals open in this process, by absolute path: a second queue on one file is refused
/// even where `flock` is not available.
fn open_paths() -> &'static Mutex<HashSet<PathBuf>> {
    static OPEN: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Held while a queue has its journal open: an entry in `open_paths` and, on Unix, an
/// exclusive `flock` on `<journal>.lock`, which the OS releases if the process dies.
#[derive(Debug)]
pub struct Lock {
    key: PathBuf,
    _file: File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        open_paths().lock().remove(&self.key);
    }
}

fn absolute(path: &str) -> PathBuf {
    let p = Path::new(path);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    // The directory may hold symlinks; the file itself may not exist yet.
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(abs),
        _ => abs,
    }
}

impl Lock {
    pub fn acquire(path: &str) -> Result<Lock> {
        let key = absolute(path);
        if !open_paths().lock().insert(key.clone()) {
            return Err(Error::JournalLocked {
                path: path.to_string(),
            });
        }
        let release = |e: Error| {
            open_paths().lock().remove(&key);
            e
        };
        let lock_path = format!("{path}.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| {
                release(io_error(
                    path,
                    &format!("cannot open the lock file {lock_path:?}"),
                    e,
                ))
            })?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // Safety: a plain syscall on a descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                let err = io::Error::last_os_error();
                return Err(release(if err.kind() == io::ErrorKind::WouldBlock {
                    Error::JournalLocked {
                        path: path.to_string(),
                    }
                } else {
                    io_error(path, &format!("cannot lock {lock_path:?}"), err)
                }));
            }
        }
        Ok(Lock { key, _file: file })
    }
}

/// Syncs the directory that holds `path`, so a new or renamed file survives a crash.
fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    file: File,
}

/// An open journal file and everything in it.
#[derive(Debug)]
pub struct Opened {
    pub storage: FileStorage,
    pub contents: Vec<u8>,
}

impl FileStorage {
    /// Opens (or creates) the journal and reads it whole. Refuses anything but a regular file.
    pub fn open(path: &str) -> Result<Opened> {
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.is_file() {
                return Err(Error::JournalIo {
                    path: path.to_string(),
                    detail: "not a regular file".to_string(),
                });
            }
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| io_error(path, "cannot open it", e))?;
        let mut contents = Vec::new();
        file.read_to_end(&mut contents)
            .map_err(|e| io_error(path, "cannot read it", e))?;
        Ok(Opened {
            storage: FileStorage {
                path: PathBuf::from(path),
                file,
            },
            contents,
        })
    }

    /// Cuts a torn tail off (or an unfinished header), so that new records follow valid ones.
    pub fn truncate(&mut self, len: u64) -> Result<()> {
        let p = self.path.display().to_string();
        self.file
            .set_len(len)
            .and_then(|_| self.file.sync_all())
            .map_err(|e| io_error(&p, "cannot cut off its torn tail", e))
    }

    /// Writes the first bytes of a new journal, durably (the directory entry too).
    pub fn create(&mut self, header: &[u8]) -> Result<()> {
        let p = self.path.display().to_string();
        self.file
            .set_len(0)
            .and_then(|_| self.file.write_all(header))
            .and_then(|_| self.file.sync_all())
            .and_then(|_| sync_dir(&self.path))
            .map_err(|e| io_error(&p, "cannot create it", e))
    }
}

impl Storage for FileStorage {
    fn append_durable(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.sync_data()
    }

    fn replace_durable(&mut self, contents: &[u8]) -> io::Result<()> {
        let mut tmp_name = self.path.clone().into_os_string();
        tmp_name.push(".tmp");
        let tmp_path = PathBuf::from(tmp_name);
        let mut tmp = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)?;
        tmp.write_all(contents)?;
        tmp.sync_all()?;
        std::fs::rename(&tmp_path, &self.path)?;
        sync_dir(&self.path)?;
        // The renamed file is the journal now; this handle is at its end.
        self.file = tmp;
        Ok(())
    }
}

struct Pending {
    /// Records appended since the last group was taken.
    buf: Vec<u8>,
    /// Sequence number of the last record appended.
    seq: u64,
    /// A compacted journal to write instead of the old one; `buf` then follows it.
    rotate: Option<Vec<u8>>,
    closing: bool,
}

struct Io {
    storage: Box<dyn Storage>,
    /// The reason the journal stopped; nothing is written after a failure, so a partial write
    /// stays the file's torn tail.
    failed: Option<String>,
    /// A spare buffer, swapped with `Pending::buf`, so steady appends allocate nothing.
    spare: Vec<u8>,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    io: Mutex<Io>,
    committed: AtomicU64,
    failed: AtomicBool,
}

impl Shared {
    /// Writes and syncs everything pending, in order. Holding `io` while taking the group
    /// keeps groups in order between the writer thread and `flush_now`.
    fn flush(&self) -> std::result::Result<Option<u64>, String> {
        let mut io = self.io.lock();
        if let Some(e) = &io.failed {
            return Err(e.clone());
        }
        let mut buf = std::mem::take(&mut io.spare);
        let (rotate, seq) = {
            let mut p = self.pending.lock();
            std::mem::swap(&mut buf, &mut p.buf);
            (p.rotate.take(), p.seq)
        };
        if buf.is_empty() && rotate.is_none() {
            io.spare = buf;
            return Ok(None);
        }
        let result = match rotate {
            Some(mut contents) => {
                contents.extend_from_slice(&buf);
                io.storage.replace_durable(&contents)
            }
            None => io.storage.append_durable(&buf),
        };
        buf.clear();
        io.spare = buf;
        match result {
            Ok(()) => {
                self.committed.store(seq, Ordering::Release);
                Ok(Some(seq))
            }
            Err(e) => {
                let msg = e.to_string();
                io.failed = Some(msg.clone());
                self.failed.store(true, Ordering::Release);
                Err(msg)
            }
        }
    }
}

/// The writer thread and the buffer it drains.
pub struct Writer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    path: String,
}

impl Writer {
    /// Starts the writer thread. `first_seq` is the sequence number already durable.
    pub fn start(storage: Box<dyn Storage>, path: &str, notify: Notify) -> Result<Writer> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                buf: Vec::with_capacity(64 * 1024),
                seq: 0,
                rotate: None,
                closing: false,
            }),
            wake: Condvar::new(),
            io: Mutex::new(Io {
                storage,
                failed: None,
                spare: Vec::with_capacity(64 * 1024),
            }),
            committed: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("breakwater-journal".into())
            .spawn(move || run(&s, &notify))
            .map_err(|e| io_error(path, "cannot start its writer thread", e))?;
        Ok(Writer {
            shared,
            thread: Some(thread),
            path: path.to_string(),
        })
    }

    fn stopped(&self) -> Error {
        let detail = self
            .shared
            .io
            .try_lock()
            .and_then(|io| io.failed.clone())
            .unwrap_or_else(|| "an earlier write failed".to_string());
        Error::JournalIo {
            path: self.path.clone(),
            detail: format!("the journal stopped after a failed write ({detail}); nothing more is written to it"),
        }
    }

    /// Appends the records that `write` encodes (one or more); returns the sequence number of
    /// the last. Refused once a write has failed.
    pub fn append(&self, records: u64, write: impl FnOnce(&mut Vec<u8>)) -> Result<u64> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(self.stopped());
        }
        let seq = {
            let mut p = self.shared.pending.lock();
            if p.closing {
                return Err(Error::QueueClosed);
            }
            write(&mut p.buf);
            p.seq += records;
            p.seq
        };
        self.shared.wake.notify_one();
        Ok(seq)
    }

    /// Replaces the journal with `contents` (a header and a snapshot of the state); records
    /// appended but not yet written are dropped, as the snapshot covers them.
    pub fn rotate(&self, contents: Vec<u8>) -> Result<u64> {
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(self.stopped());
        }
        let seq = {
            let mut p = self.shared.pending.lock();
            if p.closing {
                return Err(Error::QueueClosed);
            }
            p.buf.clear();
            p.rotate = Some(contents);
            p.seq += 1;
            p.seq
        };
        self.shared.wake.notify_one();
        Ok(seq)
    }

    /// The last sequence number known durable.
    pub fn committed(&self) -> u64 {
        self.shared.committed.load(Ordering::Acquire)
    }

    /// The last sequence number appended.
    pub fn appended(&self) -> u64 {
        self.shared.pending.lock().seq
    }

    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Writes and syncs everything pending on the calling thread (at exit, or in `close`);
    /// returns the last durable sequence number.
    pub fn flush_now(&self) -> Result<u64> {
        match self.shared.flush() {
            Ok(_) => Ok(self.committed()),
            Err(_) => Err(self.stopped()),
        }
    }

    /// Flushes, stops the thread and waits for it. Appends after this are refused.
    pub fn close(&mut self) -> Result<u64> {
        self.shared.pending.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.flush_now()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn run(shared: &Shared, notify: &Notify) {
    loop {
        {
            let mut p = shared.pending.lock();
            while p.buf.is_empty() && p.rotate.is_none() && !p.closing {
                shared.wake.wait(&mut p);
            }
            if p.buf.is_empty() && p.rotate.is_none() && p.closing {
                return;
            }
        }
        match shared.flush() {
            Ok(Some(seq)) => notify(seq, None),
            Ok(None) => {}
            Err(msg) => {
                let seq = shared.pending.lock().seq;
                notify(seq, Some(msg));
                return;
            }
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Memory that can be told to fail, with a count of syncs.
    #[derive(Clone, Default)]
    pub struct MemStorage {
        pub data: Arc<Mutex<Vec<u8>>>,
        pub syncs: Arc<AtomicU64>,
        pub fail: Arc<AtomicBool>,
    }

    impl Storage for MemStorage {
        fn append_durable(&mut self, bytes: &[u8]) -> io::Result<()> {
            if self.fail.load(Ordering::Acquire) {
                // Half the bytes reach the disk, as in a real failure mid-write.
                self.data
                    .lock()
                    .extend_from_slice(&bytes[..bytes.len() / 2]);
                return Err(io::Error::other("disk full"));
            }
            self.data.lock().extend_from_slice(bytes);
            self.syncs.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }
        fn replace_durable(&mut self, contents: &[u8]) -> io::Result<()> {
            if self.fail.load(Ordering::Acquire) {
                return Err(io::Error::other("disk full"));
            }
            *self.data.lock() = contents.to_vec();
            self.syncs.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }
    }

    fn writer(mem: &MemStorage) -> (Writer, mpsc::Receiver<(u64, Option<String>)>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let w = Writer::start(
            Box::new(mem.clone()),
            "mem",
            Box::new(move |seq, err| {
                let _ = tx.lock().send((seq, err));
            }),
        )
        .unwrap();
        (w, rx)
    }

    fn wait_for(rx: &mpsc::Receiver<(u64, Option<String>)>, seq: u64) -> Option<String> {
        loop {
            let (s, err) = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("no notification within 10 s");
            if err.is_some() {
                return err;
            }
            if s >= seq {
                return None;
            }
        }
    }

    #[test]
    fn records_become_durable_in_order_and_are_reported() {
        let mem = MemStorage::default();
        let (w, rx) = writer(&mem);
        let mut last = 0;
        for i in 0..1_000u32 {
            last = w
                .append(1, |b| b.extend_from_slice(&i.to_le_bytes()))
                .unwrap();
        }
        assert_eq!(last, 1_000);
        assert_eq!(wait_for(&rx, last), None);
        assert_eq!(w.committed(), 1_000);
        let data = mem.data.lock().clone();
        let got: Vec<u32> = data
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, (0..1_000).collect::<Vec<_>>());
        // Group commit: far fewer syncs than records (the appends outrun the thread).
        assert!(mem.syncs.load(Ordering::Acquire) <= 1_000);
    }

    #[test]
    fn rotate_replaces_the_file_and_keeps_what_follows() {
        let mem = MemStorage::default();
        let (w, rx) = writer(&mem);
        let a = w.append(1, |b| b.extend_from_slice(b"old")).unwrap();
        wait_for(&rx, a);
        w.rotate(b"SNAP".to_vec()).unwrap();
        let c = w.append(1, |b| b.extend_from_slice(b"+new")).unwrap();
        wait_for(&rx, c);
        assert_eq!(&mem.data.lock()[..], b"SNAP+new");
    }

    #[test]
    fn a_failed_write_stops_the_journal_and_says_why() {
        let mem = MemStorage::default();
        let (w, rx) = writer(&mem);
        mem.fail.store(true, Ordering::Release);
        let s = w.append(1, |b| b.extend_from_slice(b"abcd")).unwrap();
        let err = wait_for(&rx, s).expect("an error");
        assert!(err.contains("disk full"), "{err}");
        assert!(w.failed());
        let e = w.append(1, |b| b.push(1)).unwrap_err();
        assert_eq!(e.code(), "ERR_JOURNAL_IO");
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(w.committed(), 0);
    }

    #[test]
    fn close_flushes_and_refuses_later_appends() {
        let mem = MemStorage::default();
        let (mut w, _rx) = writer(&mem);
        w.append(1, |b| b.extend_from_slice(b"xyz")).unwrap();
        assert_eq!(w.close().unwrap(), 1);
        assert_eq!(&mem.data.lock()[..], b"xyz");
        assert_eq!(
            w.append(1, |b| b.push(0)).unwrap_err().code(),
            "ERR_QUEUE_CLOSED"
        );
    }

    fn temp_path(name: &str) -> String {
        let dir =
            std::env::temp_dir().join(format!("breakwater-storage-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("q.journal").display().to_string()
    }

    #[test]
    fn a_journal_is_locked_to_one_queue() {
        let path = temp_path("lock");
        let lock = Lock::acquire(&path).unwrap();
        let e = Lock::acquire(&path).unwrap_err();
        assert_eq!(e.code(), "ERR_JOURNAL_LOCKED");
        drop(lock);
        let again = Lock::acquire(&path);
        assert!(again.is_ok());
        drop(again);
        let _ = std::fs::remove_dir_all(Path::new(&path).parent().unwrap());
    }

    #[test]
    fn files_append_truncate_and_replace_durably() {
        let path = temp_path("file");
        let _ = std::fs::remove_file(&path);
        let mut o = FileStorage::open(&path).unwrap();
        assert!(o.contents.is_empty());
        o.storage.create(b"HEAD").unwrap();
        o.storage.append_durable(b"1234").unwrap();
        o.storage.truncate(6).unwrap();
        o.storage.append_durable(b"zz").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"HEAD12zz");
        o.storage.replace_durable(b"NEW").unwrap();
        o.storage.append_durable(b"+").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"NEW+");
        drop(o);
        assert_eq!(FileStorage::open(&path).unwrap().contents, b"NEW+");
        let dir = Path::new(&path).parent().unwrap().to_path_buf();
        let e = FileStorage::open(&dir.display().to_string()).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
