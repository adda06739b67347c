//! The distinct lines of a file, held compactly: every key and attribute in one string arena,
//! the metric values in flat columns. Memory grows with distinct lines, never with lines x days;
//! daily items are generated from here on the fly.

use std::borrow::Cow;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use crate::number::Quantity;

#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: u32,
}

const ABSENT: Span = Span {
    start: 0,
    len: u32::MAX,
};
/// A scale of `NO_VALUE` marks a metric the file left empty for that line.
const NO_VALUE: u8 = u8::MAX;
/// Units of `BIG` mean the value did not fit 32 bits and is in `LineTable::big_units`.
const BIG: u32 = u32::MAX;

/// Lines keyed by their normalised key, with one slot per mapped attribute and metric.
pub(crate) struct LineTable {
    arena: String,
    keys: Vec<Span>,
    /// The length of the key as the file wrote it, kept in the arena right after the key, only
    /// where normalising changed it (else 0: a raw key is never empty).
    raw_key_lens: Vec<u32>,
    attributes: Vec<Span>,
    /// Metric values in their smallest unit: 32 bits hold nearly all of them; the few that do
    /// not are in `big_units`, by slot. Half the memory of 64 bits for every value.
    units: Vec<u32>,
    big_units: HashMap<usize, u64>,
    scales: Vec<u8>,
    index: HashTable<u32>,
    /// Each line's key hash, so that growing the index never reads the keys again (at a million
    /// lines that re-reading was a fifth of the time: a cache miss per key).
    hashes: Vec<u32>,
    hasher: DefaultHashBuilder,
    attribute_count: usize,
    metric_count: usize,
}

