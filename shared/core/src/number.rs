//! Numbers as people export them: thousands separators (space, U+00A0, U+202F, and `,` or `.`
//! where the reading is unambiguous), a decimal comma or point for amounts, currency signs around
//! amounts, `H:MM:SS` for durations, and Matomo's `'` formula guard.
//!
//! The rule is "never guess": a value that reads two ways is refused with the profile option
//! (`decimalSeparator`) that settles it. Amounts are kept as an exact integer of their smallest
//! written unit (`Quantity`), never as binary floating point.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::kind::MetricUnit;

/// The most decimals an amount may carry.
pub const MAX_SCALE: u8 = 6;

/// An exact non-negative decimal: `units / 10^scale`. Counts have scale 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quantity {
    units: u64,
    scale: u8,
}

impl Quantity {
    pub const ZERO: Quantity = Quantity { units: 0, scale: 0 };

    pub fn whole(units: u64) -> Quantity {
        Quantity { units, scale: 0 }
    }

    /// `units / 10^scale`; `None` when the scale is above [`MAX_SCALE`].
    pub fn new(units: u64, scale: u8) -> Option<Quantity> {
        (scale <= MAX_SCALE).then_some(Quantity { units, scale })
    }

    /// The value in its smallest unit.
    pub fn units(self) -> u64 {
        self.units
    }

    /// How many decimals the smallest unit has.
    pub fn scale(self) -> u8 {
        self.scale
    }

    /// The same value written with `scale` decimals (only ever more decimals, never fewer).
    pub fn rescale(self, scale: u8) -> Option<Quantity> {
        if scale < self.scale || scale > MAX_SCALE {
            return None;
        }
        let factor = 10u64.checked_pow(u32::from(scale - self.scale))?;
        Some(Quantity {
            units: self.units.checked_mul(factor)?,
            scale,
        })
    }

    /// The exact sum, in the finer of the two scales; `None` on overflow.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        if self.scale == other.scale {
            return Some(Quantity {
                units: self.units.checked_add(other.units)?,
                scale: self.scale,
            });
        }
        let scale = self.scale.max(other.scale);
        let a = self.rescale(scale)?;
        let b = other.rescale(scale)?;
        Some(Quantity {
            units: a.units.checked_add(b.units)?,
            scale,
        })
    }

    /// Whether both are the same number, whatever their scales.
    pub fn same_value(self, other: Quantity) -> bool {
        let scale = self.scale.max(other.scale);
        match (self.rescale(scale), other.rescale(scale)) {
            (Some(a), Some(b)) => a.units == b.units,
            _ => false,
        }
    }

    /// The share of `day` (0-based) when this value is spread over `days` days: the integer
    /// division of its smallest unit, with the remainder on the first day.
    pub fn share(self, day: u32, days: u32) -> Quantity {
        Quantity {
            units: spread_share(self.units, day, days),
            scale: self.scale,
        }
    }
}

/// The share of day `day` (0-based) of `total` spread over `days` days: `floor(total / days)`,
/// plus the remainder on the first day, so that the days always sum back to `total`.
pub fn spread_share(total: u64, day: u32, days: u32) -> u64 {
    let days = u64::from(days.max(1));
    let base = total / days;
    if day == 0 {
        base + total % days
    } else {
        base
    }
}

/// Every day's share of `total` over `days` days, first day first.
pub fn spread_over_days(total: u64, days: u32) -> impl Iterator<Item = u64> {
    (0..days).map(move |d| spread_share(total, d, days))
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.units);
        }
        let factor = 10u64.pow(u32::from(self.scale));
        write!(
            f,
            "{}.{:0width$}",
            self.units / factor,
            self.units % factor,
            width = usize::from(self.scale)
        )
    }
}

