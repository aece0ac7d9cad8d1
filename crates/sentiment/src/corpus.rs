//! Public labelled review sets in `../shared/data/`: **ChnSentiCorp** (`train/dev/test.tsv`,
//! header `label<TAB>text_a`) and UCI's **amazon-cells** (`amazon_cells_labelled.txt`,
//! `sentence<TAB>label`, no header). Both are binary, 1 = positive.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::SentimentError;

/// A text and its binary label.
#[derive(Debug, Clone)]
pub struct LabelledText {
    pub text: String,
    pub positive: bool,
}

impl LabelledText {
    /// The text as a binary training row.
    pub fn training(&self) -> crate::model::TrainingText {
        use crate::model::Polarity;
        crate::model::TrainingText {
            text: self.text.clone(),
            label: if self.positive {
                Polarity::Positive
            } else {
                Polarity::Negative
            },
        }
    }
}

/// Which public set a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PublicSet {
    ChnSentiCorp,
    AmazonCells,
}

/// One file a model was trained or evaluated on, with its checksum (for the manifest).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DataFile {
    pub path: String,
    pub sha256: String,
    pub rows: usize,
}

/// A public set read from its directory: ChnSentiCorp's three splits, or amazon-cells' one
/// file as `train` (it has no official split; the evaluation folds it).
#[derive(Debug, Clone)]
pub struct PublicCorpus {
    pub set: PublicSet,
    pub train: Vec<LabelledText>,
    pub dev: Vec<LabelledText>,
    pub test: Vec<LabelledText>,
    pub files: Vec<DataFile>,
}

impl PublicCorpus {
    /// Reads `dir`, recognising the set by its files.
    pub fn read(dir: &Path) -> Result<PublicCorpus, SentimentError> {
        let cells = dir.join("amazon_cells_labelled.txt");
        if cells.exists() {
            let (train, file) = read_file(&cells, Layout::TextThenLabel)?;
            return Ok(PublicCorpus {
                set: PublicSet::AmazonCells,
                train,
                dev: Vec::new(),
                test: Vec::new(),
                files: vec![file],
            });
        }
        if dir.join("train.tsv").exists() {
            let mut files = Vec::new();
            let mut split = |name: &str| -> Result<Vec<LabelledText>, SentimentError> {
                let (rows, file) = read_file(&dir.join(name), Layout::LabelThenText)?;
                files.push(file);
                Ok(rows)
            };
            let (train, dev, test) = (split("train.tsv")?, split("dev.tsv")?, split("test.tsv")?);
            return Ok(PublicCorpus {
                set: PublicSet::ChnSentiCorp,
                train,
                dev,
                test,
                files,
            });
        }
        Err(SentimentError::Data {
            path: dir.to_path_buf(),
            row: None,
            message: "not a labelled review set: expected ChnSentiCorp's train.tsv/dev.tsv/test.tsv or amazon_cells_labelled.txt (see ../shared/data/*/README.md)".into(),
        })
    }
}

#[derive(Clone, Copy)]
enum Layout {
    LabelThenText,
    TextThenLabel,
}

fn read_file(path: &Path, layout: Layout) -> Result<(Vec<LabelledText>, DataFile), SentimentError> {
    let bytes = std::fs::read(path).map_err(|e| SentimentError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let data_error = |row: usize, message: String| SentimentError::Data {
        path: PathBuf::from(path),
        row: Some(row),
        message,
    };
    let content = String::from_utf8(bytes.clone())
        .map_err(|e| data_error(0, format!("not UTF-8 ({e}); convert the file to UTF-8")))?;
    let mut rows = Vec::new();
    for (i, line) in content.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() || (matches!(layout, Layout::LabelThenText) && i == 0) {
            continue;
        }
        // Quoting disabled: reviews contain `"`.
        let (label, text) = match layout {
            Layout::LabelThenText => line.split_once('\t'),
            Layout::TextThenLabel => line.rsplit_once('\t').map(|(t, l)| (l, t)),
        }
        .ok_or_else(|| data_error(line_no, "no tab between the label and the text".into()))?;
        let positive = match label.trim() {
            "1" => true,
            "0" => false,
            other => {
                return Err(data_error(
                    line_no,
                    format!("label {other:?} is not 0 or 1"),
                ))
            }
        };
        rows.push(LabelledText {
            text: text.to_string(),
            positive,
        });
    }
    let file = DataFile {
        path: path.display().to_string(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        rows: rows.len(),
    };
    Ok((rows, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_layouts_and_names_a_bad_row() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("amazon_cells_labelled.txt"),
            "Great phone\t1\nBroke \"fast\"\t0\n",
        )
        .unwrap();
        let c = PublicCorpus::read(dir.path()).unwrap();
        assert_eq!(c.set, PublicSet::AmazonCells);
        assert_eq!(c.train.len(), 2);
        assert!(c.train[0].positive && !c.train[1].positive);

        let zh = tempfile::tempdir().unwrap();
        for f in ["train.tsv", "dev.tsv"] {
            std::fs::write(zh.path().join(f), "label\ttext_a\n1\t很好\n0\t很差\n").unwrap();
        }
        std::fs::write(zh.path().join("test.tsv"), "label\ttext_a\n2\t很好\n").unwrap();
        let err = PublicCorpus::read(zh.path()).unwrap_err().to_string();
        assert!(err.contains("test.tsv") && err.contains("row 2"), "{err}");
    }
}
