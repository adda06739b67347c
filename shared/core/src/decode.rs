//! Turning the bytes of an export into UTF-8 text, streaming.
//!
//! Matomo exports UTF-16LE with a BOM by default, sometimes one byte short (the last NUL is
//! missing); spreadsheets write UTF-8 with or without a BOM, or Windows-1252. The encoding is
//! read from the BOM, else from the profile's `encoding`, else sniffed from the first
//! [`SNIFF_BYTES`]: UTF-8 when those bytes are UTF-8, Windows-1252 when they are not. A later
//! byte that contradicts the sniff is an error naming the `encoding` option, never a guess.

use std::io::{self, Chain, Cursor, Read};

use encoding_rs::{Decoder, DecoderResult};

/// How much of the start of a file is looked at to tell its encoding.
pub const SNIFF_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TextEncoding {
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "utf-16le")]
    Utf16Le,
    #[serde(rename = "utf-16be")]
    Utf16Be,
    #[serde(rename = "windows-1252")]
    Windows1252,
}

impl TextEncoding {
    pub const NAMES: [&'static str; 4] = ["utf-8", "utf-16le", "utf-16be", "windows-1252"];

    pub fn as_str(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Utf16Le => "utf-16le",
            TextEncoding::Utf16Be => "utf-16be",
            TextEncoding::Windows1252 => "windows-1252",
        }
    }

    /// Accepts the names above, case-insensitively, and the common aliases.
    pub fn parse(name: &str) -> Option<TextEncoding> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Some(TextEncoding::Utf8),
            "utf-16le" | "utf-16" | "utf16le" | "utf16" => Some(TextEncoding::Utf16Le),
            "utf-16be" | "utf16be" => Some(TextEncoding::Utf16Be),
            "windows-1252" | "cp1252" | "latin1" | "latin-1" | "iso-8859-1" | "iso-8859-15" => {
                Some(TextEncoding::Windows1252)
            }
            _ => None,
        }
    }

    fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            TextEncoding::Utf8 => encoding_rs::UTF_8,
            TextEncoding::Utf16Le => encoding_rs::UTF_16LE,
            TextEncoding::Utf16Be => encoding_rs::UTF_16BE,
            TextEncoding::Windows1252 => encoding_rs::WINDOWS_1252,
        }
    }
}

type Source<R> = Chain<Cursor<Vec<u8>>, R>;

/// UTF-8 text read from an export in any supported encoding.
pub struct DecodedText<R: Read> {
    encoding: TextEncoding,
    inner: Inner<R>,
}

enum Inner<R: Read> {
    Passthrough(Source<R>),
    Transcode(Box<Transcoder<R>>),
}

impl<R: Read> DecodedText<R> {
    /// The encoding the bytes were read as.
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }
}

impl<R: Read> Read for DecodedText<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Passthrough(source) => source.read(buf),
            Inner::Transcode(t) => t.read(buf),
        }
    }
}

/// Starts decoding `input`. Reads up to [`SNIFF_BYTES`] at once; the rest streams.
pub fn decode_text<R: Read>(mut input: R, declared: Option<TextEncoding>) -> io::Result<DecodedText<R>> {
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    (&mut input).take(SNIFF_BYTES as u64).read_to_end(&mut prefix)?;
    let at_eof = prefix.len() < SNIFF_BYTES;

    let (bom_encoding, bom_len) = match prefix.as_slice() {
        [0xEF, 0xBB, 0xBF, ..] => (Some(TextEncoding::Utf8), 3),
        [0xFF, 0xFE, ..] => (Some(TextEncoding::Utf16Le), 2),
        [0xFE, 0xFF, ..] => (Some(TextEncoding::Utf16Be), 2),
        _ => (None, 0),
    };
    let encoding = bom_encoding.or(declared).unwrap_or_else(|| sniff(&prefix, at_eof));
    // A BOM of another encoding than the one declared is the file's truth: the BOM wins.
    let skip = bom_len;
    let rest = prefix.split_off(skip.min(prefix.len()));
    let source = Cursor::new(rest).chain(input);
    let inner = if encoding == TextEncoding::Utf8 {
        Inner::Passthrough(source)
    } else {
        Inner::Transcode(Box::new(Transcoder {
            source,
            decoder: encoding.encoding().new_decoder_without_bom_handling(),
            encoding,
            input: vec![0; 16 * 1024],
            input_len: 0,
            output: vec![0; 48 * 1024 + 16],
            out_start: 0,
            out_end: 0,
            source_done: false,
            finished: false,
            bytes_in: skip as u64,
        }))
    };
    Ok(DecodedText { encoding, inner })
}

/// UTF-8 if the bytes are UTF-8 (a character cut at the end of the sniff window is fine),
/// UTF-16 if every other byte is NUL (a BOM-less UTF-16 export), else Windows-1252.
fn sniff(prefix: &[u8], at_eof: bool) -> TextEncoding {
    if prefix.len() >= 4 {
        let pairs = prefix.len() / 2;
        let odd_nuls = prefix.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
        let even_nuls = prefix.iter().step_by(2).filter(|&&b| b == 0).count();
        if odd_nuls * 10 >= pairs * 9 && even_nuls == 0 {
            return TextEncoding::Utf16Le;
        }
        if even_nuls * 10 >= pairs * 9 && odd_nuls == 0 {
            return TextEncoding::Utf16Be;
        }
    }
    match std::str::from_utf8(prefix) {
        Ok(_) => TextEncoding::Utf8,
        Err(e) if e.error_len().is_none() && !at_eof => TextEncoding::Utf8,
        Err(_) => TextEncoding::Windows1252,
    }
}

