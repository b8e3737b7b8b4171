//! `SET rebuy.as_of = 'YYYY-MM-DD'` and `as_of()`: the session's "today".
//!
//! Every metric that depends on today (recency, tenure, dormant, churned, cohort maturity)
//! reads it through `as_of()`, so a past date shows the store as it was then and the same data
//! with the same as-of date always gives the same numbers. Unset, it is the current UTC date.
//! `as_of()` is folded to a constant at planning time, so filters such as
//! `order_ts < as_of() + INTERVAL '1 day'` still prune partitions.

use std::any::Any;
use std::sync::LazyLock;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, Expr, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::ingest::parse::date_to_days;

/// rebuy's session settings, under the `rebuy.` prefix of `SET`/`SHOW`.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuyOptions {
    /// `rebuy.as_of`: the date metrics are computed for; `None` means today (UTC).
    pub as_of: Option<NaiveDate>,
    /// Numeric thresholds of the views, by name (see [`NUMERIC_SETTINGS`]).
    pub numbers: Vec<(&'static str, f64)>,
}

/// Numeric settings: name, default, description. `SET rebuy.<name> = <number>` changes them for
/// the session; views read them with `rebuy_setting('<name>')`.
pub const NUMERIC_SETTINGS: &[(&str, f64, &str)] = &[
    (
        "churned_days",
        180.0,
        "customer_layers: no purchase for this many days or more = churned",
    ),
    (
        "dormant_days",
        90.0,
        "customer_layers: no purchase for this many days or more = dormant",
    ),
    (
        "new_days",
        30.0,
        "customer_layers: signed up (or first purchase) within this many days = new",
    ),
    (
        "high_value_share",
        0.6,
        "customer_layers: the top customers who together make this share of revenue_usd = high_value",
    ),
    (
        "potential_min_purchases",
        2.0,
        "customer_layers: fewest purchase days of a potential customer",
    ),
    (
        "potential_max_purchases",
        3.0,
        "customer_layers: most purchase days of a potential customer",
    ),
    (
        "high_potential_min_purchases",
        3.0,
        "customer_layers: fewest purchase days of a high-potential dormant customer",
    ),
    (
        "use_customer_base",
        1.0,
        "customer_summary: 1 reads the customer summary kept by ingest (table customer_base) when it stands in exactly for the computation from orders; 0 always computes from orders",
    ),
    (
        "reminder_days",
        7.0,
        "replenishment_due: a replenishment due within this many days is 'due' (later: 'upcoming')",
    ),
    (
        "holdout_days",
        180.0,
        "clv_backtest: the models are fitted on purchases up to as_of() minus this many days and compared with the purchases after",
    ),
];

/// The largest value a numeric setting takes.
pub const MAX_SETTING: f64 = 1_000_000.0;

impl Default for RebuyOptions {
    fn default() -> Self {
        Self {
            as_of: None,
            numbers: NUMERIC_SETTINGS.iter().map(|(n, v, _)| (*n, *v)).collect(),
        }
    }
}

impl RebuyOptions {
    pub fn number(&self, name: &str) -> Option<f64> {
        self.numbers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

impl ConfigExtension for RebuyOptions {
    const PREFIX: &'static str = "rebuy";
}

impl ExtensionOptions for RebuyOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "as_of" => {
                let v = value.trim().trim_matches('\'');
                if v.is_empty()
                    || v.eq_ignore_ascii_case("default")
                    || v.eq_ignore_ascii_case("today")
                {
                    self.as_of = None;
                    return Ok(());
                }
                match NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                    Ok(d) => {
                        self.as_of = Some(d);
                        Ok(())
                    }
                    Err(_) => Err(DataFusionError::Configuration(format!(
                        "rebuy.as_of must be a date YYYY-MM-DD (or 'today'), got '{value}'"
                    ))),
                }
            }
            other => {
                let Some(slot) = self.numbers.iter_mut().find(|(n, _)| *n == other) else {
                    let known: Vec<String> = std::iter::once("as_of")
                        .chain(NUMERIC_SETTINGS.iter().map(|(n, _, _)| *n))
                        .map(|n| format!("rebuy.{n}"))
                        .collect();
                    return Err(DataFusionError::Configuration(format!(
                        "unknown setting rebuy.{other} (known: {})",
                        known.join(", ")
                    )));
                };
                let v: f64 = value.trim().trim_matches('\'').parse().map_err(|_| {
                    DataFusionError::Configuration(format!(
                        "rebuy.{other} must be a number, got '{value}'"
                    ))
                })?;
                // The views turn day counts into dates and integers: a bound keeps every
                // accepted value representable there (a million days is 2,700 years).
                if !v.is_finite() || !(0.0..=MAX_SETTING).contains(&v) {
                    return Err(DataFusionError::Configuration(format!(
                        "rebuy.{other} must be a number from 0 to {MAX_SETTING}, got '{value}'"
                    )));
                }
                slot.1 = v;
                Ok(())
            }
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        let mut entries = vec![ConfigEntry {
            key: "rebuy.as_of".into(),
            value: Some(
                self.as_of
                    .map_or_else(|| "today".to_string(), |d| d.to_string()),
            ),
            description: "Date that metrics are computed for (YYYY-MM-DD); 'today' when unset",
        }];
        for (name, _, description) in NUMERIC_SETTINGS {
            entries.push(ConfigEntry {
                key: format!("rebuy.{name}"),
                value: self.number(name).map(|v| v.to_string()),
                description,
            });
        }
        entries
    }
}

