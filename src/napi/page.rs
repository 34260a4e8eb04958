//! State pages: for each JS thread, one block of memory where Rust publishes every breaker's
//! state word and open-until time, so the JS hot path reads the state with a typed-array load
//! instead of a native call, and sees changes made by other threads at once.
//!
//! Each thread gets its own block (V8 must not see two ArrayBuffers over the same memory), and
//! a change is written to every block. Blocks are allocated zeroed and lazily backed by the OS,
//! so a thread with few breakers touches few pages.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// Breakers per process: the slot space of the state pages (16 bytes a slot, virtual).
pub const CAPACITY: usize = 1 << 20;

struct Page {
    /// `2 × CAPACITY` values: `[word, openUntil]` per slot, as f64 bits.
    cells: Box<[AtomicU64]>,
}

static PAGES: RwLock<Vec<(u64, Page)>> = RwLock::new(Vec::new());
static NEXT_PAGE: AtomicU64 = AtomicU64::new(1);

fn write(page: &Page, slot: usize, word: u32, open_until: Option<f64>) {
    write_cells(&page.cells, slot, word, open_until);
}

fn write_cells(cells: &[AtomicU64], slot: usize, word: u32, open_until: Option<f64>) {
    if let (Some(w), Some(u)) = (cells.get(2 * slot), cells.get(2 * slot + 1)) {
        // The open-until time first, so a reader that sees the new word sees its time too.
        u.store(open_until.unwrap_or(f64::NAN).to_bits(), Ordering::Release);
        w.store(f64::from(word).to_bits(), Ordering::Release);
    }
}

/// Writes a breaker's state into every thread's page.
pub fn publish(slot: usize, word: u32, open_until: Option<f64>) {
    for (_, page) in PAGES.read().iter() {
        write(page, slot, word, open_until);
    }
}

/// Zeroed cells straight from the allocator: for a block this size that is fresh mmap'd memory,
/// which the OS backs only where it is touched.
fn zeroed_cells(len: usize) -> Option<Box<[AtomicU64]>> {
    let layout = std::alloc::Layout::array::<AtomicU64>(len).ok()?;
    // Safety: the layout is non-zero-sized; all-zero bits are a valid AtomicU64; the pointer
    // comes from the global allocator with this layout, as Box<[AtomicU64]> requires.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut AtomicU64;
        if ptr.is_null() {
            return None;
        }
        Some(Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)))
    }
}

/// A new page for the calling thread: its id and the base pointer of its `2 × CAPACITY` f64
/// cells, or `None` if the memory cannot be had. The page lives until `drop_page(id)`, which
/// only the owning thread calls.
pub fn new_page(
    fill: impl FnOnce(&mut dyn FnMut(usize, u32, Option<f64>)),
) -> Option<(u64, *mut f64)> {
    let cells = zeroed_cells(2 * CAPACITY)?;
    let id = NEXT_PAGE.fetch_add(1, Ordering::Relaxed);
    let ptr = cells.as_ptr() as *mut f64;
    let page = Page { cells };
    // Registered first, then filled under each breaker's lock: a concurrent publish and the
    // fill are ordered by that lock, so the page never keeps a stale value. The fill writes
    // through the boxed cells (which do not move) without holding the page list's lock.
    PAGES.write().push((id, page));
    let cells_ptr = ptr as *const AtomicU64;
    // Safety: the cells stay allocated until `drop_page(id)`, called later on this thread.
    let cells: &[AtomicU64] = unsafe { std::slice::from_raw_parts(cells_ptr, 2 * CAPACITY) };
    fill(&mut |slot, word, open_until| write_cells(cells, slot, word, open_until));
    Some((id, ptr))
}

pub fn drop_page(id: u64) {
    let mut pages = PAGES.write();
    pages.retain(|(pid, _)| *pid != id);
}

pub fn page_count() -> u32 {
    PAGES.read().len() as u32
}
