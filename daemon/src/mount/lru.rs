//! A least-recently-used cache keyed by blob id, bounded by a cost per entry (tree nodes for
//! the trees, bytes for the blobs). Eviction scans for the oldest entry: the caches hold tens
//! to hundreds of entries.

use crate::id::Id;
use std::collections::HashMap;

/// A least-recently-used cache with a cost per entry.
pub(crate) struct Lru<V> {
    map: HashMap<Id, (V, usize, u64)>,
    cost: usize,
    max: usize,
    tick: u64,
}

impl<V: Clone> Lru<V> {
    pub(crate) fn new(max: usize) -> Lru<V> {
        Lru {
            map: HashMap::new(),
            cost: 0,
            max,
            tick: 0,
        }
    }

    pub(crate) fn get(&mut self, id: &Id) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(id).map(|e| {
            e.2 = tick;
            e.0.clone()
        })
    }

    pub(crate) fn put(&mut self, id: Id, v: V, cost: usize) {
        self.tick += 1;
        while self.cost + cost > self.max && !self.map.is_empty() {
            let oldest = *self
                .map
                .iter()
                .min_by_key(|(_, e)| e.2)
                .map(|(k, _)| k)
                .expect("not empty");
            if let Some((_, c, _)) = self.map.remove(&oldest) {
                self.cost -= c;
            }
        }
        self.cost += cost;
        if let Some((_, c, _)) = self.map.insert(id, (v, cost, self.tick)) {
            self.cost -= c;
        }
    }

    /// Whether `id` is cached (without counting as a use).
    pub(crate) fn contains(&self, id: &Id) -> bool {
        self.map.contains_key(id)
    }
}
