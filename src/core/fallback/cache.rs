//! The response cache: serialised values by (service, key), bounded by an entry count and a
//! byte budget, least recently used out first, each entry with its own TTL and a
//! stale-if-error grace period after it. Every method takes `now`; none reads a clock.

use std::collections::HashMap;

/// What an entry costs beyond its strings: the node, the index slots and the allocator's
/// rounding, roughly. Counted so that a flood of tiny entries still meets `cacheMaxBytes`.
pub const ENTRY_OVERHEAD_BYTES: u64 = 96;

/// Entries past their stale grace period that one `set` reclaims from the old end at most,
/// so that dead entries do not wait for the budget to run out.
const SWEEP_PER_SET: usize = 2;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheLimits {
    pub max_entries: u32,
    pub max_bytes: u64,
    /// How long past its TTL an entry is kept to answer `allow_stale` lookups.
    pub stale_if_error_ms: f64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CacheStats {
    pub hits: u64,
    pub stale_hits: u64,
    pub misses: u64,
    pub sets: u64,
    /// Entries pushed out by the count or byte budget.
    pub evictions: u64,
    /// Entries dropped because they outlived their TTL and grace period.
    pub expirations: u64,
    /// Values larger than the whole byte budget, which were not stored.
    pub rejected: u64,
}

/// A lookup that found something.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit<'a> {
    pub value: &'a str,
    /// Past its TTL, within the stale-if-error grace period.
    pub stale: bool,
    pub age_ms: f64,
    pub expires_at: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetOutcome {
    pub stored: bool,
    pub evicted: u32,
}

#[derive(Debug)]
struct Node {
    service: Box<str>,
    key: Box<str>,
    value: Box<str>,
    stored_at: f64,
    expires_at: f64,
    size: u64,
    /// Towards the most recently used end.
    prev: u32,
    /// Towards the least recently used end.
    next: u32,
}

#[derive(Debug)]
pub struct Cache {
    limits: CacheLimits,
    /// service → key → slot. Two levels, so that a lookup borrows both strings (no allocation)
    /// and `invalidate(service)` does not scan other services.
    index: HashMap<Box<str>, HashMap<Box<str>, u32>>,
    slots: Vec<Option<Node>>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    len: usize,
    bytes: u64,
    stats: CacheStats,
}

pub fn entry_size(service: &str, key: &str, value: &str) -> u64 {
    (service.len() + key.len() + value.len()) as u64 + ENTRY_OVERHEAD_BYTES
}

impl Cache {
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            limits,
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            bytes: 0,
            stats: CacheStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    fn node(&self, i: u32) -> Option<&Node> {
        self.slots.get(i as usize).and_then(Option::as_ref)
    }

    fn node_mut(&mut self, i: u32) -> Option<&mut Node> {
        self.slots.get_mut(i as usize).and_then(Option::as_mut)
    }

    fn slot_of(&self, service: &str, key: &str) -> Option<u32> {
        self.index.get(service)?.get(key).copied()
    }

    fn unlink(&mut self, i: u32) {
        let Some((prev, next)) = self.node(i).map(|n| (n.prev, n.next)) else {
            return;
        };
        match self.node_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.node_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        if let Some(n) = self.node_mut(i) {
            n.prev = NIL;
            n.next = old;
        }
        match self.node_mut(old) {
            Some(o) => o.prev = i,
            None => self.tail = i,
        }
        self.head = i;
    }

    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn remove_slot(&mut self, i: u32) {
        self.unlink(i);
        let Some(node) = self.slots.get_mut(i as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(i);
        self.len -= 1;
        self.bytes -= node.size;
        if let Some(keys) = self.index.get_mut(&*node.service) {
            keys.remove(&*node.key);
            if keys.is_empty() {
                self.index.remove(&*node.service);
            }
        }
    }

    fn dead(&self, node: &Node, now: f64) -> bool {
        now >= node.expires_at + self.limits.stale_if_error_ms
    }

    /// A fresh value, or with `allow_stale` also one within the grace period after its TTL.
    /// A hit becomes the most recently used entry; an entry found past its grace period is
    /// dropped.
    pub fn get(
        &mut self,
        service: &str,
        key: &str,
        now: f64,
        allow_stale: bool,
    ) -> Option<Hit<'_>> {
        let Some(i) = self.slot_of(service, key) else {
            self.stats.misses += 1;
            return None;
        };
        let (fresh, dead) = match self.node(i) {
            Some(n) => (now < n.expires_at, self.dead(n, now)),
            None => (false, true),
        };
        if dead {
            self.remove_slot(i);
            self.stats.expirations += 1;
            self.stats.misses += 1;
            return None;
        }
        if !fresh && !allow_stale {
            self.stats.misses += 1;
            return None;
        }
        if fresh {
            self.stats.hits += 1;
        } else {
            self.stats.stale_hits += 1;
        }
        self.touch(i);
        let n = self.node(i)?;
        Some(Hit {
            value: &n.value,
            stale: !fresh,
            age_ms: (now - n.stored_at).max(0.0),
            expires_at: n.expires_at,
        })
    }

    /// Stores `value` for `ttl_ms`, then evicts from the least recently used end until both
    /// budgets hold. A value larger than the whole byte budget is not stored, and the old value
    /// under that key (now outdated) is dropped.
    pub fn set(
        &mut self,
        service: &str,
        key: &str,
        value: String,
        ttl_ms: f64,
        now: f64,
    ) -> SetOutcome {
        let size = entry_size(service, key, &value);
        let existing = self.slot_of(service, key);
        if size > self.limits.max_bytes {
            if let Some(i) = existing {
                self.remove_slot(i);
            }
            self.stats.rejected += 1;
            return SetOutcome {
                stored: false,
                evicted: 0,
            };
        }
        self.stats.sets += 1;
        let expires_at = now + ttl_ms;
        let i = match existing {
            Some(i) => {
                if let Some(n) = self.node_mut(i) {
                    let old = n.size;
                    n.value = value.into_boxed_str();
                    n.stored_at = now;
                    n.expires_at = expires_at;
                    n.size = size;
                    self.bytes = self.bytes - old + size;
                }
                self.touch(i);
                i
            }
            None => {
                let node = Node {
                    service: service.into(),
                    key: key.into(),
                    value: value.into_boxed_str(),
                    stored_at: now,
                    expires_at,
                    size,
                    prev: NIL,
                    next: NIL,
                };
                let i = match self.free.pop() {
                    Some(i) if (i as usize) < self.slots.len() => {
                        self.slots[i as usize] = Some(node);
                        i
                    }
                    _ => {
                        self.slots.push(Some(node));
                        (self.slots.len() - 1) as u32
                    }
                };
                self.index
                    .entry(service.into())
                    .or_default()
                    .insert(key.into(), i);
                self.len += 1;
                self.bytes += size;
                self.push_front(i);
                i
            }
        };
        for _ in 0..SWEEP_PER_SET {
            let t = self.tail;
            match self.node(t) {
                Some(n) if t != i && self.dead(n, now) => {
                    self.remove_slot(t);
                    self.stats.expirations += 1;
                }
                _ => break,
            }
        }
        let mut evicted = 0;
        while (self.len > self.limits.max_entries as usize || self.bytes > self.limits.max_bytes)
            && self.tail != i
            && self.tail != NIL
        {
            let t = self.tail;
            self.remove_slot(t);
            self.stats.evictions += 1;
            evicted += 1;
        }
        SetOutcome {
            stored: true,
            evicted,
        }
    }

    pub fn remove(&mut self, service: &str, key: &str) -> bool {
        match self.slot_of(service, key) {
            Some(i) => {
                self.remove_slot(i);
                true
            }
            None => false,
        }
    }

    /// Drops every entry of `service`; returns how many.
    pub fn remove_service(&mut self, service: &str) -> u32 {
        let slots: Vec<u32> = match self.index.get(service) {
            Some(keys) => keys.values().copied().collect(),
            None => return 0,
        };
        for &i in &slots {
            self.remove_slot(i);
        }
        slots.len() as u32
    }

    pub fn clear(&mut self) -> u32 {
        let n = self.len as u32;
        self.index.clear();
        self.slots.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        self.len = 0;
        self.bytes = 0;
        n
    }

    /// Keys from most to least recently used (tests and debugging).
    pub fn keys_by_recency(&self) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(self.len);
        let mut i = self.head;
        while let Some(n) = self.node(i) {
            out.push((n.service.to_string(), n.key.to_string()));
            i = n.next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cache(max_entries: u32, max_bytes: u64, stale: f64) -> Cache {
        Cache::new(CacheLimits {
            max_entries,
            max_bytes,
            stale_if_error_ms: stale,
        })
    }

    fn value(c: &mut Cache, s: &str, k: &str, now: f64) -> Option<String> {
        c.get(s, k, now, false).map(|h| h.value.to_string())
    }

    #[test]
    fn a_value_lives_for_its_ttl() {
        let mut c = cache(10, 1 << 20, 0.0);
        c.set("openai_api", "q1", "\"a\"".into(), 1_000.0, 0.0);
        assert_eq!(
            value(&mut c, "openai_api", "q1", 999.0).as_deref(),
            Some("\"a\"")
        );
        assert_eq!(value(&mut c, "openai_api", "q1", 1_000.0), None);
        assert_eq!(
            c.len(),
            0,
            "an entry past TTL and grace is dropped when found"
        );
        assert_eq!(c.stats().expirations, 1);
    }

    #[test]
    fn services_are_separate_namespaces() {
        let mut c = cache(10, 1 << 20, 0.0);
        c.set("a", "k", "1".into(), 1_000.0, 0.0);
        c.set("b", "k", "2".into(), 1_000.0, 0.0);
        assert_eq!(value(&mut c, "a", "k", 0.0).as_deref(), Some("1"));
        assert_eq!(value(&mut c, "b", "k", 0.0).as_deref(), Some("2"));
        assert_eq!(c.remove_service("a"), 1);
        assert_eq!(value(&mut c, "a", "k", 0.0), None);
        assert_eq!(value(&mut c, "b", "k", 0.0).as_deref(), Some("2"));
    }

    #[test]
    fn stale_values_answer_only_when_asked_and_only_within_the_grace_period() {
        let mut c = cache(10, 1 << 20, 500.0);
        c.set("s", "k", "1".into(), 1_000.0, 0.0);
        assert_eq!(
            value(&mut c, "s", "k", 1_200.0),
            None,
            "past TTL: not fresh"
        );
        let hit = c.get("s", "k", 1_200.0, true).unwrap();
        assert!(hit.stale);
        assert_eq!(hit.age_ms, 1_200.0);
        assert_eq!(hit.expires_at, 1_000.0);
        assert_eq!(
            c.get("s", "k", 1_500.0, true),
            None,
            "past the grace period"
        );
        assert_eq!(c.len(), 0);
        let s = c.stats();
        assert_eq!((s.stale_hits, s.misses, s.expirations), (1, 2, 1));
    }

    #[test]
    fn lru_by_count_evicts_the_least_recently_used() {
        let mut c = cache(3, 1 << 20, 0.0);
        for k in ["a", "b", "c"] {
            c.set("s", k, "1".into(), 1e6, 0.0);
        }
        assert!(c.get("s", "a", 1.0, false).is_some()); // a is now the most recent
        let out = c.set("s", "d", "1".into(), 1e6, 2.0);
        assert_eq!(
            out,
            SetOutcome {
                stored: true,
                evicted: 1
            }
        );
        assert_eq!(
            value(&mut c, "s", "b", 3.0),
            None,
            "b was least recently used"
        );
        assert_eq!(
            c.keys_by_recency(),
            vec![
                ("s".into(), "d".into()),
                ("s".into(), "a".into()),
                ("s".into(), "c".into())
            ]
        );
    }

    #[test]
    fn lru_by_bytes_evicts_until_the_budget_holds() {
        let one = entry_size("s", "k0", &"x".repeat(100));
        let mut c = cache(1_000, one * 3, 0.0);
        for i in 0..3 {
            c.set("s", &format!("k{i}"), "x".repeat(100), 1e6, 0.0);
        }
        assert_eq!(c.bytes(), one * 3);
        // A value twice as large pushes out the two oldest.
        let out = c.set("s", "k3", "x".repeat(100 + one as usize), 1e6, 1.0);
        assert_eq!(out.evicted, 2);
        assert!(c.bytes() <= one * 3);
        assert_eq!(
            c.keys_by_recency(),
            vec![("s".into(), "k3".into()), ("s".into(), "k2".into())]
        );
    }

    #[test]
    fn a_value_larger_than_the_budget_is_refused_and_drops_the_outdated_one() {
        let mut c = cache(10, 1_024, 0.0);
        c.set("s", "k", "small".into(), 1e6, 0.0);
        let out = c.set("s", "k", "x".repeat(2_000), 1e6, 1.0);
        assert!(!out.stored);
        assert_eq!(value(&mut c, "s", "k", 1.0), None);
        assert_eq!(c.stats().rejected, 1);
        assert_eq!((c.len(), c.bytes()), (0, 0));
    }

    #[test]
    fn replacing_a_value_updates_bytes_and_ttl() {
        let mut c = cache(10, 1 << 20, 0.0);
        c.set("s", "k", "1".into(), 100.0, 0.0);
        c.set("s", "k", "22".into(), 1_000.0, 50.0);
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes(), entry_size("s", "k", "22"));
        assert_eq!(value(&mut c, "s", "k", 500.0).as_deref(), Some("22"));
    }

    #[test]
    fn set_reclaims_dead_entries_from_the_old_end() {
        let mut c = cache(100, 1 << 20, 0.0);
        c.set("s", "old", "1".into(), 10.0, 0.0);
        c.set("s", "new", "1".into(), 1e6, 100.0);
        assert_eq!(c.len(), 1);
        assert_eq!(c.stats().expirations, 1);
    }

    #[test]
    fn remove_and_clear() {
        let mut c = cache(10, 1 << 20, 0.0);
        c.set("s", "a", "1".into(), 1e6, 0.0);
        c.set("s", "b", "1".into(), 1e6, 0.0);
        assert!(c.remove("s", "a"));
        assert!(!c.remove("s", "a"));
        assert_eq!(c.clear(), 1);
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
        c.set("s", "c", "1".into(), 1e6, 0.0);
        assert_eq!(value(&mut c, "s", "c", 0.0).as_deref(), Some("1"));
    }

    // A model-based test: random operations against a tiny reference (a Vec in recency order).
    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, usize, u16),
        Get(u8, bool),
        Advance(u16),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..12, 0usize..300, 1u16..2_000).prop_map(|(k, n, t)| Op::Set(k, n, t)),
            (0u8..12, any::<bool>()).prop_map(|(k, s)| Op::Get(k, s)),
            (0u16..800).prop_map(Op::Advance),
            (0u8..12).prop_map(Op::Remove),
        ]
    }

    struct ModelEntry {
        key: String,
        value: String,
        stored_at: f64,
        expires_at: f64,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn behaves_like_the_reference_model(ops in proptest::collection::vec(op(), 1..200)) {
            let (max_entries, max_bytes, stale) = (5u32, 900u64, 300.0);
            let mut c = cache(max_entries, max_bytes, stale);
            // Most recent first.
            let mut model: Vec<ModelEntry> = Vec::new();
            let mut now = 0.0;
            for op in ops {
                match op {
                    Op::Set(k, n, ttl) => {
                        let key = format!("k{k}");
                        let value = "v".repeat(n);
                        let size = entry_size("s", &key, &value);
                        c.set("s", &key, value.clone(), f64::from(ttl), now);
                        model.retain(|e| e.key != key);
                        if size <= max_bytes {
                            model.insert(0, ModelEntry { key, value, stored_at: now, expires_at: now + f64::from(ttl) });
                            // The sweep: dead entries at the old end go first.
                            for _ in 0..SWEEP_PER_SET {
                                match model.last() {
                                    Some(e) if model.len() > 1 && now >= e.expires_at + stale => { model.pop(); }
                                    _ => break,
                                }
                            }
                            let bytes = |m: &Vec<ModelEntry>| m.iter().map(|e| entry_size("s", &e.key, &e.value)).sum::<u64>();
                            while model.len() > 1 && (model.len() > max_entries as usize || bytes(&model) > max_bytes) {
                                model.pop();
                            }
                        }
                    }
                    Op::Get(k, allow_stale) => {
                        let key = format!("k{k}");
                        let got = c.get("s", &key, now, allow_stale).map(|h| (h.value.to_string(), h.stale, h.age_ms));
                        let pos = model.iter().position(|e| e.key == key);
                        let want = match pos {
                            None => None,
                            Some(p) => {
                                let e = &model[p];
                                if now >= e.expires_at + stale {
                                    model.remove(p);
                                    None
                                } else if now < e.expires_at || allow_stale {
                                    let r = (e.value.clone(), now >= e.expires_at, now - e.stored_at);
                                    let e = model.remove(p);
                                    model.insert(0, e);
                                    Some(r)
                                } else {
                                    None
                                }
                            }
                        };
                        prop_assert_eq!(got, want);
                    }
                    Op::Advance(ms) => now += f64::from(ms),
                    Op::Remove(k) => {
                        let key = format!("k{k}");
                        let had = model.iter().any(|e| e.key == key);
                        model.retain(|e| e.key != key);
                        prop_assert_eq!(c.remove("s", &key), had);
                    }
                }
                let keys: Vec<String> = c.keys_by_recency().into_iter().map(|(_, k)| k).collect();
                let want: Vec<String> = model.iter().map(|e| e.key.clone()).collect();
                prop_assert_eq!(keys, want);
                prop_assert!(c.len() <= max_entries as usize && c.bytes() <= max_bytes);
                prop_assert_eq!(c.bytes(), model.iter().map(|e| entry_size("s", &e.key, &e.value)).sum::<u64>());
            }
        }
    }
}
