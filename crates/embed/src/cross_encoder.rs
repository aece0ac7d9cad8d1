//! A cross-encoder: one transformer reading two records as one sequence and answering whether
//! they describe the same thing.
//!
//! Sentence encoders (the rest of this crate) embed each record alone; two records then meet only
//! as a cosine. That cannot tell "Sandisk Cruzer Glide 64GB" from "Cruzer Force 16GB": the
//! vectors are close because the texts are. A cross-encoder attends across both records, token
//! against token, which is what Ditto and the language models that lead the matching benchmarks
//! do. This one is all-MiniLM-L6-v2 (the same files as [`crate::MiniLm`]) with a logistic head
//! on the mean of its last hidden states, fine-tuned on labelled pairs.
//!
//! Vocabulary:
//! - a *pair* is `[CLS] left [SEP] right [SEP]` with token types 0 and 1, cut longest side first
//!   to [`CrossEncoderSettings::max_tokens`];
//! - the *frozen* layers are the lower transformer layers, kept at their pretrained weights; the
//!   *tuned* layers above them and the head are trained. Freezing is what makes training fit a
//!   2-core machine: the frozen layers run once per pair (their outputs are cached, exactly,
//!   because padding is masked out of attention), and backpropagation stops at the first tuned
//!   layer;
//! - a *bucket* is a run of pairs of similar token length, so a batch pads little.
//!
//! Training is candle's autograd and AdamW with a linear warm-up and decay, early-stopped on the
//! validation pairs' best-threshold F1; the best epoch's weights are kept. The tuned weights are
//! the only thing saved ([`TUNED_FILE`]); the frozen ones are read from the base model, whose
//! checksum the [`CrossEncoderManifest`] records, so an artefact cannot be loaded over another
//! base by mistake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

use shopfuse_core::encoder::{EncoderCause, EncoderError};

use crate::minilm;
use crate::trainable_bert_layer::TrainableBertLayer;

/// The fine-tuned weights' file in an artefact directory.
pub const TUNED_FILE: &str = "cross_encoder.safetensors";
/// The artefact's description: base model, data, settings, figures and checksums.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Pairs per batch when only predicting.
const PREDICT_BATCH: usize = 64;

/// How a cross-encoder is built and fine-tuned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CrossEncoderSettings {
    /// Tokens of a pair, both records and the three special tokens; the longer record is cut
    /// first.
    pub max_tokens: usize,
    /// Transformer layers trained (from the top); the others keep their pretrained weights.
    pub tuned_layers: usize,
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// Epochs without a better validation F1 before training stops.
    pub patience: usize,
    pub seed: u64,
}

impl Default for CrossEncoderSettings {
    fn default() -> Self {
        CrossEncoderSettings {
            max_tokens: 128,
            tuned_layers: 3,
            epochs: 4,
            batch: 16,
            learning_rate: 1e-4,
            patience: 1,
            seed: 7,
        }
    }
}

/// What an artefact directory says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrossEncoderManifest {
    pub base_model: String,
    /// SHA-256 of the base model's `model.safetensors`.
    pub base_sha256: String,
    pub settings: CrossEncoderSettings,
    /// Where the training pairs came from (files and their SHA-256), as the caller names them.
    pub data: Vec<(String, String)>,
    pub report: FineTuneReport,
    /// SHA-256 of [`TUNED_FILE`].
    pub tuned_sha256: String,
}

/// One epoch of fine-tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_f1: f64,
    pub valid_threshold: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FineTuneReport {
    pub train_pairs: usize,
    pub valid_pairs: usize,
    pub epochs: Vec<EpochReport>,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    pub best_valid_f1: f64,
    /// Probability threshold with the best validation F1 at the kept epoch.
    pub threshold: f64,
    /// Seconds spent running the frozen layers once over every pair.
    pub frozen_seconds: f64,
    pub seconds: f64,
}

/// A word piece of a pair and how much it weighed in the match decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenWeight {
    pub token: String,
    /// Whether it is from the right record (else the left one).
    pub right: bool,
    /// Gradient × input, summed over the hidden units: positive pushes towards a match.
    pub weight: f64,
}

/// A text pair with its label, for training.
#[derive(Debug, Clone, Copy)]
pub struct LabelledTextPair<'a> {
    pub left: &'a str,
    pub right: &'a str,
    pub is_match: bool,
}