impl Serialize for Quantity {
    /// As a JSON number written exactly (`33.34`, never `33.340000000000003`).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.scale == 0 {
            s.serialize_u64(self.units)
        } else {
            let text = self.to_string();
            let number = serde_json::Number::from_str(&text).map_err(serde::ser::Error::custom)?;
            number.serialize(s)
        }
    }
}

/// Parses the canonical form stores write back (`123`, `33.34`).
impl FromStr for Quantity {
    type Err = NumberError;

    fn from_str(text: &str) -> Result<Quantity, NumberError> {
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NumberError::NotANumber);
        }
        digits_to_quantity(int, frac)
    }
}

/// Which character a profile says is the decimal separator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalSeparator {
    Comma,
    Point,
}

impl DecimalSeparator {
    pub fn as_char(self) -> char {
        match self {
            DecimalSeparator::Comma => ',',
            DecimalSeparator::Point => '.',
        }
    }
}

/// Why a cell is not a number of the expected unit. The message is the reason half of the
/// user's error; the caller adds line, column and raw value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("not a number")]
    NotANumber,
    #[error("negative values are not accepted")]
    Negative,
    #[error("a percentage is not a {0}")]
    Percentage(&'static str),
    #[error("a count must be a whole number")]
    NotWhole,
    #[error("a currency sign is only allowed on amounts")]
    CurrencyOnCount,
    #[error("thousands separators must split the digits into groups of three")]
    BadGrouping,
    #[error(
        "reads two ways: '{0}' may be a thousands separator or a decimal separator; set \"decimalSeparator\" to \",\" or \".\" in the profile"
    )]
    Ambiguous(char),
    #[error("the profile's decimalSeparator is '{expected}' but the value uses '{found}' as decimal separator")]
    WrongDecimalSeparator { expected: char, found: char },
    #[error("more than {MAX_SCALE} decimals")]
    TooManyDecimals,
    #[error("too large")]
    TooLarge,
    #[error("a duration must be whole seconds or H:MM:SS (minutes and seconds below 60)")]
    BadDuration,
}

const CURRENCY: &[char] = &['€', '$', '£', '¥', '₹', '₩', '¤', '₽', '₺', '₪', '฿'];
const SPACE_GROUPING: &[char] = &[' ', '\u{00A0}', '\u{202F}', '\u{2009}'];

/// Parses one cell as a value of `unit`. `Ok(None)` is an empty cell.
pub fn parse_metric(
    raw: &str,
    unit: MetricUnit,
    decimal: Option<DecimalSeparator>,
) -> Result<Option<Quantity>, NumberError> {
    // The common case first.
    if let Some(value) = plain_whole(raw.as_bytes()) {
        return Ok(Some(value));
    }
    parse_by_rules(raw, unit, decimal)
}

/// A cell of nothing but ASCII digits, at most 19 of them (always below `u64::MAX`), as the
/// whole number every unit reads it as; `None` for anything else, left to the full rules.
pub fn plain_whole(bytes: &[u8]) -> Option<Quantity> {
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    let mut units = 0u64;
    for &b in bytes {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        units = units * 10 + u64::from(digit);
    }
    Some(Quantity::whole(units))
}

/// [`parse_metric`] without its fast path.
fn parse_by_rules(
    raw: &str,
    unit: MetricUnit,
    decimal: Option<DecimalSeparator>,
) -> Result<Option<Quantity>, NumberError> {
    let text = strip_formula_guard(raw.trim());
    if text.is_empty() {
        return Ok(None);
    }
    let value = match unit {
        MetricUnit::Count => Quantity::whole(parse_whole(text, decimal, "count")?),
        MetricUnit::Seconds => Quantity::whole(parse_seconds(text, decimal)?),
        MetricUnit::Amount => parse_amount(text, decimal)?,
    };
    Ok(Some(value))
}

/// Matomo prefixes values that start with `=`, `+`, `-` or `@` with `'` (a spreadsheet formula
/// guard); the `'` is not part of the value.
pub fn strip_formula_guard(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => text,
    }
}

