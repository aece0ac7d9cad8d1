//! `shopfuse eval …`: accuracy on data the models were not tuned on.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use shopfuse_resolve::pairs::{read_deepmatcher, read_serialized, LabelledPair};

use crate::embed::ModelArgs;
use crate::{print_json, Cli};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Train a matcher on labelled pairs, choose its threshold on a validation split, print
    /// precision/recall/F1 on the test split. Pair files: one `left<TAB>right<TAB>label` per
    /// line with records as `COL attr VAL value …`; or a DeepMatcher directory with --dir.
    Pairs(EvalPairsArgs),
}

#[derive(Args)]
pub struct EvalPairsArgs {
    #[arg(long, required_unless_present = "dir")]
    train: Option<PathBuf>,
    #[arg(long, required_unless_present = "dir")]
    valid: Option<PathBuf>,
    #[arg(long, required_unless_present = "dir")]
    test: Option<PathBuf>,
    /// DeepMatcher layout: tableA.csv, tableB.csv, train.csv, valid.csv, test.csv.
    #[arg(long, conflicts_with_all = ["train", "valid", "test"])]
    dir: Option<PathBuf>,
    /// Boosting rounds of the gradient-boosted trees.
    #[arg(long, default_value_t = 400)]
    trees: usize,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn eval(cli: &Cli, command: &EvalCommand) -> Result<ExitCode> {
    match command {
        EvalCommand::Pairs(args) => eval_pairs(cli, args),
    }
}

fn eval_pairs(cli: &Cli, args: &EvalPairsArgs) -> Result<ExitCode> {
    let load = |split: &str, file: &Option<PathBuf>| -> Result<Vec<LabelledPair>> {
        Ok(match (&args.dir, file) {
            (Some(dir), _) => read_deepmatcher(dir, &format!("{split}.csv"))?,
            (None, Some(f)) => read_serialized(f)?,
            (None, None) => bail!("--{split} FILE (or --dir DIR) is required"),
        })
    };
    let (train, valid, test) = (
        load("train", &args.train)?,
        load("valid", &args.valid)?,
        load("test", &args.test)?,
    );
    let encoder = args.model.load(&cli.project)?;
    let report = shopfuse_resolve::eval_pairs(&train, &valid, &test, &encoder, args.trees)?;
    if cli.json {
        print_json(&report)?;
    } else {
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
        println!(
            "valid: {} at threshold {:.3}",
            report.valid, report.threshold
        );
        println!("test:  {}", report.test);
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
    Ok(ExitCode::SUCCESS)
}
