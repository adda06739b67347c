//! Reading a whole file into validated lines, then writing its daily items.
//!
//! A file is read and checked to the end before anything is written: a bad cell anywhere means
//! nothing is written, and the user gets the first problems (line, column, raw value, reason) so
//! that one pass over the file fixes them all. Only then are daily items generated, batch by
//! batch, straight from the distinct lines.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use crate::decode::{decode_text, TextEncoding};
use crate::error::{CellIssue, Error, InvalidFile};
use crate::kind::{Kind, Metric};
use crate::lines::{Added, LineTable};
use crate::number::{parse_metric, plain_whole, Quantity};
use crate::profile::{ImportProfile, Period};
use crate::records::{PipelinedRecords, RecordReader};
use crate::store::{DailyItem, DimensionValues, ImportOrigin, ItemOrder, MetricValues, Store};
pub use crate::text::normalise_text;

/// Most dimensions and metrics a profile can map (each target at most once).
const DIMENSIONS: usize = crate::kind::Dimension::ALL.len();
const METRICS: usize = crate::kind::Metric::ALL.len();

/// How much of a file's trouble is kept for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Errors listed before the rest are only counted.
    pub max_errors: usize,
    /// Warnings listed before the rest are only counted.
    pub max_warnings: usize,
    /// Merged keys listed before the rest are only counted.
    pub max_merges: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_errors: 20,
            max_warnings: 100,
            max_merges: 100,
        }
    }
}

/// Rows whose keys became the same once accents were removed and spaces trimmed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MergedKey {
    pub key: String,
    /// The lines merged, first one first.
    pub lines: Vec<u64>,
    /// The distinct raw values those lines held.
    pub values: Vec<String>,
}

/// A file read to the end without a single problem: ready to write.
pub struct ValidatedFile {
    kind: Kind,
    period: Period,
    encoding: TextEncoding,
    delimiter: u8,
    /// Per attribute slot, which dimension it holds; the key is not among them.
    attribute_dims: Vec<crate::kind::Dimension>,
    key_dim: crate::kind::Dimension,
    metrics: Vec<Metric>,
    lines: LineTable,
    lines_read: u64,
    totals_read: BTreeMap<Metric, Quantity>,
    warnings: Vec<CellIssue>,
    warning_count: u64,
    merged: Vec<MergedKey>,
    merged_count: u64,
}

