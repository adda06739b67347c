//! The item layout: how a [`DailyItem`] becomes one UpdateItem, how big the stored item can
//! get, and how a stored item reads back.
//!
//! Every write is `SET #n0 = :v0, #n1 = :v1, ...` over the line's dimensions, the metrics it
//! carries, `source` and `imported_at`. Metrics the item does not carry are not named, so they
//! stay as stored: that is the product's "replace what is sent, keep the rest" rule, done by
//! DynamoDB in one request, with no read first. Every attribute goes through an expression
//! attribute name, because `source` (and `key`, `day`) are DynamoDB reserved words.
//!
//! Tenant, kind and key are not written as attributes of their own: they are the parts of `pk`,
//! and reading splits them from it. Items written before (which carry `tenant`, `kind` and `key`
//! attributes) read back the same.

use std::collections::HashMap;
use std::sync::OnceLock;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use reimport_core::{DailyItem, Dimension, ImportOrigin, Kind, Metric, Quantity, StoredItem};

use crate::key_schema::{self, PARTITION_KEY, SORT_KEY};
use crate::Error;

/// Attributes items written before carried besides the key (the parts of `pk`). Not written any
/// more; the size estimate still counts them, since an item written before keeps them.
pub const TENANT: &str = "tenant";
pub const KIND: &str = "kind";
pub const KEY: &str = "key";
/// Attribute names besides the key, dimensions and metrics.
pub const SOURCE: &str = "source";
pub const IMPORTED_AT: &str = "imported_at";

/// DynamoDB bills a write per started kilobyte of the larger of the item before and after.
/// Items are kept to one unit.
pub const MAX_ITEM_BYTES: usize = 1024;

/// The most a metric value can weigh as a DynamoDB Number: a `Quantity` has at most 20
/// significant digits (u64), stored two digits a byte, plus one byte.
const MAX_NUMBER_BYTES: usize = 11 + 1;

/// The most attributes one update sets: every dimension, every metric, source and imported_at.
const MAX_ASSIGNMENTS: usize = Dimension::ALL.len() + Metric::ALL.len() + 2;

/// `#n0` ... and `:v0` ..., the placeholders of the `i`th assignment.
const NAME_PLACEHOLDERS: [&str; MAX_ASSIGNMENTS] = [
    "#n0", "#n1", "#n2", "#n3", "#n4", "#n5", "#n6", "#n7", "#n8", "#n9", "#n10", "#n11", "#n12", "#n13", "#n14",
    "#n15", "#n16", "#n17", "#n18", "#n19",
];
const VALUE_PLACEHOLDERS: [&str; MAX_ASSIGNMENTS] = [
    ":v0", ":v1", ":v2", ":v3", ":v4", ":v5", ":v6", ":v7", ":v8", ":v9", ":v10", ":v11", ":v12", ":v13", ":v14",
    ":v15", ":v16", ":v17", ":v18", ":v19",
];

/// One UpdateItem, ready to send (and to send again on retry): the request's maps are built
/// from it for each attempt ([`ItemUpdate::names`], [`ItemUpdate::values`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ItemUpdate {
    pub pk: String,
    pub day: String,
    /// `(attribute name, value)` in expression order: assignment `i` is `#n{i} = :v{i}`.
    pub assignments: Vec<(&'static str, AttributeValue)>,
    /// Upper bound of the stored item's size after this write, see [`estimated_item_size`].
    pub estimated_size: usize,
}

impl ItemUpdate {
    pub fn key(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PARTITION_KEY.to_string(), AttributeValue::S(self.pk.clone())),
            (SORT_KEY.to_string(), AttributeValue::S(self.day.clone())),
        ])
    }

    /// `SET #n0 = :v0, #n1 = :v1, ...` for this update's assignments.
    pub fn update_expression(&self) -> &'static str {
        update_expression(self.assignments.len())
    }

    /// The expression attribute names: `#n{i}` to the `i`th attribute.
    pub fn names(&self) -> HashMap<String, String> {
        self.assignments
            .iter()
            .zip(NAME_PLACEHOLDERS)
            .map(|((name, _), placeholder)| (placeholder.to_string(), (*name).to_string()))
            .collect()
    }

    /// The expression attribute values: `:v{i}` to the `i`th value.
    pub fn values(&self) -> HashMap<String, AttributeValue> {
        self.assignments
            .iter()
            .zip(VALUE_PLACEHOLDERS)
            .map(|((_, value), placeholder)| (placeholder.to_string(), value.clone()))
            .collect()
    }
}

