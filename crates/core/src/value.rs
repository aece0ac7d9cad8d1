//! Row-wise typed values and their conversion to and from Arrow record batches.
//!
//! Ingest and clean work row by row (per-row errors, per-row provenance); storage and query
//! are columnar. These two functions are the only bridge between the two views.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Float64Builder, Int64Array,
    Int64Builder, LargeStringArray, RecordBatch, StringArray, StringBuilder, StringViewArray,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};

use crate::error::{CoreError, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

impl Value {
    pub fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    /// `Null` for `None`.
    pub fn opt_text(s: &Option<String>) -> Value {
        s.as_ref().map_or(Value::Null, |v| Value::Text(v.clone()))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) | Value::Timestamp(v) => Some(*v),
            _ => None,
        }
    }

    /// A stable textual form, used for hashing rows and for reports.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

/// The value as text, as [`Value::render`] gives it: written into any formatter, so a caller
/// can hash or compare renderings without building a string per value.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Text(s) => f.write_str(s),
            Value::Int(v) | Value::Timestamp(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// Builds a batch whose columns follow `schema`; each row must have one value per column.
pub fn rows_to_batch(schema: &SchemaRef, rows: &[Vec<Value>]) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let array = column_array(field, i, rows)?;
        if !field.is_nullable() && array.null_count() > 0 {
            return Err(CoreError::Schema(format!(
                "column {} must not be null",
                field.name()
            )));
        }
        columns.push(array);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Column `i` of `rows` as an Arrow array of `field`'s type; a value of another type is an
/// error naming the column (except integers in a float column, and anything in a text one).
fn column_array(field: &Field, i: usize, rows: &[Vec<Value>]) -> Result<ArrayRef> {
    fn cell<'r>(r: &'r [Value], i: usize, name: &str) -> Result<&'r Value> {
        r.get(i)
            .ok_or_else(|| CoreError::Schema(format!("row has no value for column {name}")))
    }
    let type_error = |v: &Value| {
        CoreError::Schema(format!(
            "column {} is {} but got {:?}",
            field.name(),
            field.data_type(),
            v
        ))
    };
    let array: ArrayRef = match field.data_type() {
        DataType::Utf8 => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
            for r in rows {
                match cell(r, i, field.name())? {
                    Value::Null => b.append_null(),
                    Value::Text(s) => b.append_value(s),
                    other => b.append_value(other.render()),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(rows.len());
            for r in rows {
                match cell(r, i, field.name())? {
                    Value::Null => b.append_null(),
                    Value::Int(v) => b.append_value(*v),
                    other => return Err(type_error(other)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(rows.len());
            for r in rows {
                match cell(r, i, field.name())? {
                    Value::Null => b.append_null(),
                    Value::Float(v) => b.append_value(*v),
                    Value::Int(v) => b.append_value(*v as f64),
                    other => return Err(type_error(other)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            for r in rows {
                match cell(r, i, field.name())? {
                    Value::Null => b.append_null(),
                    Value::Bool(v) => b.append_value(*v),
                    other => return Err(type_error(other)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len());
            for r in rows {
                match cell(r, i, field.name())? {
                    Value::Null => b.append_null(),
                    Value::Timestamp(v) => b.append_value(*v),
                    other => return Err(type_error(other)),
                }
            }
            Arc::new(b.finish().with_timezone_opt(tz.clone()))
        }
        other => {
            return Err(CoreError::Schema(format!(
                "unsupported column type {other}"
            )))
        }
    };
    Ok(array)
}

/// Reads every row of `batch` back into values, column by column in schema order.
pub fn batch_to_rows(batch: &RecordBatch) -> Result<Vec<Vec<Value>>> {
    let mut rows: Vec<Vec<Value>> = (0..batch.num_rows())
        .map(|_| Vec::with_capacity(batch.num_columns()))
        .collect();
    for (ci, array) in batch.columns().iter().enumerate() {
        let name = batch.schema().field(ci).name().clone();
        macro_rules! push {
            ($ty:ty, $make:expr) => {{
                let a = array.as_any().downcast_ref::<$ty>().ok_or_else(|| {
                    CoreError::Schema(format!("column {name} has an unexpected type"))
                })?;
                for (ri, row) in rows.iter_mut().enumerate() {
                    row.push(if a.is_null(ri) {
                        Value::Null
                    } else {
                        $make(a.value(ri))
                    });
                }
            }};
        }
        match array.data_type() {
            DataType::Utf8 => push!(StringArray, |v: &str| Value::Text(v.to_string())),
            // What a SQL query over Parquet returns for text columns.
            DataType::Utf8View => push!(StringViewArray, |v: &str| Value::Text(v.to_string())),
            DataType::LargeUtf8 => {
                push!(LargeStringArray, |v: &str| Value::Text(v.to_string()))
            }
            DataType::Int64 => push!(Int64Array, Value::Int),
            DataType::Float64 => push!(Float64Array, Value::Float),
            DataType::Boolean => push!(BooleanArray, Value::Bool),
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                push!(TimestampMicrosecondArray, Value::Timestamp)
            }
            other => {
                return Err(CoreError::Schema(format!(
                    "column {name}: unsupported type {other}"
                )))
            }
        }
    }
    Ok(rows)
}

/// Reads some columns of a committed (or in-transaction) table; `None` when the project
/// lacks the table. What a stage's library takes so that it reads through a
/// [`crate::Transaction`] in the pipeline and through a [`crate::TableStore`] in an
/// evaluation alike.
pub type ReadColumns<'a> = &'a dyn Fn(&str, &[&str]) -> Result<Option<NamedRows>>;

/// A table read row by row, with its columns looked up by name: what the stages that work
/// on whole entities (identity, profiles) read.
#[derive(Debug, Clone, Default)]
pub struct NamedRows {
    pub columns: std::collections::HashMap<String, usize>,
    pub rows: Vec<Vec<Value>>,
}

impl NamedRows {
    pub fn from_batches(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Self> {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().clone(), i))
            .collect();
        let mut rows = Vec::new();
        for batch in batches {
            rows.extend(batch_to_rows(batch)?);
        }
        Ok(Self { columns, rows })
    }

    /// A row as a JSON object of the given columns (absent ones left out), for `--json`
    /// output; timestamps as microseconds.
    pub fn row_json(
        &self,
        row: &[Value],
        names: &[&str],
    ) -> serde_json::Map<String, serde_json::Value> {
        names
            .iter()
            .filter_map(|&name| {
                let v = match self.value(row, name)? {
                    Value::Null => serde_json::Value::Null,
                    Value::Text(t) => t.clone().into(),
                    Value::Int(i) | Value::Timestamp(i) => (*i).into(),
                    Value::Float(f) => serde_json::Number::from_f64(*f)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number),
                    Value::Bool(b) => (*b).into(),
                };
                Some((name.to_string(), v))
            })
            .collect()
    }

    /// The value of column `name` in `row`; `None` when the table has no such column.
    pub fn value<'r>(&self, row: &'r [Value], name: &str) -> Option<&'r Value> {
        self.columns.get(name).map(|&i| &row[i])
    }

    /// Trimmed text, `None` when null, empty or the column is absent.
    pub fn text(&self, row: &[Value], name: &str) -> Option<String> {
        self.str(row, name).map(str::to_string)
    }

    /// [`Self::text`] borrowed from the row, for readers of millions of values.
    pub fn str<'r>(&self, row: &'r [Value], name: &str) -> Option<&'r str> {
        self.value(row, name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    pub fn f64(&self, row: &[Value], name: &str) -> Option<f64> {
        self.value(row, name).and_then(Value::as_f64)
    }

    /// Integers and timestamps (microseconds).
    pub fn i64(&self, row: &[Value], name: &str) -> Option<i64> {
        self.value(row, name).and_then(Value::as_i64)
    }

    pub fn bool(&self, row: &[Value], name: &str) -> Option<bool> {
        match self.value(row, name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}

/// A text column of one batch, read in place: for readers of millions of values, which
/// [`NamedRows`] would copy cell by cell into `String`s.
#[derive(Clone, Copy)]
pub enum TextColumn<'b> {
    Utf8(&'b StringArray),
    LargeUtf8(&'b LargeStringArray),
    View(&'b StringViewArray),
    /// The batch has no such column (or not as text): every row reads as `None`.
    Absent,
}

impl<'b> TextColumn<'b> {
    pub fn of(batch: &'b RecordBatch, name: &str) -> Self {
        let Some(column) = batch.column_by_name(name) else {
            return TextColumn::Absent;
        };
        let any = column.as_any();
        if let Some(a) = any.downcast_ref::<StringArray>() {
            TextColumn::Utf8(a)
        } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
            TextColumn::LargeUtf8(a)
        } else if let Some(a) = any.downcast_ref::<StringViewArray>() {
            TextColumn::View(a)
        } else {
            TextColumn::Absent
        }
    }

    /// Trimmed text, `None` when null, empty or the column is absent (as
    /// [`NamedRows::text`] reads it).
    pub fn get(&self, row: usize) -> Option<&'b str> {
        let text = match self {
            TextColumn::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            TextColumn::LargeUtf8(a) => a.is_valid(row).then(|| a.value(row)),
            TextColumn::View(a) => a.is_valid(row).then(|| a.value(row)),
            TextColumn::Absent => None,
        };
        text.map(str::trim).filter(|s| !s.is_empty())
    }
}

/// An integer or timestamp (microseconds) column of one batch, read in place.
#[derive(Clone, Copy)]
pub enum IntColumn<'b> {
    Int(&'b Int64Array),
    Micros(&'b TimestampMicrosecondArray),
    Absent,
}

impl<'b> IntColumn<'b> {
    pub fn of(batch: &'b RecordBatch, name: &str) -> Self {
        let Some(column) = batch.column_by_name(name) else {
            return IntColumn::Absent;
        };
        let any = column.as_any();
        if let Some(a) = any.downcast_ref::<Int64Array>() {
            IntColumn::Int(a)
        } else if let Some(a) = any.downcast_ref::<TimestampMicrosecondArray>() {
            IntColumn::Micros(a)
        } else {
            IntColumn::Absent
        }
    }

    pub fn get(&self, row: usize) -> Option<i64> {
        match self {
            IntColumn::Int(a) => a.is_valid(row).then(|| a.value(row)),
            IntColumn::Micros(a) => a.is_valid(row).then(|| a.value(row)),
            IntColumn::Absent => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{raw_schema, EntityKind};

    #[test]
    fn rows_round_trip_through_arrow() {
        let schema = raw_schema(EntityKind::Events);
        let rows = vec![vec![
            Value::Text("a1".into()),
            Value::Text("p1".into()),
            Value::Text("view".into()),
            Value::Timestamp(1_700_000_000_000_000),
            Value::Null,
            Value::Text("e1".into()),
            Value::Text("src".into()),
            Value::Text("taobao".into()),
            Value::Text("f.csv".into()),
            Value::Int(2),
        ]];
        let batch = rows_to_batch(&schema, &rows).unwrap();
        assert_eq!(batch_to_rows(&batch).unwrap(), rows);
    }

    #[test]
    fn required_column_rejects_null() {
        let schema = raw_schema(EntityKind::Events);
        let mut row = vec![Value::Null; schema.fields().len()];
        row[9] = Value::Int(1);
        assert!(rows_to_batch(&schema, &[row]).is_err());
    }
}
