//! The CDNOW benchmark of the buy-till-you-die papers: 2,357 customers who first bought in
//! the first quarter of 1997, a 39-week calibration period (to 30 Sep 1997) and a 39-week
//! holdout (to 30 Jun 1998). Purchases on one day count as one transaction, as in the papers.
//!
//! The calibration summary (`cdnow_customers_summary.csv`: ID, frequency, recency, T in
//! weeks) is the papers' own; spend and the holdout counts come from the transactions of the
//! same customers (`CDNOW_sample.txt`, whose second column is the summary's ID).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use crate::btyd::{BgNbd, GammaGamma, Rfm};
use crate::PropensityError;

/// The papers' figures for the calibration period.
pub const PUBLISHED_BG_NBD: BgNbd = BgNbd {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};
pub const PUBLISHED_BG_NBD_LL: f64 = -9582.4;
pub const PUBLISHED_GAMMA_GAMMA: GammaGamma = GammaGamma {
    p: 6.25,
    q: 3.74,
    gamma: 15.44,
};

/// The calibration summary and the holdout of each customer, in ID order.
#[derive(Debug, Clone)]
pub struct Cdnow {
    pub customers: Vec<Rfm>,
    /// Repeat transactions (days with a purchase) in the holdout weeks.
    pub holdout: Vec<f64>,
    /// Holdout length in weeks.
    pub holdout_weeks: f64,
}

fn calibration_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(1997, 9, 30).expect("a date")
}

fn holdout_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(1998, 6, 30).expect("a date")
}

impl Cdnow {
    /// Reads the two files from `dir`.
    pub fn load(dir: &Path) -> Result<Cdnow, PropensityError> {
        let summary = read_summary(&dir.join("cdnow_customers_summary.csv"))?;
        let days = read_transactions(&dir.join("CDNOW_sample.txt"))?;
        let mut customers = Vec::with_capacity(summary.len());
        let mut holdout = Vec::with_capacity(summary.len());
        for (id, rfm) in summary {
            let spend_days = days.get(&id).map_or(&[][..], Vec::as_slice);
            let calibration: Vec<f64> = spend_days
                .iter()
                .filter(|(d, _)| *d <= calibration_end())
                .map(|(_, v)| *v)
                .collect();
            // The first day is the acquisition, not a repeat purchase.
            let repeats = &calibration[calibration.len().min(1)..];
            let monetary = if repeats.is_empty() {
                0.0
            } else {
                repeats.iter().sum::<f64>() / repeats.len() as f64
            };
            customers.push(Rfm { monetary, ..rfm });
            holdout.push(
                spend_days
                    .iter()
                    .filter(|(d, _)| *d > calibration_end() && *d <= holdout_end())
                    .count() as f64,
            );
        }
        let holdout_weeks = (holdout_end() - calibration_end()).num_days() as f64 / 7.0;
        Ok(Cdnow {
            customers,
            holdout,
            holdout_weeks,
        })
    }
}

/// ID → (frequency, recency, T) from the summary CSV.
fn read_summary(path: &Path) -> Result<BTreeMap<u32, Rfm>, PropensityError> {
    let text = std::fs::read_to_string(path).map_err(|source| PropensityError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let bad = |message: String| PropensityError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let [id, frequency, recency, age] = cells[..] else {
            return Err(bad(format!(
                "expected ID,frequency,recency,T; got {line:?}"
            )));
        };
        let number = |s: &str, what: &str| {
            s.parse::<f64>()
                .map_err(|e| bad(format!("{what} {s:?} is not a number ({e})")))
        };
        let id: u32 = id
            .parse()
            .map_err(|e| bad(format!("ID {id:?} is not a number ({e})")))?;
        out.insert(
            id,
            Rfm {
                frequency: number(frequency, "frequency")?,
                recency: number(recency, "recency")?,
                age: number(age, "T")?,
                monetary: 0.0,
            },
        );
    }
    Ok(out)
}

/// Sample ID → (day, dollars spent that day), days in order.
fn read_transactions(path: &Path) -> Result<BTreeMap<u32, Vec<(NaiveDate, f64)>>, PropensityError> {
    let text = std::fs::read_to_string(path).map_err(|source| PropensityError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut by_day: BTreeMap<(u32, NaiveDate), f64> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| PropensityError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let cells: Vec<&str> = line.split_whitespace().collect();
        let [_, id, date, _cds, dollars] = cells[..] else {
            return Err(bad(format!(
                "expected master_id sample_id date cds dollars; got {line:?}"
            )));
        };
        let id: u32 = id
            .parse()
            .map_err(|e| bad(format!("sample id {id:?}: {e}")))?;
        let date = NaiveDate::parse_from_str(date, "%Y%m%d")
            .map_err(|e| bad(format!("date {date:?}: {e}")))?;
        let dollars: f64 = dollars
            .parse()
            .map_err(|e| bad(format!("dollars {dollars:?}: {e}")))?;
        *by_day.entry((id, date)).or_default() += dollars;
    }
    let mut out: BTreeMap<u32, Vec<(NaiveDate, f64)>> = BTreeMap::new();
    for ((id, date), dollars) in by_day {
        out.entry(id).or_default().push((date, dollars));
    }
    Ok(out)
}

