//! Continuations: an import that runs short of time stops after a whole batch, at a line
//! boundary, and leaves a checkpoint under `continuations/`; the checkpoint's own S3 event
//! starts the next invocation, which carries on from the line it names.
//!
//! The key says whose import it is and which invocation runs it:
//! `continuations/<tenant>/<any/path>/<name>.part-<n>.json` continues the import of
//! `incoming/<tenant>/<any/path>/<name>.csv` in its invocation `n` (2, 3, ...). As for files
//! dropped under `incoming/`, the tenant is the first folder of the key and nothing else; the
//! body must agree with the key (same bucket, tenant, CSV and profile keys, same part), or the
//! checkpoint is refused.
//!
//! The body records which upload of each file was read (ETag, version id), so that a file
//! replaced meanwhile is detected and the stale continuation refused, the next line to write,
//! and what was written so far: items and per-metric totals as exact decimals in strings.

use std::collections::BTreeMap;

use reimport_core::{Metric, Quantity, WrittenTotals};
use serde::{Deserialize, Serialize};

use crate::layout::{DroppedPair, CSV_SUFFIX, INCOMING_PREFIX};

pub const CONTINUATION_PREFIX: &str = "continuations/";
pub const CHECKPOINT_SUFFIX: &str = ".json";
const PART_MARK: &str = ".part-";
/// The body format this build writes and reads.
pub const FORMAT: u32 = 1;
/// Checkpoints are a few hundred bytes.
pub const MAX_CHECKPOINT_BYTES: u64 = 64 * 1024;

/// Where a checkpoint lives, read from its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointKey {
    /// The key after `continuations/`, without `.part-<n>.json`: `acme/2023/visits`.
    pub relative_stem: String,
    /// The invocation this checkpoint starts (2 for the first continuation).
    pub part: u32,
}

impl CheckpointKey {
    /// The key shape, or `None` for any other key (skipped by the function).
    pub fn parse(key: &str) -> Option<CheckpointKey> {
        let relative = key.strip_prefix(CONTINUATION_PREFIX)?;
        let named = relative.strip_suffix(CHECKPOINT_SUFFIX)?;
        let (stem, part) = named.rsplit_once(PART_MARK)?;
        if stem.is_empty() || stem.ends_with('/') || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let part: u32 = part.parse().ok().filter(|&p| p >= 2)?;
        Some(CheckpointKey {
            relative_stem: stem.to_string(),
            part,
        })
    }

    /// The checkpoint that starts invocation `part` of `pair`'s import.
    pub fn for_pair(pair: &DroppedPair, part: u32) -> CheckpointKey {
        CheckpointKey {
            relative_stem: pair.relative_stem().to_string(),
            part,
        }
    }

    pub fn key(&self) -> String {
        format!(
            "{CONTINUATION_PREFIX}{}{PART_MARK}{:04}{CHECKPOINT_SUFFIX}",
            self.relative_stem, self.part
        )
    }

    /// The pair whose import this continues.
    pub fn pair(&self) -> DroppedPair {
        DroppedPair::from_key(&format!("{INCOMING_PREFIX}{}{CSV_SUFFIX}", self.relative_stem))
            .expect("a non-empty stem not ending in '/' names a CSV")
    }
}

/// Which upload of a file was read: S3's ETag, and the version id on versioned buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

impl ObjectVersion {
    /// What S3 answered for an object.
    pub fn of(object: &aws_sdk_s3::operation::get_object::GetObjectOutput) -> ObjectVersion {
        ObjectVersion {
            etag: object.e_tag().map(str::to_string),
            version_id: object.version_id().map(str::to_string),
        }
    }

    /// Why `now`, the object at `key`, is not the upload this version was read from; `None`
    /// when it is (see `same_upload`).
    pub fn replaced_by(&self, key: &str, now: &ObjectVersion) -> Option<String> {
        (!self.same_upload(now))
            .then(|| format!("{key} was replaced since the import started (read: {self}, now: {now})"))
    }

