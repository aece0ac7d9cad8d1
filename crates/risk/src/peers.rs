//! The peers `eval risk` runs on the same data in the same command: PyOD's IForest and ECOD
//! on the same feature table, and UGFraud's FRAUDAR on the same bipartite graph. They run
//! in a Python the caller names (`./run` sets one up with `pyod` and `ugfraud` from PyPI);
//! the script is compiled into the binary and written to a temporary directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fraudar::Block;
use crate::RiskError;

const SCRIPT: &str = include_str!("peers.py");

/// A Python with PyOD and UGFraud, and a scratch directory for the exchange files.
pub struct PeerPython {
    python: PathBuf,
    dir: tempfile::TempDir,
}

/// Peer scores and the seconds each took.
#[derive(Debug, Clone, Default)]
pub struct PeerRun {
    pub scores: HashMap<String, Vec<f64>>,
    pub seconds: HashMap<String, f64>,
}

impl PeerPython {
    pub fn new(python: &Path) -> Result<Self, RiskError> {
        let dir = tempfile::tempdir().map_err(|e| RiskError::io("temporary directory", e))?;
        std::fs::write(dir.path().join("peers.py"), SCRIPT)
            .map_err(|e| RiskError::io(dir.path().join("peers.py"), e))?;
        Ok(Self {
            python: python.to_path_buf(),
            dir,
        })
    }

    fn run(&self, peer: &'static str, args: &[String]) -> Result<serde_json::Value, RiskError> {
        let output = Command::new(&self.python)
            .arg(self.dir.path().join("peers.py"))
            .args(args)
            .output()
            .map_err(|e| RiskError::io(&self.python, e))?;
        if !output.status.success() {
            return Err(RiskError::Peer {
                peer,
                message: String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("failed")
                    .to_string(),
            });
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).map_err(|e| RiskError::Peer {
            peer,
            message: format!("unreadable output: {e}"),
        })
    }

    /// IForest and ECOD scores of each row of `features` (no missing values).
    pub fn pyod(&self, names: &[&str], features: &[Vec<f64>]) -> Result<PeerRun, RiskError> {
        let input = self.dir.path().join("features.csv");
        let mut text = names.join(",");
        text.push('\n');
        for row in features {
            let cells: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        std::fs::write(&input, text).map_err(|e| RiskError::io(&input, e))?;
        let out = self.dir.path().join("pyod.csv");
        let report = self.run(
            "pyod",
            &[
                "pyod".into(),
                input.display().to_string(),
                out.display().to_string(),
            ],
        )?;
        let text = std::fs::read_to_string(&out).map_err(|e| RiskError::io(&out, e))?;
        let mut run = PeerRun::default();
        for (j, name) in ["iforest", "ecod"].into_iter().enumerate() {
            let scores = text
                .lines()
                .map(|l| {
                    l.split(',')
                        .nth(j)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(f64::NAN)
                })
                .collect();
            run.scores.insert(name.to_string(), scores);
        }
        run.seconds = seconds(&report);
        Ok(run)
    }

    /// UGFraud's FRAUDAR: `blocks` dense blocks of the graph given by its edges.
    pub fn fraudar(
        &self,
        rows: usize,
        cols: usize,
        edges: &[(u32, u32)],
        blocks: usize,
    ) -> Result<(Vec<Block>, f64), RiskError> {
        let input = self.dir.path().join("edges.tsv");
        let text: String = edges.iter().map(|(r, c)| format!("{r}\t{c}\n")).collect();
        std::fs::write(&input, text).map_err(|e| RiskError::io(&input, e))?;
        let out = self.dir.path().join("blocks.tsv");
        let report = self.run(
            "fraudar",
            &[
                "fraudar".into(),
                input.display().to_string(),
                rows.to_string(),
                cols.to_string(),
                blocks.to_string(),
                out.display().to_string(),
            ],
        )?;
        let text = std::fs::read_to_string(&out).map_err(|e| RiskError::io(&out, e))?;
        let ids = |s: &str| -> Vec<u32> {
            s.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        };
        let found = text
            .lines()
            .map(|l| {
                let mut parts = l.split('\t');
                let density = parts.next().and_then(|d| d.parse().ok()).unwrap_or(0.0);
                Block {
                    density,
                    rows: ids(parts.next().unwrap_or("")),
                    cols: ids(parts.next().unwrap_or("")),
                }
            })
            .collect();
        Ok((
            found,
            seconds(&report).get("fraudar").copied().unwrap_or(f64::NAN),
        ))
    }
}

fn seconds(report: &serde_json::Value) -> HashMap<String, f64> {
    report["seconds"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}
