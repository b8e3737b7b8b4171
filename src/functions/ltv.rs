//! Lifetime-value functions: fitting aggregates (`bgnbd_fit`, `mbgnbd_fit`, `gamma_gamma_fit`)
//! that return a model struct with diagnostics, and scalar functions that apply a model
//! (`bgnbd_expected_purchases`, `bgnbd_p_alive`, `bgnbd_expected_purchases_new`,
//! `mbgnbd_expected_purchases`, `mbgnbd_p_alive`, `gamma_gamma_expected_value`, `clv`).
//! The math is in [`crate::ltv`]; inputs are in one time unit (days in `customer_summary`) and
//! predictions are in the same unit.
//!
//! Fits are cached by model, penalizer and content of the (distinct) inputs, so a dashboard
//! querying `customer_clv` again on the same data snapshot and as-of date does not refit.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, StringArray,
    StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, DocSection, Documentation, ScalarFunctionArgs,
    ScalarUDFImpl, Signature, Volatility,
};

use super::FunctionError;
use crate::ltv::{self, Fit, Observations, PurchaseModel};

/// Which model a fitting aggregate fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FitKind {
    Purchase(PurchaseModel),
    GammaGamma,
}

impl FitKind {
    pub const ALL: [FitKind; 3] = [
        FitKind::Purchase(PurchaseModel::BgNbd),
        FitKind::Purchase(PurchaseModel::MbgNbd),
        FitKind::GammaGamma,
    ];

    fn name(self) -> &'static str {
        match self {
            FitKind::Purchase(PurchaseModel::BgNbd) => "bgnbd_fit",
            FitKind::Purchase(PurchaseModel::MbgNbd) => "mbgnbd_fit",
            FitKind::GammaGamma => "gamma_gamma_fit",
        }
    }
    fn model(self) -> &'static str {
        match self {
            FitKind::Purchase(m) => m.name(),
            FitKind::GammaGamma => "gamma_gamma",
        }
    }
    fn params(self) -> &'static [&'static str] {
        match self {
            FitKind::Purchase(_) => &["r", "alpha", "a", "b"],
            FitKind::GammaGamma => &["p", "q", "v"],
        }
    }
    /// Data arguments before the optional penalizer.
    fn data_args(self) -> usize {
        match self {
            FitKind::Purchase(_) => 3,
            FitKind::GammaGamma => 2,
        }
    }
}

/// The struct a fit returns: model name, parameters, then diagnostics.
pub fn model_fields(kind: FitKind) -> Fields {
    let mut fields = vec![Field::new("model", DataType::Utf8, false)];
    for p in kind.params() {
        fields.push(Field::new(*p, DataType::Float64, true));
    }
    fields.extend([
        Field::new("log_likelihood", DataType::Float64, true),
        Field::new("n", DataType::Int64, false),
        Field::new("converged", DataType::Boolean, false),
        Field::new("iterations", DataType::Int64, false),
        Field::new("fit_ms", DataType::Float64, false),
        Field::new("cached", DataType::Boolean, false),
    ]);
    Fields::from(fields)
}

type CacheKey = (FitKind, u64, u64);
static FIT_CACHE: LazyLock<Mutex<Vec<(CacheKey, Fit)>>> = LazyLock::new(|| Mutex::new(Vec::new()));
const CACHE_SIZE: usize = 32;

