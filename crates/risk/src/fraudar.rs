//! FRAUDAR (Hooi et al., "FRAUDAR: Bounding Graph Fraud in the Face of Camouflage", KDD 2016):
//! the densest block of a bipartite graph by greedy peeling.
//!
//! Vocabulary: **rows** are the actors (accounts or customers), **columns** what they touch
//! (listings, devices, IPs, addresses). An edge weighs its column's weight `1 / ln(degree + 5)`,
//! so an edge to a popular listing counts little: fraudsters who add **camouflage** edges to
//! popular items do not hide their block, and honest buyers of a bestseller do not form one.
//! The **density** of a set of rows and columns is the weight of the edges inside it divided
//! by the number of rows and columns. Peeling removes, one at a time, the row or column whose
//! removal loses the least weight; the densest prefix state seen is the block, and FRAUDAR
//! proves it at least half as dense as the densest block there is.
//!
//! Written here rather than taken from a crate: no Rust crate implements it, and the peel is
//! fifty lines over a CSR graph with a lazy binary heap (`O(E log E)` per block).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A bipartite graph in compressed sparse rows, with the transpose kept for column peeling.
/// Parallel edges are merged: FRAUDAR reads adjacency, not multiplicity.
#[derive(Debug, Clone)]
pub struct Bipartite {
    pub rows: usize,
    pub cols: usize,
    row_start: Vec<usize>,
    edge_col: Vec<u32>,
    col_start: Vec<usize>,
    /// Edge ids (indices into `edge_col`) per column.
    col_edges: Vec<u32>,
    edge_row: Vec<u32>,
}

impl Bipartite {
    /// Builds the graph from `(row, col)` pairs; duplicates are merged.
    pub fn from_edges(rows: usize, cols: usize, edges: &[(u32, u32)]) -> Self {
        let mut sorted: Vec<(u32, u32)> = edges.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut row_start = vec![0usize; rows + 1];
        for &(r, _) in &sorted {
            row_start[r as usize + 1] += 1;
        }
        for i in 0..rows {
            row_start[i + 1] += row_start[i];
        }
        let edge_col: Vec<u32> = sorted.iter().map(|&(_, c)| c).collect();
        let edge_row: Vec<u32> = sorted.iter().map(|&(r, _)| r).collect();
        let mut col_start = vec![0usize; cols + 1];
        for &c in &edge_col {
            col_start[c as usize + 1] += 1;
        }
        for i in 0..cols {
            col_start[i + 1] += col_start[i];
        }
        let mut fill = col_start.clone();
        let mut col_edges = vec![0u32; edge_col.len()];
        for (e, &c) in edge_col.iter().enumerate() {
            col_edges[fill[c as usize]] = e as u32;
            fill[c as usize] += 1;
        }
        Self {
            rows,
            cols,
            row_start,
            edge_col,
            col_start,
            col_edges,
            edge_row,
        }
    }

    pub fn edges(&self) -> usize {
        self.edge_col.len()
    }

    /// The columns of a row.
    pub fn row_cols(&self, row: usize) -> &[u32] {
        &self.edge_col[self.row_start[row]..self.row_start[row + 1]]
    }

    pub fn col_degree(&self, col: usize) -> usize {
        self.col_start[col + 1] - self.col_start[col]
    }

    /// FRAUDAR's logarithmic column weights, `1 / ln(degree + 5)`.
    pub fn log_column_weights(&self) -> Vec<f64> {
        (0..self.cols)
            .map(|c| 1.0 / ((self.col_degree(c) as f64) + 5.0).ln())
            .collect()
    }
}

/// A dense block: its rows, its columns and its density.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub rows: Vec<u32>,
    pub cols: Vec<u32>,
    pub density: f64,
}

/// The result of one peel: the order nodes left in (rows as `row`, columns as `rows + col`)
/// and the densest state.
#[derive(Debug, Clone)]
pub struct Peel {
    /// Nodes in the order they were peeled; the block is what is left after the first
    /// `best_removed`.
    pub order: Vec<u32>,
    pub best_removed: usize,
    pub best_density: f64,
}

