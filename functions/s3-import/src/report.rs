//! The report left in the bucket for each pair: the core's [`ImportReport`] (the same fields the
//! CLI's `--report-json` writes) plus where the data came from, so that a user who reads
//! `reports/acme/visits.json` knows which upload of `incoming/acme/visits.csv` it describes.

use reimport_core::ImportReport;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ObjectReport<'a> {
    pub bucket: &'a str,
    pub csv_key: &'a str,
    pub profile_key: &'a str,
    /// The version of the CSV that was read (versioned buckets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv_version_id: Option<&'a str>,
    /// The ETag of the CSV that was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv_etag: Option<&'a str>,
    /// Which invocation of the import wrote this report, so in a final report how many it
    /// took: an import that runs short of time continues in the next invocation.
    pub invocations: u32,
    #[serde(flatten)]
    pub import: &'a ImportReport,
}

#[cfg(test)]
mod tests {
    use reimport_core::{Error, ImportStatus};
    use serde_json::Value;

    use super::*;

    #[test]
    fn the_core_report_fields_sit_beside_the_object_fields() {
        let mut import = ImportReport::from_error(&Error::Tenant {
            name: "a b".into(),
            reason: "use only ASCII letters, digits, '.', '_' and '-'",
        });
        import.tenant = Some("a b".into());
        let report = ObjectReport {
            bucket: "drop",
            csv_key: "incoming/a b/v.csv",
            profile_key: "incoming/a b/v.json",
            csv_version_id: None,
            csv_etag: Some("\"abc\""),
            invocations: 1,
            import: &import,
        };
        let json: Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["status"], "invalid");
        assert_eq!(import.status, ImportStatus::Invalid);
        assert_eq!(json["bucket"], "drop");
        assert_eq!(json["csv_key"], "incoming/a b/v.csv");
        assert_eq!(json["profile_key"], "incoming/a b/v.json");
        assert_eq!(json["csv_etag"], "\"abc\"");
        assert!(json.get("csv_version_id").is_none());
        assert_eq!(json["invocations"], 1);
        assert!(json["message"].as_str().unwrap().contains("tenant \"a b\""));
        assert_eq!(json["error_count"], 1);
    }
}
