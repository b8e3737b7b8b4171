//! Predictive lifetime value: BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the
//! easy way"), MBG/NBD (Batislam, Denizel & Filiztekin 2007) and Gamma-Gamma (Fader, Hardie &
//! Lee 2005, "RFM and CLV: using iso-value curves"), in the parameterisation and conventions of
//! the `lifetimes` Python package, which the tests use as reference.
//!
//! Inputs are a customer's `frequency` (repeat purchase periods), `recency` (first to last
//! purchase) and `t` (first purchase to the end of observation), all in one time unit (days in
//! rebuy's `customer_summary`), and `monetary_value` (mean value of the repeat purchases).
//! Predictions are in the same unit.
//!
//! Fitting maximises the likelihood over log-parameters with BFGS and analytic gradients (the
//! objective is the mean negative log-likelihood plus `penalizer · Σ param²`, as in `lifetimes`).
//! Customers with equal inputs share one likelihood term: the fit works on distinct
//! (frequency, recency, t) triples with their counts.

mod fit;
#[cfg(test)]
mod reference_tests;
pub mod special;

use special::{hyp2f1, ln_gamma};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LtvError {
    #[error("no customers to fit on")]
    NoData,
    #[error("{0}")]
    BadInput(String),
    #[error("the likelihood is not finite at any parameter tried: {0}")]
    NotFinite(String),
    /// The caller's stop check said so (statement timeout, cancel request, shutdown).
    #[error("stopped before the fit finished")]
    Stopped,
}

/// A caller's "should this fit give up?" check, asked at every evaluation of the likelihood.
pub type StopCheck<'a> = &'a (dyn Fn() -> bool + Sync);

/// Which purchase-count model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurchaseModel {
    BgNbd,
    MbgNbd,
}

impl PurchaseModel {
    pub fn name(self) -> &'static str {
        match self {
            PurchaseModel::BgNbd => "bgnbd",
            PurchaseModel::MbgNbd => "mbgnbd",
        }
    }
}

/// A fitted model: parameters (r, alpha, a, b or p, q, v) and diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub params: Vec<f64>,
    /// Total log-likelihood (sum over customers, without the penalty).
    pub log_likelihood: f64,
    /// Customers fitted on.
    pub n: u64,
    pub converged: bool,
    pub iterations: u32,
}

/// Distinct observations with how many customers share them.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    counts: std::collections::HashMap<(u64, u64, u64), f64>,
}

impl Observations {
    pub fn add(&mut self, a: f64, b: f64, c: f64, weight: f64) {
        *self
            .counts
            .entry((a.to_bits(), b.to_bits(), c.to_bits()))
            .or_insert(0.0) += weight;
    }

    pub fn merge(&mut self, other: &Observations) {
        for (k, w) in &other.counts {
            *self.counts.entry(*k).or_insert(0.0) += w;
        }
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// (a, b, c, weight) in a stable order.
    pub fn rows(&self) -> Vec<(f64, f64, f64, f64)> {
        let mut keys: Vec<_> = self.counts.iter().collect();
        keys.sort_by_key(|(k, _)| **k);
        keys.into_iter()
            .map(|(k, w)| {
                (
                    f64::from_bits(k.0),
                    f64::from_bits(k.1),
                    f64::from_bits(k.2),
                    *w,
                )
            })
            .collect()
    }

    /// A hash of the content, for caching fits.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut keys: Vec<_> = self.counts.iter().map(|(k, w)| (*k, w.to_bits())).collect();
        keys.sort_unstable();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        keys.hash(&mut h);
        h.finish()
    }
}

fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// One customer's log-likelihood under BG/NBD.
pub fn bgnbd_ll(p: &[f64], x: f64, tx: f64, t: f64) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
    let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
    let a3 = -(r + x) * (alpha + t).ln();
    if x > 0.0 {
        let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (tx + alpha).ln();
        a1 + a2 + log_add_exp(a3, a4)
    } else {
        a1 + a2 + a3
    }
}

/// One customer's log-likelihood under MBG/NBD.
pub fn mbgnbd_ll(p: &[f64], x: f64, tx: f64, t: f64) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
    let a2 = ln_gamma(a + b) + ln_gamma(b + x + 1.0) - ln_gamma(b) - ln_gamma(a + b + x + 1.0);
    let a3 = -(r + x) * (alpha + t).ln();
    let a4 = a.ln() - (b + x).ln() + (r + x) * ((alpha + t).ln() - (alpha + tx).ln());
    a1 + a2 + a3 + log_add_exp(a4, 0.0)
}

