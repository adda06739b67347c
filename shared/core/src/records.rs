//! Splitting decoded text into CSV records.
//!
//! Most lines of an analytics export are plain: fields split by the delimiter, some of them in
//! quotes without a quote or line break inside. Those lines are split here with `memchr`, a few
//! instructions per field. Any other line (a doubled quote, a line break inside quotes, a stray
//! carriage return, text after a closing quote) goes to `csv-core`, the parser of the csv crate,
//! from that line to the end of its record: what it reads is what the csv crate would read.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender};

use csv_core::ReadRecordResult;
use memchr::memchr;

/// One record: its fields as byte ranges of one buffer, and the line it starts on.
#[derive(Default)]
pub(crate) struct Record {
    bytes: Vec<u8>,
    fields: Vec<(usize, usize)>,
    line: u64,
    /// csv-core's field ends, kept between slow records.
    ends: Vec<usize>,
}

impl Record {
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// Field `i`; empty when the record has fewer fields.
    pub(crate) fn field(&self, i: usize) -> &[u8] {
        self.fields
            .get(i)
            .and_then(|&(start, end)| self.bytes.get(start..end))
            .unwrap_or_default()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.field(i))
    }

    /// The 1-based line the record starts on.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }
}

pub(crate) struct RecordReader<R> {
    input: R,
    delimiter: u8,
    core: csv_core::Reader,
    /// A line read but not fully parsed: csv-core stopped inside it, or it is not plain.
    pending: Vec<u8>,
    pending_at: usize,
    /// Line breaks consumed so far.
    newlines: u64,
    eof: bool,
    /// The most read at once while looking for a line break: a file without `\n` (classic Mac
    /// line ends, `\r` alone) goes to csv-core chunk by chunk instead of being read whole.
    line_limit: u64,
}

/// See `RecordReader::line_limit`: longer than any analytics line, small beside a file.
const LINE_LIMIT: u64 = 64 * 1024;

impl<R: BufRead> RecordReader<R> {
    pub(crate) fn new(input: R, delimiter: u8) -> Self {
        RecordReader {
            input,
            delimiter,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            pending: Vec::new(),
            pending_at: 0,
            newlines: 0,
            eof: false,
            line_limit: LINE_LIMIT,
        }
    }

    #[cfg(test)]
    fn with_line_limit(mut self, limit: u64) -> Self {
        self.line_limit = limit.max(1);
        self
    }

    /// Appends to `buffer` up to and including the next line break, at most `line_limit` bytes.
    fn read_line(input: &mut R, limit: u64, buffer: &mut Vec<u8>) -> io::Result<usize> {
        input.by_ref().take(limit).read_until(b'\n', buffer)
    }

    /// Reads the next record into `record`; `false` at the end of the input. Blank lines are
    /// skipped, as the csv crate skips them.
    pub(crate) fn read(&mut self, record: &mut Record) -> io::Result<bool> {
        loop {
            if self.pending_at < self.pending.len() || self.eof {
                return self.read_with_core(record);
            }
            record.bytes.clear();
            let read = Self::read_line(&mut self.input, self.line_limit, &mut record.bytes)?;
            if read == 0 {
                self.eof = true;
                return self.read_with_core(record);
            }
            let ends_with_newline = record.bytes.last() == Some(&b'\n');
            let cut = !ends_with_newline && read as u64 == self.line_limit;
            let mut content = record.bytes.len() - usize::from(ends_with_newline);
            if content > 0 && record.bytes[content - 1] == b'\r' {
                content -= 1;
            }
            if !cut && split_plain(&record.bytes[..content], self.delimiter, &mut record.fields) {
                record.line = self.newlines + 1;
                self.newlines += u64::from(ends_with_newline);
                if content == 0 {
                    continue;
                }
                return Ok(true);
            }
            // Not plain, or not a whole line: csv-core parses it, and whatever follows until its
            // record ends.
            std::mem::swap(&mut self.pending, &mut record.bytes);
            self.pending_at = 0;
        }
    }

