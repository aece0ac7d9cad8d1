//! `bench forecast`: every model's throughput on simulated weekly series (three years each:
//! a level spread over four orders of magnitude, a trend, a yearly cycle, promotion-like
//! spikes and noise), and statsforecast's AutoETS and AutoTheta on the same series in the
//! same run, as a ratio.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::models::boosted::{BoostedSettings, GlobalBoosted};
use crate::models::{local_models, Forecaster, History};
use crate::ForecastError;

pub const WEEKS: usize = 156;
pub const HORIZON: usize = 13;
/// Weekly series treated the M4 way (m = 1 for adjustment; MSTL gets the year).
const PERIOD: usize = 52;

/// Simulated weekly series, reproducible from the seed.
pub fn simulate(series: usize, seed: u64) -> Vec<Vec<f64>> {
    (0..series)
        .into_par_iter()
        .map(|i| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let level = 10f64.powf(rng.random_range(0.0..4.0));
            let trend = rng.random_range(-0.003..0.006);
            let amplitude = rng.random_range(0.0..0.4);
            let phase = rng.random_range(0.0..std::f64::consts::TAU);
            (0..WEEKS)
                .map(|t| {
                    let season =
                        1.0 + amplitude * (std::f64::consts::TAU * t as f64 / 52.0 + phase).sin();
                    let spike = if t % 52 == 45 { 2.5 } else { 1.0 };
                    let noise = 1.0 + rng.random_range(-0.15..0.15);
                    (level * (1.0 + trend * t as f64) * season * spike * noise).max(0.0)
                })
                .collect()
        })
        .collect()
}

/// One model's run over every series.
#[derive(Debug, Clone, Serialize)]
pub struct ModelThroughput {
    pub model: String,
    pub series: usize,
    pub seconds: f64,
    pub series_per_second: f64,
    /// Our rate over statsforecast's on the same series (for the peer's two models).
    pub ratio_to_peer: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchSize {
    pub series: usize,
    pub models: Vec<ModelThroughput>,
    /// statsforecast's runs (on the first `peer_series` of the series).
    pub peer: Vec<ModelThroughput>,
}

/// Times every model on `series` simulated series; with a peer, statsforecast on at most
/// `peer_series` of them (its per-series rate is what the ratio compares).
pub fn bench_size(
    series: usize,
    peer: Option<(&Path, &Path)>,
    peer_series: usize,
) -> Result<BenchSize, ForecastError> {
    let data = simulate(series, 7);
    let histories: Vec<History<'_>> = data.iter().map(|v| History::plain(v, PERIOD)).collect();
    let mut models = Vec::new();
    for model in local_models() {
        models.push(time_model(model.as_ref(), &histories, Instant::now()));
    }
    let started = Instant::now();
    let boosted = GlobalBoosted {
        settings: BoostedSettings::default(),
    }
    .fit(&histories)?;
    models.push(time_model(&boosted, &histories, started));
    let peer_runs = match peer {
        Some((python, script)) => run_peer(&data[..series.min(peer_series)], python, script)?,
        None => Vec::new(),
    };
    for (ours, theirs) in [
        ("ets", "statsforecast AutoETS"),
        ("theta", "statsforecast AutoTheta"),
    ] {
        let peer_rate = peer_runs
            .iter()
            .find(|p| p.model == theirs)
            .map(|p| p.series_per_second);
        if let (Some(m), Some(rate)) = (models.iter_mut().find(|m| m.model == ours), peer_rate) {
            m.ratio_to_peer = Some(m.series_per_second / rate);
        }
    }
    Ok(BenchSize {
        series,
        models,
        peer: peer_runs,
    })
}

/// `started` lets the global model count its training.
fn time_model(
    model: &dyn Forecaster,
    histories: &[History<'_>],
    started: Instant,
) -> ModelThroughput {
    let forecasts: usize = histories
        .par_iter()
        .map(|h| usize::from(model.forecast(h, HORIZON).is_ok()))
        .sum();
    let seconds = started.elapsed().as_secs_f64();
    ModelThroughput {
        model: model.name().to_string(),
        series: forecasts,
        seconds,
        series_per_second: forecasts as f64 / seconds.max(1e-9),
        ratio_to_peer: None,
    }
}

fn run_peer(
    data: &[Vec<f64>],
    python: &Path,
    script: &Path,
) -> Result<Vec<ModelThroughput>, ForecastError> {
    let peer_error = |m: String| ForecastError::Peer(m);
    let dir = tempfile::tempdir().map_err(|e| peer_error(format!("temporary folder: {e}")))?;
    let path = dir.path().join("series.csv");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&path).map_err(|e| peer_error(format!("{}: {e}", path.display())))?,
    );
    let io = |e: std::io::Error| ForecastError::Peer(format!("writing the series: {e}"));
    writeln!(file, "V1,values").map_err(io)?;
    for (i, values) in data.iter().enumerate() {
        let cells: Vec<String> = values.iter().map(|v| format!("{v:.4}")).collect();
        writeln!(file, "S{i},{}", cells.join(",")).map_err(io)?;
    }
    file.flush().map_err(io)?;
    drop(file);
    let runs = crate::m4::run_statsforecast(&path, data.len(), HORIZON, python, script)?;
    Ok(runs
        .into_iter()
        .map(|(name, forecasts, seconds)| ModelThroughput {
            model: format!("statsforecast {name}"),
            series: forecasts.len(),
            seconds,
            series_per_second: forecasts.len() as f64 / seconds.max(1e-9),
            ratio_to_peer: None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_series_are_reproducible_and_positive() {
        let a = simulate(3, 1);
        assert_eq!(a, simulate(3, 1));
        assert_eq!(a[0].len(), WEEKS);
        assert!(a.iter().flatten().all(|v| *v >= 0.0));
        assert_ne!(a[0], a[1]);
    }
}
