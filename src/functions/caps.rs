//! Size caps on built-in functions that build large values from small arguments.
//!
//! `repeat('x', 800000000)` or `range(1, 50000000)` allocate their whole result in one call,
//! outside every memory pool (DataFusion accounts operators' buffers, not the values a scalar
//! function returns), so they went through a 64 MB query limit. Each function here is
//! wrapped: the size of what a call would build is worked out from its arguments first, and a
//! call over the cap fails with SQLSTATE 54000 (PostgreSQL's "requested length too large")
//! before anything is allocated; results whose size cannot be foreseen are checked after.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, simplify::ExprSimplifyResult,
};
use datafusion::prelude::SessionContext;

use super::FunctionError;

/// The default cap on what one call may build (all rows of a batch together).
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rule {
    /// repeat(text, n): length(text) * n
    Repeat,
    /// lpad/rpad(text, n [, fill]): n characters, up to 4 bytes each
    Pad,
    /// range/generate_series(start, stop [, step]): one 8-byte element per step
    Series,
    /// array_repeat(value, n): n copies of the value's size
    ArrayRepeat,
    /// replace(text, from, to): every `from` may become `to`
    Replace,
    /// regexp_replace(text, pattern, replacement [, flags]): with 'g', a replacement at every
    /// position in the worst case
    RegexpReplace,
    /// concat/concat_ws: the sum of the arguments
    Concat,
    /// levenshtein(a, b): length(a) * length(b) steps of work, counted as bytes; one call of
    /// 80,000 by 80,000 characters ran 40 s without a point where a timeout could stop it
    Levenshtein,
    /// encode(bytes, 'hex' | 'base64'): at most twice the input
    Encode,
    /// string_to_array(text, delimiter): up to one element per byte, each with its offset
    Split,
    /// array_concat, flatten, array_append, array_prepend: checked after the call
    After,
}

const WRAPPED: &[(&str, Rule)] = &[
    ("repeat", Rule::Repeat),
    ("lpad", Rule::Pad),
    ("rpad", Rule::Pad),
    ("range", Rule::Series),
    ("generate_series", Rule::Series),
    ("array_repeat", Rule::ArrayRepeat),
    ("replace", Rule::Replace),
    ("regexp_replace", Rule::RegexpReplace),
    ("concat", Rule::Concat),
    ("concat_ws", Rule::Concat),
    ("make_array", Rule::Concat),
    ("overlay", Rule::Concat),
    ("encode", Rule::Encode),
    ("string_to_array", Rule::Split),
    ("levenshtein", Rule::Levenshtein),
    ("array_concat", Rule::After),
    ("flatten", Rule::After),
    ("array_append", Rule::After),
    ("array_prepend", Rule::After),
];

/// The most work one levenshtein call may do (cells of its table, all rows together).
pub const MAX_LEVENSHTEIN_CELLS: u128 = 100_000_000;

/// Replaces the session's functions named in [`WRAPPED`] by capped versions of themselves.
pub fn register(ctx: &SessionContext, max_bytes: usize) {
    for (name, rule) in WRAPPED {
        let Ok(inner) = ctx.udf(name) else {
            continue;
        };
        let current = inner.inner().clone();
        let any: &dyn std::any::Any = current.as_ref();
        let inner = match any.downcast_ref::<Capped>() {
            Some(c) => c.inner.clone(),
            None => current.clone(),
        };
        ctx.register_udf(ScalarUDF::new_from_shared_impl(Arc::new(Capped {
            inner,
            rule: *rule,
            max_bytes,
        })));
    }
    ctx.add_analyzer_rule(Arc::new(CappedCalls { max_bytes }));
}

/// Analyzer rule: every call of a wrapped function in the plan is the capped one, with this
/// session's cap. The SQL planner calls some built-ins directly, not through the registry
/// (`OVERLAY … PLACING` gave 120 MB under a 64 MB limit), and views planned in the shared
/// session hold its cap; the last rule added (the connection's) decides.
#[derive(Debug)]
struct CappedCalls {
    max_bytes: usize,
}

