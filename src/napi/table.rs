//! The process-wide table of native breakers, by numeric id, shared by every JS thread
//! (main thread and `worker_threads`). Breakers registered under a name are found by that name
//! from any thread; each JS wrapper holds a reference, released by a FinalizationRegistry or,
//! for a thread that exits, by the thread's environment cleanup hook.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::core::breaker::Breaker;

use super::page;

pub type Cell = Arc<Mutex<Breaker>>;

/// Ids are `slot + generation × 2^24`: a slot freed and reused gets a new generation, so a late
/// batch entry of a dropped breaker can never count for the next one.
const SLOT_BITS: u32 = 24;
const SLOT_SPACE: f64 = (1u64 << SLOT_BITS) as f64;

pub static TABLE: Mutex<Table> = Mutex::new(Table {
    slots: Vec::new(),
    free: Vec::new(),
    named: None,
});

struct Slot {
    generation: u32,
    cell: Option<Cell>,
    /// JS wrappers (on any thread) holding this breaker.
    refs: u32,
    name: Option<String>,
}

pub struct Table {
    slots: Vec<Slot>,
    free: Vec<usize>,
    named: Option<HashMap<String, f64>>,
}

pub fn split(id: f64) -> (usize, u32) {
    let id = id as u64;
    (
        (id & ((1 << SLOT_BITS) - 1)) as usize,
        (id >> SLOT_BITS) as u32,
    )
}

/// The slot of an id: its index into the state pages.
pub fn slot_of(id: f64) -> usize {
    split(id).0
}

pub enum Created {
    New(f64),
    /// An existing breaker of that name, and its config (for the caller to compare).
    Existing(f64, Cell),
}

impl Table {
    /// A new breaker, or with `name` the existing one of that name, referenced once more.
    /// `None` when the page capacity is exhausted.
    pub fn create(
        &mut self,
        name: Option<&str>,
        make: impl FnOnce() -> Breaker,
    ) -> Option<Created> {
        if let Some(name) = name {
            if let Some(&id) = self.named.as_ref().and_then(|m| m.get(name)) {
                let (slot, _) = split(id);
                if let Some(s) = self.slots.get_mut(slot) {
                    if let Some(cell) = &s.cell {
                        s.refs += 1;
                        return Some(Created::Existing(id, cell.clone()));
                    }
                }
            }
        }
        let slot = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < page::CAPACITY => {
                self.slots.push(Slot {
                    generation: 0,
                    cell: None,
                    refs: 0,
                    name: None,
                });
                self.slots.len() - 1
            }
            None => return None,
        };
        let cell: Cell = Arc::new(Mutex::new(make()));
        {
            let b = cell.lock();
            page::publish(slot, b.word(), b.open_until());
        }
        let s = &mut self.slots[slot];
        s.generation = s.generation.wrapping_add(1) & 0x1F_FFFF; // ids stay below 2^45
        s.cell = Some(cell);
        s.refs = 1;
        s.name = name.map(str::to_string);
        let id = slot as f64 + f64::from(s.generation) * SLOT_SPACE;
        if let Some(name) = name {
            self.named
                .get_or_insert_with(HashMap::new)
                .insert(name.to_string(), id);
        }
        Some(Created::New(id))
    }

    pub fn get(&self, id: f64) -> Option<&Cell> {
        let (slot, generation) = split(id);
        let s = self.slots.get(slot)?;
        if s.generation == generation {
            s.cell.as_ref()
        } else {
            None
        }
    }

    /// The breaker with this id, and whether it is named (process-wide, so shared).
    pub fn get_named(&self, id: f64) -> Option<(&Cell, bool)> {
        let (slot, generation) = split(id);
        let s = self.slots.get(slot)?;
        if s.generation != generation {
            return None;
        }
        Some((s.cell.as_ref()?, s.name.is_some()))
    }

    /// The name of a live named breaker.
    pub fn name_of(&self, id: f64) -> Option<String> {
        let (slot, generation) = split(id);
        let s = self.slots.get(slot)?;
        if s.generation != generation || s.cell.is_none() {
            return None;
        }
        s.name.clone()
    }

    /// The live breaker of that name, with its id.
    pub fn find_named(&self, name: &str) -> Option<(f64, Cell)> {
        let id = *self.named.as_ref()?.get(name)?;
        Some((id, self.get(id)?.clone()))
    }

    /// Every live named breaker, as `(id, name)`.
    pub fn named(&self) -> Vec<(f64, String)> {
        self.named
            .iter()
            .flatten()
            .filter(|(_, id)| self.get(**id).is_some())
            .map(|(name, id)| (*id, name.clone()))
            .collect()
    }

    /// Drops one reference; the breaker goes when the last one does.
    pub fn release(&mut self, id: f64) {
        if self.get(id).is_none() {
            return;
        }
        let (slot, _) = split(id);
        let s = &mut self.slots[slot];
        s.refs = s.refs.saturating_sub(1);
        if s.refs == 0 {
            s.cell = None;
            if let Some(name) = s.name.take() {
                if let Some(m) = &mut self.named {
                    if m.get(&name) == Some(&id) {
                        m.remove(&name);
                    }
                }
            }
            self.free.push(slot);
        }
    }

    /// Live breakers and named ones (for tests and diagnostics).
    pub fn counts(&self) -> (u32, u32) {
        let live = self.slots.iter().filter(|s| s.cell.is_some()).count() as u32;
        let named = self.named.as_ref().map_or(0, |m| m.len() as u32);
        (live, named)
    }

    /// Every live breaker with its slot, for a new state page to copy.
    pub fn each(&self, mut f: impl FnMut(usize, &Cell)) {
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(c) = &s.cell {
                f(i, c);
            }
        }
    }
}

thread_local! {
    /// References held by JS wrappers on this thread: released together if the thread's
    /// environment goes away (a worker that exits) before its wrappers are collected.
    static HELD: RefCell<HashMap<u64, u32>> = RefCell::new(HashMap::new());
}

pub fn hold(id: f64) {
    HELD.with(|h| *h.borrow_mut().entry(id.to_bits()).or_insert(0) += 1);
}

/// Releases one reference held by this thread (a wrapper was collected).
pub fn unhold(id: f64) {
    let held = HELD.with(|h| {
        let mut h = h.borrow_mut();
        match h.get_mut(&id.to_bits()) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                h.remove(&id.to_bits());
                true
            }
            None => false,
        }
    });
    if held {
        TABLE.lock().release(id);
    }
}

/// Releases every reference this thread still holds (its environment is being torn down).
pub fn release_thread() {
    let all: Vec<(u64, u32)> = HELD.with(|h| h.borrow_mut().drain().collect());
    let mut t = TABLE.lock();
    for (bits, n) in all {
        for _ in 0..n {
            t.release(f64::from_bits(bits));
        }
    }
}
