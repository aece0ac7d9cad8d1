//! `shopfuse review …`: the human review loop of product matching. `export` writes the pairs
//! the matcher is least sure about as a CSV with an empty `label` column; `import` reads the
//! filled-in file back into the `review_labels` table, which the next resolve run uses as
//! must-links / cannot-links and as training labels that override the GTIN-derived ones.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;
use shopfuse_core::TableStore;
use shopfuse_pipeline::review::uncertain_pairs;
use shopfuse_query::QueryEngine;
use shopfuse_resolve::review::{known_listings, merge_review_labels, read_review_file, ReviewFile};

use crate::{chrono_now, open, print_json, Cli};

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Write the most uncertain candidate pairs (match probability closest to the threshold,
    /// not decided by a GTIN, not reviewed yet) as CSV with an empty `label` column.
    Export(ExportArgs),
    /// Read a reviewed CSV back (label: 1/0, yes/no, match/non-match; empty = skipped) into
    /// the review_labels table; the next `shopfuse resolve` or `shopfuse run` uses them.
    Import(ImportArgs),
    /// List the stored review labels, newest first: the decisions `review import` and the
    /// dashboard's review queue (`POST /api/v1/review/decisions`) saved.
    Labels(LabelsArgs),
}

#[derive(Args)]
pub struct LabelsArgs {
    /// How many, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Where to write the CSV.
    #[arg(long, short, default_value = "review.csv")]
    out: PathBuf,
    /// How many pairs.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The reviewed CSV (as written by `review export`, with `label` filled in).
    file: PathBuf,
}

pub fn review(cli: &Cli, command: &ReviewCommand) -> Result<ExitCode> {
    match command {
        ReviewCommand::Export(args) => export(cli, args),
        ReviewCommand::Import(args) => import(cli, &args.file),
        ReviewCommand::Labels(args) => labels(cli, args.limit),
    }
}

const EXPORT_COLUMNS: [&str; 9] = [
    "left_platform",
    "left_listing_id",
    "left_title",
    "right_platform",
    "right_listing_id",
    "right_title",
    "match_probability",
    "drivers",
    "label",
];

fn export(cli: &Cli, args: &ExportArgs) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let engine = QueryEngine::open(&project)?;
    let Some(pairs) = uncertain_pairs(&engine, args.limit, 0)? else {
        bail!(
            "{} has no resolve_candidates table yet: run `shopfuse run` (or `shopfuse resolve`) first",
            project.root.display()
        );
    };
    let mut w = csv::Writer::from_path(&args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    w.write_record(EXPORT_COLUMNS)?;
    for p in &pairs {
        let probability = p.match_probability.to_string();
        w.write_record([
            p.left_platform.as_str(),
            &p.left_listing_id,
            &p.left_title,
            &p.right_platform,
            &p.right_listing_id,
            &p.right_title,
            &probability,
            &p.drivers,
            "",
        ])?;
    }
    w.flush()?;
    #[derive(Serialize)]
    struct Exported<'a> {
        file: &'a Path,
        pairs: usize,
    }
    if cli.json {
        print_json(&Exported {
            file: &args.out,
            pairs: pairs.len(),
        })?;
    } else {
        println!(
            "wrote {} uncertain pairs to {}: fill in the label column (1 = same product, 0 = different) and run `shopfuse review import {}`",
            pairs.len(),
            args.out.display(),
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Imported {
    file: String,
    labels: usize,
    matches: usize,
    non_matches: usize,
    skipped_empty: usize,
    total_reviewed: usize,
}

fn import(cli: &Cli, file: &Path) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let shown = file.display().to_string();
    let store = TableStore::open(&project)?;
    let known = known_listings(&store)?
        .context("no offers table: run `shopfuse run` before importing reviews")?;
    let ReviewFile { labels, skipped } = read_review_file(file, &known)?;
    let mut tx = store.begin().context("cannot start a transaction")?;
    let now = chrono_now();
    let total_reviewed = merge_review_labels(&mut tx, &labels, &now, &shown)?;
    tx.commit(now).context("cannot commit the review labels")?;
    let summary = Imported {
        file: shown,
        labels: labels.len(),
        matches: labels.iter().filter(|l| l.is_match).count(),
        non_matches: labels.iter().filter(|l| !l.is_match).count(),
        skipped_empty: skipped,
        total_reviewed,
    };
    if cli.json {
        print_json(&summary)?;
    } else {
        println!(
            "imported {} labels from {} ({} same product, {} different; {} rows without a label skipped); {} reviewed pairs in the project. Run `shopfuse resolve` to use them.",
            summary.labels,
            summary.file,
            summary.matches,
            summary.non_matches,
            summary.skipped_empty,
            summary.total_reviewed
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn labels(cli: &Cli, limit: usize) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let engine = QueryEngine::open(&project)?;
    if !engine.tables().iter().any(|t| t == "review_labels") {
        if cli.json {
            print_json(&Vec::<()>::new())?;
        } else {
            println!(
                "no review labels yet: `shopfuse review export`, or the dashboard's review queue"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let result = engine.sql(&format!(
        "select left_platform, left_listing_id, right_platform, right_listing_id, is_match, \
         labelled_at, source_file from review_labels \
         order by labelled_at desc nulls last, left_platform, left_listing_id limit {limit}"
    ))?;
    if cli.json {
        print_json(&result.to_json_rows()?)?;
    } else {
        print!("{}", result.to_pretty()?);
    }
    Ok(ExitCode::SUCCESS)
}