/// One repeat customer's log-likelihood of its mean spend under Gamma-Gamma.
pub fn gamma_gamma_ll(p: &[f64], x: f64, m: f64) -> f64 {
    let (pp, q, v) = (p[0], p[1], p[2]);
    ln_gamma(pp * x + q) - ln_gamma(pp * x) - ln_gamma(q)
        + q * v.ln()
        + (pp * x - 1.0) * m.ln()
        + (pp * x) * x.ln()
        - (pp * x + q) * (x * m + v).ln()
}

/// Fits BG/NBD or MBG/NBD on (frequency, recency, t) observations.
pub fn fit_purchase(
    model: PurchaseModel,
    obs: &Observations,
    penalizer: f64,
) -> Result<Fit, LtvError> {
    fit_purchase_until(model, obs, penalizer, &|| false)
}

/// [`fit_purchase`] that gives up with [`LtvError::Stopped`] as soon as `stop` returns true.
pub fn fit_purchase_until(
    model: PurchaseModel,
    obs: &Observations,
    penalizer: f64,
    stop: StopCheck<'_>,
) -> Result<Fit, LtvError> {
    let rows = obs.rows();
    if rows.is_empty() {
        return Err(LtvError::NoData);
    }
    for &(x, tx, t, _) in &rows {
        if !(x >= 0.0 && tx >= 0.0 && t >= tx && x.is_finite() && t.is_finite()) {
            return Err(LtvError::BadInput(format!(
                "frequency {x}, recency {tx}, t {t}: need frequency >= 0 and 0 <= recency <= t"
            )));
        }
    }
    let data = fit::PurchaseData::new(&rows);
    let (start, h0, warm_iterations) = warm_start(&rows, 4, |sample| {
        let sample = fit::PurchaseData::new(sample);
        fit::minimize(
            &purchase_objective(&sample, model, penalizer),
            &[0.1; 4],
            None,
            stop,
        )
    });
    let mut result = fit::minimize(
        &purchase_objective(&data, model, penalizer),
        &start,
        h0,
        stop,
    );
    if stop() {
        return Err(LtvError::Stopped);
    }
    result.iterations += warm_iterations;
    finish(result, data.total(), |p| data.eval(model, p).0)
}

/// Fits Gamma-Gamma on (frequency, monetary_value) of repeat customers (frequency > 0 and a
/// positive monetary value; other rows must be left out by the caller). Observations hold
/// (frequency, monetary_value, 0).
pub fn fit_gamma_gamma(obs: &Observations, penalizer: f64) -> Result<Fit, LtvError> {
    fit_gamma_gamma_until(obs, penalizer, &|| false)
}

/// [`fit_gamma_gamma`] that gives up with [`LtvError::Stopped`] as soon as `stop` returns true.
pub fn fit_gamma_gamma_until(
    obs: &Observations,
    penalizer: f64,
    stop: StopCheck<'_>,
) -> Result<Fit, LtvError> {
    let rows = obs.rows();
    if rows.is_empty() {
        return Err(LtvError::NoData);
    }
    if let Some(&(x, m, _, _)) = rows
        .iter()
        .find(|r| !(r.0 > 0.0 && r.1 > 0.0 && r.1.is_finite()))
    {
        return Err(LtvError::BadInput(format!(
            "frequency {x}, monetary_value {m}: Gamma-Gamma needs frequency > 0 and monetary_value > 0"
        )));
    }
    let data = fit::SpendData::new(&rows);
    let (start, h0, warm_iterations) = warm_start(&rows, 3, |sample| {
        let sample = fit::SpendData::new(sample);
        fit::minimize(&spend_objective(&sample, penalizer), &[0.1; 3], None, stop)
    });
    let mut result = fit::minimize(&spend_objective(&data, penalizer), &start, h0, stop);
    if stop() {
        return Err(LtvError::Stopped);
    }
    result.iterations += warm_iterations;
    finish(result, data.total(), |p| data.eval(p).0)
}

