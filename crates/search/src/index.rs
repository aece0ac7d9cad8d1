//! [`SearchIndex`]: the lexical (tantivy BM25) and dense (encoder vectors) indexes of one
//! catalogue, and [`SearchIndex::search`], which fuses them.
//!
//! Vocabulary:
//! - **key**: a golden id's 64-bit hash, the fast field that ties a tantivy document to a
//!   [`ProductDocument`] across incremental updates (positions shift, keys do not).
//! - **digest**: the hash of every document's content hash, in order: equal digests mean the
//!   index on disk already holds exactly the table's catalogue.
//! - **sync**: bringing the index on disk to the table's content by deleting the documents
//!   that changed or left and adding the changed and new ones — not rebuilding.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    doc, DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
};

use crate::attributes::{understand, Vocabulary};
use crate::dense::{DenseIndex, Vectors};
use crate::document::{LearnedAliases, ProductDocument};
use crate::postings::{Allowed, AttributePostings};
use crate::query::{fuse, Explanation, Facets, Mode, SearchHit, SearchRequest, SearchResults};
use crate::tokenizer::{terms, ProductTokenizer, TOKENIZER_NAME};
use crate::SearchError;

/// Candidates each side hands to the fusion.
const CANDIDATES: usize = 200;
/// Bumped when the tantivy schema or the tokenizer changes: an index of another layout is
/// rebuilt rather than read.
const LAYOUT_VERSION: u32 = 1;
/// Heap for the tantivy writer (it needs at least 15 MB per thread).
const WRITER_HEAP: usize = 64 * 1024 * 1024;

#[derive(Clone, Copy)]
struct Fields {
    golden_id: Field,
    key: Field,
    content_hash: Field,
    text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        golden_id: b.add_text_field("golden_id", STRING | STORED),
        key: b.add_u64_field("key", FAST | INDEXED),
        content_hash: b.add_text_field("content_hash", STRING | STORED),
        text: b.add_text_field("text", text),
    };
    (b.build(), fields)
}

/// A golden id's key.
pub fn key_of(golden_id: &str) -> u64 {
    let h = Sha256::digest(golden_id.as_bytes());
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
}

