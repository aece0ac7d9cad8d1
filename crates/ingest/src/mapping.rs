//! Maps one source row onto the canonical schema: picks the column of each field (config,
//! then preset, then the canonical name), applies value maps, parses, pseudonymises PII.

use chrono_tz::Tz;
use shopfuse_core::config::SourceConfig;
use shopfuse_core::{CanonicalField, EntityKind, FieldType, PiiKind, Value};

use crate::parse::{
    parse_event_type, parse_integer, parse_number, parse_price, parse_rating, parse_timestamp,
};
use crate::pii::MemoPseudonymiser;
#[cfg(test)]
use crate::pii::Pseudonymiser;
use crate::preset::{preset, PresetFields};

/// Why a row was rejected; `field` is the canonical field at fault, if one is.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub field: Option<&'static str>,
    pub column: Option<String>,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Debug, Clone)]
struct FieldPlan {
    field: &'static CanonicalField,
    /// Built-in personal data, or a field the project marks as such.
    pii: Option<PiiKind>,
    column: Option<usize>,
    column_name: Option<String>,
    format: Option<String>,
    default: Option<String>,
    values: Option<std::collections::BTreeMap<String, String>>,
}

impl FieldPlan {
    /// Where `field` comes from in a file with `header`: the configured column, else the
    /// preset's column names, else the field's own name (case-insensitive as a fallback).
    fn new(
        field: &'static CanonicalField,
        source: &SourceConfig,
        header: &[String],
        marked: &[String],
        preset_fields: Option<PresetFields>,
    ) -> Result<Self, String> {
        let pii = field.pii.or_else(|| {
            marked
                .iter()
                .any(|m| m == field.name)
                .then_some(PiiKind::Marked)
        });
        if field.derived.is_some() {
            return Ok(FieldPlan {
                field,
                pii,
                column: None,
                column_name: None,
                format: None,
                default: None,
                values: None,
            });
        }
        let configured = source.fields.get(field.name);
        let (column, column_name) = match configured.and_then(|c| c.column()) {
            Some(col) => match find_column(header, col) {
                Some(i) => (Some(i), Some(col.to_string())),
                None => {
                    return Err(format!(
                    "[sources.fields] maps {} to column {col:?}, which is not in the header ({})",
                    field.name,
                    header.join(", ")
                ))
                }
            },
            None => {
                let candidates = preset_fields
                    .and_then(|p| p.iter().find(|(c, _)| *c == field.name))
                    .map(|(_, cols)| *cols)
                    .unwrap_or(&[]);
                candidates
                    .iter()
                    .chain(std::iter::once(&field.name))
                    .find_map(|c| find_column(header, c).map(|i| (Some(i), Some(c.to_string()))))
                    .unwrap_or((None, None))
            }
        };
        let default = configured
            .and_then(|c| c.default_value())
            .map(str::to_string);
        if field.required && column.is_none() && default.is_none() {
            return Err(format!(
                "no column for required field {:?}; the header has: {}; map it with [sources.fields] {} = \"COLUMN\"",
                field.name,
                header.join(", "),
                field.name
            ));
        }
        Ok(FieldPlan {
            field,
            pii,
            column,
            column_name,
            format: configured.and_then(|c| c.format()).map(str::to_string),
            default,
            values: source.values.get(field.name).cloned(),
        })
    }
}

/// The position of column `name` in `header`: exact match first, then ASCII case-insensitive.
fn find_column(header: &[String], name: &str) -> Option<usize> {
    header
        .iter()
        .position(|h| h == name)
        .or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(name)))
}

/// A source's mapping resolved against one file's header.
#[derive(Debug, Clone)]
pub struct RowMapper {
    kind: EntityKind,
    plans: Vec<FieldPlan>,
    zone: Tz,
    default_currency: Option<String>,
    /// Header positions holding personal data, to redact quarantined rows.
    pub pii_columns: Vec<(usize, PiiKind)>,
}