/// Mean negative log-likelihood (plus penalty) over log-parameters, as lifetimes minimises, with
/// its gradient.
fn purchase_objective(
    data: &fit::PurchaseData,
    model: PurchaseModel,
    penalizer: f64,
) -> impl Fn(&[f64]) -> (f64, Vec<f64>) + '_ {
    move |logp: &[f64]| {
        let p: Vec<f64> = logp.iter().map(|v| v.exp()).collect();
        let (ll, g) = data.eval(model, &p);
        penalized(&p, ll, &g, data.total(), penalizer)
    }
}

fn spend_objective(
    data: &fit::SpendData,
    penalizer: f64,
) -> impl Fn(&[f64]) -> (f64, Vec<f64>) + '_ {
    move |logp: &[f64]| {
        let p: Vec<f64> = logp.iter().map(|v| v.exp()).collect();
        let (ll, g) = data.eval(&p);
        penalized(&p, ll, &g, data.total(), penalizer)
    }
}

/// -ll/total + penalizer·Σp² and its gradient with respect to ln p.
fn penalized(p: &[f64], ll: f64, g: &[f64], total: f64, penalizer: f64) -> (f64, Vec<f64>) {
    let value = -ll / total + penalizer * p.iter().map(|v| v * v).sum::<f64>();
    let grad = p
        .iter()
        .zip(g)
        .map(|(p, g)| p * (-g / total + 2.0 * penalizer * p))
        .collect();
    (value, grad)
}

/// Rows above which the search starts from a fit on an evenly spread sample of them: most
/// iterations then run on the sample, and the full data only polish (same optimum).
const WARM_START_ROWS: usize = 60_000;

fn warm_start(
    rows: &[(f64, f64, f64, f64)],
    params: usize,
    fit_sample: impl Fn(&[(f64, f64, f64, f64)]) -> fit::Minimum,
) -> (Vec<f64>, Option<Vec<Vec<f64>>>, u32) {
    let cold = vec![0.1; params];
    if rows.len() <= WARM_START_ROWS {
        return (cold, None, 0);
    }
    let step = rows.len() / (WARM_START_ROWS / 2);
    let sample: Vec<_> = rows.iter().step_by(step.max(1)).copied().collect();
    let m = fit_sample(&sample);
    if m.converged && m.x.iter().all(|v| v.is_finite()) {
        (m.x, Some(m.h), m.iterations)
    } else {
        (cold, None, m.iterations)
    }
}

fn finish(
    result: fit::Minimum,
    total: f64,
    log_likelihood: impl Fn(&[f64]) -> f64,
) -> Result<Fit, LtvError> {
    let params: Vec<f64> = result.x.iter().map(|v| v.exp()).collect();
    if params.iter().any(|p| !p.is_finite()) || !result.f.is_finite() {
        return Err(LtvError::NotFinite(format!("last parameters {params:?}")));
    }
    // Parameters running off to 0 or infinity mean the data do not identify the model (all
    // one-time buyers, for instance): reported, not hidden.
    let degenerate = params.iter().any(|p| *p < 1e-7 || *p > 1e7);
    Ok(Fit {
        log_likelihood: log_likelihood(&params),
        params,
        n: total.round() as u64,
        converged: result.converged && !degenerate,
        iterations: result.iterations,
    })
}

/// ln 2F1(a, b; c; z), falling back to Euler's transformation when the series overflows.
fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    match hyp2f1(a, b, c, z) {
        Some(v) if v > 0.0 && v.is_finite() => v.ln(),
        _ => match hyp2f1(c - a, c - b, c, z) {
            Some(v) if v > 0.0 => v.ln() + (c - a - b) * (1.0 - z).ln(),
            _ => f64::NAN,
        },
    }
}

/// Expected purchases in the next `horizon` of a customer with (x, tx, t).
pub fn expected_purchases(
    model: PurchaseModel,
    p: &[f64],
    x: f64,
    tx: f64,
    t: f64,
    horizon: f64,
) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    if horizon <= 0.0 {
        return 0.0;
    }
    let z = horizon / (alpha + t + horizon);
    let ratio = ((alpha + t) / (alpha + t + horizon)).ln() * (r + x);
    match model {
        PurchaseModel::BgNbd => {
            let ln_hyp = ln_hyp2f1(r + x, b + x, a + b + x - 1.0, z);
            let first = (a + b + x - 1.0) / (a - 1.0);
            let second = 1.0 - (ln_hyp + ratio).exp();
            let denominator = 1.0
                + if x > 0.0 {
                    (a / (b + x - 1.0)) * ((alpha + t) / (alpha + tx)).powf(r + x)
                } else {
                    0.0
                };
            first * second / denominator
        }
        PurchaseModel::MbgNbd => {
            let ln_hyp = ln_hyp2f1(r + x, b + x + 1.0, a + b + x, z);
            let first = (a + b + x) / (a - 1.0);
            let second = 1.0 - (ln_hyp + ratio).exp();
            let denominator = 1.0 + (a / (b + x)) * ((alpha + t) / (alpha + tx)).powf(r + x);
            first * second / denominator
        }
    }
}

