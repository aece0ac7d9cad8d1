//! The identity stage on generated projects of growing size, each run in a process of its
//! own, scored against the generator's truth — and, where a Python with Splink is given,
//! Splink on the same raw exports in the same run (`scripts/splink_identity.py`).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use shopfuse_core::metrics::Scores;
use shopfuse_core::TableStore;
use shopfuse_generate::GenerateOptions;
use shopfuse_identity::evaluate::{evaluate_identity, evaluate_project, TruthAccount};
use shopfuse_identity::IdentityPhases;

use super::bench_error;
use super::resolve::child;
use crate::{read_csv_columns, PipelineError};

/// One size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityBenchRow {
    pub accounts: usize,
    pub people: usize,
    /// The identity stage alone (reading its tables to writing its own).
    pub seconds: f64,
    pub accounts_per_second: f64,
    /// Peak resident memory of the process that ran only the identity stage.
    pub peak_memory_mib: Option<f64>,
    pub phase_seconds: IdentityPhases,
    pub pair_completeness: f64,
    pub pairwise: Scores,
    pub cluster: Scores,
    /// Pairwise scores on the people whose accounts share no phone or e-mail.
    pub fuzzy: Option<Scores>,
    pub splink: Option<SplinkRow>,
}

/// Splink on the same size.
#[derive(Debug, Clone, Serialize)]
pub struct SplinkRow {
    pub version: String,
    /// Reading and normalising the exports, training, predicting and clustering.
    pub seconds: f64,
    /// The part of `seconds` spent reading and normalising the raw exports (shopfuse's
    /// ingest and clean, which the identity figures leave out).
    pub read_seconds: f64,
    pub accounts_per_second: f64,
    /// Accounts per second of linkage alone (`seconds - read_seconds`), the figure to set
    /// against the identity stage's.
    pub linkage_accounts_per_second: f64,
    pub pairwise: Scores,
    pub cluster: Scores,
    pub fuzzy: Option<Scores>,
}

/// The parts of the child's `--json` run report the bench reads.
#[derive(Deserialize)]
struct ChildReport {
    identity: ChildIdentity,
}

#[derive(Deserialize)]
struct ChildIdentity {
    accounts: usize,
    seconds: f64,
    phase_seconds: IdentityPhases,
    peak_memory_mib: Option<f64>,
}

/// What Splink's script prints.
#[derive(Deserialize)]
struct SplinkSummary {
    splink: String,
    read_seconds: f64,
}

/// Where the Splink peer runs: a Python with `splink` installed, and the script.
pub struct SplinkPeer<'a> {
    pub python: &'a Path,
    pub script: &'a Path,
}

