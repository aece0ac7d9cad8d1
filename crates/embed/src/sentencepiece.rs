//! SentencePiece unigram tokenizer: reads a `.model` file, normalises with its precompiled
//! charsmap, segments with the unigram Viterbi.
//!
//! Written here rather than taken from a crate, because none fits:
//! - `sentencepiece` binds the C++ library: a cmake + C++ build in every CI run, and it merges
//!   runs of unknown pieces into one id, which the model's reference implementation (the numpy
//!   package whose vectors we must reproduce) does not do;
//! - `spm_precompiled` (the normaliser inside HF `tokenizers`) cuts the text into grapheme
//!   clusters and takes the *shortest* charsmap match per cluster, while SentencePiece's
//!   `Normalizer::NormalizePrefix` takes the *longest* match at every byte position, so the
//!   two disagree on multi-character entries;
//! - HF `tokenizers` cannot read `.model` files (it needs a converted JSON).
//!
//! The pieces that are crate-shaped are crates: `prost` decodes the protobuf model file and
//! `yada` (a darts-clone compatible double array) both reads the charsmap's trie, which *is* a
//! darts-clone array, and indexes the vocabulary for common-prefix search.

use std::path::Path;

use prost::Message;
use yada::builder::DoubleArrayBuilder;
use yada::DoubleArray;

pub const UNK_ID: u32 = 0;
pub const BOS_ID: u32 = 1;
pub const EOS_ID: u32 = 2;
/// SentencePiece's penalty for an unknown character, below the least likely piece.
const UNK_PENALTY: f64 = 10.0;
/// U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible space.
const SPACE_SYMBOL: &str = "\u{2581}";

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The model file could not be read.
    #[error("{path}: cannot read it (run scripts/fetch-models.sh to download the model)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file is not a SentencePiece unigram model this tokenizer reads.
    #[error("{path}: {message}")]
    Model { path: String, message: String },
}

// The subset of sentencepiece_model.proto we read; prost skips the other fields.
#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<PieceProto>,
    #[prost(message, optional, tag = "3")]
    normalizer_spec: Option<NormalizerSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct PieceProto {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
}

#[derive(Clone, PartialEq, Message)]
struct NormalizerSpec {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(bytes = "vec", optional, tag = "2")]
    precompiled_charsmap: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "3", default = "true")]
    add_dummy_prefix: Option<bool>,
    #[prost(bool, optional, tag = "4", default = "true")]
    remove_extra_whitespaces: Option<bool>,
    #[prost(bool, optional, tag = "5", default = "true")]
    escape_whitespaces: Option<bool>,
}

/// SentencePiece's text normaliser driven by a precompiled charsmap (e.g. `nmt_nfkc`).
pub struct Normaliser {
    /// darts-clone double array mapping input byte strings to offsets into `replacements`.
    trie: Option<DoubleArray<Vec<u8>>>,
    /// NUL-terminated replacement strings.
    replacements: Vec<u8>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
}

impl Normaliser {
    fn new(spec: &NormalizerSpec) -> Result<Self, String> {
        let (trie, replacements) = match spec.precompiled_charsmap.as_deref() {
            None | Some([]) => (None, Vec::new()),
            Some(map) => {
                if map.len() < 4 {
                    return Err("the precompiled charsmap is truncated".into());
                }
                let trie_size = u32::from_le_bytes(map[..4].try_into().unwrap()) as usize;
                if !trie_size.is_multiple_of(4) || 4 + trie_size > map.len() {
                    return Err(format!(
                        "the precompiled charsmap declares a {trie_size}-byte trie in {} bytes",
                        map.len()
                    ));
                }
                (
                    Some(DoubleArray::new(map[4..4 + trie_size].to_vec())),
                    map[4 + trie_size..].to_vec(),
                )
            }
        };
        Ok(Normaliser {
            trie,
            replacements,
            add_dummy_prefix: spec.add_dummy_prefix(),
            remove_extra_whitespaces: spec.remove_extra_whitespaces(),
            escape_whitespaces: spec.escape_whitespaces(),
        })
    }

