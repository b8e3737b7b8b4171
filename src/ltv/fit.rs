//! The likelihoods with their gradients, evaluated over distinct observations, and the BFGS
//! minimiser. Everything that depends only on the frequency (log-gamma and digamma terms) or
//! only on t or recency (their logarithms) is computed once per distinct value per evaluation,
//! so one evaluation costs about one `exp` and one `ln` per distinct (frequency, recency, t);
//! the work is split over the machine's cores.

use std::collections::HashMap;

use super::PurchaseModel;
use super::special::{digamma, ln_gamma};

/// Sorted distinct values and, per row, the index of its value.
fn index(values: impl Iterator<Item = f64>) -> (Vec<f64>, Vec<u32>) {
    let values: Vec<f64> = values.collect();
    let mut distinct = values.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let position: HashMap<u64, u32> = distinct
        .iter()
        .enumerate()
        .map(|(i, v)| (v.to_bits(), i as u32))
        .collect();
    let idx = values.iter().map(|v| position[&v.to_bits()]).collect();
    (distinct, idx)
}

pub struct PurchaseData {
    xs: Vec<f64>,
    ts: Vec<f64>,
    txs: Vec<f64>,
    /// (x index, t index, recency index, weight)
    rows: Vec<(u32, u32, u32, f64)>,
    total: f64,
}

impl PurchaseData {
    pub fn new(rows: &[(f64, f64, f64, f64)]) -> Self {
        let (xs, xi) = index(rows.iter().map(|r| r.0));
        let (txs, txi) = index(rows.iter().map(|r| r.1));
        let (ts, ti) = index(rows.iter().map(|r| r.2));
        let rows: Vec<_> = (0..rows.len())
            .map(|i| (xi[i], ti[i], txi[i], rows[i].3))
            .collect();
        let total = rows.iter().map(|r| r.3).sum();
        PurchaseData {
            xs,
            ts,
            txs,
            rows,
            total,
        }
    }

    pub fn total(&self) -> f64 {
        self.total
    }

    /// Total log-likelihood and its gradient with respect to (r, alpha, a, b).
    pub fn eval(&self, model: PurchaseModel, p: &[f64]) -> (f64, [f64; 4]) {
        let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
        // Per distinct frequency: the x-only terms and their derivatives.
        let shift = match model {
            PurchaseModel::BgNbd => 0.0,
            PurchaseModel::MbgNbd => 1.0,
        };
        let per_x: Vec<[f64; 7]> = self
            .xs
            .iter()
            .map(|&x| {
                let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
                let a2 = ln_gamma(a + b) + ln_gamma(b + x + shift)
                    - ln_gamma(b)
                    - ln_gamma(a + b + x + shift);
                let d_r = digamma(r + x) - digamma(r) + alpha.ln();
                let d_alpha = r / alpha;
                let d_a = digamma(a + b) - digamma(a + b + x + shift);
                let d_b = digamma(a + b) + digamma(b + x + shift)
                    - digamma(b)
                    - digamma(a + b + x + shift);
                // ln(b + x - 1) for BG/NBD (x > 0), ln(b + x) for MBG/NBD
                let lb = (b + x - 1.0 + shift).ln();
                [
                    a1 + a2,
                    d_r,
                    d_alpha,
                    d_a,
                    d_b,
                    lb,
                    1.0 / (b + x - 1.0 + shift),
                ]
            })
            .collect();
        let ln_t: Vec<f64> = self.ts.iter().map(|t| (alpha + t).ln()).collect();
        let inv_t: Vec<f64> = self.ts.iter().map(|t| 1.0 / (alpha + t)).collect();
        let ln_tx: Vec<f64> = self.txs.iter().map(|t| (alpha + t).ln()).collect();
        let inv_tx: Vec<f64> = self.txs.iter().map(|t| 1.0 / (alpha + t)).collect();
        let ln_a = a.ln();
        let work = |rows: &[(u32, u32, u32, f64)]| -> (f64, [f64; 4]) {
            let mut ll = 0.0;
            let mut g = [0.0f64; 4];
            for &(xi, ti, txi, w) in rows {
                let x = self.xs[xi as usize];
                let px = &per_x[xi as usize];
                let (lt, it, ltx, itx) = (
                    ln_t[ti as usize],
                    inv_t[ti as usize],
                    ln_tx[txi as usize],
                    inv_tx[txi as usize],
                );
                let rx = r + x;
                let a3 = -rx * lt;
                let (d3_r, d3_alpha) = (-lt, -rx * it);
                let (value, gr, galpha, ga, gb) = match model {
                    PurchaseModel::BgNbd => {
                        if x > 0.0 {
                            let a4 = ln_a - px[5] - rx * ltx;
                            let m = a3.max(a4);
                            let e3 = (a3 - m).exp();
                            let e4 = (a4 - m).exp();
                            let s = e3 + e4;
                            let (w3, w4) = (e3 / s, e4 / s);
                            (
                                m + s.ln(),
                                w3 * d3_r + w4 * (-ltx),
                                w3 * d3_alpha + w4 * (-rx * itx),
                                w4 / a,
                                -w4 * px[6],
                            )
                        } else {
                            (a3, d3_r, d3_alpha, 0.0, 0.0)
                        }
                    }
                    PurchaseModel::MbgNbd => {
                        let a4 = ln_a - px[5] + rx * (lt - ltx);
                        // ln(1 + e^a4) and its derivative σ(a4)
                        let (soft, sig) = if a4 > 0.0 {
                            let e = (-a4).exp();
                            (a4 + e.ln_1p(), 1.0 / (1.0 + e))
                        } else {
                            let e = a4.exp();
                            (e.ln_1p(), e / (1.0 + e))
                        };
                        (
                            a3 + soft,
                            d3_r + sig * (lt - ltx),
                            d3_alpha + sig * rx * (it - itx),
                            sig / a,
                            -sig * px[6],
                        )
                    }
                };
                ll += w * (px[0] + value);
                g[0] += w * (px[1] + gr);
                g[1] += w * (px[2] + galpha);
                g[2] += w * (px[3] + ga);
                g[3] += w * (px[4] + gb);
            }
            (ll, g)
        };
        split_sum(&self.rows, work)
    }
}

