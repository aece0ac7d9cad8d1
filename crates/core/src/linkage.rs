//! The bookkeeping of agglomerative clustering that product and customer resolution share:
//! groups of item positions, the group of each item, and the merges that built each group.
//! What may merge (cannot-links, average-link rules) stays with each caller.

use std::collections::BTreeMap;

/// Groups of items, each with the merges that built it.
pub struct Clustering {
    pub members: Vec<Vec<usize>>,
    pub cluster_of: Vec<usize>,
    /// Per group: "a ~ b: p=0.97 …" steps in merge order.
    pub steps: Vec<Vec<String>>,
    /// Per group: the lowest probability among its scored internal pairs.
    pub cohesion: Vec<Option<f64>>,
    /// Merges refused, by reason.
    pub refused: BTreeMap<String, usize>,
}

/// Groups while they are being merged.
pub struct Merges {
    members: Vec<Vec<usize>>,
    owner: Vec<usize>,
    steps: Vec<Vec<String>>,
    refused: BTreeMap<String, usize>,
}

impl Merges {
    /// Every item a group of its own.
    pub fn singletons(n: usize) -> Self {
        Self {
            members: (0..n).map(|i| vec![i]).collect(),
            owner: (0..n).collect(),
            steps: vec![Vec::new(); n],
            refused: BTreeMap::new(),
        }
    }

    pub fn group_of(&self, item: usize) -> usize {
        self.owner[item]
    }

    pub fn members(&self, group: usize) -> &[usize] {
        &self.members[group]
    }

    pub fn refuse(&mut self, reason: &str) {
        *self.refused.entry(reason.to_string()).or_default() += 1;
    }

    /// Moves `gone`'s items and steps into `keep`, then records `step`.
    pub fn merge(&mut self, keep: usize, gone: usize, step: String) {
        let moved = std::mem::take(&mut self.members[gone]);
        for &x in &moved {
            self.owner[x] = keep;
        }
        self.members[keep].extend(moved);
        let mut gone_steps = std::mem::take(&mut self.steps[gone]);
        self.steps[keep].append(&mut gone_steps);
        self.steps[keep].push(step);
    }

    /// Groups numbered by their first item, items in order (deterministic), with each
    /// group's lowest `pair_score` over its internal pairs.
    pub fn finish(self, pair_score: impl Fn(usize, usize) -> Option<f64>) -> Clustering {
        let n = self.owner.len();
        let mut groups: Vec<(Vec<usize>, Vec<String>)> = self
            .members
            .into_iter()
            .zip(self.steps)
            .filter(|(m, _)| !m.is_empty())
            .map(|(mut m, s)| {
                m.sort_unstable();
                (m, s)
            })
            .collect();
        groups.sort_by_key(|(m, _)| m[0]);
        let mut cluster_of = vec![0; n];
        let mut cohesion = Vec::with_capacity(groups.len());
        for (c, (m, _)) in groups.iter().enumerate() {
            let mut lowest: Option<f64> = None;
            for (k, &x) in m.iter().enumerate() {
                cluster_of[x] = c;
                for &y in &m[k + 1..] {
                    if let Some(p) = pair_score(x.min(y), x.max(y)) {
                        lowest = Some(lowest.map_or(p, |l: f64| l.min(p)));
                    }
                }
            }
            cohesion.push(lowest);
        }
        let (members, steps) = groups.into_iter().unzip();
        Clustering {
            members,
            cluster_of,
            steps,
            cohesion,
            refused: self.refused,
        }
    }
}
