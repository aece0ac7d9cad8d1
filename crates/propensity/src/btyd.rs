//! Buy-till-you-die models: BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the
//! easy way") for how many purchases a customer makes and whether they are still active, and
//! Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV") for what each purchase is worth.
//!
//! Vocabulary, as the papers use it, for one customer observed over `T` time units since
//! their first purchase:
//! - `frequency` x: repeat purchases (purchases after the first; several on one day count
//!   once);
//! - `recency` t_x: time from the first purchase to the last one (0 without repeats);
//! - `monetary` m_x: the mean value of the repeat purchases.
//!
//! Both models are fitted by maximum likelihood with Nelder–Mead (argmin) over the logarithms
//! of their parameters, which keeps them positive without constraints. The likelihoods, the
//! conditional expectations and the Gaussian hypergeometric function they need are written
//! here: they are a few closed forms, and the published figures they reproduce are the test.

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;
use serde::Serialize;

use crate::PropensityError;

/// One customer's purchase summary at a cut-off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rfm {
    pub frequency: f64,
    pub recency: f64,
    /// Age: time from the first purchase to the cut-off.
    pub age: f64,
    /// Mean value of the repeat purchases (0 without repeats).
    pub monetary: f64,
}

fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// BG/NBD: purchases while active follow Poisson(λ), λ ~ Gamma(r, α); after each purchase
/// the customer drops out with probability p, p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl BgNbd {
    /// The log-likelihood of `customers` (FHL 2005, eq. 6).
    pub fn log_likelihood(&self, customers: &[Rfm]) -> f64 {
        self.log_likelihood_grouped(&ByFrequency::new(customers))
    }

    /// The log-likelihood with the gamma functions computed once per distinct frequency (a
    /// few dozen), not once per customer; the fit evaluates it on groups made once.
    fn log_likelihood_grouped(&self, data: &ByFrequency) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let mut total = 0.0;
        for (x, customers) in &data.groups {
            let x = *x;
            let constant =
                ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x)
                    - ln_gamma(b)
                    - ln_gamma(a + b + x);
            total += constant * customers.len() as f64;
            let drop = if x > 0.0 {
                (a / (b + x - 1.0)).ln()
            } else {
                0.0
            };
            for c in customers {
                let a3 = -(r + x) * (alpha + c.age).ln();
                total += if x > 0.0 {
                    let a4 = drop - (r + x) * (alpha + c.recency).ln();
                    let (hi, lo) = if a3 > a4 { (a3, a4) } else { (a4, a3) };
                    hi + (lo - hi).exp().ln_1p()
                } else {
                    a3
                };
            }
        }
        total
    }

    /// Maximum-likelihood parameters for `customers`.
    pub fn fit(customers: &[Rfm]) -> Result<BgNbd, PropensityError> {
        if customers.is_empty() {
            return Err(PropensityError::NoData(
                "BG/NBD needs at least one customer",
            ));
        }
        let data = ByFrequency::new(customers);
        let n = customers.len() as f64;
        let cost = |p: &[f64]| {
            let m = BgNbd {
                r: p[0].exp(),
                alpha: p[1].exp(),
                a: p[2].exp(),
                b: p[3].exp(),
            };
            // Per customer: the simplex's tolerance is absolute, and a sum over a million
            // customers never settles to 1e-9 in floating point — it ran every iteration.
            -m.log_likelihood_grouped(&data) / n
        };
        let best = minimise(&cost, &[0.0, 1.0, 0.0, 0.0])?;
        Ok(BgNbd {
            r: best[0].exp(),
            alpha: best[1].exp(),
            a: best[2].exp(),
            b: best[3].exp(),
        })
    }

    /// Probability that the customer is still active at the cut-off (FHL 2005 / Fader,
    /// Hardie & Lee 2008 note, eq. 2).
    pub fn probability_alive(&self, c: &Rfm) -> f64 {
        if c.frequency == 0.0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let (x, tx, t) = (c.frequency, c.recency, c.age);
        let ratio = (r + x) * ((alpha + t) / (alpha + tx)).ln();
        1.0 / (1.0 + (a / (b + x - 1.0)) * ratio.exp())
    }

    /// Expected repeat purchases in the next `horizon` time units (FHL 2005, eq. 10).
    pub fn expected_purchases(&self, c: &Rfm, horizon: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let (x, tx, t) = (c.frequency, c.recency, c.age);
        let z = horizon / (alpha + t + horizon);
        let hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let head = (a + b + x - 1.0) / (a - 1.0)
            * (1.0 - ((alpha + t) / (alpha + t + horizon)).powf(r + x) * hyp);
        let tail = if x > 0.0 {
            1.0 + (a / (b + x - 1.0)) * ((alpha + t) / (alpha + tx)).powf(r + x)
        } else {
            1.0
        };
        head / tail
    }

    /// Probability of at least one purchase in the next `horizon` time units: the customer is
    /// alive and their Poisson process fires, integrated over the posterior of λ (Gamma with
    /// shape r + x, rate α + T).
    pub fn probability_of_purchase(&self, c: &Rfm, horizon: f64) -> f64 {
        let alive = self.probability_alive(c);
        let none_if_alive =
            ((self.alpha + c.age) / (self.alpha + c.age + horizon)).powf(self.r + c.frequency);
        alive * (1.0 - none_if_alive)
    }
}

