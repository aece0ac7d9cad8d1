//! The canonical schema every platform's export is mapped onto.
//!
//! One table per entity kind. Field names are the contract between stages: ingest writes them,
//! clean and later stages read them, users query them with SQL.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::table::{Column, ColumnType, TableDef};

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

impl CanonicalField {
    /// One line for the data dictionary.
    pub fn doc(&self) -> String {
        if let Some((from, feature)) = self.derived {
            return format!(
                "Keyed hashes of the {feature:?} fragments of the clear {from}, derived at ingest for identity matching (space-separated)."
            );
        }
        if self.pii.is_some() {
            return format!(
                "The normalised {} as a keyed hash (HMAC-SHA-256 with the project secret); never stored in clear.",
                self.name
            );
        }
        let what = match self.name {
            "listing_id" => "The listing's id on its platform.",
            "title" => "The listing's title as the platform shows it.",
            "brand" => "Brand as listed.",
            "category" => "Category as listed.",
            "price" => "Price in `currency`.",
            "currency" => {
                "ISO currency of the prices (the source's default when the export has none)."
            }
            "model_code" => "Manufacturer model code.",
            "gtin" => "GTIN / EAN / UPC.",
            "color" => "Colour as listed.",
            "capacity" => "Capacity or size as listed (\"256G\", \"50ml\").",
            "url" => "The listing's page.",
            "stock" => "Units in stock.",
            "listed_at" => "When the listing went up.",
            "order_id" => "The order's id on its platform.",
            "account_id" => "The buyer's or user's account id on the platform.",
            "quantity" => "Units ordered.",
            "unit_price" => "Price per unit in `currency`.",
            "ordered_at" => "When the order was placed.",
            "status" => "Order status as exported (paid, completed, refunded, 交易成功 …).",
            "city" => "City.",
            "ip" => "IP address the order came from (pseudonymise it with `[privacy] pii`).",
            "device_id" => "Device fingerprint of the order.",
            "payment_method" => "Payment method.",
            "event_type" => "view, cart, purchase or favorite.",
            "occurred_at" => "When the event happened.",
            "session_id" => "The platform's session id.",
            "event_id" => {
                "The event's id from its sender; one platform's repeated ids are one event."
            }
            "review_id" => "The review's id on its platform.",
            "rating" => "Stars, 1–5.",
            "text" => "The review text.",
            "reviewed_at" => "When the review was written.",
            "registered_at" => "When the account was registered.",
            _ => "Canonical field.",
        };
        what.to_string()
    }
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
    f("event_id", Text, false),
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
    raw_table_def(kind).schema()
}

/// The declaration of `raw_<kind>`: the kind's canonical fields as ingest parsed them, then
/// provenance.
pub fn raw_table_def(kind: EntityKind) -> TableDef {
    let mut columns = canonical_columns(kind);
    columns.extend(provenance_columns());
    TableDef::new(
        kind.raw_table(),
        format!(
            "One row per accepted source row of kind {kind}, on the canonical schema, as ingest parsed it (personal data already pseudonymised)."
        ),
        columns,
    )
}

/// The kind's canonical fields as declared columns.
pub fn canonical_columns(kind: EntityKind) -> Vec<Column> {
    kind.fields()
        .iter()
        .map(|f| {
            let ty =
                ColumnType::of_arrow(&f.ty.arrow_type()).expect("canonical types are column types");
            Column::new(f.name, ty, !f.required, f.doc())
        })
        .collect()
}

/// `_source, _platform, _file, _row` as declared columns.
pub fn provenance_columns() -> Vec<Column> {
    let doc = |name: &str| match name {
        "_source" => "The `[[sources]]` entry the row came from.",
        "_platform" => "The platform of that source.",
        "_file" => "The source file, relative to the project.",
        _ => "The row's line in that file (as an editor shows it).",
    };
    PROVENANCE_FIELDS
        .iter()
        .map(|(n, t)| {
            let ty = ColumnType::of_arrow(t).expect("provenance types are column types");
            Column::new(*n, ty, false, doc(n))
        })
        .collect()
}

/// An Arrow schema from `(name, type, nullable)` triples: the one way the stages spell out
/// the schema of a table they write.
pub fn arrow_schema(fields: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(n, t, null)| Field::new(*n, t.clone(), *null))
            .collect::<Vec<_>>(),
    ))
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