fn cached_fit(
    kind: FitKind,
    obs: &Observations,
    penalizer: f64,
    stop: &super::stop::Ticket,
) -> Result<(Fit, bool, f64)> {
    let key = (kind, obs.fingerprint(), penalizer.to_bits());
    if let Ok(cache) = FIT_CACHE.lock()
        && let Some((_, fit)) = cache.iter().find(|(k, _)| *k == key)
    {
        return Ok((fit.clone(), true, 0.0));
    }
    let started = Instant::now();
    let stopped = || stop.is_set();
    let fit = match kind {
        FitKind::Purchase(m) => ltv::fit_purchase_until(m, obs, penalizer, &stopped),
        FitKind::GammaGamma => ltv::fit_gamma_gamma_until(obs, penalizer, &stopped),
    }
    .map_err(|e| {
        if matches!(e, ltv::LtvError::Stopped) {
            return DataFusionError::from(FunctionError::Stopped {
                function: kind.name(),
            });
        }
        DataFusionError::from(FunctionError::InvalidArgument {
            function: kind.name(),
            argument: "data",
            message: format!("cannot be fitted: {e}"),
        })
    })?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(mut cache) = FIT_CACHE.lock() {
        if cache.len() >= CACHE_SIZE {
            cache.remove(0);
        }
        cache.push((key, fit.clone()));
    }
    Ok((fit, false, ms))
}

fn fit_scalar(kind: FitKind, fit: &Fit, cached: bool, ms: f64) -> Result<ScalarValue> {
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![kind.model()]))];
    for p in &fit.params {
        columns.push(Arc::new(Float64Array::from(vec![*p])));
    }
    columns.extend([
        Arc::new(Float64Array::from(vec![fit.log_likelihood])) as ArrayRef,
        Arc::new(Int64Array::from(vec![fit.n as i64])),
        Arc::new(BooleanArray::from(vec![fit.converged])),
        Arc::new(Int64Array::from(vec![fit.iterations as i64])),
        Arc::new(Float64Array::from(vec![ms])),
        Arc::new(BooleanArray::from(vec![cached])),
    ]);
    let array = StructArray::try_new(model_fields(kind), columns, None)?;
    Ok(ScalarValue::Struct(Arc::new(array)))
}

/// A fitting aggregate. `stop` is the running statement's stop flag when the session put one
/// in (the server does, through [`super::stop::StopFits`]), so that a statement timeout, a
/// cancel request or a shutdown ends a fit within one likelihood evaluation.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FitAggregate {
    kind: FitKind,
    signature: Signature,
    stop: super::stop::Stop,
}

impl FitAggregate {
    pub fn new(kind: FitKind) -> Self {
        Self::with_stop(kind, super::stop::Stop::never())
    }

    pub fn with_stop(kind: FitKind, stop: super::stop::Stop) -> Self {
        FitAggregate {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
            stop,
        }
    }