    /// Whether `now` is the same upload: the version ids when both have one, else the ETags.
    pub fn same_upload(&self, now: &ObjectVersion) -> bool {
        match (&self.version_id, &now.version_id) {
            (Some(a), Some(b)) => a == b && self.etag == now.etag,
            _ => self.etag.is_some() && self.etag == now.etag,
        }
    }
}

impl std::fmt::Display for ObjectVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ETag {}", self.etag.as_deref().unwrap_or("(none)"))?;
        if let Some(v) = &self.version_id {
            write!(f, ", version {v}")?;
        }
        Ok(())
    }
}

/// The state an import continues from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: u32,
    pub bucket: String,
    pub tenant: String,
    pub csv_key: String,
    pub csv: ObjectVersion,
    pub profile_key: String,
    pub profile: ObjectVersion,
    /// The import time every part stamps on its items (the first invocation's).
    pub imported_at: String,
    /// The invocation that continues from here (the key's part).
    pub invocation: u32,
    /// The first distinct line (0-based, in the validated file's order) not yet written.
    pub next_line: u64,
    /// Distinct lines and daily items of the file, as validated by the first invocation.
    pub lines: u64,
    pub daily_items: u64,
    /// Daily items written by the invocations before.
    pub items_written: u64,
    /// Per metric, what those items summed to: exact decimals as strings (`"1234.56"`).
    pub totals_written: BTreeMap<String, String>,
    /// Time spent by the invocations before, for the final report's `duration_ms`.
    pub elapsed_ms: u64,
}

