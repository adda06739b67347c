//! The table's key schema: the one definition in code. infra/template.yaml declares the same
//! attributes; a test (`tests/template_key_schema.rs`) fails when the two drift apart.
//!
//! One item per (tenant, kind, key, day): the partition key `pk` is `tenant#kind#key`, the sort
//! key `day` is `YYYY-MM-DD`. One import's writes spread over as many partitions as it has
//! distinct lines; a line's days are one Query away.

/// Partition key attribute name (type S): `tenant#kind#key`.
pub const PARTITION_KEY: &str = "pk";
/// Sort key attribute name (type S): the day, `YYYY-MM-DD`.
pub const SORT_KEY: &str = "day";

/// Separates tenant, kind and key in the partition key. Tenants and kind names never contain it;
/// keys may, which is why [`split_partition_key`] splits at the first two only.
pub const SEPARATOR: char = '#';

/// The partition key of a line: `tenant#kind#key`.
pub fn partition_key(tenant: &str, kind: &str, key: &str) -> String {
    let mut pk = String::with_capacity(tenant.len() + kind.len() + key.len() + 2);
    pk.push_str(tenant);
    pk.push(SEPARATOR);
    pk.push_str(kind);
    pk.push(SEPARATOR);
    pk.push_str(key);
    pk
}

/// `(tenant, kind, key)` of a partition key, splitting at the first two separators (the key
/// itself may contain `#`). `None` when there are fewer than two.
pub fn split_partition_key(pk: &str) -> Option<(&str, &str, &str)> {
    let mut parts = pk.splitn(3, SEPARATOR);
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// The sort key of a day: `YYYY-MM-DD`, so that string order is day order.
pub fn sort_key(day: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    let year = day.year();
    if !(0..=9999).contains(&year) {
        return day.format("%Y-%m-%d").to_string();
    }
    // Written digit by digit: chrono's formatter parses its pattern on every call.
    let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
    let year = year.unsigned_abs();
    let mut text = String::with_capacity(10);
    text.extend([year / 1000, year / 100, year / 10, year].map(digit));
    text.push('-');
    text.extend([day.month() / 10, day.month()].map(digit));
    text.push('-');
    text.extend([day.day() / 10, day.day()].map(digit));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_key_joins_tenant_kind_and_key() {
        assert_eq!(
            partition_key("acme", "website", "example.com"),
            "acme#website#example.com"
        );
    }

    #[test]
    fn keys_containing_the_separator_split_back_at_the_first_two() {
        for key in ["a#b#c", "#", "##", "", "plain", "trailing#"] {
            let pk = partition_key("acme", "pagetree", key);
            assert_eq!(split_partition_key(&pk), Some(("acme", "pagetree", key)), "{pk:?}");
        }
    }

    #[test]
    fn partition_keys_without_two_separators_are_refused() {
        assert_eq!(split_partition_key("acme#website"), None);
        assert_eq!(split_partition_key("acme"), None);
    }

    #[test]
    fn sort_key_is_iso_day_and_orders_as_days() {
        let d = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        assert_eq!(sort_key(d(2023, 3, 1)), "2023-03-01");
        assert!(sort_key(d(2023, 9, 30)) < sort_key(d(2023, 10, 1)));
        let mut day = d(1999, 12, 25);
        while day < d(2031, 1, 5) {
            assert_eq!(sort_key(day), day.format("%Y-%m-%d").to_string());
            day = day.succ_opt().unwrap_or_default();
        }
        for y in [0, 7, 99, 999, 9999] {
            assert_eq!(sort_key(d(y, 1, 2)), d(y, 1, 2).format("%Y-%m-%d").to_string());
        }
    }
}
