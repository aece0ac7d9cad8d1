//! `shopfuse run` (and the single-stage commands), `shopfuse stages`.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use shopfuse_pipeline::{Pipeline, RunOptions, RunReport, Selection, StageStatus};

use crate::{open, print_json, Bar, Cli};

#[derive(Args)]
pub struct RunArgs {
    /// Run only these stages (comma-separated, in pipeline order whatever the order given).
    #[arg(long, value_delimiter = ',', conflicts_with = "from")]
    only: Vec<String>,
    /// Run this stage and every stage after it.
    #[arg(long)]
    from: Option<String>,
    /// Run the selected stages even when their inputs are unchanged.
    #[arg(long)]
    pub force: bool,
    /// Forget every table (review labels and the embedding cache are kept when intact) and
    /// rebuild them all from the sources: the way back when files under tables/ were deleted.
    #[arg(long, conflicts_with_all = ["only", "from"])]
    pub rebuild: bool,
    /// Run the stages' bulk encoding on a Ballista cluster (`shopfuse scheduler` and
    /// `shopfuse executor`) at df://HOST:PORT; the executors must see the project directory.
    #[arg(long, value_name = "df://HOST:PORT", value_parser = crate::cluster::parse_scheduler)]
    pub cluster: Option<shopfuse_cluster::SchedulerUrl>,
}

impl RunArgs {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            selection: self.selection(),
            force: self.force || self.rebuild,
            rebuild: self.rebuild,
            cluster: self.cluster.clone(),
        }
    }

    fn selection(&self) -> Selection {
        match (&self.from, self.only.is_empty()) {
            (Some(stage), _) => Selection::From(stage.clone()),
            (None, false) => Selection::Only(self.only.clone()),
            (None, true) => Selection::All,
        }
    }
}

/// The selected stages run even if their inputs are unchanged: the single-stage commands.
pub fn forced(cli: &Cli, selection: Selection) -> Result<ExitCode> {
    run(
        cli,
        RunOptions {
            selection,
            force: true,
            rebuild: false,
            cluster: None,
        },
    )
}

