//! Pseudonymisation of personal data at ingest: a keyed hash (HMAC-SHA-256 with the
//! project's secret) of the normalised value replaces the value, so equal phones or emails
//! still link across platforms while the clear text never reaches a table.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use shopfuse_core::PiiKind;
use unicode_normalization::UnicodeNormalization;

#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl Pseudonymiser {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length"),
        }
    }

    /// `None` when nothing is left after normalisation (an empty or placeholder value).
    pub fn pseudonymise(&self, kind: PiiKind, raw: &str) -> Option<String> {
        let normalised = normalise(kind, raw);
        if normalised.is_empty() {
            return None;
        }
        Some(self.hash(kind, &normalised))
    }

    /// The pseudonym of an already normalised value; the kind is part of the message so a
    /// name and an address with the same text do not collide.
    pub fn hash(&self, kind: PiiKind, normalised: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(kind_tag(kind).as_bytes());
        mac.update(&[0x1f]);
        mac.update(normalised.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("{}:{}", kind_tag(kind), hex::encode(&digest[..16]))
    }
}

fn kind_tag(kind: PiiKind) -> &'static str {
    match kind {
        PiiKind::Name => "name",
        PiiKind::Phone => "phone",
        PiiKind::Email => "email",
        PiiKind::Address => "addr",
    }
}

pub fn normalise(kind: PiiKind, raw: &str) -> String {
    match kind {
        PiiKind::Phone => normalise_phone(raw),
        PiiKind::Email => raw.nfkc().collect::<String>().trim().to_lowercase(),
        PiiKind::Name => raw
            .nfkc()
            .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '.' | '-' | ','))
            .collect::<String>()
            .to_lowercase(),
        PiiKind::Address => raw
            .nfkc()
            .filter(|c| {
                !c.is_whitespace() && !c.is_ascii_punctuation() && !matches!(c, '，' | '。' | '、')
            })
            .collect::<String>()
            .to_lowercase(),
    }
}

/// Digits only, without the Chinese country code: "+86 138-0013-8000", "0086 13800138000"
/// and "138 0013 8000" are the same phone.
pub fn normalise_phone(raw: &str) -> String {
    let digits: String = raw.nfkc().filter(|c| c.is_ascii_digit()).collect();
    for prefix in ["0086", "86"] {
        if let Some(rest) = digits.strip_prefix(prefix) {
            if rest.len() == 11 && rest.starts_with('1') {
                return rest.to_string();
            }
        }
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_variants_share_one_pseudonym() {
        let p = Pseudonymiser::new(b"k");
        let a = p.pseudonymise(PiiKind::Phone, "+86 138-0013-8000").unwrap();
        for v in [
            "0086 13800138000",
            "138 0013 8000",
            "１３８００１３８０００",
        ] {
            assert_eq!(p.pseudonymise(PiiKind::Phone, v).unwrap(), a, "{v}");
        }
        assert!(!a.contains("138"));
    }

    #[test]
    fn different_keys_give_unlinkable_pseudonyms() {
        let a = Pseudonymiser::new(b"k1").pseudonymise(PiiKind::Email, "A@x.com");
        let b = Pseudonymiser::new(b"k2").pseudonymise(PiiKind::Email, "a@x.com");
        assert_ne!(a, b);
        assert_eq!(
            a,
            Pseudonymiser::new(b"k1").pseudonymise(PiiKind::Email, " a@X.com ")
        );
    }

    #[test]
    fn empty_values_stay_empty() {
        assert_eq!(
            Pseudonymiser::new(b"k").pseudonymise(PiiKind::Name, "  "),
            None
        );
    }
}