/// Reads and checks the whole of `input` against `profile`. Reading (and decoding) `input` and
/// splitting it into records runs on a second thread, scoped to this call, beside the checks:
/// hence `Send`.
pub fn read_file<R: Read + Send>(
    profile: &ImportProfile,
    input: R,
    options: &ReadOptions,
) -> Result<ValidatedFile, Error> {
    // A profile built in code rather than by `ImportProfile::from_json` is not checked yet.
    if profile.dimensions.is_empty() || profile.dimensions.len() > DIMENSIONS || profile.metrics.len() > METRICS {
        return Err(Error::Profile {
            problems: vec![format!(
                "a profile maps 1 to {DIMENSIONS} dimensions (the key first) and at most {METRICS} metrics, each once; \
                 this one maps {} and {}",
                profile.dimensions.len(),
                profile.metrics.len()
            )],
        });
    }
    let decoded = decode_text(input, profile.encoding).map_err(Error::Read)?;
    let encoding = decoded.encoding();
    let mut text = BufReader::with_capacity(256 * 1024, decoded);
    let delimiter = match profile.delimiter {
        Some(d) => d,
        None => detect_delimiter(text.fill_buf().map_err(io_error)?),
    };
    let records = RecordReader::new(text, delimiter);

    let key_col = profile.key_column();
    let attribute_cols: Vec<_> = profile.dimensions[1..].to_vec();
    let mut table = LineTable::new(attribute_cols.len(), profile.metrics.len());
    let needed_columns = profile.max_idx() + 1;

    let mut errors: Vec<CellIssue> = Vec::new();
    let mut error_count: u64 = 0;
    let mut warnings: Vec<CellIssue> = Vec::new();
    let mut warning_count: u64 = 0;
    let mut merges: BTreeMap<usize, MergedKey> = BTreeMap::new();
    let mut merged_count: u64 = 0;
    // The line where each distinct line was first seen, for the merge report; 32 bits (a file
    // of over 4 billion lines reports its later first lines as 4294967295).
    let mut first_lines: Vec<u32> = Vec::new();
    let mut totals: Vec<Quantity> = vec![Quantity::ZERO; profile.metrics.len()];
    let mut lines_read: u64 = 0;
    let mut header_skipped = !profile.skip_header;
    let mut last_line: u64 = 0;

    let mut metric_values: Vec<Option<Quantity>> = vec![None; profile.metrics.len()];

    macro_rules! problem {
        ($line:expr, $idx:expr, $value:expr, $reason:expr) => {{
            error_count += 1;
            if errors.len() < options.max_errors {
                errors.push(CellIssue {
                    line: $line,
                    idx: $idx,
                    value: $value.to_string(),
                    reason: $reason,
                });
            }
        }};
    }

    // Records are read and split on a thread of their own while this one checks them.
    std::thread::scope(|scope| -> Result<(), Error> {
        let mut records = PipelinedRecords::start(scope, records).map_err(Error::Read)?;
        loop {
            let Some(record) = records.next().map_err(io_error)? else {
                break;
            };
            let line = record.line();
            last_line = line;
            if !header_skipped {
                header_skipped = true;
                continue;
            }
            if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                continue;
            }
            lines_read += 1;
            if record.len() < needed_columns {
                problem!(
                    line,
                    None,
                    "",
                    format!(
                        "the line has {} column{}, the profile reads up to column {} (idx {})",
                        record.len(),
                        if record.len() == 1 { "" } else { "s" },
                        needed_columns,
                        needed_columns - 1
                    )
                );
                continue;
            }

            // Only the mapped columns are decoded as text: the others may hold anything. Plain
            // digits, most metric cells, are read straight from their bytes.
            let mut dimension_texts: [&str; DIMENSIONS] = [""; DIMENSIONS];
            let mut metric_texts: [&str; METRICS] = [""; METRICS];
            let mut bad_utf8 = None;
            for (slot, col) in profile.dimensions.iter().enumerate() {
                match std::str::from_utf8(record.field(col.idx)) {
                    Ok(text) => dimension_texts[slot] = text,
                    Err(_) => {
                        bad_utf8 = Some(col.idx);
                        break;
                    }
                }
            }
            for (slot, col) in profile.metrics.iter().enumerate() {
                if bad_utf8.is_some() {
                    break;
                }
                let bytes = record.field(col.idx);
                metric_values[slot] = plain_whole(bytes);
                if metric_values[slot].is_none() {
                    match std::str::from_utf8(bytes) {
                        Ok(text) => metric_texts[slot] = text,
                        Err(_) => bad_utf8 = Some(col.idx),
                    }
                }
            }
            if let Some(idx) = bad_utf8 {
                problem!(
                    line,
                    Some(idx),
                    String::from_utf8_lossy(record.field(idx)),
                    format!(
                        "not valid UTF-8 (the start of the file was); set \"encoding\" in the profile to one of {}",
                        TextEncoding::NAMES.join(", ")
                    )
                );
                // Nothing after an encoding mismatch can be trusted.
                break;
            }
            let raw_key = dimension_texts[0];
            let key = match normalise_key(profile.kind, raw_key) {
                Ok(k) => k,
                Err(reason) => {
                    problem!(line, Some(key_col.idx), raw_key, reason);
                    continue;
                }
            };
            let mut attribute_values: [Option<Cow<'_, str>>; DIMENSIONS] = Default::default();
            for (slot, text) in dimension_texts[1..profile.dimensions.len()].iter().enumerate() {
                attribute_values[slot] = Some(normalise_text(text)).filter(|v| !v.is_empty());
            }
            let attribute_values = &attribute_values[..attribute_cols.len()];
            let mut line_ok = true;
            let mut any_metric = false;
            for (slot, col) in profile.metrics.iter().enumerate() {
                if metric_values[slot].is_some() {
                    any_metric = true;
                    continue;
                }
                let raw = metric_texts[slot];
                match parse_metric(raw, col.metric.unit(), profile.decimal_separator) {
                    Ok(Some(v)) => {
                        metric_values[slot] = Some(v);
                        any_metric = true;
                    }
                    Ok(None) => {
                        metric_values[slot] = None;
                        warning_count += 1;
                        if warnings.len() < options.max_warnings {
                            warnings.push(CellIssue {
                                line,
                                idx: Some(col.idx),
                                value: raw.to_string(),
                                reason: format!("empty {}: not written for this line", col.metric),
                            });
                        }
                    }
                    Err(e) => {
                        line_ok = false;
                        let mut reason = format!("{} for {}", e, col.metric);
                        if line == 1 && profile.skip_header.eq(&false) {
                            reason.push_str(" (is the first line a header? set \"skipHeader\": true)");
                        }
                        problem!(line, Some(col.idx), raw, reason);
                    }
                }
            }
            if !line_ok || error_count > 0 {
                // Once the file is known bad, only look for more problems.
                continue;
            }
            if !any_metric {
                warning_count += 1;
                if warnings.len() < options.max_warnings {
                    warnings.push(CellIssue {
                        line,
                        idx: None,
                        value: String::new(),
                        reason: "every metric is empty: the line is skipped".to_string(),
                    });
                }
                continue;
            }
            let added = table
                .add(&key, raw_key, attribute_values, &metric_values)
                .map_err(|_| {
                    Error::InvalidFile(InvalidFile {
                        issues: vec![CellIssue {
                            line,
                            idx: None,
                            value: String::new(),
                            reason: "the file's keys exceed 4 GiB of text".to_string(),
                        }],
                        total: 1,
                    })
                })?;
            match added {
                Err(overflow) => {
                    let col = profile.metrics[overflow.metric_slot];
                    problem!(
                        line,
                        Some(col.idx),
                        String::from_utf8_lossy(record.field(col.idx)),
                        format!("the sum of {} for this key is too large", col.metric)
                    );
                    continue;
                }
                Ok(Added::New(i)) => {
                    debug_assert_eq!(i, first_lines.len());
                    first_lines.push(u32::try_from(line).unwrap_or(u32::MAX));
                }
                Ok(Added::Merged(i)) => {
                    merged_count += 1;
                    let first_raw = table.raw_key(i).to_string();
                    let entry = merges.entry(i).or_insert_with(|| MergedKey {
                        key: key.to_string(),
                        lines: vec![u64::from(first_lines[i])],
                        values: vec![first_raw],
                    });
                    entry.lines.push(line);
                    if !entry.values.iter().any(|v| v == raw_key) {
                        entry.values.push(raw_key.to_string());
                    }
                }
            }
            for (slot, col) in profile.metrics.iter().enumerate() {
                if let Some(v) = metric_values[slot] {
                    match totals[slot].checked_add(v) {
                        Some(t) => totals[slot] = t,
                        None => problem!(
                            line,
                            Some(col.idx),
                            String::from_utf8_lossy(record.field(col.idx)),
                            format!("the file's total of {} is too large", col.metric)
                        ),
                    }
                }
            }
        }
        Ok(())
    })?;

    if lines_read == 0 && error_count == 0 {
        problem!(
            last_line.max(1),
            None,
            "",
            if profile.skip_header {
                "the file has no data line after its header".to_string()
            } else {
                "the file has no data line".to_string()
            }
        );
    }
    if error_count > 0 {
        return Err(Error::InvalidFile(InvalidFile {
            issues: errors,
            total: error_count,
        }));
    }
    table.finish_reading();
    let totals_read: BTreeMap<Metric, Quantity> = profile
        .metrics
        .iter()
        .zip(totals)
        .map(|(col, total)| (col.metric, total))
        .collect();
    let mut merged: Vec<MergedKey> = merges.into_values().collect();
    merged.truncate(options.max_merges);
    Ok(ValidatedFile {
        kind: profile.kind,
        period: profile.period,
        encoding,
        delimiter,
        attribute_dims: attribute_cols.iter().map(|c| c.dimension).collect(),
        key_dim: key_col.dimension,
        metrics: profile.metrics.iter().map(|c| c.metric).collect(),
        lines: table,
        lines_read,
        totals_read,
        warnings,
        warning_count,
        merged,
        merged_count,
    })
}

