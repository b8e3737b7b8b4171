//! Statistics for holdout experiments: `wilson_interval`, `newcombe_interval`,
//! `two_proportion_z_test`, `welch_t_test` and `required_sample_size`.
//!
//! Methods and the published values the tests check them against:
//! - Wilson score interval for one proportion (Wilson 1927; Newcombe 1998a, "Two-sided
//!   confidence intervals for the single proportion", Statistics in Medicine 17:857-872,
//!   method 3, Table I).
//! - Newcombe's hybrid score interval for p1 - p2 (Newcombe 1998b, "Interval estimation for
//!   the difference between independent proportions", Statistics in Medicine 17:873-890,
//!   method 10, Table II).
//! - Pooled two-proportion z-test (its square is Pearson's chi-square of the 2x2 table, R's
//!   `prop.test(correct = FALSE)`).
//! - Welch's unequal-variance t-test with Welch-Satterthwaite degrees of freedom (R's
//!   `t.test(extra ~ group, data = sleep)`: t = -1.8608, df = 17.776, p = 0.07939).
//! - Sample size per arm for two proportions, two-sided, normal approximation (Fleiss; R's
//!   `power.prop.test(p1 = 0.5, p2 = 0.75, power = 0.9)`: n = 76.7).
//!
//! Differences are first minus second. No case yields NaN: counts without information
//! (n = 0; n < 2 for a standard deviation) give NULL, impossible arguments an error naming
//! the argument.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, Int64Builder, StructArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type, Int64Type};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::FunctionError;

/// The two-sided normal quantile of `confidence` (1.959964 at 0.95).
fn z_of(confidence: f64) -> f64 {
    standard_normal().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

fn standard_normal() -> Normal {
    // Mean 0 and standard deviation 1 are valid parameters; the fallback is never taken.
    Normal::new(0.0, 1.0).unwrap_or_else(|_| Normal::standard())
}

/// Wilson's score interval for `x` successes of `n` at normal quantile `z`; None for n = 0.
pub fn wilson(x: f64, n: f64, z: f64) -> Option<(f64, f64)> {
    if n <= 0.0 {
        return None;
    }
    let z2 = z * z;
    let p = x / n;
    let center = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At x = 0 or x = n the bound is 0 or 1 exactly; rounding may leave 1e-17 either side.
    let lower = if x <= 0.0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let upper = if x >= n {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Some((lower, upper))
}

/// Newcombe's hybrid score interval for p1 - p2; None when either n is 0.
pub fn newcombe(x1: f64, n1: f64, x2: f64, n2: f64, z: f64) -> Option<(f64, f64)> {
    let (l1, u1) = wilson(x1, n1, z)?;
    let (l2, u2) = wilson(x2, n2, z)?;
    let (p1, p2) = (x1 / n1, x2 / n2);
    let d = p1 - p2;
    let lower = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let upper = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Some((lower, upper))
}

/// Pooled two-proportion z-test of p1 = p2: (z, two-sided p). None when either n is 0; when
/// both arms are all successes or all failures there is no variance and no difference: z 0,
/// p 1.
pub fn z_test(x1: f64, n1: f64, x2: f64, n2: f64) -> Option<(f64, f64)> {
    if n1 <= 0.0 || n2 <= 0.0 {
        return None;
    }
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return Some((0.0, 1.0));
    }
    let z = (x1 / n1 - x2 / n2) / se;
    Some((z, 2.0 * standard_normal().cdf(-z.abs())))
}

/// Welch's t-test of mean1 = mean2 and the interval of mean1 - mean2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// None when both standard deviations are 0 (the difference is known exactly).
    pub t: Option<f64>,
    pub df: Option<f64>,
    pub p_value: f64,
    pub lower: f64,
    pub upper: f64,
}

