//! What the propensity models learn from: each fused customer's orders and behaviour events
//! on every platform, and the platforms they hold an account on, read from a project's tables
//! (`customer_accounts`, `clean_orders`, `clean_events`).
//!
//! Customers and platforms are numbered here (`u32`, `u16`) so that a million customers'
//! histories are a few flat vectors; [`Activity::customer_ids`] and [`Activity::platforms`]
//! map the numbers back.

use std::collections::HashMap;

use shopfuse_core::value::NamedRows;

use crate::PropensityError;

pub(crate) const DAY_US: i64 = 86_400_000_000;

/// One order of a fused customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Order {
    pub customer: u32,
    pub platform: u16,
    /// Microseconds since the epoch, UTC.
    pub at: i64,
    /// In the base currency.
    pub amount: f64,
}

/// What a behaviour event was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    View,
    Favorite,
    Cart,
}

/// A behaviour event of a fused customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub customer: u32,
    pub platform: u16,
    pub at: i64,
    pub kind: EventKind,
}

/// A project's fused activity.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub orders: Vec<Order>,
    pub events: Vec<Event>,
    /// Platform names by number.
    pub platforms: Vec<String>,
    /// Unified customer ids by number.
    pub customer_ids: Vec<String>,
    /// Every (customer, platform) with an account, sorted.
    pub accounts: Vec<(u32, u16)>,
}

/// Reads some columns of a table (see [`shopfuse_core::value::ReadColumns`]).
pub type ReadTable<'a> = shopfuse_core::value::ReadColumns<'a>;

impl Activity {
    /// The latest order or event: "now" for the stage, as the customer profiles measure it.
    pub fn last_activity(&self) -> Option<i64> {
        self.orders
            .iter()
            .map(|o| o.at)
            .chain(self.events.iter().map(|e| e.at))
            .max()
    }

    /// The fused activity of a project: orders (refunds, cancellations and outliers left out) and
    /// events mapped to unified customers through `customer_accounts`.
    pub fn read(read: ReadTable<'_>) -> Result<Activity, PropensityError> {
        use shopfuse_identity::customer_accounts as ca;
        let mut activity = Activity::default();
        let accounts = required(
            read,
            ca::NAME,
            &[ca::customer_id, ca::platform, ca::account_id],
        )?;
        let mut customer_of: HashMap<(String, String), u32> = HashMap::new();
        let mut numbers: HashMap<String, u32> = HashMap::new();
        for r in &accounts.rows {
            let id = accounts.text(r, ca::customer_id).unwrap_or_default();
            let platform = accounts.text(r, ca::platform).unwrap_or_default();
            let n = *numbers.entry(id.clone()).or_insert_with(|| {
                activity.customer_ids.push(id);
                activity.customer_ids.len() as u32 - 1
            });
            let p = activity.platform_number(&platform);
            activity.accounts.push((n, p));
            customer_of.insert(
                (
                    platform,
                    accounts.text(r, ca::account_id).unwrap_or_default(),
                ),
                n,
            );
        }
        activity.accounts.sort_unstable();
        activity.accounts.dedup();
        activity.read_orders(read, &customer_of)?;
        activity.read_events(read, &customer_of)?;
        Ok(activity)
    }

    fn platform_number(&mut self, name: &str) -> u16 {
        match self.platforms.iter().position(|p| p == name) {
            Some(p) => p as u16,
            None => {
                self.platforms.push(name.to_string());
                self.platforms.len() as u16 - 1
            }
        }
    }

    fn read_orders(
        &mut self,
        read: ReadTable<'_>,
        customer_of: &HashMap<(String, String), u32>,
    ) -> Result<(), PropensityError> {
        let columns = [
            "_platform",
            "account_id",
            "ordered_at",
            "amount_base",
            "status",
            "_outlier",
        ];
        // A project without order sources has behaviour only.
        let Some(rows) = read("clean_orders", &columns)? else {
            return Ok(());
        };
        self.orders.reserve(rows.rows.len());
        for r in &rows.rows {
            // A refunded or cancelled order did not stay sold; an order clean flags as an
            // outlier (a quantity or price far off its listing's) would dominate spend.
            if rows
                .str(r, "status")
                .is_some_and(shopfuse_identity::profile::is_cancelled)
                || rows.bool(r, "_outlier") == Some(true)
            {
                continue;
            }
            let key = (
                rows.text(r, "_platform").unwrap_or_default(),
                rows.text(r, "account_id").unwrap_or_default(),
            );
            if let (Some(&customer), Some(at)) = (customer_of.get(&key), rows.i64(r, "ordered_at"))
            {
                let platform = self.platform_number(&key.0);
                self.orders.push(Order {
                    customer,
                    platform,
                    at,
                    amount: rows.f64(r, "amount_base").unwrap_or(0.0),
                });
            }
        }
        Ok(())
    }