impl RowMapper {
    /// `marked` lists the fields of the source's kind that `[privacy] pii` marks as personal.
    pub fn new(
        source: &SourceConfig,
        header: &[String],
        marked: &[String],
    ) -> Result<Self, String> {
        let zone: Tz = match source.timezone.as_deref() {
            Some(z) => z.parse().map_err(|_| {
                format!("unknown time zone {z:?}; use an IANA name such as Asia/Shanghai")
            })?,
            None => chrono_tz::UTC,
        };
        let preset_fields = match source.preset.as_deref() {
            Some(p) => Some(preset(p, source.kind).ok_or_else(|| {
                format!(
                    "unknown preset {p:?}; built-in presets: {}",
                    crate::preset::PRESETS.join(", ")
                )
            })?),
            None => None,
        };
        let plans = source
            .kind
            .fields()
            .iter()
            .map(|field| FieldPlan::new(field, source, header, marked, preset_fields))
            .collect::<Result<Vec<_>, String>>()?;
        let pii_columns = plans
            .iter()
            .filter_map(|p| Some((p.column?, p.pii?)))
            .collect();
        Ok(Self {
            kind: source.kind,
            plans,
            zone,
            default_currency: source.currency.clone(),
            pii_columns,
        })
    }

    /// Parses one row into canonical values (in schema order), or says what is wrong with it.
    pub fn map_row(
        &self,
        cells: &[Option<String>],
        pseudonymiser: &mut MemoPseudonymiser,
    ) -> Result<Vec<Value>, RowError> {
        let mut values = Vec::with_capacity(self.plans.len());
        let mut price_currency: Option<&'static str> = None;
        // Clear text of this row's personal fields, for the derived matching features; it
        // lives only as long as this call.
        let mut clear: Vec<(&'static str, &str)> = Vec::new();
        for plan in &self.plans {
            let f = plan.field;
            if let Some((from, feature)) = f.derived {
                let derived = clear
                    .iter()
                    .find(|(name, _)| *name == from)
                    .and_then(|(_, text)| pseudonymiser.derive(feature, text));
                values.push(derived.map(Value::Text).unwrap_or(Value::Null));
                continue;
            }
            let cell = plan
                .column
                .and_then(|i| cells.get(i))
                .and_then(|c| c.as_deref());
            let text = match (cell, &plan.values) {
                (Some(c), Some(map)) => Some(map.get(c).map_or(c, String::as_str)),
                (c, _) => c,
            };
            let text = text.or(plan.default.as_deref());
            let err = |reason: &'static str, message: String| RowError {
                field: Some(f.name),
                column: plan.column_name.clone(),
                reason,
                message,
            };
            let Some(text) = text else {
                if f.required {
                    return Err(err(
                        "missing_required",
                        format!("{} is required but empty", f.name),
                    ));
                }
                values.push(Value::Null);
                continue;
            };
            if let Some(kind) = plan.pii {
                values.push(
                    pseudonymiser
                        .pseudonymise(kind, text)
                        .map(Value::Text)
                        .unwrap_or(Value::Null),
                );
                if f.pii.is_some() {
                    clear.push((f.name, text));
                }
                continue;
            }
            let (v, currency) = self
                .parse_typed(plan, text)
                .map_err(|m| err("invalid_value", m))?;
            price_currency = currency.or(price_currency);
            values.push(v);
        }
        // The currency column wins; else the price's own symbol; else the source's default.
        if let Some(ci) = self.kind.field_index("currency") {
            if values[ci].is_null() {
                if let Some(c) = price_currency
                    .map(str::to_string)
                    .or_else(|| self.default_currency.clone())
                {
                    values[ci] = Value::Text(c);
                }
            }
        }
        Ok(values)
    }

