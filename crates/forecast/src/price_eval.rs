//! Price alerts against planted moves (`truth/price_moves.csv` from `shopfuse generate`):
//! recall per kind, precision, and how many days after a move its alert came.
//!
//! A planted move is **found** when an alert of its kind names its listing's golden product
//! and platform within [`FOUND_WITHIN_DAYS`] of the move. An alert is **explained** when a
//! move was planted on the same golden product (any platform, any kind) in the
//! [`FOUND_WITHIN_DAYS`] before it: a platform raising its price can leave another one
//! undercutting, which is a true alert truth does not list by itself.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;

use crate::sales::{read_listings, ReadTable};
use crate::tables::price_alerts as pa;
use crate::ForecastError;

/// How long after a move its alert still counts.
pub const FOUND_WITHIN_DAYS: i64 = 120;

/// One planted move.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedMove {
    pub platform: String,
    pub listing_id: String,
    pub kind: String,
    pub day: NaiveDate,
}

/// Recall and lag for one kind of move.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindScore {
    pub kind: String,
    pub planted: usize,
    /// Planted on a listing the project's catalogue knows.
    pub in_catalogue: usize,
    pub found: usize,
    pub recall: f64,
    pub alerts: usize,
    pub explained: usize,
    pub precision: f64,
    /// Median days from the move to its alert.
    pub median_lag_days: Option<f64>,
}

/// The whole evaluation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PriceAlertEvaluation {
    pub kinds: Vec<KindScore>,
    pub alerts: usize,
    pub explained: usize,
    pub precision: f64,
}

/// Reads `truth/price_moves.csv`.
pub fn read_truth(path: &Path) -> Result<Vec<PlantedMove>, ForecastError> {
    let parse = |line: usize, message: String| ForecastError::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| parse(0, e.to_string()))?;
    let mut moves = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let r = record.map_err(|e| parse(line, e.to_string()))?;
        let field = |k: usize, name: &str| {
            r.get(k)
                .map(str::to_string)
                .ok_or_else(|| parse(line, format!("no {name} column")))
        };
        let day = field(3, "day")?;
        moves.push(PlantedMove {
            platform: field(0, "platform")?,
            listing_id: field(1, "listing_id")?,
            kind: field(2, "kind")?,
            day: NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|_| parse(line, format!("day {day:?} is not YYYY-MM-DD")))?,
        });
    }
    Ok(moves)
}

struct Alert {
    golden: String,
    platform: String,
    kind: String,
    day: NaiveDate,
}

/// Scores the project's `price_alerts` against the planted moves.
pub fn evaluate_price_alerts(
    read: ReadTable<'_>,
    zone: chrono_tz::Tz,
    truth: &[PlantedMove],
) -> Result<PriceAlertEvaluation, ForecastError> {
    let listings = read_listings(read, zone)?;
    let rows = read(pa::NAME, &[pa::golden_id, pa::platform, pa::kind, pa::day])?.ok_or(
        ForecastError::NoData("the project has no price_alerts table: run `shopfuse run` first"),
    )?;
    let alerts: Vec<Alert> = rows
        .rows
        .iter()
        .filter_map(|r| {
            Some(Alert {
                golden: rows.text(r, pa::golden_id)?,
                platform: rows.text(r, pa::platform)?,
                kind: rows.text(r, pa::kind)?,
                day: NaiveDate::parse_from_str(rows.str(r, pa::day)?, "%Y-%m-%d").ok()?,
            })
        })
        .collect();
    let golden_of: Vec<Option<String>> = truth
        .iter()
        .map(|m| {
            listings
                .get(&(m.platform.clone(), m.listing_id.clone()))
                .map(|l| l.golden.clone())
        })
        .collect();
    Ok(score(truth, &golden_of, &alerts))
}

fn score(
    truth: &[PlantedMove],
    golden_of: &[Option<String>],
    alerts: &[Alert],
) -> PriceAlertEvaluation {
    let within = |move_day: NaiveDate, alert_day: NaiveDate| {
        (0..=FOUND_WITHIN_DAYS).contains(&(alert_day - move_day).num_days())
    };
    let mut by_product: HashMap<&str, Vec<NaiveDate>> = HashMap::new();
    for (m, g) in truth.iter().zip(golden_of) {
        if let Some(g) = g {
            by_product.entry(g.as_str()).or_default().push(m.day);
        }
    }
    let explained = |a: &Alert| {
        by_product
            .get(a.golden.as_str())
            .is_some_and(|days| days.iter().any(|&d| within(d, a.day)))
    };
    let mut kinds = Vec::new();
    for kind in ["undercut", "sharp_move"] {
        let mut s = KindScore {
            kind: kind.into(),
            ..KindScore::default()
        };
        let mut lags = Vec::new();
        for (m, g) in truth.iter().zip(golden_of).filter(|(m, _)| m.kind == kind) {
            s.planted += 1;
            let Some(g) = g else { continue };
            s.in_catalogue += 1;
            let lag = alerts
                .iter()
                .filter(|a| a.kind == kind && &a.golden == g && a.platform == m.platform)
                .filter(|a| within(m.day, a.day))
                .map(|a| (a.day - m.day).num_days())
                .min();
            if let Some(lag) = lag {
                s.found += 1;
                lags.push(lag as f64);
            }
        }
        let of_kind: Vec<&Alert> = alerts.iter().filter(|a| a.kind == kind).collect();
        s.alerts = of_kind.len();
        s.explained = of_kind.iter().filter(|a| explained(a)).count();
        s.recall = ratio(s.found, s.in_catalogue);
        s.precision = ratio(s.explained, s.alerts);
        lags.sort_by(f64::total_cmp);
        s.median_lag_days = lags.get(lags.len() / 2).copied();
        kinds.push(s);
    }
    let explained_all = alerts.iter().filter(|a| explained(a)).count();
    PriceAlertEvaluation {
        kinds,
        alerts: alerts.len(),
        explained: explained_all,
        precision: ratio(explained_all, alerts.len()),
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, d).unwrap()
    }

    #[test]
    fn found_needs_the_kind_the_platform_and_the_window() {
        let truth = vec![
            PlantedMove {
                platform: "jd".into(),
                listing_id: "1".into(),
                kind: "undercut".into(),
                day: day(10),
            },
            PlantedMove {
                platform: "taobao".into(),
                listing_id: "2".into(),
                kind: "sharp_move".into(),
                day: day(10),
            },
        ];
        let golden_of = vec![Some("GP1".to_string()), Some("GP2".to_string())];
        let alert = |g: &str, p: &str, k: &str, d: u32| Alert {
            golden: g.into(),
            platform: p.into(),
            kind: k.into(),
            day: day(d),
        };
        let alerts = vec![
            alert("GP1", "jd", "undercut", 14),
            // Right product, wrong platform: not found, but explained.
            alert("GP2", "jd", "sharp_move", 12),
            // Before the move: neither.
            alert("GP2", "taobao", "sharp_move", 5),
            alert("GP3", "jd", "undercut", 20),
        ];
        let e = score(&truth, &golden_of, &alerts);
        let undercut = &e.kinds[0];
        assert_eq!(
            (undercut.found, undercut.alerts, undercut.explained),
            (1, 2, 1)
        );
        assert_eq!(undercut.median_lag_days, Some(4.0));
        let sharp = &e.kinds[1];
        assert_eq!((sharp.found, sharp.alerts, sharp.explained), (0, 2, 1));
        assert_eq!((e.alerts, e.explained), (4, 2));
    }
}