    /// A project without behaviour data has orders only.
    fn read_events(
        &mut self,
        read: ReadTable<'_>,
        customer_of: &HashMap<(String, String), u32>,
    ) -> Result<(), PropensityError> {
        let columns = ["_platform", "account_id", "occurred_at", "event_type"];
        let Some(rows) = read("clean_events", &columns)? else {
            return Ok(());
        };
        self.events.reserve(rows.rows.len());
        for r in &rows.rows {
            let kind = match rows.str(r, "event_type") {
                Some("view") => EventKind::View,
                Some("favorite") => EventKind::Favorite,
                Some("cart") => EventKind::Cart,
                _ => continue,
            };
            let key = (
                rows.text(r, "_platform").unwrap_or_default(),
                rows.text(r, "account_id").unwrap_or_default(),
            );
            if let (Some(&customer), Some(at)) = (customer_of.get(&key), rows.i64(r, "occurred_at"))
            {
                let platform = self.platform_number(&key.0);
                self.events.push(Event {
                    customer,
                    platform,
                    at,
                    kind,
                });
            }
        }
        Ok(())
    }
}

fn required(
    read: ReadTable<'_>,
    table: &str,
    columns: &[&str],
) -> Result<NamedRows, PropensityError> {
    read(table, columns)?.ok_or(PropensityError::NoData(
        "the project has no committed customer_accounts: run `shopfuse run` first",
    ))
}

/// Each customer's orders and events, by customer number, and the platforms they have an
/// account on: the per-customer view every feature is computed from.
pub struct Histories<'a> {
    pub(crate) orders: Vec<Vec<&'a Order>>,
    pub(crate) events: Vec<Vec<&'a Event>>,
    pub(crate) accounts: Vec<Vec<u16>>,
}

impl<'a> Histories<'a> {
    pub fn new(activity: &'a Activity) -> Self {
        let n = activity.customer_ids.len().max(
            activity
                .orders
                .iter()
                .map(|o| o.customer)
                .chain(activity.events.iter().map(|e| e.customer))
                .chain(activity.accounts.iter().map(|a| a.0))
                .max()
                .map_or(0, |m| m as usize + 1),
        );
        let mut orders = vec![Vec::new(); n];
        for o in &activity.orders {
            orders[o.customer as usize].push(o);
        }
        let mut events = vec![Vec::new(); n];
        for e in &activity.events {
            events[e.customer as usize].push(e);
        }
        let mut accounts = vec![Vec::new(); n];
        for &(c, p) in &activity.accounts {
            accounts[c as usize].push(p);
        }
        Histories {
            orders,
            events,
            accounts,
        }
    }

    pub fn customers(&self) -> usize {
        self.orders.len()
    }

    /// True when the customer did anything (an order or an event) before `cutoff`.
    pub(crate) fn active_before(&self, customer: usize, cutoff: i64) -> bool {
        self.orders[customer].iter().any(|o| o.at < cutoff)
            || self.events[customer].iter().any(|e| e.at < cutoff)
    }

    /// True when the customer bought (on `platform`, or anywhere) in `[from, from + days)`.
    pub(crate) fn bought_within(
        &self,
        customer: usize,
        from: i64,
        days: i64,
        platform: Option<u16>,
    ) -> bool {
        self.orders[customer].iter().any(|o| {
            o.at >= from && o.at < from + days * DAY_US && platform.is_none_or(|p| o.platform == p)
        })
    }

    pub(crate) fn has_account(&self, customer: usize, platform: u16) -> bool {
        self.accounts[customer].contains(&platform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shopfuse_core::Value;

    fn rows(columns: &[&str], rows: Vec<Vec<Value>>) -> NamedRows {
        NamedRows {
            columns: columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.to_string(), i))
                .collect(),
            rows,
        }
    }

    #[test]
    fn refunded_and_outlier_orders_are_left_out() {
        let text = |s: &str| Value::Text(s.into());
        let accounts = rows(
            &["customer_id", "platform", "account_id"],
            vec![vec![text("CU1"), text("jd"), text("a1")]],
        );
        let order = |status: &str, outlier: bool| {
            vec![
                text("jd"),
                text("a1"),
                Value::Timestamp(1_700_000_000_000_000),
                Value::Float(10.0),
                text(status),
                Value::Bool(outlier),
            ]
        };
        let orders = rows(
            &[
                "_platform",
                "account_id",
                "ordered_at",
                "amount_base",
                "status",
                "_outlier",
            ],
            vec![
                order("paid", false),
                order("refunded", false),
                order("paid", true),
            ],
        );
        let read = |table: &str,
                    columns: &[&str]|
         -> Result<Option<NamedRows>, shopfuse_core::CoreError> {
            let source = match table {
                "customer_accounts" => &accounts,
                "clean_orders" => &orders,
                _ => return Ok(None),
            };
            // Only the columns asked for, as the store returns them.
            let picked = columns
                .iter()
                .map(|c| source.columns[*c])
                .collect::<Vec<_>>();
            Ok(Some(rows(
                columns,
                source
                    .rows
                    .iter()
                    .map(|r| picked.iter().map(|&i| r[i].clone()).collect())
                    .collect(),
            )))
        };
        let activity = Activity::read(&read).unwrap();
        assert_eq!(activity.orders.len(), 1, "{:?}", activity.orders);
    }
}
