//! Pseudonymisation of personal data at ingest: a keyed hash (HMAC-SHA-256 with the
//! project's secret) of the normalised value replaces the value, so equal phones or emails
//! still link across platforms while the clear text never reaches a table.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use shopfuse_core::{PiiFeature, PiiKind};
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

    /// `None` when nothing is left after normalisation (an empty or placeholder value, or a
    /// masked phone whose full number is unknown).
    pub fn pseudonymise(&self, kind: PiiKind, raw: &str) -> Option<String> {
        self.pseudonym_of(kind, &normalise(kind, raw))
    }

    fn pseudonym_of(&self, kind: PiiKind, normalised: &str) -> Option<String> {
        (!normalised.is_empty()).then(|| self.hash(kind_tag(kind), normalised))
    }

    /// A matching feature of a personal value: its fragments' keyed hashes, sorted and
    /// separated by spaces, or `None` when the value has no such fragment.
    pub fn derive(&self, feature: PiiFeature, raw: &str) -> Option<String> {
        let fragments: Vec<String> = match feature {
            PiiFeature::NameTokens => name_tokens(raw),
            PiiFeature::PhoneTail => phone_tail(raw).into_iter().collect(),
            PiiFeature::EmailUser => email_user(raw).into_iter().collect(),
            PiiFeature::AddressArea | PiiFeature::AddressStreet | PiiFeature::AddressHouse => {
                address_fragments(feature, &parse_address(raw))
            }
        };
        self.derived_of(feature, &fragments)
    }

    fn derived_of(&self, feature: PiiFeature, fragments: &[String]) -> Option<String> {
        let tag = feature_tag(feature);
        let mut hashes: Vec<String> = fragments.iter().map(|f| self.hash(tag, f)).collect();
        hashes.sort();
        hashes.dedup();
        (!hashes.is_empty()).then(|| hashes.join(" "))
    }

    /// The pseudonym of an already normalised value; the tag is part of the message so a
    /// name and an address with the same text do not collide.
    fn hash(&self, tag: &str, normalised: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(tag.as_bytes());
        mac.update(&[0x1f]);
        mac.update(normalised.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("{tag}:{}", hex::encode(&digest[..16]))
    }
}

/// A pseudonymiser that remembers what it computed. A customer's phone and address recur on
/// every order they place, and each occurrence cost NFKC, traditional → simplified folding, an
/// address parse per derived feature and a keyed hash each: a fifth of ingest's time. One per
/// worker (the memo is not shared between threads), bounded by `MEMO_CAP` values per kind.
pub struct MemoPseudonymiser<'a> {
    inner: &'a Pseudonymiser,
    kinds: [HashMap<String, Option<String>>; 5],
    features: [HashMap<String, Option<String>>; 6],
    /// The last address parsed: a row's pseudonym and its three address features all start
    /// from the same parse.
    last_address: Option<(String, AddressParts)>,
}

/// Values remembered per kind or feature before the memo starts afresh (a few MB).
const MEMO_CAP: usize = 1 << 15;

impl Pseudonymiser {
    pub fn memoised(&self) -> MemoPseudonymiser<'_> {
        MemoPseudonymiser {
            inner: self,
            kinds: Default::default(),
            features: Default::default(),
            last_address: None,
        }
    }
}

impl MemoPseudonymiser<'_> {
    /// [`Pseudonymiser::pseudonymise`], computed once per distinct value.
    pub fn pseudonymise(&mut self, kind: PiiKind, raw: &str) -> Option<String> {
        if let Some(known) = self.kinds[kind as usize].get(raw) {
            return known.clone();
        }
        let value = match kind {
            PiiKind::Address => {
                let inner = self.inner;
                inner.pseudonym_of(kind, &self.address(raw).whole)
            }
            _ => self.inner.pseudonymise(kind, raw),
        };
        remember(&mut self.kinds[kind as usize], raw, value)
    }

    /// [`Pseudonymiser::derive`], computed once per distinct value.
    pub fn derive(&mut self, feature: PiiFeature, raw: &str) -> Option<String> {
        if let Some(known) = self.features[feature as usize].get(raw) {
            return known.clone();
        }
        let value = match feature {
            PiiFeature::AddressArea | PiiFeature::AddressStreet | PiiFeature::AddressHouse => {
                let inner = self.inner;
                inner.derived_of(feature, &address_fragments(feature, self.address(raw)))
            }
            _ => self.inner.derive(feature, raw),
        };
        remember(&mut self.features[feature as usize], raw, value)
    }

    fn address(&mut self, raw: &str) -> &AddressParts {
        if self
            .last_address
            .as_ref()
            .is_none_or(|(text, _)| text != raw)
        {
            self.last_address = Some((raw.to_string(), parse_address(raw)));
        }
        &self.last_address.as_ref().expect("just parsed").1
    }
}

