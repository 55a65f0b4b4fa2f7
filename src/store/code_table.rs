//! Every code the store holds, in memory, in compact arrays: a code is known by its id (its
//! position among all codes made since the store opened), its text lives in one shared buffer,
//! its status in a byte and its holder in four (holders are numbered once). Found by text through
//! a hash table of ids. About 30 bytes a code plus its text, against ~130 for a map from a
//! shared string to a record: a million-code pool costs ~40 MB here. Codes are found regardless
//! of ASCII letter case (a till types `summer10` for `SUMMER10`): the table hashes a code's
//! upper-cased form, and a code typed exactly as stored is preferred to one differing in case.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use uuid::Uuid;

use crate::domain::campaign::CodeStatus;

/// A code's place in the table.
pub(crate) type CodeId = u32;

/// The holder number of a code nobody holds.
const NOBODY: u32 = u32::MAX;

#[derive(Default)]
pub(crate) struct CodeTable {
    /// Every code's text, one after another: code `id` ends at `ends[id]`.
    text: Vec<u8>,
    ends: Vec<u64>,
    status: Vec<CodeStatus>,
    /// Position in `people`, or [`NOBODY`].
    holder: Vec<u32>,
    by_text: HashTable<CodeId>,
    hasher: RandomState,
    people: Vec<Uuid>,
    person: HashMap<Uuid, u32>,
}

impl CodeTable {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Room for `more` codes of about `text` bytes in all, reserved at once (a pool being made
    /// grows the arrays once, not by doubling).
    pub(crate) fn reserve(&mut self, more: usize, text: usize) {
        self.text.reserve_exact(text);
        self.ends.reserve_exact(more);
        self.status.reserve_exact(more);
        self.holder.reserve_exact(more);
        let hasher = &self.hasher;
        let (bytes, ends) = (&self.text, &self.ends);
        self.by_text
            .reserve(more, |&id| folded_hash(hasher, bytes_of(bytes, ends, id)));
    }

    pub(crate) fn text(&self, id: CodeId) -> &str {
        text_of(&self.text, &self.ends, id)
    }

    /// The code typed as `code`: the one stored exactly so, else one differing only in the case
    /// of ASCII letters.
    pub(crate) fn find(&self, code: &str) -> Option<CodeId> {
        self.find_exact(code).or_else(|| {
            let hash = folded_hash(&self.hasher, code.as_bytes());
            self.by_text
                .find(hash, |&id| {
                    bytes_of(&self.text, &self.ends, id).eq_ignore_ascii_case(code.as_bytes())
                })
                .copied()
        })
    }

    /// The code stored exactly as `code`.
    fn find_exact(&self, code: &str) -> Option<CodeId> {
        let hash = folded_hash(&self.hasher, code.as_bytes());
        self.by_text
            .find(hash, |&id| {
                bytes_of(&self.text, &self.ends, id) == code.as_bytes()
            })
            .copied()
    }

    /// The id of `code` (exactly as written), added (available, held by nobody) if it is not in
    /// the table yet.
    pub(crate) fn id_or_insert(&mut self, code: &str) -> CodeId {
        match self.find_exact(code) {
            Some(id) => id,
            None => self.push(code),
        }
    }

    /// Adds `code`, which the caller knows is not in the table (the store's scan at open reads
    /// each code once): available, held by nobody.
    pub(crate) fn push(&mut self, code: &str) -> CodeId {
        let id = self.ends.len() as CodeId;
        self.text.extend_from_slice(code.as_bytes());
        self.ends.push(self.text.len() as u64);
        self.status.push(CodeStatus::Available);
        self.holder.push(NOBODY);
        let hasher = &self.hasher;
        let (bytes, ends) = (&self.text, &self.ends);
        self.by_text
            .insert_unique(folded_hash(hasher, code.as_bytes()), id, |&id| {
                folded_hash(hasher, bytes_of(bytes, ends, id))
            });
        id
    }

    pub(crate) fn status(&self, id: CodeId) -> CodeStatus {
        self.status
            .get(id as usize)
            .copied()
            .unwrap_or(CodeStatus::Available)
    }

    pub(crate) fn holder(&self, id: CodeId) -> Option<Uuid> {
        let n = *self.holder.get(id as usize)?;
        self.people.get(n as usize).copied()
    }

    pub(crate) fn set(&mut self, id: CodeId, status: CodeStatus, holder: Option<Uuid>) {
        let n = match holder {
            None => NOBODY,
            Some(who) => match self.person.get(&who) {
                Some(&n) => n,
                None => {
                    let n = self.people.len() as u32;
                    self.people.push(who);
                    self.person.insert(who, n);
                    n
                }
            },
        };
        if let (Some(s), Some(h)) = (
            self.status.get_mut(id as usize),
            self.holder.get_mut(id as usize),
        ) {
            *s = status;
            *h = n;
        }
    }
}

/// The hash of a code's text with its ASCII letters upper-cased (codes are at most 64
/// characters: folded on the stack).
fn folded_hash(hasher: &RandomState, bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 256];
    match buf.get_mut(..bytes.len()) {
        Some(folded) => {
            folded.copy_from_slice(bytes);
            folded.make_ascii_uppercase();
            hasher.hash_one(&*folded)
        }
        None => hasher.hash_one(bytes.to_ascii_uppercase()),
    }
}