fn parse_seconds(text: &str, decimal: Option<DecimalSeparator>) -> Result<u64, NumberError> {
    if !text.contains(':') {
        return parse_whole(text, decimal, "duration");
    }
    let parts: Vec<&str> = text.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return Err(NumberError::BadDuration);
    };
    let digits = |p: &str, exact_two: bool| -> Result<u64, NumberError> {
        let ok = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (!exact_two || p.len() == 2);
        if !ok {
            return Err(NumberError::BadDuration);
        }
        p.parse::<u64>().map_err(|_| NumberError::TooLarge)
    };
    let (h, m, s) = (digits(h, false)?, digits(m, true)?, digits(s, true)?);
    if m >= 60 || s >= 60 {
        return Err(NumberError::BadDuration);
    }
    h.checked_mul(3600)
        .and_then(|v| v.checked_add(m * 60 + s))
        .ok_or(NumberError::TooLarge)
}

fn parse_whole(text: &str, decimal: Option<DecimalSeparator>, what: &'static str) -> Result<u64, NumberError> {
    if text.contains(CURRENCY) {
        return Err(NumberError::CurrencyOnCount);
    }
    if text.ends_with('%') {
        return Err(NumberError::Percentage(what));
    }
    // Fast path: plain digits.
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().map_err(|_| NumberError::TooLarge);
    }
    match read_decimal(text, decimal, true)? {
        Reading::One(int, frac) => {
            if frac.bytes().any(|b| b != b'0') {
                return Err(NumberError::NotWhole);
            }
            int.parse::<u64>().map_err(|_| NumberError::TooLarge)
        }
        Reading::Ambiguous(c) => Err(NumberError::Ambiguous(c)),
    }
}

fn parse_amount(text: &str, decimal: Option<DecimalSeparator>) -> Result<Quantity, NumberError> {
    let text = text
        .trim_start_matches(CURRENCY)
        .trim_end_matches(CURRENCY)
        .trim_matches(SPACE_GROUPING)
        .trim();
    // ISO codes written after the amount, as some exports do ("12,50 EUR").
    let text = ["EUR", "USD", "GBP", "CHF"]
        .iter()
        .find_map(|code| text.strip_suffix(code))
        .map_or(text, |t| t.trim_end_matches(SPACE_GROUPING));
    if text.ends_with('%') {
        return Err(NumberError::Percentage("amount"));
    }
    match read_decimal(text, decimal, false)? {
        Reading::One(int, frac) => digits_to_quantity(&int, &frac),
        Reading::Ambiguous(c) => Err(NumberError::Ambiguous(c)),
    }
}

fn digits_to_quantity(int: &str, frac: &str) -> Result<Quantity, NumberError> {
    let scale = u8::try_from(frac.len()).map_err(|_| NumberError::TooManyDecimals)?;
    if scale > MAX_SCALE {
        return Err(NumberError::TooManyDecimals);
    }
    let int: u64 = int.parse().map_err(|_| NumberError::TooLarge)?;
    let frac_units: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| NumberError::NotANumber)?
    };
    let units = int
        .checked_mul(10u64.pow(u32::from(scale)))
        .and_then(|v| v.checked_add(frac_units))
        .ok_or(NumberError::TooLarge)?;
    Ok(Quantity { units, scale })
}

enum Reading {
    /// Integer digits and fraction digits, separators removed.
    One(String, String),
    /// The character that could be either separator.
    Ambiguous(char),
}

