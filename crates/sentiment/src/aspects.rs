//! **Aspects** of a review: it is cut into clauses (at punctuation and at contrast words —
//! "但是", "不过", "but", "however" — where the tone usually turns), and each clause is given
//! the aspects it names: by **seed words** in Chinese and English first, else by the
//! encoder's similarity of the clause to each aspect's seed phrases (so "快递小哥" or
//! "the courier" reach logistics without being listed). Each clause is classified on its
//! own, so "物流很快，但是质量太差" is positive on logistics and negative on quality.

use serde::Serialize;
use shopfuse_core::{cosine, Encoder};

use crate::model::{Polarity, SentimentModel};
use crate::ngrams::normalise;
use crate::SentimentError;

/// One aspect: its name and the seed words that name it.
pub struct Aspect {
    pub name: &'static str,
    pub seeds: &'static [&'static str],
    /// Phrases whose vectors stand for the aspect in the similarity fallback.
    pub phrases: &'static [&'static str],
}

/// The aspects the stage reports on.
pub const ASPECTS: &[Aspect] = &[
    Aspect {
        name: "quality",
        seeds: &[
            "质量",
            "品质",
            "做工",
            "用料",
            "坏了",
            "故障",
            "耐用",
            "毛病",
            "失灵",
            "quality",
            "broke",
            "broken",
            "defective",
            "durable",
            "flimsy",
            "sturdy",
            "well made",
            "stopped working",
            "works great",
            "build",
        ],
        phrases: &["质量很好", "用了几天就坏了", "build quality", "it broke"],
    },
    Aspect {
        name: "logistics",
        seeds: &[
            "物流",
            "快递",
            "发货",
            "送货",
            "到货",
            "配送",
            "shipping",
            "delivery",
            "delivered",
            "arrived",
            "shipped",
            "courier",
        ],
        phrases: &["物流很快", "快递太慢", "fast delivery", "shipping was slow"],
    },
    Aspect {
        name: "price",
        seeds: &[
            "价格",
            "性价比",
            "便宜",
            "贵",
            "划算",
            "实惠",
            "值这个价",
            "price",
            "value",
            "expensive",
            "overpriced",
            "worth",
            "money",
        ],
        phrases: &["性价比高", "太贵了", "good value", "too expensive"],
    },
    Aspect {
        name: "service",
        seeds: &[
            "客服", "售后", "服务", "态度", "卖家", "商家", "service", "seller", "support",
            "replied", "rude", "helpful",
        ],
        phrases: &["客服态度好", "售后很差", "customer service", "the seller"],
    },
    Aspect {
        name: "authenticity",
        seeds: &[
            "正品",
            "假货",
            "假的",
            "翻新",
            "山寨",
            "盗版",
            "genuine",
            "fake",
            "authentic",
            "counterfeit",
            "refurbished",
        ],
        phrases: &["是正品", "像假货", "genuine product", "a counterfeit"],
    },
    Aspect {
        name: "packaging",
        seeds: &[
            "包装",
            "盒子",
            "外盒",
            "压坏",
            "破损",
            "packaging",
            "package",
            "box",
            "packed",
            "crushed",
        ],
        phrases: &[
            "包装完好",
            "包装破损",
            "well packaged",
            "the box was damaged",
        ],
    },
    Aspect {
        name: "size_fit",
        seeds: &[
            "尺寸",
            "尺码",
            "大小",
            "偏大",
            "偏小",
            "合身",
            "size",
            "fit",
            "fits",
            "too small",
            "too large",
            "tight",
        ],
        phrases: &["尺码合适", "尺寸偏小", "fits well", "too small"],
    },
];

/// Clause cosine to an aspect's phrases above which the clause is about it.
pub const SIMILARITY_THRESHOLD: f32 = 0.55;

/// One clause of a review and what it says about one aspect.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AspectMention {
    pub review: usize,
    pub aspect: &'static str,
    pub clause: String,
    pub polarity: Polarity,
    pub p_positive: f64,
    /// `seed:WORD` or `similarity:0.62`.
    pub matched_by: String,
}

/// Clauses of a text: cut at sentence punctuation, commas and contrast words; empty and
/// one-character pieces dropped.
pub fn clauses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<String>| {
        let t = current.trim();
        if t.chars().count() > 1 {
            out.push(t.to_string());
        }
        current.clear();
    };
    for c in text.chars() {
        if matches!(
            c,
            '，' | '。' | '！' | '？' | '；' | ',' | '.' | '!' | '?' | ';' | '\n' | '、' | '~'
        ) {
            flush(&mut current, &mut out);
        } else {
            current.push(c);
        }
    }
    flush(&mut current, &mut out);
    out.into_iter().flat_map(|c| split_contrast(&c)).collect()
}

const CONTRAST: &[&str] = &["但是", "不过", "可是", "就是", " but ", " however "];

/// Contrast words that open an English clause once a comma has cut it ("…, but the box").
const LEADING_CONTRAST: &[&str] = &["but ", "however ", "though "];

fn split_contrast(clause: &str) -> Vec<String> {
    let trimmed = clause.trim_start();
    for word in LEADING_CONTRAST {
        let opens = trimmed
            .get(..word.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(word));
        if opens && trimmed.len() > word.len() {
            return split_contrast(&trimmed[word.len()..]);
        }
    }
    for word in CONTRAST {
        if let Some(at) = clause.find(word) {
            let (a, b) = (&clause[..at], &clause[at + word.len()..]);
            let mut out = split_contrast(a);
            out.extend(split_contrast(b));
            return out
                .into_iter()
                .filter(|c| c.trim().chars().count() > 1)
                .collect();
        }
    }
    vec![clause.trim().to_string()]
}

