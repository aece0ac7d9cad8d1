//! The M4 Weekly benchmark (`../shared/data/m4-weekly/`, protocol in its README): every model
//! and the backtest selection fitted on the training part of each of the 359 series,
//! forecasting the 13 held-out weeks, scored by sMAPE, MASE (m = 1) and OWA against Naive2,
//! next to the published M4 figures and — in the same run — Nixtla statsforecast's AutoETS
//! and AutoTheta on the same series.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::backtest::{backtest, Backtest};
use crate::metrics::{mase, mase_scale, owa, smape};
use crate::models::boosted::{BoostedSettings, GlobalBoosted};
use crate::models::{local_models, Forecaster, History};
use crate::ForecastError;

pub const HORIZON: usize = 13;
/// M4 treats weekly data as non-seasonal (m = 1) for MASE and Naive2.
pub const PERIOD: usize = 1;

/// The published Weekly figures (`Evaluation and Ranks.xlsx`): method, sMAPE, MASE, OWA.
pub const PUBLISHED: [(&str, f64, f64, f64); 7] = [
    ("Naive2", 9.161, 2.777, 1.000),
    ("SES", 9.012, 2.685, 0.975),
    ("Theta", 9.093, 2.637, 0.971),
    ("Damped", 8.866, 2.404, 0.917),
    ("Comb (SES/Holt/Damped)", 8.944, 2.432, 0.926),
    ("Smyl ES-RNN (M4 winner)", 7.817, 2.356, 0.851),
    ("Darin (best on Weekly)", 6.582, 2.107, 0.739),
];

/// The train and test parts of the 359 series.
#[derive(Debug, Clone)]
pub struct M4Weekly {
    pub train_path: PathBuf,
    pub ids: Vec<String>,
    pub train: Vec<Vec<f64>>,
    pub test: Vec<Vec<f64>>,
}

impl M4Weekly {
    pub fn load(dir: &Path) -> Result<Self, ForecastError> {
        let train_path = dir.join("Weekly-train.csv");
        let (ids, train) = read_rows(&train_path)?;
        let (test_ids, test) = read_rows(&dir.join("Weekly-test.csv"))?;
        if ids != test_ids {
            return Err(ForecastError::Parse {
                path: dir.join("Weekly-test.csv"),
                line: 1,
                message: "its series ids are not the training file's, in the same order".into(),
            });
        }
        Ok(M4Weekly {
            train_path,
            ids,
            train,
            test,
        })
    }
}

fn read_rows(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>), ForecastError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| ForecastError::Parse {
            path: path.into(),
            line: 0,
            message: e.to_string(),
        })?;
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| ForecastError::Parse {
            path: path.into(),
            line,
            message: e.to_string(),
        })?;
        let mut cells = record.iter();
        ids.push(cells.next().unwrap_or_default().to_string());
        let values = cells
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<f64>().map_err(|_| ForecastError::Parse {
                    path: path.into(),
                    line,
                    message: format!("{c:?} is not a number"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(values);
    }
    Ok((ids, rows))
}

/// One method's score on the test weeks.
#[derive(Debug, Clone, Serialize)]
pub struct MethodScore {
    pub method: String,
    pub smape: f64,
    pub mase: f64,
    pub owa: f64,
    /// Wall time of fitting and forecasting every series (selection: the backtest included).
    pub seconds: f64,
}

/// The benchmark's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct M4Report {
    pub series: usize,
    pub horizon: usize,
    pub ours: Vec<MethodScore>,
    pub peer: Vec<MethodScore>,
    /// How many series the backtest gave each model.
    pub chosen: Vec<(String, usize)>,
    pub backtest_windows: usize,
}

/// What the peer script prints.
#[derive(Debug, Deserialize)]
struct PeerOutput {
    models: std::collections::BTreeMap<String, PeerModel>,
}

#[derive(Debug, Deserialize)]
struct PeerModel {
    seconds: f64,
    forecasts: Vec<Vec<f64>>,
}

/// Settings of the benchmark run.
#[derive(Debug, Clone)]
pub struct M4Settings {
    pub backtest_windows: usize,
    pub boosted: BoostedSettings,
}