/// Reads `text` as digits with optional grouping and one decimal separator. `whole` tells that
/// only whole numbers are acceptable, which settles "1,234" (1.234 is not whole) but not "1,000".
fn read_decimal(text: &str, decimal: Option<DecimalSeparator>, whole: bool) -> Result<Reading, NumberError> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if text.starts_with('-') {
        return Err(NumberError::Negative);
    }
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '.' || SPACE_GROUPING.contains(&c))
    {
        return Err(NumberError::NotANumber);
    }
    let commas = text.matches(',').count();
    let points = text.matches('.').count();
    let (int_part, frac_part, decimal_char): (&str, &str, Option<char>) = match (commas, points) {
        (0, 0) => (text, "", None),
        (n, 0) | (0, n) => {
            let sep = if commas > 0 { ',' } else { '.' };
            if n > 1 {
                // Repeated: it can only be grouping.
                if decimal.map(DecimalSeparator::as_char) == Some(sep) {
                    return Err(NumberError::NotANumber);
                }
                (text, "", None)
            } else {
                let pos = text.find(sep).ok_or(NumberError::NotANumber)?;
                let (before, after) = (&text[..pos], &text[pos + 1..]);
                match decimal.map(DecimalSeparator::as_char) {
                    Some(d) if d == sep => (before, after, Some(sep)),
                    Some(_) => (text, "", None),
                    None => {
                        let grouping_possible = after.len() == 3
                            && after.bytes().all(|b| b.is_ascii_digit())
                            && valid_leading_group(before);
                        if !grouping_possible {
                            (before, after, Some(sep))
                        } else if whole && after != "000" {
                            // As a decimal it would not be whole: only grouping is left.
                            (text, "", None)
                        } else {
                            return Ok(Reading::Ambiguous(sep));
                        }
                    }
                }
            }
        }
        (c, p) => {
            // Both present: the last one is the decimal separator, and it must appear once.
            let last = text.rfind([',', '.']).ok_or(NumberError::NotANumber)?;
            let dec = text[last..].chars().next().ok_or(NumberError::NotANumber)?;
            let (n_dec, _n_group) = if dec == ',' { (c, p) } else { (p, c) };
            if n_dec != 1 {
                return Err(NumberError::BadGrouping);
            }
            check_declared(decimal, dec)?;
            (&text[..last], &text[last + 1..], Some(dec))
        }
    };
    let group_chars: Vec<char> = match decimal_char {
        Some(',') => vec!['.'],
        Some(_) => vec![','],
        None => vec![',', '.'],
    };
    let int_digits = ungroup(int_part, &group_chars)?;
    if frac_part.is_empty() && decimal_char.is_some() || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberError::NotANumber);
    }
    Ok(Reading::One(int_digits, frac_part.to_string()))
}

fn check_declared(declared: Option<DecimalSeparator>, found: char) -> Result<(), NumberError> {
    match declared {
        Some(d) if d.as_char() != found => Err(NumberError::WrongDecimalSeparator {
            expected: d.as_char(),
            found,
        }),
        _ => Ok(()),
    }
}

