//! A search request, its filters, the fusion of the two rankings and what a hit says about
//! why it matched.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::document::{LearnedAliases, Offer, ProductDocument};
use crate::SearchError;

/// Hybrid search fuses three rankings: BM25, the encoder's cosine, and the overlap of the
/// query's words with each candidate's closest title, which penalises the words a product
/// has and the query does not (a "Gen2", a "Pro") that BM25 ignores.
///
/// Reciprocal-rank fusion constant (Cormack et al. 2009's 60): a document's fused score is
/// Σ 1 / (K + rank) over the rankings it appears in.
pub const RRF_K: f32 = 60.0;

/// Which ranking a search returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Lexical,
    Dense,
    #[default]
    Hybrid,
}

impl std::str::FromStr for Mode {
    type Err = SearchError;
    fn from_str(s: &str) -> Result<Self, SearchError> {
        match s {
            "lexical" => Ok(Mode::Lexical),
            "dense" => Ok(Mode::Dense),
            "hybrid" => Ok(Mode::Hybrid),
            other => Err(SearchError::Request(format!(
                "mode {other:?}: use lexical, dense or hybrid"
            ))),
        }
    }
}

/// What every result must have. Text values compare case-insensitively with the product's
/// value or any spelling of it the project learned (brand=华为 keeps Huawei's products).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    pub brand: Option<String>,
    pub category: Option<String>,
    pub platform: Option<String>,
    pub color: Option<String>,
    pub capacity: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    #[serde(default)]
    pub in_stock: bool,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// Adds one `--filter` expression: `brand=Apple`, `category=手机`, `platform=jd`,
    /// `color=black`, `capacity=256GB`, `price=1000..5000` (either end may be left out),
    /// `price<=5000`, `price>=1000`, `in_stock`.
    pub fn add(&mut self, expression: &str) -> Result<(), SearchError> {
        let e = expression.trim();
        if e == "in_stock" || e == "in_stock=true" {
            self.in_stock = true;
            return Ok(());
        }
        let bad = |why: &str| {
            SearchError::Request(format!(
                "filter {e:?}: {why} (use brand=, category=, platform=, color=, capacity=, price=MIN..MAX, price<=MAX, price>=MIN or in_stock)"
            ))
        };
        let number = |s: &str| -> Result<Option<f64>, SearchError> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                _ => Err(bad("a price is a non-negative number")),
            }
        };
        if let Some(v) = e.strip_prefix("price<=") {
            self.max_price = number(v)?;
        } else if let Some(v) = e.strip_prefix("price>=") {
            self.min_price = number(v)?;
        } else {
            self.add_field(e, &bad, &number)?;
        }
        self.validate().map_err(|e| bad(&e.to_string()))
    }

    fn add_field(
        &mut self,
        e: &str,
        bad: &dyn Fn(&str) -> SearchError,
        number: &dyn Fn(&str) -> Result<Option<f64>, SearchError>,
    ) -> Result<(), SearchError> {
        let (key, value) = e.split_once('=').ok_or_else(|| bad("no '='"))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(bad("empty value"));
        }
        let text = Some(value.to_string());
        match key.trim() {
            "brand" => self.brand = text,
            "category" => self.category = text,
            "platform" => self.platform = text,
            "color" | "colour" => self.color = text,
            "capacity" => self.capacity = text,
            "price" => {
                let (lo, hi) = value
                    .split_once("..")
                    .ok_or_else(|| bad("price=MIN..MAX"))?;
                self.min_price = number(lo)?;
                self.max_price = number(hi)?;
            }
            _ => return Err(bad("unknown field")),
        }
        Ok(())
    }

    /// Checks what a caller may have set field by field (the API's query parameters): prices
    /// are non-negative numbers and the lowest is not above the highest. [`Self::add`] runs
    /// the same checks on each expression.
    pub fn validate(&self) -> Result<(), SearchError> {
        for (name, v) in [("min_price", self.min_price), ("max_price", self.max_price)] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(SearchError::Request(format!(
                    "{name}: a price is a non-negative number"
                )));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_price, self.max_price) {
            if lo > hi {
                return Err(SearchError::Request(
                    "the lowest price (min_price) is above the highest (max_price)".to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Whether `doc` passes every filter.
    pub fn passes(&self, doc: &ProductDocument, aliases: &LearnedAliases) -> bool {
        let text_ok = |field: &str, want: &Option<String>, have: &Option<String>| match want {
            None => true,
            Some(w) => have.as_deref().is_some_and(|h| {
                h.eq_ignore_ascii_case(w)
                    || aliases
                        .spellings(field, h)
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(w))
            }),
        };
        let price = doc.min_price_base;
        text_ok("brand", &self.brand, &doc.brand)
            && text_ok("category", &self.category, &doc.category)
            && text_ok("color", &self.color, &doc.color)
            && self.capacity.as_ref().is_none_or(|c| {
                doc.capacity
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(c))
            })
            && self
                .platform
                .as_ref()
                .is_none_or(|p| doc.platforms.iter().any(|h| h.eq_ignore_ascii_case(p)))
            && self
                .min_price
                .is_none_or(|lo| price.is_some_and(|p| p >= lo))
            && self
                .max_price
                .is_none_or(|hi| price.is_some_and(|p| p <= hi))
            && (!self.in_stock || doc.in_stock())
    }

    /// The filters as `field=value` lines for an explanation.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in [
            ("brand", &self.brand),
            ("category", &self.category),
            ("platform", &self.platform),
            ("color", &self.color),
            ("capacity", &self.capacity),
        ] {
            if let Some(v) = v {
                out.push(format!("{name}={v}"));
            }
        }
        if let Some(lo) = self.min_price {
            out.push(format!("price>={lo}"));
        }
        if let Some(hi) = self.max_price {
            out.push(format!("price<={hi}"));
        }
        if self.in_stock {
            out.push("in_stock".to_string());
        }
        out
    }
}

