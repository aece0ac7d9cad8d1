//! [`MemoEncoder`]: one run's texts encoded once. Training encodes the fit rows, the held-out
//! rows and (without a dev set) every row again for the refit; classifying encodes every
//! review, and the aspects encode the clauses twice (for their polarity, and for the
//! similarity fallback). The wrapper keeps each normalised text's vector for as long as it
//! lives, so each distinct text costs one encoding per run.
//!
//! Not the project's embedding cache (`embedding_cache`): review texts are many and read
//! once per run, so persisting them would grow the table for no later gain.

use std::collections::HashMap;
use std::sync::Mutex;

use shopfuse_core::{Embeddings, Encoder, EncoderError};

/// An [`Encoder`] that remembers what it encoded.
pub struct MemoEncoder<'e> {
    inner: &'e dyn Encoder,
    seen: Mutex<HashMap<String, Vec<f32>>>,
}

impl<'e> MemoEncoder<'e> {
    pub fn new(inner: &'e dyn Encoder) -> Self {
        MemoEncoder {
            inner,
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl Encoder for MemoEncoder<'_> {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn normalise(&self, text: &str) -> String {
        self.inner.normalise(text)
    }

    fn batch_hint(&self) -> usize {
        self.inner.batch_hint()
    }

    fn encode(&self, texts: &[&str]) -> Result<Embeddings, EncoderError> {
        let keys: Vec<String> = texts.iter().map(|t| self.inner.normalise(t)).collect();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut pending: std::collections::HashSet<&str> = Default::default();
        let missing: Vec<usize> = (0..keys.len())
            .filter(|&i| !seen.contains_key(&keys[i]) && pending.insert(keys[i].as_str()))
            .collect();
        if !missing.is_empty() {
            let batch: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            let vectors = self.inner.encode(&batch)?;
            for (&i, v) in missing.iter().zip(vectors.rows()) {
                seen.insert(keys[i].clone(), v.to_vec());
            }
        }
        let dim = self.inner.dim();
        let mut data = Vec::with_capacity(texts.len() * dim);
        for k in &keys {
            data.extend_from_slice(&seen[k]);
        }
        Ok(Embeddings::new(dim, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the texts it is asked to encode; a text's vector is its length.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Encoder for Counting {
        fn model_id(&self) -> &str {
            "counting"
        }
        fn dim(&self) -> usize {
            1
        }
        fn normalise(&self, text: &str) -> String {
            text.trim().to_string()
        }
        fn encode(&self, texts: &[&str]) -> Result<Embeddings, EncoderError> {
            self.0
                .fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
            Ok(Embeddings::new(
                1,
                texts.iter().map(|t| t.len() as f32).collect(),
            ))
        }
    }

    #[test]
    fn each_distinct_text_is_encoded_once_and_rows_keep_their_order() {
        let inner = Counting(Default::default());
        let memo = MemoEncoder::new(&inner);
        let a = memo.encode(&["ab", "abc", " ab"]).unwrap();
        assert_eq!(a.as_slice(), &[2.0, 3.0, 2.0]);
        let b = memo.encode(&["abc", "abcd"]).unwrap();
        assert_eq!(b.as_slice(), &[3.0, 4.0]);
        assert_eq!(inner.0.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
