//! Erasure: one unified customer removed from every committed table, the event log and any
//! later ingest, on request (`shopfuse erase --customer ID`, `DELETE /api/v1/customers/{id}`).
//!
//! What identifies the person's rows: the customer id, and each of its platform accounts
//! (platform + account id, as `customer_accounts` lists them). Every table file is read and
//! a row is left out when
//! - a `customer_id` column holds the customer id;
//! - an account column (`account_id`, `left_account_id`, `right_account_id`) holds one of its
//!   account ids, on that account's platform when the table says the platform
//!   (`_platform`, `platform`, `left_platform`, `right_platform`);
//! - in a table about people (one with such a column) or in a log of rejected rows
//!   (`quarantine`, `clean_removed`), a free-text column (`raw`, `message`, `detail`,
//!   `reason`, `explanation`) has the customer id or one of the account ids as a whole word.
//!
//! Why rows are matched by ids and never by a personal-data hash alone: two people can share
//! an address or a name, and erasing one must not remove the other's rows. The hashes of the
//! person's phone, e-mail, name and address live in rows keyed by their accounts, so they go
//! with those rows.
//!
//! A file that loses rows is written again without them and takes the old one's place (in
//! its table and in ingest's record of the source file, whose `rows_erased` grows so the
//! accounting still balances); the whole erasure is one commit, and the old files are
//! deleted by the store's garbage collection. The accounts are tombstoned, so ingesting the
//! same export again does not bring them back. The stages after ingest run again at the next
//! `shopfuse run` (their inputs changed), so aggregates no longer count the person either.

use std::collections::{BTreeMap, HashSet};

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use serde::Serialize;
use shopfuse_core::tombstone::Tombstones;
use shopfuse_core::value::TextColumn;
use shopfuse_core::{CoreError, Project, TableStore, Transaction};
use shopfuse_identity::customer_accounts;

use crate::PipelineError;

const ACCOUNT_COLUMNS: [(&str, &[&str]); 3] = [
    ("account_id", &["_platform", "platform"]),
    ("left_account_id", &["left_platform"]),
    ("right_account_id", &["right_platform"]),
];
const FREE_TEXT_COLUMNS: [&str; 5] = ["raw", "message", "detail", "reason", "explanation"];
const REJECTED_ROW_LOGS: [&str; 2] = ["quarantine", "clean_removed"];

/// What an erasure removed.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureReport {
    pub customer_id: String,
    /// The platform accounts tombstoned.
    pub accounts: usize,
    /// Rows removed per table.
    pub rows_removed: BTreeMap<String, u64>,
    /// Events removed from the API's event log.
    pub events_removed: u64,
    /// The version committed without the customer.
    pub version: u64,
}

/// The ids of one customer to erase.
#[derive(Debug, Clone)]
pub struct ErasedIds {
    pub customer_id: String,
    /// (platform, account id).
    pub accounts: HashSet<(String, String)>,
}

impl ErasedIds {
    /// The customer's accounts in the committed `customer_accounts`; `None` when there is no
    /// such customer.
    pub fn of_customer(
        store: &TableStore,
        customer_id: &str,
    ) -> Result<Option<ErasedIds>, PipelineError> {
        let manifest = store.manifest()?;
        let Some((_, batches)) = store.read_at(&manifest, customer_accounts::NAME)? else {
            return Ok(None);
        };
        let mut accounts = HashSet::new();
        for batch in &batches {
            let col = |name| TextColumn::of(batch, name);
            let (customers, platforms, ids) = (
                col(customer_accounts::customer_id),
                col(customer_accounts::platform),
                col(customer_accounts::account_id),
            );
            for row in (0..batch.num_rows()).filter(|&r| customers.get(r) == Some(customer_id)) {
                if let (Some(p), Some(a)) = (platforms.get(row), ids.get(row)) {
                    accounts.insert((p.to_string(), a.to_string()));
                }
            }
        }
        Ok((!accounts.is_empty()).then(|| ErasedIds {
            customer_id: customer_id.to_string(),
            accounts,
        }))
    }

    fn has_account(&self, platform: Option<&str>, account: &str) -> bool {
        match platform {
            Some(p) => self
                .accounts
                .contains(&(p.to_string(), account.to_string())),
            None => self.accounts.iter().any(|(_, a)| a == account),
        }
    }

    /// Whether `text` has the customer id or one of the account ids (of `platform`, when
    /// known) as a whole word.
    fn in_text(&self, platform: Option<&str>, text: &str) -> bool {
        text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')))
            .filter(|w| !w.is_empty())
            .any(|w| w == self.customer_id || self.has_account(platform, w))
    }
}