impl datafusion::optimizer::AnalyzerRule for CappedCalls {
    fn analyze(
        &self,
        plan: datafusion::logical_expr::LogicalPlan,
        _config: &datafusion::config::ConfigOptions,
    ) -> Result<datafusion::logical_expr::LogicalPlan> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|e| {
                e.transform_up(|e| {
                    let Expr::ScalarFunction(mut call) = e else {
                        return Ok(Transformed::no(e));
                    };
                    let current = call.func.inner().clone();
                    let any: &dyn std::any::Any = current.as_ref();
                    let (inner, rule) = match any.downcast_ref::<Capped>() {
                        Some(c) if c.max_bytes == self.max_bytes => {
                            return Ok(Transformed::no(Expr::ScalarFunction(call)));
                        }
                        Some(c) => (c.inner.clone(), c.rule),
                        None => match WRAPPED.iter().find(|(n, _)| *n == call.func.name()) {
                            Some((_, rule)) => (current.clone(), *rule),
                            None => return Ok(Transformed::no(Expr::ScalarFunction(call))),
                        },
                    };
                    call.func = Arc::new(ScalarUDF::new_from_shared_impl(Arc::new(Capped {
                        inner,
                        rule,
                        max_bytes: self.max_bytes,
                    })));
                    Ok(Transformed::yes(Expr::ScalarFunction(call)))
                })
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "rebuy_capped_calls"
    }
}

#[derive(Debug)]
struct Capped {
    inner: Arc<dyn ScalarUDFImpl>,
    rule: Rule,
    max_bytes: usize,
}

impl PartialEq for Capped {
    fn eq(&self, other: &Self) -> bool {
        self.inner.name() == other.inner.name() && self.max_bytes == other.max_bytes
    }
}
impl Eq for Capped {}
impl std::hash::Hash for Capped {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.name().hash(state);
        self.max_bytes.hash(state);
    }
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    /// Some functions fold constant arguments themselves (concat merges literals) without a
    /// call: the value they fold to is held to the same cap.
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let simplified = self.inner.simplify(args, info)?;
        match simplified {
            ExprSimplifyResult::Simplified(Expr::Literal(value, meta)) => {
                self.check(value.size() as u128)?;
                Ok(ExprSimplifyResult::Simplified(Expr::Literal(value, meta)))
            }
            // concat's folding calls the built-in function again: that call is capped too.
            ExprSimplifyResult::Simplified(Expr::ScalarFunction(mut call))
                if call.func.name() == self.name() =>
            {
                call.func = Arc::new(ScalarUDF::new_from_shared_impl(Arc::new(Capped {
                    inner: self.inner.clone(),
                    rule: self.rule,
                    max_bytes: self.max_bytes,
                })));
                Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(call)))
            }
            other => Ok(other),
        }
    }
    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let foreseen = foreseen_bytes(self.rule, &args.args, rows)?;
        if let Some(bytes) = foreseen {
            self.check(bytes)?;
        }
        let result = self.inner.invoke_with_args(args)?;
        if foreseen.is_none() {
            let bytes = match &result {
                ColumnarValue::Array(a) => a.get_array_memory_size(),
                ColumnarValue::Scalar(s) => s.size(),
            };
            self.check(bytes as u128)?;
        }
        Ok(result)
    }
}

impl Capped {
    fn check(&self, bytes: u128) -> Result<()> {
        if bytes > self.max_bytes as u128 {
            return Err(FunctionError::TooLarge {
                function: WRAPPED
                    .iter()
                    .find(|(n, _)| *n == self.inner.name())
                    .map_or("function", |(n, _)| n),
                bytes,
                limit: self.max_bytes,
            }
            .into());
        }
        Ok(())
    }
}