/// The digest of a catalogue's documents.
pub fn digest(docs: &[ProductDocument]) -> String {
    let mut h = Sha256::new();
    h.update(LAYOUT_VERSION.to_le_bytes());
    for d in docs {
        h.update(d.golden_id.as_bytes());
        h.update(d.content_hash.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// What [`SearchIndex::open`] did to the index on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    pub documents: usize,
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// True when the index on disk was already the table's catalogue.
    pub unchanged: bool,
    /// True when it was built from nothing (first run or another layout).
    pub rebuilt: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SyncedState {
    layout: u32,
    digest: String,
}

/// The search indexes of one catalogue.
pub struct SearchIndex {
    docs: Vec<ProductDocument>,
    position_of: Arc<HashMap<u64, usize>>,
    postings: AttributePostings,
    /// Every term of every document, built on first use (the assistant's product lookups).
    terms: std::sync::OnceLock<HashSet<String>>,
    reader: IndexReader,
    fields: Fields,
    dense: DenseIndex,
    vocabulary: Vocabulary,
    aliases: LearnedAliases,
}

fn register(index: &Index) {
    index.tokenizers().register(
        TOKENIZER_NAME,
        TextAnalyzer::from(ProductTokenizer::default()),
    );
}

impl SearchIndex {
    /// An index held in memory (evaluations, benches, tests).
    pub fn in_memory(
        docs: Vec<ProductDocument>,
        aliases: LearnedAliases,
    ) -> Result<Self, SearchError> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        register(&index);
        let mut writer: IndexWriter = index.writer(WRITER_HEAP)?;
        for d in &docs {
            writer.add_document(document_of(fields, d))?;
        }
        writer.commit()?;
        let digest = digest(&docs);
        Self::assemble(docs, aliases, index, fields, &digest, None)
    }

    /// The index under `dir`, first brought to `docs` (see [`SyncReport`]).
    pub fn open(
        dir: &Path,
        docs: Vec<ProductDocument>,
        aliases: LearnedAliases,
    ) -> Result<(Self, SyncReport), SearchError> {
        std::fs::create_dir_all(dir).map_err(|e| SearchError::io(dir, e))?;
        let digest = digest(&docs);
        let state_path = dir.join("synced.json");
        let state: Option<SyncedState> = std::fs::read(&state_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let lexical_dir = dir.join("lexical");
        let same_layout = state.as_ref().is_some_and(|s| s.layout == LAYOUT_VERSION);
        if !same_layout && lexical_dir.exists() {
            std::fs::remove_dir_all(&lexical_dir).map_err(|e| SearchError::io(&lexical_dir, e))?;
        }
        std::fs::create_dir_all(&lexical_dir).map_err(|e| SearchError::io(&lexical_dir, e))?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(&lexical_dir)
            .map_err(|e| SearchError::Index(format!("{}: {e}", lexical_dir.display())))?;
        let index = Index::open_or_create(directory, schema)?;
        register(&index);
        let mut report = SyncReport {
            documents: docs.len(),
            rebuilt: !same_layout,
            ..Default::default()
        };
        if state
            .as_ref()
            .is_some_and(|s| s.layout == LAYOUT_VERSION && s.digest == digest)
        {
            report.unchanged = true;
        } else {
            sync(&index, fields, &docs, &mut report)?;
            write_state(&state_path, &digest)?;
        }
        let index = Self::assemble(docs, aliases, index, fields, &digest, Some(dir))?;
        Ok((index, report))
    }

    fn assemble(
        docs: Vec<ProductDocument>,
        aliases: LearnedAliases,
        index: Index,
        fields: Fields,
        digest: &str,
        dir: Option<&Path>,
    ) -> Result<Self, SearchError> {
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let vectors: Vec<&[f32]> = docs.iter().map(|d| d.vector.as_slice()).collect();
        let dense = DenseIndex::open(&vectors, digest, dir)?;
        let vocabulary = Vocabulary::new(
            docs.iter().filter_map(|d| d.color.as_deref()),
            docs.iter().filter_map(|d| d.capacity.as_deref()),
            &aliases,
        );
        // Keys hashed once here, not per query.
        let position_of = Arc::new(
            docs.iter()
                .enumerate()
                .map(|(i, d)| (key_of(&d.golden_id), i))
                .collect(),
        );
        let postings = AttributePostings::new(&docs);
        Ok(SearchIndex {
            docs,
            position_of,
            postings,
            terms: std::sync::OnceLock::new(),
            reader,
            fields,
            dense,
            vocabulary,
            aliases,
        })
    }

    pub fn documents(&self) -> &[ProductDocument] {
        &self.docs
    }

    pub fn document(&self, golden_id: &str) -> Option<&ProductDocument> {
        self.position_of
            .get(&key_of(golden_id))
            .map(|&i| &self.docs[i])
    }

    /// Whether any document's text has `term` (an index term, as [`terms`] makes them).
    pub fn knows_term(&self, term: &str) -> bool {
        self.terms
            .get_or_init(|| {
                self.docs
                    .iter()
                    .flat_map(|d| crate::tokenizer::term_set(&d.text))
                    .collect()
            })
            .contains(term)
    }

    pub fn aliases(&self) -> &LearnedAliases {
        &self.aliases
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// Whether the dense side scans exactly (small catalogues) or walks the HNSW graph.
    pub fn dense_is_exact(&self) -> bool {
        self.dense.is_exact()
    }

    /// Ranked golden products for `request`. `query_vector` is the encoder's vector of the
    /// request's query; without it the search is lexical only.
    pub fn search(
        &self,
        request: &SearchRequest,
        query_vector: Option<&[f32]>,
    ) -> Result<SearchResults, SearchError> {
        let mut understood = if request.attributes {
            understand(&request.query, &self.vocabulary)
        } else {
            crate::attributes::Understood {
                text: request.query.clone(),
                ..Default::default()
            }
        };
        let mut notes = Vec::new();
        let mut filters = request.filters.clone();
        filters.color = filters.color.or(understood.color.clone());
        filters.capacity = filters.capacity.or(understood.capacity.clone());
        let mut allowed = self.allowed(&filters);
        if allowed.as_ref().is_some_and(|a| a.is_empty())
            && (understood.color.is_some() || understood.capacity.is_some())
        {
            // No product has every attribute the query named: search without them, and say so.
            notes.push(format!(
                "no product matches {}; the words are searched as text instead",
                understood.filter_words.join(" ")
            ));
            filters.color = request.filters.color.clone();
            filters.capacity = request.filters.capacity.clone();
            understood = crate::attributes::Understood {
                text: request.query.clone(),
                ..Default::default()
            };
            allowed = self.allowed(&filters);
        }
        let lexical = if request.mode == Mode::Dense {
            Vec::new()
        } else {
            self.lexical(&understood.text, allowed.clone())?
        };
        let dense = match (request.mode, query_vector) {
            (Mode::Lexical, _) | (_, None) => Vec::new(),
            (_, Some(q)) => self.dense_candidates(q, allowed.as_ref()),
        };
        if request.mode != Mode::Lexical && query_vector.is_none() {
            notes.push("no encoder: lexical results only".to_string());
        }
        let title = if request.mode == Mode::Hybrid && request.weights.title > 0.0 {
            self.title_ranking(&understood.text, &lexical, &dense)
        } else {
            Vec::new()
        };
        let fused = fuse(&lexical, &dense, &title, request.mode, request.weights);
        let facets = Facets::of(fused.iter().map(|f| &self.docs[f.doc]));
        let query_terms = &lexical_terms(&understood.text);
        let filter_notes = filters.describe();
        let hits = fused
            .iter()
            .take(request.limit)
            .map(|f| {
                let doc = &self.docs[f.doc];
                let doc_terms = crate::tokenizer::term_set(&doc.text);
                SearchHit::new(
                    doc,
                    f.score,
                    Explanation {
                        lexical_rank: f.lexical.map(|(rank, _)| rank + 1),
                        bm25: f.lexical.map(|(_, s)| s),
                        matched_terms: query_terms
                            .iter()
                            .filter(|t| doc_terms.contains(*t))
                            .cloned()
                            .collect(),
                        fuzzy_terms: fuzzy_matches(query_terms, &doc_terms),
                        dense_rank: f.dense.map(|(rank, _)| rank + 1),
                        cosine: f.dense.map(|(_, c)| c),
                        title_overlap: f.title.map(|(_, t)| t),
                        filters: filter_notes.clone(),
                    },
                )
            })
            .collect();
        Ok(SearchResults {
            query: request.query.clone(),
            understood,
            hits,
            facets,
            candidates: fused.len(),
            notes,
        })
    }

    /// The candidates of either list by the Jaccard overlap of `text`'s terms with their
    /// closest title's, attribute terms left out of both (the filters already decided them).
    fn title_ranking(
        &self,
        text: &str,
        lexical: &[(usize, f32)],
        dense: &[(usize, f32)],
    ) -> Vec<(usize, f32)> {
        let keep = |t: &String| !self.vocabulary.is_attribute(t);
        let query: HashSet<String> = lexical_terms(text).into_iter().filter(keep).collect();
        if query.is_empty() {
            return Vec::new();
        }
        let mut seen = HashSet::new();
        let mut out: Vec<(usize, f32)> = lexical
            .iter()
            .chain(dense)
            .filter(|(d, _)| seen.insert(*d))
            .map(|&(d, _)| {
                let doc = &self.docs[d];
                let best = doc
                    .embedding_texts()
                    .into_iter()
                    .map(|title| {
                        let t: HashSet<String> = crate::tokenizer::term_set(title)
                            .into_iter()
                            .filter(keep)
                            .collect();
                        let inter = query.intersection(&t).count();
                        inter as f32 / (query.len() + t.len() - inter).max(1) as f32
                    })
                    .fold(0.0f32, f32::max);
                (d, best)
            })
            .filter(|(_, s)| *s > 0.0)
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// The documents that pass `filters`; `None` when nothing is filtered.
    fn allowed(&self, filters: &crate::query::Filters) -> Option<Arc<Allowed>> {
        self.postings
            .allowed(filters, &self.docs, &self.aliases)
            .map(Arc::new)
    }

    /// BM25 over the terms of `text`, typo-tolerant for Latin words the index does not know,
    /// as (document position, score), best first.
    fn lexical(
        &self,
        text: &str,
        allowed: Option<Arc<Allowed>>,
    ) -> Result<Vec<(usize, f32)>, SearchError> {
        let searcher = self.reader.searcher();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in lexical_terms(text) {
            let term = Term::from_field_text(self.fields.text, &t);
            let known = searcher.doc_freq(&term)? > 0;
            if known {
                clauses.push((
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                ));
            } else if let Some(distance) = typo_distance(&t) {
                clauses.push((
                    Occur::Should,
                    Box::new(FuzzyTermQuery::new(term, distance, true)),
                ));
            }
        }
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let query = BooleanQuery::new(clauses);
        let top = TopDocs::with_limit(CANDIDATES).order_by_score();
        let found: Vec<(f32, DocAddress)> = match allowed {
            None => searcher.search(&query, &top)?,
            Some(allowed) => {
                let position_of = Arc::clone(&self.position_of);
                let keep =
                    move |key: u64| position_of.get(&key).is_some_and(|&i| allowed.contains(i));
                searcher.search(&query, &FilterCollector::new("key".to_string(), keep, top))?
            }
        };
        self.positions(&searcher, found)
    }

    fn dense_candidates(&self, query: &[f32], allowed: Option<&Arc<Allowed>>) -> Vec<(usize, f32)> {
        let allowed = allowed.map(|a| a.positions.as_slice());
        self.dense.nearest(&self.docs, query, CANDIDATES, allowed)
    }

    /// The lexical side alone for the terms of `text` with no fuzzy matching and no
    /// attribute understanding: plain BM25, the bench's peer.
    pub fn plain_bm25(&self, text: &str, limit: usize) -> Result<Vec<(usize, f32)>, SearchError> {
        let searcher = self.reader.searcher();
        let clauses: Vec<(Occur, Box<dyn Query>)> = lexical_terms(text)
            .into_iter()
            .map(|t| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.text, &t),
                    IndexRecordOption::WithFreqs,
                ));
                (Occur::Should, q)
            })
            .collect();
        let found = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(limit).order_by_score(),
        )?;
        self.positions(&searcher, found)
    }

    /// tantivy's hits as (document position, score), through each hit's key.
    fn positions(
        &self,
        searcher: &tantivy::Searcher,
        found: Vec<(f32, DocAddress)>,
    ) -> Result<Vec<(usize, f32)>, SearchError> {
        let mut out = Vec::with_capacity(found.len());
        for (score, address) in found {
            let column = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64("key")?;
            if let Some(&i) = column
                .first(address.doc_id)
                .and_then(|k| self.position_of.get(&k))
            {
                out.push((i, score));
            }
        }
        Ok(out)
    }

    /// The vectors, in document order.
    pub fn vectors(&self) -> &dyn Vectors {
        &self.docs
    }
}

