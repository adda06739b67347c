//! Object keys as S3 notifications carry them: form-urlencoded (`+` is a space, `%XX` are the
//! bytes of the UTF-8 key, so a real `+` arrives as `%2B`). Using the key as received fetches
//! the wrong object, or none, as soon as a user drops "Export visites.csv"; decoding it twice
//! turns a literal `%41` in a name into `A`. So keys are decoded exactly once, here, and a
//! sequence that cannot come from S3 is an error, never a panic or a guess.

use crate::Error;

/// Decodes a form-urlencoded object key into the key S3 stores.
pub fn decode_form_key(encoded: &str) -> Result<String, Error> {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| Some(hex_value(hex[0])? << 4 | hex_value(hex[1])?))
                    .ok_or_else(|| Error::KeyEncoding {
                        key: encoded.to_string(),
                        position: i,
                        reason: "'%' must be followed by two hexadecimal digits",
                    })?;
                decoded.push(byte);
                i += 3;
            }
            b => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).map_err(|e| Error::KeyEncoding {
        key: encoded.to_string(),
        position: encoded_position(bytes, e.utf8_error().valid_up_to()),
        reason: "the decoded bytes are not UTF-8",
    })
}

/// Where, in the encoded key, the decoded byte at `decoded_index` came from.
fn encoded_position(encoded: &[u8], decoded_index: usize) -> usize {
    let mut position = 0;
    for _ in 0..decoded_index {
        position += if encoded.get(position) == Some(&b'%') { 3 } else { 1 };
    }
    position
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_keys_as_s3_encodes_them() {
        let cases = [
            ("incoming/acme/data.csv", "incoming/acme/data.csv"),
            ("incoming/acme/Export+visites.csv", "incoming/acme/Export visites.csv"),
            ("Happy%20Face.jpg", "Happy Face.jpg"),
            ("c%2B%2B+notes.csv", "c++ notes.csv"),
            ("a%3Db%26c%3Dd.csv", "a=b&c=d.csv"),
            ("a=b&c.csv", "a=b&c.csv"),
            ("incoming/acme/r%C3%A9sum%C3%A9.csv", "incoming/acme/résumé.csv"),
            ("r%c3%a9sum%c3%a9", "résumé"),
            ("users%2FABC", "users/ABC"),
            ("a%40b", "a@b"),
            ("lifecycle%2Dtest.dat", "lifecycle-test.dat"),
            ("100%25", "100%"),
            ("", ""),
            ("déjà", "déjà"),
        ];
        for (encoded, expected) in cases {
            assert_eq!(decode_form_key(encoded).unwrap(), expected, "decoding {encoded:?}");
        }
    }

    #[test]
    fn refuses_broken_percent_sequences_without_panicking() {
        let cases = [
            ("abc%", 3),
            ("abc%4", 3),
            ("abc%G1", 3),
            ("a%2", 1),
            ("%%41", 0),
            ("%C3", 0),
            ("ok%C3%28", 2),
            ("x+%C3%28", 2),
            ("%41%C3%28", 3),
            ("%FF.csv", 0),
            ("é%", "é".len()),
        ];
        for (encoded, position) in cases {
            match decode_form_key(encoded) {
                Err(Error::KeyEncoding { position: p, .. }) => assert_eq!(p, position, "position for {encoded:?}"),
                other => panic!("{encoded:?} decoded to {other:?}"),
            }
        }
    }

    #[test]
    fn the_error_names_the_key_and_position() {
        let message = decode_form_key("incoming/a%ZZ.csv").unwrap_err().to_string();
        assert!(
            message.contains("incoming/a%ZZ.csv") && message.contains("byte 10"),
            "{message}"
        );
    }
}
