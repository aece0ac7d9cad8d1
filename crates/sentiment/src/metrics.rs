//! Accuracy and macro-F1 over polarities.

use crate::model::Polarity;

/// Share of predictions equal to the truth.
pub fn accuracy(truth: &[Polarity], predicted: &[Polarity]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let right = truth.iter().zip(predicted).filter(|(t, p)| t == p).count();
    right as f64 / truth.len() as f64
}

/// The mean F1 over the polarities present in the truth.
pub fn macro_f1(truth: &[Polarity], predicted: &[Polarity]) -> f64 {
    let mut sum = 0.0;
    let mut classes = 0;
    for class in Polarity::ALL {
        let support = truth.iter().filter(|&&t| t == class).count();
        if support == 0 {
            continue;
        }
        classes += 1;
        let tp = truth
            .iter()
            .zip(predicted)
            .filter(|(&t, &p)| t == class && p == class)
            .count() as f64;
        let predicted_n = predicted.iter().filter(|&&p| p == class).count() as f64;
        if tp > 0.0 {
            let precision = tp / predicted_n;
            let recall = tp / support as f64;
            sum += 2.0 * precision * recall / (precision + recall);
        }
    }
    if classes == 0 {
        0.0
    } else {
        sum / classes as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Polarity::*;

    #[test]
    fn perfect_and_all_wrong() {
        let t = [Negative, Positive, Neutral];
        assert_eq!(accuracy(&t, &t), 1.0);
        assert_eq!(macro_f1(&t, &t), 1.0);
        assert_eq!(macro_f1(&t, &[Positive, Neutral, Negative]), 0.0);
    }
}