/// The as-of date in effect for these settings, as days since 1970-01-01.
pub fn as_of_days(config: &datafusion::config::ConfigOptions) -> i32 {
    let date = config
        .extensions
        .get::<RebuyOptions>()
        .and_then(|o| o.as_of)
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    date_to_days(date)
}

static DOC: LazyLock<Documentation> =
    LazyLock::new(|| {
        Documentation::builder(
        DocSection { include: true, label: "rebuy", description: None },
        "The session's as-of date: the value of `SET rebuy.as_of = 'YYYY-MM-DD'`, or the current \
         UTC date when it is not set. Every rebuy view computes recency, tenure and maturity \
         relative to it and ignores orders after it.",
        "as_of()",
    )
    .with_sql_example(
        "> SET rebuy.as_of = '2026-07-01';\n\
         > SELECT as_of();\n\
         +------------+\n\
         | as_of()    |\n\
         +------------+\n\
         | 2026-07-01 |\n\
         +------------+",
    )
    .build()
    });

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AsOfFunc {
    signature: Signature,
}

impl Default for AsOfFunc {
    fn default() -> Self {
        Self {
            signature: Signature::nullary(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for AsOfFunc {
    fn name(&self) -> &str {
        "as_of"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !arg_types.is_empty() {
            return plan_err!("as_of() takes no arguments");
        }
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Date32(Some(
            as_of_days(&args.config_options),
        ))))
    }

    fn simplify(&self, _args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(
            ScalarValue::Date32(Some(as_of_days(info.config_options()))),
            None,
        )))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

static SETTING_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    let names: Vec<String> = NUMERIC_SETTINGS
        .iter()
        .map(|(n, v, d)| format!("`{n}` (default {v}): {d}"))
        .collect();
    Documentation::builder(
        DocSection { include: true, label: "rebuy", description: None },
        format!(
            "The value of a numeric rebuy setting, as set with `SET rebuy.<name> = <number>` \
             for the session. Settings: {}.",
            names.join("; ")
        ),
        "rebuy_setting(name)",
    )
    .with_argument("name", "the setting's name without the `rebuy.` prefix, a string literal")
    .with_sql_example(
        "> SET rebuy.dormant_days = 120;\n\
         > SELECT rebuy_setting('dormant_days') AS dormant, rebuy_setting('churned_days') AS churned;\n\
         +---------+---------+\n\
         | dormant | churned |\n\
         +---------+---------+\n\
         | 120.0   | 180.0   |\n\
         +---------+---------+",
    )
    .build()
});

pub fn setting_value(config: &datafusion::config::ConfigOptions, name: &str) -> Result<f64> {
    let defaults = RebuyOptions::default();
    let options = config.extensions.get::<RebuyOptions>().unwrap_or(&defaults);
    options.number(name).ok_or_else(|| {
        DataFusionError::Plan(format!(
            "rebuy_setting: unknown setting '{name}' (known: {})",
            NUMERIC_SETTINGS
                .iter()
                .map(|(n, _, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// `rebuy_setting('name')`: a numeric session setting, folded to a constant when planning.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SettingFunc {
    signature: Signature,
}

impl Default for SettingFunc {
    fn default() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for SettingFunc {
    fn name(&self) -> &str {
        "rebuy_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match &args.args[..] {
            [ColumnarValue::Scalar(ScalarValue::Utf8(Some(name)))] => Ok(ColumnarValue::Scalar(
                ScalarValue::Float64(Some(setting_value(&args.config_options, name)?)),
            )),
            _ => plan_err!("rebuy_setting takes the setting's name as a string literal"),
        }
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        match &args[..] {
            [Expr::Literal(ScalarValue::Utf8(Some(name)), _)] => {
                Ok(ExprSimplifyResult::Simplified(Expr::Literal(
                    ScalarValue::Float64(Some(setting_value(info.config_options(), name)?)),
                    None,
                )))
            }
            _ => Ok(ExprSimplifyResult::Original(args)),
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&SETTING_DOC)
    }
}