/// all-MiniLM-L6-v2 reading a pair, with a match head.
pub struct CrossEncoder {
    tokenizer: Tokenizer,
    /// The embeddings and the frozen layers (plain tensors: nothing is tracked through them).
    frozen: BertModel,
    /// The tuned layers, over the variables of `tuned_vars`.
    tuned: Vec<TrainableBertLayer>,
    head: Linear,
    tuned_vars: VarMap,
    settings: CrossEncoderSettings,
    base_sha256: String,
    device: Device,
}

/// A pair tokenised: ids, token types, and its cached frozen-layer output once computed.
struct TokenisedPair {
    ids: Vec<u32>,
    types: Vec<u32>,
}

fn candle_err(model: &str) -> impl Fn(candle_core::Error) -> EncoderError + '_ {
    move |e| EncoderError::Encode {
        model: model.to_string(),
        source: e.into(),
    }
}

impl CrossEncoder {
    /// The pretrained base from `base_dir` (all-MiniLM-L6-v2's files), with a fresh head and
    /// the top `settings.tuned_layers` layers ready to train.
    pub fn from_pretrained(
        base_dir: &Path,
        settings: CrossEncoderSettings,
    ) -> Result<Self, EncoderError> {
        Self::build(base_dir, settings, None)
    }

    /// A fine-tuned cross-encoder: the artefact in `dir` ([`MANIFEST_FILE`], [`TUNED_FILE`]) over
    /// the base in `base_dir`.
    pub fn load(dir: &Path, base_dir: &Path) -> Result<(Self, CrossEncoderManifest), EncoderError> {
        let manifest = read_manifest(dir)?;
        let tuned = dir.join(TUNED_FILE);
        let sha = file_sha256(&tuned)?;
        if sha != manifest.tuned_sha256 {
            return Err(EncoderError::load(
                tuned,
                "its checksum differs from the manifest's; train it again",
                format!("sha256 {sha}, manifest {}", manifest.tuned_sha256),
            ));
        }
        let model = Self::build(base_dir, manifest.settings, Some(&tuned))?;
        if model.base_sha256 != manifest.base_sha256 {
            return Err(EncoderError::load(
                base_dir.join("model.safetensors"),
                "this is not the base model the cross-encoder was trained on",
                format!(
                    "sha256 {}, manifest {}",
                    model.base_sha256, manifest.base_sha256
                ),
            ));
        }
        Ok((model, manifest))
    }

