//! [`ScoringForest`]: the pair model's bagged boosters flattened for scoring millions of
//! candidate pairs.
//!
//! Why by hand: forust predicts one tree at a time over every row (a parallel pass and a
//! fresh vector per tree), with 72-byte nodes that carry training statistics. The matcher has
//! 5 bags × 300 trees, so a chunk of 65 536 candidate pairs took 1 500 passes and allocations,
//! and its node walks missed the cache; tree prediction was about a tenth of the whole resolve
//! stage. Here the nodes are 32 bytes with only what a walk reads, and rows are scored in
//! blocks that walk each tree for every row of the block while the tree and the rows are in
//! the first-level cache.
//!
//! The arithmetic is forust's, in its order: per bag, the base score plus each tree's leaf
//! weight (an `f32` widened to `f64`) in tree order, then the bags' logistic probabilities
//! averaged in bag order. So the probabilities are bit-for-bit those of forust's `predict`
//! (a test holds them equal).

use forust_ml::gradientbooster::GradientBooster;
use rayon::prelude::*;

/// Rows scored together: 64 rows of ~45 features and a tree's nodes fit the L1 cache.
const BLOCK_ROWS: usize = 64;

/// A node of a flattened tree: a split (`feature`, `value`, children), or a leaf (`weight`,
/// `feature == LEAF`).
#[derive(Debug, Clone, Copy)]
struct Node {
    value: f64,
    feature: u32,
    left: u32,
    right: u32,
    missing: u32,
    weight: f32,
}

const LEAF: u32 = u32::MAX;

/// One bag: its base score and its trees' roots in `nodes`.
#[derive(Debug, Clone)]
struct Bag {
    base_score: f64,
    roots: Vec<u32>,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ScoringForest {
    bags: Vec<Bag>,
    nodes: Vec<Node>,
}

impl ScoringForest {
    /// The boosters flattened; `None` when one treats a value other than NaN as missing
    /// (forust's default is NaN, which is all the matcher uses), so the caller keeps forust's
    /// own prediction for anything else.
    pub fn of(boosters: &[GradientBooster]) -> Option<Self> {
        let mut forest = ScoringForest {
            bags: Vec::with_capacity(boosters.len()),
            nodes: Vec::new(),
        };
        for booster in boosters {
            if !booster.missing.is_nan() {
                return None;
            }
            let used = booster.prediction_iteration.unwrap_or(booster.trees.len());
            let mut roots = Vec::with_capacity(used);
            for tree in &booster.trees[..used] {
                let offset = u32::try_from(forest.nodes.len()).ok()?;
                roots.push(offset);
                for node in &tree.nodes {
                    let at = |child: usize| u32::try_from(child).ok().map(|c| offset + c);
                    forest.nodes.push(Node {
                        value: node.split_value,
                        feature: if node.is_leaf {
                            LEAF
                        } else {
                            u32::try_from(node.split_feature).ok()?
                        },
                        left: at(node.left_child)?,
                        right: at(node.right_child)?,
                        missing: at(node.missing_node)?,
                        weight: node.weight_value,
                    });
                }
            }
            forest.bags.push(Bag {
                base_score: booster.base_score,
                roots,
            });
        }
        Some(forest)
    }

    /// Each row's match probability: the bags' logistic probabilities averaged.
    pub fn predict(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        let mut out = vec![0.0; rows.len()];
        out.par_chunks_mut(BLOCK_ROWS)
            .zip(rows.par_chunks(BLOCK_ROWS))
            .for_each(|(out, rows)| self.predict_block(rows, out));
        out
    }

    fn predict_block(&self, rows: &[Vec<f64>], out: &mut [f64]) {
        let bags = self.bags.len() as f64;
        let mut log_odds = [0.0f64; BLOCK_ROWS];
        for bag in &self.bags {
            let log_odds = &mut log_odds[..rows.len()];
            log_odds.fill(bag.base_score);
            for &root in &bag.roots {
                for (acc, row) in log_odds.iter_mut().zip(rows) {
                    *acc += f64::from(self.leaf_weight(root, row));
                }
            }
            for (p, &z) in out.iter_mut().zip(log_odds.iter()) {
                *p += 1.0 / (1.0 + (-z).exp()) / bags;
            }
        }
    }

    /// The weight of the leaf `row` reaches from `root` (forust's `Node::get_child_idx`: a NaN
    /// goes the missing way, a value below the split left, any other right).
    fn leaf_weight(&self, root: u32, row: &[f64]) -> f32 {
        let mut node = &self.nodes[root as usize];
        while node.feature != LEAF {
            let v = row[node.feature as usize];
            let next = if v.is_nan() {
                node.missing
            } else if v < node.value {
                node.left
            } else {
                node.right
            };
            node = &self.nodes[next as usize];
        }
        node.weight
    }
}

#[cfg(test)]
mod tests {
    use crate::matcher::PairModel;

    /// A xorshift stream in [0, 1).
    fn uniform(state: &mut u64) -> f64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Rows of 6 features, a tenth of the values missing (NaN); the label depends on three.
    fn rows(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<bool>) {
        let mut state = seed;
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                (0..6)
                    .map(|_| match uniform(&mut state) < 0.1 {
                        true => f64::NAN,
                        false => uniform(&mut state),
                    })
                    .collect()
            })
            .collect();
        let labels = rows
            .iter()
            .map(|r| r[0].is_nan() || r[0] + 0.5 * r[1].min(1.0) - r[2].max(0.0) * 0.3 > 0.6)
            .collect();
        (rows, labels)
    }

    #[test]
    fn the_flattened_forest_gives_forusts_probabilities_bit_for_bit() {
        let (train, y_train) = rows(3_000, 7);
        let (valid, y_valid) = rows(500, 8);
        let names = (0..6).map(|c| format!("f{c}")).collect();
        let (model, _) = PairModel::fit(&train, &y_train, &valid, &y_valid, names, 40).unwrap();
        // More rows than a block, and a last block cut short.
        let (test, _) = rows(1_000, 9);
        let flat = model.predict(&test);
        let forust = model.predict_with_forust(&test);
        assert_eq!(flat.len(), forust.len());
        for (k, (a, b)) in flat.iter().zip(&forust).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "row {k}: {a} against {b}");
        }
        // The model is not constant: the test would pass for any forest otherwise.
        assert!(flat.iter().any(|&p| p > 0.8) && flat.iter().any(|&p| p < 0.2));
    }
}