fn io_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::InvalidData {
        Error::Decode { message: e.to_string() }
    } else {
        Error::Read(e)
    }
}

/// The delimiter of the first line: the most frequent of `,` `;` TAB outside quotes.
pub fn detect_delimiter(start: &[u8]) -> u8 {
    let first_line = start.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in first_line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], usize::from(i == 0))).unwrap_or(0);
    candidates[best]
}

fn normalise_key(kind: Kind, raw: &str) -> Result<Cow<'_, str>, String> {
    let key = normalise_text(raw);
    if key.is_empty() {
        return Err(format!("the key {} is empty", kind.key_dimension()));
    }
    if kind == Kind::GeolocCountry {
        let code = key.to_ascii_uppercase();
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err("a country must be an ISO 3166-1 alpha-2 code (two letters, e.g. FR)".to_string());
        }
        return Ok(Cow::Owned(code));
    }
    Ok(key)
}

impl ValidatedFile {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn period(&self) -> Period {
        self.period
    }

    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Data lines read (the header and blank lines not counted).
    pub fn lines_read(&self) -> u64 {
        self.lines_read
    }

    /// Distinct lines that will be written, after merging colliding keys.
    pub fn line_count(&self) -> u64 {
        self.lines.len() as u64
    }

    /// How many daily items writing this file upserts.
    pub fn daily_item_count(&self) -> u64 {
        self.line_count() * u64::from(self.period.days())
    }