    /// `Normalizer::NormalizePrefix`: the replacement of the longest charsmap key at the start
    /// of `rest`, or its first character unchanged; with the number of bytes consumed.
    fn normalise_prefix<'a>(&'a self, rest: &'a str) -> (&'a [u8], usize) {
        let bytes = rest.as_bytes();
        let longest = self
            .trie
            .as_ref()
            .and_then(|t| t.common_prefix_search(bytes).last());
        match longest {
            Some((value, len)) if (value as usize) < self.replacements.len() => {
                let start = value as usize;
                let end = self.replacements[start..]
                    .iter()
                    .position(|&b| b == 0)
                    .map_or(self.replacements.len(), |p| start + p);
                (&self.replacements[start..end], len)
            }
            _ => {
                let len = rest.chars().next().map_or(0, char::len_utf8);
                (&bytes[..len], len)
            }
        }
    }

    /// The normalised form of `text`, as the unigram model sees it (spaces as U+2581).
    pub fn normalise(&self, text: &str) -> String {
        let space: &[u8] = if self.escape_whitespaces {
            SPACE_SYMBOL.as_bytes()
        } else {
            b" "
        };
        let strip = self.remove_extra_whitespaces;
        let mut pos = 0;
        if strip {
            while pos < text.len() {
                let (piece, consumed) = self.normalise_prefix(&text[pos..]);
                if piece != b" " {
                    break;
                }
                pos += consumed;
            }
        }
        if pos >= text.len() {
            return String::new();
        }
        let mut out: Vec<u8> = Vec::with_capacity(text.len() + 8);
        if self.add_dummy_prefix {
            out.extend_from_slice(space);
        }
        let mut prev_is_space = strip;
        while pos < text.len() {
            let (mut piece, consumed) = self.normalise_prefix(&text[pos..]);
            pos += consumed;
            if strip && prev_is_space {
                while let [b' ', tail @ ..] = piece {
                    piece = tail;
                }
            }
            if piece.is_empty() {
                continue;
            }
            if piece.contains(&b' ') {
                for &b in piece {
                    if b == b' ' {
                        out.extend_from_slice(space);
                    } else {
                        out.push(b);
                    }
                }
                prev_is_space = piece.last() == Some(&b' ');
            } else {
                out.extend_from_slice(piece);
                prev_is_space = false;
            }
        }
        if strip {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        // Replacements are whole UTF-8 strings and the input is a &str, so the output is UTF-8.
        String::from_utf8(out).expect("normalised text is UTF-8")
    }
}

/// A SentencePiece unigram model: normaliser, vocabulary and piece scores.
pub struct UnigramTokenizer {
    normaliser: Normaliser,
    pieces: Vec<String>,
    scores: Vec<f32>,
    vocabulary: DoubleArray<Vec<u8>>,
    unk_score: f64,
}