/// What a call will build, in bytes, when the arguments tell; None when they do not (dates,
/// timestamps and intervals in a series).
fn foreseen_bytes(rule: Rule, args: &[ColumnarValue], rows: usize) -> Result<Option<u128>> {
    let ints = |i: usize| -> Result<Option<Vec<Option<i64>>>> { integers(args.get(i), rows) };
    Ok(match rule {
        Rule::Repeat => {
            let (Some(lengths), Some(counts)) = (byte_lengths(args.first(), rows)?, ints(1)?)
            else {
                return Ok(None);
            };
            Some(
                lengths
                    .iter()
                    .zip(&counts)
                    .map(|(l, n)| u128::from(*l) * n.unwrap_or(0).max(0) as u128)
                    .sum(),
            )
        }
        Rule::Pad => ints(1)?.map(|counts| {
            counts
                .iter()
                .map(|n| 4 * n.unwrap_or(0).max(0) as u128)
                .sum()
        }),
        Rule::Series => {
            let (Some(start), Some(stop)) = (
                ints(0)?.or(instants(args.first(), rows)?),
                ints(1)?.or(instants(args.get(1), rows)?),
            ) else {
                return Ok(None);
            };
            let step = match args.len() {
                3 => match ints(2)?.or(interval_nanos(args.get(2), rows)?) {
                    Some(s) => s,
                    None => return Ok(None),
                },
                _ => vec![Some(1); rows],
            };
            if args.len() == 1 {
                return Ok(None);
            }
            Some(
                start
                    .iter()
                    .zip(&stop)
                    .zip(&step)
                    .map(|((a, b), s)| match (a, b, s) {
                        (Some(_), Some(_), Some(UNBOUNDED_STEP)) => u128::MAX,
                        (Some(a), Some(b), Some(s)) if *s != 0 => {
                            let span = (i128::from(*b) - i128::from(*a)) / i128::from(*s);
                            8 * (span.max(0) as u128 + 1)
                        }
                        _ => 0,
                    })
                    .fold(0u128, u128::saturating_add),
            )
        }
        Rule::ArrayRepeat => {
            let Some(counts) = ints(1)? else {
                return Ok(None);
            };
            let each = value_sizes(args.first(), rows)?;
            Some(
                counts
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let size = each.get(i).copied().unwrap_or(8);
                        u128::from(size.max(8)) * n.unwrap_or(0).max(0) as u128
                    })
                    .sum(),
            )
        }
        Rule::Replace => {
            let (Some(text), Some(from), Some(to)) = (
                byte_lengths(args.first(), rows)?,
                byte_lengths(args.get(1), rows)?,
                byte_lengths(args.get(2), rows)?,
            ) else {
                return Ok(None);
            };
            Some(
                (0..text.len())
                    .map(|i| {
                        let growth = to[i].div_ceil(from[i].max(1)).max(1);
                        u128::from(text[i]) * u128::from(growth)
                    })
                    .sum(),
            )
        }
        Rule::RegexpReplace => {
            let (Some(text), Some(replacement)) = (
                byte_lengths(args.first(), rows)?,
                byte_lengths(args.get(2), rows)?,
            ) else {
                return Ok(None);
            };
            let global = match args.get(3) {
                Some(ColumnarValue::Scalar(flags)) => flags.to_string().contains('g'),
                Some(ColumnarValue::Array(_)) => true,
                None => false,
            };
            // `$0`, `${1}`, `\1` in the replacement stand for matched text: each may bring the
            // whole input.
            let references = reference_counts(args.get(2), rows)?;
            Some(
                (0..text.len())
                    .map(|i| {
                        let (t, r) = (u128::from(text[i]), u128::from(replacement[i]));
                        let each = r + u128::from(references[i]) * t;
                        if global { t + (t + 1) * each } else { t + each }
                    })
                    .sum(),
            )
        }
        Rule::Concat => {
            let mut total = 0u128;
            for arg in args {
                total += value_sizes(Some(arg), rows)?
                    .iter()
                    .map(|b| u128::from(*b))
                    .sum::<u128>();
            }
            Some(total)
        }
        Rule::Levenshtein => {
            let (Some(a), Some(b)) = (
                byte_lengths(args.first(), rows)?,
                byte_lengths(args.get(1), rows)?,
            ) else {
                return Ok(None);
            };
            let cells: u128 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| u128::from(*x) * u128::from(*y))
                .sum();
            // Counted against its own budget, expressed in the cap's unit.
            Some(cells * DEFAULT_MAX_BYTES as u128 / MAX_LEVENSHTEIN_CELLS)
        }
        Rule::Encode => byte_lengths(args.first(), rows)?
            .or(value_sizes(args.first(), rows).ok())
            .map(|l| l.iter().map(|b| 2 * u128::from(*b) + 4).sum()),
        Rule::Split => byte_lengths(args.first(), rows)?
            .map(|l| l.iter().map(|b| 16 * (u128::from(*b) + 1)).sum()),
        Rule::After => None,
    })
}