/// The index's hash of a key, from 32 bits of its hash (kept per line at half the memory of 64):
/// the multiplication spreads them over the high bits the index takes its tags from.
fn index_hash(short_hash: u32) -> u64 {
    u64::from(short_hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What happened when a row was added.
pub(crate) enum Added {
    New(usize),
    /// The key was already there: the values were summed into line `.0`.
    Merged(usize),
}

/// A sum that does not fit.
pub(crate) struct Overflow {
    pub metric_slot: usize,
}

#[derive(Debug)]
pub(crate) struct ArenaFull;

impl LineTable {
    pub(crate) fn new(attribute_count: usize, metric_count: usize) -> LineTable {
        LineTable {
            arena: String::new(),
            keys: Vec::new(),
            raw_key_lens: Vec::new(),
            attributes: Vec::new(),
            units: Vec::new(),
            big_units: HashMap::new(),
            scales: Vec::new(),
            index: HashTable::new(),
            hashes: Vec::new(),
            hasher: DefaultHashBuilder::default(),
            attribute_count,
            metric_count,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    fn text(&self, span: Span) -> Option<&str> {
        (span.len != u32::MAX).then(|| &self.arena[span.start as usize..(span.start + span.len) as usize])
    }

    pub(crate) fn key(&self, line: usize) -> &str {
        self.text(self.keys[line]).unwrap_or_default()
    }

    /// The key as the file wrote it on the line's first row.
    pub(crate) fn raw_key(&self, line: usize) -> &str {
        let key = self.keys[line];
        match self.raw_key_lens[line] {
            0 => self.key(line),
            len => self
                .text(Span {
                    start: key.start + key.len,
                    len,
                })
                .unwrap_or_default(),
        }
    }

    pub(crate) fn attribute(&self, line: usize, slot: usize) -> Option<&str> {
        self.text(self.attributes[line * self.attribute_count + slot])
    }

    pub(crate) fn metric(&self, line: usize, slot: usize) -> Option<Quantity> {
        let i = line * self.metric_count + slot;
        match self.scales[i] {
            NO_VALUE => None,
            scale => Quantity::new(self.units_at(i), scale),
        }
    }

    fn units_at(&self, i: usize) -> u64 {
        match self.units[i] {
            BIG => self.big_units.get(&i).copied().unwrap_or_default(),
            small => u64::from(small),
        }
    }

    fn set_units(&mut self, i: usize, units: u64) {
        match u32::try_from(units) {
            Ok(small) if small != BIG => self.units[i] = small,
            _ => {
                self.units[i] = BIG;
                self.big_units.insert(i, units);
            }
        }
    }

    fn push_text(&mut self, text: &str) -> Result<Span, ArenaFull> {
        let start = u32::try_from(self.arena.len()).map_err(|_| ArenaFull)?;
        let len = u32::try_from(text.len()).map_err(|_| ArenaFull)?;
        start.checked_add(len).filter(|&end| end < u32::MAX).ok_or(ArenaFull)?;
        self.arena.push_str(text);
        Ok(Span { start, len })
    }

    /// Adds a row, or sums it into the line with the same key. On overflow nothing changes.
    pub(crate) fn add(
        &mut self,
        key: &str,
        raw_key: &str,
        attributes: &[Option<Cow<'_, str>>],
        metrics: &[Option<Quantity>],
    ) -> Result<Result<Added, Overflow>, ArenaFull> {
        let short_hash = self.hasher.hash_one(key) as u32;
        let hash = index_hash(short_hash);
        let found = {
            let (arena, keys) = (&self.arena, &self.keys);
            self.index
                .find(hash, |&i| {
                    let s = keys[i as usize];
                    &arena[s.start as usize..(s.start + s.len) as usize] == key
                })
                .copied()
        };
        if let Some(line) = found {
            let line = line as usize;
            let base = line * self.metric_count;
            let mut sums = Vec::with_capacity(metrics.len());
            for (slot, value) in metrics.iter().enumerate() {
                let sum = match (self.metric(line, slot), value) {
                    (old, None) => old,
                    (None, Some(v)) => Some(*v),
                    (Some(old), Some(v)) => match old.checked_add(*v) {
                        Some(s) => Some(s),
                        None => return Ok(Err(Overflow { metric_slot: slot })),
                    },
                };
                sums.push(sum);
            }
            for (slot, sum) in sums.into_iter().enumerate() {
                if let Some(s) = sum {
                    self.set_units(base + slot, s.units());
                    self.scales[base + slot] = s.scale();
                }
            }
            for (slot, value) in attributes.iter().enumerate() {
                let i = line * self.attribute_count + slot;
                if let (Some(v), None) = (value.as_deref(), self.text(self.attributes[i])) {
                    self.attributes[i] = self.push_text(v)?;
                }
            }
            return Ok(Ok(Added::Merged(line)));
        }
        let line = self.keys.len();
        let key_span = self.push_text(key)?;
        self.keys.push(key_span);
        // Right after the key: `raw_key` finds it there.
        let raw_len = if raw_key == key {
            0
        } else {
            self.push_text(raw_key)?.len
        };
        self.raw_key_lens.push(raw_len);
        for value in attributes {
            let span = match value.as_deref() {
                Some(v) => self.push_text(v)?,
                None => ABSENT,
            };
            self.attributes.push(span);
        }
        for value in metrics {
            self.units.push(0);
            match value {
                Some(v) => {
                    self.set_units(self.units.len() - 1, v.units());
                    self.scales.push(v.scale());
                }
                None => self.scales.push(NO_VALUE),
            }
        }
        self.hashes.push(short_hash);
        let hashes = &self.hashes;
        self.index.insert_unique(hash, line as u32, |&i| {
            index_hash(hashes.get(i as usize).copied().unwrap_or_default())
        });
        Ok(Ok(Added::New(line)))
    }

    /// Frees the slack the growing vectors kept, and drops the key index and the key hashes (a
    /// tenth of the table): lines are only read from here on, and a line added after this would
    /// not find its twin.
    pub(crate) fn finish_reading(&mut self) {
        self.index = HashTable::new();
        self.hashes = Vec::new();
        self.arena.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.raw_key_lens.shrink_to_fit();
        self.attributes.shrink_to_fit();
        self.units.shrink_to_fit();
        self.scales.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(units: u64) -> Option<Quantity> {
        Some(Quantity::whole(units))
    }

    #[test]
    fn values_beyond_32_bits_are_kept_exactly() {
        let mut table = LineTable::new(0, 3);
        for (key, values) in [
            ("a", [whole(u64::from(u32::MAX)), whole(u64::MAX), None]),
            ("b", [whole(u64::from(u32::MAX) - 1), whole(7), whole(0)]),
        ] {
            assert!(matches!(table.add(key, key, &[], &values), Ok(Ok(Added::New(_)))));
        }
        assert_eq!(table.metric(0, 0), whole(u64::from(u32::MAX)));
        assert_eq!(table.metric(0, 1), whole(u64::MAX));
        assert_eq!(table.metric(0, 2), None);
        assert_eq!(table.metric(1, 0), whole(u64::from(u32::MAX) - 1));
        // A sum that crosses 32 bits moves to the side table.
        assert!(matches!(
            table.add("b", "b", &[], &[whole(1), None, whole(5)]),
            Ok(Ok(Added::Merged(1)))
        ));
        assert_eq!(table.metric(1, 0), whole(u64::from(u32::MAX)));
        assert_eq!(table.metric(1, 1), whole(7));
        assert_eq!(table.metric(1, 2), whole(5));
        assert!(matches!(
            table.add("a", "a", &[], &[None, whole(1), None]),
            Ok(Err(Overflow { metric_slot: 1 }))
        ));
    }

    #[test]
    fn the_raw_key_is_kept_only_where_it_differs() {
        let mut table = LineTable::new(1, 1);
        let url = [Some(Cow::Borrowed("https://x/é"))];
        assert!(table.add("/ete", "/été", &url, &[whole(1)]).is_ok());
        assert!(table.add("/plain", "/plain", &[None], &[whole(2)]).is_ok());
        assert_eq!((table.key(0), table.raw_key(0)), ("/ete", "/été"));
        assert_eq!((table.key(1), table.raw_key(1)), ("/plain", "/plain"));
        assert_eq!(table.attribute(0, 0), Some("https://x/é"));
        assert_eq!(table.attribute(1, 0), None);
    }
}