pub struct SpendData {
    xs: Vec<f64>,
    /// (x index, x, m, ln m, ln x, weight)
    rows: Vec<(u32, f64, f64, f64, f64, f64)>,
    total: f64,
}

impl SpendData {
    pub fn new(rows: &[(f64, f64, f64, f64)]) -> Self {
        let (xs, xi) = index(rows.iter().map(|r| r.0));
        let rows: Vec<_> = rows
            .iter()
            .enumerate()
            .map(|(i, &(x, m, _, w))| (xi[i], x, m, m.ln(), x.ln(), w))
            .collect();
        let total = rows.iter().map(|r| r.5).sum();
        SpendData { xs, rows, total }
    }

    pub fn total(&self) -> f64 {
        self.total
    }

    /// Total log-likelihood and its gradient with respect to (p, q, v).
    pub fn eval(&self, params: &[f64]) -> (f64, [f64; 3]) {
        let (p, q, v) = (params[0], params[1], params[2]);
        let per_x: Vec<[f64; 3]> = self
            .xs
            .iter()
            .map(|&x| {
                [
                    ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q) + q * v.ln(),
                    digamma(p * x + q),
                    digamma(p * x),
                ]
            })
            .collect();
        let (ln_v, psi_q) = (v.ln(), digamma(q));
        let work = |rows: &[(u32, f64, f64, f64, f64, f64)]| -> (f64, [f64; 3]) {
            let mut ll = 0.0;
            let mut g = [0.0f64; 3];
            for &(xi, x, m, ln_m, ln_x, w) in rows {
                let t = &per_x[xi as usize];
                let lxm = (x * m + v).ln();
                ll += w * (t[0] + (p * x - 1.0) * ln_m + p * x * ln_x - (p * x + q) * lxm);
                g[0] += w * x * (t[1] - t[2] + ln_m + ln_x - lxm);
                g[1] += w * (t[1] - psi_q + ln_v - lxm);
                g[2] += w * (q / v - (p * x + q) / (x * m + v));
            }
            (ll, g)
        };
        split_sum(&self.rows, work)
    }
}

/// Sums `work` over `rows` split across the available cores.
fn split_sum<T: Sync, const N: usize>(
    rows: &[T],
    work: impl Fn(&[T]) -> (f64, [f64; N]) + Sync,
) -> (f64, [f64; N]) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    if threads <= 1 || rows.len() < 20_000 {
        return work(rows);
    }
    let chunk = rows.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|c| {
                let work = &work;
                scope.spawn(move || work(c))
            })
            .collect();
        let mut total = (0.0, [0.0; N]);
        for h in handles {
            let (l, g) = h.join().unwrap_or((f64::NAN, [f64::NAN; N]));
            total.0 += l;
            for i in 0..N {
                total.1[i] += g[i];
            }
        }
        total
    })
}

pub struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
    pub converged: bool,
    pub iterations: u32,
    /// The inverse-Hessian estimate at `x`, to warm-start a related minimisation.
    pub h: Vec<Vec<f64>>,
}