/// The aspect phrase vectors, encoded once per model use.
pub struct AspectVectors {
    vectors: Vec<Vec<Vec<f32>>>,
}

impl AspectVectors {
    pub fn new(encoder: &dyn Encoder) -> Result<AspectVectors, SentimentError> {
        let mut vectors = Vec::new();
        for aspect in ASPECTS {
            let e = encoder.encode(aspect.phrases)?;
            vectors.push(e.rows().map(<[f32]>::to_vec).collect());
        }
        Ok(AspectVectors { vectors })
    }

    /// The aspect a clause vector is nearest, when near enough.
    fn nearest(&self, v: &[f32]) -> Option<(usize, f32)> {
        self.vectors
            .iter()
            .enumerate()
            .map(|(i, phrases)| {
                let best = phrases
                    .iter()
                    .map(|p| cosine(p, v))
                    .fold(f32::MIN, f32::max);
                (i, best)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|(_, s)| *s >= SIMILARITY_THRESHOLD)
    }
}

/// Which aspects a clause names by seed word.
fn seed_matches(clause: &str) -> Vec<(usize, &'static str)> {
    let text = normalise(clause);
    // Latin seeds match whole words only ("fit" must not match "profit").
    let words: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let padded = format!(
        " {} ",
        words.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    ASPECTS
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            a.seeds
                .iter()
                .find(|s| {
                    if s.is_ascii() {
                        padded.contains(&format!(" {s} "))
                    } else {
                        text.contains(*s)
                    }
                })
                .map(|s| (i, *s))
        })
        .collect()
}

/// The aspects each clause names, with how (`seed:WORD` or `similarity:COSINE`): by seed
/// words, else — for the clauses no seed word places, encoded in one batch — by the nearest
/// aspect's phrases.
pub fn clause_aspects(
    clauses: &[&str],
    encoder: Option<&dyn Encoder>,
    vectors: Option<&AspectVectors>,
) -> Result<Vec<Vec<(&'static str, String)>>, SentimentError> {
    let mut found: Vec<Vec<(&'static str, String)>> = clauses
        .iter()
        .map(|c| {
            seed_matches(c)
                .into_iter()
                .map(|(aspect, seed)| (ASPECTS[aspect].name, format!("seed:{seed}")))
                .collect()
        })
        .collect();
    let unplaced: Vec<usize> = (0..clauses.len())
        .filter(|&k| found[k].is_empty())
        .collect();
    if let (Some(encoder), Some(vectors)) = (encoder, vectors) {
        if !unplaced.is_empty() {
            let texts: Vec<&str> = unplaced.iter().map(|&k| clauses[k]).collect();
            let e = encoder.encode(&texts)?;
            for (&k, v) in unplaced.iter().zip(e.rows()) {
                if let Some((aspect, score)) = vectors.nearest(v) {
                    found[k].push((ASPECTS[aspect].name, format!("similarity:{score:.2}")));
                }
            }
        }
    }
    Ok(found)
}

/// Every aspect mention of `texts` (review `i` is `texts[i]`).
pub fn mentions(
    texts: &[&str],
    model: &SentimentModel,
    encoder: Option<&dyn Encoder>,
    vectors: Option<&AspectVectors>,
) -> Result<Vec<AspectMention>, SentimentError> {
    let mut pieces: Vec<(usize, String)> = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        for c in clauses(t) {
            pieces.push((i, c));
        }
    }
    let refs: Vec<&str> = pieces.iter().map(|(_, c)| c.as_str()).collect();
    let predictions = model.predict(&refs, encoder)?;
    let aspects = clause_aspects(&refs, encoder, vectors)?;
    let mut out = Vec::new();
    for (((review, clause), p), found) in pieces.iter().zip(&predictions).zip(aspects) {
        for (aspect, matched_by) in found {
            out.push(AspectMention {
                review: *review,
                aspect,
                clause: clause.clone(),
                polarity: p.polarity,
                p_positive: p.p_positive,
                matched_by,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_split_at_punctuation_and_contrast() {
        assert_eq!(
            clauses("物流很快，但是质量太差了！"),
            vec!["物流很快", "质量太差了"]
        );
        assert_eq!(
            clauses("Fast shipping, but the box was crushed."),
            vec!["Fast shipping", "the box was crushed"]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_cuts_into_clauses_without_panicking(s in "\\PC{0,80}") {
            for c in clauses(&s) {
                proptest::prop_assert!(c.trim().chars().count() > 1);
            }
        }
    }

    #[test]
    fn seed_words_name_aspects_in_both_languages_and_whole_english_words() {
        let names = |c: &str| -> Vec<&str> {
            seed_matches(c)
                .iter()
                .map(|(i, _)| ASPECTS[*i].name)
                .collect()
        };
        assert_eq!(names("快递太慢"), vec!["logistics"]);
        assert_eq!(names("great value"), vec!["price"]);
        assert_eq!(names("the seller made a profit"), vec!["service"]);
        assert!(names("没有什么").is_empty());
    }
}
