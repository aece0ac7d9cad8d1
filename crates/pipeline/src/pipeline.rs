//! The runner: the ordered stages, which of them a run selects, and skipping by fingerprint.

use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use shopfuse_clean::CleanSummary;
use shopfuse_cluster::SchedulerUrl;
use shopfuse_core::{Progress, Project, StageRecord, TableStore, Transaction};
use shopfuse_identity::{IdentitySummary, ProfileSummary};
use shopfuse_ingest::IngestSummary;
use shopfuse_learn::recs::RecsSummary;
use shopfuse_resolve::ResolveSummary;

use crate::stages::{
    CleanStage, ForecastStage, IdentityStage, IngestStage, ProfilesStage, PropensityStage,
    RecsStage, ResolveStage, RiskStage, SearchStage, SentimentStage,
};
use crate::{PipelineError, Stage, StageContext, StageInfo, StageSummary, EXTERNAL_INPUTS};
use shopfuse_core::table::TableDef;

/// Which stages a run runs, in pipeline order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    /// These stages only (names as `shopfuse stages` prints them).
    Only(Vec<String>),
    /// This stage and every one after it.
    From(String),
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub selection: Selection,
    /// Run the selected stages even when their inputs are unchanged.
    pub force: bool,
    /// Forget every table first (but review labels and caches whose files are intact) and
    /// rebuild from the sources: the way back after the tables folder was damaged.
    pub rebuild: bool,
    /// Run the stages' encoding plans on this Ballista cluster instead of in this process.
    pub cluster: Option<SchedulerUrl>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            selection: Selection::All,
            force: false,
            rebuild: false,
            cluster: None,
        }
    }
}

/// Whether a selected stage ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Ran,
    /// Its settings and the content of every table it reads are what it last ran on.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageOutcome {
    pub stage: &'static str,
    pub status: StageStatus,
    pub seconds: f64,
    /// The fingerprint of its inputs (empty for ingest, which compares files itself).
    pub fingerprint: String,
}

/// What one run did: each stage's summary where it ran, and every selected stage's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub project: String,
    /// The committed version.
    pub version: u64,
    pub stages: Vec<StageOutcome>,
    pub ingest: Option<IngestSummary>,
    pub clean: Option<CleanSummary>,
    pub resolve: Option<ResolveSummary>,
    pub identity: Option<IdentitySummary>,
    pub profiles: Option<ProfileSummary>,
    pub recs: Option<RecsSummary>,
    pub propensity: Option<shopfuse_propensity::PropensitySummary>,
    pub forecast: Option<shopfuse_forecast::ForecastSummary>,
    pub search: Option<shopfuse_search::SyncReport>,
    pub sentiment: Option<shopfuse_sentiment::SentimentSummary>,
    pub risk: Option<shopfuse_risk::RiskSummary>,
    /// rows read = rows accepted + rows quarantined for every source (true when ingest did
    /// not run).
    pub balanced: bool,
    pub seconds: f64,
    /// Tables `--rebuild` forgot before the stages ran.
    pub forgotten: Vec<String>,
    /// The Ballista cluster the bulk encoding ran on (`df://HOST:PORT`); `None` in process.
    pub cluster: Option<String>,
}

impl RunReport {
    /// Source files that could not be read at all.
    pub fn failed_files(&self) -> usize {
        self.ingest.as_ref().map_or(0, |s| s.failed_files())
    }

    pub fn skipped(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.stages
            .iter()
            .filter(|s| s.status == StageStatus::Skipped)
            .map(|s| s.stage)
    }

    fn keep(&mut self, summary: StageSummary) {
        match summary {
            StageSummary::Ingest(s) => self.ingest = Some(s),
            StageSummary::Clean(s) => self.clean = Some(s),
            StageSummary::Resolve(s) => self.resolve = Some(s),
            StageSummary::Identity(s) => self.identity = Some(s),
            StageSummary::Profiles(s) => self.profiles = Some(s),
            StageSummary::Recs(s) => self.recs = Some(s),
            StageSummary::Propensity(s) => self.propensity = Some(s),
            StageSummary::Forecast(s) => self.forecast = Some(s),
            StageSummary::Search(s) => self.search = Some(s),
            StageSummary::Sentiment(s) => self.sentiment = Some(s),
            StageSummary::Risk(s) => self.risk = Some(s),
        }
    }
}

/// The ordered stages of a run.
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::standard()
    }
}