pub fn run(cli: &Cli, options: RunOptions) -> Result<ExitCode> {
    let project = open(&cli.project)?;
    let bar = Bar::new(cli.quiet || cli.json);
    let report = Pipeline::standard()
        .run(&project, &options, &bar)
        .context("the run failed; nothing was committed")?;
    if cli.json {
        print_json(&report)?;
    } else {
        print_run(&report);
    }
    let failed = report.failed_files();
    if failed > 0 {
        eprintln!(
            "error: {failed} file(s) could not be ingested (listed above); fix them and run again"
        );
        return Ok(ExitCode::from(2));
    }
    if !report.balanced {
        bail!("row accounting does not balance for some source (read ≠ accepted + quarantined); this is a bug, please report it");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn stages(cli: &Cli) -> Result<ExitCode> {
    let stages = Pipeline::standard().describe();
    if cli.json {
        print_json(&stages)?;
        return Ok(ExitCode::SUCCESS);
    }
    let list = |t: &[String]| {
        if t.is_empty() {
            "-".to_string()
        } else {
            t.join(", ")
        }
    };
    for (i, s) in stages.iter().enumerate() {
        println!("{}. {} — {}", i + 1, s.name, s.about);
        if s.reads.is_empty() {
            println!("   reads:  source files");
        } else {
            println!("   reads:  {}", list(&s.reads));
        }
        println!("   writes: {}", list(&s.writes));
        if !s.caches.is_empty() {
            println!("   cache:  {}", list(&s.caches));
        }
    }
    for (table, by) in shopfuse_pipeline::EXTERNAL_INPUTS {
        println!("{} is written by `{by}`", table.name);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_run(r: &RunReport) {
    let ran: Vec<String> = r
        .stages
        .iter()
        .filter(|s| s.status == StageStatus::Ran)
        .map(|s| format!("{} {:.1}s", s.stage, s.seconds))
        .collect();
    println!(
        "shopfuse run · {} · committed version {} in {:.1}s · ran {}",
        r.project,
        r.version,
        r.seconds,
        if ran.is_empty() {
            "nothing".to_string()
        } else {
            ran.join(", ")
        }
    );
    if let Some(cluster) = &r.cluster {
        println!("bulk encoding on the Ballista cluster at {cluster}");
    }
    if !r.forgotten.is_empty() {
        println!(
            "rebuilt from the sources: forgot {} table(s) first ({})",
            r.forgotten.len(),
            r.forgotten.join(", ")
        );
    }
    for stage in r.skipped() {
        println!("{stage}: inputs unchanged, skipped");
    }
    if let Some(s) = &r.ingest {
        print_ingest(s);
    }
    if let Some(c) = &r.clean {
        print_clean(c);
    }
    if let Some(x) = &r.resolve {
        print_resolve(x);
    }
    if let Some(x) = &r.identity {
        print_identity(x);
    }
    if let Some(p) = &r.profiles {
        print_profiles(p);
    }
    if let Some(s) = &r.recs {
        crate::recs::print_summary(s);
    }
    if let Some(s) = &r.propensity {
        crate::propensity::print_summary(s);
    }
    if let Some(s) = &r.forecast {
        crate::forecast::print_summary(s);
    }
    if let Some(s) = &r.search {
        crate::search::print_summary(s);
    }
    if let Some(s) = &r.sentiment {
        crate::sentiment::print_summary(s);
    }
    if let Some(s) = &r.risk {
        crate::risk::print_summary(s);
    }
    println!(
        "\nquery: shopfuse -C {} sql \"select * from quarantine limit 5\"",
        r.project
    );
}

fn print_ingest(s: &shopfuse_ingest::IngestSummary) {
    let files: usize = s.sources.iter().map(|x| x.files_ingested).sum();
    let unchanged: usize = s.sources.iter().map(|x| x.files_unchanged).sum();
    println!(
        "\ningest: {files} file(s) ingested, {unchanged} unchanged, {} failed · {} rows, {:.1} MB in {:.2}s ({:.0} rows/s)",
        s.failed_files(),
        s.rows_read(),
        s.bytes_read as f64 / 1e6,
        s.seconds,
        s.rows_per_second
    );
    println!(
        "  {:<20} {:<9} {:<10} {:>9} {:>9} {:>11}   {:>9} {:>9} {:>11}  check",
        "source",
        "platform",
        "kind",
        "read",
        "accepted",
        "quarantined",
        "total rd",
        "total acc",
        "total quar"
    );
    for x in &s.sources {
        println!(
            "  {:<20} {:<9} {:<10} {:>9} {:>9} {:>11}   {:>9} {:>9} {:>11}  {}",
            x.source,
            x.platform,
            x.kind,
            x.rows_read,
            x.rows_accepted,
            x.rows_quarantined,
            x.total_rows_read,
            x.total_rows_accepted,
            x.total_rows_quarantined,
            if x.balanced() { "ok" } else { "UNBALANCED" }
        );
        for f in &x.files_failed {
            println!("    FAILED {}: {}", f.path, f.error);
        }
        for m in &x.files_missing {
            println!("    no file matches {m}");
        }
    }
}

fn print_clean(c: &shopfuse_clean::CleanSummary) {
    println!("\nclean: {:.2}s", c.seconds);
    println!(
        "  {:<10} {:>9} {:>9} {:>11} {:>9} {:>9}",
        "kind", "rows in", "rows out", "duplicates", "outliers", "imputed"
    );
    for k in &c.kinds {
        println!(
            "  {:<10} {:>9} {:>9} {:>11} {:>9} {:>9}",
            k.kind.as_str(),
            k.rows_in,
            k.rows_out,
            k.duplicates_removed,
            k.outliers_flagged,
            k.values_imputed
        );
    }
}

fn print_resolve(x: &shopfuse_resolve::ResolveSummary) {
    println!(
        "\nresolve: {:.2}s · {} listings on {} platforms → {} golden products ({} on several platforms)",
        x.seconds, x.listings, x.platforms, x.golden_products, x.multi_listing_products
    );
    println!(
        "  candidates {} of {} cross-platform pairs (reduction ratio {:.4}); supervision {:?}: {} pairs labelled by GTIN, {} by review",
        x.candidate_pairs,
        x.possible_pairs,
        x.reduction_ratio,
        x.supervision,
        x.gtin_labelled_pairs,
        x.review_labelled_pairs
    );
    if let Some(v) = &x.valid {
        println!(
            "  match threshold {:.3}; on held-out labelled pairs: {v}",
            x.threshold
        );
    }
    if let Some(c) = &x.cross_encoder {
        println!(
            "  cross-encoder ({:?}, {}): {} uncertain pairs re-read{} at {:.0} pairs/s ({:.1} % of their word pieces unknown to it), weight {:.2}, {} decisions changed; held-out F1 {:.1} → {:.1}{}",
            c.origin,
            c.model.display(),
            c.band_pairs,
            if c.band_capped { " (band capped by max_pairs)" } else { "" },
            c.pairs_per_second,
            100.0 * c.unknown_token_share,
            c.weight,
            c.decisions_changed,
            100.0 * c.held_out_before.f1,
            100.0 * c.held_out_after.f1,
            if c.train_pairs > 0 {
                format!(
                    "; trained on {} pairs in {:.0}s",
                    c.train_pairs, c.training_seconds
                )
            } else {
                String::new()
            }
        );
    }
    let refused: Vec<String> = x
        .merges_refused
        .iter()
        .map(|(why, n)| format!("{why} {n}"))
        .collect();
    println!(
        "  {} matched pairs; merges refused: {}; {} value aliases learned",
        x.matched_pairs,
        if refused.is_empty() {
            "none".to_string()
        } else {
            refused.join(", ")
        },
        x.aliases
    );
}

fn print_identity(x: &shopfuse_identity::IdentitySummary) {
    println!(
        "\nidentity: {:.2}s · {} accounts → {} customers ({} on several platforms)",
        x.seconds, x.accounts, x.customers, x.multi_platform_customers
    );
    let refused: Vec<String> = x
        .refused_merges
        .iter()
        .map(|(why, n)| format!("{why} {n}"))
        .collect();
    println!(
        "  {} candidate pairs; {} deterministic links (personal phone/e-mail), {} probabilistic; merges refused: {}",
        x.candidate_pairs,
        x.deterministic_links,
        x.probabilistic_links,
        if refused.is_empty() { "none".to_string() } else { refused.join(", ") }
    );
    println!(
        "  shared keys (no evidence): {} phones, {} e-mails, {} addresses, {} devices; match prior {:.2e} per account pair ({:.3} of candidates) after {} EM iterations",
        x.shared_keys.phones,
        x.shared_keys.emails,
        x.shared_keys.houses,
        x.shared_keys.devices,
        x.match_prior,
        x.candidate_match_share,
        x.em_iterations
    );
}

fn print_profiles(p: &shopfuse_identity::ProfileSummary) {
    let segments: Vec<String> = p.segments.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "  profiles: {} customers, {} with orders; segments: {}",
        p.customers,
        p.customers_with_orders,
        segments.join(", ")
    );
}
