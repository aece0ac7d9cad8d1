//! The canonical schema every platform's export is mapped onto.
//!
//! One table per entity kind. Field names are the contract between stages: ingest writes them,
//! clean and later stages read them, users query them with SQL.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// What a source file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Products,
    Orders,
    Events,
    Reviews,
    Customers,
}

impl EntityKind {
    pub const ALL: [EntityKind; 5] = [
        EntityKind::Products,
        EntityKind::Orders,
        EntityKind::Events,
        EntityKind::Reviews,
        EntityKind::Customers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Products => "products",
            EntityKind::Orders => "orders",
            EntityKind::Events => "events",
            EntityKind::Reviews => "reviews",
            EntityKind::Customers => "customers",
        }
    }

    /// Table of accepted rows as parsed at ingest.
    pub fn raw_table(self) -> String {
        format!("raw_{}", self.as_str())
    }

    /// Table of normalised, de-duplicated, outlier-flagged rows.
    pub fn clean_table(self) -> String {
        format!("clean_{}", self.as_str())
    }

    pub fn fields(self) -> &'static [CanonicalField] {
        match self {
            EntityKind::Products => PRODUCT_FIELDS,
            EntityKind::Orders => ORDER_FIELDS,
            EntityKind::Events => EVENT_FIELDS,
            EntityKind::Reviews => REVIEW_FIELDS,
            EntityKind::Customers => CUSTOMER_FIELDS,
        }
    }

    pub fn field(self, name: &str) -> Option<&'static CanonicalField> {
        self.fields().iter().find(|f| f.name == name)
    }

    pub fn field_index(self, name: &str) -> Option<usize> {
        self.fields().iter().position(|f| f.name == name)
    }

    /// The field that identifies one record within a source, if the kind has one.
    /// Two rows of one source with the same key are the same record exported twice.
    pub fn key_field(self) -> Option<&'static str> {
        match self {
            EntityKind::Products => Some("listing_id"),
            EntityKind::Orders => Some("order_id"),
            EntityKind::Events => None,
            EntityKind::Reviews => Some("review_id"),
            EntityKind::Customers => Some("account_id"),
        }
    }

    /// The field that orders records in time, used for interpolation and recency.
    pub fn time_field(self) -> Option<&'static str> {
        match self {
            EntityKind::Products => Some("listed_at"),
            EntityKind::Orders => Some("ordered_at"),
            EntityKind::Events => Some("occurred_at"),
            EntityKind::Reviews => Some("reviewed_at"),
            EntityKind::Customers => Some("registered_at"),
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntityKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s || k.as_str().trim_end_matches('s') == s)
            .ok_or_else(|| {
                format!("unknown entity kind {s:?}; expected one of products, orders, events, reviews, customers")
            })
    }
}

/// How a canonical field's text is parsed at ingest and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Integer,
    Decimal,
    /// An amount of money; its currency goes to the kind's `currency` field.
    Price,
    /// ISO 4217 code.
    Currency,
    Timestamp,
    /// view / cart / purchase / favorite.
    EventType,
    /// A 1–5 star rating.
    Rating,
}

impl FieldType {
    pub fn arrow_type(self) -> DataType {
        match self {
            FieldType::Text | FieldType::Currency | FieldType::EventType => DataType::Utf8,
            FieldType::Integer => DataType::Int64,
            FieldType::Decimal | FieldType::Price | FieldType::Rating => DataType::Float64,
            FieldType::Timestamp => timestamp_type(),
        }
    }
}

/// Every timestamp in shopfuse is stored in UTC with microsecond precision.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Personal data that must never be stored in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Name,
    Phone,
    Email,
    Address,
    /// A field the project's `[privacy] pii` list marks as personal.
    Marked,
}