/// The benchmark's figures for our fits.
#[derive(Debug, Clone, Serialize)]
pub struct CdnowReport {
    pub customers: usize,
    pub calibration_repeat_purchases: f64,
    pub bg_nbd: BgNbd,
    pub bg_nbd_log_likelihood: f64,
    pub bg_nbd_seconds: f64,
    pub published_bg_nbd: BgNbd,
    pub published_log_likelihood: f64,
    /// Repeat transactions in the holdout: actual and forecast (sum over customers).
    pub holdout_actual: f64,
    pub holdout_forecast: f64,
    /// Mean absolute error of each customer's forecast.
    pub holdout_mae: f64,
    /// The same MAE for the published parameters (the forecast code checked on its own).
    pub holdout_mae_published: f64,
    pub gamma_gamma: GammaGamma,
    pub gamma_gamma_customers: usize,
    pub gamma_gamma_seconds: f64,
    pub published_gamma_gamma: GammaGamma,
}

/// Fits both models on the calibration period and forecasts the holdout.
pub fn evaluate(data: &Cdnow) -> Result<CdnowReport, PropensityError> {
    let started = Instant::now();
    let bg_nbd = BgNbd::fit(&data.customers)?;
    let bg_nbd_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let gamma_gamma = GammaGamma::fit(&data.customers)?;
    let gamma_gamma_seconds = started.elapsed().as_secs_f64();
    let forecast = |m: &BgNbd| -> Vec<f64> {
        data.customers
            .iter()
            .map(|c| m.expected_purchases(c, data.holdout_weeks))
            .collect()
    };
    let mae = |f: &[f64]| {
        f.iter()
            .zip(&data.holdout)
            .map(|(p, a)| (p - a).abs())
            .sum::<f64>()
            / f.len().max(1) as f64
    };
    let ours = forecast(&bg_nbd);
    Ok(CdnowReport {
        customers: data.customers.len(),
        calibration_repeat_purchases: data.customers.iter().map(|c| c.frequency).sum(),
        bg_nbd_log_likelihood: bg_nbd.log_likelihood(&data.customers),
        bg_nbd,
        bg_nbd_seconds,
        published_bg_nbd: PUBLISHED_BG_NBD,
        published_log_likelihood: PUBLISHED_BG_NBD_LL,
        holdout_actual: data.holdout.iter().sum(),
        holdout_forecast: ours.iter().sum(),
        holdout_mae: mae(&ours),
        holdout_mae_published: mae(&forecast(&PUBLISHED_BG_NBD)),
        gamma_gamma_customers: data
            .customers
            .iter()
            .filter(|c| c.frequency > 0.0 && c.monetary > 0.0)
            .count(),
        gamma_gamma,
        gamma_gamma_seconds,
        published_gamma_gamma: PUBLISHED_GAMMA_GAMMA,
    })
}

/// The `lifetimes` package's fits on the same customers (`scripts/lifetimes_cdnow.py`).
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
pub struct LifetimesPeer {
    pub bg_nbd: BgNbd,
    pub bg_nbd_seconds: f64,
    pub holdout_forecast: f64,
    pub holdout_mae: f64,
    pub gamma_gamma: GammaGamma,
    pub gamma_gamma_seconds: f64,
    /// Our log-likelihood at the peer's BG/NBD parameters (one convention for both).
    #[serde(default)]
    pub bg_nbd_log_likelihood: f64,
}

/// Runs the peer with `python` (which has `lifetimes` installed) on exactly the customers of
/// `data`, handed over as a CSV.
pub fn run_lifetimes(
    data: &Cdnow,
    python: &Path,
    script: &Path,
) -> Result<LifetimesPeer, PropensityError> {
    let peer_error = |message: String| PropensityError::Peer(message);
    let dir = tempfile::tempdir().map_err(|e| peer_error(format!("temporary folder: {e}")))?;
    let input = dir.path().join("cdnow_customers.csv");
    let mut csv = String::from("frequency,recency,T,monetary,holdout\n");
    for (c, h) in data.customers.iter().zip(&data.holdout) {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            c.frequency, c.recency, c.age, c.monetary, h
        ));
    }
    std::fs::write(&input, csv).map_err(|e| peer_error(format!("{}: {e}", input.display())))?;
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(&input)
        .arg(data.holdout_weeks.to_string())
        .output()
        .map_err(|e| peer_error(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        return Err(peer_error(format!(
            "{} {} failed: {}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let mut peer: LifetimesPeer = serde_json::from_slice(&output.stdout)
        .map_err(|e| peer_error(format!("unexpected output from the peer script: {e}")))?;
    peer.bg_nbd_log_likelihood = peer.bg_nbd.log_likelihood(&data.customers);
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_day_purchases_count_once_and_the_first_day_is_no_repeat() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cdnow_customers_summary.csv"),
            "ID,frequency,recency,T\n1,2,20.0,38.0\n2,0,0.0,30.0\n",
        )
        .unwrap();
        // Customer 1: first day, two repeat days (one with two orders), one holdout day and
        // one after the holdout; customer 2: one day only.
        std::fs::write(
            dir.path().join("CDNOW_sample.txt"),
            " 00010 0001 19970101  1   10.00\n 00010 0001 19970301  1   20.00\n\
             00010 0001 19970301  1    5.00\n 00010 0001 19970520  2   35.00\n\
             00010 0001 19971115  1   12.00\n 00010 0001 19980801  1   99.00\n\
             00020 0002 19970301  1   15.00\n",
        )
        .unwrap();
        let data = Cdnow::load(dir.path()).unwrap();
        assert_eq!(data.customers[0].monetary, 30.0); // (25 + 35) / 2
        assert_eq!(data.holdout, [1.0, 0.0]);
        assert_eq!(data.customers[1].monetary, 0.0);
        assert!((data.holdout_weeks - 39.0).abs() < 0.01);
        let broken = dir.path().join("cdnow_customers_summary.csv");
        std::fs::write(&broken, "ID,frequency,recency,T\n1,two,20.0,38.0\n").unwrap();
        let err = Cdnow::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("frequency"), "{err}");
    }
}