/// The weight of each ranking in the hybrid fusion (weighted reciprocal rank). The defaults
/// were chosen on a development project (seed 7) with `shopfuse eval search --weights`: the
/// lexical side, which carries every learned spelling of brand, category and colour, is the
/// stronger on catalogue queries (equal weights cost 0.017 MRR there), so the vectors break
/// its ties and fill in what it does not find; the title overlap did not pay on that project
/// and is off (0) unless a project's own evaluation says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FusionWeights {
    pub lexical: f32,
    pub dense: f32,
    pub title: f32,
}

impl Default for FusionWeights {
    fn default() -> Self {
        FusionWeights {
            lexical: 1.0,
            dense: 0.25,
            title: 0.0,
        }
    }
}

impl std::str::FromStr for FusionWeights {
    type Err = SearchError;
    fn from_str(s: &str) -> Result<Self, SearchError> {
        let parts: Vec<f32> = s
            .split(',')
            .map(|p| p.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                SearchError::Request(format!("weights {s:?}: three numbers, LEXICAL,DENSE,TITLE"))
            })?;
        match parts[..] {
            [lexical, dense, title] if parts.iter().all(|w| w.is_finite() && *w >= 0.0) => {
                Ok(FusionWeights {
                    lexical,
                    dense,
                    title,
                })
            }
            _ => Err(SearchError::Request(format!(
                "weights {s:?}: three non-negative numbers, LEXICAL,DENSE,TITLE"
            ))),
        }
    }
}

/// One search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    #[serde(default)]
    pub filters: Filters,
    pub limit: usize,
    #[serde(default)]
    pub mode: Mode,
    /// Whether colour and capacity words become filters.
    pub attributes: bool,
    #[serde(default)]
    pub weights: FusionWeights,
}

impl SearchRequest {
    pub fn new(query: impl Into<String>) -> Self {
        SearchRequest {
            query: query.into(),
            filters: Filters::default(),
            limit: 10,
            mode: Mode::Hybrid,
            attributes: true,
            weights: FusionWeights::default(),
        }
    }
}

/// One document of the fused list: its fused score and where each side ranked it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    pub doc: usize,
    pub score: f32,
    /// (rank from 0, BM25 score)
    pub lexical: Option<(usize, f32)>,
    /// (rank from 0, cosine)
    pub dense: Option<(usize, f32)>,
    /// (rank from 0, title overlap) among the other two lists' documents.
    pub title: Option<(usize, f32)>,
}

/// Both rankings fused by reciprocal rank (or one of them alone, by `mode`), best first; ties
/// go to the better lexical rank, then to the document order.
pub fn fuse(
    lexical: &[(usize, f32)],
    dense: &[(usize, f32)],
    title: &[(usize, f32)],
    mode: Mode,
    weights: FusionWeights,
) -> Vec<Fused> {
    let mut by_doc: BTreeMap<usize, Fused> = BTreeMap::new();
    let blank = |doc: usize| Fused {
        doc,
        score: 0.0,
        lexical: None,
        dense: None,
        title: None,
    };
    for (rank, &(doc, s)) in lexical.iter().enumerate() {
        by_doc.entry(doc).or_insert_with(|| blank(doc)).lexical = Some((rank, s));
    }
    for (rank, &(doc, c)) in dense.iter().enumerate() {
        by_doc.entry(doc).or_insert_with(|| blank(doc)).dense = Some((rank, c));
    }
    for (rank, &(doc, t)) in title.iter().enumerate() {
        if let Some(f) = by_doc.get_mut(&doc) {
            f.title = Some((rank, t));
        }
    }
    let mut out: Vec<Fused> = by_doc
        .into_values()
        .map(|mut f| {
            let rr = |r: Option<(usize, f32)>| {
                r.map_or(0.0, |(rank, _)| 1.0 / (RRF_K + rank as f32 + 1.0))
            };
            f.score = match mode {
                Mode::Lexical => f.lexical.map_or(0.0, |(_, s)| s),
                Mode::Dense => f.dense.map_or(0.0, |(_, c)| c),
                Mode::Hybrid => {
                    weights.lexical * rr(f.lexical)
                        + weights.dense * rr(f.dense)
                        + weights.title * rr(f.title)
                }
            };
            f
        })
        .filter(|f| match mode {
            Mode::Lexical => f.lexical.is_some(),
            Mode::Dense => f.dense.is_some(),
            Mode::Hybrid => true,
        })
        .collect();
    let lexical_rank = |f: &Fused| f.lexical.map_or(usize::MAX, |(r, _)| r);
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(lexical_rank(a).cmp(&lexical_rank(b)))
            .then(a.doc.cmp(&b.doc))
    });
    out
}

