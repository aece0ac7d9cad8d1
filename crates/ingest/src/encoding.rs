//! Text encoding of source files: declared, or detected (BOM, strict UTF-8, then chardetng,
//! which tells GBK/GB18030 from Big5, Shift_JIS, windows-125x and others).

use encoding_rs::{Encoding, GB18030, GBK, UTF_8};

#[derive(Debug)]
pub struct Decoded {
    pub text: String,
    pub encoding: &'static str,
    /// True when some bytes were not valid in the encoding; those became U+FFFD.
    pub had_errors: bool,
}

pub fn decode(bytes: &[u8], declared: Option<&str>) -> Result<Decoded, String> {
    let encoding = match declared.map(str::trim) {
        None | Some("") | Some("auto") => detect(bytes),
        Some(label) => Encoding::for_label(label.as_bytes()).ok_or_else(|| {
            format!("unknown encoding {label:?}; use auto, utf-8, gbk, gb18030, big5, shift_jis, …")
        })?,
    };
    // GB18030 is a superset of GBK: decoding as GB18030 loses nothing a GBK file holds.
    let encoding = if encoding == GBK { GB18030 } else { encoding };
    let (text, actual, had_errors) = encoding.decode(bytes);
    Ok(Decoded {
        text: text.into_owned(),
        encoding: actual.name(),
        had_errors,
    })
}

fn detect(bytes: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(bytes) {
        return enc;
    }
    if std::str::from_utf8(bytes).is_ok() {
        return UTF_8;
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(detection_sample(bytes), true);
    detector.guess(None, chardetng::Utf8Detection::Deny)
}

/// Non-ASCII bytes after which chardetng's guess is settled: its scores come from byte
/// pairs of the text, and 16 KiB of them is thousands of Chinese characters. Feeding it a
/// whole 30 MB export took a quarter of ingest's time and changed no guess.
const ENOUGH_NON_ASCII: usize = 16 * 1024;

/// The prefix of `bytes` that holds `ENOUGH_NON_ASCII` non-ASCII bytes (all of it when it
/// holds fewer), cut at a line end so no character is split.
fn detection_sample(bytes: &[u8]) -> &[u8] {
    let mut seen = 0;
    let Some(at) = bytes.iter().position(|b| {
        seen += usize::from(*b >= 0x80);
        seen >= ENOUGH_NON_ASCII
    }) else {
        return bytes;
    };
    match bytes[at..].iter().position(|b| *b == b'\n') {
        Some(newline) => &bytes[..at + newline + 1],
        None => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_gbk_chinese() {
        let text = "宝贝ID,宝贝标题,价格\n1,苹果 iPhone 14 128GB 蓝色 全网通手机,￥5999.00\n2,华为 Mate 60 Pro 12+512GB 雅川青,￥6999.00\n";
        let (bytes, _, _) = GBK.encode(text);
        let d = decode(&bytes, None).unwrap();
        assert_eq!(d.encoding, "gb18030");
        assert!(!d.had_errors);
        assert_eq!(d.text, text);
    }

    #[test]
    fn a_long_gbk_file_is_detected_from_its_first_lines() {
        let line = "1,苹果 iPhone 14 128GB 蓝色 全网通手机,￥5999.00,华为 Mate 60 Pro 雅川青\n";
        let text = format!("宝贝ID,宝贝标题,价格,备注\n{}", line.repeat(8000));
        let (bytes, _, _) = GBK.encode(&text);
        let sample = detection_sample(&bytes);
        assert!(
            sample.len() < bytes.len() / 4,
            "{} of {}",
            sample.len(),
            bytes.len()
        );
        assert!(sample.ends_with(b"\n"));
        let d = decode(&bytes, None).unwrap();
        assert_eq!((d.encoding, d.had_errors), ("gb18030", false));
        assert_eq!(d.text, text);
        // A short file is fed whole.
        assert_eq!(detection_sample(&bytes[..500]).len(), 500);
    }

    #[test]
    fn utf8_with_bom_and_declared_labels() {
        let d = decode("\u{feff}a,b\n".as_bytes(), None).unwrap();
        assert_eq!((d.text.as_str(), d.encoding), ("a,b\n", "UTF-8"));
        let d = decode(b"abc", Some("GBK")).unwrap();
        assert_eq!(d.encoding, "gb18030");
        assert!(decode(b"abc", Some("klingon"))
            .unwrap_err()
            .contains("unknown encoding"));
    }

    #[test]
    fn invalid_bytes_are_reported() {
        let d = decode(b"ok\xff\xfe\xfd", Some("utf-8")).unwrap();
        assert!(d.had_errors);
        assert!(d.text.contains('\u{fffd}'));
    }
}