/// For each size (accounts, about two per person): generate a project, ingest and clean it,
/// run `exe run --only identity` in a process of its own, score the customers against the
/// truth, then run the Splink peer on the same exports. `on_row` sees each row as it is made.
pub fn bench_identity(
    exe: &Path,
    sizes: &[usize],
    seed: u64,
    splink: Option<&SplinkPeer<'_>>,
    mut on_row: impl FnMut(&IdentityBenchRow),
) -> Result<Vec<IdentityBenchRow>, PipelineError> {
    let mut rows = Vec::new();
    for &size in sizes {
        let dir = tempfile::tempdir().map_err(bench_error("cannot make a temporary directory"))?;
        let people = (size / 2).max(10);
        let options = GenerateOptions {
            seed,
            products: 300,
            customers: people,
            orders: people * 3,
        };
        eprintln!(
            "{size} accounts: generating into {} …",
            dir.path().display()
        );
        shopfuse_generate::generate(dir.path(), &options).map_err(|e| PipelineError::Bench {
            what: "cannot generate the data set".into(),
            source: Some(Box::new(e)),
        })?;
        eprintln!("{size} accounts: ingest and clean …");
        child(exe, dir.path(), &["run", "--only", "ingest,clean"])?;
        eprintln!("{size} accounts: identity …");
        let out = child(exe, dir.path(), &["run", "--only", "identity", "--force"])?;
        let report: ChildReport =
            serde_json::from_slice(&out).map_err(|e| PipelineError::Bench {
                what: "the identity run's JSON report lacks the identity figures".into(),
                source: Some(Box::new(e)),
            })?;
        let truth = read_truth(&dir.path().join("truth").join("customer_clusters.csv"))?;
        let mut row = score_shopfuse(dir.path(), &truth, report.identity)?;
        if let Some(peer) = splink {
            eprintln!("{size} accounts: Splink …");
            row.splink = Some(run_splink(peer, dir.path(), &truth)?);
        }
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

fn score_shopfuse(
    project: &Path,
    truth: &[TruthAccount],
    identity: ChildIdentity,
) -> Result<IdentityBenchRow, PipelineError> {
    let store = TableStore::at(project);
    let evaluation = evaluate_project(&store, truth)?.ok_or_else(|| PipelineError::Bench {
        what: "the identity run wrote no customer_accounts".into(),
        source: None,
    })?;
    let report = evaluation.report;
    Ok(IdentityBenchRow {
        accounts: identity.accounts,
        people: report.true_people,
        seconds: identity.seconds,
        accounts_per_second: identity.accounts as f64 / identity.seconds.max(1e-9),
        peak_memory_mib: identity.peak_memory_mib,
        phase_seconds: identity.phase_seconds,
        pair_completeness: evaluation.candidates.pair_completeness,
        fuzzy: report.by_overlap.get("fuzzy").cloned(),
        pairwise: report.pairwise,
        cluster: report.cluster,
        splink: None,
    })
}

/// Runs the Splink script on `project`'s exports and scores its clusters the same way.
fn run_splink(
    peer: &SplinkPeer<'_>,
    project: &Path,
    truth: &[TruthAccount],
) -> Result<SplinkRow, PipelineError> {
    let clusters = project.join("splink_clusters.csv");
    let started = Instant::now();
    let out = std::process::Command::new(peer.python)
        .arg(peer.script)
        .arg(project)
        .arg(&clusters)
        .output()
        .map_err(bench_error(format!(
            "cannot start {}",
            peer.python.display()
        )))?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(PipelineError::Bench {
            what: format!(
                "{} failed: {}",
                peer.script.display(),
                String::from_utf8_lossy(&out.stderr)
            ),
            source: None,
        });
    }
    let summary: SplinkSummary =
        serde_json::from_slice(&out.stdout).map_err(|e| PipelineError::Bench {
            what: "the Splink script printed no summary".into(),
            source: Some(Box::new(e)),
        })?;
    let predicted: HashMap<(String, String), String> = read_csv_columns(
        &clusters,
        ["platform", "account_id", "cluster_id"],
        "",
        "what the Splink script writes",
    )?
    .into_iter()
    .map(|([platform, account_id, cluster], _)| ((platform, account_id), cluster))
    .collect();
    let report = evaluate_identity(truth, &predicted);
    Ok(SplinkRow {
        version: summary.splink,
        seconds,
        read_seconds: summary.read_seconds,
        accounts_per_second: predicted.len() as f64 / seconds.max(1e-9),
        linkage_accounts_per_second: predicted.len() as f64
            / (seconds - summary.read_seconds).max(1e-9),
        fuzzy: report.by_overlap.get("fuzzy").cloned(),
        pairwise: report.pairwise,
        cluster: report.cluster,
    })
}

/// The generator's `truth/customer_clusters.csv`.
fn read_truth(path: &Path) -> Result<Vec<TruthAccount>, PipelineError> {
    let rows = read_csv_columns(
        path,
        ["platform", "account_id", "person_id"],
        "overlap",
        "a shopfuse-generated truth",
    )?;
    Ok(rows
        .into_iter()
        .map(
            |([platform, account_id, person_id], overlap)| TruthAccount {
                platform,
                account_id,
                person_id,
                overlap: overlap.unwrap_or_else(|| "all".into()),
            },
        )
        .collect())
}
