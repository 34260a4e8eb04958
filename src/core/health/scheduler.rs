//! What is due, and when: one min-heap of due times for every service of a monitor, on the
//! monitor's clock (every method takes `now`). Each service checks on its own grid,
//! `anchor + phase + k × interval`; the phases are spread over the interval by a golden-ratio
//! sequence, so a thousand services registered together are checked evenly through the
//! interval instead of all at once, whatever their number.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Wake-ups closer together than this are merged: a check may start up to this late, so that a
/// monitor wakes at most 40 times a second however many services it has (a thousand services
/// with one-second intervals would otherwise mean a thousand wake-ups a second). A wake-up is
/// what costs: 30 to 160 µs of CPU on a loaded 2-core VM, against about 6 µs per check run.
pub const MIN_TICK_MS: f64 = 25.0;

/// The `k`-th registered service's offset into its interval: `frac(k / φ) × interval`, exact
/// in 64-bit fixed point (a Weyl sequence). Any run of consecutive `k` is spread evenly.
pub fn stagger_phase(k: u64, interval_ms: f64) -> f64 {
    let frac = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) as f64 / 18_446_744_073_709_551_616.0;
    frac * interval_ms
}

/// The first grid point strictly after `now`, on the grid through `due` with step `interval`.
/// Missed slots (a suspended process, a long `ManualClock` jump) are skipped, not caught up.
pub fn next_slot(due: f64, interval_ms: f64, now: f64) -> f64 {
    let behind = ((now - due) / interval_ms).floor().max(0.0);
    let mut next = due + (behind + 1.0) * interval_ms;
    while next <= now {
        // Rounding can land exactly on `now`.
        next += interval_ms;
    }
    next
}

/// A service's place in the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub phase_ms: f64,
    pub next_due: f64,
    /// Bumped on every reschedule, so heap entries for an older due time are recognised as
    /// stale and dropped when they surface (deletion from the heap is lazy).
    pub stamp: u32,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    due: f64,
    id: u32,
    stamp: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Ties by id: services registered first run first.
        self.due
            .total_cmp(&other.due)
            .then(self.id.cmp(&other.id))
            .then(self.stamp.cmp(&other.stamp))
    }
}

#[derive(Debug, Default)]
pub struct Scheduler {
    heap: BinaryHeap<Reverse<Entry>>,
    last_take: Option<f64>,
}

impl Scheduler {
    /// Puts a service at `due`, replacing any earlier place it had.
    pub fn schedule(&mut self, id: u32, slot: &mut Slot, due: f64) {
        slot.next_due = due;
        slot.stamp = slot.stamp.wrapping_add(1);
        self.heap.push(Reverse(Entry {
            due,
            id,
            stamp: slot.stamp,
        }));
    }

    /// Forgets every place (before everything is scheduled afresh).
    pub fn clear(&mut self) {
        self.heap.clear();
        self.last_take = None;
    }

    /// Notes that the due services were taken at `now` (for merging wake-ups).
    pub fn taken_at(&mut self, now: f64) {
        self.last_take = Some(now);
    }

    /// The earliest entry due at `now`, as `(id, stamp, due)`; the caller checks the stamp.
    pub fn pop_due(&mut self, now: f64) -> Option<(u32, u32, f64)> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.due <= now => {
                let e = *e;
                self.heap.pop();
                Some((e.id, e.stamp, e.due))
            }
            _ => None,
        }
    }

    /// When the driver should next take the due services: the earliest live due time, but no
    /// sooner than `MIN_TICK_MS` after the last take. `live(id, stamp)` says whether an entry
    /// is current; stale entries on top are dropped here.
    pub fn next_wake(&mut self, live: impl Fn(u32, u32) -> bool) -> Option<f64> {
        while let Some(Reverse(e)) = self.heap.peek() {
            if live(e.id, e.stamp) {
                let due = e.due;
                return Some(match self.last_take {
                    Some(t) => due.max(t + MIN_TICK_MS),
                    None => due,
                });
            }
            self.heap.pop();
        }
        None
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_spread_a_thousand_services_over_the_interval() {
        let interval = 1_000.0;
        let mut buckets = [0u32; 10];
        for k in 0..1_000 {
            let p = stagger_phase(k, interval);
            assert!((0.0..interval).contains(&p), "{p}");
            buckets[(p / 100.0) as usize] += 1;
        }
        // Each tenth of the interval gets 100 ± 2 services.
        for b in buckets {
            assert!((98..=102).contains(&b), "{buckets:?}");
        }
        assert_eq!(stagger_phase(0, interval), 0.0);
        assert!((stagger_phase(1, interval) - 618.034).abs() < 0.001);
    }

    #[test]
    fn next_slot_skips_missed_slots_and_keeps_the_grid() {
        assert_eq!(next_slot(0.0, 10.0, 0.0), 10.0);
        assert_eq!(next_slot(0.0, 10.0, 9.99), 10.0);
        assert_eq!(next_slot(0.0, 10.0, 10.0), 20.0);
        assert_eq!(next_slot(5.0, 10.0, 1_000.0), 1_005.0);
        // Rounding never lands on `now`.
        let n = next_slot(0.1, 0.1, 0.30000000000000004);
        assert!(n > 0.30000000000000004);
    }

    #[test]
    fn pops_in_due_order_and_merges_close_wake_ups() {
        let mut s = Scheduler::default();
        let mut slots = [Slot {
            phase_ms: 0.0,
            next_due: 0.0,
            stamp: 0,
        }; 3];
        s.schedule(0, &mut slots[0], 30.0);
        s.schedule(1, &mut slots[1], 10.0);
        s.schedule(2, &mut slots[2], 12.0);
        let live = |slots: &[Slot; 3]| {
            let stamps: Vec<u32> = slots.iter().map(|s| s.stamp).collect();
            move |id: u32, stamp: u32| stamps[id as usize] == stamp
        };
        assert_eq!(s.next_wake(live(&slots)), Some(10.0));
        assert_eq!(s.pop_due(9.0), None);
        assert_eq!(s.pop_due(11.0), Some((1, 1, 10.0)));
        assert_eq!(s.pop_due(11.0), None);
        s.taken_at(11.0);
        // 12 is due, but the last take was at 11: wake at 11 + MIN_TICK_MS.
        assert_eq!(s.next_wake(live(&slots)), Some(11.0 + MIN_TICK_MS));
        // A reschedule makes the old entry stale; it is dropped when it surfaces.
        s.schedule(2, &mut slots[2], 80.0);
        s.schedule(0, &mut slots[0], 60.0);
        assert_eq!(s.next_wake(live(&slots)), Some(60.0));
        assert_eq!(s.len(), 2, "the stale entries at 12 and 30 were dropped");
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s.next_wake(live(&slots)), None);
    }
}