impl UnigramTokenizer {
    pub fn open(path: &Path) -> Result<Self, TokenizerError> {
        let bytes = std::fs::read(path).map_err(|source| TokenizerError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|message| TokenizerError::Model {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let model = ModelProto::decode(bytes)
            .map_err(|e| format!("not a SentencePiece model file: {e}"))?;
        if model.pieces.is_empty() {
            return Err("the model has no pieces".into());
        }
        let normaliser = Normaliser::new(&model.normalizer_spec.unwrap_or_default())?;
        let pieces: Vec<String> = model
            .pieces
            .iter()
            .map(|p| p.piece.clone().unwrap_or_default())
            .collect();
        let scores: Vec<f32> = model.pieces.iter().map(|p| p.score()).collect();
        let min_score = scores.iter().copied().fold(f32::INFINITY, f32::min);
        // Every piece is matchable text, control symbols included: that is what the reference
        // implementation does, and reproducing its vectors is the contract.
        // Later duplicates of a piece win, as in the reference's dictionary.
        let mut keys: Vec<(&[u8], u32)> = pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty() && !p.as_bytes().contains(&0))
            .map(|(id, p)| (p.as_bytes(), id as u32))
            .collect();
        keys.sort_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
        keys.dedup_by(|later, first| later.0 == first.0);
        let vocabulary = DoubleArrayBuilder::build(&keys)
            .ok_or_else(|| "cannot index the vocabulary".to_string())?;
        Ok(UnigramTokenizer {
            normaliser,
            pieces,
            scores,
            vocabulary: DoubleArray::new(vocabulary),
            unk_score: f64::from(min_score) - UNK_PENALTY,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub fn piece(&self, id: u32) -> &str {
        &self.pieces[id as usize]
    }

    pub fn normalise(&self, text: &str) -> String {
        self.normaliser.normalise(text)
    }

    /// Piece ids of `text` between BOS and EOS; an empty normal form encodes as UNK.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let normalised = self.normaliser.normalise(text);
        let mut ids = Vec::with_capacity(normalised.len() / 2 + 3);
        ids.push(BOS_ID);
        if normalised.is_empty() {
            ids.push(UNK_ID);
        } else {
            self.viterbi(&normalised, &mut ids);
        }
        ids.push(EOS_ID);
        ids
    }

    /// The best segmentation of `text` under the unigram model, appended to `out`.
    ///
    /// All lattice nodes starting at a position share one best predecessor, so a left-to-right
    /// pass over positions replaces the lattice. Ties keep the earlier-found node (strictly
    /// greater wins), matching SentencePiece; scores are summed in f64 as the reference does.
    fn viterbi(&self, text: &str, out: &mut Vec<u32>) {
        let bytes = text.as_bytes();
        let n = bytes.len();
        let mut best = vec![f64::NEG_INFINITY; n + 1];
        let mut start_of = vec![0usize; n + 1];
        let mut piece_of = vec![UNK_ID; n + 1];
        best[0] = 0.0;
        for (i, ch) in text.char_indices() {
            let base = best[i];
            let char_len = ch.len_utf8();
            let mut has_single = false;
            for (id, len) in self.vocabulary.common_prefix_search(&bytes[i..]) {
                let end = i + len;
                let score = base + f64::from(self.scores[id as usize]);
                if score > best[end] {
                    best[end] = score;
                    start_of[end] = i;
                    piece_of[end] = id;
                }
                has_single |= len == char_len;
            }
            if !has_single {
                let end = i + char_len;
                let score = base + self.unk_score;
                if score > best[end] {
                    best[end] = score;
                    start_of[end] = i;
                    piece_of[end] = UNK_ID;
                }
            }
        }
        let first = out.len();
        let mut pos = n;
        while pos > 0 {
            out.push(piece_of[pos]);
            pos = start_of[pos];
        }
        out[first..].reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny model built in memory: no charsmap, so only whitespace handling applies.
    fn tiny() -> UnigramTokenizer {
        let pieces = [
            ("<unk>", 0.0),
            ("<s>", 0.0),
            ("</s>", 0.0),
            ("▁a", -1.0),
            ("b", -2.0),
            ("▁ab", -2.5),
            ("a", -3.0),
            ("▁", -4.0),
        ];
        let model = ModelProto {
            pieces: pieces
                .iter()
                .map(|(p, s)| PieceProto {
                    piece: Some(p.to_string()),
                    score: Some(*s),
                })
                .collect(),
            normalizer_spec: None,
        };
        UnigramTokenizer::from_bytes(&model.encode_to_vec()).unwrap()
    }

    #[test]
    fn whitespace_is_collapsed_and_escaped() {
        let t = tiny();
        assert_eq!(t.normalise("  a   b  "), "▁a▁b");
        assert_eq!(t.normalise("   "), "");
        assert_eq!(t.normalise(""), "");
    }

    #[test]
    fn viterbi_prefers_the_best_total_score() {
        let t = tiny();
        // "▁ab" (-2.5) beats "▁a" + "b" (-3.0).
        assert_eq!(t.encode("ab"), vec![BOS_ID, 5, EOS_ID]);
        // "c" is in no piece: one UNK node for it.
        assert_eq!(t.encode("ab c"), vec![BOS_ID, 5, 7, UNK_ID, EOS_ID]);
        assert_eq!(t.encode(" "), vec![BOS_ID, UNK_ID, EOS_ID]);
    }

    #[test]
    fn rejects_a_file_that_is_not_a_model() {
        assert!(UnigramTokenizer::from_bytes(b"definitely not protobuf \xff\xff").is_err());
    }
}