    fn build(
        base_dir: &Path,
        settings: CrossEncoderSettings,
        tuned_file: Option<&Path>,
    ) -> Result<Self, EncoderError> {
        let device = Device::Cpu;
        let files = minilm::ModelDir(base_dir);
        let load_err = |file: &str, e: EncoderCause| files.invalid(file, e);
        let config = files.config()?;
        let layers = config.num_hidden_layers;
        if settings.tuned_layers > layers {
            return Err(load_err(
                "config.json",
                format!(
                    "{} tuned layers asked for, the model has {layers}",
                    settings.tuned_layers
                )
                .into(),
            ));
        }
        let mut tokenizer = files.tokenizer()?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: settings.max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                ..TruncationParams::default()
            }))
            .map_err(|e| load_err("tokenizer.json", e))?;
        let weights = files.read("model.safetensors")?;
        let base_sha256 = hex::encode(Sha256::digest(&weights));
        let tensors = candle_core::safetensors::load_buffer(&weights, &device)
            .map_err(|e| load_err("model.safetensors", e.into()))?;
        let frozen_count = layers - settings.tuned_layers;
        let frozen_config = Config {
            num_hidden_layers: frozen_count,
            ..config.clone()
        };
        let frozen = BertModel::load(
            VarBuilder::from_tensors(tensors.clone(), DType::F32, &device),
            &frozen_config,
        )
        .map_err(|e| load_err("model.safetensors", e.into()))?;
        // The tuned layers are numbered from 0 in their own variable map, so the saved artefact
        // holds exactly what was trained.
        let mut tuned_vars = VarMap::new();
        {
            let mut data = tuned_vars.data().lock().expect("a fresh variable map");
            for (name, tensor) in &tensors {
                if let Some(renamed) = renumbered(name, frozen_count) {
                    let var = Var::from_tensor(tensor)
                        .map_err(|e| load_err("model.safetensors", e.into()))?;
                    data.insert(renamed, var);
                }
            }
        }
        let vb = VarBuilder::from_varmap(&tuned_vars, DType::F32, &device);
        let tuned = (0..settings.tuned_layers)
            .map(|i| {
                TrainableBertLayer::load(
                    vb.pp(format!("encoder.layer.{i}")),
                    config.hidden_size,
                    config.intermediate_size,
                    config.num_attention_heads,
                    config.layer_norm_eps,
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(|e| load_err("model.safetensors", e.into()))?;
        let head = candle_nn::linear(config.hidden_size, 1, vb.pp("head"))
            .map_err(|e| load_err("model.safetensors", e.into()))?;
        if let Some(file) = tuned_file {
            tuned_vars.load(file).map_err(|e| {
                EncoderError::load(file.to_path_buf(), "not a cross-encoder's weights", e)
            })?;
        }
        Ok(CrossEncoder {
            tokenizer,
            frozen,
            tuned,
            head,
            tuned_vars,
            settings,
            base_sha256,
            device,
        })
    }

    pub fn settings(&self) -> CrossEncoderSettings {
        self.settings
    }

    /// Of the word pieces the model reads in `pairs` (after the cut, special tokens left out),
    /// how many its vocabulary does not know (`[UNK]`), and how many there are: how much of
    /// the text an English base cannot see, e.g. the Chinese characters of a Taobao title.
    pub fn unknown_tokens(&self, pairs: &[(&str, &str)]) -> Result<(usize, usize), EncoderError> {
        let special: Vec<u32> = ["[CLS]", "[SEP]", "[PAD]"]
            .iter()
            .filter_map(|t| self.tokenizer.token_to_id(t))
            .collect();
        let unknown = self.tokenizer.token_to_id("[UNK]");
        let (mut unknown_n, mut total) = (0, 0);
        for pair in self.tokenise(pairs)? {
            for id in pair.ids.iter().filter(|id| !special.contains(id)) {
                total += 1;
                unknown_n += usize::from(Some(*id) == unknown);
            }
        }
        Ok((unknown_n, total))
    }

    fn tokenise(&self, pairs: &[(&str, &str)]) -> Result<Vec<TokenisedPair>, EncoderError> {
        let inputs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (normalise(a), normalise(b)))
            .collect();
        let encodings =
            self.tokenizer
                .encode_batch(inputs, true)
                .map_err(|e| EncoderError::Encode {
                    model: minilm::MODEL_ID.to_string(),
                    source: e,
                })?;
        Ok(encodings
            .into_iter()
            .map(|e| TokenisedPair {
                ids: e.get_ids().to_vec(),
                types: e.get_type_ids().to_vec(),
            })
            .collect())
    }

    /// The frozen layers' output for each pair, unpadded: `(tokens, hidden)` per pair.
    fn frozen_states(&self, pairs: &[TokenisedPair]) -> Result<Vec<Tensor>, EncoderError> {
        let err = candle_err(minilm::MODEL_ID);
        let mut out: Vec<Option<Tensor>> = vec![None; pairs.len()];
        for batch in length_batches(pairs, PREDICT_BATCH) {
            let (ids, types, mask) = padded(pairs, &batch, &self.device).map_err(&err)?;
            let hidden = self
                .frozen
                .forward(&ids, &types, Some(&mask))
                .map_err(&err)?;
            for (row, &i) in batch.iter().enumerate() {
                let len = pairs[i].ids.len();
                out[i] = Some(
                    hidden
                        .get(row)
                        .and_then(|h| h.narrow(0, 0, len))
                        .and_then(|h| h.force_contiguous())
                        .map_err(&err)?,
                );
            }
        }
        Ok(out
            .into_iter()
            .map(|t| t.expect("every pair batched"))
            .collect())
    }

    /// Match logits of the pairs `batch` from their frozen states.
    fn logits(&self, states: &[Tensor], batch: &[usize]) -> candle_core::Result<Tensor> {
        let width = batch
            .iter()
            .map(|&i| states[i].dims()[0])
            .max()
            .unwrap_or(0);
        let mut rows = Vec::with_capacity(batch.len());
        let mut mask = Vec::with_capacity(batch.len() * width);
        for &i in batch {
            let len = states[i].dims()[0];
            rows.push(states[i].pad_with_zeros(0, 0, width - len)?);
            mask.extend((0..width).map(|t| if t < len { 1f32 } else { 0f32 }));
        }
        let hidden = Tensor::stack(&rows, 0)?;
        let mask = Tensor::from_vec(mask, (batch.len(), width), &self.device)?;
        // BERT's additive attention mask: 0 on tokens, the lowest float on padding.
        let additive = ((mask.ones_like()? - &mask)? * f64::from(f32::MIN))?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        let mut out = hidden;
        for layer in &self.tuned {
            out = layer.forward(&out, &additive)?;
        }
        let weights = mask.unsqueeze(2)?;
        let pooled = out
            .broadcast_mul(&weights)?
            .sum(1)?
            .broadcast_div(&weights.sum(1)?)?;
        self.head.forward(&pooled)?.squeeze(1)
    }

    /// The tokens of a pair that weighed most in its match log-odds, strongest first, with
    /// their weight: gradient × input at the first tuned layer, summed over the hidden units
    /// (positive pushes towards a match). Special tokens are left out.
    pub fn explain(
        &self,
        left: &str,
        right: &str,
        top: usize,
    ) -> Result<Vec<TokenWeight>, EncoderError> {
        let err = candle_err(minilm::MODEL_ID);
        let tokenised = self.tokenise(&[(left, right)])?;
        let state = self.frozen_states(&tokenised)?.remove(0);
        let input = Var::from_tensor(&state).map_err(&err)?;
        let logit = self
            .logits(std::slice::from_ref(input.as_tensor()), &[0])
            .map_err(&err)?;
        let grads = logit.sum_all().and_then(|l| l.backward()).map_err(&err)?;
        let grad = grads.get(input.as_tensor()).cloned().ok_or_else(|| {
            err(candle_core::Error::Msg(
                "no gradient reached the tokens".into(),
            ))
        })?;
        let weights = (grad * input.as_tensor())
            .and_then(|t| t.sum(1))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(&err)?;
        let pair = &tokenised[0];
        let mut out: Vec<TokenWeight> = weights
            .iter()
            .zip(pair.ids.iter().zip(&pair.types))
            .filter_map(|(&weight, (&id, &side))| {
                let token = self.tokenizer.id_to_token(id)?;
                let special = token.starts_with('[') && token.ends_with(']');
                (!special).then(|| TokenWeight {
                    token,
                    right: side == 1,
                    weight: f64::from(weight),
                })
            })
            .collect();
        out.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        out.truncate(top);
        Ok(out)
    }

    /// Match probability of each pair.
    pub fn predict(&self, pairs: &[(&str, &str)]) -> Result<Vec<f32>, EncoderError> {
        let tokenised = self.tokenise(pairs)?;
        let states = self.frozen_states(&tokenised)?;
        self.predict_states(&states)
    }

    fn predict_states(&self, states: &[Tensor]) -> Result<Vec<f32>, EncoderError> {
        let err = candle_err(minilm::MODEL_ID);
        let mut out = vec![0f32; states.len()];
        let lengths: Vec<usize> = states.iter().map(|s| s.dims()[0]).collect();
        for batch in length_batches_of(&lengths, PREDICT_BATCH) {
            let p = candle_nn::ops::sigmoid(&self.logits(states, &batch).map_err(&err)?)
                .and_then(|p| p.to_vec1::<f32>())
                .map_err(&err)?;
            for (&i, p) in batch.iter().zip(p) {
                out[i] = p;
            }
        }
        Ok(out)
    }

    /// Fine-tunes the tuned layers and the head on `train`, keeping the epoch with the best
    /// validation F1. `progress` hears about every finished batch (done, total) and epoch.
    pub fn fine_tune(
        &mut self,
        train: &[LabelledTextPair],
        valid: &[LabelledTextPair],
        progress: &mut dyn FnMut(TrainingEvent),
    ) -> Result<FineTuneReport, EncoderError> {
        let started = Instant::now();
        let err = candle_err(minilm::MODEL_ID);
        let train_states = self.frozen_states(&self.tokenise(&text_pairs(train))?)?;
        let valid_states = self.frozen_states(&self.tokenise(&text_pairs(valid))?)?;
        let frozen_seconds = started.elapsed().as_secs_f64();
        let valid_labels: Vec<bool> = valid.iter().map(|p| p.is_match).collect();
        let lengths: Vec<usize> = train_states.iter().map(|s| s.dims()[0]).collect();
        let s = self.settings;
        let steps_per_epoch = train.len().div_ceil(s.batch.max(1));
        let total_steps = (steps_per_epoch * s.epochs).max(1);
        let warmup = (total_steps / 10).max(1);
        let mut optimiser = AdamW::new(
            self.tuned_vars.all_vars(),
            ParamsAdamW {
                lr: s.learning_rate,
                weight_decay: 0.01,
                ..ParamsAdamW::default()
            },
        )
        .map_err(&err)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s.seed);
        let mut epochs = Vec::new();
        let mut best: Option<(usize, f64, f64, HashMap<String, Tensor>)> = None;
        let mut step = 0;
        for epoch in 1..=s.epochs {
            let epoch_started = Instant::now();
            let batches = shuffled_buckets(&lengths, s.batch.max(1), &mut rng);
            let mut loss_sum = 0.0;
            for (done, batch) in batches.iter().enumerate() {
                let lr = s.learning_rate * schedule(step, warmup, total_steps);
                optimiser.set_learning_rate(lr);
                let targets: Vec<f32> = batch
                    .iter()
                    .map(|&i| f32::from(u8::from(train[i].is_match)))
                    .collect();
                let targets = Tensor::from_vec(targets, batch.len(), &self.device).map_err(&err)?;
                let logits = self.logits(&train_states, batch).map_err(&err)?;
                let loss = logistic_loss(&logits, &targets).map_err(&err)?;
                optimiser.backward_step(&loss).map_err(&err)?;
                loss_sum += f64::from(loss.to_scalar::<f32>().map_err(&err)?);
                step += 1;
                progress(TrainingEvent::Batch {
                    epoch,
                    done: done + 1,
                    total: batches.len(),
                });
            }
            let pv = self.predict_states(&valid_states)?;
            let (threshold, f1) = best_f1(&pv, &valid_labels);
            let report = EpochReport {
                epoch,
                train_loss: loss_sum / batches.len().max(1) as f64,
                valid_f1: f1,
                valid_threshold: threshold,
                seconds: epoch_started.elapsed().as_secs_f64(),
            };
            progress(TrainingEvent::Epoch(report.clone()));
            epochs.push(report);
            if best.as_ref().is_none_or(|(_, b, _, _)| f1 > *b) {
                best = Some((epoch, f1, threshold, self.snapshot().map_err(&err)?));
            } else if epoch - best.as_ref().map_or(0, |b| b.0) > s.patience {
                break;
            }
        }
        let (best_epoch, best_valid_f1, threshold, weights) =
            best.unwrap_or((0, 0.0, 0.5, HashMap::new()));
        self.restore(&weights).map_err(&err)?;
        Ok(FineTuneReport {
            train_pairs: train.len(),
            valid_pairs: valid.len(),
            epochs,
            best_epoch,
            best_valid_f1,
            threshold,
            frozen_seconds,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn snapshot(&self) -> candle_core::Result<HashMap<String, Tensor>> {
        let data = self
            .tuned_vars
            .data()
            .lock()
            .expect("variables not poisoned");
        data.iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
            .collect()
    }

    fn restore(&self, weights: &HashMap<String, Tensor>) -> candle_core::Result<()> {
        let data = self
            .tuned_vars
            .data()
            .lock()
            .expect("variables not poisoned");
        for (name, value) in weights {
            if let Some(var) = data.get(name) {
                var.set(value)?;
            }
        }
        Ok(())
    }

    /// Writes the artefact into `dir` (created; replaced atomically, via a sibling directory
    /// renamed into place, so a crash leaves the old artefact or none, never half of one).
    pub fn save(
        &self,
        dir: &Path,
        data: Vec<(String, String)>,
        report: FineTuneReport,
    ) -> Result<CrossEncoderManifest, EncoderError> {
        let io = |path: PathBuf| {
            move |e: std::io::Error| EncoderError::Save {
                path,
                source: e.into(),
            }
        };
        let partial = dir.with_extension("partial");
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(io(partial.clone()))?;
        let tuned = partial.join(TUNED_FILE);
        self.tuned_vars
            .save(&tuned)
            .map_err(|e| EncoderError::Save {
                path: tuned.clone(),
                source: e.into(),
            })?;
        let manifest = CrossEncoderManifest {
            base_model: minilm::MODEL_ID.to_string(),
            base_sha256: self.base_sha256.clone(),
            settings: self.settings,
            data,
            report,
            tuned_sha256: file_sha256(&tuned)?,
        };
        let text = serde_json::to_string_pretty(&manifest).expect("the manifest serialises");
        std::fs::write(partial.join(MANIFEST_FILE), text)
            .map_err(io(partial.join(MANIFEST_FILE)))?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::rename(&partial, dir).map_err(io(dir.to_path_buf()))?;
        Ok(manifest)
    }
}

fn text_pairs<'a>(pairs: &[LabelledTextPair<'a>]) -> Vec<(&'a str, &'a str)> {
    pairs.iter().map(|p| (p.left, p.right)).collect()
}