impl Pipeline {
    /// ingest → clean → resolve → identity → profiles → recs → propensity → forecast → search
    /// → sentiment → risk.
    pub fn standard() -> Self {
        Self::new(vec![
            Box::new(IngestStage),
            Box::new(CleanStage),
            Box::new(ResolveStage),
            Box::new(IdentityStage),
            Box::new(ProfilesStage),
            Box::new(RecsStage),
            Box::new(PropensityStage),
            Box::new(ForecastStage),
            Box::new(SearchStage),
            Box::new(SentimentStage),
            Box::new(RiskStage),
        ])
    }

    pub fn new(stages: Vec<Box<dyn Stage>>) -> Self {
        Self { stages }
    }

    pub fn stages(&self) -> impl Iterator<Item = &dyn Stage> {
        self.stages.iter().map(|s| s.as_ref())
    }

    pub fn describe(&self) -> Vec<StageInfo> {
        self.stages().map(StageInfo::of).collect()
    }

    /// Every declared table with what writes it: the stages' outputs in pipeline order, then
    /// the tables people write by command, then the caches.
    pub fn dictionary(&self) -> Vec<(&'static str, TableDef)> {
        let mut tables: Vec<(&'static str, TableDef)> = Vec::new();
        for stage in self.stages() {
            tables.extend(stage.writes().into_iter().map(|t| (stage.name(), t)));
        }
        for (table, by) in EXTERNAL_INPUTS {
            tables.push((*by, (*table).clone()));
        }
        for stage in self.stages() {
            for cache in stage.caches() {
                if !tables.iter().any(|(_, t)| t.name == cache.name) {
                    tables.push(("cache (resolve, recs, shopfuse embed)", cache));
                }
            }
        }
        tables
    }

    /// The stages `selection` picks, in pipeline order; an unknown name is an error.
    pub fn select(&self, selection: &Selection) -> Result<Vec<&dyn Stage>, PipelineError> {
        let position = |name: &str| {
            self.stages
                .iter()
                .position(|s| s.name() == name)
                .ok_or_else(|| PipelineError::UnknownStage {
                    name: name.to_string(),
                    known: self
                        .stages()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        };
        let picked: Vec<usize> = match selection {
            Selection::All => (0..self.stages.len()).collect(),
            Selection::From(name) => (position(name)?..self.stages.len()).collect(),
            Selection::Only(names) => {
                let mut at = names
                    .iter()
                    .map(|n| position(n))
                    .collect::<Result<Vec<_>, _>>()?;
                at.sort_unstable();
                at.dedup();
                at
            }
        };
        Ok(picked
            .into_iter()
            .map(|i| self.stages[i].as_ref())
            .collect())
    }

    /// Runs the selected stages in one transaction and commits it.
    /// What a rebuild keeps: tables no stage can write again from the sources (review
    /// labels) and caches (only time to rebuild).
    fn kept_on_rebuild(&self) -> Vec<String> {
        let mut keep: Vec<String> = EXTERNAL_INPUTS
            .iter()
            .map(|(t, _)| t.name.to_string())
            .collect();
        for stage in &self.stages {
            keep.extend(stage.caches().iter().map(|t| t.name.to_string()));
        }
        keep
    }

    pub fn run(
        &self,
        project: &Project,
        options: &RunOptions,
        progress: &dyn Progress,
    ) -> Result<RunReport, PipelineError> {
        let started = Instant::now();
        let selected = self.select(&options.selection)?;
        let store = TableStore::open(project)?;
        let (mut tx, forgotten) = if options.rebuild {
            let keep = self.kept_on_rebuild();
            let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
            store.begin_rebuild(&keep, crate::now_rfc3339())?
        } else {
            (store.begin()?, Vec::new())
        };
        let ctx = StageContext::new(project).on_cluster(options.cluster.clone());
        let mut report = RunReport {
            project: project.root.display().to_string(),
            version: tx.version(),
            stages: Vec::new(),
            ingest: None,
            clean: None,
            resolve: None,
            identity: None,
            profiles: None,
            recs: None,
            propensity: None,
            forecast: None,
            search: None,
            sentiment: None,
            risk: None,
            balanced: true,
            seconds: 0.0,
            forgotten,
            cluster: options.cluster.as_ref().map(|c| c.to_string()),
        };
        for stage in selected {
            let outcome = run_stage(stage, &ctx, &mut tx, options.force, progress, &mut report)?;
            report.stages.push(outcome);
        }
        tx.commit(crate::now_rfc3339())?;
        report.balanced = report
            .ingest
            .as_ref()
            .is_none_or(|s| s.sources.iter().all(|s| s.balanced()));
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// Runs one stage unless its inputs are what it last ran on; records what it ran on.
fn run_stage(
    stage: &dyn Stage,
    ctx: &StageContext<'_>,
    tx: &mut Transaction<'_>,
    force: bool,
    progress: &dyn Progress,
    report: &mut RunReport,
) -> Result<StageOutcome, PipelineError> {
    let started = Instant::now();
    let fingerprint = if stage.self_incremental() {
        String::new()
    } else {
        fingerprint(stage, ctx.project, tx)
    };
    let up_to_date = !stage.self_incremental()
        && tx.next.stages.get(stage.name()).is_some_and(|r| {
            r.fingerprint == fingerprint && r.outputs.iter().all(|t| tx.next.tables.contains_key(t))
        });
    if up_to_date && !force {
        return Ok(StageOutcome {
            stage: stage.name(),
            status: StageStatus::Skipped,
            seconds: started.elapsed().as_secs_f64(),
            fingerprint,
        });
    }
    let summary = stage.run(ctx, tx, progress)?;
    let summary_json = serde_json::to_value(&summary).ok();
    report.keep(summary);
    let outputs = stage
        .writes()
        .into_iter()
        .map(|t| t.name.into_owned())
        .filter(|t| tx.next.tables.contains_key(t))
        .collect();
    let record = StageRecord {
        fingerprint: fingerprint.clone(),
        version: tx.version(),
        outputs,
        summary: summary_json,
        seconds: Some(started.elapsed().as_secs_f64()),
    };
    tx.next.stages.insert(stage.name().to_string(), record);
    Ok(StageOutcome {
        stage: stage.name(),
        status: StageStatus::Ran,
        seconds: started.elapsed().as_secs_f64(),
        fingerprint,
    })
}

/// Hash of the stage's name, the code's and the stage's version, its settings and the content of each table
/// it reads (absent tables count as absent).
fn fingerprint(stage: &dyn Stage, project: &Project, tx: &mut Transaction<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(stage.name().as_bytes());
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(format!("\nstage version {}", stage.version()).as_bytes());
    hasher.update(stage.settings(project).to_string().as_bytes());
    for table in stage.reads() {
        let content = tx.table_fingerprint(&table);
        hasher.update(format!("\n{table}={}", content.as_deref().unwrap_or("absent")).as_bytes());
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_table_a_stage_reads_is_written_before_it() {
        let mut written: BTreeSet<String> = EXTERNAL_INPUTS
            .iter()
            .map(|(t, _)| t.name.to_string())
            .collect();
        for stage in Pipeline::standard().stages() {
            for table in stage.reads() {
                assert!(
                    written.contains(&table),
                    "stage {} reads {table}, which no earlier stage writes",
                    stage.name()
                );
            }
            for table in stage.writes() {
                let table = table.name.into_owned();
                assert!(
                    written.insert(table.clone()),
                    "{table} is written by {} and by an earlier stage",
                    stage.name()
                );
            }
        }
    }

    #[test]
    fn docs_tables_md_is_generated_from_the_declarations() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/tables.md");
        let expected =
            shopfuse_core::table::dictionary_markdown(&Pipeline::standard().dictionary());
        let found = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            found == expected,
            "{} is stale: regenerate it with `shopfuse tables --schema --markdown > docs/tables.md`",
            path.display()
        );
    }

    #[test]
    fn every_table_is_declared_once() {
        let dictionary = Pipeline::standard().dictionary();
        let names: BTreeSet<&str> = dictionary.iter().map(|(_, t)| t.name()).collect();
        assert_eq!(names.len(), dictionary.len());
        for (_, t) in &dictionary {
            assert!(!t.doc_text().is_empty(), "{} has no doc", t.name);
            for c in t.columns.iter() {
                assert!(!c.doc.trim().is_empty(), "{}.{} has no doc", t.name, c.name);
            }
        }
    }

    #[test]
    fn selection_keeps_pipeline_order_and_names_unknown_stages() {
        let p = Pipeline::standard();
        let names = |s: &Selection| -> Vec<&str> {
            p.select(s).unwrap().iter().map(|s| s.name()).collect()
        };
        assert_eq!(
            names(&Selection::Only(vec!["recs".into(), "clean".into()])),
            ["clean", "recs"]
        );
        assert_eq!(
            names(&Selection::From("identity".into())),
            [
                "identity",
                "profiles",
                "recs",
                "propensity",
                "forecast",
                "search",
                "sentiment",
                "risk"
            ]
        );
        assert_eq!(names(&Selection::All).len(), 11);
        let e = p.select(&Selection::From("fuse".into())).err().unwrap();
        assert!(e.to_string().contains("no stage named \"fuse\""), "{e}");
        assert!(e.to_string().contains("ingest, clean, resolve"), "{e}");
    }
}