#[derive(PartialEq)]
struct Entry(f64, u32);

impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed so that `BinaryHeap` pops the smallest value; ties by node for determinism.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}

/// Peels the graph's live edges (`alive[e]`) with column weights `weights`.
// An edge id indexes two parallel arrays (`alive`, `edge_col`): a range reads plainer than zips.
#[allow(clippy::needless_range_loop)]
pub fn peel(graph: &Bipartite, weights: &[f64], alive: &[bool]) -> Peel {
    let rows = graph.rows;
    let mut value = vec![0.0f64; rows + graph.cols];
    let mut present = vec![false; rows + graph.cols];
    let mut total = 0.0;
    for r in 0..rows {
        for e in graph.row_start[r]..graph.row_start[r + 1] {
            if alive[e] {
                let c = graph.edge_col[e] as usize;
                value[r] += weights[c];
                value[rows + c] += weights[c];
                total += weights[c];
                present[r] = true;
                present[rows + c] = true;
            }
        }
    }
    let mut left = present.iter().filter(|&&p| p).count();
    let mut heap: BinaryHeap<Entry> = (0..value.len())
        .filter(|&i| present[i])
        .map(|i| Entry(value[i], i as u32))
        .collect();
    let mut best_density = if left > 0 { total / left as f64 } else { 0.0 };
    let mut best_removed = 0;
    let mut order = Vec::with_capacity(left);
    while let Some(Entry(v, node)) = heap.pop() {
        let n = node as usize;
        if !present[n] || v.to_bits() != value[n].to_bits() {
            continue;
        }
        present[n] = false;
        total -= value[n];
        left -= 1;
        order.push(node);
        if n < rows {
            for e in graph.row_start[n]..graph.row_start[n + 1] {
                let c = graph.edge_col[e] as usize;
                if alive[e] && present[rows + c] {
                    value[rows + c] -= weights[c];
                    heap.push(Entry(value[rows + c], (rows + c) as u32));
                }
            }
        } else {
            let c = n - rows;
            for &e in &graph.col_edges[graph.col_start[c]..graph.col_start[c + 1]] {
                let r = graph.edge_row[e as usize] as usize;
                if alive[e as usize] && present[r] {
                    value[r] -= weights[c];
                    heap.push(Entry(value[r], r as u32));
                }
            }
        }
        if left > 0 {
            let density = total / left as f64;
            if density > best_density {
                best_density = density;
                best_removed = order.len();
            }
        }
    }
    Peel {
        order,
        best_removed,
        best_density,
    }
}

impl Peel {
    /// The densest block: the nodes peeled after the best state.
    pub fn block(&self, rows: usize) -> Block {
        let mut block = Block {
            rows: Vec::new(),
            cols: Vec::new(),
            density: self.best_density,
        };
        for &node in &self.order[self.best_removed..] {
            let n = node as usize;
            if n < rows {
                block.rows.push(node);
            } else {
                block.cols.push((n - rows) as u32);
            }
        }
        block.rows.sort_unstable();
        block.cols.sort_unstable();
        block
    }
}

/// What makes a block worth reporting.
#[derive(Debug, Clone, Copy)]
pub struct BlockLimits {
    pub max_blocks: usize,
    /// A block with fewer rows ends the search.
    pub min_rows: usize,
    /// A block less dense than this ends the search.
    pub min_density: f64,
}