fn bytes_of<'t>(bytes: &'t [u8], ends: &[u64], id: CodeId) -> &'t [u8] {
    let id = id as usize;
    let start = if id == 0 {
        0
    } else {
        ends.get(id - 1).copied().unwrap_or(0) as usize
    };
    let end = ends.get(id).copied().unwrap_or(0) as usize;
    bytes.get(start..end).unwrap_or_default()
}

fn text_of<'t>(bytes: &'t [u8], ends: &[u64], id: CodeId) -> &'t str {
    // Only whole `&str`s are ever appended, so every slice between two ends is UTF-8.
    std::str::from_utf8(bytes_of(bytes, ends, id)).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The table answers as a map from text to (status, holder) would, whatever is added
        /// and changed, in any order.
        #[test]
        fn the_table_agrees_with_a_map(
            steps in proptest::collection::vec(("[A-Z0-9é]{1,6}", 0u8..3, proptest::option::of(0u8..4)), 1..300),
        ) {
            let people: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
            let mut table = CodeTable::default();
            let mut model: HashMap<String, (CodeStatus, Option<Uuid>)> = HashMap::new();
            for (code, status, holder) in steps {
                let status = match status {
                    0 => CodeStatus::Available,
                    1 => CodeStatus::Claimed,
                    _ => CodeStatus::Redeemed,
                };
                let holder = holder.map(|h| people[h as usize]);
                let id = table.id_or_insert(&code);
                prop_assert_eq!(table.text(id), code.as_str());
                table.set(id, status, holder);
                model.insert(code, (status, holder));
            }
            prop_assert_eq!(table.len(), model.len());
            for (code, (status, holder)) in &model {
                let id = table.find(code).unwrap();
                prop_assert_eq!(table.text(id), code.as_str());
                prop_assert_eq!(table.status(id), *status);
                prop_assert_eq!(table.holder(id), *holder);
            }
            prop_assert!(table.find("not-a-code").is_none());
        }

        /// A code is found whatever the case of its ASCII letters; typed exactly as stored, it is
        /// that code even when another differs from it only in case.
        #[test]
        fn codes_are_found_regardless_of_case(codes in proptest::collection::hash_set("[A-Za-z0-9é]{1,6}", 1..50)) {
            let mut table = CodeTable::default();
            for c in &codes {
                let id = table.id_or_insert(c);
                prop_assert_eq!(table.text(id), c.as_str());
            }
            for c in &codes {
                let exact = table.find(c).unwrap();
                prop_assert_eq!(table.text(exact), c.as_str());
                let other = table.find(&c.to_ascii_lowercase()).unwrap();
                prop_assert!(table.text(other).eq_ignore_ascii_case(c));
            }
        }
    }
}
