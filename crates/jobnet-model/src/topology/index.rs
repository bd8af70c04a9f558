//! Lookups by name, by port and by GUID that hold positions into the topology's own lists, not
//! copies of the keys.
//!
//! A 100,000-node fabric used to keep a second `String` of every node name in its name map (and
//! the loader one map entry of 64 bytes per port): a position index stores one `u32` per entry
//! and asks the caller for the key at a position when it compares, so the names, ports and GUIDs
//! live once, in the topology. Hashing is hashbrown's default (foldhash), already built for
//! petgraph: these keys come from the administrator's own file, and SipHash's protection against
//! chosen keys cost a fifth of loading a large fabric.

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::{BuildHasher, Hash};

/// Positions (`0..u32::MAX`) under keys that the caller stores: `key_of(i)` gives the key at
/// position `i`, and must give the same key for as long as the index is used.
#[derive(Clone, Default)]
pub(crate) struct PosIndex {
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl PosIndex {
    pub fn with_capacity(n: usize) -> Self {
        PosIndex {
            table: HashTable::with_capacity(n),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Adds position `i` under `key`, or gives the position already there (the index keeps
    /// that one: the first of a duplicate wins).
    pub fn insert<K: Hash + Eq>(
        &mut self,
        key: K,
        i: usize,
        key_of: impl Fn(usize) -> K,
    ) -> Result<(), usize> {
        let i = u32::try_from(i).expect("positions fit in u32");
        let hasher = &self.hasher;
        let hash = hasher.hash_one(&key);
        match self.table.entry(
            hash,
            |&j| key_of(j as usize) == key,
            |&j| hasher.hash_one(key_of(j as usize)),
        ) {
            Entry::Occupied(first) => Err(*first.get() as usize),
            Entry::Vacant(slot) => {
                slot.insert(i);
                Ok(())
            }
        }
    }

    /// The position under `key`.
    pub fn get<K: Hash + Eq>(&self, key: K, key_of: impl Fn(usize) -> K) -> Option<usize> {
        let hash = self.hasher.hash_one(&key);
        self.table
            .find(hash, |&j| key_of(j as usize) == key)
            .map(|&j| j as usize)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }
}

impl std::fmt::Debug for PosIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PosIndex({} entries)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_positions_and_keeps_the_first_of_a_duplicate() {
        let names = ["leaf1", "cn1", "leaf1", "cn2"];
        let key_of = |i: usize| names[i];
        let mut index = PosIndex::with_capacity(1);
        assert_eq!(index.insert(names[0], 0, key_of), Ok(()));
        assert_eq!(index.insert(names[1], 1, key_of), Ok(()));
        assert_eq!(index.insert(names[2], 2, key_of), Err(0));
        assert_eq!(index.insert(names[3], 3, key_of), Ok(()));
        assert_eq!(index.len(), 3);
        assert_eq!(index.get("leaf1", key_of), Some(0));
        assert_eq!(index.get("cn2", key_of), Some(3));
        assert_eq!(index.get("cn3", key_of), None);
        // Grown past its first size, every key is still found.
        let many: Vec<String> = (0..1000).map(|i| format!("n{i}")).collect();
        let key_of = |i: usize| (i % 7, many[i].as_str());
        let mut index = PosIndex::default();
        for i in 0..many.len() {
            assert_eq!(index.insert(key_of(i), i, key_of), Ok(()));
        }
        assert!((0..many.len()).all(|i| index.get(key_of(i), key_of) == Some(i)));
        assert_eq!(index.get((1, "n0"), key_of), None);
    }
}