/// Erases `ids` from every committed table and tombstones its accounts; `erase_log` removes
/// its events from the event log (the caller owns the log's writer) and says how many.
pub fn erase_customer(
    project: &Project,
    ids: &ErasedIds,
    erase_log: impl FnOnce(&HashSet<(String, String)>) -> std::io::Result<u64>,
) -> Result<ErasureReport, PipelineError> {
    let store = TableStore::open(project)?;
    let mut tx = store.begin()?;
    let mut tombstones = Tombstones::load(project)?;
    // Tombstones first: a crash after this point leaves the tables as they were, and the
    // next erasure or ingest of the same export already leaves the person out.
    tombstones.add(
        ids.accounts.iter().map(|(p, a)| (p.as_str(), a.as_str())),
        &crate::now_rfc3339(),
    )?;
    let events_removed = erase_log(&ids.accounts).map_err(|source| CoreError::Io {
        path: shopfuse_core::event_log::event_log_dir(&project.root),
        source,
    })?;
    let mut rows_removed = BTreeMap::new();
    let tables: Vec<(String, Vec<String>)> = tx
        .next
        .tables
        .iter()
        .map(|(t, f)| (t.clone(), f.clone()))
        .collect();
    for (table, files) in tables {
        for rel in files {
            let removed = erase_in_file(&mut tx, &table, &rel, ids)?;
            if removed > 0 {
                *rows_removed.entry(table.clone()).or_insert(0) += removed;
            }
        }
    }
    let manifest = tx.commit(crate::now_rfc3339())?;
    Ok(ErasureReport {
        customer_id: ids.customer_id.clone(),
        accounts: ids.accounts.len(),
        rows_removed,
        events_removed,
        version: manifest.version,
    })
}

/// Rewrites one file without the customer's rows; returns how many it left out.
fn erase_in_file(
    tx: &mut Transaction<'_>,
    table: &str,
    rel: &str,
    ids: &ErasedIds,
) -> Result<u64, CoreError> {
    let (schema, batches) = tx.store().read_file(rel)?;
    let people_table = REJECTED_ROW_LOGS.contains(&table)
        || schema.fields().iter().any(|f| {
            f.name() == "customer_id" || ACCOUNT_COLUMNS.iter().any(|(c, _)| f.name() == c)
        });
    let mut removed = 0u64;
    let mut kept = Vec::with_capacity(batches.len());
    for batch in &batches {
        let keep = keep_mask(batch, ids, people_table);
        removed += keep.false_count() as u64;
        kept.push(filter_record_batch(batch, &keep)?);
    }
    if removed == 0 {
        return Ok(0);
    }
    let stem = rel
        .rsplit('/')
        .next()
        .and_then(|name| name.split(".v").next())
        .unwrap_or("part");
    let new = tx.write_file(table, &format!("{stem}-erased"), &schema, &kept)?;
    tx.replace_file(table, rel, new.clone());
    account_for_erased_rows(tx, table, &new, removed);
    Ok(removed)
}

/// Moves the rows left out of an ingest part (now `new_part`) from accepted — or
/// quarantined, for a quarantine part — to erased, so the source file's accounting still
/// balances. Tables no source file owns (everything after ingest) have nothing to move.
fn account_for_erased_rows(tx: &mut Transaction<'_>, table: &str, new_part: &str, removed: u64) {
    let owner = tx
        .next
        .ingested
        .values_mut()
        .flat_map(|m| m.values_mut())
        .find(|f| f.parts.iter().any(|p| p == new_part));
    if let Some(file) = owner {
        if table == "quarantine" {
            file.rows_quarantined = file.rows_quarantined.saturating_sub(removed);
        } else {
            file.rows_accepted = file.rows_accepted.saturating_sub(removed);
        }
        file.rows_erased += removed;
    }
}

/// True for the rows to keep.
fn keep_mask(batch: &RecordBatch, ids: &ErasedIds, people_table: bool) -> BooleanArray {
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .map(|_| TextColumn::of(batch, name))
    };
    let customer = text("customer_id");
    let accounts: Vec<(TextColumn<'_>, Option<TextColumn<'_>>)> = ACCOUNT_COLUMNS
        .iter()
        .filter_map(|(column, platforms)| {
            let platform = platforms.iter().find_map(|p| text(p));
            text(column).map(|c| (c, platform))
        })
        .collect();
    let free_text: Vec<TextColumn<'_>> = if people_table {
        FREE_TEXT_COLUMNS.iter().filter_map(|c| text(c)).collect()
    } else {
        Vec::new()
    };
    let row_platform = ["_platform", "platform"].iter().find_map(|p| text(p));
    (0..batch.num_rows())
        .map(|row| {
            let by_customer = customer
                .as_ref()
                .is_some_and(|c| c.get(row) == Some(ids.customer_id.as_str()));
            let by_account = accounts.iter().any(|(column, platform)| {
                column
                    .get(row)
                    .is_some_and(|a| ids.has_account(platform.as_ref().and_then(|p| p.get(row)), a))
            });
            let platform = row_platform.as_ref().and_then(|p| p.get(row));
            let in_text = free_text
                .iter()
                .any(|c| c.get(row).is_some_and(|t| ids.in_text(platform, t)));
            Some(!(by_customer || by_account || in_text))
        })
        .collect()
}