    pub fn totals_read(&self) -> &BTreeMap<Metric, Quantity> {
        &self.totals_read
    }

    pub fn warnings(&self) -> (&[CellIssue], u64) {
        (&self.warnings, self.warning_count)
    }

    pub fn merged_keys(&self) -> (&[MergedKey], u64) {
        (&self.merged, self.merged_count)
    }

    /// Every daily item, generated on the fly.
    pub fn daily_items(&self, order: ItemOrder) -> DailyItems<'_> {
        DailyItems {
            file: self,
            order,
            line: 0,
            day: 0,
            current: None,
        }
    }

    /// The daily items of one line, day by day. The line's values are looked up and spread once
    /// for the first day and once for the others (every day after the first has the same share),
    /// not once per day.
    fn line_items(&self, line: usize) -> impl Iterator<Item = DailyItem<'_>> + '_ {
        let (first, rest) = self.line_templates(line);
        (0..self.period.days()).map(move |day| self.item_from_templates((first, rest), day))
    }

    /// Day `day`'s item of the line whose templates (see `line_templates`) these are.
    fn item_from_templates<'a>(&self, (first, rest): (DailyItem<'a>, DailyItem<'a>), day: u32) -> DailyItem<'a> {
        match day {
            0 => first,
            _ => DailyItem {
                day: self.period.day(day),
                ..rest
            },
        }
    }

    /// A line's item of the first day, and of every later day but for its date.
    fn line_templates(&self, line: usize) -> (DailyItem<'_>, DailyItem<'_>) {
        let first = self.item(line, 0);
        let rest = if self.period.days() > 1 {
            self.item(line, 1)
        } else {
            first
        };
        (first, rest)
    }

    fn item(&self, line: usize, day: u32) -> DailyItem<'_> {
        let days = self.period.days();
        let key = self.lines.key(line);
        let mut dimensions = DimensionValues::default();
        dimensions.set(self.key_dim, key);
        for (slot, &dim) in self.attribute_dims.iter().enumerate() {
            if let Some(v) = self.lines.attribute(line, slot) {
                dimensions.set(dim, v);
            }
        }
        let mut metrics = MetricValues::default();
        for (slot, &metric) in self.metrics.iter().enumerate() {
            if let Some(v) = self.lines.metric(line, slot) {
                metrics.set(metric, v.share(day, days));
            }
        }
        DailyItem {
            kind: self.kind,
            key,
            day: self.period.day(day),
            dimensions,
            metrics,
        }
    }

    /// Writes every daily item to `store`, in batches of the store's size and order, calling
    /// `progress` with the items written so far. Checks that what was written sums back to the
    /// file's totals, metric by metric.
    pub async fn write_to(
        &self,
        store: &dyn Store,
        origin: &ImportOrigin,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<WrittenTotals, Error> {
        let batch_size = store.batch_size().max(1);
        let mut batch: Vec<DailyItem<'_>> = Vec::with_capacity(batch_size);
        let mut written = WrittenTotals::default();
        let mut items = self.daily_items(store.preferred_order());
        loop {
            batch.clear();
            batch.extend(items.by_ref().take(batch_size));
            if batch.is_empty() {
                break;
            }
            store.upsert(origin, &batch).await.map_err(Error::Store)?;
            written.add_items(&batch);
            progress(written.items);
        }
        self.check_totals(&written)?;
        Ok(written)
    }

    /// Writes the daily items of lines `from_line..` (0-based, in the order of
    /// [`ValidatedFile::line_count`]'s distinct lines) in line order ([`ItemOrder::ByLine`]: all
    /// days of a line together), in batches of whole lines: `batch_items / days` lines per batch,
    /// at least one. After each batch `after_batch` is told what this call wrote so far and may
    /// answer `true` to stop there, at a line boundary; at least one batch is written per call
    /// (when any line is left), so a caller that always stops still makes progress.
    ///
    /// Writing a file in parts, each part starting at the previous part's `next_line`, writes
    /// exactly the items [`ValidatedFile::write_to`] writes. The totals are not checked here: add
    /// the parts' [`WrittenTotals`] together and give the sum to [`ValidatedFile::check_totals`].
    /// A `from_line` past the last line writes nothing.
    ///
    /// On a store failure the error comes with what the batches before it wrote: the failed
    /// batch may have been partly applied, and writing again from `next_line` repeats it.
    pub async fn write_lines_to(
        &self,
        store: &dyn Store,
        origin: &ImportOrigin,
        from_line: u64,
        batch_items: usize,
        after_batch: &mut (dyn FnMut(&LinesWritten) -> bool + Send),
    ) -> Result<LinesWritten, LinesFailed> {
        let lines = self.line_count();
        let days = self.period.days().max(1);
        let lines_per_batch = (batch_items / days as usize).max(1) as u64;
        let mut done = LinesWritten {
            written: WrittenTotals::default(),
            next_line: from_line.min(lines),
        };
        let mut batch: Vec<DailyItem<'_>> = Vec::new();
        while done.next_line < lines {
            let end = (done.next_line + lines_per_batch).min(lines);
            batch.clear();
            for line in done.next_line..end {
                // Lines are indexed by usize in the table; `line < lines` fits.
                let line = line as usize;
                batch.extend(self.line_items(line));
            }
            if let Err(e) = store.upsert(origin, &batch).await {
                return Err(LinesFailed {
                    done,
                    error: Error::Store(e),
                });
            }
            done.written.add_items(&batch);
            done.next_line = end;
            if done.next_line < lines && after_batch(&done) {
                break;
            }
        }
        Ok(done)
    }

    /// Checks that `written` (a whole write, or the sum of the parts of one) sums back to the
    /// file's totals, metric by metric.
    pub fn check_totals(&self, written: &WrittenTotals) -> Result<(), Error> {
        for (&metric, &read) in &self.totals_read {
            let got = written.totals.get(&metric).copied().unwrap_or(Quantity::ZERO);
            if !got.same_value(read) {
                return Err(Error::TotalsMismatch {
                    metric,
                    read,
                    written: got,
                });
            }
        }
        Ok(())
    }
}

