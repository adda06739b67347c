//! The distinct lines of a file, held compactly: every key and attribute in one string arena,
//! the metric values in flat columns. Memory grows with distinct lines, never with lines x days;
//! daily items are generated from here on the fly.

use std::borrow::Cow;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

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

/// Lines keyed by their normalised key, with one slot per mapped attribute and metric.
pub(crate) struct LineTable {
    arena: String,
    keys: Vec<Span>,
    /// The key as the file wrote it, only where normalising changed it (else `ABSENT`).
    raw_keys: Vec<Span>,
    attributes: Vec<Span>,
    units: Vec<u64>,
    scales: Vec<u8>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    attribute_count: usize,
    metric_count: usize,
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
            raw_keys: Vec::new(),
            attributes: Vec::new(),
            units: Vec::new(),
            scales: Vec::new(),
            index: HashTable::new(),
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
        self.text(self.raw_keys[line]).unwrap_or_else(|| self.key(line))
    }

    pub(crate) fn attribute(&self, line: usize, slot: usize) -> Option<&str> {
        self.text(self.attributes[line * self.attribute_count + slot])
    }

    pub(crate) fn metric(&self, line: usize, slot: usize) -> Option<Quantity> {
        let i = line * self.metric_count + slot;
        match self.scales[i] {
            NO_VALUE => None,
            scale => Quantity::new(self.units[i], scale),
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
        let hash = self.hasher.hash_one(key);
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
                    self.units[base + slot] = s.units();
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
        let raw_span = if raw_key == key {
            ABSENT
        } else {
            self.push_text(raw_key)?
        };
        self.raw_keys.push(raw_span);
        for value in attributes {
            let span = match value.as_deref() {
                Some(v) => self.push_text(v)?,
                None => ABSENT,
            };
            self.attributes.push(span);
        }
        for value in metrics {
            match value {
                Some(v) => {
                    self.units.push(v.units());
                    self.scales.push(v.scale());
                }
                None => {
                    self.units.push(0);
                    self.scales.push(NO_VALUE);
                }
            }
        }
        let (arena, keys, hasher) = (&self.arena, &self.keys, &self.hasher);
        self.index.insert_unique(hash, line as u32, |&i| {
            let s = keys[i as usize];
            hasher.hash_one(&arena[s.start as usize..(s.start + s.len) as usize])
        });
        Ok(Ok(Added::New(line)))
    }

    /// Frees the slack the growing vectors kept.
    pub(crate) fn shrink(&mut self) {
        self.arena.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.raw_keys.shrink_to_fit();
        self.attributes.shrink_to_fit();
        self.units.shrink_to_fit();
        self.scales.shrink_to_fit();
    }
}