struct Transcoder<R: Read> {
    source: Source<R>,
    decoder: Decoder,
    encoding: TextEncoding,
    input: Vec<u8>,
    input_len: usize,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
    source_done: bool,
    finished: bool,
    /// Bytes of the original file handed to the decoder so far (for error offsets).
    bytes_in: u64,
}

impl<R: Read> Transcoder<R> {
    fn fill(&mut self) -> io::Result<()> {
        while self.out_start == self.out_end && !self.finished {
            if !self.source_done && self.input_len < self.input.len() {
                let n = self.source.read(&mut self.input[self.input_len..])?;
                if n == 0 {
                    self.source_done = true;
                    // UTF-16LE exports one byte short: the missing byte is the high (NUL) byte of
                    // the last code unit. Restore it rather than lose the last character.
                    let total = self.bytes_in + self.input_len as u64;
                    if self.encoding == TextEncoding::Utf16Le && total % 2 == 1 && self.input_len < self.input.len() {
                        self.input[self.input_len] = 0;
                        self.input_len += 1;
                    }
                } else {
                    self.input_len += n;
                }
            }
            let last = self.source_done;
            let (result, read, written) =
                self.decoder
                    .decode_to_utf8_without_replacement(&self.input[..self.input_len], &mut self.output, last);
            self.input.copy_within(read..self.input_len, 0);
            self.input_len -= read;
            self.out_start = 0;
            self.out_end = written;
            match result {
                DecoderResult::InputEmpty => {
                    self.bytes_in += read as u64;
                    if last {
                        self.finished = true;
                    }
                }
                DecoderResult::OutputFull => self.bytes_in += read as u64,
                DecoderResult::Malformed(bad, after) => {
                    let offset = self.bytes_in + read as u64 - u64::from(bad) - u64::from(after);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the bytes at offset {offset} are not valid {}; set \"encoding\" in the profile to one of {}",
                            self.encoding.as_str(),
                            TextEncoding::NAMES.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fill()?;
        let n = (self.out_end - self.out_start).min(buf.len());
        buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8], declared: Option<TextEncoding>) -> (TextEncoding, io::Result<String>) {
        let mut text = decode_text(bytes, declared).unwrap();
        let mut out = String::new();
        let r = text.read_to_string(&mut out).map(|_| out);
        (text.encoding(), r)
    }

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let mut v = if bom { vec![0xFF, 0xFE] } else { vec![] };
        v.extend(s.encode_utf16().flat_map(|u| u.to_le_bytes()));
        v
    }

    #[test]
    fn each_encoding() {
        let text = "Nom,Visites\nÉté à Paris,12";
        let mut utf16be = vec![0xFE, 0xFF];
        utf16be.extend(text.encode_utf16().flat_map(|u| u.to_be_bytes()));
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(text);
        let mut bom8 = vec![0xEF, 0xBB, 0xBF];
        bom8.extend_from_slice(text.as_bytes());
        let cases: Vec<(&str, Vec<u8>, TextEncoding)> = vec![
            ("utf-8", text.as_bytes().to_vec(), TextEncoding::Utf8),
            ("utf-8 with BOM", bom8, TextEncoding::Utf8),
            ("utf-16le with BOM", utf16le(text, true), TextEncoding::Utf16Le),
            ("utf-16le without BOM", utf16le(text, false), TextEncoding::Utf16Le),
            ("utf-16be with BOM", utf16be, TextEncoding::Utf16Be),
            ("windows-1252", cp1252.into_owned(), TextEncoding::Windows1252),
        ];
        for (name, bytes, want) in cases {
            let (enc, out) = decode_all(&bytes, None);
            assert_eq!(enc, want, "{name}");
            assert_eq!(out.unwrap(), text, "{name}");
        }
    }

    #[test]
    fn utf16le_missing_its_last_byte_keeps_its_last_character() {
        let mut bytes = utf16le("a,b\n1,2", true);
        bytes.pop();
        let (_, out) = decode_all(&bytes, None);
        assert_eq!(out.unwrap(), "a,b\n1,2");
    }

    #[test]
    fn long_utf16_crosses_buffers() {
        let text: String = (0..20_000).map(|i| format!("pagé {i},{i}\n")).collect();
        let (_, out) = decode_all(&utf16le(&text, true), None);
        assert_eq!(out.unwrap(), text);
    }

    #[test]
    fn declared_encoding_is_used_without_bom() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode("café");
        let (enc, out) = decode_all(&bytes, Some(TextEncoding::Windows1252));
        assert_eq!(enc, TextEncoding::Windows1252);
        assert_eq!(out.unwrap(), "café");
    }

    #[test]
    fn broken_utf16_names_the_offset_and_the_option() {
        // An unpaired high surrogate.
        let bytes = [0xFF, 0xFE, b'a', 0, 0x00, 0xD8, b'b', 0];
        let (_, out) = decode_all(&bytes, None);
        let err = out.unwrap_err().to_string();
        assert!(err.contains("offset 4"), "{err}");
        assert!(err.contains("\"encoding\""), "{err}");
    }
}