    fn read_with_core(&mut self, record: &mut Record) -> io::Result<bool> {
        let (mut out_len, mut ends_len) = (0, 0);
        record
            .bytes
            .resize(record.bytes.capacity().max(self.pending.len()).max(256), 0);
        record.ends.resize(record.ends.len().max(64), 0);
        let mut start_line = None;
        loop {
            if self.pending_at == self.pending.len() && !self.eof {
                self.pending.clear();
                self.pending_at = 0;
                if Self::read_line(&mut self.input, self.line_limit, &mut self.pending)? == 0 {
                    self.eof = true;
                }
            }
            let input = &self.pending[self.pending_at..];
            // The record starts at its first byte that is not a line break csv-core skips.
            if start_line.is_none() {
                let skipped = input.iter().take_while(|&&b| b == b'\n' || b == b'\r').count();
                if skipped < input.len() {
                    start_line = Some(self.newlines + count_newlines(&input[..skipped]) + 1);
                }
            }
            let (result, read, written, ended) =
                self.core
                    .read_record(input, &mut record.bytes[out_len..], &mut record.ends[ends_len..]);
            self.newlines += count_newlines(&input[..read]);
            self.pending_at += read;
            out_len += written;
            ends_len += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let grown = record.bytes.len() * 2;
                    record.bytes.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = record.ends.len() * 2;
                    record.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    record.fields.clear();
                    let mut start = 0;
                    for &end in &record.ends[..ends_len] {
                        record.fields.push((start, end));
                        start = end;
                    }
                    record.line = start_line.unwrap_or(self.newlines);
                    return Ok(true);
                }
                ReadRecordResult::End => return Ok(false),
            }
        }
    }
}

/// Records per hand-over between the thread reading records and the one checking them: a few
/// hundred microseconds of work each side, so the cost of a hand-over (a wake-up) is small.
const BATCH_RECORDS: usize = 128;
/// Batches read ahead of the checks: bounds the memory (a batch of 128 records of 42 columns
/// is about 125 KB) while keeping the reading thread busy.
const BATCHES_AHEAD: usize = 2;

/// What the reading thread hands over: a batch of records, or the error that ended reading
/// (after every record read before it).
type Handed = io::Result<Vec<Record>>;

/// Records read by a thread of its own ([`read_in_batches`]): reading and decoding the input
/// and splitting its lines run beside the checks of the records already read. Records come in
/// file order, exactly as [`RecordReader::read`] gives them; an error comes after every record
/// read before it. Dropping this stops the reading thread at its next hand-over.
pub(crate) struct PipelinedRecords {
    batches: Receiver<Handed>,
    /// Checked batches go back to the reading thread, their buffers reused.
    used: SyncSender<Vec<Record>>,
    batch: Vec<Record>,
    at: usize,
}

impl PipelinedRecords {
    /// Starts reading `reader` on a thread of `scope` (named `reimport-records`); fails only if
    /// the system cannot start a thread.
    pub(crate) fn start<'scope, 'env, R: BufRead + Send + 'scope>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        reader: RecordReader<R>,
    ) -> io::Result<PipelinedRecords> {
        let (batches_in, batches) = std::sync::mpsc::sync_channel(BATCHES_AHEAD);
        let (used, used_out) = std::sync::mpsc::sync_channel(BATCHES_AHEAD + 2);
        std::thread::Builder::new()
            .name("reimport-records".to_string())
            .spawn_scoped(scope, move || read_in_batches(reader, &batches_in, &used_out))?;
        Ok(PipelinedRecords {
            batches,
            used,
            batch: Vec::new(),
            at: 0,
        })
    }

    /// The next record; `None` at the end of the input.
    pub(crate) fn next(&mut self) -> io::Result<Option<&Record>> {
        if self.at == self.batch.len() {
            let used = std::mem::take(&mut self.batch);
            if used.capacity() > 0 {
                // The reading thread may have ended: the buffers are then simply dropped.
                let _ = self.used.try_send(used);
            }
            self.at = 0;
            match self.batches.recv() {
                Ok(handed) => self.batch = handed?,
                // The reading thread ended after its last batch.
                Err(_) => return Ok(None),
            }
        }
        self.at += 1;
        Ok(self.batch.get(self.at - 1))
    }
}