/// What [`CrossEncoder::fine_tune`] reports as it goes.
#[derive(Debug, Clone)]
pub enum TrainingEvent {
    Batch {
        epoch: usize,
        done: usize,
        total: usize,
    },
    Epoch(EpochReport),
}

/// The uncased tokenizer lower-cases itself; runs of whitespace become one space so the same
/// record always tokenises the same.
fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `encoder.layer.{i}.…` of the base as the tuned map's `encoder.layer.{i - frozen}.…`, for
/// the layers at or above `frozen`; `None` for every other tensor.
fn renumbered(name: &str, frozen: usize) -> Option<String> {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    let rest = name.strip_prefix("encoder.layer.")?;
    let (index, tail) = rest.split_once('.')?;
    let index: usize = index.parse().ok()?;
    (index >= frozen).then(|| format!("encoder.layer.{}.{tail}", index - frozen))
}

/// Linear warm-up to 1 over `warmup` steps, then linear decay to 0 at `total`.
fn schedule(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        (step + 1) as f64 / warmup as f64
    } else {
        (total.saturating_sub(step)) as f64 / (total - warmup).max(1) as f64
    }
}

/// Mean binary cross-entropy of `logits` against 0/1 `targets`, in the stable form
/// `max(z, 0) − z·y + log(1 + e^{−|z|})` (candle's own takes the log of a sigmoid, which is
/// −∞ for confident logits).
fn logistic_loss(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let softplus_tail = ((logits.abs()?.neg()?.exp()? + 1.0)?).log()?;
    ((logits.relu()? - (logits * targets)?)? + softplus_tail)?.mean_all()
}