/// [`Welch`] from summary statistics; None when an arm has fewer than 2 observations.
pub fn welch(
    m1: f64,
    s1: f64,
    n1: f64,
    m2: f64,
    s2: f64,
    n2: f64,
    confidence: f64,
) -> Option<Welch> {
    if n1 < 2.0 || n2 < 2.0 {
        return None;
    }
    let (v1, v2) = (s1 * s1 / n1, s2 * s2 / n2);
    let se = (v1 + v2).sqrt();
    let d = m1 - m2;
    if se == 0.0 {
        return Some(Welch {
            t: None,
            df: None,
            p_value: if d == 0.0 { 1.0 } else { 0.0 },
            lower: d,
            upper: d,
        });
    }
    let df = (v1 + v2).powi(2) / (v1 * v1 / (n1 - 1.0) + v2 * v2 / (n2 - 1.0));
    let t = d / se;
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let q = dist.inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    Some(Welch {
        t: Some(t),
        df: Some(df),
        p_value: 2.0 * dist.cdf(-t.abs()),
        lower: d - q * se,
        upper: d + q * se,
    })
}

/// Customers per arm to detect `base_rate` moving by `diff` with a two-sided test at `alpha`
/// and `power`: ((z_a * sqrt(2 pbar qbar) + z_b * sqrt(p1 q1 + p2 q2)) / diff)^2, rounded up.
pub fn sample_size(base_rate: f64, diff: f64, alpha: f64, power: f64) -> f64 {
    let (p1, p2) = (base_rate, base_rate + diff);
    let pbar = (p1 + p2) / 2.0;
    let za = z_of(1.0 - alpha);
    let zb = standard_normal().inverse_cdf(power);
    let n = (za * (2.0 * pbar * (1.0 - pbar)).sqrt()
        + zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt())
        / diff;
    (n * n).ceil()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    Wilson,
    Newcombe,
    ZTest,
    Welch,
    SampleSize,
}

impl Stat {
    pub const ALL: [Stat; 5] = [
        Stat::Wilson,
        Stat::Newcombe,
        Stat::ZTest,
        Stat::Welch,
        Stat::SampleSize,
    ];

