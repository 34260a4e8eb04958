//! The journal's format: a 16-byte header, then records, each framed as
//! `body length (u32 LE) | CRC-32 of the body (u32 LE) | body`. Encoding and scanning are pure
//! functions over bytes; the files themselves are handled in `storage.rs`.
//!
//! A crash can only damage the end of an append-only file, so a bad record is a torn tail
//! (skipped, earlier records kept) when it runs to the end of the file or is followed only by
//! zeros; anywhere else it is corruption, reported with the file and the offset.

use crate::core::error::{Error, Result};

/// "BWQJ", then the format version.
pub const MAGIC: [u8; 8] = *b"BWQJ\x00\x00\x00\x01";
pub const HEADER_LEN: usize = 16;
/// Length and checksum.
pub const FRAME_LEN: usize = 8;
/// A larger length field is garbage, not a record.
pub const MAX_RECORD_LEN: usize = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// `maxRetryAttempts` attempts failed.
    MaxAttempts,
    /// Older than `queueTtlMs`.
    Expired,
}

impl DeadReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::MaxAttempts => "max_attempts",
            DeadReason::Expired => "expired",
        }
    }

    fn code(self) -> u8 {
        match self {
            DeadReason::MaxAttempts => 1,
            DeadReason::Expired => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(DeadReason::MaxAttempts),
            2 => Some(DeadReason::Expired),
            _ => None,
        }
    }
}

/// The whole state of one item: written when it is enqueued, and for every live item and dead
/// letter when the journal is compacted.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    pub id: u64,
    pub service: String,
    pub operation: String,
    /// JSON text.
    pub payload: String,
    pub key: Option<String>,
    pub enqueued_at: f64,
    pub due_at: f64,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Set for a dead letter: when, and why.
    pub dead: Option<(f64, DeadReason)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Put(ItemRecord),
    /// An attempt started; `attempts` counts it.
    Attempt {
        id: u64,
        attempts: u32,
    },
    /// An attempt failed (or the item had to wait) and is due again at `due_at`.
    Retry {
        id: u64,
        due_at: f64,
        error: Option<String>,
    },
    Done {
        id: u64,
        at: f64,
    },
    Dead {
        id: u64,
        at: f64,
        reason: DeadReason,
        error: Option<String>,
    },
    /// A completed item's idempotency key, still remembered (written by compaction).
    Remember {
        id: u64,
        at: f64,
        key: String,
    },
    /// A dead letter was cleared.
    Clear {
        id: u64,
    },
    /// Ids below this were given out (written by compaction, so ids are never reused).
    NextId {
        next: u64,
    },
}

const PUT: u8 = 1;
const ATTEMPT: u8 = 2;
const RETRY: u8 = 3;
const DONE: u8 = 4;
const DEAD: u8 = 5;
const REMEMBER: u8 = 6;
const CLEAR: u8 = 7;
const NEXT_ID: u8 = 8;

pub fn header(epoch: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..].copy_from_slice(&epoch.to_le_bytes());
    h
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
        None => out.push(0),
    }
}

fn str_len(s: &str) -> usize {
    4 + s.len()
}

fn opt_len(s: Option<&str>) -> usize {
    1 + s.map_or(0, str_len)
}

/// An item's fields, borrowed: what a `Put` record holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemFields<'a> {
    pub id: u64,
    pub service: &'a str,
    pub operation: &'a str,
    pub payload: &'a str,
    pub key: Option<&'a str>,
    pub enqueued_at: f64,
    pub due_at: f64,
    pub attempts: u32,
    pub last_error: Option<&'a str>,
    pub dead: Option<(f64, DeadReason)>,
}

impl ItemRecord {
    pub fn fields(&self) -> ItemFields<'_> {
        ItemFields {
            id: self.id,
            service: &self.service,
            operation: &self.operation,
            payload: &self.payload,
            key: self.key.as_deref(),
            enqueued_at: self.enqueued_at,
            due_at: self.due_at,
            attempts: self.attempts,
            last_error: self.last_error.as_deref(),
            dead: self.dead,
        }
    }
}

/// The framed size of a `Put` of this item, without encoding it (for the compaction budget).
pub fn put_size(r: &ItemFields<'_>) -> usize {
    FRAME_LEN
        + 1
        + 8 * 3
        + 4
        + str_len(r.service)
        + str_len(r.operation)
        + str_len(r.payload)
        + opt_len(r.key)
        + opt_len(r.last_error)
        + 1
        + r.dead.map_or(0, |_| 8)
}

/// The framed size of a `Remember` record.
pub fn remember_size(key: &str) -> usize {
    FRAME_LEN + 1 + 8 + 8 + str_len(key)
}