impl Vectors for Vec<ProductDocument> {
    fn count(&self) -> usize {
        self.len()
    }
    fn vector(&self, position: usize) -> &[f32] {
        &self[position].vector
    }
}

/// The distinct terms of a query's text, in order.
fn lexical_terms(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    terms(text)
        .into_iter()
        .map(|t| t.text)
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// Edits a Latin word may be away from an index term: none for short words and codes (a
/// one-letter change to "s23" is another phone), one from five letters, two from nine.
fn typo_distance(term: &str) -> Option<u8> {
    if !term.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    match term.len() {
        0..=4 => None,
        5..=8 => Some(1),
        _ => Some(2),
    }
}

/// "query~doc" for each query word the document matched only approximately.
fn fuzzy_matches(query_terms: &[String], doc_terms: &HashSet<String>) -> Vec<String> {
    query_terms
        .iter()
        .filter(|t| !doc_terms.contains(*t))
        .filter_map(|t| {
            let distance = typo_distance(t)? as usize;
            doc_terms
                .iter()
                .filter(|d| strsim::damerau_levenshtein(t, d) <= distance)
                .min()
                .map(|d| format!("{t}~{d}"))
        })
        .collect()
}

fn document_of(fields: Fields, d: &ProductDocument) -> TantivyDocument {
    doc!(
        fields.golden_id => d.golden_id.as_str(),
        fields.key => key_of(&d.golden_id),
        fields.content_hash => d.content_hash.as_str(),
        fields.text => d.text.as_str(),
    )
}

/// Deletes what changed or left and adds what changed or is new.
fn sync(
    index: &Index,
    fields: Fields,
    docs: &[ProductDocument],
    report: &mut SyncReport,
) -> Result<(), SearchError> {
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let searcher = reader.searcher();
    let mut indexed: HashMap<String, String> = HashMap::new();
    for segment in searcher.segment_readers() {
        let store = segment
            .get_store_reader(64)
            .map_err(|e| SearchError::Index(format!("cannot read the stored documents: {e}")))?;
        for doc_id in segment.doc_ids_alive() {
            let d: TantivyDocument = store.get(doc_id)?;
            let text = |f: Field| {
                d.get_first(f)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            indexed.insert(text(fields.golden_id), text(fields.content_hash));
        }
    }
    let mut writer: IndexWriter = index.writer(WRITER_HEAP)?;
    let wanted: HashSet<&str> = docs.iter().map(|d| d.golden_id.as_str()).collect();
    for id in indexed
        .keys()
        .filter(|id| !wanted.contains(String::as_str(id)))
    {
        writer.delete_term(Term::from_field_text(fields.golden_id, id));
        report.removed += 1;
    }
    for d in docs {
        match indexed.get(&d.golden_id) {
            Some(hash) if *hash == d.content_hash => continue,
            Some(_) => {
                writer.delete_term(Term::from_field_text(fields.golden_id, &d.golden_id));
                report.updated += 1;
            }
            None => report.added += 1,
        }
        writer.add_document(document_of(fields, d))?;
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok(())
}

fn write_state(path: &PathBuf, digest: &str) -> Result<(), SearchError> {
    let state = SyncedState {
        layout: LAYOUT_VERSION,
        digest: digest.to_string(),
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&state).expect("state serialises"))
        .map_err(|e| SearchError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| SearchError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{document, Fields, Offer};

    fn doc(id: &str, title: &str, colour: &str, vector: [f32; 2]) -> ProductDocument {
        let mut d = document(
            id.into(),
            Fields {
                title: Some(title.into()),
                brand: None,
                category: None,
                model_code: None,
                color: Some(colour.into()),
                capacity: Some("256GB".into()),
                min_price_base: Some(100.0),
            },
            vec![Offer {
                platform: "jd".into(),
                listing_id: format!("{id}-jd"),
                title: title.into(),
                price_base: Some(100.0),
                stock: Some(1),
            }],
            &LearnedAliases::default(),
        );
        d.vector = vector.to_vec();
        d
    }

    #[test]
    fn the_index_on_disk_is_updated_not_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let a = doc("GP1", "华为 Mate 50 256G 紫色", "purple", [1.0, 0.0]);
        let b = doc("GP2", "Huawei Mate 50 256GB Black", "black", [0.0, 1.0]);
        let (_, first) = SearchIndex::open(
            dir.path(),
            vec![a.clone(), b.clone()],
            LearnedAliases::default(),
        )
        .unwrap();
        assert_eq!((first.added, first.rebuilt), (2, true));
        let (_, again) = SearchIndex::open(
            dir.path(),
            vec![a.clone(), b.clone()],
            LearnedAliases::default(),
        )
        .unwrap();
        assert!(again.unchanged);
        let mut b2 = b.clone();
        b2.stock = Some(0);
        b2.content_hash = "changed".into();
        let c = doc("GP3", "Apple iPhone 15 256GB Black", "black", [0.6, 0.8]);
        let (index, next) =
            SearchIndex::open(dir.path(), vec![b2, c], LearnedAliases::default()).unwrap();
        assert_eq!(
            (next.added, next.updated, next.removed, next.rebuilt),
            (1, 1, 1, false)
        );
        // GP1 is gone from the lexical side: "紫色" finds nothing, "black" both blacks.
        let hits = |q: &str| -> Vec<String> {
            let mut r = SearchRequest::new(q);
            r.attributes = false;
            r.mode = Mode::Lexical;
            index
                .search(&r, None)
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.golden_id)
                .collect()
        };
        assert!(hits("紫色").is_empty());
        assert_eq!(hits("black").len(), 2);
    }

    #[test]
    fn an_attribute_query_never_ranks_a_wrong_variant_first() {
        let docs = vec![
            doc("GP1", "华为 Mate 50 256G 紫色", "purple", [1.0, 0.0]),
            doc("GP2", "Huawei Mate 50 256GB Black", "black", [0.0, 1.0]),
        ];
        let index = SearchIndex::in_memory(docs, LearnedAliases::default()).unwrap();
        let r = index
            .search(&SearchRequest::new("Mate 50 黑色 256G"), Some(&[1.0, 0.0]))
            .unwrap();
        assert_eq!(r.understood.color.as_deref(), Some("black"));
        assert_eq!(r.hits.len(), 1);
        assert_eq!(r.hits[0].golden_id, "GP2");
        assert!(r.hits[0].why.filters.contains(&"color=black".to_string()));
        // A typo in a Latin word still finds it.
        let mut typo = SearchRequest::new("Huawie");
        typo.mode = Mode::Lexical;
        let found = index.search(&typo, None).unwrap();
        assert!(!found.hits.is_empty(), "{found:?}");
        assert!(!found.hits[0].why.fuzzy_terms.is_empty());
    }
}