/// Probability that a customer with (x, tx, t) is still active.
pub fn p_alive(model: PurchaseModel, p: &[f64], x: f64, tx: f64, t: f64) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    match model {
        PurchaseModel::BgNbd => {
            if x == 0.0 {
                return 1.0;
            }
            let log_div = (r + x) * ((alpha + t) / (alpha + tx)).ln() + (a / (b + x - 1.0)).ln();
            1.0 / (1.0 + log_div.exp())
        }
        PurchaseModel::MbgNbd => {
            1.0 / (1.0 + (a / (b + x)) * ((alpha + t) / (alpha + tx)).powf(r + x))
        }
    }
}

/// Expected purchases of a new customer in `horizon` (BG/NBD).
pub fn expected_purchases_new(p: &[f64], horizon: f64) -> f64 {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    if horizon <= 0.0 {
        return 0.0;
    }
    let ln_hyp = ln_hyp2f1(r, b, a + b - 1.0, horizon / (alpha + horizon));
    (a + b - 1.0) / (a - 1.0) * (1.0 - (ln_hyp + r * (alpha / (alpha + horizon)).ln()).exp())
}

/// Gamma-Gamma expected mean spend of a customer with `x` repeat purchases of mean `m`.
pub fn expected_value(p: &[f64], x: f64, m: f64) -> f64 {
    let (pp, q, v) = (p[0], p[1], p[2]);
    let weight = pp * x / (pp * x + q - 1.0);
    let population_mean = v * pp / (q - 1.0);
    (1.0 - weight) * population_mean + weight * m
}

