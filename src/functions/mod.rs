//! rebuy's SQL functions, registered in every session by [`register_all`].
//!
//! | family | file | functions |
//! |---|---|---|
//! | settings | `as_of.rs` | `as_of()`, `rebuy_setting(name)`; settings `rebuy.as_of`, `rebuy.dormant_days`, … |
//! | repurchase intervals | `repurchase.rs` | `repurchase_interval_days`, `median_repurchase_interval_days`, `repurchase_intervals`, `next_order_due`, `repurchase_cycle_class` |
//! | RFM | `rfm.rs` | `rfm_segment` |
//! | value at the first or latest row | `arg.rs` | `arg_max(value, key)`, `arg_min(value, key)` |
//! | holdout assignment | `experiment.rs` | `experiment_bucket`, `experiment_arm` |
//! | experiment statistics | `stats.rs` | `wilson_interval`, `newcombe_interval`, `two_proportion_z_test`, `welch_t_test`, `required_sample_size` |
//! | lifetime value | `ltv.rs` | `bgnbd_fit`, `mbgnbd_fit`, `gamma_gamma_fit`, `bgnbd_expected_purchases`, `bgnbd_p_alive`, `bgnbd_expected_purchases_new`, `mbgnbd_expected_purchases`, `mbgnbd_p_alive`, `gamma_gamma_expected_value`, `clv` |
//!
//! Every function carries a [`Documentation`](datafusion::logical_expr::Documentation) whose SQL
//! example is executed by a test (`documented_examples_run`): the example is the contract.
//!
//! To add a function: implement `ScalarUDFImpl` or `AggregateUDFImpl` in the family's file
//! (argument checks at planning in `coerce_types`, naming the function; value checks at run
//! time through [`FunctionError`]), give it documentation with a runnable example, and list it
//! in [`scalar_functions`] or [`aggregate_functions`].

pub mod arg;
pub mod as_of;
pub mod caps;
pub mod experiment;
pub mod ltv;
pub mod pg_template;
pub mod repurchase;
pub mod rfm;
pub mod stats;
pub mod stop;

use datafusion::error::DataFusionError;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use as_of::RebuyOptions;

/// A bad argument value met while a function runs. Surfaces to clients as SQLSTATE 22023
/// (invalid_parameter_value): it travels as `DataFusionError::External` so the server can
/// recognise it by downcasting.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("{function}: argument {argument} {message}")]
    InvalidArgument {
        function: &'static str,
        argument: &'static str,
        message: String,
    },
    /// A call would build a value larger than the session allows (SQLSTATE 54000).
    #[error(
        "{function}: requested length too large: the call would build {bytes} bytes, or as much work (limit {limit})"
    )]
    TooLarge {
        function: &'static str,
        bytes: u128,
        limit: usize,
    },
    /// The statement was stopped while the function ran (SQLSTATE 57014).
    #[error("{function}: canceling statement")]
    Stopped { function: &'static str },
    /// A setting's value is refused, in PostgreSQL's words (SQLSTATE 22023).
    #[error("{0}")]
    InvalidSetting(String),
}

impl From<FunctionError> for DataFusionError {
    fn from(e: FunctionError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

/// A scalar function's result: a scalar when every argument was one, else the array.
pub(crate) fn columnar_result(
    result: datafusion::arrow::array::ArrayRef,
    args: &[datafusion::logical_expr::ColumnarValue],
) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::logical_expr::ColumnarValue;
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        let scalar = datafusion::common::ScalarValue::try_from_array(&result, 0)?;
        return Ok(ColumnarValue::Scalar(scalar));
    }
    Ok(ColumnarValue::Array(result))
}

pub fn scalar_functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(as_of::AsOfFunc::default()),
        ScalarUDF::from(as_of::SettingFunc::default()),
        ScalarUDF::from(repurchase::CycleClassFunc::default()),
        ScalarUDF::from(rfm::RfmSegmentFunc::default()),
        ScalarUDF::from(experiment::AssignFunc::new(experiment::Assign::Bucket)),
        ScalarUDF::from(experiment::AssignFunc::new(experiment::Assign::Arm)),
    ]
    .into_iter()
    .chain(
        stats::Stat::ALL
            .into_iter()
            .map(|k| ScalarUDF::from(stats::StatFunc::new(k))),
    )
    .chain(
        ltv::Apply::ALL
            .into_iter()
            .map(|k| ScalarUDF::from(ltv::ApplyFunc::new(k))),
    )
    .collect()
}

pub fn aggregate_functions() -> Vec<AggregateUDF> {
    use repurchase::{IntervalKind, RepurchaseAggregate};
    [
        IntervalKind::Mean,
        IntervalKind::Median,
        IntervalKind::List,
        IntervalKind::NextDue,
    ]
    .into_iter()
    .map(|k| AggregateUDF::from(RepurchaseAggregate::new(k)))
    .chain(
        ltv::FitKind::ALL
            .into_iter()
            .map(|k| AggregateUDF::from(ltv::FitAggregate::new(k))),
    )
    .chain(
        [arg::ArgEnd::Max, arg::ArgEnd::Min]
            .into_iter()
            .map(|e| AggregateUDF::from(arg::ArgAggregate::new(e))),
    )
    .collect()
}

/// Registers every rebuy function in `ctx`.
pub fn register_all(ctx: &SessionContext) {
    for f in scalar_functions() {
        ctx.register_udf(f);
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f);
    }
    caps::register(ctx, caps::DEFAULT_MAX_BYTES);
    pg_template::register(ctx);
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::pretty::pretty_format_batches;

    fn all_docs() -> Vec<(String, datafusion::logical_expr::Documentation)> {
        let mut docs = Vec::new();
        for f in scalar_functions() {
            docs.push((
                f.name().to_string(),
                f.documentation().cloned().expect("documented"),
            ));
        }
        for f in aggregate_functions() {
            docs.push((
                f.name().to_string(),
                f.documentation().cloned().expect("documented"),
            ));
        }
        docs
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = all_docs().into_iter().map(|(n, _)| n).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    /// Runs the SQL example of every function's documentation and compares the printed table.
    #[tokio::test]
    async fn documented_examples_run() {
        for (name, doc) in all_docs() {
            let example = doc
                .sql_example
                .unwrap_or_else(|| panic!("{name}: no SQL example"));
            let mut statements = Vec::new();
            let mut expected = Vec::new();
            for line in example.lines() {
                match line.trim().strip_prefix("> ") {
                    Some(sql) => statements.push(sql.trim_end_matches(';').to_string()),
                    None if !line.trim().is_empty() => expected.push(line.trim().to_string()),
                    None => {}
                }
            }
            assert!(
                !statements.is_empty() && !expected.is_empty(),
                "{name}: example without query or result"
            );
            let ctx = SessionContext::new_with_config(crate::session::session_config());
            register_all(&ctx);
            let mut last = Vec::new();
            for sql in &statements {
                last = ctx
                    .sql(sql)
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {sql}: {e}"))
                    .collect()
                    .await
                    .unwrap_or_else(|e| panic!("{name}: {sql}: {e}"));
            }
            let actual = pretty_format_batches(&last).unwrap().to_string();
            let actual: Vec<String> = actual.lines().map(|l| l.trim().to_string()).collect();
            assert_eq!(
                actual, expected,
                "{name}: the documented example does not hold"
            );
        }
    }
}
