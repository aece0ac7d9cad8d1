//! Declared tables: the one definition of every table that passes between stages.
//!
//! Vocabulary: a [`TableDef`] names a table, says what one row is, and lists its
//! [`Column`]s (name, [`ColumnType`], nullability, one doc line each). The stage that writes
//! a table declares it with [`table!`](crate::table!) next to its writer; the writer builds
//! its Arrow schema with [`TableDef::schema`] and every reader names the table and its
//! columns through the same declaration (`golden_products::NAME`,
//! `golden_products::golden_id`), so a renamed column is a compile error, not an empty join.
//!
//! `shopfuse tables --schema` prints the data dictionary from these declarations and
//! `docs/tables.md` is generated from them; a test fails when the file is stale, and another
//! checks every table a run writes against its declaration.
//!
//! Why hand-written declarations rather than schemas derived from Rust structs: the tables are
//! the product's public interface (users query them with SQL, DuckDB and pandas), so each
//! column deserves a sentence of documentation, and several tables (`raw_<kind>`,
//! `clean_<kind>`) are built from the canonical schema at run time.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Serialize;

use crate::error::{CoreError, Result};

/// How a column is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Text,
    Int,
    Float,
    Bool,
    /// UTC, microseconds.
    Timestamp,
    /// A fixed-length vector of 32-bit floats (embeddings); the length is the model's.
    Vector,
}

impl ColumnType {
    /// The Arrow type; `Vector` needs the vector length.
    pub fn arrow_type(self, vector_len: i32) -> DataType {
        match self {
            ColumnType::Text => DataType::Utf8,
            ColumnType::Int => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Timestamp => crate::schema::timestamp_type(),
            ColumnType::Vector => DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, false)),
                vector_len,
            ),
        }
    }

    /// The type as the data dictionary prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Int => "int64",
            ColumnType::Float => "float64",
            ColumnType::Bool => "bool",
            ColumnType::Timestamp => "timestamp (UTC, µs)",
            ColumnType::Vector => "float32[dim]",
        }
    }

    /// The column type of an Arrow type, if it is one the tables use.
    pub fn of_arrow(t: &DataType) -> Option<Self> {
        Some(match t {
            DataType::Utf8 => ColumnType::Text,
            DataType::Int64 => ColumnType::Int,
            DataType::Float64 => ColumnType::Float,
            DataType::Boolean => ColumnType::Bool,
            DataType::Timestamp(_, _) => ColumnType::Timestamp,
            DataType::FixedSizeList(item, _) if item.data_type() == &DataType::Float32 => {
                ColumnType::Vector
            }
            _ => return None,
        })
    }
}

/// One column of a declared table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub name: Cow<'static, str>,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    pub nullable: bool,
    pub doc: Cow<'static, str>,
}

impl Column {
    /// For [`table!`](crate::table!): a column known at compile time.
    pub const fn declared(
        name: &'static str,
        ty: ColumnType,
        nullable: bool,
        doc: &'static str,
    ) -> Self {
        Self {
            name: Cow::Borrowed(name),
            ty,
            nullable,
            doc: Cow::Borrowed(doc),
        }
    }

    /// A column built at run time (the canonical fields of `raw_<kind>`).
    pub fn new(
        name: impl Into<String>,
        ty: ColumnType,
        nullable: bool,
        doc: impl Into<String>,
    ) -> Self {
        Self {
            name: Cow::Owned(name.into()),
            ty,
            nullable,
            doc: Cow::Owned(doc.into()),
        }
    }
}

/// A table's one definition: name, what a row is, columns in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableDef {
    pub name: Cow<'static, str>,
    /// What one row is, and anything a reader must know.
    pub doc: Cow<'static, str>,
    pub columns: Cow<'static, [Column]>,
}

impl TableDef {
    /// For [`table!`](crate::table!).
    pub const fn declared(
        name: &'static str,
        doc: &'static str,
        columns: &'static [Column],
    ) -> Self {
        Self {
            name: Cow::Borrowed(name),
            doc: Cow::Borrowed(doc),
            columns: Cow::Borrowed(columns),
        }
    }

