//! [`DenseIndex`]: nearest products to a query vector.
//!
//! Below [`EXACT_LIMIT`] products the scan is exact: a few million multiply-adds, faster than
//! an HNSW walk's bookkeeping and never wrong. Above it, an HNSW graph (instant-distance),
//! built once per catalogue content and kept next to the lexical index, so a CLI query does
//! not rebuild it. A filtered query scans exactly the products that pass the filter: an
//! approximate walk followed by filtering can run out of results when the filter is narrow.

use std::path::Path;

use instant_distance::{Builder, HnswMap, Search};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::SearchError;

/// Products up to this many are scanned exactly.
pub const EXACT_LIMIT: usize = 50_000;

/// A unit vector as an HNSW point (cosine distance).
#[derive(Clone, Serialize, Deserialize)]
struct UnitVector(Vec<f32>);

impl instant_distance::Point for UnitVector {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(&self.0, &other.0)
    }
}

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[derive(Serialize, Deserialize)]
struct Persisted {
    digest: String,
    graph: HnswMap<UnitVector, u32>,
}

/// Either an exact scan or an HNSW graph over the documents' vectors.
pub struct DenseIndex {
    graph: Option<HnswMap<UnitVector, u32>>,
}

impl DenseIndex {
    /// The index for `vectors`; with `dir`, a graph built for the same `digest` is loaded
    /// from it and a new one saved to it.
    pub fn open(vectors: &[&[f32]], digest: &str, dir: Option<&Path>) -> Result<Self, SearchError> {
        if vectors.len() <= EXACT_LIMIT {
            return Ok(DenseIndex { graph: None });
        }
        let path = dir.map(|d| d.join("dense.bin"));
        if let Some(path) = &path {
            if let Ok(bytes) = std::fs::read(path) {
                if let Ok(p) = bincode::deserialize::<Persisted>(&bytes) {
                    if p.digest == digest {
                        return Ok(DenseIndex {
                            graph: Some(p.graph),
                        });
                    }
                }
            }
        }
        let points: Vec<UnitVector> = vectors.iter().map(|v| UnitVector(v.to_vec())).collect();
        let values: Vec<u32> = (0..vectors.len() as u32).collect();
        let graph = Builder::default()
            .seed(7)
            .ef_construction(64)
            .ef_search(128)
            .build(points, values);
        if let Some(path) = &path {
            let persisted = Persisted {
                digest: digest.to_string(),
                graph,
            };
            let bytes = bincode::serialize(&persisted).map_err(|e| {
                SearchError::Index(format!("cannot serialise the vector graph: {e}"))
            })?;
            let tmp = path.with_extension("bin.tmp");
            std::fs::write(&tmp, bytes).map_err(|e| SearchError::io(&tmp, e))?;
            std::fs::rename(&tmp, path).map_err(|e| SearchError::io(path, e))?;
            return Ok(DenseIndex {
                graph: Some(persisted.graph),
            });
        }
        Ok(DenseIndex { graph: Some(graph) })
    }

    pub fn is_exact(&self) -> bool {
        self.graph.is_none()
    }

    /// The `k` documents nearest `query` among those `allowed` keeps (all when `None`), as
    /// (document, cosine), nearest first.
    pub fn nearest(
        &self,
        vectors: &[&[f32]],
        query: &[f32],
        k: usize,
        allowed: Option<&(dyn Fn(usize) -> bool + Sync)>,
    ) -> Vec<(usize, f32)> {
        match (&self.graph, allowed) {
            (Some(graph), None) => {
                let mut search = Search::default();
                graph
                    .search(&UnitVector(query.to_vec()), &mut search)
                    .take(k)
                    .map(|item| (*item.value as usize, 1.0 - item.distance))
                    .collect()
            }
            _ => exact_nearest(vectors, query, k, allowed),
        }
    }
}

/// The exact `k` nearest by a full scan (also the bench's brute-force peer).
pub fn exact_nearest(
    vectors: &[&[f32]],
    query: &[f32],
    k: usize,
    allowed: Option<&(dyn Fn(usize) -> bool + Sync)>,
) -> Vec<(usize, f32)> {
    let mut scored: Vec<(usize, f32)> = if vectors.len() > 20_000 {
        vectors
            .par_iter()
            .enumerate()
            .filter(|(i, _)| allowed.is_none_or(|a| a(*i)))
            .map(|(i, v)| (i, dot(v, query)))
            .collect()
    } else {
        vectors
            .iter()
            .enumerate()
            .filter(|(i, _)| allowed.is_none_or(|a| a(*i)))
            .map(|(i, v)| (i, dot(v, query)))
            .collect()
    };
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    scored.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_scan_orders_by_cosine_and_respects_the_filter() {
        let v: Vec<Vec<f32>> = vec![vec![1.0, 0.0], vec![0.6, 0.8], vec![0.0, 1.0]];
        let refs: Vec<&[f32]> = v.iter().map(Vec::as_slice).collect();
        let got = exact_nearest(&refs, &[1.0, 0.0], 2, None);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [0, 1]);
        let odd = |i: usize| i != 0;
        let got = exact_nearest(&refs, &[1.0, 0.0], 5, Some(&odd));
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [1, 2]);
    }
}
