//! Missing-value policies. Filled values are marked in `_imputed` so that nobody mistakes an
//! imputed quantity for an observed one.

use shopfuse_core::config::MissingPolicy;
use shopfuse_core::schema::FieldType;
use shopfuse_core::{EntityKind, Value};

use crate::outliers::quantile;
use crate::WorkRow;

/// Parses a `constant:VALUE` for a field of type `ty`.
pub fn constant_value(ty: FieldType, text: &str) -> Result<Value, String> {
    let bad = || format!("{text:?} is not a valid {ty:?} value");
    Ok(match ty {
        FieldType::Integer => Value::Int(text.trim().parse().map_err(|_| bad())?),
        FieldType::Decimal | FieldType::Price | FieldType::Rating => {
            Value::Float(text.trim().parse().map_err(|_| bad())?)
        }
        FieldType::Timestamp => return Err("timestamps cannot be filled with a constant".into()),
        _ => Value::Text(text.to_string()),
    })
}

/// Fills `field` in every row with a missing value, per source; returns how many were filled.
pub fn fill(
    kind: EntityKind,
    rows: &mut [WorkRow],
    field: &'static str,
    policy: &MissingPolicy,
) -> u64 {
    let fi = kind.field_index(field).expect("validated field");
    let ty = kind.fields()[fi].ty;
    let integer = ty == FieldType::Integer;
    let typed = |v: f64| {
        if integer {
            Value::Int(v.round() as i64)
        } else {
            Value::Float(v)
        }
    };
    let mut sources: Vec<String> = rows.iter().map(|r| r.source.clone()).collect();
    sources.sort();
    sources.dedup();
    let mut filled = 0;
    for source in sources {
        let idx: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].source == source)
            .collect();
        let known: Vec<f64> = idx
            .iter()
            .filter_map(|&i| rows[i].values[fi].as_f64())
            .collect();
        let fills: Vec<(usize, Value)> = match policy {
            MissingPolicy::Leave => Vec::new(),
            MissingPolicy::Zero => missing(rows, &idx, fi).map(|i| (i, typed(0.0))).collect(),
            MissingPolicy::Constant(text) => match constant_value(ty, text) {
                Ok(v) => missing(rows, &idx, fi).map(|i| (i, v.clone())).collect(),
                Err(_) => Vec::new(),
            },
            MissingPolicy::Mean if !known.is_empty() => {
                let mean = known.iter().sum::<f64>() / known.len() as f64;
                missing(rows, &idx, fi).map(|i| (i, typed(mean))).collect()
            }
            MissingPolicy::Median if !known.is_empty() => {
                let mut sorted = known.clone();
                sorted.sort_by(f64::total_cmp);
                let median = quantile(&sorted, 0.5);
                missing(rows, &idx, fi)
                    .map(|i| (i, typed(median)))
                    .collect()
            }
            MissingPolicy::Interpolate => interpolate(kind, rows, &idx, fi)
                .into_iter()
                .map(|(i, v)| (i, typed(v)))
                .collect(),
            _ => Vec::new(),
        };
        for (i, v) in fills {
            rows[i].values[fi] = v;
            rows[i].imputed.push(field);
            filled += 1;
        }
    }
    filled
}

fn missing<'a>(
    rows: &'a [WorkRow],
    idx: &'a [usize],
    fi: usize,
) -> impl Iterator<Item = usize> + 'a {
    idx.iter()
        .copied()
        .filter(move |&i| rows[i].values[fi].is_null())
}

/// Linear in time between the nearest known values before and after; the nearest known value
/// at either end. Rows without a time are left missing.
fn interpolate(kind: EntityKind, rows: &[WorkRow], idx: &[usize], fi: usize) -> Vec<(usize, f64)> {
    let ti = kind
        .field_index(kind.time_field().expect("every kind has a time"))
        .expect("time field");
    let mut timed: Vec<(i64, usize)> = idx
        .iter()
        .filter_map(|&i| rows[i].values[ti].as_i64().map(|t| (t, i)))
        .collect();
    timed.sort();
    let known: Vec<(i64, f64)> = timed
        .iter()
        .filter_map(|&(t, i)| rows[i].values[fi].as_f64().map(|v| (t, v)))
        .collect();
    if known.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for &(t, i) in &timed {
        if !rows[i].values[fi].is_null() {
            continue;
        }
        let after = known.partition_point(|(kt, _)| *kt <= t);
        let v = match (after.checked_sub(1).map(|b| known[b]), known.get(after)) {
            (Some((t0, v0)), Some(&(t1, v1))) if t1 > t0 => {
                v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64
            }
            (Some((_, v0)), _) => v0,
            (None, Some(&(_, v1))) => v1,
            (None, None) => continue,
        };
        out.push((i, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(n: i64, qty: Option<i64>, price: Option<f64>, at: i64) -> WorkRow {
        let k = EntityKind::Orders;
        let mut v = vec![Value::Null; k.fields().len()];
        v[k.field_index("quantity").unwrap()] = qty.map(Value::Int).unwrap_or(Value::Null);
        v[k.field_index("unit_price").unwrap()] = price.map(Value::Float).unwrap_or(Value::Null);
        v[k.field_index("ordered_at").unwrap()] = Value::Timestamp(at);
        WorkRow {
            values: v,
            source: "s".into(),
            platform: "p".into(),
            file: "f".into(),
            row: n,
            extras: vec![],
            imputed: vec![],
            outlier_reasons: vec![],
        }
    }

    #[test]
    fn constant_median_and_interpolate() {
        let k = EntityKind::Orders;
        let mut rows = vec![
            order(1, None, Some(10.0), 0),
            order(2, Some(3), None, 50),
            order(3, Some(5), Some(30.0), 100),
        ];
        assert_eq!(
            fill(
                k,
                &mut rows,
                "quantity",
                &MissingPolicy::Constant("1".into())
            ),
            1
        );
        assert_eq!(
            rows[0].values[k.field_index("quantity").unwrap()],
            Value::Int(1)
        );
        assert_eq!(rows[0].imputed, vec!["quantity"]);
        let mut interp = rows.clone();
        assert_eq!(
            fill(k, &mut interp, "unit_price", &MissingPolicy::Interpolate),
            1
        );
        assert_eq!(
            interp[1].values[k.field_index("unit_price").unwrap()],
            Value::Float(20.0)
        );
        assert_eq!(fill(k, &mut rows, "unit_price", &MissingPolicy::Median), 1);
        assert_eq!(
            rows[1].values[k.field_index("unit_price").unwrap()],
            Value::Float(20.0)
        );
    }

    #[test]
    fn constants_are_checked_against_the_field_type() {
        assert!(constant_value(FieldType::Integer, "one").is_err());
        assert_eq!(
            constant_value(FieldType::Text, "unknown"),
            Ok(Value::Text("unknown".into()))
        );
    }
}
