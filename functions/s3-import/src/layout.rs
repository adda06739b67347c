//! The bucket layout: `incoming/<tenant>/<any/path>/<name>.csv` with its profile `<name>.json`
//! beside it; the report of the pair goes to `<REPORT_PREFIX><tenant>/<any/path>/<name>.json`.
//!
//! The tenant is the first folder under `incoming/` and nothing else: never a column, never a
//! profile field. Who may write under `incoming/acme/` is decided by IAM on that prefix, so
//! the path is the only tenant claim the function can trust. Keys outside `incoming/` are
//! skipped here, which also keeps the function from reacting to its own reports should the
//! trigger be configured too widely.

use std::fmt;

use reimport_core::Tenant;

pub const INCOMING_PREFIX: &str = "incoming/";
pub const CSV_SUFFIX: &str = ".csv";
pub const PROFILE_SUFFIX: &str = ".json";

/// Which file of a pair an event was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    Csv,
    Profile,
}

/// Why a key is none of the function's business.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Not under `incoming/` (reports, or anything else in the bucket).
    OutsideIncoming,
    /// Neither `.csv` nor `.json`, or a bare suffix with no name.
    NotAnImportFile,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::OutsideIncoming => "the key is outside incoming/",
            SkipReason::NotAnImportFile => "the key names neither a .csv file nor a .json profile",
        })
    }
}

/// A CSV and its profile, as named by one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedPair {
    pub csv_key: String,
    pub profile_key: String,
    /// The file the event was about; the other one may not be there yet.
    pub arrived: FileRole,
    /// The key after `incoming/`, without its suffix: `acme/2023/visits`.
    relative_stem: String,
}

impl DroppedPair {
    /// Reads the layout out of a decoded key.
    pub fn from_key(key: &str) -> Result<DroppedPair, SkipReason> {
        let relative = key.strip_prefix(INCOMING_PREFIX).ok_or(SkipReason::OutsideIncoming)?;
        let (stem, arrived) = if let Some(stem) = relative.strip_suffix(CSV_SUFFIX) {
            (stem, FileRole::Csv)
        } else if let Some(stem) = relative.strip_suffix(PROFILE_SUFFIX) {
            (stem, FileRole::Profile)
        } else {
            return Err(SkipReason::NotAnImportFile);
        };
        if stem.is_empty() || stem.ends_with('/') {
            return Err(SkipReason::NotAnImportFile);
        }
        Ok(DroppedPair {
            csv_key: format!("{INCOMING_PREFIX}{stem}{CSV_SUFFIX}"),
            profile_key: format!("{INCOMING_PREFIX}{stem}{PROFILE_SUFFIX}"),
            arrived,
            relative_stem: stem.to_string(),
        })
    }

    /// The key of the file the event was not about.
    pub fn other_key(&self) -> &str {
        match self.arrived {
            FileRole::Csv => &self.profile_key,
            FileRole::Profile => &self.csv_key,
        }
    }

    /// The first folder under `incoming/`, as written; absent for a file dropped right in it.
    pub fn tenant_folder(&self) -> Option<&str> {
        self.relative_stem.split_once('/').map(|(tenant, _)| tenant)
    }

    /// The tenant the pair belongs to, checked.
    pub fn tenant(&self) -> Result<Tenant, reimport_core::Error> {
        match self.tenant_folder() {
            Some(folder) => Tenant::new(folder),
            None => Err(reimport_core::Error::Tenant {
                name: String::new(),
                reason: "files must be dropped in incoming/<tenant>/, not in incoming/ itself",
            }),
        }
    }

    /// The key after `incoming/`, without its suffix: `acme/2023/visits`.
    pub fn relative_stem(&self) -> &str {
        &self.relative_stem
    }

    /// Where the report of this pair goes; `prefix` ends with `/`.
    pub fn report_key(&self, prefix: &str) -> String {
        format!("{prefix}{}{PROFILE_SUFFIX}", self.relative_stem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_names_its_profile_tenant_and_report() {
        let pair = DroppedPair::from_key("incoming/acme/2023/03/Export visites.csv").unwrap();
        assert_eq!(pair.arrived, FileRole::Csv);
        assert_eq!(pair.csv_key, "incoming/acme/2023/03/Export visites.csv");
        assert_eq!(pair.profile_key, "incoming/acme/2023/03/Export visites.json");
        assert_eq!(pair.other_key(), "incoming/acme/2023/03/Export visites.json");
        assert_eq!(pair.tenant().unwrap().as_str(), "acme");
        assert_eq!(pair.report_key("reports/"), "reports/acme/2023/03/Export visites.json");
    }

    #[test]
    fn a_profile_names_its_csv() {
        let pair = DroppedPair::from_key("incoming/globex/visits.json").unwrap();
        assert_eq!(pair.arrived, FileRole::Profile);
        assert_eq!(pair.other_key(), "incoming/globex/visits.csv");
        assert_eq!(pair.tenant().unwrap().as_str(), "globex");
        assert_eq!(pair.report_key("out/reports/"), "out/reports/globex/visits.json");
    }

    #[test]
    fn the_tenant_is_the_first_folder_only() {
        let pair = DroppedPair::from_key("incoming/acme/globex/visits.csv").unwrap();
        assert_eq!(pair.tenant().unwrap().as_str(), "acme");
    }

    #[test]
    fn invalid_or_missing_tenant_folders_are_refused() {
        for key in [
            "incoming/visits.csv",
            "incoming//visits.csv",
            "incoming/ac me/visits.csv",
            "incoming/.hidden/visits.csv",
            "incoming/acmé/visits.json",
        ] {
            let pair = DroppedPair::from_key(key).unwrap();
            assert!(pair.tenant().is_err(), "{key} gave a tenant");
        }
        let pair = DroppedPair::from_key("incoming/visits.csv").unwrap();
        assert_eq!(pair.report_key("reports/"), "reports/visits.json");
        assert!(pair.tenant().unwrap_err().to_string().contains("incoming/<tenant>/"));
    }

    #[test]
    fn keys_that_are_not_import_files_are_skipped() {
        let cases = [
            ("reports/acme/visits.json", SkipReason::OutsideIncoming),
            ("acme/incoming/visits.csv", SkipReason::OutsideIncoming),
            ("Incoming/acme/visits.csv", SkipReason::OutsideIncoming),
            ("incoming", SkipReason::OutsideIncoming),
            ("incoming/acme/visits.CSV", SkipReason::NotAnImportFile),
            ("incoming/acme/visits.csv.gz", SkipReason::NotAnImportFile),
            ("incoming/acme/", SkipReason::NotAnImportFile),
            ("incoming/acme/.csv", SkipReason::NotAnImportFile),
            ("incoming/.json", SkipReason::NotAnImportFile),
            ("incoming/acme/visits.txt", SkipReason::NotAnImportFile),
        ];
        for (key, reason) in cases {
            assert_eq!(DroppedPair::from_key(key), Err(reason), "{key}");
        }
    }
}
