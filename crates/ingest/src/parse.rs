//! Value parsers for the text that platforms export: prices with symbols and separators,
//! timestamps in many layouts and zones, counts with Chinese units, enumerations, ratings.
//!
//! Hand-written because each accepts the union of what Taobao, JD and Amazon-style exports
//! actually contain ("¥1,299.00", "1.2万", "2024年3月1日 12:00", "4.0 out of 5 stars"), which
//! no general-purpose crate covers; chrono does the calendar work underneath.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed price: the amount and the currency its text named, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Money {
    pub amount: f64,
    pub currency: Option<&'static str>,
}

/// Currency markers, longest first so "US$" wins over "$" and "HK$" over "$".
const CURRENCY_MARKERS: &[(&str, &str)] = &[
    ("人民币", "CNY"),
    ("US$", "USD"),
    ("USD", "USD"),
    ("HK$", "HKD"),
    ("HKD", "HKD"),
    ("RMB", "CNY"),
    ("CNY", "CNY"),
    ("EUR", "EUR"),
    ("GBP", "GBP"),
    ("JPY", "JPY"),
    ("JP¥", "JPY"),
    ("￥", "CNY"),
    ("¥", "CNY"),
    ("元", "CNY"),
    ("$", "USD"),
    ("€", "EUR"),
    ("£", "GBP"),
];

/// Parses "¥1,299.00", "US$19.99", "1.299,00 €", "19.99 USD", "1.2万", "99元".
/// Negative amounts and ranges are rejected: they are not a price of one item.
pub fn parse_price(text: &str) -> Result<Money, String> {
    let mut rest = text.trim().to_string();
    if rest.is_empty() {
        return Err("empty price".into());
    }
    let mut currency = None;
    for (marker, code) in CURRENCY_MARKERS {
        if let Some(pos) = find_ascii_ci(&rest, marker) {
            currency = Some(*code);
            rest.replace_range(pos..pos + marker.len(), " ");
            break;
        }
    }
    let rest = rest.trim();
    if rest.starts_with('-') {
        return Err(format!("negative price {text:?}"));
    }
    if rest.contains(['-', '~', '～']) {
        return Err(format!(
            "{text:?} is a price range; export one price per listing"
        ));
    }
    let amount = parse_number(rest).map_err(|e| format!("price {text:?}: {e}"))?;
    if amount < 0.0 {
        return Err(format!("negative price {text:?}"));
    }
    Ok(Money { amount, currency })
}

fn find_ascii_ci(haystack: &str, needle: &str) -> Option<usize> {
    if needle.is_ascii() && needle.chars().any(|c| c.is_ascii_alphabetic()) {
        haystack.to_ascii_uppercase().find(needle)
    } else {
        haystack.find(needle)
    }
}

/// Parses a decimal number written with thousands separators in either convention
/// ("1,299.50", "1.299,50", "1 299,50"), or with the Chinese 万 (10⁴) / 亿 (10⁸) units.
pub fn parse_number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (t, scale) = if let Some(s) = t.strip_suffix('万') {
        (s.trim(), 1e4)
    } else if let Some(s) = t.strip_suffix('亿') {
        (s.trim(), 1e8)
    } else {
        (t, 1.0)
    };
    if t.is_empty() {
        return Err("no digits".into());
    }
    let cleaned: String = t
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\'' | '_'))
        .collect();
    if !cleaned
        .chars()
        .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
        || !cleaned.chars().any(|c| c.is_ascii_digit())
    {
        return Err(format!("{text:?} is not a number"));
    }
    let last_comma = cleaned.rfind(',');
    let last_dot = cleaned.rfind('.');
    let normalised = match (last_comma, last_dot) {
        (Some(c), Some(d)) => {
            // Both present: whichever comes last is the decimal separator.
            if c > d {
                cleaned.replace('.', "").replace(',', ".")
            } else {
                cleaned.replace(',', "")
            }
        }
        (Some(_), None) => {
            if is_thousands_grouped(&cleaned, ',') {
                cleaned.replace(',', "")
            } else if cleaned.matches(',').count() == 1 {
                cleaned.replace(',', ".")
            } else {
                return Err(format!("{text:?}: cannot tell thousands from decimals"));
            }
        }
        (None, Some(_)) => {
            if cleaned.matches('.').count() > 1 {
                if is_thousands_grouped(&cleaned, '.') {
                    cleaned.replace('.', "")
                } else {
                    return Err(format!("{text:?}: more than one decimal point"));
                }
            } else {
                cleaned
            }
        }
        (None, None) => cleaned,
    };
    let v: f64 = normalised
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{text:?} is not a finite number"));
    }
    Ok(v * scale)
}