/// Up to `max_blocks` dense blocks, each found after the edges of the ones before are
/// removed (FRAUDAR's `detectMultiple`); stops early at a block below the limits.
pub fn dense_blocks(graph: &Bipartite, weights: &[f64], limits: BlockLimits) -> Vec<Block> {
    let mut alive = vec![true; graph.edges()];
    let mut blocks = Vec::new();
    let mut in_rows = vec![false; graph.rows];
    let mut in_cols = vec![false; graph.cols];
    for _ in 0..limits.max_blocks {
        let block = peel(graph, weights, &alive).block(graph.rows);
        if block.rows.len() < limits.min_rows.max(1)
            || block.cols.is_empty()
            || block.density < limits.min_density
        {
            break;
        }
        for &r in &block.rows {
            in_rows[r as usize] = true;
        }
        for &c in &block.cols {
            in_cols[c as usize] = true;
        }
        for r in &block.rows {
            let r = *r as usize;
            for e in graph.row_start[r]..graph.row_start[r + 1] {
                if in_cols[graph.edge_col[e] as usize] {
                    alive[e] = false;
                }
            }
        }
        for &r in &block.rows {
            in_rows[r as usize] = false;
        }
        for &c in &block.cols {
            in_cols[c as usize] = false;
        }
        blocks.push(block);
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A sparse random graph with a planted 20×10 full block in rows 0..20, columns 0..10.
    fn planted(seed: u64, camouflage: bool) -> Bipartite {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (rows, cols) = (1_000u32, 300u32);
        let mut edges = Vec::new();
        for r in 0..rows {
            for _ in 0..3 {
                edges.push((r, rng.random_range(0..cols)));
            }
        }
        for r in 0..20 {
            for c in 0..10 {
                edges.push((r, c));
            }
            if camouflage {
                // As many edges again to the most popular columns (biased camouflage).
                for c in 290..300 {
                    edges.push((r, c));
                }
            }
        }
        if camouflage {
            for r in 20..rows {
                if rng.random_bool(0.3) {
                    edges.push((r, rng.random_range(290..cols)));
                }
            }
        }
        Bipartite::from_edges(rows as usize, cols as usize, &edges)
    }

    #[test]
    fn finds_a_planted_block() {
        let g = planted(1, false);
        let block = peel(&g, &g.log_column_weights(), &vec![true; g.edges()]).block(g.rows);
        assert_eq!(block.rows, (0..20).collect::<Vec<u32>>());
        assert_eq!(block.cols, (0..10).collect::<Vec<u32>>());
    }

    #[test]
    fn finds_it_under_camouflage() {
        let g = planted(2, true);
        let block = peel(&g, &g.log_column_weights(), &vec![true; g.edges()]).block(g.rows);
        let fraud_rows = block.rows.iter().filter(|&&r| r < 20).count();
        assert_eq!(fraud_rows, 20, "{block:?}");
        assert!(block.rows.len() <= 22, "{block:?}");
    }

    #[test]
    fn density_is_the_weight_per_node() {
        // Two rows both joined to two columns of degree 2: 4 edges of 1/ln 7 over 4 nodes.
        let g = Bipartite::from_edges(2, 2, &[(0, 0), (0, 1), (1, 0), (1, 1), (1, 1)]);
        assert_eq!(g.edges(), 4);
        let peel = peel(&g, &g.log_column_weights(), &[true; 4]);
        assert!((peel.best_density - 1.0 / 7f64.ln()).abs() < 1e-12);
        assert_eq!(peel.best_removed, 0);
    }

    #[test]
    fn later_blocks_are_found_once_the_first_is_removed() {
        let mut edges = Vec::new();
        for r in 0..6 {
            for c in 0..3 {
                edges.push((r, c));
            }
        }
        // Less dense than the first (5 × 2), so the union of both is denser than neither.
        for r in 10..15 {
            for c in 5..7 {
                edges.push((r, c));
            }
        }
        for r in 20..60 {
            edges.push((r, 9 + r % 7));
        }
        let g = Bipartite::from_edges(60, 20, &edges);
        let limits = BlockLimits {
            max_blocks: 5,
            min_rows: 3,
            min_density: 0.5,
        };
        let blocks = dense_blocks(&g, &g.log_column_weights(), limits);
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert_eq!(blocks[0].rows, (0..6).collect::<Vec<u32>>());
        assert_eq!(blocks[1].rows, (10..15).collect::<Vec<u32>>());
    }
}