    pub fn new(name: impl Into<String>, doc: impl Into<String>, columns: Vec<Column>) -> Self {
        Self {
            name: Cow::Owned(name.into()),
            doc: Cow::Owned(doc.into()),
            columns: Cow::Owned(columns),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The doc text on one line (doc comments arrive as one string per source line).
    pub fn doc_text(&self) -> String {
        one_line(&self.doc)
    }

    /// The column names in order.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_ref()).collect()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The Arrow schema writers use. A table with a `Vector` column needs
    /// [`Self::schema_with_vectors`].
    pub fn schema(&self) -> SchemaRef {
        self.schema_with_vectors(0)
    }

    /// The Arrow schema, vectors of `vector_len` floats.
    pub fn schema_with_vectors(&self, vector_len: i32) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name.as_ref(), c.ty.arrow_type(vector_len), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// Checks a written or read schema against the declaration: the same columns in the same
    /// order, of the declared types and nullability.
    pub fn check(&self, schema: &Schema) -> Result<()> {
        let found: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let declared: Vec<&str> = self.columns.iter().map(|c| c.name.as_ref()).collect();
        if found != declared {
            return Err(CoreError::Schema(format!(
                "table {}: columns {found:?}, declared {declared:?}",
                self.name
            )));
        }
        for (field, column) in schema.fields().iter().zip(self.columns.iter()) {
            let ty = ColumnType::of_arrow(field.data_type());
            if ty != Some(column.ty) || field.is_nullable() != column.nullable {
                return Err(CoreError::Schema(format!(
                    "table {} column {}: stored as {}{}, declared {}{}",
                    self.name,
                    column.name,
                    field.data_type(),
                    if field.is_nullable() {
                        " (nullable)"
                    } else {
                        ""
                    },
                    column.ty.as_str(),
                    if column.nullable { " (nullable)" } else { "" },
                )));
            }
        }
        Ok(())
    }
}

fn one_line(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The data dictionary as Markdown: a section per table, a row per column.
pub fn dictionary_markdown(tables: &[(&str, TableDef)]) -> String {
    let mut out = String::from(
        "# Tables\n\nGenerated by `shopfuse tables --schema --markdown` from the table declarations \
         (`shopfuse_core::table!` next to each table's writer); do not edit by hand — a test \
         fails when this file is stale.\n\n\
         | table | written by | row |\n|---|---|---|\n",
    );
    for (stage, t) in tables {
        out.push_str(&format!(
            "| [`{}`](#{}) | {stage} | {} |\n",
            t.name,
            t.name,
            cell(&t.doc_text())
        ));
    }
    for (stage, t) in tables {
        out.push_str(&format!(
            "\n## {}\n\nWritten by **{stage}**. {}\n\n",
            t.name,
            t.doc_text()
        ));
        out.push_str("| column | type | null | meaning |\n|---|---|---|---|\n");
        for c in t.columns.iter() {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                c.name,
                c.ty.as_str(),
                if c.nullable { "yes" } else { "no" },
                cell(&one_line(&c.doc))
            ));
        }
    }
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Declares a table: a module holding `NAME`, a `&str` constant per column (named as the
/// column, documented by its doc comment) and `TABLE`, the [`TableDef`].
///
/// ```
/// shopfuse_core::table! {
///     /// One row per thing.
///     pub mod things("things") {
///         /// The thing's id.
///         thing_id: Text;
///         /// How heavy, in grams; null when unknown.
///         weight: Float null;
///     }
/// }
/// assert_eq!(things::NAME, "things");
/// assert_eq!(things::weight, "weight");
/// assert!(things::TABLE.column("weight").unwrap().nullable);
/// ```
#[macro_export]
macro_rules! table {
    (
        $(#[doc = $tdoc:literal])*
        $vis:vis mod $module:ident ($name:literal) {
            $( $(#[doc = $cdoc:literal])+ $col:ident : $ty:ident $($null:ident)? ; )*
        }
    ) => {
        $(#[doc = $tdoc])*
        #[allow(non_upper_case_globals, dead_code)]
        $vis mod $module {
            /// The table's name in the store and in SQL.
            pub const NAME: &str = $name;
            $( $(#[doc = $cdoc])+ pub const $col: &str = stringify!($col); )*
            // A constant of its own so the array is a 'static borrow (a temporary passed to
            // a const fn would have to be dropped, which const evaluation cannot do).
            const COLUMNS: &[$crate::table::Column] = &[$(
                $crate::table::Column::declared(
                    stringify!($col),
                    $crate::table::ColumnType::$ty,
                    $crate::table!(@nullable $($null)?),
                    concat!($($cdoc, "\n"),+),
                )
            ),*];
            /// The declaration: columns, types, docs.
            pub const TABLE: $crate::table::TableDef = $crate::table::TableDef::declared(
                $name,
                concat!($($tdoc, "\n"),*),
                COLUMNS,
            );
        }
    };
    (@nullable) => { false };
    (@nullable null) => { true };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::table! {
        /// One row per
        /// thing.
        pub mod things("things") {
            /// The id.
            thing_id: Text;
            /// When seen; null when never.
            seen_at: Timestamp null;
        }
    }

    #[test]
    fn declared_table_gives_schema_constants_and_checks() {
        assert_eq!(things::NAME, "things");
        assert_eq!(things::seen_at, "seen_at");
        assert_eq!(things::TABLE.doc_text(), "One row per thing.");
        let schema = things::TABLE.schema();
        assert_eq!(
            schema.field(1).data_type(),
            &crate::schema::timestamp_type()
        );
        assert!(schema.field(1).is_nullable() && !schema.field(0).is_nullable());
        things::TABLE.check(&schema).unwrap();
        let swapped = Schema::new(vec![schema.field(1).clone(), schema.field(0).clone()]);
        assert!(things::TABLE.check(&swapped).is_err());
        let loose = Schema::new(vec![
            Field::new("thing_id", DataType::Utf8, true),
            schema.field(1).clone(),
        ]);
        let e = things::TABLE.check(&loose).unwrap_err().to_string();
        assert!(e.contains("thing_id") && e.contains("nullable"), "{e}");
    }

    #[test]
    fn dictionary_lists_every_column() {
        let md = dictionary_markdown(&[("test", things::TABLE)]);
        assert!(
            md.contains("## things")
                && md.contains(
                    "| `seen_at` | timestamp (UTC, µs) | yes | When seen; null when never. |"
                ),
            "{md}"
        );
    }
}
