//! The function's settings, read from the environment once at start and checked there: a typo
//! in the stack should fail the cold start loudly, not the hundredth import quietly.

use std::time::Duration;

use reimport_store_dynamodb::DynamoOptions;

use crate::checkpoint::CONTINUATION_PREFIX;
use crate::layout::INCOMING_PREFIX;
use crate::Error;

pub const DEFAULT_REPORT_PREFIX: &str = "reports/";
pub const DEFAULT_MAX_PERIOD_DAYS: u32 = 366;
/// More in-flight writes than this only buys throttling.
pub const MAX_WRITE_CONCURRENCY: usize = 1024;
/// The least time an import keeps in hand before its deadline, whatever the timeout.
pub const MIN_DEFAULT_MARGIN: Duration = Duration::from_secs(60);
/// Most daily items per batch (`WRITE_BATCH_ITEMS`).
pub const MAX_WRITE_BATCH_ITEMS: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME`: the DynamoDB table of daily items.
    pub table_name: String,
    /// `REPORT_PREFIX`: where reports go, ending with `/`.
    pub report_prefix: String,
    /// `WRITE_CONCURRENCY`: in-flight UpdateItem calls per import.
    pub write_concurrency: usize,
    /// `MAX_PERIOD_DAYS`: the longest period a profile may cover.
    pub max_period_days: u32,
    /// `CONTINUE_MARGIN_SECONDS`: how long before the invocation's deadline an import stops
    /// and leaves a checkpoint. `None`: the larger of 60 s and a tenth of the time the
    /// invocation had when it started (about the function's timeout).
    pub continue_margin: Option<Duration>,
    /// `WRITE_BATCH_ITEMS`: daily items per batch, rounded down to whole lines (at least one
    /// line); `None`: the store's batch size. A checkpoint can only fall between batches.
    pub write_batch_items: Option<usize>,
}

impl Config {
    /// The margin for an invocation that had `time_left` when it started.
    pub fn margin_for(&self, time_left: Duration) -> Duration {
        self.continue_margin
            .unwrap_or_else(|| MIN_DEFAULT_MARGIN.max(time_left / 10))
    }
}

impl Config {
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any variable source; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let table_name = get("TABLE_NAME").ok_or(Error::MissingEnv { name: "TABLE_NAME" })?;

        let report_prefix = match get("REPORT_PREFIX") {
            None => DEFAULT_REPORT_PREFIX.to_string(),
            Some(raw) => {
                let invalid = |reason| Error::InvalidEnv {
                    name: "REPORT_PREFIX",
                    value: raw.clone(),
                    reason,
                };
                if raw.starts_with('/') {
                    return Err(invalid("S3 keys do not start with '/'"));
                }
                let prefix = if raw.ends_with('/') {
                    raw.clone()
                } else {
                    format!("{raw}/")
                };
                if prefix.starts_with(INCOMING_PREFIX) {
                    return Err(invalid(
                        "reports under incoming/ would be taken for profiles and trigger imports",
                    ));
                }
                if prefix.starts_with(CONTINUATION_PREFIX) {
                    return Err(invalid("continuations/ holds the checkpoints of running imports"));
                }
                prefix
            }
        };

        let write_concurrency = match get("WRITE_CONCURRENCY") {
            None => DynamoOptions::default().concurrency,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_WRITE_CONCURRENCY).contains(&n) => n,
                _ => {
                    return Err(Error::InvalidEnv {
                        name: "WRITE_CONCURRENCY",
                        value: raw,
                        reason: "expected a whole number from 1 to 1024",
                    })
                }
            },
        };

        let max_period_days = match get("MAX_PERIOD_DAYS") {
            None => DEFAULT_MAX_PERIOD_DAYS,
            Some(raw) => match raw.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(Error::InvalidEnv {
                        name: "MAX_PERIOD_DAYS",
                        value: raw,
                        reason: "expected a whole number of days, at least 1",
                    })
                }
            },
        };

        let continue_margin = match get("CONTINUE_MARGIN_SECONDS") {
            None => None,
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && (0.0..=900.0).contains(&s) => Some(Duration::from_secs_f64(s)),
                _ => {
                    return Err(Error::InvalidEnv {
                        name: "CONTINUE_MARGIN_SECONDS",
                        value: raw,
                        reason: "expected seconds from 0 to 900 (decimals allowed)",
                    })
                }
            },
        };

        let write_batch_items = match get("WRITE_BATCH_ITEMS") {
            None => None,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_WRITE_BATCH_ITEMS).contains(&n) => Some(n),
                _ => {
                    return Err(Error::InvalidEnv {
                        name: "WRITE_BATCH_ITEMS",
                        value: raw,
                        reason: "expected a whole number from 1 to 100000",
                    })
                }
            },
        };

        Ok(Config {
            table_name,
            report_prefix,
            write_concurrency,
            max_period_days,
            continue_margin,
            write_batch_items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, Error> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn only_the_table_is_required() {
        let c = config(&[("TABLE_NAME", "daily-items")]).unwrap();
        assert_eq!(
            c,
            Config {
                table_name: "daily-items".into(),
                report_prefix: "reports/".into(),
                write_concurrency: DynamoOptions::default().concurrency,
                max_period_days: 366,
                continue_margin: None,
                write_batch_items: None,
            }
        );
        assert_eq!(c.margin_for(Duration::from_secs(900)), Duration::from_secs(90));
        assert_eq!(c.margin_for(Duration::from_secs(300)), Duration::from_secs(60));
        assert_eq!(c.margin_for(Duration::from_secs(5)), Duration::from_secs(60));
    }

    #[test]
    fn every_setting_can_be_given() {
        let c = config(&[
            ("TABLE_NAME", "t1"),
            ("REPORT_PREFIX", "out/reports"),
            ("WRITE_CONCURRENCY", "16"),
            ("MAX_PERIOD_DAYS", " 731 "),
            ("CONTINUE_MARGIN_SECONDS", "1.5"),
            ("WRITE_BATCH_ITEMS", "40"),
        ])
        .unwrap();
        assert_eq!(c.continue_margin, Some(Duration::from_millis(1500)));
        assert_eq!(c.margin_for(Duration::from_secs(900)), Duration::from_millis(1500));
        assert_eq!(c.write_batch_items, Some(40));
        assert_eq!(c.report_prefix, "out/reports/");
        assert_eq!(c.write_concurrency, 16);
        assert_eq!(c.max_period_days, 731);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[("TABLE_NAME", "t1"), ("REPORT_PREFIX", ""), ("WRITE_CONCURRENCY", " ")]).unwrap();
        assert_eq!(c.report_prefix, "reports/");
        assert!(matches!(
            config(&[("TABLE_NAME", "")]),
            Err(Error::MissingEnv { name: "TABLE_NAME" })
        ));
    }

    #[test]
    fn bad_settings_are_refused_naming_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "TABLE_NAME"),
            (&[("TABLE_NAME", "t"), ("WRITE_CONCURRENCY", "0")], "WRITE_CONCURRENCY"),
            (
                &[("TABLE_NAME", "t"), ("WRITE_CONCURRENCY", "many")],
                "WRITE_CONCURRENCY",
            ),
            (
                &[("TABLE_NAME", "t"), ("WRITE_CONCURRENCY", "5000")],
                "WRITE_CONCURRENCY",
            ),
            (&[("TABLE_NAME", "t"), ("MAX_PERIOD_DAYS", "0")], "MAX_PERIOD_DAYS"),
            (&[("TABLE_NAME", "t"), ("MAX_PERIOD_DAYS", "-3")], "MAX_PERIOD_DAYS"),
            (
                &[("TABLE_NAME", "t"), ("REPORT_PREFIX", "incoming/reports")],
                "REPORT_PREFIX",
            ),
            (&[("TABLE_NAME", "t"), ("REPORT_PREFIX", "incoming")], "REPORT_PREFIX"),
            (&[("TABLE_NAME", "t"), ("REPORT_PREFIX", "/reports/")], "REPORT_PREFIX"),
            (
                &[("TABLE_NAME", "t"), ("REPORT_PREFIX", "continuations/r")],
                "REPORT_PREFIX",
            ),
            (
                &[("TABLE_NAME", "t"), ("CONTINUE_MARGIN_SECONDS", "-1")],
                "CONTINUE_MARGIN_SECONDS",
            ),
            (
                &[("TABLE_NAME", "t"), ("CONTINUE_MARGIN_SECONDS", "NaN")],
                "CONTINUE_MARGIN_SECONDS",
            ),
            (&[("TABLE_NAME", "t"), ("WRITE_BATCH_ITEMS", "0")], "WRITE_BATCH_ITEMS"),
        ];
        for (vars, name) in cases {
            let message = config(vars).unwrap_err().to_string();
            assert!(message.contains(name), "{vars:?}: {message}");
        }
    }
}