/// Writes the frame of the body that starts at `start + FRAME_LEN`; returns the framed length.
fn seal(out: &mut [u8], start: usize) -> usize {
    let body_len = out.len() - start - FRAME_LEN;
    let crc = crc32fast::hash(&out[start + FRAME_LEN..]);
    out[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.len() - start
}

/// Appends one framed `Put` record to `out`; returns its framed length.
pub fn encode_put(r: &ItemFields<'_>, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_LEN]);
    out.push(PUT);
    out.extend_from_slice(&r.id.to_le_bytes());
    out.extend_from_slice(&r.enqueued_at.to_le_bytes());
    out.extend_from_slice(&r.due_at.to_le_bytes());
    out.extend_from_slice(&r.attempts.to_le_bytes());
    put_str(out, r.service);
    put_str(out, r.operation);
    put_str(out, r.payload);
    put_opt(out, r.key);
    put_opt(out, r.last_error);
    match r.dead {
        Some((at, reason)) => {
            out.push(reason.code());
            out.extend_from_slice(&at.to_le_bytes());
        }
        None => out.push(0),
    }
    seal(out, start)
}

/// Appends one framed record to `out`; returns its framed length.
pub fn encode(rec: &Record, out: &mut Vec<u8>) -> usize {
    if let Record::Put(r) = rec {
        return encode_put(&r.fields(), out);
    }
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_LEN]);
    match rec {
        Record::Put(_) => {}
        Record::Attempt { id, attempts } => {
            out.push(ATTEMPT);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&attempts.to_le_bytes());
        }
        Record::Retry { id, due_at, error } => {
            out.push(RETRY);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&due_at.to_le_bytes());
            put_opt(out, error.as_deref());
        }
        Record::Done { id, at } => {
            out.push(DONE);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&at.to_le_bytes());
        }
        Record::Dead {
            id,
            at,
            reason,
            error,
        } => {
            out.push(DEAD);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&at.to_le_bytes());
            out.push(reason.code());
            put_opt(out, error.as_deref());
        }
        Record::Remember { id, at, key } => {
            out.push(REMEMBER);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&at.to_le_bytes());
            put_str(out, key);
        }
        Record::Clear { id } => {
            out.push(CLEAR);
            out.extend_from_slice(&id.to_le_bytes());
        }
        Record::NextId { next } => {
            out.push(NEXT_ID);
            out.extend_from_slice(&next.to_le_bytes());
        }
    }
    seal(out, start)
}

/// Reads a body. Every getter returns `None` past the end, so a short body is an error, never
/// a panic.
struct Body<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).ok()
    }
    fn opt(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.str().map(Some),
            _ => None,
        }
    }
}

/// Decodes one body; `Err` says what is wrong with it.
pub fn decode(body: &[u8]) -> std::result::Result<Record, String> {
    let mut b = Body { b: body, at: 0 };
    let tag = b.u8().ok_or("an empty record")?;
    let bad = || format!("a malformed record of type {tag}");
    let rec = match tag {
        PUT => (|| {
            let id = b.u64()?;
            let enqueued_at = b.f64()?;
            let due_at = b.f64()?;
            let attempts = b.u32()?;
            let service = b.str()?;
            let operation = b.str()?;
            let payload = b.str()?;
            let key = b.opt()?;
            let last_error = b.opt()?;
            let dead = match b.u8()? {
                0 => None,
                c => Some((b.f64()?, DeadReason::from_code(c)?)),
            };
            Some(Record::Put(ItemRecord {
                id,
                service,
                operation,
                payload,
                key,
                enqueued_at,
                due_at,
                attempts,
                last_error,
                dead,
            }))
        })(),
        ATTEMPT => (|| {
            Some(Record::Attempt {
                id: b.u64()?,
                attempts: b.u32()?,
            })
        })(),
        RETRY => (|| {
            Some(Record::Retry {
                id: b.u64()?,
                due_at: b.f64()?,
                error: b.opt()?,
            })
        })(),
        DONE => (|| {
            Some(Record::Done {
                id: b.u64()?,
                at: b.f64()?,
            })
        })(),
        DEAD => (|| {
            Some(Record::Dead {
                id: b.u64()?,
                at: b.f64()?,
                reason: DeadReason::from_code(b.u8()?)?,
                error: b.opt()?,
            })
        })(),
        REMEMBER => (|| {
            Some(Record::Remember {
                id: b.u64()?,
                at: b.f64()?,
                key: b.str()?,
            })
        })(),
        CLEAR => (|| Some(Record::Clear { id: b.u64()? }))(),
        NEXT_ID => (|| Some(Record::NextId { next: b.u64()? }))(),
        other => {
            return Err(format!(
                "an unknown record type {other} (written by a newer version of breakwater?)"
            ))
        }
    };
    match rec {
        Some(r) if b.at == body.len() => Ok(r),
        _ => Err(bad()),
    }
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// `None` for an empty (or never completed) file: a new journal.
    pub epoch: Option<u64>,
    /// The length of the valid prefix: the file is cut back to this before appending.
    pub valid_len: u64,
    pub records: u64,
    /// Bytes of a torn tail that were skipped.
    pub torn_bytes: u64,
}