    /// The kind of fit a registered aggregate of this name is.
    pub fn kind_named(name: &str) -> Option<FitKind> {
        FitKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn stop(&self) -> &super::stop::Stop {
        &self.stop
    }
}

fn numeric_args(
    name: &str,
    types: &[DataType],
    required: usize,
    optional: usize,
) -> Result<Vec<DataType>> {
    if types.len() < required || types.len() > required + optional {
        let expected = if optional == 0 {
            format!("{required}")
        } else {
            format!("{required} to {}", required + optional)
        };
        return plan_err!("{name} takes {expected} arguments, got {}", types.len());
    }
    for (i, t) in types.iter().enumerate() {
        if !(t.is_numeric() || t.is_null()) {
            return plan_err!("{name}: argument {} must be numeric, got {t}", i + 1);
        }
    }
    Ok(vec![DataType::Float64; types.len()])
}

static SECTION: DocSection = DocSection {
    include: true,
    label: "rebuy: lifetime value",
    description: None,
};

const SAMPLE: &str = "(VALUES (0, 0.0, 30.0, 0.0), (1, 10.0, 40.0, 20.0), (2, 25.0, 35.0, 30.0), (0, 0.0, 12.0, 0.0), (3, 30.0, 31.0, 25.0), (1, 3.0, 50.0, 15.0), (5, 40.0, 45.0, 22.0), (0, 0.0, 44.0, 0.0), (2, 8.0, 60.0, 18.0), (4, 20.0, 22.0, 40.0)) AS c(frequency, recency, t, monetary_value)";

static FIT_DOCS: LazyLock<[Documentation; 3]> = LazyLock::new(|| {
    let purchase = |name: &str, paper: &str, args: &str, result: &str| {
        Documentation::builder(
            SECTION.clone(),
            format!("Fits {paper} by maximum likelihood on one row per customer and returns a struct {{model, r, alpha, a, b, log_likelihood, n, converged, iterations, fit_ms, cached}} to pass to the model's functions. Inputs are in one time unit (days in customer_summary). converged is false when the optimiser did not settle or the data do not identify the model (all one-time buyers, for instance). The optional penalizer adds penalizer * sum(param^2) to the mean negative log-likelihood, as in the lifetimes package."),
            format!("{name}(frequency, recency, t [, penalizer])"),
        )
        .with_argument("frequency", "repeat purchase periods (purchase days - 1)")
        .with_argument("recency", "time from the first to the last purchase")
        .with_argument("t", "time from the first purchase to the end of observation")
        .with_sql_example(format!("> SELECT m['model'] AS model, m['n'] AS n, m['converged'] AS converged FROM (SELECT {name}({args}) AS m FROM {SAMPLE});\n{result}"))
        .build()
    };
    [
        purchase(
            "bgnbd_fit",
            "the BG/NBD model (Fader, Hardie & Lee 2005, \"Counting your customers the easy way\")",
            "frequency, recency, t",
            "+-------+----+-----------+\n| model | n  | converged |\n+-------+----+-----------+\n| bgnbd | 10 | true      |\n+-------+----+-----------+",
        ),
        purchase(
            "mbgnbd_fit",
            "the MBG/NBD model (Batislam, Denizel & Filiztekin 2007), in which one-time buyers can also drop out (on ten customers, as here, its unpenalised fit runs off to the Poisson limit and reports converged = false; a small penalizer settles it)",
            "frequency, recency, t, 0.01",
            "+--------+----+-----------+\n| model  | n  | converged |\n+--------+----+-----------+\n| mbgnbd | 10 | true      |\n+--------+----+-----------+",
        ),
        Documentation::builder(
            SECTION.clone(),
            "Fits the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, \"RFM and CLV: using iso-value curves\") on the customers with frequency > 0 and a positive monetary_value (other rows are skipped) and returns a struct {model, p, q, v, log_likelihood, n, converged, iterations, fit_ms, cached}.",
            "gamma_gamma_fit(frequency, monetary_value [, penalizer])",
        )
        .with_argument("frequency", "repeat purchase periods")
        .with_argument("monetary_value", "mean value of the repeat purchases")
        .with_sql_example(format!("> SELECT m['model'] AS model, m['n'] AS n FROM (SELECT gamma_gamma_fit(frequency, monetary_value) AS m FROM {SAMPLE});\n+-------------+---+\n| model       | n |\n+-------------+---+\n| gamma_gamma | 7 |\n+-------------+---+"))
        .build(),
    ]
});

impl AggregateUDFImpl for FitAggregate {
    fn name(&self) -> &str {
        self.kind.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        numeric_args(self.kind.name(), arg_types, self.kind.data_args(), 1)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(model_fields(self.kind)))
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(FitAccumulator {
            kind: self.kind,
            obs: Observations::default(),
            penalizer: None,
            stop: self.stop.ticket(),
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Float64, true)));
        Ok(["a", "b", "c", "weight", "penalizer"]
            .iter()
            .map(|n| {
                Arc::new(Field::new(
                    format!("{}[{n}]", args.name),
                    list.clone(),
                    true,
                ))
            })
            .collect())
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(
            &FIT_DOCS[match self.kind {
                FitKind::Purchase(PurchaseModel::BgNbd) => 0,
                FitKind::Purchase(PurchaseModel::MbgNbd) => 1,
                FitKind::GammaGamma => 2,
            }],
        )
    }
}

#[derive(Debug)]
struct FitAccumulator {
    kind: FitKind,
    obs: Observations,
    penalizer: Option<f64>,
    stop: super::stop::Ticket,
}