/// Minimises `f` (value and gradient) with BFGS and a backtracking Armijo line search.
/// `stop` is asked before every evaluation of `f`; once it says so, the current point is
/// returned, not converged.
pub fn minimize(
    f: &dyn Fn(&[f64]) -> (f64, Vec<f64>),
    x0: &[f64],
    h0: Option<Vec<Vec<f64>>>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Minimum {
    let n = x0.len();
    let mut x = x0.to_vec();
    let (mut fx, mut g) = f(&x);
    let mut h = h0.unwrap_or_else(|| identity(n));
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let norm = |g: &[f64]| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for iteration in 1..=500u32 {
        if stop() || !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
            return Minimum {
                x,
                f: fx,
                converged: false,
                iterations: iteration,
                h,
            };
        }
        if norm(&g) < 1e-10 {
            return Minimum {
                x,
                f: fx,
                converged: true,
                iterations: iteration,
                h,
            };
        }
        let mut p: Vec<f64> = (0..n).map(|i| -dot(&h[i], &g)).collect();
        let mut slope = dot(&g, &p);
        if slope >= 0.0 {
            h = identity(n);
            p = g.iter().map(|v| -v).collect();
            slope = dot(&g, &p);
        }
        // Keep steps in log-parameter space moderate.
        let longest = norm(&p);
        let mut step = if longest > 5.0 { 5.0 / longest } else { 1.0 };
        let mut accepted = None;
        for _ in 0..60 {
            if stop() {
                break;
            }
            let xn: Vec<f64> = x.iter().zip(&p).map(|(a, b)| a + step * b).collect();
            let (fxn, gn) = f(&xn);
            if fxn.is_finite() && fxn <= fx + 1e-4 * step * slope {
                accepted = Some((xn, fxn, gn));
                break;
            }
            step *= 0.5;
        }
        let Some((xn, fxn, gn)) = accepted else {
            return Minimum {
                x,
                f: fx,
                converged: norm(&g) < 1e-6,
                iterations: iteration,
                h,
            };
        };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-16 {
            let hy: Vec<f64> = (0..n).map(|i| dot(&h[i], &y)).collect();
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i][j] +=
                        (sy + yhy) * s[i] * s[j] / (sy * sy) - (hy[i] * s[j] + s[i] * hy[j]) / sy;
                }
            }
        }
        let settled = (fx - fxn).abs() <= 1e-16 * fx.abs().max(1.0);
        x = xn;
        fx = fxn;
        g = gn;
        if settled && norm(&g) < 1e-7 {
            return Minimum {
                x,
                f: fx,
                converged: true,
                iterations: iteration,
                h,
            };
        }
    }
    Minimum {
        x,
        f: fx,
        converged: false,
        iterations: 500,
        h,
    }
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The analytic gradients agree with central differences of the likelihoods.
    #[test]
    fn gradients_match_finite_differences() {
        let rows = [
            (0.0, 0.0, 30.0, 2.0),
            (1.0, 10.0, 40.0, 1.0),
            (4.0, 33.5, 50.25, 3.0),
            (12.0, 90.0, 91.0, 1.0),
        ];
        let data = PurchaseData::new(&rows);
        for model in [PurchaseModel::BgNbd, PurchaseModel::MbgNbd] {
            let p = [0.7, 12.0, 0.9, 2.5];
            let (_, g) = data.eval(model, &p);
            for i in 0..4 {
                let h = 1e-6 * p[i];
                let mut up = p;
                up[i] += h;
                let mut down = p;
                down[i] -= h;
                let numeric = (data.eval(model, &up).0 - data.eval(model, &down).0) / (2.0 * h);
                assert!(
                    (numeric - g[i]).abs() < 1e-6 * numeric.abs().max(1.0),
                    "{model:?} param {i}: {numeric} vs {}",
                    g[i]
                );
            }
        }
        let spend = SpendData::new(&[
            (1.0, 20.0, 0.0, 1.0),
            (3.0, 35.5, 0.0, 2.0),
            (7.0, 12.0, 0.0, 1.0),
        ]);
        let p = [3.0, 4.0, 20.0];
        let (_, g) = spend.eval(&p);
        for i in 0..3 {
            let h = 1e-6 * p[i];
            let mut up = p;
            up[i] += h;
            let mut down = p;
            down[i] -= h;
            let numeric = (spend.eval(&up).0 - spend.eval(&down).0) / (2.0 * h);
            assert!(
                (numeric - g[i]).abs() < 1e-6 * numeric.abs().max(1.0),
                "gamma-gamma param {i}: {numeric} vs {}",
                g[i]
            );
        }
    }
}