/// The reading thread: fills batches of records (reusing those handed back) and hands them
/// over until the input ends, reading fails, or the checking side is gone.
fn read_in_batches<R: BufRead>(
    mut reader: RecordReader<R>,
    batches: &SyncSender<Handed>,
    used: &Receiver<Vec<Record>>,
) {
    loop {
        let mut batch = used.try_recv().unwrap_or_default();
        batch.resize_with(BATCH_RECORDS, Record::default);
        let mut filled = 0;
        // What the last read said: `Ok(true)` while the batch filled up with records to spare.
        let mut last = Ok(true);
        while filled < BATCH_RECORDS {
            last = reader.read(&mut batch[filled]);
            if !matches!(last, Ok(true)) {
                break;
            }
            filled += 1;
        }
        batch.truncate(filled);
        if filled > 0 && batches.send(Ok(batch)).is_err() {
            return;
        }
        match last {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                let _ = batches.send(Err(e));
                return;
            }
        }
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Splits `line` (without its line break) into `fields` when it is plain: no carriage return,
/// and every quote either opens a field or closes it right before a delimiter or the end.
/// `false` leaves the line to csv-core.
fn split_plain(line: &[u8], delimiter: u8, fields: &mut Vec<(usize, usize)>) -> bool {
    fields.clear();
    if memchr(b'\r', line).is_some() {
        return false;
    }
    if line.is_empty() {
        return true;
    }
    let mut at = 0;
    loop {
        let end;
        if line.get(at) == Some(&b'"') {
            let Some(close) = memchr(b'"', &line[at + 1..]).map(|i| at + 1 + i) else {
                return false;
            };
            fields.push((at + 1, close));
            end = close + 1;
            if end < line.len() && line[end] != delimiter {
                return false;
            }
        } else {
            end = match find_delimiter_or_quote(line, at, delimiter) {
                Some(i) if line[i] == b'"' => return false,
                Some(i) => i,
                None => line.len(),
            };
            fields.push((at, end));
        }
        if end >= line.len() {
            return true;
        }
        // `end` is a delimiter: a field follows, empty if the line ends there.
        at = end + 1;
        if at == line.len() {
            fields.push((at, at));
            return true;
        }
    }
}

/// The first delimiter or quote of `line` from `from` on. Fields are short (a few digits,
/// mostly): eight bytes are compared at a time in a word, which beats both a byte loop and a
/// vectorised search set up again for every field.
fn find_delimiter_or_quote(line: &[u8], from: usize, delimiter: u8) -> Option<usize> {
    const LOW_SEVEN: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    // The high bit of each byte of `x` that is zero, and nothing else (no carry crosses bytes).
    let zero_bytes = |x: u64| !(((x & LOW_SEVEN) + LOW_SEVEN) | x | LOW_SEVEN);
    let delimiters = u64::from_ne_bytes([delimiter; 8]);
    let quotes = u64::from_ne_bytes([b'"'; 8]);
    let mut at = from;
    while let Some(chunk) = line.get(at..at + 8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(bytes);
        let found = zero_bytes(word ^ delimiters) | zero_bytes(word ^ quotes);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    line.get(at..)?
        .iter()
        .position(|&b| b == delimiter || b == b'"')
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(text: &[u8], delimiter: u8, capacity: usize) -> Vec<(u64, Vec<Vec<u8>>)> {
        ours_limited(text, delimiter, capacity, LINE_LIMIT)
    }

    fn ours_limited(text: &[u8], delimiter: u8, capacity: usize, limit: u64) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut reader =
            RecordReader::new(io::BufReader::with_capacity(capacity, text), delimiter).with_line_limit(limit);
        let mut record = Record::default();
        let mut out = Vec::new();
        while reader.read(&mut record).unwrap() {
            out.push((record.line(), record.iter().map(<[u8]>::to_vec).collect()));
        }
        out
    }

    fn csv_crate(text: &[u8], delimiter: u8) -> Vec<Vec<Vec<u8>>> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        while reader.read_byte_record(&mut record).unwrap() {
            out.push(record.iter().map(<[u8]>::to_vec).collect());
        }
        out
    }

    fn fields_only(records: Vec<(u64, Vec<Vec<u8>>)>) -> Vec<Vec<Vec<u8>>> {
        records.into_iter().map(|(_, fields)| fields).collect()
    }

    #[test]
    fn plain_and_quoted_lines() {
        let text = b"a,b,c\n\"x,y\",\"\",z\n1,,\n\n,\r\nq\n";
        let got = ours(text, b',', 64);
        let lines: Vec<u64> = got.iter().map(|r| r.0).collect();
        assert_eq!(lines, [1, 2, 3, 5, 6]);
        assert_eq!(fields_only(got), csv_crate(text, b','));
    }

    #[test]
    fn lines_that_need_csv_core() {
        let text = b"h\n\"a\"\"b\",c\n\"multi\nline\",d\ne\rf,g\n\"q\"x,h\nlast";
        let got = ours(text, b',', 8);
        assert_eq!(fields_only(got.clone()), csv_crate(text, b','));
        let lines: Vec<u64> = got.iter().map(|r| r.0).collect();
        // The multi-line record starts on line 3; "e" and "f,g" share line 5.
        assert_eq!(lines, [1, 2, 3, 5, 5, 6, 7]);
    }

    #[test]
    fn blank_lines_keep_line_numbers_right() {
        let text = b"\n\r\na;b\r\n\r\n\"c\nd\";e\r\n\nf";
        let got = ours(text, b';', 4);
        assert_eq!(fields_only(got.clone()), csv_crate(text, b';'));
        let lines: Vec<u64> = got.iter().map(|r| r.0).collect();
        assert_eq!(lines, [3, 5, 8]);
    }

    #[test]
    fn the_word_search_finds_the_first_delimiter_or_quote() {
        let line = b"0123456789abcdef,\"x;\x80\xff\x00,";
        for from in 0..line.len() {
            for delimiter in [b',', b';', 0x80, 0xFF, 0x00] {
                let expected = line[from..]
                    .iter()
                    .position(|&b| b == delimiter || b == b'"')
                    .map(|i| from + i);
                assert_eq!(
                    find_delimiter_or_quote(line, from, delimiter),
                    expected,
                    "{from} {delimiter}"
                );
            }
        }
    }

    #[test]
    fn a_file_without_line_feeds_is_read_in_bounded_chunks() {
        // Classic Mac line ends: one "line" for read_until. The reader must not hold it whole.
        let line = b"/page-1,https://x/page-1?r=1,1,2,3\r";
        let text: Vec<u8> = line.iter().copied().cycle().take(line.len() * 500).collect();
        let mut reader = RecordReader::new(io::BufReader::with_capacity(64, &text[..]), b',').with_line_limit(100);
        let mut record = Record::default();
        let mut records = 0;
        while reader.read(&mut record).unwrap() {
            assert_eq!(record.field(0), b"/page-1");
            assert_eq!(record.len(), 5);
            assert!(reader.pending.capacity() <= 1024, "{}", reader.pending.capacity());
            records += 1;
        }
        assert_eq!(records, 500);
        assert_eq!(fields_only(ours_limited(&text, b',', 64, 100)), csv_crate(&text, b','));
    }

    /// Records as read: each one's line and fields.
    type RecordsRead = Vec<(u64, Vec<Vec<u8>>)>;

    /// Every record read through [`PipelinedRecords`], with its line, then how reading ended.
    fn pipelined(input: impl BufRead + Send) -> (RecordsRead, io::Result<()>) {
        std::thread::scope(|scope| {
            let mut records = PipelinedRecords::start(scope, RecordReader::new(input, b',')).unwrap();
            let mut out = Vec::new();
            loop {
                match records.next() {
                    Ok(Some(record)) => out.push((record.line(), record.iter().map(<[u8]>::to_vec).collect())),
                    Ok(None) => return (out, Ok(())),
                    Err(e) => return (out, Err(e)),
                }
            }
        })
    }

    fn numbered_lines(count: usize) -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..count {
            if i % 97 == 0 {
                // A record over two lines, read by csv-core, and a blank line.
                text.extend_from_slice(format!("\"/multi\nline-{i}\",{i}\n\n").as_bytes());
            } else {
                text.extend_from_slice(format!("/page-{i},{i}\n").as_bytes());
            }
        }
        text
    }

    #[test]
    fn pipelined_records_are_the_records_in_file_order() {
        // Several batches, the last one partial.
        let text = numbered_lines(3 * BATCH_RECORDS + 17);
        let (records, end) = pipelined(io::BufReader::with_capacity(100, text.as_slice()));
        assert!(end.is_ok());
        assert_eq!(records, ours(&text, b',', 100));
        assert_eq!(records.len(), 3 * BATCH_RECORDS + 17);
        let (records, end) = pipelined(&b""[..]);
        assert!(records.is_empty() && end.is_ok());
    }

    /// Gives `text`, then fails.
    struct FailsAfter<'a>(&'a [u8]);

    impl Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "broken at the end"));
            }
            let n = self.0.read(buf)?;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_comes_after_every_record_read_before_it() {
        let text = numbered_lines(2 * BATCH_RECORDS + 5);
        let (records, end) = pipelined(io::BufReader::with_capacity(64, FailsAfter(&text)));
        assert_eq!(records, ours(&text, b',', 64));
        assert_eq!(end.unwrap_err().to_string(), "broken at the end");
    }

    /// Lines without end.
    struct Endless(u64);

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0 += 1;
            let line = format!("/page-{},1\n", self.0);
            let n = line.len().min(buf.len());
            buf[..n].copy_from_slice(&line.as_bytes()[..n]);
            Ok(n)
        }
    }

    #[test]
    fn stopping_early_stops_the_reading_thread() {
        // The scope returns only once the reading thread has ended: on an endless input it must
        // notice that nobody checks its records any more.
        let taken = std::thread::scope(|scope| {
            let mut records =
                PipelinedRecords::start(scope, RecordReader::new(io::BufReader::new(Endless(0)), b',')).unwrap();
            let mut taken = 0;
            while taken < 5 * BATCH_RECORDS {
                assert!(records.next().unwrap().is_some());
                taken += 1;
            }
            taken
        });
        assert_eq!(taken, 5 * BATCH_RECORDS);
    }

    proptest! {
        #[test]
        fn reads_what_the_csv_crate_reads(
            text in proptest::collection::vec(
                prop_oneof![
                    4 => Just(b'a'), 3 => Just(b','), 2 => Just(b'"'), 2 => Just(b'\n'),
                    1 => Just(b'\r'), 1 => Just(b' '), 1 => Just(b';'), 1 => Just(0xC3),
                ],
                0..120,
            ),
            capacity in 1usize..40,
            limit in 1u64..50,
            semicolon in any::<bool>(),
        ) {
            let delimiter = if semicolon { b';' } else { b',' };
            let expected = csv_crate(&text, delimiter);
            prop_assert_eq!(fields_only(ours(&text, delimiter, capacity)), expected.clone());
            prop_assert_eq!(fields_only(ours_limited(&text, delimiter, capacity, limit)), expected);
        }
    }
}
