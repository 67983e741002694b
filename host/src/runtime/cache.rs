//! The in-process cache of pre-linked components: compiled once per process however many jobs of a new
//! version arrive together (single flight), and bounded (least recently used out).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One cached component: its slot is locked while it compiles, so concurrent callers wait for that one
/// compile instead of starting their own.
type Slot<T> = Arc<Mutex<Option<Arc<T>>>>;

pub struct PreparedCache<T> {
    capacity: usize,
    inner: Mutex<Entries<T>>,
}

struct Entries<T> {
    /// Key → (slot, last use), the last use a counter that orders uses.
    slots: HashMap<String, (Slot<T>, u64)>,
    clock: u64,
}

impl<T> PreparedCache<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Entries {
                slots: HashMap::new(),
                clock: 0,
            }),
        }
    }

    /// The cached value, if it is ready (without waiting for a compile in progress).
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        let slot = self.slot(key, false)?;
        slot.try_lock().ok()?.clone()
    }

    /// The cached value, or the one `make` builds. Only one caller per key runs `make` at a time; the
    /// others block until it is done (call this on a blocking thread) and take its value. A failed
    /// `make` caches nothing: the next caller tries again.
    pub fn get_or_try_insert<E>(&self, key: &str, make: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let slot = self.slot(key, true).expect("created when missing");
        let mut ready = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(value) = ready.as_ref() {
            return Ok(value.clone());
        }
        let value = Arc::new(make()?);
        *ready = Some(value.clone());
        Ok(value)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().expect("cache lock poisoned").slots.len()
    }

    /// The key's slot, marked as just used; with `create`, made if missing (evicting the least recently
    /// used slot past the capacity; a job already holding its value keeps it).
    fn slot(&self, key: &str, create: bool) -> Option<Slot<T>> {
        let mut inner = self.inner.lock().expect("cache lock poisoned");
        inner.clock += 1;
        let now = inner.clock;
        if let Some((slot, used)) = inner.slots.get_mut(key) {
            *used = now;
            return Some(slot.clone());
        }
        if !create {
            return None;
        }
        if inner.slots.len() >= self.capacity {
            let oldest = inner
                .slots
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                inner.slots.remove(&oldest);
            }
        }
        let slot = Slot::default();
        inner.slots.insert(key.to_owned(), (slot.clone(), now));
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn concurrent_callers_share_one_build() {
        let cache = Arc::new(PreparedCache::<u32>::new(4));
        let builds = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, builds) = (cache.clone(), builds.clone());
                std::thread::spawn(move || {
                    *cache
                        .get_or_try_insert("v", || {
                            builds.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(200));
                            Ok::<_, ()>(7)
                        })
                        .unwrap()
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), 7);
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failure_is_not_cached_and_the_least_recently_used_goes_first() {
        let cache = PreparedCache::<u32>::new(2);
        assert!(cache.get_or_try_insert("a", || Err("no")).is_err());
        assert!(cache.get("a").is_none());
        cache.get_or_try_insert("a", || Ok::<_, ()>(1)).unwrap();
        cache.get_or_try_insert("b", || Ok::<_, ()>(2)).unwrap();
        assert_eq!(cache.get("a").as_deref(), Some(&1), "a is now more recent than b");
        cache.get_or_try_insert("c", || Ok::<_, ()>(3)).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert_eq!(cache.get("a").as_deref(), Some(&1));
        assert_eq!(cache.get("c").as_deref(), Some(&3));
    }
}