/// The update expression of `count` assignments, built once per count.
fn update_expression(count: usize) -> &'static str {
    static EXPRESSIONS: OnceLock<Vec<String>> = OnceLock::new();
    let expressions = EXPRESSIONS.get_or_init(|| {
        (0..=MAX_ASSIGNMENTS)
            .map(|n| {
                let mut expression = String::from("SET ");
                for i in 0..n {
                    if i > 0 {
                        expression.push_str(", ");
                    }
                    expression.push_str(NAME_PLACEHOLDERS[i]);
                    expression.push_str(" = ");
                    expression.push_str(VALUE_PLACEHOLDERS[i]);
                }
                expression
            })
            .collect()
    });
    &expressions[count.min(MAX_ASSIGNMENTS)]
}

/// The UpdateItem for one daily item, or [`Error::ItemTooLarge`] when the stored item could
/// exceed [`MAX_ITEM_BYTES`].
pub fn item_update(origin: &ImportOrigin, item: &DailyItem<'_>) -> Result<ItemUpdate, Error> {
    let pk = key_schema::partition_key(origin.tenant.as_str(), item.kind.as_str(), item.key);
    let day = key_schema::sort_key(item.day);
    let estimated_size = estimated_item_size(origin, item, &pk, &day);
    if estimated_size > MAX_ITEM_BYTES {
        return Err(Error::ItemTooLarge {
            pk,
            day,
            estimated_size,
        });
    }
    let mut assignments = Vec::with_capacity(MAX_ASSIGNMENTS);
    assignments.extend(
        item.dimensions
            .iter()
            .map(|(d, v)| (d.as_str(), AttributeValue::S(v.to_string()))),
    );
    assignments.extend(
        item.metrics
            .iter()
            .map(|(m, v)| (m.as_str(), AttributeValue::N(v.to_string()))),
    );
    assignments.push((SOURCE, AttributeValue::S(origin.source.clone())));
    assignments.push((IMPORTED_AT, AttributeValue::S(origin.imported_at.clone())));
    Ok(ItemUpdate {
        pk,
        day,
        assignments,
        estimated_size,
    })
}

/// An upper bound of the item's size once written, by DynamoDB's rules (attribute name bytes
/// plus value bytes; strings as UTF-8): every attribute this write sets, plus every metric of
/// the kind at its largest, since other imports may have stored the ones not sent now, plus
/// `tenant`, `kind` and `key`, which items written before still carry.
/// Not counted: a dimension stored by an earlier import and not sent now.
pub fn estimated_item_size(origin: &ImportOrigin, item: &DailyItem<'_>, pk: &str, day: &str) -> usize {
    let string = |name: &str, value: &str| name.len() + value.len();
    let mut size = string(PARTITION_KEY, pk)
        + string(SORT_KEY, day)
        + string(TENANT, origin.tenant.as_str())
        + string(KIND, item.kind.as_str())
        + string(KEY, item.key)
        + string(SOURCE, &origin.source)
        + string(IMPORTED_AT, &origin.imported_at);
    size += item
        .dimensions
        .iter()
        .map(|(d, v)| string(d.as_str(), v))
        .sum::<usize>();
    size += Metric::ALL
        .iter()
        .filter(|&&m| item.kind.allows_metric(m) || item.metrics.get(m).is_some())
        .map(|m| m.as_str().len() + MAX_NUMBER_BYTES)
        .sum::<usize>();
    size
}