/// Discounted value over `months`: per month, the increase of expected purchases times the
/// expected spend, discounted at `monthly_rate` (`lifetimes`' customer_lifetime_value).
/// `periods_per_month` is the number of time units in a month (30 for days).
#[allow(clippy::too_many_arguments)]
pub fn clv(
    model: PurchaseModel,
    purchase: &[f64],
    spend: &[f64],
    x: f64,
    tx: f64,
    t: f64,
    m: f64,
    months: u32,
    monthly_rate: f64,
    periods_per_month: f64,
) -> f64 {
    let value = expected_value(spend, x, m);
    let mut total = 0.0;
    let mut previous = 0.0;
    for month in 1..=months {
        let horizon = month as f64 * periods_per_month;
        let cumulative = expected_purchases(model, purchase, x, tx, t, horizon);
        total += value * (cumulative - previous) / (1.0 + monthly_rate).powf(month as f64);
        previous = cumulative;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_one_time_buyers_do_not_pass_for_a_converged_fit() {
        let mut obs = Observations::default();
        for t in 1..200 {
            obs.add(0.0, 0.0, t as f64, 1.0);
        }
        let fit = fit_purchase(PurchaseModel::BgNbd, &obs, 0.0).unwrap();
        assert!(!fit.converged || fit.params.iter().all(|p| p.is_finite()));
        assert!(fit.params.iter().all(|p| p.is_finite()));
    }

    #[test]
    fn the_fast_likelihood_equals_the_per_customer_formulas() {
        let rows = [
            (0.0, 0.0, 30.0, 2.0),
            (1.0, 10.0, 40.0, 1.0),
            (4.0, 33.5, 50.25, 3.0),
        ];
        let data = fit::PurchaseData::new(&rows);
        let p = [0.7, 12.0, 0.9, 2.5];
        for (model, ll) in [
            (
                PurchaseModel::BgNbd,
                bgnbd_ll as fn(&[f64], f64, f64, f64) -> f64,
            ),
            (PurchaseModel::MbgNbd, mbgnbd_ll),
        ] {
            let want: f64 = rows.iter().map(|&(x, tx, t, w)| w * ll(&p, x, tx, t)).sum();
            assert!((data.eval(model, &p).0 - want).abs() < 1e-10 * want.abs());
        }
        let spend = fit::SpendData::new(&[(1.0, 20.0, 0.0, 1.0), (3.0, 35.5, 0.0, 2.0)]);
        let q = [3.0, 4.0, 20.0];
        let want = gamma_gamma_ll(&q, 1.0, 20.0) + 2.0 * gamma_gamma_ll(&q, 3.0, 35.5);
        assert!((spend.eval(&q).0 - want).abs() < 1e-10 * want.abs());
    }

    /// A stop check that turns true part-way ends the fit with `Stopped` after few evaluations.
    #[test]
    fn a_stop_check_ends_a_fit_at_once() {
        let mut obs = Observations::default();
        for i in 0..5_000u32 {
            let f = f64::from(i % 7);
            let t = 200.0 + f64::from(i % 300);
            obs.add(f, if f > 0.0 { t * 0.6 } else { 0.0 }, t, 1.0);
        }
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let stop = || calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 3;
        let r = fit_purchase_until(PurchaseModel::BgNbd, &obs, 0.0, &stop);
        assert!(matches!(r, Err(LtvError::Stopped)), "{r:?}");
        assert!(calls.load(std::sync::atomic::Ordering::SeqCst) < 20);
        assert!(fit_purchase(PurchaseModel::BgNbd, &obs, 0.0).is_ok());
        let mut spend = Observations::default();
        spend.add(2.0, 30.0, 0.0, 1.0);
        spend.add(4.0, 55.0, 0.0, 1.0);
        let g = fit_gamma_gamma_until(&spend, 0.0, &|| true);
        assert!(matches!(g, Err(LtvError::Stopped)));
    }

    /// Large inputs start from a fit on a sample; the result must still be the optimum of the
    /// full data (zero gradient there).
    #[test]
    fn warm_started_fits_reach_the_full_data_optimum() {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Beta, Distribution, Exp, Gamma};
        // Customers drawn from the BG/NBD process itself.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let rates = Gamma::<f64>::new(0.8, 1.0 / 40.0).unwrap();
        let dropouts = Beta::<f64>::new(0.9, 3.5).unwrap();
        let mut obs = Observations::default();
        let mut spend = Observations::default();
        for _ in 0..120_000 {
            let t = rng.random_range(30..1000) as f64;
            let lambda: f64 = rates.sample(&mut rng).max(1e-6);
            let p: f64 = dropouts.sample(&mut rng);
            let gaps = Exp::new(lambda).unwrap();
            let (mut x, mut tx, mut now) = (0.0, 0.0, 0.0);
            loop {
                now += gaps.sample(&mut rng).ceil();
                if now > t {
                    break;
                }
                x += 1.0;
                tx = now;
                if rng.random_bool(p) {
                    break;
                }
            }
            obs.add(x, tx, t, 1.0);
            if x > 0.0 {
                spend.add(x, rng.random_range(5.0..200.0), 0.0, 1.0);
            }
        }
        assert!(obs.len() > WARM_START_ROWS);
        let rows = obs.rows();
        let data = fit::PurchaseData::new(&rows);
        for model in [PurchaseModel::BgNbd, PurchaseModel::MbgNbd] {
            let fit = fit_purchase(model, &obs, 0.0).unwrap();
            assert!(fit.converged, "{model:?}: {fit:?}");
            let (_, g) = penalized(
                &fit.params,
                0.0,
                &data.eval(model, &fit.params).1,
                data.total(),
                0.0,
            );
            assert!(
                g.iter().all(|v| v.abs() < 1e-6),
                "{model:?}: gradient {g:?}"
            );
        }
        let fit = fit_gamma_gamma(&spend, 0.0).unwrap();
        assert!(fit.converged, "{fit:?}");
    }

    #[test]
    fn no_data_is_an_error() {
        assert_eq!(
            fit_purchase(PurchaseModel::BgNbd, &Observations::default(), 0.0),
            Err(LtvError::NoData)
        );
        let mut bad = Observations::default();
        bad.add(1.0, 5.0, 2.0, 1.0);
        assert!(matches!(
            fit_purchase(PurchaseModel::MbgNbd, &bad, 0.0),
            Err(LtvError::BadInput(_))
        ));
    }
}
