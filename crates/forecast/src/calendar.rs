//! The promotion calendar: `[[forecast.promotions]]` windows as dates, each promotion a
//! feature of the global model and a class of weeks the evaluation reports separately.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use shopfuse_core::config::{PromotionSpan, PromotionWindow};

use crate::ForecastError;

fn contains(span: &PromotionSpan, date: NaiveDate) -> bool {
    match *span {
        PromotionSpan::Once { from, to } => from <= date && date <= to,
        PromotionSpan::EveryYear { from, to } => {
            let md = (date.month(), date.day());
            if from <= to {
                from <= md && md <= to
            } else {
                // Wraps the new year (12-28 to 01-03).
                md >= from || md <= to
            }
        }
    }
}

/// The project's promotions, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Promotions {
    /// Promotion names in a fixed order (feature columns follow it) and their windows.
    named: BTreeMap<String, Vec<PromotionSpan>>,
}

impl Promotions {
    /// Parses the config's windows; an end that is neither `MM-DD` nor `YYYY-MM-DD` is an error
    /// naming the promotion and the fix.
    pub fn from_config(windows: &[PromotionWindow]) -> Result<Self, ForecastError> {
        let mut named: BTreeMap<String, Vec<PromotionSpan>> = BTreeMap::new();
        for (i, w) in windows.iter().enumerate() {
            let window = w.span().map_err(|message| ForecastError::Config {
                entry: format!("[[forecast.promotions]] #{} ({:?})", i + 1, w.name),
                message,
            })?;
            named.entry(w.name.clone()).or_default().push(window);
        }
        Ok(Promotions { named })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.named.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.named.len()
    }

    pub fn is_empty(&self) -> bool {
        self.named.is_empty()
    }

    /// Whether any promotion runs on `date`.
    pub fn is_promotion(&self, date: NaiveDate) -> bool {
        self.named
            .values()
            .any(|ws| ws.iter().any(|w| contains(w, date)))
    }

    /// For each promotion in [`Promotions::names`] order, whether it runs on `date`.
    pub fn active_on(&self, date: NaiveDate) -> impl Iterator<Item = bool> + '_ {
        self.named
            .values()
            .map(move |ws| ws.iter().any(|w| contains(w, date)))
    }

    /// The name of a promotion running on `date`, if any.
    pub fn name_on(&self, date: NaiveDate) -> Option<&str> {
        self.named
            .iter()
            .find(|(_, ws)| ws.iter().any(|w| contains(w, date)))
            .map(|(name, _)| name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str, from: &str, to: &str) -> PromotionWindow {
        PromotionWindow {
            name: name.into(),
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn yearly_and_one_off_windows_cover_their_days() {
        let p = Promotions::from_config(&[
            w("Double 11", "11-01", "11-11"),
            w("New year", "12-30", "01-02"),
            w("Prime Day", "2025-07-08", "2025-07-11"),
        ])
        .unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(p.name_on(d("2031-11-11")), Some("Double 11"));
        assert!(!p.is_promotion(d("2031-11-12")));
        assert!(p.is_promotion(d("2030-01-01")) && p.is_promotion(d("2030-12-31")));
        assert!(p.is_promotion(d("2025-07-09")) && !p.is_promotion(d("2026-07-09")));
        assert_eq!(
            p.names().collect::<Vec<_>>(),
            ["Double 11", "New year", "Prime Day"]
        );
    }

    #[test]
    fn a_bad_window_names_the_entry_and_the_fix() {
        let err = Promotions::from_config(&[w("618", "06-01", "2025-06-18")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("#1") && text.contains("618") && text.contains("MM-DD"),
            "{text}"
        );
        assert!(Promotions::from_config(&[w("x", "13-01", "13-02")]).is_err());
    }
}