/// Date and timestamp arguments as nanoseconds since the epoch, one per row.
fn instants(arg: Option<&ColumnarValue>, rows: usize) -> Result<Option<Vec<Option<i64>>>> {
    use datafusion::arrow::datatypes::TimeUnit;
    let Some(arg) = arg else {
        return Ok(None);
    };
    if !matches!(
        arg.data_type(),
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
    ) {
        return Ok(None);
    }
    let array = arg.to_array(rows.max(1))?;
    let array =
        datafusion::arrow::compute::cast(&array, &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
    let array = datafusion::arrow::compute::cast(&array, &DataType::Int64)?;
    Ok(Some(array.as_primitive::<Int64Type>().iter().collect()))
}

/// A step whose length cannot be bounded from below (see [`interval_nanos`]).
const UNBOUNDED_STEP: i64 = i64::MIN;

/// Interval arguments as nanoseconds (a month counted as 28 days, so that no step is taken
/// for longer than it can be), one per row.
fn interval_nanos(arg: Option<&ColumnarValue>, rows: usize) -> Result<Option<Vec<Option<i64>>>> {
    use datafusion::arrow::datatypes::{IntervalMonthDayNanoType, IntervalUnit};
    let Some(arg) = arg else {
        return Ok(None);
    };
    if !matches!(arg.data_type(), DataType::Interval(_)) {
        return Ok(None);
    }
    let array = arg.to_array(rows.max(1))?;
    let array =
        datafusion::arrow::compute::cast(&array, &DataType::Interval(IntervalUnit::MonthDayNano))?;
    let day = 86_400_000_000_000i128;
    Ok(Some(
        array
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    // Months with days or nanoseconds of the other sign ('1 month -31 days')
                    // step by an amount that depends on the month, down to nothing: no bound.
                    let mixed = v.months != 0
                        && ((v.months > 0) != (v.days >= 0 && v.nanoseconds >= 0)
                            || (v.months < 0) != (v.days <= 0 && v.nanoseconds <= 0));
                    if mixed {
                        return UNBOUNDED_STEP;
                    }
                    let n = i128::from(v.months) * 28 * day
                        + i128::from(v.days) * day
                        + i128::from(v.nanoseconds);
                    n.clamp(i128::from(i64::MIN) + 1, i128::from(i64::MAX)) as i64
                })
            })
            .collect(),
    ))
}

/// How many group references (`$…`, `\…`) each row's replacement text holds.
fn reference_counts(arg: Option<&ColumnarValue>, rows: usize) -> Result<Vec<u32>> {
    let Some(arg) = arg else {
        return Ok(vec![0; rows.max(1)]);
    };
    let array = arg.to_array(rows.max(1))?;
    let text = datafusion::arrow::compute::cast(&array, &DataType::LargeUtf8)?;
    let text = text.as_string::<i64>();
    Ok((0..text.len())
        .map(|i| {
            if text.is_null(i) {
                0
            } else {
                text.value(i)
                    .bytes()
                    .filter(|b| *b == b'$' || *b == b'\\')
                    .count() as u32
            }
        })
        .collect())
}

/// Each row's value size in bytes (text: its length; other values: their memory).
fn value_sizes(arg: Option<&ColumnarValue>, rows: usize) -> Result<Vec<u64>> {
    if let Some(lengths) = byte_lengths(arg, rows)? {
        return Ok(lengths);
    }
    Ok(match arg {
        None => vec![],
        Some(ColumnarValue::Scalar(s)) => vec![s.size() as u64; rows.max(1)],
        Some(ColumnarValue::Array(a)) => {
            let each = a.get_array_memory_size() / a.len().max(1);
            vec![each as u64; a.len()]
        }
    })
}

/// The argument as 64-bit integers, one per row; None when it is not an integer column.
fn integers(arg: Option<&ColumnarValue>, rows: usize) -> Result<Option<Vec<Option<i64>>>> {
    let Some(arg) = arg else {
        return Ok(None);
    };
    if !arg.data_type().is_integer() {
        return Ok(None);
    }
    let array = arg.to_array(rows.max(1))?;
    let array = datafusion::arrow::compute::cast(&array, &DataType::Int64)?;
    let ints = array.as_primitive::<Int64Type>();
    Ok(Some(ints.iter().collect()))
}