    fn name(self) -> &'static str {
        match self {
            Stat::Wilson => "wilson_interval",
            Stat::Newcombe => "newcombe_interval",
            Stat::ZTest => "two_proportion_z_test",
            Stat::Welch => "welch_t_test",
            Stat::SampleSize => "required_sample_size",
        }
    }

    /// Arguments in order, whether each is a count (else a real), and how many are required.
    fn args(self) -> (&'static [(&'static str, bool)], usize) {
        match self {
            Stat::Wilson => (&[("x", true), ("n", true), ("confidence", false)], 2),
            Stat::Newcombe => (
                &[
                    ("x1", true),
                    ("n1", true),
                    ("x2", true),
                    ("n2", true),
                    ("confidence", false),
                ],
                4,
            ),
            Stat::ZTest => (&[("x1", true), ("n1", true), ("x2", true), ("n2", true)], 4),
            Stat::Welch => (
                &[
                    ("mean1", false),
                    ("sd1", false),
                    ("n1", true),
                    ("mean2", false),
                    ("sd2", false),
                    ("n2", true),
                    ("confidence", false),
                ],
                6,
            ),
            Stat::SampleSize => (
                &[
                    ("base_rate", false),
                    ("min_detectable_diff", false),
                    ("alpha", false),
                    ("power", false),
                ],
                2,
            ),
        }
    }

    fn outputs(self) -> &'static [&'static str] {
        match self {
            Stat::Wilson | Stat::Newcombe => &["lower", "upper"],
            Stat::ZTest => &["z", "p_value"],
            Stat::Welch => &["t", "df", "p_value", "lower", "upper"],
            Stat::SampleSize => &[],
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StatFunc {
    kind: Stat,
    signature: Signature,
}

impl StatFunc {
    pub fn new(kind: Stat) -> Self {
        Self {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn struct_fields(names: &[&str]) -> Fields {
    names
        .iter()
        .map(|n| Field::new(*n, DataType::Float64, true))
        .collect()
}

/// One row's arguments, checked; `Err` names the bad one.
struct Row<'a> {
    function: &'static str,
    names: &'a [(&'static str, bool)],
    values: Vec<f64>,
}

impl Row<'_> {
    fn bad(&self, i: usize, message: String) -> datafusion::error::DataFusionError {
        FunctionError::InvalidArgument {
            function: self.function,
            argument: self.names[i].0,
            message,
        }
        .into()
    }

    fn count_of(&self, x: usize, n: usize) -> Result<(f64, f64)> {
        let (xv, nv) = (self.values[x], self.values[n]);
        if nv < 0.0 {
            return Err(self.bad(n, format!("must be 0 or more, got {nv}")));
        }
        if xv < 0.0 || xv > nv {
            return Err(self.bad(
                x,
                format!(
                    "must be between 0 and {} ({}), got {xv}",
                    nv, self.names[n].0
                ),
            ));
        }
        Ok((xv, nv))
    }

    fn open_unit(&self, i: usize, default: f64) -> Result<f64> {
        let v = self.values.get(i).copied().unwrap_or(default);
        if !(v > 0.0 && v < 1.0) {
            return Err(self.bad(i, format!("must be between 0 and 1 (exclusive), got {v}")));
        }
        Ok(v)
    }
}

impl ScalarUDFImpl for StatFunc {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.kind.name();
        let (args, required) = self.kind.args();
        if arg_types.len() < required || arg_types.len() > args.len() {
            let list: Vec<&str> = args.iter().map(|(n, _)| *n).collect();
            return plan_err!(
                "{name} takes {required} to {} arguments ({}), got {}",
                args.len(),
                list.join(", "),
                arg_types.len()
            );
        }
        arg_types
            .iter()
            .zip(args)
            .map(|(t, (arg, count))| {
                if *count {
                    if t.is_integer() || t.is_null() {
                        Ok(DataType::Int64)
                    } else {
                        plan_err!("{name} argument {arg} must be an integer count, got {t}")
                    }
                } else if t.is_numeric() || t.is_null() {
                    Ok(DataType::Float64)
                } else {
                    plan_err!("{name} argument {arg} must be a number, got {t}")
                }
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Stat::SampleSize => DataType::Int64,
            k => DataType::Struct(struct_fields(k.outputs())),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let n = arrays.first().map_or(1, |a| a.len());
        let (names, _) = self.kind.args();
        let value = |a: &ArrayRef, row: usize| -> Option<f64> {
            if a.is_null(row) {
                return None;
            }
            match a.data_type() {
                DataType::Int64 => Some(a.as_primitive::<Int64Type>().value(row) as f64),
                _ => Some(a.as_primitive::<Float64Type>().value(row)),
            }
        };
        let outputs = self.kind.outputs();
        let mut columns: Vec<Float64Builder> = outputs
            .iter()
            .map(|_| Float64Builder::with_capacity(n))
            .collect();
        let mut sizes = Int64Builder::with_capacity(n);
        let mut valid = Vec::with_capacity(n);
        for row in 0..n {
            let values: Option<Vec<f64>> = arrays.iter().map(|a| value(a, row)).collect();
            let result = match values {
                None => None,
                Some(values) => {
                    let r = Row {
                        function: self.kind.name(),
                        names,
                        values,
                    };
                    self.evaluate(&r)?
                }
            };
            valid.push(result.is_some());
            match (self.kind, result) {
                (Stat::SampleSize, Some(v)) => sizes.append_option(v[0].map(|n| n as i64)),
                (Stat::SampleSize, None) => sizes.append_null(),
                (_, Some(v)) => {
                    for (b, x) in columns.iter_mut().zip(v) {
                        b.append_option(x);
                    }
                }
                (_, None) => {
                    for b in &mut columns {
                        b.append_null();
                    }
                }
            }
        }
        let result: ArrayRef = match self.kind {
            Stat::SampleSize => Arc::new(sizes.finish()),
            k => {
                let children: Vec<ArrayRef> = columns
                    .iter_mut()
                    .map(|b| Arc::new(b.finish()) as ArrayRef)
                    .collect();
                Arc::new(StructArray::try_new(
                    struct_fields(k.outputs()),
                    children,
                    Some(NullBuffer::from(valid)),
                )?)
            }
        };
        super::columnar_result(result, &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCS[Stat::ALL.iter().position(|k| *k == self.kind).unwrap_or(0)])
    }
}

impl StatFunc {
    /// The row's outputs in [`Stat::outputs`] order (the sample size alone for
    /// `required_sample_size`); None for NULL.
    fn evaluate(&self, r: &Row) -> Result<Option<Vec<Option<f64>>>> {
        let v = &r.values;
        Ok(match self.kind {
            Stat::Wilson => {
                let (x, n) = r.count_of(0, 1)?;
                let z = z_of(r.open_unit(2, 0.95)?);
                wilson(x, n, z).map(|(l, u)| vec![Some(l), Some(u)])
            }
            Stat::Newcombe => {
                let (x1, n1) = r.count_of(0, 1)?;
                let (x2, n2) = r.count_of(2, 3)?;
                let z = z_of(r.open_unit(4, 0.95)?);
                newcombe(x1, n1, x2, n2, z).map(|(l, u)| vec![Some(l), Some(u)])
            }
            Stat::ZTest => {
                let (x1, n1) = r.count_of(0, 1)?;
                let (x2, n2) = r.count_of(2, 3)?;
                z_test(x1, n1, x2, n2).map(|(z, p)| vec![Some(z), Some(p)])
            }
            Stat::Welch => {
                for i in [1, 4] {
                    if !(v[i] >= 0.0) || !v[i].is_finite() {
                        return Err(r.bad(i, format!("must be 0 or more, got {}", v[i])));
                    }
                }
                for i in [0, 3] {
                    if !v[i].is_finite() {
                        return Err(r.bad(i, format!("must be a finite number, got {}", v[i])));
                    }
                }
                for i in [2, 5] {
                    if v[i] < 0.0 {
                        return Err(r.bad(i, format!("must be 0 or more, got {}", v[i])));
                    }
                }
                let confidence = r.open_unit(6, 0.95)?;
                welch(v[0], v[1], v[2], v[3], v[4], v[5], confidence)
                    .map(|w| vec![w.t, w.df, Some(w.p_value), Some(w.lower), Some(w.upper)])
            }
            Stat::SampleSize => {
                let base = r.open_unit(0, 0.0)?;
                let diff = v[1];
                if diff == 0.0 || !diff.is_finite() || !(base + diff > 0.0 && base + diff < 1.0) {
                    return Err(r.bad(
                        1,
                        format!(
                            "must be a non-zero change that keeps base_rate + min_detectable_diff between 0 and 1, got {diff}"
                        ),
                    ));
                }
                let alpha = r.open_unit(2, 0.05)?;
                let power = r.open_unit(3, 0.8)?;
                Some(vec![Some(sample_size(base, diff, alpha, power))])
            }
        })
    }
}

fn doc(description: &str, syntax: &str, args: &[(&str, &str)], example: &str) -> Documentation {
    let mut b = Documentation::builder(
        DocSection {
            include: true,
            label: "rebuy: experiments",
            description: None,
        },
        description.to_string(),
        syntax.to_string(),
    );
    for (name, text) in args {
        b = b.with_argument(*name, *text);
    }
    b.with_sql_example(example.to_string()).build()
}

static DOCS: LazyLock<Vec<Documentation>> = LazyLock::new(|| {
    vec![
        doc(
            "Wilson's score interval {lower, upper} for a proportion x/n (Newcombe 1998a, method 3). \
             n = 0 gives NULL; x outside 0..n is an error. Example: Newcombe's 81 of 263, \
             published 0.2553 to 0.3662.",
            "wilson_interval(x, n [, confidence])",
            &[
                ("x", "successes"),
                ("n", "trials"),
                ("confidence", "default 0.95"),
            ],
            "> SELECT round(w.lower, 4) AS lower, round(w.upper, 4) AS upper FROM (SELECT wilson_interval(81, 263) AS w);\n\
             +--------+--------+\n\
             | lower  | upper  |\n\
             +--------+--------+\n\
             | 0.2553 | 0.3662 |\n\
             +--------+--------+",
        ),
        doc(
            "Newcombe's hybrid score interval {lower, upper} for the difference of proportions \
             x1/n1 - x2/n2 (Newcombe 1998b, method 10). Either n = 0 gives NULL. Example: \
             Newcombe's 56/70 - 48/80, published 0.0524 to 0.3339.",
            "newcombe_interval(x1, n1, x2, n2 [, confidence])",
            &[
                ("x1", "successes in the first group"),
                ("n1", "size of the first group"),
                ("x2", "successes in the second group"),
                ("n2", "size of the second group"),
                ("confidence", "default 0.95"),
            ],
            "> SELECT round(d.lower, 4) AS lower, round(d.upper, 4) AS upper FROM (SELECT newcombe_interval(56, 70, 48, 80) AS d);\n\
             +--------+--------+\n\
             | lower  | upper  |\n\
             +--------+--------+\n\
             | 0.0524 | 0.3339 |\n\
             +--------+--------+",
        ),
        doc(
            "Pooled two-proportion z-test of x1/n1 = x2/n2: {z, p_value} (two-sided); z squared \
             is Pearson's chi-square of the 2x2 table. Either n = 0 gives NULL; no variance (all \
             successes or all failures in both) gives z 0, p_value 1.",
            "two_proportion_z_test(x1, n1, x2, n2)",
            &[
                ("x1", "successes in the first group"),
                ("n1", "size of the first group"),
                ("x2", "successes in the second group"),
                ("n2", "size of the second group"),
            ],
            "> SELECT round(t.z, 4) AS z, round(t.p_value, 5) AS p_value FROM (SELECT two_proportion_z_test(56, 70, 48, 80) AS t);\n\
             +--------+---------+\n\
             | z      | p_value |\n\
             +--------+---------+\n\
             | 2.6502 | 0.00805 |\n\
             +--------+---------+",
        ),
        doc(
            "Welch's t-test of mean1 = mean2 from summary statistics: {t, df, p_value, lower, \
             upper}, the interval being for mean1 - mean2. An arm with n < 2 gives NULL; both sd \
             0 gives t and df NULL, the exact difference as the interval, p_value 1 when the \
             means are equal, else 0. Example: R's sleep data, t = -1.860813, df = 17.7765, p = \
             0.079394, interval -3.36548 to 0.20548.",
            "welch_t_test(mean1, sd1, n1, mean2, sd2, n2 [, confidence])",
            &[
                ("mean1", "mean of the first group"),
                ("sd1", "sample standard deviation of the first group"),
                ("n1", "size of the first group"),
                ("mean2", "mean of the second group"),
                ("sd2", "sample standard deviation of the second group"),
                ("n2", "size of the second group"),
                ("confidence", "default 0.95"),
            ],
            "> SELECT round(w.t, 4) AS t, round(w.df, 3) AS df, round(w.p_value, 4) AS p_value FROM (SELECT welch_t_test(0.75, 1.78901, 10, 2.33, 2.002249, 10) AS w);\n\
             +---------+--------+---------+\n\
             | t       | df     | p_value |\n\
             +---------+--------+---------+\n\
             | -1.8608 | 17.776 | 0.0794  |\n\
             +---------+--------+---------+",
        ),
        doc(
            "Customers needed per arm to detect a change of min_detectable_diff from base_rate \
             with a two-sided test (normal approximation, as R's power.prop.test), rounded up. \
             Example: R's power.prop.test(p1 = 0.5, p2 = 0.75, power = 0.9) gives n = 76.7.",
            "required_sample_size(base_rate, min_detectable_diff [, alpha [, power]])",
            &[
                ("base_rate", "the control arm's rate, between 0 and 1"),
                (
                    "min_detectable_diff",
                    "the smallest change worth detecting (may be negative)",
                ),
                ("alpha", "significance level, default 0.05"),
                ("power", "chance of detecting the change, default 0.8"),
            ],
            "> SELECT required_sample_size(0.5, 0.25, 0.05, 0.9) AS per_arm;\n\
             +---------+\n\
             | per_arm |\n\
             +---------+\n\
             | 77      |\n\
             +---------+",
        ),
    ]
});

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Newcombe (1998a), Table I, method 3 (score interval without continuity correction).
    #[test]
    fn wilson_matches_newcombe_table_one() {
        let z = z_of(0.95);
        for (x, n, lo, hi) in [
            (81.0, 263.0, 0.2553, 0.3662),
            (15.0, 148.0, 0.0624, 0.1605),
            (0.0, 20.0, 0.0, 0.1611),
            (1.0, 29.0, 0.0061, 0.1718),
        ] {
            let (l, u) = wilson(x, n, z).expect("n > 0");
            assert!(close(l, lo, 5e-5) && close(u, hi, 5e-5), "{x}/{n}: {l} {u}");
        }
        assert_eq!(wilson(0.0, 0.0, z), None);
        assert_eq!(wilson(20.0, 20.0, z).map(|w| w.1), Some(1.0));
    }

    /// Newcombe (1998b), Table II, method 10.
    #[test]
    fn newcombe_matches_table_two() {
        let z = z_of(0.95);
        for (x1, n1, x2, n2, lo, hi) in [
            (56.0, 70.0, 48.0, 80.0, 0.0524, 0.3339),
            (9.0, 10.0, 3.0, 10.0, 0.1705, 0.8090),
        ] {
            let (l, u) = newcombe(x1, n1, x2, n2, z).expect("n > 0");
            assert!(
                close(l, lo, 5e-5) && close(u, hi, 5e-5),
                "{x1}/{n1}-{x2}/{n2}: {l} {u}"
            );
        }
    }

    /// R: t.test(extra ~ group, data = sleep), from the raw data.
    #[test]
    fn welch_matches_r_sleep() {
        let g1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
        let g2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
        let stats = |g: &[f64]| {
            let m = g.iter().sum::<f64>() / g.len() as f64;
            let v = g.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (g.len() - 1) as f64;
            (m, v.sqrt())
        };
        let ((m1, s1), (m2, s2)) = (stats(&g1), stats(&g2));
        let w = welch(m1, s1, 10.0, m2, s2, 10.0, 0.95).expect("n >= 2");
        assert!(close(w.t.unwrap_or(0.0), -1.860813, 5e-7), "{w:?}");
        assert!(close(w.df.unwrap_or(0.0), 17.7765, 5e-5), "{w:?}");
        assert!(close(w.p_value, 0.079394, 5e-7), "{w:?}");
        assert!(
            close(w.lower, -3.36548, 5e-6) && close(w.upper, 0.20548, 5e-6),
            "{w:?}"
        );
    }

    /// z squared equals Pearson's chi-square of the same 2x2 table, worked here by hand.
    #[test]
    fn z_squared_is_pearson_chi_square() {
        let (z, p) = z_test(56.0, 70.0, 48.0, 80.0).expect("n > 0");
        let observed: [f64; 4] = [56.0, 14.0, 48.0, 32.0];
        let (r1, r2, c1, c2, t) = (70.0, 80.0, 104.0, 46.0, 150.0);
        let expected = [r1 * c1 / t, r1 * c2 / t, r2 * c1 / t, r2 * c2 / t];
        let chi2: f64 = observed
            .iter()
            .zip(expected)
            .map(|(o, e)| (o - e).powi(2) / e)
            .sum();
        assert!(close(z * z, chi2, 1e-9), "{z} {chi2}");
        assert!(close(p, 0.008045, 5e-6), "{p}");
        assert_eq!(z_test(0.0, 10.0, 0.0, 12.0), Some((0.0, 1.0)));
        assert_eq!(z_test(1.0, 0.0, 0.0, 12.0), None);
    }

    /// R: power.prop.test(p1 = 0.5, p2 = 0.75, power = 0.9) gives n = 76.7 per group.
    #[test]
    fn sample_size_matches_r() {
        assert_eq!(sample_size(0.5, 0.25, 0.05, 0.9), 77.0);
        assert_eq!(sample_size(0.75, -0.25, 0.05, 0.9), 77.0);
    }
}