/// "1,299" and "1,299,000" are grouped by thousands; "19,99" is not.
fn is_thousands_grouped(s: &str, sep: char) -> bool {
    let groups: Vec<&str> = s.split(sep).collect();
    groups.len() >= 2
        && !groups[0].is_empty()
        && groups[0].len() <= 3
        && groups[1..]
            .iter()
            .all(|g| g.len() == 3 && g.chars().all(|c| c.is_ascii_digit()))
}

/// Parses a whole count: "3", "1,200", "2件", "1.2万", "5.0".
pub fn parse_integer(text: &str) -> Result<i64, String> {
    let t = text
        .trim()
        .trim_end_matches(['件', '个', '台', '只', '瓶', '盒', '袋', '箱', '套'])
        .trim_end_matches("pcs")
        .trim();
    let v = parse_number(t)?;
    if v.fract().abs() > 1e-9 {
        return Err(format!("{text:?} is not a whole number"));
    }
    if v.abs() > 9.0e15 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(v.round() as i64)
}

/// Parses a 1–5 star rating: "4", "4.5", "5星", "4.0 out of 5 stars", "★★★★☆".
pub fn parse_rating(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let stars = t.chars().filter(|c| *c == '★').count();
    let v = if stars > 0 {
        stars as f64
    } else {
        let head = t
            .split(" out of")
            .next()
            .unwrap_or(t)
            .trim_end_matches(['星', '分'])
            .trim_end_matches("stars")
            .trim_end_matches("star")
            .trim();
        parse_number(head)?
    };
    if !(1.0..=5.0).contains(&v) {
        return Err(format!("rating {text:?} is outside 1–5"));
    }
    Ok(v)
}

/// The canonical event types and the words platforms use for them.
pub fn parse_event_type(text: &str) -> Result<&'static str, String> {
    let t = text.trim().to_lowercase();
    Ok(match t.as_str() {
        "view" | "pv" | "click" | "浏览" | "查看" | "点击" | "detail_view" | "page_view" => {
            "view"
        }
        "cart" | "add_to_cart" | "addtocart" | "加购" | "加入购物车" | "购物车" => "cart",
        "purchase" | "buy" | "order" | "购买" | "下单" | "成交" | "支付" => "purchase",
        "favorite" | "fav" | "wishlist" | "like" | "收藏" | "关注" => "favorite",
        _ => {
            return Err(format!(
                "unknown event type {text:?}; map it in [sources.values.event_type]"
            ))
        }
    })
}

/// Parses a timestamp to UTC. Text with an explicit offset ("Z", "+08:00", "+0800", "UTC")
/// is taken as written; text without one is local time in `zone`. `format` (chrono syntax)
/// is tried first when the source declares one.
pub fn parse_timestamp(
    text: &str,
    zone: Tz,
    format: Option<&str>,
) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty timestamp".into());
    }
    if let Some(fmt) = format {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Ok(dt.with_timezone(&Utc));
        }
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, fmt) {
            return local(naive, zone, t);
        }
        if let Ok(date) = NaiveDate::parse_from_str(t, fmt) {
            return local(date.and_hms_opt(0, 0, 0).expect("midnight"), zone, t);
        }
        return Err(format!("{t:?} does not match the declared format {fmt:?}"));
    }
    // Unix epoch in seconds (10 digits) or milliseconds (13 digits).
    if t.len() >= 9 && t.len() <= 13 && t.chars().all(|c| c.is_ascii_digit()) {
        let n: i64 = t.parse().map_err(|_| format!("bad epoch {t:?}"))?;
        let secs_ms = if t.len() == 13 {
            (n / 1000, n % 1000)
        } else {
            (n, 0)
        };
        return Utc
            .timestamp_opt(secs_ms.0, (secs_ms.1 * 1_000_000) as u32)
            .single()
            .ok_or_else(|| format!("epoch {t:?} out of range"));
    }
    iso_fast_path(t, zone).unwrap_or_else(|| parse_any_layout(t, zone))
}