/// The threshold with the best F1 over `probabilities` and that F1 (in percent).
pub fn best_f1(probabilities: &[f32], labels: &[bool]) -> (f64, f64) {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let (mut tp, mut best, mut threshold) = (0.0, 0.0, 0.5);
    for (k, &i) in order.iter().enumerate() {
        tp += f64::from(u8::from(labels[i]));
        // Only where the next probability differs, so a threshold separates exactly these.
        if order
            .get(k + 1)
            .is_some_and(|&j| probabilities[j] == probabilities[i])
        {
            continue;
        }
        let predicted = (k + 1) as f64;
        let f1 = 2.0 * tp / (predicted + positives);
        if f1 > best {
            best = f1;
            threshold = f64::from(probabilities[i]);
        }
    }
    (threshold, 100.0 * best)
}

/// Batches of indices with pairs of similar length together, in length order.
fn length_batches(pairs: &[TokenisedPair], size: usize) -> Vec<Vec<usize>> {
    let lengths: Vec<usize> = pairs.iter().map(|p| p.ids.len()).collect();
    length_batches_of(&lengths, size)
}

fn length_batches_of(lengths: &[usize], size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    order.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}

/// Training batches: shuffled, then sorted by length within windows of 50 batches (so a batch
/// pads little but an epoch still mixes lengths and labels), and the batches shuffled.
fn shuffled_buckets(
    lengths: &[usize],
    size: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(rng);
    let mut batches = Vec::new();
    for window in order.chunks_mut(size * 50) {
        window.sort_by_key(|&i| lengths[i]);
        batches.extend(window.chunks(size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// The pairs `batch` as padded (ids, token types, attention mask) tensors.
fn padded(
    pairs: &[TokenisedPair],
    batch: &[usize],
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let width = batch.iter().map(|&i| pairs[i].ids.len()).max().unwrap_or(0);
    let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for &i in batch {
        let p = &pairs[i];
        let pad = width - p.ids.len();
        ids.extend(p.ids.iter().copied().chain(std::iter::repeat_n(0, pad)));
        types.extend(p.types.iter().copied().chain(std::iter::repeat_n(0, pad)));
        mask.extend(std::iter::repeat_n(1u32, p.ids.len()).chain(std::iter::repeat_n(0, pad)));
    }
    let shape = (batch.len(), width);
    Ok((
        Tensor::from_vec(ids, shape, device)?,
        Tensor::from_vec(types, shape, device)?,
        Tensor::from_vec(mask, shape, device)?,
    ))
}

fn read_manifest(dir: &Path) -> Result<CrossEncoderManifest, EncoderError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(|e| {
        EncoderError::load(
            path.clone(),
            "no cross-encoder here; train one with `shopfuse train cross-encoder`",
            e,
        )
    })?;
    serde_json::from_slice(&text)
        .map_err(|e| EncoderError::load(path, "not a cross-encoder manifest", e))
}

/// SHA-256 of a file, hex.
pub fn file_sha256(path: &Path) -> Result<String, EncoderError> {
    let bytes = std::fs::read(path)
        .map_err(|e| EncoderError::load(path.to_path_buf(), "cannot read it", e))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_tuned_layers_are_renumbered_from_zero() {
        assert_eq!(
            renumbered("encoder.layer.4.attention.self.query.weight", 3).as_deref(),
            Some("encoder.layer.1.attention.self.query.weight")
        );
        assert_eq!(
            renumbered("bert.encoder.layer.5.output.dense.bias", 0).as_deref(),
            Some("encoder.layer.5.output.dense.bias")
        );
        assert_eq!(renumbered("encoder.layer.2.output.dense.bias", 3), None);
        assert_eq!(renumbered("embeddings.word_embeddings.weight", 0), None);
    }

    #[test]
    fn the_learning_rate_warms_up_then_decays_to_zero() {
        let rates: Vec<f64> = (0..10).map(|s| schedule(s, 2, 10)).collect();
        assert_eq!(rates[0], 0.5);
        assert_eq!(rates[1], 1.0);
        assert_eq!(rates[2], 1.0);
        assert!(rates[2..].windows(2).all(|w| w[1] < w[0]), "{rates:?}");
        assert!(rates[9] > 0.0 && schedule(10, 2, 10) == 0.0);
    }

    #[test]
    fn the_loss_is_finite_for_confident_logits_and_matches_the_definition() {
        let logits = Tensor::new(&[-80f32, 0.0, 3.0, 80.0], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[1f32, 0.0, 1.0, 0.0], &Device::Cpu).unwrap();
        let loss = logistic_loss(&logits, &targets)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let expected = (80.0 + 2f64.ln() + (1.0 + (-3f64).exp()).ln() + 80.0) / 4.0;
        assert!(
            (f64::from(loss) - expected).abs() < 1e-4,
            "{loss} vs {expected}"
        );
    }

    #[test]
    fn training_batches_cover_every_pair_once() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 128).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let batches = shuffled_buckets(&lengths, 16, &mut rng);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        assert!(batches.iter().all(|b| b.len() <= 16));
    }

    fn base_model(tuned_layers: usize) -> CrossEncoder {
        let dir = crate::minilm::find_dir(&[]).unwrap_or_else(|e| panic!("{e}"));
        let settings = CrossEncoderSettings {
            tuned_layers,
            ..CrossEncoderSettings::default()
        };
        CrossEncoder::from_pretrained(&dir, settings).unwrap_or_else(|e| panic!("{e}"))
    }

    const PAIRS: [(&str, &str); 3] = [
        (
            "title: Sandisk Cruzer Glide 64GB",
            "title: SanDisk Cruzer Force 16GB USB",
        ),
        (
            "title: Canon PGI-72 Multipack",
            "title: canon pgi72 ink multipack; price: 55.99",
        ),
        (
            "a",
            "title: Jabra Evolve 20 UC mono USB headset; brand: Jabra",
        ),
    ];

    /// The frozen layers and the trainable ones compute what candle's BERT computes with all
    /// six layers (the pretrained weights before any training).
    #[test]
    fn frozen_and_trainable_layers_equal_candles_whole_model() {
        let model = base_model(3);
        let tokenised = model.tokenise(&PAIRS).unwrap();
        let states = model.frozen_states(&tokenised).unwrap();
        let dir = crate::minilm::find_dir(&[]).unwrap();
        let config: Config =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu).unwrap();
        let whole = BertModel::load(vb, &config).unwrap();
        let batch: Vec<usize> = (0..PAIRS.len()).collect();
        let (ids, types, mask) = padded(&tokenised, &batch, &Device::Cpu).unwrap();
        let expected = whole.forward(&ids, &types, Some(&mask)).unwrap();
        for (i, state) in states.iter().enumerate() {
            let len = tokenised[i].ids.len();
            let additive = Tensor::zeros((1, 1, 1, len), DType::F32, &Device::Cpu).unwrap();
            let mut out = state.unsqueeze(0).unwrap();
            for layer in &model.tuned {
                out = layer.forward(&out, &additive).unwrap();
            }
            let want = expected.get(i).unwrap().narrow(0, 0, len).unwrap();
            let diff = (out.squeeze(0).unwrap() - want)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-3, "pair {i}: largest difference {diff}");
        }
    }

    /// Backpropagation reaches the lowest tuned layer (candle's own BERT layer norm has no
    /// backward pass, which left every layer untrained).
    #[test]
    fn gradients_reach_the_lowest_tuned_layer() {
        let model = base_model(2);
        let states = model
            .frozen_states(&model.tokenise(&PAIRS).unwrap())
            .unwrap();
        let logits = model.logits(&states, &[0, 1, 2]).unwrap();
        let targets = Tensor::new(&[0f32, 1.0, 0.0], &Device::Cpu).unwrap();
        let grads = logistic_loss(&logits, &targets)
            .unwrap()
            .backward()
            .unwrap();
        let vars = model.tuned_vars.data().lock().unwrap();
        for name in [
            "encoder.layer.0.attention.self.query.weight",
            "encoder.layer.0.attention.output.LayerNorm.weight",
            "encoder.layer.1.output.dense.weight",
            "head.weight",
        ] {
            let var = vars
                .get(name)
                .unwrap_or_else(|| panic!("no variable {name}"));
            let grad = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"));
            let size = grad
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(size > 0.0, "zero gradient for {name}");
        }
    }

    #[test]
    fn an_explanation_names_tokens_of_both_records_without_special_ones() {
        let model = base_model(2);
        let tokens = model.explain(PAIRS[0].0, PAIRS[0].1, 6).unwrap();
        assert_eq!(tokens.len(), 6);
        assert!(
            tokens.iter().all(|t| !t.token.starts_with('[')),
            "{tokens:?}"
        );
        assert!(tokens
            .windows(2)
            .all(|w| w[0].weight.abs() >= w[1].weight.abs()));
        assert!(tokens.iter().any(|t| t.weight != 0.0));
        let all = model.explain(PAIRS[0].0, PAIRS[0].1, 100).unwrap();
        assert!(all.iter().any(|t| t.right) && all.iter().any(|t| !t.right));
        assert!(all.iter().any(|t| t.token == "64"), "{all:?}");
    }

    #[test]
    fn unknown_word_pieces_are_counted_without_special_tokens() {
        let model = base_model(1);
        let (unknown, total) = model
            .unknown_tokens(&[("apple iphone 14", "apple iphone 14")])
            .unwrap();
        assert_eq!((unknown, total), (0, 6));
        // "苹" and "机" are not in MiniLM's vocabulary; "a" is.
        let (unknown, total) = model.unknown_tokens(&[("苹 a", "机")]).unwrap();
        assert_eq!((unknown, total), (2, 3));
    }

    proptest! {
        #[test]
        fn best_f1_is_the_best_over_every_threshold(
            rows in proptest::collection::vec((0u8..20, any::<bool>()), 1..60)
        ) {
            let p: Vec<f32> = rows.iter().map(|(p, _)| f32::from(*p) / 20.0).collect();
            let y: Vec<bool> = rows.iter().map(|(_, y)| *y).collect();
            let (threshold, f1) = best_f1(&p, &y);
            let f1_at = |t: f32| {
                let tp = p.iter().zip(&y).filter(|(&p, &y)| p >= t && y).count() as f64;
                let predicted = p.iter().filter(|&&p| p >= t).count() as f64;
                let positives = y.iter().filter(|&&y| y).count() as f64;
                if predicted + positives == 0.0 { 0.0 } else { 200.0 * tp / (predicted + positives) }
            };
            let brute = p.iter().map(|&t| f1_at(t)).fold(0.0, f64::max);
            prop_assert!((f1 - brute).abs() < 1e-9, "{} vs {}", f1, brute);
            if f1 > 0.0 {
                prop_assert!((f1_at(threshold as f32) - f1).abs() < 1e-9);
            }
        }
    }
}