fn remember(
    memo: &mut HashMap<String, Option<String>>,
    raw: &str,
    value: Option<String>,
) -> Option<String> {
    if memo.len() >= MEMO_CAP {
        memo.clear();
    }
    memo.insert(raw.to_string(), value.clone());
    value
}

/// The fragments of an address feature.
fn address_fragments(feature: PiiFeature, parts: &AddressParts) -> Vec<String> {
    let fragment = match feature {
        PiiFeature::AddressArea => parts.area(),
        PiiFeature::AddressStreet => parts.street(),
        PiiFeature::AddressHouse => parts.house(),
        _ => None,
    };
    fragment.into_iter().collect()
}

fn kind_tag(kind: PiiKind) -> &'static str {
    match kind {
        PiiKind::Name => "name",
        PiiKind::Phone => "phone",
        PiiKind::Email => "email",
        PiiKind::Address => "addr",
        PiiKind::Marked => "pii",
    }
}

fn feature_tag(feature: PiiFeature) -> &'static str {
    match feature {
        PiiFeature::NameTokens => "nametok",
        PiiFeature::PhoneTail => "phtail",
        PiiFeature::EmailUser => "mailbox",
        PiiFeature::AddressArea => "area",
        PiiFeature::AddressStreet => "street",
        PiiFeature::AddressHouse => "house",
    }
}

/// Compatibility forms folded, traditional characters in simplified form (地址 and names are
/// typed in both: 號/号, 區/区, 歐陽/欧阳), surrounding space trimmed.
fn fold(raw: &str) -> String {
    fast2s::convert(&raw.nfkc().collect::<String>())
        .trim()
        .to_string()
}

pub fn normalise(kind: PiiKind, raw: &str) -> String {
    match kind {
        PiiKind::Phone => normalise_phone(raw),
        PiiKind::Email => fold(raw).to_lowercase(),
        PiiKind::Name => name_text(raw)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase(),
        PiiKind::Address => normalise_address(raw),
        PiiKind::Marked => fold(raw).to_lowercase(),
    }
}

fn normalise_address(raw: &str) -> String {
    fold(raw)
        .chars()
        .filter(|c| {
            !c.is_whitespace() && !c.is_ascii_punctuation() && !matches!(c, '，' | '。' | '、')
        })
        .collect::<String>()
        .to_lowercase()
}

/// A name without the notes platforms add to it: "王伟（收）", "Li Na (home)", "张 三".
/// Separators between the parts become single spaces.
fn name_text(raw: &str) -> String {
    let folded = fold(raw);
    let mut out = String::new();
    let mut depth = 0usize;
    for c in folded.chars() {
        match c {
            '(' | '（' | '[' | '【' => depth += 1,
            ')' | '）' | ']' | '】' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            '·' | '.' | '-' | ',' | '•' => out.push(' '),
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Two-character Chinese surnames; every other Chinese name's surname is its first character.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "令狐", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "百里", "呼延", "万俟", "闻人", "申屠",
    "澹台", "公冶", "太史", "钟离",
];

fn is_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}')
}