/// Runs every model, the selection and the ensemble of the three best, and the peer when a
/// Python with statsforecast is given.
pub fn evaluate_m4(
    data: &M4Weekly,
    settings: &M4Settings,
    peer: Option<(&Path, &Path)>,
) -> Result<M4Report, ForecastError> {
    let histories: Vec<History<'_>> = data
        .train
        .iter()
        .map(|v| History::plain(v, PERIOD))
        .collect();
    let scales: Vec<f64> = data
        .train
        .iter()
        .map(|v| mase_scale(v, PERIOD).unwrap_or(1.0))
        .collect();
    let score = |method: &str, forecasts: &[Vec<f64>], seconds: f64| {
        score_method(method, forecasts, &data.test, &scales, seconds)
    };

    let started = Instant::now();
    let boosted = GlobalBoosted {
        settings: settings.boosted,
    };
    let candidates = |cut: &[History<'_>]| -> Result<Vec<Box<dyn Forecaster>>, ForecastError> {
        let mut models = local_models();
        if cut.is_empty() {
            models.push(Box::new(crate::models::boosted::Untrained));
        } else {
            models.push(Box::new(boosted.fit(cut)?));
        }
        Ok(models)
    };
    let selection_backtest = backtest(
        &histories,
        (
            HORIZON,
            settings.backtest_windows,
            crate::backtest::min_history(PERIOD, 2.0),
        ),
        crate::backtest::Criterion::AbsoluteError,
        &candidates,
    )?;
    let backtest_seconds = started.elapsed().as_secs_f64();

    let mut per_model: Vec<(String, Vec<Vec<f64>>, f64)> = Vec::new();
    let training = Instant::now();
    let models = candidates(&histories)?;
    // Only the global model trains up front; its time is part of its own figure.
    let training_seconds = training.elapsed().as_secs_f64();
    for model in models {
        let started = Instant::now();
        let forecasts: Option<Vec<Vec<f64>>> = histories
            .par_iter()
            .map(|h| model.forecast(h, HORIZON).ok())
            .collect();
        if let Some(forecasts) = forecasts {
            let mut seconds = started.elapsed().as_secs_f64();
            if model.name() == "boosted" {
                seconds += training_seconds;
            }
            per_model.push((model.name().to_string(), forecasts, seconds));
        }
    }
    let model_seconds: f64 = per_model.iter().map(|m| m.2).sum();
    let mut ours: Vec<MethodScore> = per_model
        .iter()
        .map(|(name, forecasts, seconds)| score(name, forecasts, *seconds))
        .collect();
    let selected = combine(&selection_backtest, &per_model, 1);
    ours.push(score(
        "selection (backtest)",
        &selected,
        backtest_seconds + model_seconds,
    ));
    let top3 = combine(&selection_backtest, &per_model, 3);
    ours.push(score(
        "mean of backtest top 3",
        &top3,
        backtest_seconds + model_seconds,
    ));
    relative_to_naive2(&mut ours);

    let mut peer_scores = match peer {
        Some((python, script)) => run_peer(data, python, script)?
            .into_iter()
            .map(|(name, forecasts, seconds)| {
                score(&format!("statsforecast {name}"), &forecasts, seconds)
            })
            .collect(),
        None => Vec::new(),
    };
    let naive2 = ours.iter().find(|m| m.method == "naive2").cloned();
    if let Some(n2) = naive2 {
        for m in &mut peer_scores {
            m.owa = owa(m.smape, m.mase, n2.smape, n2.mase);
        }
    }
    Ok(M4Report {
        series: data.train.len(),
        horizon: HORIZON,
        ours,
        peer: peer_scores,
        chosen: selection_backtest
            .choice_counts()
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect(),
        backtest_windows: settings.backtest_windows,
    })
}