/// A matching feature computed at ingest from a personal field's clear text, so that
/// identity resolution can compare fragments without the text ever being stored: each
/// fragment is a keyed hash, several are separated by spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiFeature {
    /// Surname and given-name (or whitespace-separated) tokens of a name.
    NameTokens,
    /// The last four digits of a phone, which survive masking ("138****8000").
    PhoneTail,
    /// The mailbox part of an e-mail, which people reuse across providers.
    EmailUser,
    /// District (区/县) of an address.
    AddressArea,
    /// District and road (路/街/道).
    AddressStreet,
    /// District, road and house number (号): one building.
    AddressHouse,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CanonicalField {
    pub name: &'static str,
    pub ty: FieldType,
    pub required: bool,
    /// Set for fields that are pseudonymised at ingest.
    pub pii: Option<PiiKind>,
    /// Set for fields no source column feeds: computed at ingest from the clear text of
    /// another field of the row.
    pub derived: Option<(&'static str, PiiFeature)>,
}

const fn f(name: &'static str, ty: FieldType, required: bool) -> CanonicalField {
    CanonicalField {
        name,
        ty,
        required,
        pii: None,
        derived: None,
    }
}

const fn pii(name: &'static str, kind: PiiKind) -> CanonicalField {
    CanonicalField {
        name,
        ty: FieldType::Text,
        required: false,
        pii: Some(kind),
        derived: None,
    }
}

const fn derived(name: &'static str, from: &'static str, feature: PiiFeature) -> CanonicalField {
    CanonicalField {
        name,
        ty: FieldType::Text,
        required: false,
        pii: None,
        derived: Some((from, feature)),
    }
}

use FieldType::*;

pub const PRODUCT_FIELDS: &[CanonicalField] = &[
    f("listing_id", Text, true),
    f("title", Text, true),
    f("brand", Text, false),
    f("category", Text, false),
    f("price", Price, false),
    f("currency", Currency, false),
    f("model_code", Text, false),
    f("gtin", Text, false),
    f("color", Text, false),
    f("capacity", Text, false),
    f("url", Text, false),
    f("stock", Integer, false),
    f("listed_at", Timestamp, false),
];

pub const ORDER_FIELDS: &[CanonicalField] = &[
    f("order_id", Text, true),
    f("account_id", Text, true),
    f("listing_id", Text, true),
    f("quantity", Integer, false),
    f("unit_price", Price, true),
    f("currency", Currency, false),
    f("ordered_at", Timestamp, true),
    f("status", Text, false),
    pii("phone", PiiKind::Phone),
    pii("address", PiiKind::Address),
    f("city", Text, false),
    f("ip", Text, false),
    f("device_id", Text, false),
    f("payment_method", Text, false),
];

pub const EVENT_FIELDS: &[CanonicalField] = &[
    f("account_id", Text, true),
    f("listing_id", Text, true),
    f("event_type", EventType, true),
    f("occurred_at", Timestamp, true),
    f("session_id", Text, false),
];

pub const REVIEW_FIELDS: &[CanonicalField] = &[
    f("review_id", Text, true),
    f("listing_id", Text, true),
    f("account_id", Text, false),
    f("rating", Rating, false),
    f("text", Text, false),
    f("reviewed_at", Timestamp, false),
];

pub const CUSTOMER_FIELDS: &[CanonicalField] = &[
    f("account_id", Text, true),
    pii("name", PiiKind::Name),
    pii("phone", PiiKind::Phone),
    pii("email", PiiKind::Email),
    pii("address", PiiKind::Address),
    f("city", Text, false),
    f("registered_at", Timestamp, false),
    derived("name_tokens", "name", PiiFeature::NameTokens),
    derived("phone_tail", "phone", PiiFeature::PhoneTail),
    derived("email_user", "email", PiiFeature::EmailUser),
    derived("address_area", "address", PiiFeature::AddressArea),
    derived("address_street", "address", PiiFeature::AddressStreet),
    derived("address_house", "address", PiiFeature::AddressHouse),
];

/// Columns every row carries back to the exact place it came from.
pub const PROVENANCE_FIELDS: &[(&str, DataType)] = &[
    ("_source", DataType::Utf8),
    ("_platform", DataType::Utf8),
    ("_file", DataType::Utf8),
    ("_row", DataType::Int64),
];

/// Schema of `raw_<kind>`: canonical fields, then provenance.
pub fn raw_schema(kind: EntityKind) -> SchemaRef {
    let mut fields: Vec<Field> = kind
        .fields()
        .iter()
        .map(|f| Field::new(f.name, f.ty.arrow_type(), !f.required))
        .collect();
    fields.extend(
        PROVENANCE_FIELDS
            .iter()
            .map(|(n, t)| Field::new(*n, t.clone(), false)),
    );
    Arc::new(Schema::new(fields))
}

/// The currency field that goes with a price field of the same kind.
pub fn currency_field_for(kind: EntityKind) -> Option<&'static str> {
    kind.field("currency").map(|f| f.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_key_and_time_fields_in_schema() {
        for kind in EntityKind::ALL {
            if let Some(k) = kind.key_field() {
                assert!(
                    kind.field(k).unwrap().required,
                    "{kind} key {k} must be required"
                );
            }
            for field in kind.fields() {
                if let Some((from, _)) = field.derived {
                    assert!(kind.field(from).unwrap().pii.is_some(), "{}", field.name);
                }
            }
            let t = kind.time_field().unwrap();
            assert_eq!(kind.field(t).unwrap().ty, FieldType::Timestamp);
            let schema = raw_schema(kind);
            assert_eq!(
                schema.fields().len(),
                kind.fields().len() + PROVENANCE_FIELDS.len()
            );
        }
    }

    #[test]
    fn entity_kind_parses_singular_and_plural() {
        assert_eq!("order".parse::<EntityKind>().unwrap(), EntityKind::Orders);
        assert_eq!(
            "customers".parse::<EntityKind>().unwrap(),
            EntityKind::Customers
        );
        assert!("carts".parse::<EntityKind>().is_err());
    }
}
