//! `shopfuse eval …`: accuracy on data the models were not tuned on.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use shopfuse_resolve::pairs::{read_deepmatcher, read_serialized, LabelledPair};
use shopfuse_resolve::{
    BlockingConfig, CandidateScope, PairEvalReport, PairEvalSettings, Supervision,
};

use crate::embed::{MiniLmArgs, ModelArgs};
use crate::{print_json, Cli};
use shopfuse_embed::{CrossEncoder, Encoder};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Train a matcher on labelled pairs, choose its threshold on a validation split, print
    /// precision/recall/F1 on the test split. Pair files: one `left<TAB>right<TAB>label` per
    /// line with records as `COL attr VAL value …`; or a DeepMatcher directory with --dir.
    Pairs(EvalPairsArgs),
    /// Blocking on the same files: every distinct left record against every distinct right
    /// record; prints pair completeness (share of labelled matches among the candidates) and
    /// reduction ratio, overall and per blocker (identifier keys, rare tokens, HNSW neighbours).
    Blocking(EvalBlockingArgs),
    /// Product clusters of the project (after `shopfuse run`) against a ground truth CSV
    /// (platform, listing_id, product_id, family_id; the generator writes
    /// truth/product_clusters.csv): pairwise and cluster-level precision/recall/F1,
    /// cross-language recall and variant separation.
    Match(EvalMatchArgs),
    /// Customer clusters of the project (after `shopfuse run`) against a ground truth CSV
    /// (platform, account_id, person_id, and optionally overlap; the generator writes
    /// truth/customer_clusters.csv): pairwise and cluster-level precision/recall/F1, overall
    /// and per kind of overlap (shared phone/e-mail, fuzzy name and address only).
    Identity(EvalMatchArgs),
    /// Recommendation models side by side on held-out purchases (temporal or leave-last-out
    /// split): Recall@10/20, NDCG@10/20, HitRate@10, coverage, and the cross-platform lift
    /// (each platform's purchases predicted from its own behaviour vs from all platforms).
    /// With --ratings, on a public user,item,rating,timestamp file instead.
    Recs(crate::recs::EvalRecsArgs),
    /// Buy-till-you-die models on the CDNOW benchmark: BG/NBD and Gamma-Gamma fitted on the
    /// 39-week calibration period next to the published parameters, and the holdout purchases
    /// forecast per customer (MAE).
    Propensity(crate::propensity::EvalPropensityArgs),
    /// Sales forecasts: a rolling-origin evaluation on the project per hierarchy level and
    /// model (MASE, sMAPE, weighted quantile loss, promotion days apart), and with --m4 the
    /// M4 Weekly benchmark next to the published figures and statsforecast.
    Forecast(crate::forecast::EvalForecastArgs),
    /// Price alerts against the price moves `shopfuse generate` planted
    /// (truth/price_moves.csv): recall per kind, precision, days to the alert.
    Prices(crate::planning::EvalPricesArgs),
    /// Search on the generator's query set (truth/search_queries.csv): NDCG@10, MRR,
    /// Recall@10 and wrong-variant-first for lexical, dense and hybrid, per query kind. With
    /// --data DIR, QBQTC relevance grading (macro-F1, accuracy) instead.
    Search(crate::search::EvalSearchArgs),
    /// The assistant on the generator's question set (truth/questions.csv): intent and
    /// cited-fact accuracy per intent.
    Ask(crate::search::EvalAskArgs),
    /// Review sentiment on the generator's truth (truth/review_sentiment.csv,
    /// truth/sentiment_defects.csv): accuracy and macro-F1, rating–text mismatches, aspects,
    /// planted defect batches found as alerts. With --data DIR, a public labelled set
    /// instead: ChnSentiCorp's standard split next to the published figures, or amazon-cells
    /// by 10-fold cross-validation.
    Sentiment(crate::sentiment::EvalSentimentArgs),
    /// Fraud and risk on the generator's truth (truth/fraud_labels.csv): PR-AUC, precision
    /// at 100 and recall at 1 % FPR per fraud pattern, fused next to one platform at a time;
    /// with --peers-python, PyOD's IForest and ECOD and UGFraud's FRAUDAR on the same data.
    /// With --yelpchi DIR, the graph scores on YelpChi and injected-block recovery instead.
    Risk(crate::risk::EvalRiskArgs),
}

#[derive(Args)]
pub struct EvalMatchArgs {
    /// Ground truth CSV (default: truth/product_clusters.csv, or truth/customer_clusters.csv
    /// for identity, in the project).
    #[arg(long)]
    truth: Option<PathBuf>,
}

