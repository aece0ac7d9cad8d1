//! The extension point for sentence encoders.
//!
//! Resolution (blocking, pair features), search and content-based recommendation only need
//! "text in, unit vector out"; they take a `&dyn Encoder` so another model can be plugged in
//! without touching them. Implementations live in `shopfuse-embed`.

/// Vectors of one encoder call: `len()` rows of `dim` floats, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    dim: usize,
    data: Vec<f32>,
}

impl Embeddings {
    pub fn new(dim: usize, data: Vec<f32>) -> Self {
        assert!(dim > 0, "embedding dimension must be positive");
        assert_eq!(data.len() % dim, 0, "data is not a whole number of rows");
        Embeddings { dim, data }
    }

    pub fn zeros(rows: usize, dim: usize) -> Self {
        Embeddings::new(dim, vec![0.0; rows * dim])
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f32]> {
        self.data.chunks_exact(self.dim)
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

pub use crate::vector::cosine;

/// A cause an encoder passes on (I/O, the tensor library, the tokenizer).
pub type EncoderCause = Box<dyn std::error::Error + Send + Sync>;

/// What can stop a sentence encoder.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A model file is missing, unreadable or not the model's; `message` says which and what
    /// to do, `source` is the underlying failure where there is one.
    #[error("{path}: cannot load the model: {message}")]
    Load {
        path: std::path::PathBuf,
        message: String,
        #[source]
        source: Option<EncoderCause>,
    },
    /// A trained model's files could not be written (the directory is left as it was).
    #[error("{path}: cannot save the model")]
    Save {
        path: std::path::PathBuf,
        #[source]
        source: EncoderCause,
    },
    /// The model failed on its input.
    #[error("{model}: encoding failed")]
    Encode {
        model: String,
        #[source]
        source: EncoderCause,
    },
}

impl EncoderError {
    /// A load error with its cause.
    pub fn load(
        path: impl Into<std::path::PathBuf>,
        message: impl Into<String>,
        source: impl Into<EncoderCause>,
    ) -> Self {
        EncoderError::Load {
            path: path.into(),
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// A sentence encoder: maps texts to L2-normalised vectors of a fixed dimension.
pub trait Encoder: Send + Sync {
    /// Names the model and its version; part of every embedding-cache key, so two models (or
    /// two versions of one) never share cached vectors.
    fn model_id(&self) -> &str;

    fn dim(&self) -> usize;

    /// The text exactly as the model sees it after its own normalisation. Two texts with the
    /// same normal form get the same vector, so this is the embedding-cache key.
    fn normalise(&self, text: &str) -> String;

    /// Encodes every text independently; row `i` of the result belongs to `texts[i]`.
    fn encode(&self, texts: &[&str]) -> Result<Embeddings, EncoderError>;

    /// How many texts a caller with many should pass per `encode` call: enough to amortise
    /// the call's fixed cost (a cluster job's scheduling, for a plan-backed encoder), few
    /// enough that progress moves. In-process encoders keep the default.
    fn batch_hint(&self) -> usize {
        1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_orthogonal_and_zero_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn embeddings_rows() {
        let e = Embeddings::new(2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(e.len(), 3);
        assert_eq!(e.row(1), &[3.0, 4.0]);
        assert_eq!(e.rows().count(), 3);
    }
}
