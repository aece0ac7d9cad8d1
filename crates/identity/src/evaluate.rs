//! Customer clusters against a ground truth: pairwise and exact-cluster precision, recall
//! and F1, overall and per kind of overlap between a person's accounts (a shared phone or
//! e-mail, or only a similar name and address).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use shopfuse_core::{CoreError, TableStore};

use crate::tables::{customer_accounts, identity_links};

use shopfuse_core::metrics::{exact_cluster_scores, group_by, pair_scores, pairs_within, Scores};

/// One account as the truth sees it.
#[derive(Debug, Clone)]
pub struct TruthAccount {
    pub platform: String,
    pub account_id: String,
    pub person_id: String,
    /// How this person's accounts overlap: shared_key, fuzzy, single.
    pub overlap: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdentityEvalReport {
    pub accounts: usize,
    /// Truth accounts the project does not have (quarantined at ingest): each counts as a
    /// customer of its own.
    pub accounts_missing: usize,
    pub true_people: usize,
    pub predicted_customers: usize,
    pub pairwise: Scores,
    /// A customer counts when its accounts are exactly one person's accounts.
    pub cluster: Scores,
    /// Pairwise scores where a pair belongs to an overlap kind when either of its accounts'
    /// people has it (a wrong link between kinds counts against both).
    pub by_overlap: BTreeMap<String, Scores>,
}

/// How well blocking proposed the true pairs: the share of true account pairs among the
/// scored candidates (pair completeness) and the share of all pairs never compared
/// (reduction ratio), as `eval match` reports for products.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateScores {
    pub true_pairs: usize,
    pub true_pairs_proposed: usize,
    pub candidate_pairs: usize,
    pub pair_completeness: f64,
    pub reduction_ratio: f64,
}

/// A project's customers against a truth: the cluster scores and, from `identity_links`,
/// the candidate scores.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityEvaluation {
    #[serde(flatten)]
    pub report: IdentityEvalReport,
    pub candidates: CandidateScores,
}

type AccountKey = (String, String);

/// Reads `customer_accounts` and `identity_links` of the committed project and scores them
/// against `truth`; `None` when the identity stage has not run.
pub fn evaluate_project(
    store: &TableStore,
    truth: &[TruthAccount],
) -> Result<Option<IdentityEvaluation>, CoreError> {
    let Some(accounts) = store.read_rows(customer_accounts::NAME)? else {
        return Ok(None);
    };
    let predicted: HashMap<AccountKey, String> = accounts
        .rows
        .iter()
        .filter_map(|r| {
            let key = (
                accounts.text(r, customer_accounts::platform)?,
                accounts.text(r, customer_accounts::account_id)?,
            );
            Some((key, accounts.text(r, customer_accounts::customer_id)?))
        })
        .collect();
    let report = evaluate_identity(truth, &predicted);
    let links = store.read_rows(identity_links::NAME)?;
    let proposed: Vec<(AccountKey, AccountKey)> = links
        .iter()
        .flat_map(|l| {
            l.rows.iter().filter_map(|r| {
                let side = |platform, id| Some((l.text(r, platform)?, l.text(r, id)?));
                Some((
                    side(
                        identity_links::left_platform,
                        identity_links::left_account_id,
                    )?,
                    side(
                        identity_links::right_platform,
                        identity_links::right_account_id,
                    )?,
                ))
            })
        })
        .collect();
    let candidates = candidate_scores(truth, &proposed);
    Ok(Some(IdentityEvaluation { report, candidates }))
}