/// What a call to [`ValidatedFile::write_lines_to`] wrote, and where the next part starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinesWritten {
    /// The items and totals this call wrote.
    pub written: WrittenTotals,
    /// The first line not written; [`ValidatedFile::line_count`] when the last line is written.
    pub next_line: u64,
}

/// A store failure in [`ValidatedFile::write_lines_to`], with what the batches before it wrote.
#[derive(Debug)]
pub struct LinesFailed {
    pub done: LinesWritten,
    pub error: Error,
}

impl WrittenTotals {
    /// Counts `items` as written: their number, and their metrics into the totals (summed per
    /// metric in an array first: one map update per metric and batch, not per item). A total
    /// that would overflow stays as it was, which the totals check then reports.
    fn add_items(&mut self, items: &[DailyItem<'_>]) {
        let mut sums: [Option<Quantity>; Metric::COUNT] = [None; Metric::COUNT];
        for item in items {
            for (metric, value) in item.metrics.iter() {
                let sum = sums[metric.index()].get_or_insert(Quantity::ZERO);
                *sum = sum.checked_add(value).unwrap_or(*sum);
            }
        }
        let batch = WrittenTotals {
            items: items.len() as u64,
            totals: Metric::ALL
                .iter()
                .zip(sums)
                .filter_map(|(&metric, sum)| Some((metric, sum?)))
                .collect(),
        };
        self.add(&batch);
    }

    /// Adds another part's items and totals; `false` (and `self` unchanged for that metric) if
    /// a total would overflow, which the totals check then reports.
    pub fn add(&mut self, other: &WrittenTotals) -> bool {
        let mut ok = true;
        self.items += other.items;
        for (&metric, &value) in &other.totals {
            let total = self.totals.entry(metric).or_insert(Quantity::ZERO);
            match total.checked_add(value) {
                Some(sum) => *total = sum,
                None => ok = false,
            }
        }
        ok
    }
}

/// What a write put in the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WrittenTotals {
    pub items: u64,
    pub totals: BTreeMap<Metric, Quantity>,
}