/// Why a product matched.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Explanation {
    /// Rank in the lexical list, from 1.
    pub lexical_rank: Option<usize>,
    pub bm25: Option<f32>,
    /// Query terms the product's text has.
    pub matched_terms: Vec<String>,
    /// Query words matched only within the typo distance, as "query~product".
    pub fuzzy_terms: Vec<String>,
    /// Rank in the dense list, from 1.
    pub dense_rank: Option<usize>,
    pub cosine: Option<f32>,
    /// Jaccard overlap of the query's words with the product's closest title (attribute
    /// words aside): what separates "Mate 50" from "Mate 50 Gen2".
    pub title_overlap: Option<f32>,
    /// The filters every result passed.
    pub filters: Vec<String>,
}

/// One ranked golden product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub golden_id: String,
    pub title: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub color: Option<String>,
    pub capacity: Option<String>,
    pub min_price_base: Option<f64>,
    pub stock: Option<i64>,
    pub score: f32,
    /// The cheapest offer of each platform.
    pub best_offers: Vec<Offer>,
    pub why: Explanation,
}

impl SearchHit {
    pub fn new(doc: &ProductDocument, score: f32, why: Explanation) -> Self {
        SearchHit {
            golden_id: doc.golden_id.clone(),
            title: doc.title.clone(),
            brand: doc.brand.clone(),
            category: doc.category.clone(),
            color: doc.color.clone(),
            capacity: doc.capacity.clone(),
            min_price_base: doc.min_price_base,
            stock: doc.stock,
            score,
            best_offers: doc.best_offers().into_iter().cloned().collect(),
            why,
        }
    }
}

/// Counts per value among every fused candidate, for narrowing a search.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Facets {
    pub brand: BTreeMap<String, usize>,
    pub category: BTreeMap<String, usize>,
    pub platform: BTreeMap<String, usize>,
    pub color: BTreeMap<String, usize>,
    pub capacity: BTreeMap<String, usize>,
}

impl Facets {
    pub fn of<'a>(docs: impl Iterator<Item = &'a ProductDocument>) -> Self {
        let mut f = Facets::default();
        let count = |m: &mut BTreeMap<String, usize>, v: &Option<String>| {
            if let Some(v) = v {
                *m.entry(v.clone()).or_insert(0) += 1;
            }
        };
        for d in docs {
            count(&mut f.brand, &d.brand);
            count(&mut f.category, &d.category);
            count(&mut f.color, &d.color);
            count(&mut f.capacity, &d.capacity);
            for p in &d.platforms {
                *f.platform.entry(p.clone()).or_insert(0) += 1;
            }
        }
        f
    }
}

/// What a search returns.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub query: String,
    /// The query as understood: the text searched and the attribute filters it named.
    pub understood: crate::attributes::Understood,
    pub hits: Vec<SearchHit>,
    pub facets: Facets,
    /// Products either side proposed (after filters), of which `hits` are the first.
    pub candidates: usize,
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_rewards_agreement() {
        let lexical = [(1, 9.0), (2, 5.0), (3, 1.0)];
        let dense = [(3, 0.9), (1, 0.8), (4, 0.7)];
        let fused = fuse(
            &lexical,
            &dense,
            &[],
            Mode::Hybrid,
            FusionWeights::default(),
        );
        assert_eq!(fused[0].doc, 1);
        assert_eq!(fused[1].doc, 3);
        assert_eq!(fused.len(), 4);
        let only = fuse(&lexical, &dense, &[], Mode::Dense, FusionWeights::default());
        assert_eq!(only.iter().map(|f| f.doc).collect::<Vec<_>>(), [3, 1, 4]);
    }

    #[test]
    fn filters_parse_and_refuse_nonsense() {
        let mut f = Filters::default();
        for e in ["brand=Apple", "price=1000..5000", "in_stock", "platform=jd"] {
            f.add(e).unwrap();
        }
        assert_eq!(f.brand.as_deref(), Some("Apple"));
        assert_eq!((f.min_price, f.max_price), (Some(1000.0), Some(5000.0)));
        assert!(f.in_stock);
        f.add("price<=800").unwrap_err();
        for bad in ["brand", "weight=3", "price=abc..", "price=-1..", "brand="] {
            assert!(Filters::default().add(bad).is_err(), "{bad}");
        }
        let mut open = Filters::default();
        open.add("price=..300").unwrap();
        assert_eq!((open.min_price, open.max_price), (None, Some(300.0)));
    }

    proptest::proptest! {
        #[test]
        fn any_filter_text_parses_or_errs_without_panicking(s in "\\PC{0,30}") {
            let _ = Filters::default().add(&s);
        }
    }
}