impl Checkpoint {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a checkpoint is plain data")
    }

    /// Reads a body; the error is why it is no checkpoint of this format.
    pub fn from_json(bytes: &[u8]) -> Result<Checkpoint, String> {
        let checkpoint: Checkpoint =
            serde_json::from_slice(bytes).map_err(|e| format!("the checkpoint is not readable: {e}"))?;
        if checkpoint.format != FORMAT {
            return Err(format!(
                "checkpoint format {} is not the format {FORMAT} this function writes",
                checkpoint.format
            ));
        }
        checkpoint.written()?;
        Ok(checkpoint)
    }

    pub fn set_written(&mut self, written: &WrittenTotals) {
        self.items_written = written.items;
        self.totals_written = written
            .totals
            .iter()
            .map(|(m, q)| (m.as_str().to_string(), q.to_string()))
            .collect();
    }

    /// What the invocations before wrote, read back exactly.
    pub fn written(&self) -> Result<WrittenTotals, String> {
        let mut totals = BTreeMap::new();
        for (name, value) in &self.totals_written {
            let metric = Metric::parse(name).ok_or_else(|| format!("unknown metric {name:?} in the checkpoint"))?;
            let quantity: Quantity = value
                .parse()
                .map_err(|_| format!("the checkpoint's total of {name} is not a decimal: {value:?}"))?;
            totals.insert(metric, quantity);
        }
        Ok(WrittenTotals {
            items: self.items_written,
            totals,
        })
    }

    /// Whether this body belongs at `key` in `bucket`: the key, never the body, says whose
    /// import it is, so everything the body repeats must agree with it.
    pub fn check_key(&self, key: &CheckpointKey, bucket: &str) -> Result<(), String> {
        let pair = key.pair();
        let tenant_folder = pair.tenant_folder().unwrap_or("");
        if self.tenant != tenant_folder {
            return Err(format!(
                "the checkpoint names tenant {:?} but lies in the folder of tenant {tenant_folder:?}",
                self.tenant
            ));
        }
        if self.csv_key != pair.csv_key || self.profile_key != pair.profile_key {
            return Err(format!(
                "the checkpoint names {} and {} but its key continues {}",
                self.csv_key, self.profile_key, pair.csv_key
            ));
        }
        if self.bucket != bucket {
            return Err(format!(
                "the checkpoint was written for bucket {} and found in {bucket}",
                self.bucket
            ));
        }
        if self.invocation != key.part {
            return Err(format!(
                "the checkpoint starts invocation {} but its key says part {}",
                self.invocation, key.part
            ));
        }
        if self.next_line == 0 || self.next_line >= self.lines || self.items_written > self.daily_items {
            return Err(format!(
                "the checkpoint's progress is inconsistent: next line {} of {}, {} of {} daily items written",
                self.next_line, self.lines, self.items_written, self.daily_items
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        let mut c = Checkpoint {
            format: FORMAT,
            bucket: "drop".into(),
            tenant: "acme".into(),
            csv_key: "incoming/acme/2023/visits.csv".into(),
            csv: ObjectVersion {
                etag: Some("\"abc\"".into()),
                version_id: Some("v1".into()),
            },
            profile_key: "incoming/acme/2023/visits.json".into(),
            profile: ObjectVersion {
                etag: Some("\"def\"".into()),
                version_id: None,
            },
            imported_at: "2024-05-01T10:00:00.000Z".into(),
            invocation: 3,
            next_line: 120,
            lines: 200,
            daily_items: 6200,
            items_written: 0,
            totals_written: BTreeMap::new(),
            elapsed_ms: 1_700_000,
        };
        let mut written = WrittenTotals {
            items: 3720,
            ..WrittenTotals::default()
        };
        written
            .totals
            .insert(Metric::Visit, Quantity::whole(18_446_744_073_709_551_615));
        written
            .totals
            .insert(Metric::SCartValidAmount, "1234.50".parse().unwrap());
        c.set_written(&written);
        c
    }

    #[test]
    fn keys_name_the_pair_and_the_part() {
        let key = CheckpointKey::parse("continuations/acme/2023/Export visites.part-0002.json").unwrap();
        assert_eq!(key.relative_stem, "acme/2023/Export visites");
        assert_eq!(key.part, 2);
        let pair = key.pair();
        assert_eq!(pair.csv_key, "incoming/acme/2023/Export visites.csv");
        assert_eq!(pair.profile_key, "incoming/acme/2023/Export visites.json");
        assert_eq!(pair.tenant().unwrap().as_str(), "acme");
        assert_eq!(pair.report_key("reports/"), "reports/acme/2023/Export visites.json");
        assert_eq!(key.key(), "continuations/acme/2023/Export visites.part-0002.json");

        // The last mark counts: a file may itself be named like a part.
        let key = CheckpointKey::parse("continuations/acme/x.part-0002.part-12345.json").unwrap();
        assert_eq!((key.relative_stem.as_str(), key.part), ("acme/x.part-0002", 12345));
        let pair = DroppedPair::from_key("incoming/acme/x.part-0002.csv").unwrap();
        assert_eq!(CheckpointKey::for_pair(&pair, 12345), key);
        assert_eq!(
            CheckpointKey::for_pair(&pair, 7).key(),
            "continuations/acme/x.part-0002.part-0007.json"
        );
    }

    #[test]
    fn other_keys_are_not_checkpoints() {
        for key in [
            "continuations/acme/visits.json",
            "continuations/acme/visits.part-.json",
            "continuations/acme/visits.part-0001.json",
            "continuations/acme/visits.part-0000.json",
            "continuations/acme/visits.part-x2.json",
            "continuations/acme/visits.part-+2.json",
            "continuations/acme/visits.part-99999999999.json",
            "continuations/acme/visits.part-0002.csv",
            "continuations/.part-0002.json",
            "continuations/acme/.part-0002.json",
            "incoming/acme/visits.part-0002.json",
            "reports/acme/visits.part-0002.json",
        ] {
            assert_eq!(CheckpointKey::parse(key), None, "{key}");
        }
        // A key without a tenant folder parses; its tenant is refused where it is used.
        let key = CheckpointKey::parse("continuations/visits.part-0002.json").unwrap();
        assert!(key.pair().tenant().is_err());
    }

    #[test]
    fn the_body_round_trips_with_exact_decimal_strings() {
        let c = checkpoint();
        let json: serde_json::Value = serde_json::from_slice(&c.to_json()).unwrap();
        assert_eq!(json["totals_written"]["visit"], "18446744073709551615");
        assert_eq!(json["totals_written"]["scartvalidamount"], "1234.50");
        assert_eq!(json["items_written"], 3720);
        assert_eq!(json["csv"]["etag"], "\"abc\"");
        assert!(json["profile"].get("version_id").is_none());
        let back = Checkpoint::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
        let written = back.written().unwrap();
        assert_eq!(written.items, 3720);
        assert_eq!(written.totals[&Metric::SCartValidAmount].to_string(), "1234.50");
        assert_eq!(written.totals[&Metric::Visit], Quantity::whole(u64::MAX));
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        let good = serde_json::to_value(checkpoint()).unwrap();
        let with = |field: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[field] = value;
            serde_json::to_vec(&v).unwrap()
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "not readable"),
            (b"{}".to_vec(), "missing field"),
            (with("format", 2.into()), "format 2"),
            (with("next_line", (-1).into()), "not readable"),
            (
                with("totals_written", serde_json::json!({"visit": 12.5})),
                "not readable",
            ),
            (
                with("totals_written", serde_json::json!({"visit": "12,5"})),
                "not a decimal",
            ),
            (
                with("totals_written", serde_json::json!({"visits": "12"})),
                "unknown metric",
            ),
            (with("extra", 1.into()), "unknown field"),
        ];
        for (bytes, expected) in cases {
            let error = Checkpoint::from_json(&bytes).unwrap_err();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }

    #[test]
    fn the_key_decides_whose_import_it_is() {
        let c = checkpoint();
        let key = CheckpointKey::parse("continuations/acme/2023/visits.part-0003.json").unwrap();
        c.check_key(&key, "drop").unwrap();

        let elsewhere = CheckpointKey::parse("continuations/globex/2023/visits.part-0003.json").unwrap();
        assert!(c.check_key(&elsewhere, "drop").unwrap_err().contains("tenant \"acme\""));
        let other_file = CheckpointKey::parse("continuations/acme/2024/visits.part-0003.json").unwrap();
        assert!(c.check_key(&other_file, "drop").unwrap_err().contains("continues"));
        let other_part = CheckpointKey::parse("continuations/acme/2023/visits.part-0004.json").unwrap();
        assert!(c.check_key(&other_part, "drop").unwrap_err().contains("part 4"));
        assert!(c.check_key(&key, "other").unwrap_err().contains("bucket"));

        let mut moved = c.clone();
        moved.tenant = "globex".into();
        assert!(moved.check_key(&key, "drop").is_err());
        for (next_line, items) in [(0, 10), (200, 10), (250, 10), (120, 6201)] {
            let mut odd = c.clone();
            odd.next_line = next_line;
            odd.items_written = items;
            assert!(odd.check_key(&key, "drop").unwrap_err().contains("inconsistent"));
        }
    }

    #[test]
    fn a_replaced_file_is_another_upload() {
        let read = ObjectVersion {
            etag: Some("\"a\"".into()),
            version_id: None,
        };
        assert!(read.same_upload(&read.clone()));
        let replaced = ObjectVersion {
            etag: Some("\"b\"".into()),
            version_id: None,
        };
        assert!(!read.same_upload(&replaced));
        // Same bytes uploaded again on a versioned bucket: same ETag, another version.
        let v1 = ObjectVersion {
            etag: Some("\"a\"".into()),
            version_id: Some("1".into()),
        };
        let v2 = ObjectVersion {
            version_id: Some("2".into()),
            ..v1.clone()
        };
        assert!(v1.same_upload(&v1.clone()));
        assert!(!v1.same_upload(&v2));
        assert!(!ObjectVersion::default().same_upload(&ObjectVersion::default()));
    }
}
