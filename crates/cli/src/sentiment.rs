//! `shopfuse sentiment`, `shopfuse eval sentiment` and `shopfuse bench sentiment`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use shopfuse_core::{Encoder, TableStore};
use shopfuse_sentiment::eval::{ProjectEval, PublicEval};
use shopfuse_sentiment::model::ModelSettings;
use shopfuse_sentiment::report::{AlertView, ProductSentiment, Tally, TextAnalysis};
use shopfuse_sentiment::SentimentModel;

use crate::{print_json, Cli};

#[derive(clap::Args)]
pub struct SentimentArgs {
    /// A review text to classify with the project's trained model: its polarity, and per
    /// clause the polarity and the aspects it names.
    text: Option<String>,
    /// One golden product (GP…): sentiment per platform, aspect and month, its alerts and its
    /// most negative reviews.
    #[arg(long, conflicts_with = "text")]
    product: Option<String>,
    /// Rows to print (alerts, or the product's most negative reviews).
    #[arg(long, default_value_t = 10)]
    limit: usize,
}

/// With a text: classify it; with --product: that product's report; else every alert.
pub fn sentiment(cli: &Cli, args: &SentimentArgs) -> Result<ExitCode> {
    let project = crate::open(&cli.project)?;
    if let Some(text) = &args.text {
        let dir = shopfuse_sentiment::tables::model_dir(&project.root);
        let model = SentimentModel::load(&dir).with_context(|| {
            format!(
                "no trained sentiment model in {} (run `shopfuse run` first)",
                dir.display()
            )
        })?;
        let encoder = if model.uses_encoder() {
            Some(shopfuse_pipeline::project_encoder(&project)?)
        } else {
            None
        };
        let analysis = shopfuse_sentiment::report::analyse(
            &model,
            encoder.as_ref().map(|e| e as &dyn Encoder),
            text,
        )?;
        if cli.json {
            print_json(&analysis)?;
        } else {
            print_analysis(&analysis);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = TableStore::open(&project)?;
    if let Some(product) = &args.product {
        let Some(report) =
            shopfuse_sentiment::report::product_sentiment(&store, product, args.limit)?
        else {
            bail!("{product} has no reviews (or is not a golden product id; `shopfuse sql \"select golden_id, title from golden_products\"` lists them)");
        };
        if cli.json {
            print_json(&report)?;
        } else {
            print_product(&report);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut alerts = shopfuse_sentiment::report::read_alerts(&store, None)?;
    alerts.truncate(args.limit);
    if cli.json {
        print_json(&alerts)?;
    } else {
        if alerts.is_empty() {
            println!("no sentiment alerts");
        }
        for a in &alerts {
            print_alert(a);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn day(us: Option<i64>) -> String {
    us.and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "?".into())
}

fn print_analysis(a: &TextAnalysis) {
    let p = &a.prediction;
    let head = p
        .p_head
        .map(|h| format!(", encoder head {h:.3}"))
        .unwrap_or_default();
    println!(
        "{} (p_positive {:.3}; n-grams {:.3}{head})",
        p.polarity.as_str(),
        p.p_positive,
        p.p_nbsvm
    );
    for c in &a.clauses {
        let aspects: Vec<String> = c
            .aspects
            .iter()
            .map(|(aspect, how)| format!("{aspect} ({how})"))
            .collect();
        println!(
            "  {:<8} {:.3}  {}{}",
            c.polarity.as_str(),
            c.p_positive,
            c.clause,
            if aspects.is_empty() {
                String::new()
            } else {
                format!("  → {}", aspects.join(", "))
            }
        );
    }
}

fn tally_line(name: &str, t: &Tally) -> String {
    format!(
        "  {name:<14} {:>6} {:>6} neg {:>5.1} %  (pos {}, neutral {}){}",
        t.total,
        t.negative,
        100.0 * t.negative_share,
        t.positive,
        t.neutral,
        t.mean_rating
            .map(|r| format!("  ★ {r:.2}"))
            .unwrap_or_default()
    )
}

fn print_product(r: &ProductSentiment) {
    println!(
        "{}: {} reviews, {} rating–text mismatches",
        r.golden_id, r.overall.total, r.rating_mismatches
    );
    println!("  {:<14} {:>6} {:>6}", "platform", "total", "neg");
    for (p, t) in &r.platforms {
        println!("{}", tally_line(p, t));
    }
    println!("{}", tally_line("all", &r.overall));
    println!("  {:<14} {:>6} {:>6}", "aspect", "clauses", "neg");
    for (a, t) in &r.aspects {
        println!("{}", tally_line(a, t));
    }
    println!("  {:<14} {:>6} {:>6}", "month", "total", "neg");
    for (m, t) in &r.months {
        println!("{}", tally_line(m, t));
    }
    if r.alerts.is_empty() {
        println!("no alerts");
    }
    for a in &r.alerts {
        print_alert(a);
    }
    println!("most negative reviews:");
    for v in &r.most_negative {
        println!(
            "  {:.3} {} {} {} ★{} {}",
            v.p_positive,
            day(v.reviewed_at),
            v.platform,
            v.review_id,
            v.rating.map_or("-".into(), |r| format!("{r:.0}")),
            v.text.as_deref().unwrap_or("")
        );
    }
}

fn print_alert(a: &AlertView) {
    println!(
        "{} {} {:<12} {} → {}: {}/{} negative ({:.0} % vs {:.0} % before, p {:.1e}) on {}; negative aspects {}",
        a.alert_id,
        a.golden_id,
        a.aspect,
        day(a.window_start),
        day(a.window_end),
        a.negative,
        a.mentions,
        100.0 * a.negative_share,
        100.0 * a.baseline_share,
        a.p_value,
        a.platforms,
        if a.negative_aspects.is_empty() { "-" } else { &a.negative_aspects }
    );
    for e in a.examples.split(" | ").filter(|e| !e.is_empty()) {
        println!("      {e}");
    }
}

#[derive(clap::Args)]
pub struct EvalSentimentArgs {
    /// A public labelled set instead of the project: ChnSentiCorp (standard split) or
    /// amazon-cells (k-fold cross-validation), e.g. ../shared/data/chnsenticorp.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folds for a set without a split (amazon-cells).
    #[arg(long, default_value_t = 10)]
    folds: usize,
    /// The n-gram model alone, without the encoder head.
    #[arg(long)]
    no_encoder: bool,
    /// The generator's truth folder (default: the project's truth/).
    #[arg(long)]
    truth: Option<PathBuf>,
}

pub fn eval_sentiment(cli: &Cli, args: &EvalSentimentArgs) -> Result<ExitCode> {
    if let Some(dir) = &args.data {
        let encoder = if args.no_encoder {
            None
        } else {
            Some(shopfuse_pipeline::usem3_encoder(None, &cli.project)?)
        };
        let settings = ModelSettings {
            head: encoder.as_ref().and(ModelSettings::default().head),
            ..Default::default()
        };
        let report = shopfuse_sentiment::eval::eval_public(
            dir,
            encoder.as_ref().map(|e| e as &dyn Encoder),
            &settings,
            args.folds,
        )?;
        if cli.json {
            print_json(&report)?;
        } else {
            print_public(&report);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let project = crate::open(&cli.project)?;
    let truth = args
        .truth
        .clone()
        .unwrap_or_else(|| project.root.join("truth"));
    let report = shopfuse_sentiment::eval::eval_project(
        &TableStore::open(&project)?,
        &truth,
        project.config.sentiment.alert_window_days,
    )?;
    if cli.json {
        print_json(&report)?;
    } else {
        print_project(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn print_public(r: &PublicEval) {
    println!(
        "{:?}: {} training rows, {} test rows; {}",
        r.set, r.train_rows, r.test_rows, r.protocol
    );
    println!("  {:<34} {:>6} {:>6}", "model", "dev", "test");
    for p in &r.parts {
        let test = match p.test_sd {
            Some(sd) => format!("{} ± {}", pct(p.test), pct(sd)),
            None => pct(p.test),
        };
        println!(
            "  {:<34} {:>6} {:>6}",
            format!("shopfuse {}", p.model),
            p.dev.map_or("-".into(), pct),
            test
        );
    }
    for p in &r.published {
        println!(
            "  {:<34} {:>6} {:>6}   (published: {})",
            p.model,
            p.dev.map_or("-".into(), pct),
            pct(p.test),
            p.source
        );
    }
    if r.published.is_empty() {
        println!("  (no verifiable published figure for this set and protocol)");
    }
    println!(
        "  training {:.1}s per model; inference {:.0} texts/s",
        r.train_seconds, r.predict_per_second
    );
}

fn print_project(r: &ProjectEval) {
    println!(
        "review polarity against truth/review_sentiment.csv: {} of {} reviews",
        r.matched, r.reviews
    );
    println!(
        "  text model   accuracy {}  macro-F1 {}",
        pct(r.accuracy),
        pct(r.macro_f1)
    );
    println!(
        "  stars alone  accuracy {}  macro-F1 {}   (4–5 positive, 3 neutral, 1–2 negative)",
        pct(r.stars_accuracy),
        pct(r.stars_macro_f1)
    );
    for c in &r.classes {
        println!(
            "  {:<9} support {:>6}  precision {:>5}  recall {:>5}  F1 {:>5}",
            c.polarity.as_str(),
            c.support,
            pct(c.precision),
            pct(c.recall),
            pct(c.f1)
        );
    }
    for (lang, acc) in &r.accuracy_by_language {
        println!("  accuracy on {lang} texts {}", pct(*acc));
    }
    let d = |name: &str, d: &shopfuse_sentiment::eval::Detection| {
        println!(
            "  {name:<22} truth {:>5}  flagged {:>5}  precision {:>5}  recall {:>5}  F1 {:>5}",
            d.truth,
            d.flagged,
            pct(d.precision),
            pct(d.recall),
            pct(d.f1)
        )
    };
    d("rating–text mismatch", &r.mismatch);
    d("aspect:polarity", &r.aspects);
    d("defect batches (alerts)", &r.alerts);
    for f in &r.defects {
        println!(
            "  {} {:<12} {} → {} ({} reviews) {}",
            f.defect,
            f.aspect,
            f.start,
            f.end,
            f.reviews,
            match (&f.alert_id, &f.alert_aspect, f.days_to_alert) {
                (Some(id), Some(a), Some(days)) =>
                    format!("found: {id} on {a}, {days:.0} days after the start"),
                _ => "not found".into(),
            }
        );
    }
}

#[derive(clap::Args)]
pub struct BenchSentimentArgs {
    /// ChnSentiCorp's folder.
    #[arg(long, default_value = "../shared/data/chnsenticorp")]
    data: PathBuf,
    /// Texts classified for the speed figures (the test set repeated).
    #[arg(long, default_value_t = 12_000)]
    texts: usize,
    /// A Python with `snownlp` installed: the peer (`./run bench` sets one up).
    #[arg(long)]
    snownlp_python: Option<PathBuf>,
    /// The n-gram model alone (no encoder).
    #[arg(long)]
    no_encoder: bool,
}

pub fn bench_sentiment(cli: &Cli, args: &BenchSentimentArgs) -> Result<ExitCode> {
    let encoder = if args.no_encoder {
        None
    } else {
        Some(shopfuse_pipeline::usem3_encoder(None, &cli.project)?)
    };
    let report = shopfuse_sentiment::bench::bench_sentiment(
        &args.data,
        encoder.as_ref().map(|e| e as &dyn Encoder),
        args.snownlp_python.as_ref(),
        args.texts,
    )?;
    if cli.json {
        return print_json(&report).map(|_| ExitCode::SUCCESS);
    }
    println!(
        "sentiment bench on {}: {} training rows, {} test rows of {:.0} characters on average, {} threads",
        report.data, report.train_rows, report.test_rows, report.mean_test_chars, report.threads
    );
    println!(
        "  {:<52} {:>9} {:>9} {:>12}",
        "model", "train s", "test acc", "texts/s"
    );
    for m in &report.models {
        println!(
            "  {:<52} {:>9} {:>9} {:>12.0}",
            m.model,
            m.train_seconds.map_or("-".into(), |s| format!("{s:.1}")),
            pct(m.test_accuracy),
            m.texts_per_second
        );
    }
    if let Some(note) = &report.peer_note {
        println!("  {note}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The stage's line in `shopfuse run`'s summary.
pub fn print_summary(s: &shopfuse_sentiment::SentimentSummary) {
    println!(
        "\nsentiment: {} reviews ({} negative, {} neutral, {} positive), {} aspect mentions, {} alerts, {} rating–text mismatches; model trained on {} public + {} star-labelled reviews{} in {:.1}s",
        s.reviews,
        s.negative,
        s.neutral,
        s.positive,
        s.aspect_mentions,
        s.alerts,
        s.rating_mismatches,
        s.public_training_rows,
        s.weak_labels,
        s.holdout_accuracy
            .map(|a| format!(" (held-out accuracy {})", pct(a)))
            .unwrap_or_default(),
        s.seconds
    );
}