fn list_of(values: Vec<f64>) -> ScalarValue {
    let array: ArrayRef = Arc::new(Float64Array::from(values));
    let len = array.len();
    let list = ListArray::new(
        Arc::new(Field::new("item", DataType::Float64, true)),
        OffsetBuffer::from_lengths([len]),
        array,
        None,
    );
    ScalarValue::List(Arc::new(list))
}

impl Accumulator for FitAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let cols: Vec<&Float64Array> = values
            .iter()
            .map(|v| v.as_primitive::<Float64Type>())
            .collect();
        let n = self.kind.data_args();
        if let Some(p) = cols.get(n) {
            if let Some(v) = p.iter().flatten().next() {
                if !(v >= 0.0 && v.is_finite()) {
                    return Err(FunctionError::InvalidArgument {
                        function: self.kind.name(),
                        argument: "penalizer",
                        message: format!("must be a number >= 0, got {v}"),
                    }
                    .into());
                }
                self.penalizer = Some(v);
            }
        }
        for row in 0..cols[0].len() {
            if (0..n).any(|i| cols[i].is_null(row)) {
                continue;
            }
            let (a, b) = (cols[0].value(row), cols[1].value(row));
            match self.kind {
                FitKind::Purchase(_) => self.obs.add(a, b, cols[2].value(row), 1.0),
                FitKind::GammaGamma => {
                    if a > 0.0 && b > 0.0 {
                        self.obs.add(a, b, 0.0, 1.0)
                    }
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let rows = self.obs.rows();
        Ok(vec![
            list_of(rows.iter().map(|r| r.0).collect()),
            list_of(rows.iter().map(|r| r.1).collect()),
            list_of(rows.iter().map(|r| r.2).collect()),
            list_of(rows.iter().map(|r| r.3).collect()),
            list_of(self.penalizer.into_iter().collect()),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists: Vec<&ListArray> = states.iter().map(|s| s.as_list::<i32>()).collect();
        for row in 0..lists[0].len() {
            let cols: Vec<ArrayRef> = lists.iter().map(|l| l.value(row)).collect();
            let f: Vec<&Float64Array> = cols
                .iter()
                .map(|c| c.as_primitive::<Float64Type>())
                .collect();
            for i in 0..f[0].len() {
                self.obs
                    .add(f[0].value(i), f[1].value(i), f[2].value(i), f[3].value(i));
            }
            if f[4].len() > 0 {
                self.penalizer = Some(f[4].value(0));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        // A fit is seconds of CPU: off the async worker, so that the worker's other
        // connections go on meanwhile.
        let (fit, cached, ms) = super::stop::off_the_async_workers(|| {
            cached_fit(
                self.kind,
                &self.obs,
                self.penalizer.unwrap_or(0.0),
                &self.stop,
            )
        })?;
        fit_scalar(self.kind, &fit, cached, ms)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.obs.len() * 48
    }
}

/// Scalar functions applying a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Apply {
    Expected(PurchaseModel),
    PAlive(PurchaseModel),
    ExpectedNew,
    ExpectedValue,
    Clv,
}

impl Apply {
    pub const ALL: [Apply; 7] = [
        Apply::Expected(PurchaseModel::BgNbd),
        Apply::PAlive(PurchaseModel::BgNbd),
        Apply::ExpectedNew,
        Apply::Expected(PurchaseModel::MbgNbd),
        Apply::PAlive(PurchaseModel::MbgNbd),
        Apply::ExpectedValue,
        Apply::Clv,
    ];
    fn name(self) -> &'static str {
        match self {
            Apply::Expected(PurchaseModel::BgNbd) => "bgnbd_expected_purchases",
            Apply::Expected(PurchaseModel::MbgNbd) => "mbgnbd_expected_purchases",
            Apply::PAlive(PurchaseModel::BgNbd) => "bgnbd_p_alive",
            Apply::PAlive(PurchaseModel::MbgNbd) => "mbgnbd_p_alive",
            Apply::ExpectedNew => "bgnbd_expected_purchases_new",
            Apply::ExpectedValue => "gamma_gamma_expected_value",
            Apply::Clv => "clv",
        }
    }
    /// (model arguments, numeric arguments required, numeric optional)
    fn arity(self) -> (usize, usize, usize) {
        match self {
            Apply::Expected(_) => (1, 4, 0),
            Apply::PAlive(_) => (1, 3, 0),
            Apply::ExpectedNew => (1, 1, 0),
            Apply::ExpectedValue => (1, 2, 0),
            Apply::Clv => (2, 6, 1),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ApplyFunc {
    kind: Apply,
    signature: Signature,
}

impl ApplyFunc {
    pub fn new(kind: Apply) -> Self {
        ApplyFunc {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static APPLY_DOCS: LazyLock<Vec<Documentation>> = LazyLock::new(|| {
    let fitted = |fit: &str| format!("(SELECT {fit}(frequency, recency, t) AS m FROM {SAMPLE})");
    let doc = |_kind: Apply, text: &str, syntax: &str, sql: String, result: &str| {
        Documentation::builder(SECTION.clone(), text.to_string(), syntax.to_string())
            .with_argument("model", "a struct returned by the matching *_fit aggregate")
            .with_sql_example(format!("> {sql};\n{result}"))
            .build()
    };
    vec![
        doc(
            Apply::Expected(PurchaseModel::BgNbd),
            "BG/NBD conditional expected number of purchases in the next `horizon` time units of a customer with (frequency, recency, t) (Fader, Hardie & Lee 2005, eq. 10).",
            "bgnbd_expected_purchases(model, frequency, recency, t, horizon)",
            format!(
                "SELECT round(bgnbd_expected_purchases(m, 2, 30.0, 40.0, 30.0), 6) > 0 AS positive FROM {}",
                fitted("bgnbd_fit")
            ),
            "+----------+\n| positive |\n+----------+\n| true     |\n+----------+",
        ),
        doc(
            Apply::PAlive(PurchaseModel::BgNbd),
            "BG/NBD probability that a customer with (frequency, recency, t) is still active; 1 for customers without repeat purchases (a property of BG/NBD; MBG/NBD does not have it).",
            "bgnbd_p_alive(model, frequency, recency, t)",
            format!(
                "SELECT bgnbd_p_alive(m, 0, 0.0, 40.0) AS one_time_buyer FROM {}",
                fitted("bgnbd_fit")
            ),
            "+----------------+\n| one_time_buyer |\n+----------------+\n| 1.0            |\n+----------------+",
        ),
        doc(
            Apply::ExpectedNew,
            "BG/NBD expected number of purchases of a new customer in `horizon` time units (eq. 9).",
            "bgnbd_expected_purchases_new(model, horizon)",
            format!(
                "SELECT bgnbd_expected_purchases_new(m, 0.0) AS at_zero FROM {}",
                fitted("bgnbd_fit")
            ),
            "+---------+\n| at_zero |\n+---------+\n| 0.0     |\n+---------+",
        ),
        doc(
            Apply::Expected(PurchaseModel::MbgNbd),
            "MBG/NBD conditional expected number of purchases in the next `horizon` time units.",
            "mbgnbd_expected_purchases(model, frequency, recency, t, horizon)",
            format!(
                "SELECT mbgnbd_expected_purchases(m, 1, 10.0, 40.0, 0.0) AS none_yet FROM {}",
                fitted("mbgnbd_fit")
            ),
            "+----------+\n| none_yet |\n+----------+\n| 0.0      |\n+----------+",
        ),
        doc(
            Apply::PAlive(PurchaseModel::MbgNbd),
            "MBG/NBD probability that a customer is still active; below 1 also for one-time buyers.",
            "mbgnbd_p_alive(model, frequency, recency, t)",
            format!(
                "SELECT mbgnbd_p_alive(m, 0, 0.0, 40.0) < 1 AS can_have_left FROM {}",
                fitted("mbgnbd_fit")
            ),
            "+---------------+\n| can_have_left |\n+---------------+\n| true          |\n+---------------+",
        ),
        doc(
            Apply::ExpectedValue,
            "Gamma-Gamma expected mean order value of a customer with `frequency` repeat purchases of mean `monetary_value`: a weighted mean of the customer's own mean and the population mean.",
            "gamma_gamma_expected_value(model, frequency, monetary_value)",
            format!(
                "SELECT gamma_gamma_expected_value(m, 0, 0.0) = m['v'] * m['p'] / (m['q'] - 1) AS population_mean FROM (SELECT gamma_gamma_fit(frequency, monetary_value) AS m FROM {SAMPLE})"
            ),
            "+-----------------+\n| population_mean |\n+-----------------+\n| true            |\n+-----------------+",
        ),
        doc(
            Apply::Clv,
            "Customer lifetime value over `months`: for each month the increase of expected purchases (BG/NBD or MBG/NBD, by the purchase model) times the Gamma-Gamma expected order value, discounted at `monthly_discount_rate`, as the lifetimes package computes it. A month is `periods_per_month` time units (default 30, for days).",
            "clv(purchase_model, spend_model, frequency, recency, t, monetary_value, months, monthly_discount_rate [, periods_per_month])",
            format!(
                "SELECT clv(b, g, 2, 30.0, 40.0, 25.0, 0, 0.01) AS no_months FROM (SELECT bgnbd_fit(frequency, recency, t) AS b, gamma_gamma_fit(frequency, monetary_value) AS g FROM {SAMPLE})"
            ),
            "+-----------+\n| no_months |\n+-----------+\n| 0.0       |\n+-----------+",
        ),
    ]
});

fn model_params(
    name: &'static str,
    array: &ArrayRef,
    fields: &[&str],
) -> Result<(Vec<Float64Array>, Option<StringArray>)> {
    let Some(s) = array.as_struct_opt() else {
        return plan_err!("{name}: the model argument must be a struct from a *_fit aggregate");
    };
    let mut out = Vec::new();
    for f in fields {
        let Some(col) = s.column_by_name(f) else {
            return Err(FunctionError::InvalidArgument {
                function: name,
                argument: "model",
                message: format!(
                    "has no field {f}: pass the struct of the matching *_fit aggregate"
                ),
            }
            .into());
        };
        let col = datafusion::arrow::compute::cast(col, &DataType::Float64)?;
        out.push(col.as_primitive::<Float64Type>().clone());
    }
    let model = s
        .column_by_name("model")
        .and_then(|c| datafusion::arrow::compute::cast(c, &DataType::Utf8).ok())
        .map(|c| c.as_string::<i32>().clone());
    Ok((out, model))
}

/// The values of row `i` across `cols`; `None` when any is NULL.
fn row_of<'a>(cols: impl Iterator<Item = &'a Float64Array>, i: usize) -> Option<Vec<f64>> {
    cols.map(|c| (!c.is_null(i)).then(|| c.value(i))).collect()
}

impl ScalarUDFImpl for ApplyFunc {
    fn name(&self) -> &str {
        self.kind.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (models, required, optional) = self.kind.arity();
        let name = self.kind.name();
        if arg_types.len() < models + required || arg_types.len() > models + required + optional {
            return plan_err!(
                "{name} takes {} arguments, got {}",
                if optional == 0 {
                    format!("{}", models + required)
                } else {
                    format!("{} to {}", models + required, models + required + optional)
                },
                arg_types.len()
            );
        }
        let mut out = Vec::new();
        for (i, t) in arg_types.iter().enumerate() {
            if i < models {
                if !matches!(t, DataType::Struct(_)) {
                    return plan_err!(
                        "{name}: argument {} must be a model struct from a *_fit aggregate, got {t}",
                        i + 1
                    );
                }
                out.push(t.clone());
            } else {
                if !(t.is_numeric() || t.is_null()) {
                    return plan_err!("{name}: argument {} must be numeric, got {t}", i + 1);
                }
                out.push(DataType::Float64);
            }
        }
        Ok(out)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let name = self.kind.name();
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.clone().into_array(rows))
            .collect::<Result<_>>()?;
        let (models, _, _) = self.kind.arity();
        let nums: Vec<&Float64Array> = arrays[models..]
            .iter()
            .map(|a| a.as_primitive::<Float64Type>())
            .collect();
        let purchase_fields = ["r", "alpha", "a", "b"];
        let mut out = Vec::with_capacity(rows);
        match self.kind {
            Apply::Expected(m) | Apply::PAlive(m) => {
                let (p, _) = model_params(name, &arrays[0], &purchase_fields)?;
                for i in 0..rows {
                    let params = row_of(p.iter(), i);
                    let vals = row_of(nums.iter().copied(), i);
                    out.push(match (params, vals) {
                        (Some(p), Some(v)) => Some(match self.kind {
                            Apply::Expected(_) => {
                                ltv::expected_purchases(m, &p, v[0], v[1], v[2], v[3])
                            }
                            _ => ltv::p_alive(m, &p, v[0], v[1], v[2]),
                        }),
                        _ => None,
                    });
                }
            }
            Apply::ExpectedNew => {
                let (p, _) = model_params(name, &arrays[0], &purchase_fields)?;
                for i in 0..rows {
                    let params = row_of(p.iter(), i);
                    out.push(match (params, nums[0].is_null(i)) {
                        (Some(p), false) => Some(ltv::expected_purchases_new(&p, nums[0].value(i))),
                        _ => None,
                    });
                }
            }
            Apply::ExpectedValue => {
                let (p, _) = model_params(name, &arrays[0], &["p", "q", "v"])?;
                for i in 0..rows {
                    let params = row_of(p.iter(), i);
                    let vals = row_of(nums.iter().copied(), i);
                    out.push(match (params, vals) {
                        (Some(p), Some(v)) => Some(ltv::expected_value(&p, v[0], v[1])),
                        _ => None,
                    });
                }
            }
            Apply::Clv => {
                let (p, kinds) = model_params(name, &arrays[0], &purchase_fields)?;
                let (g, _) = model_params(name, &arrays[1], &["p", "q", "v"])?;
                for i in 0..rows {
                    let model = match kinds.as_ref().map(|k| k.value(i)) {
                        Some("mbgnbd") => PurchaseModel::MbgNbd,
                        _ => PurchaseModel::BgNbd,
                    };
                    let pp = row_of(p.iter(), i);
                    let gg = row_of(g.iter(), i);
                    let vals = row_of(nums.iter().take(6).copied(), i);
                    let per_month = nums
                        .get(6)
                        .map(|c| if c.is_null(i) { 30.0 } else { c.value(i) })
                        .unwrap_or(30.0);
                    out.push(match (pp, gg, vals) {
                        (Some(pp), Some(gg), Some(v)) => {
                            if v[4] < 0.0 || v[4] > 1200.0 || v[4].fract() != 0.0 {
                                return Err(FunctionError::InvalidArgument {
                                    function: "clv",
                                    argument: "months",
                                    message: format!("must be a whole number from 0 to 1200, got {}", v[4]),
                                }
                                .into());
                            }
                            if v[5] <= -1.0 || per_month <= 0.0 {
                                return Err(FunctionError::InvalidArgument {
                                    function: "clv",
                                    argument: "monthly_discount_rate",
                                    message: format!("must be above -1 (and periods_per_month above 0), got {} and {per_month}", v[5]),
                                }
                                .into());
                            }
                            Some(ltv::clv(model, &pp, &gg, v[0], v[1], v[2], v[3], v[4] as u32, v[5], per_month))
                        }
                        _ => None,
                    });
                }
            }
        }
        super::columnar_result(Arc::new(Float64Array::from(out)), &args.args)
    }
    fn documentation(&self) -> Option<&Documentation> {
        let i = Apply::ALL.iter().position(|k| *k == self.kind)?;
        APPLY_DOCS.get(i)
    }
}
