//! The resolve stage on generated projects of growing size, each in a process of its own.

use std::path::Path;

use serde::{Deserialize, Serialize};
use shopfuse_generate::GenerateOptions;

use super::bench_error;
use crate::PipelineError;

/// One size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ResolveBenchRow {
    pub listings: usize,
    pub candidate_pairs: usize,
    pub golden_products: usize,
    pub seconds: f64,
    pub listings_per_second: f64,
    pub peak_memory_mib: Option<f64>,
    pub phases: Vec<(String, f64)>,
    pub phase_peak_memory_mib: Vec<(String, f64)>,
    /// CPU seconds over wall seconds per phase: the cores each phase kept busy.
    pub phase_busy_cores: Vec<(String, f64)>,
    /// The cross-encoder's part, when the bench ran with it on.
    pub cross_encoder: Option<CrossEncoderBenchFigures>,
}

/// What the cross-encoder cost in one size's run: its whole phase is the extra time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrossEncoderBenchFigures {
    pub train_pairs: usize,
    pub training_seconds: f64,
    pub band_pairs: usize,
    pub band_capped: bool,
    pub pairs_per_second: f64,
    pub weight: f64,
    pub decisions_changed: usize,
    /// Share of the band's word pieces the base model does not know.
    pub unknown_token_share: f64,
    pub seconds: f64,
}

/// The part of the child's `--json` run report the bench reads; a missing field is an error,
/// not a zero.
#[derive(Deserialize)]
struct ChildReport {
    resolve: ChildResolve,
}

#[derive(Deserialize)]
struct ChildResolve {
    listings: usize,
    candidate_pairs: usize,
    golden_products: usize,
    seconds: f64,
    peak_memory_mib: Option<f64>,
    phases: Vec<(String, f64)>,
    phase_peak_memory_mib: Vec<(String, f64)>,
    phase_busy_cores: Vec<(String, f64)>,
    #[serde(default)]
    cross_encoder: Option<CrossEncoderBenchFigures>,
}

/// For each size: generate a project of about that many listings, ingest and clean it, then
/// run the resolve stage (`exe run --only resolve --force`) in a process of its own so that
/// its peak memory is the stage's (plus the encoder's weights). `exe` is the shopfuse binary; `on_row` sees each row as it is measured.
/// With `cross_encoder`, the projects run with `[resolve.cross_encoder]` enabled (trained on
/// each project's labelled pairs), so its phase is the extra cost. With `cluster`, the
/// stage's encoding runs on that Ballista cluster (whose executors must see the temporary
/// directory).
pub fn bench_resolve(
    exe: &Path,
    sizes: &[usize],
    seed: u64,
    cross_encoder: bool,
    cluster: Option<&shopfuse_cluster::SchedulerUrl>,
    mut on_row: impl FnMut(&ResolveBenchRow),
) -> Result<Vec<ResolveBenchRow>, PipelineError> {
    let mut rows = Vec::new();
    for &size in sizes {
        let dir = tempfile::tempdir().map_err(bench_error("cannot make a temporary directory"))?;
        let options = GenerateOptions {
            seed,
            // About 3.2 listings per product.
            products: (size * 10 / 32).max(10),
            customers: 20,
            orders: 100,
        };
        eprintln!(
            "{size} listings: generating into {} …",
            dir.path().display()
        );
        shopfuse_generate::generate(dir.path(), &options).map_err(|e| PipelineError::Bench {
            what: "cannot generate the data set".into(),
            source: Some(Box::new(e)),
        })?;
        if cross_encoder {
            enable_cross_encoder(dir.path())?;
        }
        eprintln!("{size} listings: ingest and clean …");
        child(exe, dir.path(), &["ingest"])?;
        child(exe, dir.path(), &["clean"])?;
        eprintln!("{size} listings: resolve …");
        let url = cluster.map(|c| c.to_string());
        let mut args = vec!["run", "--only", "resolve", "--force"];
        if let Some(url) = &url {
            args.extend(["--cluster", url.as_str()]);
        }
        let out = child(exe, dir.path(), &args)?;
        let report: ChildReport =
            serde_json::from_slice(&out).map_err(|e| PipelineError::Bench {
                what: "the resolve run's JSON report lacks the resolve figures".into(),
                source: Some(Box::new(e)),
            })?;
        let r = report.resolve;
        let row = ResolveBenchRow {
            listings: r.listings,
            candidate_pairs: r.candidate_pairs,
            golden_products: r.golden_products,
            seconds: r.seconds,
            listings_per_second: r.listings as f64 / r.seconds,
            peak_memory_mib: r.peak_memory_mib,
            phases: r.phases,
            phase_peak_memory_mib: r.phase_peak_memory_mib,
            phase_busy_cores: r.phase_busy_cores,
            cross_encoder: r.cross_encoder,
        };
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// Appends `[resolve.cross_encoder] enabled = true` to the generated project's settings.
fn enable_cross_encoder(project: &Path) -> Result<(), PipelineError> {
    use std::io::Write;
    let path = project.join(shopfuse_core::project::CONFIG_FILE);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(b"\n[resolve.cross_encoder]\nenabled = true\n"))
        .map_err(bench_error(format!("cannot write {}", path.display())))
}

/// `exe -C dir --quiet --json ARGS`; its stdout, or an error with its stderr.
pub(super) fn child(exe: &Path, dir: &Path, args: &[&str]) -> Result<Vec<u8>, PipelineError> {
    let out = std::process::Command::new(exe)
        .arg("-C")
        .arg(dir)
        .args(["--quiet", "--json"])
        .args(args)
        .output()
        .map_err(bench_error(format!("cannot start {}", exe.display())))?;
    if !out.status.success() {
        return Err(PipelineError::Bench {
            what: format!(
                "shopfuse {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ),
            source: None,
        });
    }
    Ok(out.stdout)
}

/// The exponent b of time ∝ listings^b between consecutive rows.
pub fn growth_exponents(rows: &[ResolveBenchRow]) -> Vec<(usize, usize, f64)> {
    rows.windows(2)
        .map(|w| {
            let b = (w[1].seconds / w[0].seconds).ln()
                / (w[1].listings as f64 / w[0].listings as f64).ln();
            (w[0].listings, w[1].listings, b)
        })
        .collect()
}