/// Gamma-Gamma: a customer's purchase values are Gamma(p, ν), ν ~ Gamma(q, γ); independent of
/// how often they buy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

impl GammaGamma {
    /// The log-likelihood of the customers with repeat purchases.
    pub fn log_likelihood(&self, customers: &[Rfm]) -> f64 {
        self.log_likelihood_grouped(&ByFrequency::new(&repeat_buyers(customers)))
    }

    /// [`Self::log_likelihood`] of customers with repeat purchases, the gamma functions once
    /// per distinct frequency.
    fn log_likelihood_grouped(&self, data: &ByFrequency) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let mut total = 0.0;
        for (x, customers) in &data.groups {
            let x = *x;
            let px = p * x;
            let constant =
                ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * gamma.ln() + px * x.ln();
            total += constant * customers.len() as f64;
            for c in customers {
                total += (px - 1.0) * c.monetary.ln() - (px + q) * (gamma + c.monetary * x).ln();
            }
        }
        total
    }

    pub fn fit(customers: &[Rfm]) -> Result<GammaGamma, PropensityError> {
        if !customers
            .iter()
            .any(|c| c.frequency > 0.0 && c.monetary > 0.0)
        {
            return Err(PropensityError::NoData(
                "Gamma-Gamma needs customers with repeat purchases",
            ));
        }
        let repeat = repeat_buyers(customers);
        let n = repeat.len() as f64;
        let data = ByFrequency::new(&repeat);
        let cost = |v: &[f64]| {
            let m = GammaGamma {
                p: v[0].exp(),
                q: v[1].exp(),
                gamma: v[2].exp(),
            };
            // Per customer, as in BG/NBD's fit.
            -m.log_likelihood_grouped(&data) / n
        };
        let best = minimise(&cost, &[0.0, 0.0, 0.0])?;
        Ok(GammaGamma {
            p: best[0].exp(),
            q: best[1].exp(),
            gamma: best[2].exp(),
        })
    }

    /// Expected value of one future purchase of this customer (the population mean for one
    /// without repeats).
    pub fn expected_value(&self, c: &Rfm) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let population = p * gamma / (q - 1.0);
        if c.frequency == 0.0 {
            return population;
        }
        let x = c.frequency;
        let weight = p * x / (p * x + q - 1.0);
        (1.0 - weight) * population + weight * c.monetary
    }
}

/// The customers Gamma-Gamma learns from: those with repeat purchases of some value.
fn repeat_buyers(customers: &[Rfm]) -> Vec<Rfm> {
    customers
        .iter()
        .filter(|c| c.frequency > 0.0 && c.monetary > 0.0)
        .copied()
        .collect()
}

/// Customers grouped by frequency: the likelihoods' gamma-function terms depend on the
/// frequency alone.
struct ByFrequency {
    groups: Vec<(f64, Vec<Rfm>)>,
}

impl ByFrequency {
    fn new(customers: &[Rfm]) -> Self {
        let mut groups: Vec<(f64, Vec<Rfm>)> = Vec::new();
        let mut sorted = customers.to_vec();
        sorted.sort_by(|a, b| a.frequency.total_cmp(&b.frequency));
        for c in sorted {
            match groups.last_mut() {
                Some((x, members)) if *x == c.frequency => members.push(c),
                _ => groups.push((c.frequency, vec![c])),
            }
        }
        ByFrequency { groups }
    }
}

/// Gauss's hypergeometric function ₂F₁(a, b; c; z) for 0 ≤ z < 1, by its power series (the
/// terms shrink geometrically there).
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..100_000 {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() < 1e-15 * sum.abs() {
            break;
        }
    }
    sum
}

/// A negative log-likelihood over log-parameters, for argmin.
struct NegLogLikelihood<'f, F>(&'f F);

impl<F: Fn(&[f64]) -> f64> CostFunction for NegLogLikelihood<'_, F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let v = (self.0)(p);
        // A point where the likelihood is not finite is simply a bad point.
        Ok(if v.is_finite() { v } else { f64::MAX })
    }
}