/// Byte lengths of a text argument per row (0 for NULL); None when it is not text.
fn byte_lengths(arg: Option<&ColumnarValue>, rows: usize) -> Result<Option<Vec<u64>>> {
    let Some(arg) = arg else {
        return Ok(None);
    };
    if !matches!(
        arg.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return Ok(None);
    }
    let array: ArrayRef = arg.to_array(rows.max(1))?;
    let text = datafusion::arrow::compute::cast(&array, &DataType::LargeUtf8)?;
    let text = text.as_string::<i64>();
    Ok(Some(
        (0..text.len())
            .map(|i| {
                if text.is_null(i) {
                    0
                } else {
                    text.value(i).len() as u64
                }
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(ctx: &SessionContext, sql: &str) -> Result<()> {
        ctx.sql(sql).await?.collect().await.map(|_| ())
    }

    #[tokio::test]
    async fn large_results_are_refused_before_they_are_built() {
        let ctx = SessionContext::new();
        register(&ctx, 64 << 20);
        for sql in [
            "SELECT repeat('x', 800000000)",
            "SELECT range(1, 50000000)",
            "SELECT generate_series(1, 50000000)",
            "SELECT lpad('a', 100000000)",
            "SELECT array_repeat(1, 50000000)",
            "SELECT array_repeat(range(1, 5000000), 20)",
            "SELECT length(replace(repeat('a', 6000000), 'a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'))",
            "SELECT length(regexp_replace(repeat('a', 6000000), 'a', 'aaaaaaaaaaaaaaaaaaaa', 'g'))",
            "SELECT length(concat(repeat('a', 30000000), repeat('b', 30000000), repeat('c', 30000000)))",
            "SELECT levenshtein(repeat('a', 80000), repeat('b', 80000))",
            "SELECT cardinality(range(TIMESTAMP '2000-01-01', TIMESTAMP '2004-01-01', INTERVAL '1 second'))",
            "SELECT length(regexp_replace(repeat('a', 1000000), '^.*$', '$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0'))",
            "SELECT cardinality(make_array(repeat('a', 30000000), repeat('b', 30000000), repeat('c', 30000000)))",
            "SELECT length(encode(encode(repeat('a', 20000000), 'hex'), 'hex'))",
            "SELECT cardinality(string_to_array(repeat('a', 6000000), NULL))",
            "SELECT length(overlay(repeat('a', 40000000) placing repeat('b', 40000000) from 2 for 1))",
            "SELECT cardinality(range(TIMESTAMP '2200-01-01', TIMESTAMP '2200-01-10', \
             INTERVAL '1 month' - INTERVAL '31 days' + INTERVAL '10 milliseconds'))",
            "SELECT length(repeat(v, 1000000)) FROM (VALUES ('abcdefghij'), ('abcdefghij'), \
             ('abcdefghij'), ('abcdefghij'), ('abcdefghij'), ('abcdefghij'), ('abcdefghij')) t(v)",
        ] {
            let err = run(&ctx, sql)
                .await
                .err()
                .unwrap_or_else(|| panic!("{sql}: accepted"));
            assert!(err.to_string().contains("would build"), "{sql}: {err}");
        }
        // Ordinary sizes work as before.
        let batches = ctx
            .sql(
                "SELECT length(repeat('ab', 1000)) AS n, cardinality(range(1, 1001)) AS c, \
                 replace('abc', 'b', 'xy') AS r, regexp_replace('a-b-c', '-', '+', 'g') AS g, \
                 levenshtein('kitten', 'sitting') AS l, concat('a', 1, 'b') AS k, \
                 cardinality(range(DATE '2026-01-01', DATE '2026-12-31', INTERVAL '1 day')) AS d, \
                 regexp_replace('abc', '(b)', '[$1]') AS e, encode('ab', 'hex') AS h, \
                 cardinality(string_to_array('a,b,c', ',')) AS s",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(
            text.contains("| 2000 | 1000 | axyc | a+b+c | 3 | a1b | 364 | a[b]c | 6162 | 3 |"),
            "{text}"
        );
        // Registering twice wraps once.
        register(&ctx, 64 << 20);
        assert!(run(&ctx, "SELECT repeat('x', 3)").await.is_ok());
    }
}