/// Pair completeness and reduction ratio of the `proposed` account pairs.
fn candidate_scores(
    truth: &[TruthAccount],
    proposed: &[(AccountKey, AccountKey)],
) -> CandidateScores {
    let index: HashMap<(&str, &str), usize> = truth
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.platform.as_str(), t.account_id.as_str()), i))
        .collect();
    let at = |(p, a): &AccountKey| index.get(&(p.as_str(), a.as_str())).copied();
    let proposed_pairs: BTreeSet<(usize, usize)> = proposed
        .iter()
        .filter_map(|(l, r)| {
            let (i, j) = (at(l)?, at(r)?);
            Some((i.min(j), i.max(j)))
        })
        .collect();
    let people = group_by(truth.len(), |i| truth[i].person_id.clone());
    let true_pairs = pairs_within(&people);
    let found = true_pairs.intersection(&proposed_pairs).count();
    let n = truth.len() as f64;
    let all_pairs = (n * (n - 1.0) / 2.0).max(1.0);
    CandidateScores {
        true_pairs: true_pairs.len(),
        true_pairs_proposed: found,
        candidate_pairs: proposed.len(),
        pair_completeness: if true_pairs.is_empty() {
            1.0
        } else {
            found as f64 / true_pairs.len() as f64
        },
        reduction_ratio: 1.0 - proposed.len() as f64 / all_pairs,
    }
}

/// `predicted` maps (platform, account_id) to a customer id.
pub fn evaluate_identity(
    truth: &[TruthAccount],
    predicted: &HashMap<(String, String), String>,
) -> IdentityEvalReport {
    let mut accounts_missing = 0;
    let predicted_of: Vec<String> = truth
        .iter()
        .map(|t| {
            predicted
                .get(&(t.platform.clone(), t.account_id.clone()))
                .cloned()
                .unwrap_or_else(|| {
                    accounts_missing += 1;
                    format!("missing:{}:{}", t.platform, t.account_id)
                })
        })
        .collect();
    let people = group_by(truth.len(), |i| truth[i].person_id.clone());
    let customers = group_by(truth.len(), |i| predicted_of[i].clone());
    let (true_pairs, predicted_pairs) = (pairs_within(&people), pairs_within(&customers));
    let score = |keep: &dyn Fn(&(usize, usize)) -> bool| {
        let kept = |pairs: &BTreeSet<(usize, usize)>| -> BTreeSet<(usize, usize)> {
            pairs.iter().filter(|p| keep(p)).copied().collect()
        };
        pair_scores(&kept(&true_pairs), &kept(&predicted_pairs))
    };
    let pairwise = score(&|_| true);
    let kinds: BTreeSet<&str> = truth.iter().map(|t| t.overlap.as_str()).collect();
    let by_overlap = kinds
        .into_iter()
        .filter(|k| *k != "single")
        .map(|k| {
            (
                k.to_string(),
                score(&|&(a, b)| truth[a].overlap == k || truth[b].overlap == k),
            )
        })
        .collect();
    IdentityEvalReport {
        accounts: truth.len(),
        accounts_missing,
        true_people: people.len(),
        predicted_customers: customers.len(),
        pairwise,
        cluster: exact_cluster_scores(&people, &customers),
        by_overlap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(platform: &str, id: &str, person: &str, overlap: &str) -> TruthAccount {
        TruthAccount {
            platform: platform.into(),
            account_id: id.into(),
            person_id: person.into(),
            overlap: overlap.into(),
        }
    }

    #[test]
    fn scores_split_by_overlap_kind() {
        let truth = vec![
            t("tb", "a", "P1", "shared_key"),
            t("jd", "b", "P1", "shared_key"),
            t("tb", "c", "P2", "fuzzy"),
            t("jd", "d", "P2", "fuzzy"),
            t("tb", "e", "P3", "single"),
        ];
        let predicted: HashMap<(String, String), String> = [
            (("tb", "a"), "X"),
            (("jd", "b"), "X"),
            (("tb", "c"), "Y"),
            (("jd", "d"), "Z"),
        ]
        .into_iter()
        .map(|((p, a), c)| ((p.to_string(), a.to_string()), c.to_string()))
        .collect();
        let r = evaluate_identity(&truth, &predicted);
        assert_eq!(r.accounts_missing, 1);
        assert_eq!(r.pairwise.true_positives, 1);
        assert_eq!(r.pairwise.false_negatives, 1);
        assert_eq!(r.by_overlap["shared_key"].f1, 1.0);
        assert_eq!(r.by_overlap["fuzzy"].recall, 0.0);
        assert_eq!(r.cluster.true_positives, 2); // P1 and the single P3
    }
}
