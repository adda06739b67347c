//! Import profiles: the JSON a user writes beside a CSV to say which column is what and which
//! period the totals cover. Parsed once into checked types; nothing downstream re-validates.

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::decode::TextEncoding;
use crate::error::Error;
use crate::kind::{list, Dimension, Kind, Metric};
use crate::number::DecimalSeparator;

/// Limits a deployment may tune.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileLimits {
    /// The longest period a profile may cover, in days.
    pub max_period_days: u32,
}

impl Default for ProfileLimits {
    fn default() -> Self {
        ProfileLimits { max_period_days: 366 }
    }
}

/// A checked import profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportProfile {
    pub skip_header: bool,
    pub kind: Kind,
    /// The key dimension first, then the optional ones, in profile order.
    pub dimensions: Vec<DimensionColumn>,
    pub metrics: Vec<MetricColumn>,
    pub period: Period,
    pub delimiter: Option<u8>,
    pub encoding: Option<TextEncoding>,
    pub decimal_separator: Option<DecimalSeparator>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DimensionColumn {
    /// 0-based column index.
    pub idx: usize,
    pub dimension: Dimension,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricColumn {
    /// 0-based column index.
    pub idx: usize,
    pub metric: Metric,
}

/// An inclusive range of days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

impl Period {
    /// `None` when `from` is after `to`.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Option<Period> {
        (from <= to).then_some(Period { from, to })
    }

    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// The number of days, both ends included.
    pub fn days(&self) -> u32 {
        u32::try_from((self.to - self.from).num_days() + 1).unwrap_or(u32::MAX)
    }

    /// The `index`-th day (0-based).
    pub fn day(&self, index: u32) -> NaiveDate {
        self.from + chrono::Days::new(u64::from(index))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProfile {
    #[serde(default)]
    skip_header: bool,
    kind: String,
    dimensions: Vec<RawColumn>,
    metrics: Vec<RawColumn>,
    period: RawPeriod,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    decimal_separator: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    idx: usize,
    target: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriod {
    from: String,
    to: String,
    scale: String,
}

impl ImportProfile {
    /// Parses and checks a profile. Every problem found is reported at once.
    pub fn from_json(text: &str, limits: &ProfileLimits) -> Result<ImportProfile, Error> {
        let raw: RawProfile = serde_json::from_str(text).map_err(|e| Error::ProfileJson {
            line: e.line(),
            column: e.column(),
            message: if e.is_eof() {
                format!(
                    "{}: the profile ends too early, a closing brace or bracket is missing",
                    strip_position(&e.to_string())
                )
            } else {
                strip_position(&e.to_string())
            },
        })?;
        let mut problems = Vec::new();

        let kind = Kind::parse(raw.kind.trim());
        if kind.is_none() {
            problems.push(format!(
                "unknown kind \"{}\": valid kinds are {}",
                raw.kind,
                list(Kind::ALL)
            ));
        }

        let mut seen_idx: Vec<(usize, String)> = Vec::new();
        let mut check_idx = |idx: usize, target: &str, problems: &mut Vec<String>| {
            if let Some((_, other)) = seen_idx.iter().find(|(i, _)| *i == idx) {
                problems.push(format!("duplicate idx {idx}: used by \"{other}\" and \"{target}\""));
            } else {
                seen_idx.push((idx, target.to_string()));
            }
        };

        let mut dimensions: Vec<DimensionColumn> = Vec::new();
        for col in &raw.dimensions {
            check_idx(col.idx, &col.target, &mut problems);
            match (Dimension::parse(col.target.trim()), kind) {
                (Some(d), Some(k)) if k.allows_dimension(d) => {
                    if dimensions.iter().any(|c| c.dimension == d) {
                        problems.push(format!("duplicate dimension target \"{d}\""));
                    } else {
                        dimensions.push(DimensionColumn {
                            idx: col.idx,
                            dimension: d,
                        });
                    }
                }
                (_, Some(k)) => problems.push(format!(
                    "dimension target \"{}\" is not allowed for kind {k}: allowed are {}",
                    col.target,
                    list(k.dimensions())
                )),
                (None, None) => problems.push(format!("unknown dimension target \"{}\"", col.target)),
                (Some(_), None) => {}
            }
        }
        if let Some(k) = kind {
            let key = k.key_dimension();
            match dimensions.iter().position(|c| c.dimension == key) {
                Some(pos) => {
                    let key_col = dimensions.remove(pos);
                    dimensions.insert(0, key_col);
                }
                None => problems.push(format!(
                    "the key dimension \"{key}\" of kind {k} is missing from dimensions"
                )),
            }
        }

        let mut metrics: Vec<MetricColumn> = Vec::new();
        for col in &raw.metrics {
            check_idx(col.idx, &col.target, &mut problems);
            match (Metric::parse(col.target.trim()), kind) {
                (Some(m), Some(k)) if k.allows_metric(m) => {
                    if metrics.iter().any(|c| c.metric == m) {
                        problems.push(format!("duplicate metric target \"{m}\""));
                    } else {
                        metrics.push(MetricColumn {
                            idx: col.idx,
                            metric: m,
                        });
                    }
                }
                (_, Some(k)) => problems.push(format!(
                    "metric target \"{}\" is not allowed for kind {k}: allowed are {}",
                    col.target,
                    list(k.metrics())
                )),
                (None, None) => problems.push(format!("unknown metric target \"{}\"", col.target)),
                (Some(_), None) => {}
            }
        }
        if raw.metrics.is_empty() {
            problems.push("metrics is empty: map at least one metric".to_string());
        }

        let from = parse_date("period.from", &raw.period.from, &mut problems);
        let to = parse_date("period.to", &raw.period.to, &mut problems);
        if raw.period.scale.trim() != "D" {
            problems.push(format!(
                "unknown period.scale \"{}\": the only scale is \"D\" (daily)",
                raw.period.scale
            ));
        }
        let mut period = None;
        if let (Some(from), Some(to)) = (from, to) {
            match Period::new(from, to) {
                None => problems.push(format!(
                    "period.from {} is after period.to {}",
                    raw.period.from, raw.period.to
                )),
                Some(p) if p.days() > limits.max_period_days => problems.push(format!(
                    "the period covers {} days, more than the maximum of {}",
                    p.days(),
                    limits.max_period_days
                )),
                Some(p) => period = Some(p),
            }
        }

        let delimiter = match raw.delimiter.as_deref() {
            None => None,
            Some(",") => Some(b','),
            Some(";") => Some(b';'),
            Some("\t") | Some("\\t") | Some("tab") | Some("TAB") => Some(b'\t'),
            Some(other) => {
                problems.push(format!(
                    "unknown delimiter {other:?}: use \",\", \";\" or \"\\t\" (or leave it out to detect it)"
                ));
                None
            }
        };
        let encoding = match raw.encoding.as_deref() {
            None => None,
            Some(name) => {
                let e = TextEncoding::parse(name);
                if e.is_none() {
                    problems.push(format!(
                        "unknown encoding \"{name}\": use one of {}",
                        TextEncoding::NAMES.join(", ")
                    ));
                }
                e
            }
        };
        let decimal_separator = match raw.decimal_separator.as_deref() {
            None => None,
            Some(",") => Some(DecimalSeparator::Comma),
            Some(".") => Some(DecimalSeparator::Point),
            Some(other) => {
                problems.push(format!("unknown decimalSeparator {other:?}: use \",\" or \".\""));
                None
            }
        };

        match (kind, period) {
            (Some(kind), Some(period)) if problems.is_empty() => Ok(ImportProfile {
                skip_header: raw.skip_header,
                kind,
                dimensions,
                metrics,
                period,
                delimiter,
                encoding,
                decimal_separator,
            }),
            _ => Err(Error::Profile { problems }),
        }
    }

    /// The column holding the key.
    pub fn key_column(&self) -> DimensionColumn {
        self.dimensions[0]
    }

    /// The highest column index the profile reads.
    pub fn max_idx(&self) -> usize {
        self.dimensions
            .iter()
            .map(|c| c.idx)
            .chain(self.metrics.iter().map(|c| c.idx))
            .max()
            .unwrap_or(0)
    }
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(pos) => message[..pos].to_string(),
        None => message.to_string(),
    }
}

/// Parses `DD/MM/YYYY`, pushing a problem when it is malformed or impossible.
fn parse_date(field: &str, text: &str, problems: &mut Vec<String>) -> Option<NaiveDate> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    let numbers: Option<Vec<u32>> = match parts.as_slice() {
        [d, m, y] if (1..=2).contains(&d.len()) && (1..=2).contains(&m.len()) && y.len() == 4 => {
            [d, m, y].iter().map(|p| p.parse::<u32>().ok()).collect()
        }
        _ => None,
    };
    let Some([day, month, year]) = numbers.as_deref().and_then(|n| <[u32; 3]>::try_from(n).ok()) else {
        problems.push(format!("{field} \"{text}\" is not a date: write DD/MM/YYYY"));
        return None;
    };
    let date = i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day));
    if date.is_none() {
        problems.push(format!(
            "{field} \"{text}\" is not a real date (day {day} of month {month} in {year})"
        ));
    }
    date.filter(|d| d.year() >= 1970).or_else(|| {
        if date.is_some() {
            problems.push(format!("{field} \"{text}\" is before 1970"));
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SEED_WEBSITE: &str = r#"{
"skipHeader":true,
"kind":"website",
"dimensions":[{
"idx":0,
"target":"website_name"
}],
"metrics":[{
"idx":1,
"target":"visit"
},{
"idx":4,
"target":"duration"
},{
"idx":7,
"target":"dvisitor"
}],
"period":{
"from":"01/03/2023",
"to":"31/03/2023",
"scale":"D"
}
}"#;

    /// The seed's searchengine example, verbatim: its closing brace is missing.
    const SEED_SEARCHENGINE_UNCLOSED: &str = "{\n\"skipHeader\":true,\n\"kind\":\"searchengine\",\n\"dimensions\":[{\n\"idx\":0,\n\"target\":\"searchengine_name\"\n}],\n\"metrics\":[{\n\"idx\":1,\n\"target\":\"visit\"\n},{\n\"idx\":4,\n\"target\":\"duration\"\n},{\n\"idx\":7,\n\"target\":\"dvisitor\"\n}],\n\"period\":{\n\"from\":\"01/03/2023\",\n\"to\":\"31/03/2023\",\n\"scale\":\"D\"\n}\n";

    fn parse(text: &str) -> Result<ImportProfile, Error> {
        ImportProfile::from_json(text, &ProfileLimits::default())
    }

    fn problems(text: &str) -> String {
        match parse(text) {
            Err(e) => e.to_string(),
            Ok(p) => panic!("accepted: {p:?}"),
        }
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(SEED_WEBSITE.contains(replace), "{replace}");
        SEED_WEBSITE.replacen(replace, by, 1)
    }

    #[test]
    fn seed_website_example_is_accepted() {
        let p = parse(SEED_WEBSITE).unwrap();
        assert!(p.skip_header);
        assert_eq!(p.kind, Kind::Website);
        assert_eq!(
            p.key_column(),
            DimensionColumn {
                idx: 0,
                dimension: Dimension::WebsiteName
            }
        );
        let metrics: Vec<_> = p.metrics.iter().map(|c| (c.idx, c.metric)).collect();
        assert_eq!(
            metrics,
            [(1, Metric::Visit), (4, Metric::Duration), (7, Metric::DVisitor)]
        );
        assert_eq!(p.period.days(), 31);
        assert_eq!(p.period.day(30), NaiveDate::from_ymd_opt(2023, 3, 31).unwrap());
    }

    #[test]
    fn seed_examples_without_closing_brace_are_refused_with_position() {
        let err = parse(SEED_SEARCHENGINE_UNCLOSED).unwrap_err();
        match &err {
            Error::ProfileJson { line, column, .. } => {
                assert_eq!((*line, *column), (23, 0), "{err}");
            }
            other => panic!("{other}"),
        }
        let text = err.to_string();
        assert!(text.contains("line 23"), "{text}");
        assert!(text.contains("closing"), "{text}");
        assert!(text.contains("EOF"), "{text}");
    }

    #[test]
    fn refusals_name_the_problem() {
        let cases: Vec<(String, &str)> = vec![
            (with("\"website\"", "\"site\""), "unknown kind \"site\": valid kinds are website, searchengine, refererdomain, geoloccountry, pagetree"),
            (with("\"dvisitor\"", "\"hit\""), "metric target \"hit\" is not allowed for kind website: allowed are visit, duration, dvisitor, scart, scartvalid, scartvalidamount, estimatevalid, estimatevalidamount"),
            (with("\"website_name\"", "\"pageinfo_url\""), "the key dimension \"website_name\" of kind website is missing"),
            (with("\"website_name\"", "\"pageinfo_url\""), "dimension target \"pageinfo_url\" is not allowed for kind website: allowed are website_name"),
            (with("\"idx\":4", "\"idx\":1"), "duplicate idx 1: used by \"visit\" and \"duration\""),
            (with("\"dvisitor\"", "\"visit\""), "duplicate metric target \"visit\""),
            (with("\"01/03/2023\"", "\"01/04/2023\""), "period.from 01/04/2023 is after period.to 31/03/2023"),
            (with("\"01/03/2023\"", "\"31/02/2023\""), "period.from \"31/02/2023\" is not a real date"),
            (with("\"01/03/2023\"", "\"2023-03-01\""), "period.from \"2023-03-01\" is not a date: write DD/MM/YYYY"),
            (with("\"D\"", "\"M\""), "unknown period.scale \"M\": the only scale is \"D\""),
            (with("\"01/03/2023\"", "\"01/03/2021\""), "the period covers 761 days, more than the maximum of 366"),
            (with("\"skipHeader\":true", "\"skipHeader\":true,\"separator\":\";\""), "unknown field `separator`"),
            (with("\"skipHeader\":true", "\"skipHeader\":true,\"decimalSeparator\":\"'\""), "unknown decimalSeparator"),
            (with("\"skipHeader\":true", "\"skipHeader\":true,\"encoding\":\"ebcdic\""), "unknown encoding \"ebcdic\""),
            (with("\"skipHeader\":true", "\"skipHeader\":true,\"delimiter\":\"|\""), "unknown delimiter"),
        ];
        for (text, want) in cases {
            let got = problems(&text);
            assert!(got.contains(want), "wanted {want:?}\n in {got}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = with("\"dvisitor\"", "\"hit\"").replace("\"D\"", "\"W\"");
        let got = problems(&text);
        assert!(got.contains("\"hit\""), "{got}");
        assert!(got.contains("\"W\""), "{got}");
    }

    #[test]
    fn leap_years_and_one_day_periods() {
        let leap = with("\"01/03/2023\"", "\"01/02/2024\"").replace("\"31/03/2023\"", "\"29/02/2024\"");
        assert_eq!(parse(&leap).unwrap().period.days(), 29);
        let not_leap = with("\"01/03/2023\"", "\"29/02/2023\"");
        assert!(problems(&not_leap).contains("not a real date"));
        let one_day = with("\"01/03/2023\"", "\"31/03/2023\"");
        assert_eq!(parse(&one_day).unwrap().period.days(), 1);
        let full_leap_year = with("\"01/03/2023\"", "\"01/01/2024\"").replace("\"31/03/2023\"", "\"31/12/2024\"");
        assert_eq!(parse(&full_leap_year).unwrap().period.days(), 366);
    }

    #[test]
    fn optional_fields() {
        let text = with(
            "\"skipHeader\":true",
            "\"skipHeader\":true,\"delimiter\":\";\",\"encoding\":\"UTF-16LE\",\"decimalSeparator\":\",\"",
        );
        let p = parse(&text).unwrap();
        assert_eq!(p.delimiter, Some(b';'));
        assert_eq!(p.encoding, Some(TextEncoding::Utf16Le));
        assert_eq!(p.decimal_separator, Some(DecimalSeparator::Comma));
    }

    #[test]
    fn pagetree_key_is_first_whatever_the_order() {
        let text = r#"{"skipHeader":true,"kind":"pagetree",
          "dimensions":[{"idx":1,"target":"pageinfo_url"},{"idx":0,"target":"pageinfo_name"}],
          "metrics":[{"idx":2,"target":"hit"}],
          "period":{"from":"01/03/2023","to":"31/03/2023","scale":"D"}}"#;
        let p = parse(text).unwrap();
        assert_eq!(p.key_column().dimension, Dimension::PageInfoName);
        assert_eq!(p.dimensions[1].dimension, Dimension::PageInfoUrl);
        assert_eq!(p.max_idx(), 2);
    }
}