fn valid_leading_group(group: &str) -> bool {
    let digits: String = group.chars().filter(|c| !SPACE_GROUPING.contains(c)).collect();
    !digits.is_empty() && digits.len() <= 3 && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Removes grouping characters, checking that every group after the first has three digits.
fn ungroup(int_part: &str, group_chars: &[char]) -> Result<String, NumberError> {
    if int_part.is_empty() {
        return Err(NumberError::NotANumber);
    }
    let is_sep = |c: char| group_chars.contains(&c) || SPACE_GROUPING.contains(&c);
    if !int_part.contains(is_sep) {
        return if int_part.bytes().all(|b| b.is_ascii_digit()) {
            Ok(int_part.to_string())
        } else {
            Err(NumberError::NotANumber)
        };
    }
    let groups: Vec<&str> = int_part.split(is_sep).collect();
    let first_ok = groups[0].len() <= 3 && !groups[0].is_empty() && (groups[0] != "0");
    let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
    // One kind of separator per number.
    let seps: Vec<char> = int_part.chars().filter(|&c| is_sep(c)).collect();
    let one_kind = seps.windows(2).all(|w| w[0] == w[1]);
    if !first_ok || !rest_ok || !one_kind || !groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit())) {
        return Err(NumberError::BadGrouping);
    }
    Ok(groups.concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use DecimalSeparator::{Comma, Point};

    type CountCase = (&'static str, Option<DecimalSeparator>, Result<Option<u64>, NumberError>);

    fn q(units: u64, scale: u8) -> Quantity {
        Quantity::new(units, scale).unwrap()
    }

    #[test]
    fn counts() {
        let cases: &[CountCase] = &[
            ("42", None, Ok(Some(42))),
            ("  42 ", None, Ok(Some(42))),
            ("", None, Ok(None)),
            ("   ", None, Ok(None)),
            ("1 234", None, Ok(Some(1234))),
            ("1\u{00A0}234\u{00A0}567", None, Ok(Some(1_234_567))),
            ("1\u{202F}234", None, Ok(Some(1234))),
            ("1,234", None, Ok(Some(1234))),
            ("1.234.567", None, Ok(Some(1_234_567))),
            ("1,234,567", None, Ok(Some(1_234_567))),
            ("1,000", None, Err(NumberError::Ambiguous(','))),
            ("1.000", None, Err(NumberError::Ambiguous('.'))),
            ("1,000", Some(Point), Ok(Some(1000))),
            ("1.000", Some(Comma), Ok(Some(1000))),
            ("1,000", Some(Comma), Ok(Some(1))),
            ("12.0", None, Ok(Some(12))),
            ("1,5", None, Err(NumberError::NotWhole)),
            ("3.9", None, Err(NumberError::NotWhole)),
            ("-5", None, Err(NumberError::Negative)),
            ("'-5", None, Err(NumberError::Negative)),
            ("+5", None, Ok(Some(5))),
            ("27%", None, Err(NumberError::Percentage("count"))),
            ("66,67 %", None, Err(NumberError::Percentage("count"))),
            ("$0", None, Err(NumberError::CurrencyOnCount)),
            ("abc", None, Err(NumberError::NotANumber)),
            ("12 34", None, Err(NumberError::BadGrouping)),
            ("1,23,456", None, Err(NumberError::BadGrouping)),
            ("99999999999999999999", None, Err(NumberError::TooLarge)),
        ];
        for (raw, dec, want) in cases {
            let got = parse_metric(raw, MetricUnit::Count, *dec).map(|o| o.map(|v| v.units()));
            assert_eq!(&got, want, "count {raw:?} with {dec:?}");
        }
    }

    #[test]
    fn amounts() {
        let cases: &[(&str, Option<DecimalSeparator>, Result<Quantity, NumberError>)] = &[
            ("100,00", None, Ok(q(10000, 2))),
            ("100.5", None, Ok(q(1005, 1))),
            ("100", None, Ok(q(100, 0))),
            ("1 234,56 €", None, Ok(q(123_456, 2))),
            ("€1,234.56", None, Ok(q(123_456, 2))),
            ("$0", None, Ok(q(0, 0))),
            ("1.234,56", None, Ok(q(123_456, 2))),
            ("12,50 EUR", None, Ok(q(1250, 2))),
            ("1,234", None, Err(NumberError::Ambiguous(','))),
            ("1.234", None, Err(NumberError::Ambiguous('.'))),
            ("1,234", Some(Comma), Ok(q(1234, 3))),
            ("1,234", Some(Point), Ok(q(1234, 0))),
            ("0,123", None, Ok(q(123, 3))),
            (
                "1.234,56",
                Some(Point),
                Err(NumberError::WrongDecimalSeparator {
                    expected: '.',
                    found: ',',
                }),
            ),
            ("1,2345678", None, Err(NumberError::TooManyDecimals)),
            ("-3,5", None, Err(NumberError::Negative)),
        ];
        for (raw, dec, want) in cases {
            let got = parse_metric(raw, MetricUnit::Amount, *dec).map(|o| o.unwrap_or_default());
            assert_eq!(&got, want, "amount {raw:?} with {dec:?}");
        }
    }

    #[test]
    fn durations() {
        let cases: &[(&str, Result<u64, NumberError>)] = &[
            ("655", Ok(655)),
            ("00:10:55", Ok(655)),
            ("1:00:00", Ok(3600)),
            ("26:01:02", Ok(93662)),
            ("10:55", Err(NumberError::BadDuration)),
            ("0:60:00", Err(NumberError::BadDuration)),
            ("0:5:00", Err(NumberError::BadDuration)),
            ("1,5", Err(NumberError::NotWhole)),
        ];
        for (raw, want) in cases {
            let got = parse_metric(raw, MetricUnit::Seconds, None).map(|o| o.unwrap_or_default().units());
            assert_eq!(&got, want, "duration {raw:?}");
        }
    }

    #[test]
    fn quantity_display_and_parse() {
        assert_eq!(q(3334, 2).to_string(), "33.34");
        assert_eq!(q(5, 3).to_string(), "0.005");
        assert_eq!(q(17, 0).to_string(), "17");
        assert_eq!("33.34".parse::<Quantity>(), Ok(q(3334, 2)));
        assert_eq!("17".parse::<Quantity>(), Ok(q(17, 0)));
        assert!("1e3".parse::<Quantity>().is_err());
        assert_eq!(serde_json::to_string(&q(3334, 2)).unwrap(), "33.34");
        assert_eq!(serde_json::to_string(&q(10, 1)).unwrap(), "1.0");
    }

    #[test]
    fn spreading_table() {
        let cases: &[(u64, u32, &[u64])] = &[
            (31, 31, &[1; 31]),
            (100, 3, &[34, 33, 33]),
            (2, 5, &[2, 0, 0, 0, 0]),
            (0, 3, &[0, 0, 0]),
            (7, 1, &[7]),
            (29, 29, &[1; 29]),
        ];
        for (total, days, want) in cases {
            let got: Vec<u64> = spread_over_days(*total, *days).collect();
            assert_eq!(&got, want, "{total} over {days}");
        }
        // 100,00 over 3 days: 33,34 + 33,33 + 33,33.
        let amount = q(10000, 2);
        let shares: Vec<String> = (0..3).map(|d| amount.share(d, 3).to_string()).collect();
        assert_eq!(shares, ["33.34", "33.33", "33.33"]);
    }

    #[test]
    fn sums_keep_the_finer_scale() {
        assert_eq!(q(1005, 1).checked_add(q(325, 2)), Some(q(10375, 2)));
        assert!(q(1005, 1).same_value(q(10050, 2)));
        assert_eq!(Quantity::whole(u64::MAX).checked_add(Quantity::whole(1)), None);
    }

    proptest::proptest! {
        #[test]
        fn days_sum_back_and_first_day_carries_the_remainder(total in 0u64..=u64::MAX / 2, days in 1u32..=400) {
            let shares: Vec<u64> = spread_over_days(total, days).collect();
            proptest::prop_assert_eq!(shares.len() as u32, days);
            proptest::prop_assert_eq!(shares.iter().map(|&s| u128::from(s)).sum::<u128>(), u128::from(total));
            let base = total / u64::from(days);
            proptest::prop_assert_eq!(shares[0], base + total % u64::from(days));
            proptest::prop_assert!(shares[1..].iter().all(|&s| s == base));
        }

        #[test]
        fn the_digits_fast_path_agrees_with_the_rules(digits in "[0-9]{1,20}", sep in 0usize..3) {
            let decimal = [None, Some(Comma), Some(Point)][sep];
            for unit in [MetricUnit::Count, MetricUnit::Seconds, MetricUnit::Amount] {
                proptest::prop_assert_eq!(
                    parse_metric(&digits, unit, decimal),
                    parse_by_rules(&digits, unit, decimal)
                );
            }
        }
    }
}