/// Labelled pair splits: serialized files or a DeepMatcher directory.
#[derive(Args)]
pub struct SplitArgs {
    #[arg(long, required_unless_present = "dir")]
    train: Option<PathBuf>,
    #[arg(long, required_unless_present = "dir")]
    valid: Option<PathBuf>,
    #[arg(long, required_unless_present = "dir")]
    test: Option<PathBuf>,
    /// DeepMatcher layout: tableA.csv, tableB.csv, train.csv, valid.csv, test.csv.
    #[arg(long, conflicts_with_all = ["train", "valid", "test"])]
    dir: Option<PathBuf>,
}

impl SplitArgs {
    fn load(&self) -> Result<[Vec<LabelledPair>; 3]> {
        let load = |split: &str, file: &Option<PathBuf>| -> Result<Vec<LabelledPair>> {
            Ok(match (&self.dir, file) {
                (Some(dir), _) => read_deepmatcher(dir, &format!("{split}.csv"))?,
                (None, Some(f)) => read_serialized(f)?,
                (None, None) => bail!("--{split} FILE (or --dir DIR) is required"),
            })
        };
        Ok([
            load("train", &self.train)?,
            load("valid", &self.valid)?,
            load("test", &self.test)?,
        ])
    }
}

#[derive(Args)]
pub struct EvalPairsArgs {
    #[command(flatten)]
    splits: SplitArgs,
    /// Write the validation pairs the model got wrong, with the features that drove each
    /// decision, to this JSONL file (for error analysis and for labelling).
    #[arg(long)]
    errors: Option<PathBuf>,
    /// Ignore the training and validation labels: train on pseudo-labels read off the
    /// similarity structure of the pairs (mutual best candidates by TF-IDF and embedding),
    /// for users without labelled pairs. Test labels are still used to score.
    #[arg(long)]
    self_supervised: bool,
    /// Boosting rounds of the gradient-boosted trees.
    #[arg(long, default_value_t = 400)]
    trees: usize,
    /// Which pairs each pair's candidate margins (how it compares with the best other
    /// candidate of either record) are taken over: all pairs of the three files, the whole
    /// candidate set as a project's resolve stage sees it, or only the pairs of its own file.
    /// Labels are never read for the margins.
    #[arg(long, value_enum, default_value_t = CandidateScopeArg::AllFiles)]
    candidate_scope: CandidateScopeArg,
    #[command(flatten)]
    model: ModelArgs,
    /// A second sentence encoder whose cosines and learned model join the features: the
    /// English all-MiniLM-L6-v2 (alone a better separator than the multilingual encoder on
    /// English records), or none. Off by default: on Amazon-Google validation F1 was 78.2 with
    /// it and 79.1 without (test 80.5 and 77.7), for six times the run time.
    #[arg(long, value_enum, default_value_t = SecondEncoder::None)]
    second_encoder: SecondEncoder,
    /// A fine-tuned cross-encoder (the --out of `shopfuse train cross-encoder`): scored alone
    /// and stacked with the trees, its weight and threshold chosen on the validation pairs.
    #[arg(long)]
    cross_encoder: Option<PathBuf>,
    #[command(flatten)]
    minilm: MiniLmArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CandidateScopeArg {
    AllFiles,
    EachFile,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecondEncoder {
    Minilm,
    None,
}

pub fn eval(cli: &Cli, command: &EvalCommand) -> Result<ExitCode> {
    match command {
        EvalCommand::Pairs(args) => eval_pairs(cli, args),
        EvalCommand::Recs(args) => crate::recs::eval_recs(cli, args),
        EvalCommand::Blocking(args) => eval_blocking(cli, args),
        EvalCommand::Match(args) => eval_match(cli, args),
        EvalCommand::Identity(args) => eval_identity(cli, args),
        EvalCommand::Propensity(args) => crate::propensity::eval_propensity(cli, args),
        EvalCommand::Forecast(args) => crate::forecast::eval_forecast(cli, args),
        EvalCommand::Prices(args) => crate::planning::eval_prices(cli, args),
        EvalCommand::Search(args) => crate::search::eval_search(cli, args),
        EvalCommand::Ask(args) => crate::search::eval_ask(cli, args),
        EvalCommand::Sentiment(args) => crate::sentiment::eval_sentiment(cli, args),
        EvalCommand::Risk(args) => crate::risk::eval_risk(cli, args),
    }
}

fn eval_identity(cli: &Cli, args: &EvalMatchArgs) -> Result<ExitCode> {
    use shopfuse_identity::evaluate::{evaluate_project, TruthAccount};
    let project = crate::open(&cli.project)?;
    let truth_path = args
        .truth
        .clone()
        .unwrap_or_else(|| project.root.join("truth").join("customer_clusters.csv"));
    let truth: Vec<TruthAccount> = shopfuse_pipeline::read_csv_columns(
        &truth_path,
        ["platform", "account_id", "person_id"],
        "overlap",
        "need platform, account_id, person_id; overlap is optional",
    )?
    .into_iter()
    .map(
        |([platform, account_id, person_id], overlap)| TruthAccount {
            platform,
            account_id,
            person_id,
            overlap: overlap.unwrap_or_else(|| "all".to_string()),
        },
    )
    .collect();
    let store = shopfuse_core::TableStore::open(&project)?;
    let evaluation = evaluate_project(&store, &truth)?
        .context("no customer_accounts table in the project: run `shopfuse run` first")?;
    let (report, candidates) = (&evaluation.report, &evaluation.candidates);
    if cli.json {
        print_json(&evaluation)?;
    } else {
        println!(
            "{} accounts scored: {} true people, {} predicted customers ({} truth accounts not in the project)",
            report.accounts, report.true_people, report.predicted_customers, report.accounts_missing
        );
        println!("pairwise: {}", report.pairwise);
        println!(
            "clusters: {}  (a customer counts when it is exactly one person's accounts)",
            report.cluster
        );
        for (kind, scores) in &report.by_overlap {
            println!("  {kind:<11} pairwise: {scores}");
        }
        println!(
            "candidates: pair completeness {:.4} ({} of {} true pairs scored), reduction ratio {:.6} ({} candidate pairs)",
            candidates.pair_completeness,
            candidates.true_pairs_proposed,
            candidates.true_pairs,
            candidates.reduction_ratio,
            candidates.candidate_pairs
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn eval_match(cli: &Cli, args: &EvalMatchArgs) -> Result<ExitCode> {
    use std::collections::BTreeMap;
    let project = crate::open(&cli.project)?;
    let truth_path = args
        .truth
        .clone()
        .unwrap_or_else(|| project.root.join("truth").join("product_clusters.csv"));
    let mut truth: BTreeMap<String, (String, String)> = BTreeMap::new();
    for ([platform, listing, product], family) in shopfuse_pipeline::read_csv_columns(
        &truth_path,
        ["platform", "listing_id", "product_id"],
        "family_id",
        "need platform, listing_id, product_id, family_id",
    )? {
        let family = family.unwrap_or_else(|| product.clone());
        truth.insert(format!("{platform}:{listing}"), (product, family));
    }
    let store = shopfuse_core::TableStore::open(&project)?;
    let evaluation = shopfuse_resolve::evaluate::evaluate_project(&store, &truth)?
        .context("no product clusters in the project: run `shopfuse run` first")?;
    let (report, blocking) = (&evaluation.report, &evaluation.blocking);
    let missing = evaluation.truth_listings_not_in_project;
    let unknown = evaluation.project_listings_not_in_truth;
    if cli.json {
        print_json(&evaluation)?;
    } else {
        println!(
            "{} listings scored: {} true products, {} predicted clusters ({} truth listings not in the project, {} project listings not in the truth)",
            report.listings, report.true_products, report.predicted_clusters, missing, unknown
        );
        println!("pairwise: {}", report.pairwise);
        println!(
            "clusters: {}  (a cluster counts when it is exactly one product's listings)",
            report.cluster
        );
        println!(
            "cross-language recall {:.4} over {} Chinese/English pairs of one product; variants kept apart {:.4} over {} pairs of sibling variants",
            report.cross_language_recall,
            report.cross_language_pairs,
            report.variants_apart,
            report.variant_pairs
        );
        println!(
            "candidates: pair completeness {:.4} ({} true cross-platform pairs), reduction ratio {:.4} ({} candidate pairs)",
            blocking.pair_completeness,
            blocking.true_pairs,
            blocking.reduction_ratio,
            blocking.candidate_pairs
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct EvalBlockingArgs {
    #[command(flatten)]
    splits: SplitArgs,
    /// Nearest neighbours per record and direction in the embedding index.
    #[arg(long, default_value_t = BlockingConfig::default().knn)]
    knn: usize,
    /// Highest-IDF tokens per record used as blocking keys.
    #[arg(long, default_value_t = BlockingConfig::default().rare_tokens)]
    rare_tokens: usize,
    /// Key blocks with more pairs than this are dropped.
    #[arg(long, default_value_t = BlockingConfig::default().max_block_pairs)]
    max_block_pairs: usize,
    #[command(flatten)]
    model: ModelArgs,
}

fn eval_blocking(cli: &Cli, args: &EvalBlockingArgs) -> Result<ExitCode> {
    let [train, valid, test] = args.splits.load()?;
    let encoder = args.model.load(&cli.project)?;
    let config = BlockingConfig {
        knn: args.knn,
        rare_tokens: args.rare_tokens,
        max_block_pairs: args.max_block_pairs,
        ..BlockingConfig::default()
    };
    let started = std::time::Instant::now();
    let q = shopfuse_resolve::eval_blocking(&[&train, &valid, &test], &encoder, &config)?;
    if cli.json {
        print_json(&q)?;
    } else {
        println!(
            "blocking: {} left × {} right records = {} pairs; {} candidates; {} labelled matches",
            q.left_records,
            q.right_records,
            q.left_records * q.right_records,
            q.candidate_pairs,
            q.true_matches
        );
        println!(
            "pair completeness {:.4}  reduction ratio {:.4}",
            q.pair_completeness, q.reduction_ratio
        );
        for (name, pc, n) in &q.completeness_by_blocker {
            println!("  {name:<10} alone: pair completeness {pc:.4} from {n} candidates");
        }
        println!("time: {:.1}s", started.elapsed().as_secs_f64());
    }
    Ok(ExitCode::SUCCESS)
}

fn eval_pairs(cli: &Cli, args: &EvalPairsArgs) -> Result<ExitCode> {
    let [train, valid, test] = args.splits.load()?;
    let encoder = args.model.load(&cli.project)?;
    let second = match args.second_encoder {
        SecondEncoder::None => None,
        SecondEncoder::Minilm => Some(args.minilm.load(&cli.project)?),
    };
    let cross = match &args.cross_encoder {
        None => None,
        Some(dir) => {
            let (model, _) = CrossEncoder::load(dir, &args.minilm.dir(&cli.project)?)?;
            Some(model)
        }
    };
    let report = shopfuse_resolve::eval_pairs(
        &train,
        &valid,
        &test,
        &encoder,
        second.as_ref().map(|e| e as &dyn Encoder),
        cross.as_ref(),
        PairEvalSettings {
            trees: args.trees,
            supervision: if args.self_supervised {
                Supervision::SelfSupervised
            } else {
                Supervision::Labelled
            },
            candidates: match args.candidate_scope {
                CandidateScopeArg::AllFiles => CandidateScope::AllFiles,
                CandidateScopeArg::EachFile => CandidateScope::EachFile,
            },
        },
    )?;
    if cli.json {
        print_json(&report)?;
    } else {
        print_pair_report(&report);
    }
    if let Some(path) = &args.errors {
        let mut text = String::new();
        for e in &report.valid_errors {
            text.push_str(&serde_json::to_string(e)?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        if !cli.json {
            println!(
                "{} validation errors with their drivers written to {}",
                report.valid_errors.len(),
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_pair_report(report: &PairEvalReport) {
    println!(
        "pairs: train {} · valid {} · test {} ({} distinct records, matching on `{}` + {:?}, {} features)",
        report.train_pairs,
        report.valid_pairs,
        report.test_pairs,
        report.distinct_records,
        report.main_attribute,
        report.other_attributes,
        report.features
    );
    println!("encoders: {}", report.encoders.join(" + "));
    println!(
        "candidate margins over: {}",
        match report.candidates {
            CandidateScope::AllFiles => "all pairs of the three files (labels unread)",
            CandidateScope::EachFile => "the pairs of each file alone",
        }
    );
    if report.supervision == Supervision::SelfSupervised {
        println!("self-supervised: trained on pseudo-labels, the files' labels only score");
    }
    println!(
        "valid: {} at threshold {:.3}",
        report.valid, report.threshold
    );
    println!("test:  {}", report.test);
    if let Some(c) = &report.cross_encoder {
        println!(
            "cross-encoder alone, threshold {:.3} (valid {:.1}): test {}",
            c.alone_threshold,
            100.0 * c.alone_valid.f1,
            c.alone_test
        );
        println!(
            "stacked (cross-encoder weight {:.2}, threshold {:.3}, valid {:.1}): test {}",
            c.weight,
            c.stacked_threshold,
            100.0 * c.stacked_valid.f1,
            c.stacked_test
        );
        for b in &c.bands {
            println!(
                "  stacked only on the {:.0} % of pairs the trees are least sure of (test {:.0} %): test {}",
                100.0 * b.valid_share,
                100.0 * b.test_share,
                b.test
            );
        }
        println!("cross-encoder inference: {:.0} pairs/s", c.pairs_per_second);
    }
    println!(
        "top features: {}",
        report
            .top_features
            .iter()
            .map(|(n, v)| format!("{n} {v:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("time: {:.1}s", report.seconds);
}