/// A stored item read back, or why it cannot be.
pub fn stored_item(attributes: &HashMap<String, AttributeValue>) -> Result<StoredItem, Error> {
    let text = |name: &str| attributes.get(name).and_then(|v| v.as_s().ok()).map(String::as_str);
    let pk = text(PARTITION_KEY).unwrap_or_default();
    let day_text = text(SORT_KEY).unwrap_or_default();
    let corrupt = |reason: String| Error::CorruptItem {
        pk: pk.to_string(),
        day: day_text.to_string(),
        reason,
    };
    let (tenant, kind_name, key) = key_schema::split_partition_key(pk)
        .ok_or_else(|| corrupt("the partition key is not tenant#kind#key".into()))?;
    let kind = Kind::parse(kind_name).ok_or_else(|| corrupt(format!("unknown kind {kind_name:?}")))?;
    let day = NaiveDate::parse_from_str(day_text, "%Y-%m-%d")
        .map_err(|e| corrupt(format!("the day is not YYYY-MM-DD: {e}")))?;
    let mut dimensions = std::collections::BTreeMap::new();
    for dimension in Dimension::ALL {
        if let Some(value) = attributes.get(dimension.as_str()) {
            let value = value
                .as_s()
                .map_err(|_| corrupt(format!("{} is not a string", dimension.as_str())))?;
            dimensions.insert(dimension, value.clone());
        }
    }
    let mut metrics = std::collections::BTreeMap::new();
    for metric in Metric::ALL {
        if let Some(value) = attributes.get(metric.as_str()) {
            let number = value
                .as_n()
                .map_err(|_| corrupt(format!("{} is not a number", metric.as_str())))?;
            let quantity = number
                .parse::<Quantity>()
                .map_err(|e| corrupt(format!("{} = {number:?}: {e}", metric.as_str())))?;
            metrics.insert(metric, quantity);
        }
    }
    Ok(StoredItem {
        tenant: tenant.to_string(),
        kind,
        key: key.to_string(),
        day,
        dimensions,
        metrics,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use reimport_core::{DimensionValues, Tenant};

    use super::*;

    fn origin() -> ImportOrigin {
        ImportOrigin {
            tenant: Tenant::new("acme").unwrap(),
            source: "incoming/acme/matomo-2023-03.csv".into(),
            imported_at: "2026-12-04T10:00:00Z".into(),
        }
    }

    fn page<'a>(key: &'a str, url: Option<&'a str>, metrics: &[(Metric, Quantity)]) -> DailyItem<'a> {
        let mut dimensions = DimensionValues::default();
        dimensions.set(Dimension::PageInfoName, key);
        if let Some(url) = url {
            dimensions.set(Dimension::PageInfoUrl, url);
        }
        DailyItem {
            kind: Kind::PageTree,
            key,
            day: NaiveDate::from_ymd_opt(2023, 3, 1).unwrap(),
            dimensions,
            metrics: metrics.iter().copied().collect(),
        }
    }

    /// The update as `(attribute name, value)` pairs in expression order, read back from the
    /// request's expression and maps.
    fn assignments(update: &ItemUpdate) -> Vec<(String, AttributeValue)> {
        let (names, values) = (update.names(), update.values());
        update
            .update_expression()
            .strip_prefix("SET ")
            .unwrap()
            .split(", ")
            .map(|a| {
                let (n, v) = a.split_once(" = ").unwrap();
                (names[n].clone(), values[v].clone())
            })
            .collect()
    }

    #[test]
    fn sets_dimensions_sent_metrics_and_origin_in_one_expression() {
        let item = page(
            "Home",
            Some("https://example.com/"),
            &[
                (Metric::Hit, Quantity::whole(17)),
                (Metric::Duration, Quantity::whole(0)),
            ],
        );
        let update = item_update(&origin(), &item).unwrap();
        assert_eq!(update.pk, "acme#pagetree#Home");
        assert_eq!(update.day, "2023-03-01");
        assert_eq!(
            update.update_expression(),
            "SET #n0 = :v0, #n1 = :v1, #n2 = :v2, #n3 = :v3, #n4 = :v4, #n5 = :v5"
        );
        let s = |v: &str| AttributeValue::S(v.into());
        let n = |v: &str| AttributeValue::N(v.into());
        assert_eq!(
            assignments(&update),
            [
                ("pageinfo_name".into(), s("Home")),
                ("pageinfo_url".into(), s("https://example.com/")),
                ("duration".into(), n("0")),
                ("hit".into(), n("17")),
                ("source".into(), s("incoming/acme/matomo-2023-03.csv")),
                ("imported_at".into(), s("2026-12-04T10:00:00Z")),
            ]
        );
        assert_eq!(
            update.key(),
            HashMap::from([("pk".into(), s("acme#pagetree#Home")), ("day".into(), s("2023-03-01"))])
        );
    }

    #[test]
    fn metrics_not_sent_are_not_named() {
        let item = page("Home", None, &[(Metric::VisitIn, Quantity::whole(2))]);
        let update = item_update(&origin(), &item).unwrap();
        let names: Vec<&str> = update.assignments.iter().map(|(name, _)| *name).collect();
        assert!(names.contains(&"visitin"));
        for other in ["hit", "visit", "duration", "visitout", "visitone", "pageinfo_url"] {
            assert!(!names.contains(&other), "{other} is not sent, so not touched");
        }
        for part_of_pk in ["tenant", "kind", "key"] {
            assert!(!names.contains(&part_of_pk), "{part_of_pk} is read from pk");
        }
    }

    #[test]
    fn amounts_are_written_as_exact_decimal_strings() {
        let mut item = page("Home", None, &[]);
        item.kind = Kind::Website;
        item.metrics
            .set(Metric::SCartValidAmount, Quantity::new(3334, 2).unwrap());
        item.metrics
            .set(Metric::EstimateValidAmount, Quantity::new(5, 3).unwrap());
        let update = item_update(&origin(), &item).unwrap();
        let got: HashMap<String, AttributeValue> = assignments(&update).into_iter().collect();
        assert_eq!(got["scartvalidamount"], AttributeValue::N("33.34".into()));
        assert_eq!(got["estimatevalidamount"], AttributeValue::N("0.005".into()));
    }

    #[test]
    fn a_typical_item_stays_well_under_one_kilobyte() {
        let mut item = page("example.com", None, &[(Metric::Visit, Quantity::whole(1500))]);
        item.kind = Kind::Website;
        item.dimensions = DimensionValues::default();
        item.dimensions.set(Dimension::WebsiteName, "example.com");
        let update = item_update(&origin(), &item).unwrap();
        // Documented in docs/dynamodb.md: keep both in step.
        assert_eq!(update.estimated_size, 346);
    }

    #[test]
    fn refuses_an_item_that_could_exceed_one_kilobyte_naming_its_key() {
        let url = format!("https://example.com/{}", "a".repeat(800));
        let item = page("Home", Some(&url), &[(Metric::Hit, Quantity::whole(1))]);
        let err = item_update(&origin(), &item).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::ItemTooLarge { .. }), "{message}");
        assert!(
            message.contains("acme#pagetree#Home") && message.contains("2023-03-01"),
            "{message}"
        );
    }

    #[test]
    fn size_estimate_counts_every_metric_of_the_kind_at_its_largest() {
        let item = page("k", None, &[]);
        let pk = "acme#pagetree#k";
        let base = estimated_item_size(&origin(), &item, pk, "2023-03-01");
        let mut with_metric = item;
        with_metric.metrics.set(Metric::Hit, Quantity::whole(u64::MAX));
        assert_eq!(estimated_item_size(&origin(), &with_metric, pk, "2023-03-01"), base);
    }

    #[test]
    fn a_written_item_reads_back() {
        let item = page(
            "a#b",
            Some("https://example.com/a"),
            &[
                (Metric::Hit, Quantity::whole(3)),
                (Metric::Duration, Quantity::whole(40)),
            ],
        );
        let update = item_update(&origin(), &item).unwrap();
        let mut stored: HashMap<String, AttributeValue> = assignments(&update).into_iter().collect();
        stored.extend(update.key());
        let back = stored_item(&stored).unwrap();
        assert_eq!(
            (back.tenant.as_str(), back.kind, back.key.as_str()),
            ("acme", Kind::PageTree, "a#b")
        );
        assert_eq!(back.day, item.day);
        assert_eq!(back.dimensions[&Dimension::PageInfoUrl], "https://example.com/a");
        assert_eq!(back.metrics[&Metric::Duration], Quantity::whole(40));
        assert_eq!(back.metrics.len(), 2);
    }

    #[test]
    fn expressions_name_every_placeholder_once_for_every_count() {
        assert_eq!(update_expression(0), "SET ");
        assert_eq!(update_expression(1), "SET #n0 = :v0");
        for n in 1..=MAX_ASSIGNMENTS {
            let expression = update_expression(n);
            assert_eq!(expression.matches(" = ").count(), n, "{expression}");
            assert!(
                expression.ends_with(&format!("#n{} = :v{}", n - 1, n - 1)),
                "{expression}"
            );
        }
        let mut item = page("Home", Some("u"), &[]);
        for m in Metric::ALL {
            item.metrics.set(m, Quantity::whole(1));
        }
        for d in Dimension::ALL {
            item.dimensions.set(d, "x");
        }
        let update = item_update(&origin(), &item).unwrap();
        assert_eq!(update.assignments.len(), MAX_ASSIGNMENTS);
        assert_eq!(update.names().len(), MAX_ASSIGNMENTS);
        assert_eq!(update.values().len(), MAX_ASSIGNMENTS);
    }

    #[test]
    fn an_item_written_before_with_tenant_kind_and_key_attributes_reads_back_the_same() {
        let item = page("a#b", None, &[(Metric::Hit, Quantity::whole(3))]);
        let update = item_update(&origin(), &item).unwrap();
        let mut now: HashMap<String, AttributeValue> = assignments(&update).into_iter().collect();
        now.extend(update.key());
        let mut before = now.clone();
        before.insert("tenant".into(), AttributeValue::S("acme".into()));
        before.insert("kind".into(), AttributeValue::S("pagetree".into()));
        before.insert("key".into(), AttributeValue::S("a#b".into()));
        assert_eq!(stored_item(&before).unwrap(), stored_item(&now).unwrap());
    }

    #[test]
    fn a_corrupt_number_is_an_error_naming_the_item() {
        let stored = HashMap::from([
            ("pk".to_string(), AttributeValue::S("acme#website#x".into())),
            ("day".to_string(), AttributeValue::S("2023-03-01".into())),
            ("visit".to_string(), AttributeValue::N("-1".into())),
        ]);
        let message = stored_item(&stored).unwrap_err().to_string();
        assert!(
            message.contains("acme#website#x") && message.contains("visit"),
            "{message}"
        );
    }
}