/// Per series, the mean of the forecasts of its `top` best models in the backtest (among
/// those that forecast every series).
fn combine(bt: &Backtest, per_model: &[(String, Vec<Vec<f64>>, f64)], top: usize) -> Vec<Vec<f64>> {
    (0..bt.errors.len())
        .map(|s| {
            let mut ranked: Vec<(f64, usize)> = per_model
                .iter()
                .enumerate()
                .filter_map(|(i, (name, _, _))| {
                    let m = bt.models.iter().position(|n| n == name)?;
                    bt.errors[s][m].map(|e| (e.mae, i))
                })
                .collect();
            ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let picks: Vec<usize> = if ranked.is_empty() {
                vec![0]
            } else {
                ranked.iter().take(top).map(|r| r.1).collect()
            };
            (0..HORIZON)
                .map(|h| {
                    picks.iter().map(|&i| per_model[i].1[s][h]).sum::<f64>() / picks.len() as f64
                })
                .collect()
        })
        .collect()
}

fn score_method(
    method: &str,
    forecasts: &[Vec<f64>],
    test: &[Vec<f64>],
    scales: &[f64],
    seconds: f64,
) -> MethodScore {
    let n = test.len() as f64;
    let smape_mean = test
        .iter()
        .zip(forecasts)
        .map(|(y, f)| smape(y, f))
        .sum::<f64>()
        / n;
    let mase_mean = test
        .iter()
        .zip(forecasts)
        .zip(scales)
        .map(|((y, f), &s)| mase(y, f, s))
        .sum::<f64>()
        / n;
    MethodScore {
        method: method.to_string(),
        smape: smape_mean,
        mase: mase_mean,
        owa: f64::NAN,
        seconds,
    }
}

fn relative_to_naive2(scores: &mut [MethodScore]) {
    let Some(n2) = scores.iter().find(|m| m.method == "naive2").cloned() else {
        return;
    };
    for m in scores {
        m.owa = owa(m.smape, m.mase, n2.smape, n2.mase);
    }
}

/// One statsforecast model's run: its name, forecasts in the file's row order, seconds.
pub(crate) type PeerRun = (String, Vec<Vec<f64>>, f64);

fn run_peer(data: &M4Weekly, python: &Path, script: &Path) -> Result<Vec<PeerRun>, ForecastError> {
    run_statsforecast(&data.train_path, data.train.len(), HORIZON, python, script)
}

/// Runs the peer script on an M4-format CSV of `series` rows (`scripts/statsforecast_m4.py`)
/// and checks it answered `horizon` forecasts for every row.
pub(crate) fn run_statsforecast(
    path: &Path,
    series: usize,
    horizon: usize,
    python: &Path,
    script: &Path,
) -> Result<Vec<PeerRun>, ForecastError> {
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(path)
        .arg(horizon.to_string())
        .arg(PERIOD.to_string())
        .output()
        .map_err(|e| ForecastError::Peer(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        return Err(ForecastError::Peer(format!(
            "{} {} failed: {}",
            python.display(),
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let parsed: PeerOutput = serde_json::from_slice(&output.stdout)
        .map_err(|e| ForecastError::Peer(format!("unexpected output from the peer script: {e}")))?;
    let mut out = Vec::new();
    for (name, model) in parsed.models {
        if model.forecasts.len() != series || model.forecasts.iter().any(|f| f.len() != horizon) {
            return Err(ForecastError::Peer(format!(
                "{name}: not {horizon} forecasts per series"
            )));
        }
        out.push((name, model.forecasts, model.seconds));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_reader_drops_padding_and_names_a_bad_cell() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Weekly-train.csv"),
            "\"V1\",\"V2\",\"V3\",\"V4\"\n\"W1\",\"1.5\",\"2\",\"\"\n\"W2\",\"3\",\"4\",\"5\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("Weekly-test.csv"),
            "\"V1\",\"V2\"\n\"W1\",\"2\"\n\"W2\",\"6\"\n",
        )
        .unwrap();
        let data = M4Weekly::load(dir.path()).unwrap();
        assert_eq!(data.train, vec![vec![1.5, 2.0], vec![3.0, 4.0, 5.0]]);
        assert_eq!(data.ids, ["W1", "W2"]);
        std::fs::write(
            dir.path().join("Weekly-test.csv"),
            "\"V1\",\"V2\"\n\"W1\",\"x\"\n",
        )
        .unwrap();
        let err = M4Weekly::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("Weekly-test.csv") && err.contains("line 2") && err.contains("\"x\""),
            "{err}"
        );
    }
}