/// The daily items of a file, in the order asked for.
pub struct DailyItems<'a> {
    file: &'a ValidatedFile,
    order: ItemOrder,
    line: usize,
    day: u32,
    /// In line order, the current line's templates (see `ValidatedFile::line_templates`).
    current: Option<(DailyItem<'a>, DailyItem<'a>)>,
}

impl<'a> Iterator for DailyItems<'a> {
    type Item = DailyItem<'a>;

    fn next(&mut self) -> Option<DailyItem<'a>> {
        let (lines, days) = (self.file.lines.len(), self.file.period.days());
        if lines == 0 || self.line >= lines || self.day >= days {
            return None;
        }
        let item = match self.order {
            ItemOrder::ByLine => {
                let templates = match self.current {
                    Some(templates) if self.day > 0 => templates,
                    _ => *self.current.insert(self.file.line_templates(self.line)),
                };
                self.file.item_from_templates(templates, self.day)
            }
            ItemOrder::ByDay => self.file.item(self.line, self.day),
        };
        match self.order {
            ItemOrder::ByLine => {
                self.day += 1;
                if self.day == days {
                    self.day = 0;
                    self.line += 1;
                }
            }
            ItemOrder::ByDay => {
                self.line += 1;
                if self.line == lines {
                    self.line = 0;
                    self.day += 1;
                }
            }
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::profile::ProfileLimits;
    use crate::store::{ItemQuery, StoreError, StoredItem, Tenant};

    /// Keeps every upserted item as `key/day: metric=value,...`; fails the call numbered
    /// `fail_call` (1-based) once.
    #[derive(Default)]
    struct Recorder {
        items: Mutex<Vec<String>>,
        calls: Mutex<usize>,
        fail_call: Option<usize>,
    }

    #[async_trait]
    impl Store for Recorder {
        async fn upsert(&self, _origin: &ImportOrigin, items: &[DailyItem<'_>]) -> Result<(), StoreError> {
            let call = {
                let mut calls = self.calls.lock().unwrap();
                *calls += 1;
                *calls
            };
            // A failing batch may be partly applied: its first item gets through.
            let take = if self.fail_call == Some(call) { 1 } else { items.len() };
            let mut kept = self.items.lock().unwrap();
            for item in &items[..take.min(items.len())] {
                let metrics: Vec<String> = item.metrics.iter().map(|(m, v)| format!("{m}={v}")).collect();
                kept.push(format!("{}/{}: {}", item.key, item.day, metrics.join(",")));
            }
            if take < items.len() {
                return Err(StoreError::retryable("throttled", std::io::Error::other("slow down")));
            }
            Ok(())
        }

        async fn query(&self, _query: &ItemQuery) -> Result<Vec<StoredItem>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn origin() -> ImportOrigin {
        ImportOrigin {
            tenant: Tenant::new("acme").unwrap(),
            source: "test.csv".into(),
            imported_at: "2024-01-01T00:00:00.000Z".into(),
        }
    }

    /// Seven lines over three days, visits and an amount with cents.
    fn file() -> ValidatedFile {
        let profile = ImportProfile::from_json(
            r#"{"skipHeader":true,"kind":"website","dimensions":[{"idx":0,"target":"website_name"}],
                "metrics":[{"idx":1,"target":"visit"},{"idx":2,"target":"scartvalidamount"}],
                "period":{"from":"01/03/2023","to":"03/03/2023","scale":"D"}}"#,
            &ProfileLimits::default(),
        )
        .unwrap();
        let csv = "site,visits,amount\na,30,10.01\nb,10,0.02\nc,7,\nd,1,1.5\ne,0,0\nf,100,99.99\ng,2,0.10\n";
        read_file(&profile, csv.as_bytes(), &ReadOptions::default()).unwrap()
    }

    fn all_by_line(file: &ValidatedFile) -> Vec<String> {
        file.daily_items(ItemOrder::ByLine)
            .map(|item| {
                let metrics: Vec<String> = item.metrics.iter().map(|(m, v)| format!("{m}={v}")).collect();
                format!("{}/{}: {}", item.key, item.day, metrics.join(","))
            })
            .collect()
    }

    #[test]
    fn every_order_yields_the_items_computed_one_by_one() {
        for file in [file(), one_day_file()] {
            let (lines, days) = (file.line_count() as usize, file.period.days());
            let one_by_one: Vec<DailyItem<'_>> = (0..lines)
                .flat_map(|line| (0..days).map(move |day| (line, day)))
                .map(|(line, day)| file.item(line, day))
                .collect();
            let by_line: Vec<DailyItem<'_>> = file.daily_items(ItemOrder::ByLine).collect();
            assert_eq!(by_line, one_by_one);
            let per_line: Vec<DailyItem<'_>> = (0..lines).flat_map(|line| file.line_items(line)).collect();
            assert_eq!(per_line, one_by_one);
            let mut by_day: Vec<DailyItem<'_>> = file.daily_items(ItemOrder::ByDay).collect();
            by_day.sort_by_key(|item| (item.key, item.day));
            let mut sorted = one_by_one.clone();
            sorted.sort_by_key(|item| (item.key, item.day));
            assert_eq!(by_day, sorted);
        }
    }

    fn one_day_file() -> ValidatedFile {
        let profile = ImportProfile::from_json(
            r#"{"skipHeader":false,"kind":"website","dimensions":[{"idx":0,"target":"website_name"}],
                "metrics":[{"idx":1,"target":"visit"}],
                "period":{"from":"29/02/2024","to":"29/02/2024","scale":"D"}}"#,
            &ProfileLimits::default(),
        )
        .unwrap();
        read_file(&profile, "a,3\nb,4\n".as_bytes(), &ReadOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn parts_stopped_at_line_boundaries_write_the_whole_file_and_sum_to_its_totals() {
        let file = file();
        let store = Recorder::default();
        let mut total = WrittenTotals::default();
        let mut from = 0;
        let mut parts = Vec::new();
        loop {
            // 7 items per batch over 3 days: 2 lines per batch; stop after every batch.
            let mut batches = Vec::new();
            let part = file
                .write_lines_to(&store, &origin(), from, 7, &mut |done: &LinesWritten| {
                    batches.push(done.next_line);
                    true
                })
                .await
                .unwrap();
            assert!(part.next_line > from, "no progress from line {from}");
            assert_eq!(part.written.items, (part.next_line - from) * 3);
            assert!(total.add(&part.written));
            parts.push(part.next_line);
            from = part.next_line;
            if from == file.line_count() {
                assert!(batches.is_empty(), "told to stop after the last batch");
                break;
            }
            assert_eq!(batches, vec![part.next_line]);
        }
        assert_eq!(parts, vec![2, 4, 6, 7]);
        assert_eq!(*store.items.lock().unwrap(), all_by_line(&file));
        assert_eq!(total.items, file.daily_item_count());
        file.check_totals(&total).unwrap();
        assert_eq!(total.totals[&Metric::SCartValidAmount].to_string(), "111.62");
        assert_eq!(total.totals[&Metric::Visit], Quantity::whole(150));
    }

    #[tokio::test]
    async fn a_caller_that_never_stops_gets_the_whole_file_in_one_part() {
        let file = file();
        let store = Recorder::default();
        let mut calls = 0;
        let part = file
            .write_lines_to(&store, &origin(), 0, 512, &mut |_: &LinesWritten| {
                calls += 1;
                false
            })
            .await
            .unwrap();
        assert_eq!(calls, 0, "one batch holds the file");
        assert_eq!(part.next_line, 7);
        file.check_totals(&part.written).unwrap();
        assert_eq!(*store.items.lock().unwrap(), all_by_line(&file));
    }

    #[tokio::test]
    async fn a_period_longer_than_the_batch_writes_one_line_per_batch() {
        let file = file();
        let store = Recorder::default();
        let mut stops = Vec::new();
        let part = file
            .write_lines_to(&store, &origin(), 5, 2, &mut |done: &LinesWritten| {
                stops.push(done.written.items);
                false
            })
            .await
            .unwrap();
        assert_eq!(stops, vec![3]);
        assert_eq!(part.next_line, 7);
        assert_eq!(part.written.items, 6);
        assert_eq!(store.items.lock().unwrap().len(), 6);
    }

    #[tokio::test]
    async fn a_part_alone_does_not_pass_the_totals_check() {
        let file = file();
        let part = file
            .write_lines_to(&Recorder::default(), &origin(), 0, 3, &mut |_: &LinesWritten| true)
            .await
            .unwrap();
        assert_eq!(part.next_line, 1);
        assert!(matches!(
            file.check_totals(&part.written),
            Err(Error::TotalsMismatch { .. })
        ));
        let past = file
            .write_lines_to(&Recorder::default(), &origin(), 99, 3, &mut |_: &LinesWritten| true)
            .await
            .unwrap();
        assert_eq!(
            past,
            LinesWritten {
                written: WrittenTotals::default(),
                next_line: 7
            }
        );
    }

    #[tokio::test]
    async fn a_store_failure_says_what_the_batches_before_it_wrote() {
        let file = file();
        let store = Recorder {
            fail_call: Some(3),
            ..Recorder::default()
        };
        let failed = file
            .write_lines_to(&store, &origin(), 0, 6, &mut |_: &LinesWritten| false)
            .await
            .unwrap_err();
        assert!(matches!(failed.error, Error::Store(_)));
        assert_eq!(failed.done.next_line, 4);
        assert_eq!(failed.done.written.items, 12);
        // Resuming at next_line repeats the partly applied batch and finishes the file.
        let rest = file
            .write_lines_to(&store, &origin(), failed.done.next_line, 6, &mut |_: &LinesWritten| {
                false
            })
            .await
            .unwrap();
        let mut total = failed.done.written.clone();
        assert!(total.add(&rest.written));
        file.check_totals(&total).unwrap();
        assert_eq!(total.items, 21);
    }
}