/// Every other layout the parser knows, offsets first, after bringing Chinese and slash
/// layouts to ISO.
fn parse_any_layout(t: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    let normalised = normalise_timestamp_text(t);
    let s = normalised.as_str();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(dt.with_timezone(&Utc));
    }
    const WITH_OFFSET: &[&str] = &[
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f %#z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M%#z",
        "%Y-%m-%d %H:%M %#z",
    ];
    for fmt in WITH_OFFSET {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Ok(dt.with_timezone(&Utc));
        }
    }
    if let Some(naive) = s.strip_suffix(" UTC").or_else(|| s.strip_suffix(" GMT")) {
        return parse_naive(naive)
            .map(|n| Utc.from_utc_datetime(&n))
            .ok_or_else(|| unrecognised(t));
    }
    let naive = parse_naive(s).ok_or_else(|| unrecognised(t))?;
    local(naive, zone, t)
}

/// The layouts exports use most — `YYYY-MM-DD HH:MM:SS[.f]` (space or `T`), alone or followed
/// by `Z` or `±HH:MM`, and `YYYY-MM-DD HH:MM` — read digit by digit. The general path below
/// tries a dozen chrono format strings in turn, each re-parsing its format, and allocates a
/// normalised copy first: for millions of event rows that was a tenth of ingest's time.
/// Returns `None` for any other text, which then takes the general path; where both apply
/// they agree (`the_fast_path_agrees_with_the_general_one`).
fn iso_fast_path(t: &str, zone: Tz) -> Option<Result<DateTime<Utc>, String>> {
    let b = t.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() < 16
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(0, 4)? as i32, digits(5, 2)?, digits(8, 2)?)?;
    let (hour, minute) = (digits(11, 2)?, digits(14, 2)?);
    if b.len() == 16 {
        let naive = date.and_hms_opt(hour, minute, 0)?;
        return Some(local(naive, zone, t));
    }
    if b[16] != b':' {
        return None;
    }
    let second = digits(17, 2)?;
    let mut at = 19;
    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        let run = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if run == 0 || run > 9 {
            return None;
        }
        nanos = digits(at + 1, run)? * 10u32.pow(9 - run as u32);
        at += 1 + run;
    }
    // A leap second (:60) is left to chrono's own rules.
    if second > 59 {
        return None;
    }
    let naive = date.and_hms_nano_opt(hour, minute, second, nanos)?;
    match &b[at..] {
        [] => Some(local(naive, zone, t)),
        [b'Z'] => Some(Ok(Utc.from_utc_datetime(&naive))),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let offset = (oh * 3600 + om * 60) as i64;
            let offset = if *sign == b'-' { -offset } else { offset };
            let utc = naive - chrono::Duration::seconds(offset);
            Some(Ok(Utc.from_utc_datetime(&utc)))
        }
        _ => None,
    }
}

fn unrecognised(t: &str) -> String {
    format!("unrecognised timestamp {t:?}; declare its layout with `format` in [sources.fields]")
}

/// Brings Chinese and slash layouts to ISO: "2024年3月1日 12时5分" → "2024-3-1 12:5".
fn normalise_timestamp_text(t: &str) -> String {
    let mut s = t
        .replace(['年', '月'], "-")
        .replace(['日', '号'], " ")
        .replace(['时', '点', '分'], ":")
        .replace('秒', "");
    if s.len() >= 10 && s.as_bytes()[4] == b'/' {
        s = s.replacen('/', "-", 2);
    }
    let s = s.trim().trim_end_matches(':').to_string();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    const DATETIME: &[&str] = &[
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %H:%M",
        "%m/%d/%Y %I:%M %p",
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
    ];
    for fmt in DATETIME {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n);
        }
    }
    for fmt in ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
            return d.and_hms_opt(0, 0, 0);
        }
    }
    None
}

