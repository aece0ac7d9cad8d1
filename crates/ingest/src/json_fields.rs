//! One line of a JSON Lines export read straight into its fields' cells.
//!
//! Reading a line into a `serde_json::Value` first built a map with an owned key and an owned
//! value per field, only to turn each into a cell and drop the map: for a 40 MB event log that
//! was most of the reader's allocations. Here serde's visitor hands over the keys borrowed
//! from the line (owned only when they hold escapes) and each value straight as its cell. The
//! cells are the ones `serde_json::Value` would give (see `reader`'s equivalence test): text
//! trimmed (empty is no value), numbers and booleans as JSON writes them, nested arrays and
//! objects as compact JSON, null as no value.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON text read as an object's fields, in byte order of their keys with the last of a
/// repeated key kept (as `serde_json::Map` holds them); or the note that it is JSON but not an
/// object.
pub enum JsonRecord<'a> {
    Object(Vec<(Cow<'a, str>, Option<String>)>),
    NotObject,
}

impl<'a> JsonRecord<'a> {
    /// Parses one JSON text; the error is serde_json's, with its line and column.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// A cell as `reader::non_empty` makes it: trimmed, and no value when blank.
pub fn text_cell(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl<'de> Deserialize<'de> for JsonRecord<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = JsonRecord<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: Vec<(Cow<'de, str>, Option<String>)> = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            let Cell(cell) = map.next_value()?;
            fields.push((key, cell));
        }
        // serde_json's map: keys in byte order, a repeated key's last value.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(Cow<'de, str>, Option<String>)> = Vec::with_capacity(fields.len());
        for (key, cell) in fields {
            match deduped.last_mut() {
                Some(last) if last.0 == key => last.1 = cell,
                _ => deduped.push((key, cell)),
            }
        }
        Ok(JsonRecord::Object(deduped))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Read, not skipped: serde_json checks numbers' range only when it reads them.
        while seq.next_element::<serde_json::Value>()?.is_some() {}
        Ok(JsonRecord::NotObject)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(JsonRecord::NotObject)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(JsonRecord::NotObject)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(JsonRecord::NotObject)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(JsonRecord::NotObject)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(JsonRecord::NotObject)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(JsonRecord::NotObject)
    }
}

/// A key, borrowed from the text unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A field's value as its cell.
struct Cell(Option<String>);

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CellVisitor)
    }
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Cell, E> {
        Ok(Cell(None))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Cell, E> {
        Ok(Cell(Some(b.to_string())))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Cell, E> {
        Ok(Cell(Some(n.to_string())))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Cell, E> {
        Ok(Cell(Some(n.to_string())))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Cell, E> {
        // serde_json's own rule: a float JSON cannot hold becomes null.
        Ok(Cell(serde_json::Number::from_f64(x).map(|n| n.to_string())))
    }
    fn visit_str<E>(self, s: &str) -> Result<Cell, E> {
        Ok(Cell(text_cell(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Cell, A::Error> {
        let value = serde_json::Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(Cell(Some(value.to_string())))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Cell, A::Error> {
        let value = serde_json::Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Cell(Some(value.to_string())))
    }
}
