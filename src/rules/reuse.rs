//! Compiled pieces kept from one compile to the next, so a reload after editing one rule of
//! thousands only compiles what changed. Two generations: what the last compile used, and what
//! this one has used so far; anything the last compile did not use is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// A two-generation cache of compiled values.
pub(super) struct Reuse<K, V> {
    generations: Mutex<(HashMap<K, V>, HashMap<K, V>)>,
}

impl<K: Hash + Eq + Clone + Send + 'static, V: Clone + Send + 'static> Reuse<K, V> {
    pub(super) fn new() -> Self {
        Self {
            generations: Mutex::new((HashMap::new(), HashMap::new())),
        }
    }

    /// The value for `key`, from an earlier compile or made now.
    pub(super) fn get_or<E>(&self, key: &K, make: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        let found = self.generations.lock().ok().and_then(|mut g| {
            let (previous, current) = &mut *g;
            let value = current.get(key).or_else(|| previous.get(key))?.clone();
            current.insert(key.clone(), value.clone());
            Some(value)
        });
        if let Some(value) = found {
            return Ok(value);
        }
        let value = make()?;
        if let Ok(mut g) = self.generations.lock() {
            g.1.insert(key.clone(), value.clone());
        }
        Ok(value)
    }

    /// Ends a compile: what it used is what the next one may reuse.
    pub(super) fn rotate(&self) {
        let Ok(mut g) = self.generations.lock() else {
            return;
        };
        let current = std::mem::take(&mut g.1);
        let unused = std::mem::replace(&mut g.0, current);
        drop(g);
        // Freeing thousands of automata takes a while; the new rule set need not wait for it.
        if !unused.is_empty() {
            std::thread::spawn(move || drop(unused));
        }
    }
}
