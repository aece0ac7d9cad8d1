//! `shopfuse train cross-encoder`: fine-tunes the matcher's cross-encoder on labelled pairs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use indicatif::ProgressBar;
use shopfuse_embed::cross_encoder::{file_sha256, TrainingEvent};
use shopfuse_embed::{CrossEncoder, CrossEncoderSettings};
use shopfuse_resolve::cross::Augmentation;
use shopfuse_resolve::pairs::read_serialized;

use crate::embed::MiniLmArgs;
use crate::{print_json, Cli};

#[derive(Args)]
pub struct TrainCrossArgs {
    /// Training pairs (`left<TAB>right<TAB>label`, records as `COL attr VAL value …`).
    #[arg(long)]
    train: PathBuf,
    /// Validation pairs: early stopping and the threshold.
    #[arg(long)]
    valid: PathBuf,
    /// Where the artefact goes (weights and manifest; replaced whole).
    #[arg(long, default_value = "models/cross-encoder")]
    out: PathBuf,
    /// Tokens of a pair (both records); the longer record is cut first.
    #[arg(long, default_value_t = CrossEncoderSettings::default().max_tokens)]
    max_tokens: usize,
    /// Transformer layers trained, from the top (MiniLM has 6); the rest stay frozen.
    #[arg(long, default_value_t = CrossEncoderSettings::default().tuned_layers)]
    tuned_layers: usize,
    #[arg(long, default_value_t = CrossEncoderSettings::default().epochs)]
    epochs: usize,
    #[arg(long, default_value_t = CrossEncoderSettings::default().batch)]
    batch: usize,
    #[arg(long, default_value_t = CrossEncoderSettings::default().learning_rate)]
    learning_rate: f64,
    /// Epochs without a better validation F1 before training stops.
    #[arg(long, default_value_t = CrossEncoderSettings::default().patience)]
    patience: usize,
    #[arg(long, default_value_t = CrossEncoderSettings::default().seed)]
    seed: u64,
    /// Train on the first N training pairs only (a quick run).
    #[arg(long)]
    limit: Option<usize>,
    /// Altered copies of each training pair added to the training set (Ditto's augmentation:
    /// records swapped, an attribute's value or a span of words deleted on one side).
    #[arg(long, default_value_t = 0)]
    augment: usize,
    #[command(flatten)]
    minilm: MiniLmArgs,
}

pub fn train_cross_encoder(cli: &Cli, args: &TrainCrossArgs) -> Result<ExitCode> {
    let mut train = read_serialized(&args.train)?;
    let valid = read_serialized(&args.valid)?;
    if let Some(n) = args.limit {
        train.truncate(n);
    }
    if train.is_empty() || valid.is_empty() {
        bail!("need training and validation pairs (the files have none)");
    }
    let settings = CrossEncoderSettings {
        max_tokens: args.max_tokens,
        tuned_layers: args.tuned_layers,
        epochs: args.epochs,
        batch: args.batch,
        learning_rate: args.learning_rate,
        patience: args.patience,
        seed: args.seed,
    };
    let base = args.minilm.dir(&cli.project)?;
    let mut model = CrossEncoder::from_pretrained(&base, settings)?;
    let bar = batch_bar(cli.quiet || cli.json);
    let json = cli.json;
    let augment = Augmentation {
        copies: args.augment,
        seed: args.seed,
    };
    let report =
        shopfuse_resolve::cross::fine_tune(&mut model, &train, &valid, augment, &mut |event| {
            match event {
                TrainingEvent::Batch { epoch, done, total } => {
                    if done == 1 {
                        bar.reset();
                        bar.set_length(total as u64);
                        bar.set_message(format!("epoch {epoch}"));
                    }
                    bar.set_position(done as u64);
                }
                TrainingEvent::Epoch(e) => {
                    bar.finish_and_clear();
                    if !json {
                        println!(
                            "epoch {}: train loss {:.4}, valid F1 {:.1} at {:.3}, {:.0}s",
                            e.epoch, e.train_loss, e.valid_f1, e.valid_threshold, e.seconds
                        );
                    }
                }
            }
        })?;
    let mut data = [&args.train, &args.valid]
        .into_iter()
        .map(|p| Ok((p.display().to_string(), file_sha256(p)?)))
        .collect::<Result<Vec<_>>>()?;
    if augment.copies > 0 {
        // The manifest says how the training set was made, so the artefact can be rebuilt.
        data.push((
            "augmentation".to_string(),
            format!("{} copies per pair, seed {}", augment.copies, augment.seed),
        ));
    }
    let manifest = model.save(&args.out, data, report)?;
    if cli.json {
        print_json(&manifest)?;
    } else {
        let r = &manifest.report;
        println!(
            "kept epoch {} of {}: valid F1 {:.1} at threshold {:.3}; {} training pairs, {:.0}s \
             ({:.0}s in the frozen layers)",
            r.best_epoch,
            r.epochs.len(),
            r.best_valid_f1,
            r.threshold,
            r.train_pairs,
            r.seconds,
            r.frozen_seconds
        );
        println!("cross-encoder written to {}", args.out.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn batch_bar(hidden: bool) -> ProgressBar {
    crate::progress::styled_bar(
        hidden,
        "{msg:10} [{bar:30}] {pos}/{len} batches {per_sec} {eta}",
    )
}