fn corrupt(path: &str, offset: usize, detail: impl Into<String>) -> Error {
    Error::CorruptJournal {
        path: path.to_string(),
        offset: offset as u64,
        detail: detail.into(),
    }
}

/// Checks the header and feeds every complete record to `apply`, in order. A torn tail is
/// reported in the result, not as an error. `apply` may refuse a record (a `Done` for an item
/// never enqueued is fine, but a record that breaks an invariant is not) by returning `Err`.
pub fn scan(
    path: &str,
    bytes: &[u8],
    mut apply: impl FnMut(Record) -> std::result::Result<(), String>,
) -> Result<Scan> {
    if bytes.len() < HEADER_LEN {
        // A crash while the header was first written leaves a prefix of it (or zeros).
        let n = bytes.len().min(MAGIC.len());
        let prefix_ok = bytes.iter().all(|&b| b == 0) || bytes[..n] == MAGIC[..n];
        if prefix_ok {
            return Ok(Scan {
                epoch: None,
                valid_len: 0,
                records: 0,
                torn_bytes: bytes.len() as u64,
            });
        }
        return Err(corrupt(
            path,
            0,
            "this is not a breakwater queue journal (it does not start with the BWQJ header)",
        ));
    }
    if bytes[..8] != MAGIC {
        let detail = if bytes[..4] == MAGIC[..4] {
            format!(
                "the journal format version {} is not supported by this version of breakwater",
                u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]])
            )
        } else {
            "this is not a breakwater queue journal (it does not start with the BWQJ header)"
                .to_string()
        };
        return Err(corrupt(path, 0, detail));
    }
    let epoch = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0; 8]));
    let mut at = HEADER_LEN;
    let mut records = 0u64;
    let zeros_from = |i: usize| bytes[i..].iter().all(|&b| b == 0);
    while at < bytes.len() {
        let rest = bytes.len() - at;
        let torn = || -> Result<Scan> {
            Ok(Scan {
                epoch: Some(epoch),
                valid_len: at as u64,
                records,
                torn_bytes: rest as u64,
            })
        };
        if rest < FRAME_LEN {
            return torn();
        }
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        if len > rest - FRAME_LEN {
            return torn();
        }
        let end = at + FRAME_LEN + len;
        let body = &bytes[at + FRAME_LEN..end];
        let last = end == bytes.len();
        let problem = if len == 0 || len > MAX_RECORD_LEN {
            Some(format!("a record of impossible length {len}"))
        } else if crc32fast::hash(body) != crc {
            Some("a record whose checksum does not match".to_string())
        } else {
            match decode(body) {
                Ok(rec) => match apply(rec) {
                    Ok(()) => None,
                    Err(e) => return Err(corrupt(path, at, e)),
                },
                Err(e) => Some(e),
            }
        };
        if let Some(detail) = problem {
            if last || zeros_from(at) {
                return torn();
            }
            return Err(corrupt(
                path,
                at,
                format!("{detail}, followed by {} more bytes", bytes.len() - end),
            ));
        }
        records += 1;
        at = end;
    }
    Ok(Scan {
        epoch: Some(epoch),
        valid_len: at as u64,
        records,
        torn_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: u64) -> ItemRecord {
        ItemRecord {
            id,
            service: "meta_api".into(),
            operation: "publish_ad".into(),
            payload: format!("{{\"ad\":{id}}}"),
            key: Some(format!("ad-{id}")),
            enqueued_at: 1_000.0,
            due_at: 61_000.0,
            attempts: 0,
            last_error: None,
            dead: None,
        }
    }

    fn all_kinds() -> Vec<Record> {
        let mut dead = item(2);
        dead.dead = Some((5.0, DeadReason::Expired));
        dead.last_error = Some("HTTP 503".into());
        dead.key = None;
        vec![
            Record::Put(item(1)),
            Record::Put(dead),
            Record::Attempt { id: 1, attempts: 1 },
            Record::Retry {
                id: 1,
                due_at: 9.5,
                error: Some("timeout".into()),
            },
            Record::Retry {
                id: 1,
                due_at: 9.5,
                error: None,
            },
            Record::Done { id: 1, at: 10.0 },
            Record::Dead {
                id: 1,
                at: 11.0,
                reason: DeadReason::MaxAttempts,
                error: Some("e".into()),
            },
            Record::Remember {
                id: 1,
                at: 12.0,
                key: "k".into(),
            },
            Record::Clear { id: 1 },
            Record::NextId { next: 77 },
        ]
    }

    fn journal(records: &[Record]) -> Vec<u8> {
        let mut out = header(42).to_vec();
        for r in records {
            encode(r, &mut out);
        }
        out
    }

    fn read(bytes: &[u8]) -> Result<(Scan, Vec<Record>)> {
        let mut got = Vec::new();
        let s = scan("q.journal", bytes, |r| {
            got.push(r);
            Ok(())
        })?;
        Ok((s, got))
    }

    #[test]
    fn every_record_kind_round_trips() {
        let recs = all_kinds();
        let bytes = journal(&recs);
        let (s, got) = read(&bytes).unwrap();
        assert_eq!(got, recs);
        assert_eq!(s.epoch, Some(42));
        assert_eq!(s.records, recs.len() as u64);
        assert_eq!(s.valid_len, bytes.len() as u64);
        assert_eq!(s.torn_bytes, 0);
    }

    #[test]
    fn put_size_matches_the_encoding() {
        for r in all_kinds() {
            let mut out = Vec::new();
            let n = encode(&r, &mut out);
            match &r {
                Record::Put(i) => assert_eq!(put_size(&i.fields()), n),
                Record::Remember { key, .. } => assert_eq!(remember_size(key), n),
                _ => {}
            }
        }
    }

    #[test]
    fn a_torn_last_record_is_skipped_at_every_cut_point() {
        let recs = all_kinds();
        let full = journal(&recs);
        let before_last = journal(&recs[..recs.len() - 1]).len();
        for cut in before_last..full.len() {
            let (s, got) = read(&full[..cut]).unwrap();
            assert_eq!(got, recs[..recs.len() - 1], "cut at {cut}");
            assert_eq!(s.valid_len, before_last as u64);
            assert_eq!(s.torn_bytes, (cut - before_last) as u64);
        }
    }

    #[test]
    fn a_bad_checksum_in_the_last_record_is_a_torn_tail() {
        let recs = all_kinds();
        let mut bytes = journal(&recs);
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        let (s, got) = read(&bytes).unwrap();
        assert_eq!(got.len(), recs.len() - 1);
        assert!(s.torn_bytes > 0);
    }

    #[test]
    fn a_zero_filled_tail_is_torn_not_corrupt() {
        let mut bytes = journal(&all_kinds()[..3]);
        let valid = bytes.len();
        bytes.extend_from_slice(&[0u8; 4096]);
        let (s, got) = read(&bytes).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(s.valid_len, valid as u64);
    }

    #[test]
    fn damage_in_the_middle_is_corruption_naming_file_and_offset() {
        let recs = all_kinds();
        let mut bytes = journal(&recs);
        let second = HEADER_LEN + {
            let mut v = Vec::new();
            encode(&recs[0], &mut v)
        };
        bytes[second + FRAME_LEN + 3] ^= 0x55;
        let e = read(&bytes).unwrap_err();
        assert_eq!(e.code(), "ERR_CORRUPT_JOURNAL");
        let m = e.to_string();
        assert!(m.contains("\"q.journal\""), "{m}");
        assert!(m.contains(&format!("at byte {second}")), "{m}");
        assert!(m.contains("checksum"), "{m}");
    }

    #[test]
    fn a_foreign_file_or_a_newer_version_is_refused() {
        let e = read(b"{\"not\": \"a journal\"}").unwrap_err();
        assert!(
            e.to_string().contains("not a breakwater queue journal"),
            "{e}"
        );
        let mut bytes = journal(&[]);
        bytes[7] = 9;
        let e = read(&bytes).unwrap_err();
        assert!(e.to_string().contains("format version 9"), "{e}");
        assert!(read(b"short").is_err());
    }

    #[test]
    fn an_empty_or_half_written_header_is_a_new_journal() {
        for n in 0..HEADER_LEN {
            let bytes = &header(7)[..n];
            let (s, got) = read(bytes).unwrap();
            assert_eq!(s.epoch, None, "{n} bytes");
            assert!(got.is_empty());
        }
    }

    #[test]
    fn a_record_that_apply_refuses_is_corruption() {
        let bytes = journal(&all_kinds()[..2]);
        let e = scan("q", &bytes, |_| Err("duplicate id 1".into())).unwrap_err();
        assert!(e.to_string().contains("duplicate id 1"), "{e}");
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            &[][..],
            &[PUT][..],
            &[PUT, 1, 2, 3][..],
            &[RETRY, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7][..],
            &[99][..],
            &[CLEAR, 0, 0, 0, 0, 0, 0, 0, 0, 1][..],
        ] {
            assert!(decode(body).is_err(), "{body:?}");
        }
        // A string length past the end of the body.
        let mut b = vec![REMEMBER];
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&b).is_err());
    }
}
