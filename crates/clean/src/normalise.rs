//! Text and unit normalisation: the same value written differently on different platforms
//! ("ＩＰｈｏｎｅ　１４", "iPhone 14 ") must compare equal downstream.

use unicode_normalization::UnicodeNormalization;

/// NFKC (which also folds full-width Latin letters, digits and punctuation to half-width),
/// then collapses every run of whitespace to one space and trims. Empty text becomes `None`.
pub fn normalise_text(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.nfkc() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Brands compare case-insensitively ("APPLE", "Apple", "apple").
pub fn normalise_brand(raw: &str) -> Option<String> {
    normalise_text(raw).map(|s| s.to_lowercase())
}

/// Model codes are matched as identifiers: upper case, no inner spaces ("sm g9910" → "SMG9910",
/// "SM-G9910" keeps its dash because vendors print it that way).
pub fn normalise_model_code(raw: &str) -> Option<String> {
    let s: String = normalise_text(raw)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    (!s.is_empty()).then(|| s.to_uppercase())
}

/// GTIN/EAN/UPC: digits only; anything else in the field is export noise.
pub fn normalise_gtin(raw: &str) -> Option<String> {
    let s: String = normalise_text(raw)?
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    (s.len() >= 8).then_some(s)
}

/// A quantity with its unit, in a canonical unit per dimension: storage in GB, volume in ml,
/// mass in g, length in mm.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    pub value: f64,
    pub unit: &'static str,
}

/// (spellings, canonical unit, factor to canonical). Longest spellings first within a
/// dimension so "ml" is not read as "l" with a stray "m".
const UNITS: &[(&[&str], &str, f64)] = &[
    (&["tb"], "GB", 1024.0),
    (&["gb"], "GB", 1.0),
    (&["mb"], "GB", 1.0 / 1024.0),
    (&["毫升", "ml"], "ml", 1.0),
    (&["升", "l"], "ml", 1000.0),
    (&["千克", "公斤", "kg"], "g", 1000.0),
    (&["克", "g"], "g", 1.0),
    (&["厘米", "cm"], "mm", 10.0),
    (&["毫米", "mm"], "mm", 1.0),
];

/// Reads a capacity such as "128GB", "1TB", "500 ml", "1.5L", "256G" or "2公斤".
/// A bare "G" or "T" is ambiguous: Chinese listings write storage as "256G" / "1T", while "500g"
/// is a mass. Storage sizes are powers of two, so a power of two reads as storage and anything
/// else as grams.
pub fn parse_measure(raw: &str) -> Option<Measure> {
    let text = normalise_text(raw)?.to_lowercase();
    for (number, rest) in shopfuse_core::text::numbers_with_rest(&text) {
        let Ok(value) = number.parse::<f64>() else {
            continue;
        };
        if let Some(m) = bare_storage(value, rest) {
            return Some(m);
        }
        for (spellings, unit, factor) in UNITS {
            for s in *spellings {
                if let Some(after) = rest.strip_prefix(s) {
                    // "5g网络" is a network generation, "128gb" is storage: the unit must end
                    // the token.
                    let ends = after
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '网');
                    if ends && value > 0.0 {
                        return Some(Measure {
                            value: round6(value * factor),
                            unit,
                        });
                    }
                }
            }
        }
    }
    None
}

fn bare_storage(value: f64, rest: &str) -> Option<Measure> {
    let mut chars = rest.chars();
    let unit = chars.next()?;
    let ends = chars
        .next()
        .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '网' && c != '克');
    let power_of_two = value >= 1.0 && value.fract() == 0.0 && (value as u64).is_power_of_two();
    match unit {
        'g' if ends && power_of_two && (2.0..=2048.0).contains(&value) => {
            Some(Measure { value, unit: "GB" })
        }
        't' if ends && power_of_two && value <= 16.0 => Some(Measure {
            value: value * 1024.0,
            unit: "GB",
        }),
        _ => None,
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_width_and_spaces_fold() {
        assert_eq!(
            normalise_text("　ＩＰｈｏｎｅ　１４  Pro\t").as_deref(),
            Some("IPhone 14 Pro")
        );
        assert_eq!(normalise_text("  \n "), None);
        assert_eq!(
            normalise_text("华为（HUAWEI）"),
            Some("华为(HUAWEI)".into())
        );
    }

    #[test]
    fn identifiers_normalise() {
        assert_eq!(
            normalise_model_code(" sm-g9910 ").as_deref(),
            Some("SM-G9910")
        );
        assert_eq!(normalise_model_code("ＤＳＣ Ｗ120"), Some("DSCW120".into()));
        assert_eq!(
            normalise_gtin("EAN: 0194253 401 25-1").as_deref(),
            Some("0194253401251")
        );
        assert_eq!(normalise_gtin("n/a"), None);
        assert_eq!(normalise_brand("APPLE"), Some("apple".into()));
    }

    #[test]
    fn capacities_parse_to_canonical_units() {
        let m = |s| parse_measure(s).map(|m| (m.value, m.unit));
        assert_eq!(m("128GB"), Some((128.0, "GB")));
        assert_eq!(m("Apple iPhone 14 256G 蓝色"), Some((256.0, "GB")));
        assert_eq!(m("1TB"), Some((1024.0, "GB")));
        assert_eq!(m("1.5L"), Some((1500.0, "ml")));
        assert_eq!(m("500 ml"), Some((500.0, "ml")));
        assert_eq!(m("2公斤装"), Some((2000.0, "g")));
        assert_eq!(m("华为 Mate 60 5G网络 512GB"), Some((512.0, "GB")));
        assert_eq!(m("iPhone 14"), None);
        assert_eq!(m("1T"), Some((1024.0, "GB")));
        assert_eq!(m("Coffee beans 500g"), Some((500.0, "g")));
    }

    proptest! {
        #[test]
        fn normalise_text_is_idempotent(s in "\\PC{0,40}") {
            let once = normalise_text(&s);
            let twice = once.as_deref().and_then(normalise_text);
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn measure_reads_any_gb_figure(n in 1u32..100_000) {
            prop_assert_eq!(parse_measure(&format!("容量 {n}GB")), Some(Measure { value: n as f64, unit: "GB" }));
        }
    }
}
