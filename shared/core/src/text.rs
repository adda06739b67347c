//! Accent removal: text as ASCII, exactly as `deunicode::deunicode` writes it, but copying the
//! ASCII runs whole instead of character by character (most of a French URL is ASCII).

use std::borrow::Cow;

use crate::number::strip_formula_guard;

/// What `deunicode` writes for a character it has no transliteration for.
const UNKNOWN: &str = "[?]";

/// Trims, removes Matomo's formula guard, and transliterates accented characters to ASCII.
pub fn normalise_text(raw: &str) -> Cow<'_, str> {
    let text = strip_formula_guard(raw.trim());
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let ascii = to_ascii(text);
    let trimmed = ascii.trim();
    if trimmed.len() == ascii.len() {
        Cow::Owned(ascii)
    } else {
        Cow::Owned(trimmed.to_string())
    }
}

/// The same text as `deunicode::deunicode(text)`.
///
/// `deunicode` drops the trailing space of a multi-letter transliteration ("Bei ") when the next
/// transliteration starts with a space or the text ends; this keeps that rule.
pub(crate) fn to_ascii(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    // Like deunicode: the ASCII start is kept as it is, control characters included; after the
    // first other character, control characters go through the table too (which drops them).
    let mut i = bytes.iter().take_while(|&&b| b < 0x7F).count();
    out.push_str(&text[..i]);
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|&&b| (0x20..0x7F).contains(&b)).count();
        out.push_str(&text[i..i + run]);
        i += run;
        let Some(ch) = text[i..].chars().next() else {
            break;
        };
        i += ch.len_utf8();
        let Some(replacement) = deunicode::deunicode_char(ch) else {
            out.push_str(UNKNOWN);
            continue;
        };
        let trim_last = replacement.len() > 1 && replacement.ends_with(' ') && next_starts_with_space(&text[i..]);
        out.push_str(if trim_last {
            &replacement[..replacement.len() - 1]
        } else {
            replacement
        });
    }
    out
}

/// Whether the transliteration of the first character of `rest` starts with a space (or `rest`
/// is empty), as `deunicode` decides it.
fn next_starts_with_space(rest: &str) -> bool {
    rest.chars()
        .next()
        .is_none_or(|c| deunicode::deunicode_char(c).is_some_and(|r| r.starts_with(' ')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn printable_ascii_is_its_own_transliteration() {
        for b in 0x20u8..0x7F {
            let c = char::from(b);
            assert_eq!(deunicode::deunicode_char(c), Some(c.to_string().as_str()), "{b:#x}");
        }
    }

    #[test]
    fn control_characters_are_kept_before_the_first_accent_only() {
        for text in ["a\tb\u{1}é\tc\n", "\u{1f}é\u{0}", "é\u{7f}\u{1}x"] {
            assert_eq!(to_ascii(text), deunicode::deunicode(text), "{text:?}");
        }
    }

    #[test]
    fn matches_deunicode_on_every_character_of_the_first_planes() {
        let mut text = String::new();
        for code in 0x7Fu32..0x3_0000 {
            if let Some(c) = char::from_u32(code) {
                text.push('a');
                text.push(c);
                text.push(c);
                text.push(' ');
            }
        }
        assert_eq!(to_ascii(&text), deunicode::deunicode(&text));
    }

    #[test]
    fn keeps_deunicode_s_trailing_space_rule() {
        for text in [
            "北京",
            "北京 x",
            "中国x🅶",
            "☃中 国",
            "Crème brûlée",
            "é",
            "🄏中国",
            "x北",
            "北 ",
            "\u{7f}é",
        ] {
            assert_eq!(to_ascii(text), deunicode::deunicode(text), "{text:?}");
        }
    }

    #[test]
    fn normalises_like_before() {
        assert_eq!(normalise_text("  Économie  "), "Economie");
        assert_eq!(normalise_text("'=Été"), "=Ete");
        assert_eq!(normalise_text("plain"), "plain");
        assert_eq!(normalise_text("北"), "Bei");
    }

    proptest! {
        #[test]
        fn matches_deunicode_on_any_text(text in "(\\PC|[\\x00-\\x1f\\x7f]){0,40}") {
            prop_assert_eq!(to_ascii(&text), deunicode::deunicode(&text));
        }

        #[test]
        fn matches_deunicode_on_latin_text(text in "[a-zA-Z éèêàçôûïœÉÈ -/?=&]{0,60}") {
            prop_assert_eq!(to_ascii(&text), deunicode::deunicode(&text));
            let before = deunicode::deunicode(strip_formula_guard(text.trim())).trim().to_string();
            prop_assert_eq!(normalise_text(&text), before);
        }
    }
}