fn local(naive: NaiveDateTime, zone: Tz, original: &str) -> Result<DateTime<Utc>, String> {
    // In a DST fold the earlier instant is taken; in a gap the time does not exist.
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|dt| dt.with_timezone(&Utc))
        .ok_or_else(|| format!("{original:?} does not exist in time zone {zone} (DST gap)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prices_in_platform_styles() {
        let cases: &[(&str, f64, Option<&str>)] = &[
            ("¥1,299.00", 1299.0, Some("CNY")),
            ("￥ 99", 99.0, Some("CNY")),
            ("US$19.99", 19.99, Some("USD")),
            ("$1,019.5", 1019.5, Some("USD")),
            ("19.99 USD", 19.99, Some("USD")),
            ("1.299,00 €", 1299.0, Some("EUR")),
            ("1 299,50 EUR", 1299.5, Some("EUR")),
            ("99元", 99.0, Some("CNY")),
            ("1.2万", 12000.0, None),
            ("RMB 88.8", 88.8, Some("CNY")),
            ("HK$ 100", 100.0, Some("HKD")),
            ("12", 12.0, None),
        ];
        for (text, amount, cur) in cases {
            let m = parse_price(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!((m.amount - amount).abs() < 1e-9, "{text} → {}", m.amount);
            assert_eq!(m.currency, *cur, "{text}");
        }
    }

    #[test]
    fn bad_prices_say_why() {
        assert!(parse_price("abc").unwrap_err().contains("not a number"));
        assert!(parse_price("-5").unwrap_err().contains("negative"));
        assert!(parse_price("¥99-199").unwrap_err().contains("range"));
        assert!(parse_price("").is_err());
        assert!(parse_price("1.2.3").is_err());
    }

    #[test]
    fn integers_and_ratings() {
        assert_eq!(parse_integer("2件").unwrap(), 2);
        assert_eq!(parse_integer("1,200").unwrap(), 1200);
        assert_eq!(parse_integer("3.0").unwrap(), 3);
        assert!(parse_integer("2.5").is_err());
        assert_eq!(parse_rating("4.0 out of 5 stars").unwrap(), 4.0);
        assert_eq!(parse_rating("5星").unwrap(), 5.0);
        assert_eq!(parse_rating("★★★☆☆").unwrap(), 3.0);
        assert!(parse_rating("7").is_err());
    }

    #[test]
    fn event_types_in_chinese_and_english() {
        assert_eq!(parse_event_type("浏览").unwrap(), "view");
        assert_eq!(parse_event_type("加购").unwrap(), "cart");
        assert_eq!(parse_event_type("购买").unwrap(), "purchase");
        assert_eq!(parse_event_type("Add_To_Cart").unwrap(), "cart");
        assert!(parse_event_type("teleport")
            .unwrap_err()
            .contains("[sources.values.event_type]"));
    }

    #[test]
    fn timestamps_in_many_layouts() {
        let sh: Tz = "Asia/Shanghai".parse().unwrap();
        let want = Utc.with_ymd_and_hms(2024, 3, 1, 4, 5, 6).unwrap();
        for text in [
            "2024-03-01 12:05:06",
            "2024/03/01 12:05:06",
            "2024年3月1日 12:05:06",
            "2024年3月1日 12时5分6秒",
            "2024-03-01T12:05:06+08:00",
            "2024-03-01T04:05:06Z",
            "2024-03-01 04:05:06 UTC",
            "2024-03-01 12:05:06 +0800",
            "1709265906",
            "1709265906000",
        ] {
            assert_eq!(parse_timestamp(text, sh, None).unwrap(), want, "{text}");
        }
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            parse_timestamp("03/01/2024 11:05:06 PM", ny, None).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 2, 4, 5, 6).unwrap()
        );
        assert_eq!(
            parse_timestamp("01.03.2024 12:05", sh, Some("%d.%m.%Y %H:%M")).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 1, 4, 5, 0).unwrap()
        );
        assert!(parse_timestamp("yesterday", sh, None)
            .unwrap_err()
            .contains("format"));
        assert!(parse_timestamp("2024-02-30 10:00:00", sh, None).is_err());
    }

    proptest! {
        #[test]
        fn price_round_trips_in_every_style(cents in 0u64..10_000_000_000, style in 0usize..6) {
            let amount = cents as f64 / 100.0;
            let whole = cents / 100;
            let frac = cents % 100;
            let grouped = |sep: &str| {
                let digits = whole.to_string();
                let mut out = String::new();
                for (i, ch) in digits.chars().enumerate() {
                    if i > 0 && (digits.len() - i) % 3 == 0 { out.push_str(sep); }
                    out.push(ch);
                }
                out
            };
            let (text, cur) = match style {
                0 => (format!("¥{}.{frac:02}", grouped(",")), Some("CNY")),
                1 => (format!("US${}.{frac:02}", grouped(",")), Some("USD")),
                2 => (format!("{},{frac:02} €", grouped(".")), Some("EUR")),
                3 => (format!("{whole}.{frac:02} USD"), Some("USD")),
                4 => (format!("{whole}.{frac:02}元"), Some("CNY")),
                _ => (format!("{}.{frac:02}", grouped(" ")), None),
            };
            let m = parse_price(&text).unwrap();
            prop_assert!((m.amount - amount).abs() < 1e-6, "{} → {}", text, m.amount);
            prop_assert_eq!(m.currency, cur);
        }

        #[test]
        fn price_parser_never_panics(s in "\\PC{0,20}") {
            let _ = parse_price(&s);
            let _ = parse_integer(&s);
            let _ = parse_rating(&s);
        }

        #[test]
        fn timestamp_round_trips(secs in 946_684_800i64..4_102_444_800, offset_min in -720i32..=840, style in 0usize..4) {
            let instant = Utc.timestamp_opt(secs, 0).unwrap();
            let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
            let local = instant.with_timezone(&offset);
            let text = match style {
                0 => local.to_rfc3339(),
                1 => local.format("%Y-%m-%d %H:%M:%S%:z").to_string(),
                2 => local.format("%Y-%m-%d %H:%M:%S %z").to_string(),
                _ => instant.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            };
            let zone: Tz = "Asia/Shanghai".parse().unwrap();
            prop_assert_eq!(parse_timestamp(&text, zone, None).unwrap(), instant, "{}", text);
        }

        #[test]
        fn the_fast_path_agrees_with_the_general_one(
            year in 1990u32..2040, month in 0u32..14, day in 0u32..33,
            hour in 0u32..26, minute in 0u32..61, second in 0u32..62,
            fraction in proptest::option::of("[0-9]{1,10}"),
            separator in prop_oneof![Just(' '), Just('T')],
            seconds in any::<bool>(),
            suffix in prop_oneof![Just(String::new()), Just("Z".to_string()),
                "[+-][0-2][0-9]:[0-6][0-9]", Just(" UTC".to_string()), Just("z".to_string())],
            zone in prop_oneof![Just("Asia/Shanghai"), Just("America/New_York"), Just("UTC")],
        ) {
            let mut text = format!("{year:04}-{month:02}-{day:02}{separator}{hour:02}:{minute:02}");
            if seconds {
                text += &format!(":{second:02}");
                if let Some(f) = &fraction {
                    text += &format!(".{f}");
                }
            }
            text += &suffix;
            let zone: Tz = zone.parse().unwrap();
            if let Some(fast) = iso_fast_path(&text, zone) {
                prop_assert_eq!(fast, parse_any_layout(&text, zone), "{}", text);
            }
        }

        #[test]
        fn local_timestamps_use_the_source_zone(secs in 946_684_800i64..4_102_444_800) {
            let instant = Utc.timestamp_opt(secs, 0).unwrap();
            let zone: Tz = "Asia/Shanghai".parse().unwrap(); // no DST: every local time is unique
            let text = instant.with_timezone(&zone).format("%Y/%m/%d %H:%M:%S").to_string();
            prop_assert_eq!(parse_timestamp(&text, zone, None).unwrap(), instant);
        }
    }
}