/// Surname and given name of a Chinese name; the lower-cased words of any other.
fn name_tokens(raw: &str) -> Vec<String> {
    let text = name_text(raw).to_lowercase();
    let joined: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !joined.is_empty() && joined.chars().all(is_han) {
        let surname_len = COMPOUND_SURNAMES
            .iter()
            .find(|s| joined.starts_with(*s) && joined.chars().count() > 2)
            .map_or(1, |s| s.chars().count());
        let surname: String = joined.chars().take(surname_len).collect();
        let given: String = joined.chars().skip(surname_len).collect();
        // Tagged by role: the surname 文 and the given name 文 are different evidence.
        let mut out = vec![format!("s:{surname}")];
        if !given.is_empty() {
            out.push(format!("g:{given}"));
        }
        return out;
    }
    text.split_whitespace()
        .filter(|w| w.chars().count() > 1)
        .map(|w| format!("w:{w}"))
        .collect()
}

/// Digits only, without the Chinese country code: "+86 138-0013-8000", "0086 13800138000"
/// and "138 0013 8000" are the same phone. A masked number ("138****8000") has no full form.
pub fn normalise_phone(raw: &str) -> String {
    if is_masked(raw) {
        return String::new();
    }
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

fn is_masked(raw: &str) -> bool {
    raw.contains(['*', '＊', '×', 'x', 'X'])
}

/// The last four digits, which platforms that mask phones still show.
fn phone_tail(raw: &str) -> Option<String> {
    let digits: Vec<char> = raw.nfkc().filter(|c| c.is_ascii_digit()).collect();
    let enough = if is_masked(raw) { 4 } else { 7 };
    (digits.len() >= enough).then(|| digits[digits.len() - 4..].iter().collect())
}

/// The mailbox name without a "+tag": "li.na+shop@qq.com" and "li.na@163.com" share it.
fn email_user(raw: &str) -> Option<String> {
    let email = normalise(PiiKind::Email, raw);
    let (user, _) = email.split_once('@')?;
    let user = user.split('+').next().unwrap_or(user);
    (user.chars().count() >= 3).then(|| user.to_string())
}

/// The parts of an address that identify a place whichever way a form wrote it: the
/// province and city are dropped (forms differ on whether they are written, and the city is
/// compared on its own field); building and room detail after the house number are ignored.
#[derive(Debug, Default, PartialEq)]
pub struct AddressParts {
    pub district: Option<String>,
    pub road: Option<String>,
    pub number: Option<String>,
    /// The whole normalised address, for addresses without Chinese place markers.
    pub whole: String,
}

impl AddressParts {
    fn area(&self) -> Option<String> {
        self.district.clone()
    }
    fn street(&self) -> Option<String> {
        let road = self.road.as_ref()?;
        Some(format!("{}|{road}", self.district.as_deref().unwrap_or("")))
    }
    fn house(&self) -> Option<String> {
        match (self.street(), &self.number) {
            (Some(street), Some(number)) => Some(format!("{street}|{number}")),
            _ if !self.whole.is_empty() && self.road.is_none() && self.district.is_none() => {
                Some(self.whole.clone())
            }
            _ => None,
        }
    }
}

/// Parses a Chinese address written as 省 市 区/县 路/街 号 (any part may be missing).
pub fn parse_address(raw: &str) -> AddressParts {
    let whole = normalise_address(raw);
    let mut parts = AddressParts::default();
    let mut segment = String::new();
    for c in whole.chars() {
        segment.push(c);
        let before_district = parts.district.is_none() && parts.road.is_none();
        match c {
            '省' if before_district => segment.clear(),
            '市' if before_district => segment.clear(),
            '区' | '县' | '旗' if before_district => {
                if segment.ends_with("自治区") {
                    segment.clear();
                } else {
                    parts.district = Some(std::mem::take(&mut segment));
                }
            }
            '路' | '街' | '道' | '巷' | '弄' if parts.road.is_none() => {
                parts.road = Some(std::mem::take(&mut segment));
            }
            '号' if parts.road.is_some() && parts.number.is_none() => {
                parts.number = Some(std::mem::take(&mut segment));
            }
            _ => {}
        }
    }
    parts.whole = whole;
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_gives_what_the_pseudonymiser_gives() {
        let p = Pseudonymiser::new(b"k");
        let mut memo = p.memoised();
        let values = [
            "+86 138-0013-8000",
            "北京市海淀区花园路43號",
            "13800138000",
            "北京市海淀区花园路43號",
        ];
        for raw in values.iter().chain(&values) {
            for kind in [PiiKind::Phone, PiiKind::Address, PiiKind::Name] {
                assert_eq!(
                    memo.pseudonymise(kind, raw),
                    p.pseudonymise(kind, raw),
                    "{raw}"
                );
            }
            for feature in [
                PiiFeature::AddressArea,
                PiiFeature::AddressStreet,
                PiiFeature::AddressHouse,
                PiiFeature::PhoneTail,
            ] {
                assert_eq!(memo.derive(feature, raw), p.derive(feature, raw), "{raw}");
            }
        }
    }

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
    fn masked_phones_keep_only_their_tail() {
        let p = Pseudonymiser::new(b"k");
        assert_eq!(p.pseudonymise(PiiKind::Phone, "138****8000"), None);
        let tail = p.derive(PiiFeature::PhoneTail, "138****8000").unwrap();
        assert_eq!(
            p.derive(PiiFeature::PhoneTail, "+86 138-0013-8000"),
            Some(tail.clone())
        );
        assert!(!tail.contains("8000"));
        assert_eq!(p.derive(PiiFeature::PhoneTail, "12-34"), None);
    }

    #[test]
    fn name_notes_spaces_and_traditional_forms_do_not_change_a_name() {
        let p = Pseudonymiser::new(b"k");
        let a = p.pseudonymise(PiiKind::Name, "欧阳一诺").unwrap();
        for v in [
            "欧阳 一诺",
            "欧阳一诺（收）",
            "歐陽一諾",
            " 欧阳一诺 (home)",
        ] {
            assert_eq!(p.pseudonymise(PiiKind::Name, v).unwrap(), a, "{v}");
        }
        assert_eq!(name_tokens("欧阳一诺"), vec!["s:欧阳", "g:一诺"]);
        assert_eq!(name_tokens("王 伟（收）"), vec!["s:王", "g:伟"]);
        assert_eq!(name_tokens("Li Na (work)"), vec!["w:li", "w:na"]);
        // A shared surname is one shared token, not the whole name.
        let wang = p.derive(PiiFeature::NameTokens, "王伟").unwrap();
        let other = p.derive(PiiFeature::NameTokens, "王芳").unwrap();
        let shared: Vec<_> = wang.split(' ').filter(|t| other.contains(t)).collect();
        assert_eq!(shared.len(), 1);
    }

    #[test]
    fn address_forms_of_one_house_share_their_keys() {
        let full = parse_address("广东省广州市天河区中山路12号");
        assert_eq!(full.district.as_deref(), Some("天河区"));
        assert_eq!(full.road.as_deref(), Some("中山路"));
        assert_eq!(full.number.as_deref(), Some("12号"));
        for v in [
            "广州市天河区中山路12号3栋1203室",
            "广东省 广州市 天河區 中山路 12號",
        ] {
            let other = parse_address(v);
            assert_eq!(other.house(), full.house(), "{v}");
        }
        let beijing = parse_address("北京市朝阳区建国路5号");
        assert_eq!(parse_address("朝阳区建国路5号").house(), beijing.house());
        assert_ne!(parse_address("朝阳区建国路6号").house(), beijing.house());
        assert_eq!(parse_address("朝阳区建国路6号").street(), beijing.street());
        assert_eq!(
            parse_address("新疆维吾尔自治区乌鲁木齐市天山区解放路1号")
                .district
                .as_deref(),
            Some("天山区")
        );
        // Without Chinese place markers the whole address is the house key.
        assert_eq!(
            parse_address("12 Main St., Springfield").house().as_deref(),
            Some("12mainstspringfield")
        );
    }

    #[test]
    fn mailbox_survives_a_change_of_provider() {
        assert_eq!(email_user("Li.Na+shop@QQ.com").as_deref(), Some("li.na"));
        assert_eq!(email_user("li.na@163.com").as_deref(), Some("li.na"));
        assert_eq!(email_user("ab@x.com"), None);
    }

    #[test]
    fn empty_values_stay_empty() {
        assert_eq!(
            Pseudonymiser::new(b"k").pseudonymise(PiiKind::Name, "  "),
            None
        );
    }
}