/// Nelder–Mead from `start` (a simplex of unit steps), restarted once from its own optimum
/// so that a collapsed simplex does not stop it early.
fn minimise<F: Fn(&[f64]) -> f64>(cost: &F, start: &[f64]) -> Result<Vec<f64>, PropensityError> {
    let mut point = start.to_vec();
    for _ in 0..2 {
        let mut simplex = vec![point.clone()];
        for i in 0..point.len() {
            let mut v = point.clone();
            v[i] += 0.5;
            simplex.push(v);
        }
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(1e-9)
            .map_err(|e| PropensityError::Fit(e.to_string()))?;
        let result = Executor::new(NegLogLikelihood(cost), solver)
            .configure(|s| s.max_iters(10_000))
            .run()
            .map_err(|e| PropensityError::Fit(e.to_string()))?;
        point = result
            .state()
            .get_best_param()
            .cloned()
            .ok_or_else(|| PropensityError::Fit("no parameters found".into()))?;
    }
    Ok(point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z.
        let z: f64 = 0.4;
        assert!((hyp2f1(1.0, 1.0, 2.0, z) - (-(1.0 - z).ln() / z)).abs() < 1e-12);
        // ₂F₁(a, b; b; z) = (1 − z)^(−a).
        assert!((hyp2f1(2.5, 3.0, 3.0, 0.3) - 0.7f64.powf(-2.5)).abs() < 1e-10);
    }

    #[test]
    fn a_customer_who_bought_long_ago_is_less_likely_alive() {
        let m = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let recent = Rfm {
            frequency: 3.0,
            recency: 35.0,
            age: 38.0,
            monetary: 0.0,
        };
        let lapsed = Rfm {
            recency: 5.0,
            ..recent
        };
        assert!(m.probability_alive(&recent) > m.probability_alive(&lapsed));
        assert!(m.expected_purchases(&recent, 39.0) > m.expected_purchases(&lapsed, 39.0));
        let p = m.probability_of_purchase(&recent, 4.0);
        assert!(p > 0.0 && p < 1.0);
    }

    /// Customers drawn from BG/NBD (as the `lifetimes` package simulates it: a dropout
    /// chance after each repeat purchase) and Gamma-Gamma spend.
    fn simulate(truth: BgNbd, spend: GammaGamma, n: usize, age: f64) -> Vec<Rfm> {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Beta, Distribution, Exp, Gamma};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let rates = Gamma::new(truth.r, 1.0 / truth.alpha).unwrap();
        let dropouts = Beta::new(truth.a, truth.b).unwrap();
        let scales = Gamma::new(spend.q, 1.0 / spend.gamma).unwrap();
        (0..n)
            .map(|_| {
                let (lambda, p): (f64, f64) = (rates.sample(&mut rng), dropouts.sample(&mut rng));
                let nu: f64 = scales.sample(&mut rng);
                let gap = Exp::new(lambda).unwrap();
                let value = Gamma::new(spend.p, 1.0 / nu).unwrap();
                let (mut t, mut x, mut last, mut total) = (0.0, 0.0, 0.0, 0.0);
                loop {
                    t += gap.sample(&mut rng);
                    if t > age {
                        break;
                    }
                    x += 1.0;
                    last = t;
                    total += value.sample(&mut rng);
                    if rng.random::<f64>() < p {
                        break;
                    }
                }
                let monetary = if x > 0.0 { total / x } else { 0.0 };
                Rfm {
                    frequency: x,
                    recency: last,
                    age,
                    monetary,
                }
            })
            .collect()
    }

    #[test]
    fn the_fits_reach_at_least_the_likelihood_of_the_truth_and_recover_it() {
        let truth = BgNbd {
            r: 0.5,
            alpha: 5.0,
            a: 0.8,
            b: 2.5,
        };
        let spend = GammaGamma {
            p: 6.0,
            q: 4.0,
            gamma: 15.0,
        };
        let customers = simulate(truth, spend, 6_000, 40.0);
        let fitted = BgNbd::fit(&customers).unwrap();
        assert!(fitted.log_likelihood(&customers) >= truth.log_likelihood(&customers) - 1e-6);
        assert!((fitted.r / truth.r - 1.0).abs() < 0.2, "{fitted:?}");
        assert!((fitted.alpha / truth.alpha - 1.0).abs() < 0.3, "{fitted:?}");
        let mean_dropout = |m: &BgNbd| m.a / (m.a + m.b);
        assert!(
            (mean_dropout(&fitted) - mean_dropout(&truth)).abs() < 0.05,
            "{fitted:?}"
        );
        let g = GammaGamma::fit(&customers).unwrap();
        assert!(g.log_likelihood(&customers) >= spend.log_likelihood(&customers) - 1e-6);
        // The mean purchase value p·γ/(q − 1) is what the model pins down best.
        let mean = |m: &GammaGamma| m.p * m.gamma / (m.q - 1.0);
        assert!((mean(&g) / mean(&spend) - 1.0).abs() < 0.1, "{g:?}");
    }
}