    /// `text` parsed as the plan's field type; a price also returns the currency its symbol
    /// names (`￥`, `US$`), if any.
    fn parse_typed(
        &self,
        plan: &FieldPlan,
        text: &str,
    ) -> Result<(Value, Option<&'static str>), String> {
        let mut price_currency = None;
        let v = match plan.field.ty {
            FieldType::Text => Value::Text(text.to_string()),
            FieldType::Integer => Value::Int(parse_integer(text)?),
            FieldType::Decimal => Value::Float(parse_number(text)?),
            FieldType::Price => {
                let m = parse_price(text)?;
                price_currency = m.currency;
                Value::Float(m.amount)
            }
            FieldType::Currency => {
                let code = text.trim().to_ascii_uppercase();
                if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(format!("{text:?} is not an ISO 4217 currency code"));
                }
                Value::Text(code)
            }
            FieldType::Timestamp => {
                let ts = parse_timestamp(text, self.zone, plan.format.as_deref())?;
                Value::Timestamp(ts.timestamp_micros())
            }
            FieldType::EventType => Value::Text(parse_event_type(text)?.to_string()),
            FieldType::Rating => Value::Float(parse_rating(text)?),
        };
        Ok((v, price_currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shopfuse_core::config::{FieldSource, FieldSpec};

    fn source(kind: EntityKind, preset: Option<&str>) -> SourceConfig {
        SourceConfig {
            name: "s".into(),
            platform: "taobao".into(),
            kind,
            path: "x.csv".into(),
            format: None,
            encoding: None,
            preset: preset.map(str::to_string),
            timezone: Some("Asia/Shanghai".into()),
            currency: Some("CNY".into()),
            fields: Default::default(),
            values: Default::default(),
            append_only: false,
        }
    }

    fn cells(v: &[&str]) -> Vec<Option<String>> {
        v.iter()
            .map(|s| (!s.is_empty()).then(|| s.to_string()))
            .collect()
    }

    #[test]
    fn taobao_order_row_maps_parses_and_pseudonymises() {
        let header: Vec<String> = [
            "订单编号",
            "买家会员名",
            "宝贝ID",
            "购买数量",
            "单价",
            "下单时间",
            "联系手机",
        ]
        .map(String::from)
        .to_vec();
        let m = RowMapper::new(&source(EntityKind::Orders, Some("taobao")), &header, &[]).unwrap();
        let p = Pseudonymiser::new(b"k");
        let row = m
            .map_row(
                &cells(&[
                    "o1",
                    "tb_ann",
                    "L9",
                    "2件",
                    "¥1,299.00",
                    "2024/03/01 12:00:00",
                    "+86 138 0013 8000",
                ]),
                &mut p.memoised(),
            )
            .unwrap();
        let k = EntityKind::Orders;
        assert_eq!(row[k.field_index("quantity").unwrap()], Value::Int(2));
        assert_eq!(
            row[k.field_index("unit_price").unwrap()],
            Value::Float(1299.0)
        );
        assert_eq!(
            row[k.field_index("currency").unwrap()],
            Value::Text("CNY".into())
        );
        let phone = row[k.field_index("phone").unwrap()]
            .as_str()
            .unwrap()
            .to_string();
        assert!(phone.starts_with("phone:") && !phone.contains("13800138000"));
        assert_eq!(m.pii_columns, vec![(6, PiiKind::Phone)]);
    }

    #[test]
    fn errors_name_the_field_and_column() {
        let header: Vec<String> = ["订单编号", "买家会员名", "宝贝ID", "单价", "下单时间"]
            .map(String::from)
            .to_vec();
        let m = RowMapper::new(&source(EntityKind::Orders, Some("taobao")), &header, &[]).unwrap();
        let p = Pseudonymiser::new(b"k");
        let e = m
            .map_row(
                &cells(&["o1", "a", "L", "abc", "2024-01-01"]),
                &mut p.memoised(),
            )
            .unwrap_err();
        assert_eq!(
            (e.field, e.column.as_deref(), e.reason),
            (Some("unit_price"), Some("单价"), "invalid_value")
        );
        let e = m
            .map_row(
                &cells(&["", "a", "L", "1", "2024-01-01"]),
                &mut p.memoised(),
            )
            .unwrap_err();
        assert_eq!((e.field, e.reason), (Some("order_id"), "missing_required"));
    }

    #[test]
    fn missing_required_column_is_a_file_error_with_a_fix() {
        let header: Vec<String> = ["foo"].map(String::from).to_vec();
        let e = RowMapper::new(&source(EntityKind::Events, None), &header, &[]).unwrap_err();
        assert!(
            e.contains("account_id") && e.contains("[sources.fields]"),
            "{e}"
        );
    }

    #[test]
    fn config_mapping_values_and_defaults() {
        let mut s = source(EntityKind::Events, None);
        s.fields
            .insert("account_id".into(), FieldSource::Column("user".into()));
        s.fields
            .insert("listing_id".into(), FieldSource::Column("item".into()));
        s.fields
            .insert("event_type".into(), FieldSource::Column("act".into()));
        s.fields.insert(
            "occurred_at".into(),
            FieldSource::Spec(FieldSpec {
                column: Some("when".into()),
                format: Some("%d.%m.%Y %H:%M".into()),
                default: None,
            }),
        );
        s.values.insert(
            "event_type".into(),
            [("1".to_string(), "view".to_string())].into(),
        );
        let header: Vec<String> = ["user", "item", "act", "when"].map(String::from).to_vec();
        let m = RowMapper::new(&s, &header, &[]).unwrap();
        let row = m
            .map_row(
                &cells(&["u", "i", "1", "01.03.2024 12:00"]),
                &mut Pseudonymiser::new(b"k").memoised(),
            )
            .unwrap();
        assert_eq!(row[2], Value::Text("view".into()));
        assert_eq!(row[3], Value::Timestamp(1_709_265_600_000_000));
    }
}
