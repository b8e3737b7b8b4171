//! Repurchase-interval aggregates and the cycle classification.
//!
//! A *purchase day* is a UTC calendar day with at least one purchase: several orders of a
//! customer on one day count once. All four aggregates collect the distinct purchase days of a
//! group and differ only in what they make of the gaps between consecutive days:
//!
//! | function | result |
//! |---|---|
//! | `repurchase_interval_days(ts)` | mean gap in days (double); NULL with fewer than 2 purchase days |
//! | `median_repurchase_interval_days(ts)` | median gap (double); NULL likewise |
//! | `repurchase_intervals(ts)` | the gaps in time order (list of bigint); empty with fewer than 2 days |
//! | `next_order_due(ts)` | last purchase day + median gap rounded to whole days (date); NULL likewise |
//!
//! The argument is a timestamp (any unit; with or without time zone, the UTC day is used) or a
//! date. NULLs are ignored. Which orders count as purchases is the caller's filter (the views
//! apply the data model's order hygiene). The mean of the gaps equals
//! (last day − first day) / (days − 1).
//!
//! These aggregates run per customer over millions of orders, so besides the row-at-a-time
//! [`Accumulator`] they implement DataFusion's [`GroupsAccumulator`], which keeps the state of
//! all groups in one vector instead of one boxed accumulator per customer.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Builder, Float64Builder, Int32Array,
    Int32Builder, Int64Builder, ListArray, ListBuilder, StringBuilder,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, FieldRef, Float64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, DocSection, Documentation, EmitTo,
    GroupsAccumulator, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::FunctionError;
use smallvec::SmallVec;

const DAY_MICROS: i64 = 86_400_000_000;

/// Which statistic of the gaps an aggregate returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntervalKind {
    Mean,
    Median,
    List,
    NextDue,
}

impl IntervalKind {
    fn name(self) -> &'static str {
        match self {
            IntervalKind::Mean => "repurchase_interval_days",
            IntervalKind::Median => "median_repurchase_interval_days",
            IntervalKind::List => "repurchase_intervals",
            IntervalKind::NextDue => "next_order_due",
        }
    }

    fn return_type(self) -> DataType {
        match self {
            IntervalKind::Mean | IntervalKind::Median => DataType::Float64,
            IntervalKind::List => {
                DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))
            }
            IntervalKind::NextDue => DataType::Date32,
        }
    }
}

/// Sorted, distinct purchase days -> gaps between consecutive days.
fn gaps(days: &[i32]) -> Vec<i64> {
    days.windows(2).map(|w| i64::from(w[1] - w[0])).collect()
}

fn median(mut v: Vec<i64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    })
}

fn normalize(days: &mut Vec<i32>) {
    days.sort_unstable();
    days.dedup();
}

/// Mean gap of sorted distinct days.
fn mean_gap(days: &[i32]) -> Option<f64> {
    (days.len() >= 2).then(|| f64::from(days[days.len() - 1] - days[0]) / (days.len() - 1) as f64)
}

fn next_due(days: &[i32]) -> Option<i32> {
    let m = median(gaps(days))?;
    Some(days[days.len() - 1] + m.round() as i32)
}

/// UTC days of a timestamp or date array (after coercion: Timestamp(µs, tz) or Date32).
fn day_values(array: &ArrayRef) -> Result<Int32Array> {
    match array.data_type() {
        DataType::Date32 => Ok(array.as_primitive::<Date32Type>().reinterpret_cast()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => Ok(array
            .as_primitive::<TimestampMicrosecondType>()
            .unary(|t| t.div_euclid(DAY_MICROS) as i32)),
        other => exec_err!("expected a timestamp or date, got {other}"),
    }
}

/// Coerces the single argument to a type [`day_values`] reads.
fn coerce_day_argument(name: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let [t] = arg_types else {
        return plan_err!(
            "{name} takes one argument (the order timestamp), got {}",
            arg_types.len()
        );
    };
    let coerced = match t {
        DataType::Date32 | DataType::Date64 => DataType::Date32,
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        DataType::Null => DataType::Date32,
        other => {
            return plan_err!("{name} expects a timestamp or date argument, got {other}");
        }
    };
    Ok(vec![coerced])
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RepurchaseAggregate {
    kind: IntervalKind,
    signature: Signature,
}

impl RepurchaseAggregate {
    pub fn new(kind: IntervalKind) -> Self {
        Self {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOCS: LazyLock<[Documentation; 4]> = LazyLock::new(|| {
    let section = DocSection {
        include: true,
        label: "rebuy: repurchase intervals",
        description: None,
    };
    let arg = "order_ts: the order timestamp (or a date); the UTC day is used";
    let example = |name: &str, _header: &str, value: &str| {
        let col = "result".to_string();
        let width = col.len().max(value.len());
        let line = format!("+{}+", "-".repeat(width + 2));
        format!(
            "> SELECT {name}(order_ts) AS result FROM (VALUES (TIMESTAMP '2026-01-01T09:00:00Z'), (TIMESTAMP '2026-01-01T18:00:00Z'), (TIMESTAMP '2026-01-11T10:00:00Z'), (TIMESTAMP '2026-02-10T10:00:00Z')) AS t(order_ts);\n\
             {line}\n| {col:<width$} |\n{line}\n| {value:<width$} |\n{line}"
        )
    };
    [
        Documentation::builder(section.clone(),
            "Mean gap in days between a customer's consecutive purchase days (orders on the same UTC day are one purchase day). NULL with fewer than two purchase days.",
            "repurchase_interval_days(order_ts)")
            .with_argument("order_ts", arg)
            .with_sql_example(example("repurchase_interval_days", "", "20.0"))
            .build(),
        Documentation::builder(section.clone(),
            "Median gap in days between consecutive purchase days. NULL with fewer than two purchase days.",
            "median_repurchase_interval_days(order_ts)")
            .with_argument("order_ts", arg)
            .with_sql_example(example("median_repurchase_interval_days", "", "20.0"))
            .build(),
        Documentation::builder(section.clone(),
            "The gaps in days between consecutive purchase days, in time order. Empty with fewer than two purchase days.",
            "repurchase_intervals(order_ts)")
            .with_argument("order_ts", arg)
            .with_sql_example(example("repurchase_intervals", "", "[10, 30]"))
            .build(),
        Documentation::builder(section,
            "The day the next order is due: the last purchase day plus the median gap, rounded to whole days (half away from zero). NULL with fewer than two purchase days. Feeds replenishment reminders.",
            "next_order_due(order_ts)")
            .with_argument("order_ts", arg)
            .with_sql_example(example("next_order_due", "", "2026-03-02"))
            .build(),
    ]
});

impl AggregateUDFImpl for RepurchaseAggregate {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_day_argument(self.kind.name(), arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.kind.return_type())
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(DaysAccumulator {
            kind: self.kind,
            days: Vec::new(),
        }))
    }

    /// One list of distinct purchase days per group (sorted), so partial aggregates merge by
    /// concatenation.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[days]", args.name),
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            true,
        ))])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(DaysGroups {
            kind: self.kind,
            days: Vec::new(),
            stored: 0,
        }))
    }

    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        let i = match self.kind {
            IntervalKind::Mean => 0,
            IntervalKind::Median => 1,
            IntervalKind::List => 2,
            IntervalKind::NextDue => 3,
        };
        Some(&DOCS[i])
    }
}

fn finish_scalar(kind: IntervalKind, days: &mut Vec<i32>) -> Result<ScalarValue> {
    normalize(days);
    Ok(match kind {
        IntervalKind::Mean => ScalarValue::Float64(mean_gap(days)),
        IntervalKind::Median => ScalarValue::Float64(median(gaps(days))),
        IntervalKind::NextDue => ScalarValue::Date32(next_due(days)),
        IntervalKind::List => {
            let values: Vec<ScalarValue> = gaps(days)
                .into_iter()
                .map(|g| ScalarValue::Int64(Some(g)))
                .collect();
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Int64))
        }
    })
}

fn days_list_scalar(days: &[i32]) -> ScalarValue {
    let values: Vec<ScalarValue> = days.iter().map(|d| ScalarValue::Int32(Some(*d))).collect();
    ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Int32))
}

#[derive(Debug)]
struct DaysAccumulator {
    kind: IntervalKind,
    days: Vec<i32>,
}

impl Accumulator for DaysAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let days = day_values(&values[0])?;
        self.days.extend(days.iter().flatten());
        if self.days.len() > 4096 {
            normalize(&mut self.days);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                let inner = lists.value(i);
                self.days.extend(
                    inner
                        .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                        .iter()
                        .flatten(),
                );
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        normalize(&mut self.days);
        Ok(vec![days_list_scalar(&self.days)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        finish_scalar(self.kind, &mut self.days)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.days.capacity() * 4
    }
}

/// The purchase days of one group: most customers have a handful, kept inline.
type GroupDays = SmallVec<[i32; 4]>;

/// All groups' purchase days, indexed by group.
#[derive(Debug)]
struct DaysGroups {
    kind: IntervalKind,
    days: Vec<GroupDays>,
    /// Days held in all groups (for `size`, which DataFusion asks after every batch: summing
    /// over millions of groups each time would cost more than the aggregation).
    stored: usize,
}

impl DaysGroups {
    fn add(&mut self, group: usize, day: i32) {
        let v = &mut self.days[group];
        // Most customers have a handful of days; skip the common repeat of the last one.
        if v.last() != Some(&day) {
            v.push(day);
            self.stored += 1;
        }
    }

    /// The groups `emit_to` asks for, sorted and without repeated days.
    fn take(&mut self, emit_to: EmitTo) -> Vec<GroupDays> {
        let mut groups = emit_to.take_needed(&mut self.days);
        for days in &mut groups {
            self.stored -= days.len();
            days.sort_unstable();
            days.dedup();
        }
        groups
    }
}

impl GroupsAccumulator for DaysGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.days.resize_with(total_num_groups, GroupDays::new);
        let days = day_values(&values[0])?;
        for (row, &g) in group_indices.iter().enumerate() {
            if days.is_null(row) || opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            self.add(g, days.value(row));
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.days.resize_with(total_num_groups, GroupDays::new);
        let lists: &ListArray = values[0].as_list::<i32>();
        for (row, &g) in group_indices.iter().enumerate() {
            if lists.is_valid(row) {
                let inner = lists.value(row);
                for d in inner
                    .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                    .iter()
                    .flatten()
                {
                    self.add(g, d);
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = self.take(emit_to);
        Ok(match self.kind {
            IntervalKind::Mean | IntervalKind::Median => {
                let mut b = Float64Builder::with_capacity(groups.len());
                for days in &groups {
                    b.append_option(match self.kind {
                        IntervalKind::Mean => mean_gap(days),
                        _ => median(gaps(days)),
                    });
                }
                Arc::new(b.finish())
            }
            IntervalKind::NextDue => {
                let mut b = Date32Builder::with_capacity(groups.len());
                for days in &groups {
                    b.append_option(next_due(days));
                }
                Arc::new(b.finish())
            }
            IntervalKind::List => {
                let mut b = ListBuilder::new(Int64Builder::new());
                for days in &groups {
                    b.values().append_slice(&gaps(days));
                    b.append(true);
                }
                Arc::new(b.finish())
            }
        })
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = self.take(emit_to);
        let mut b = ListBuilder::new(Int32Builder::new());
        for days in groups {
            b.values().append_slice(&days);
            b.append(true);
        }
        Ok(vec![Arc::new(b.finish())])
    }

    /// Skipped partial aggregation: each input row becomes a state of its own (a list of its
    /// one day, empty for a NULL or filtered-out row).
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let days = day_values(&values[0])?;
        let mut b = ListBuilder::new(Int32Builder::with_capacity(days.len()));
        for row in 0..days.len() {
            let keep =
                days.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if keep {
                b.values().append_value(days.value(row));
            }
            b.append(true);
        }
        Ok(vec![Arc::new(b.finish())])
    }

    fn size(&self) -> usize {
        // Inline slots are in the first term; days beyond them are counted once more, as
        // if each lived on the heap (an upper bound).
        self.days.capacity() * std::mem::size_of::<GroupDays>() + self.stored * 4
    }
}

/// `repurchase_cycle_class(days)`: the repurchase-cycle class of an interval in days.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CycleClassFunc {
    signature: Signature,
}

impl Default for CycleClassFunc {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The class of an interval: thresholds 30, 90 and 180 days.
pub fn cycle_class(days: f64) -> &'static str {
    if days < 30.0 {
        "high_frequency"
    } else if days < 90.0 {
        "regular"
    } else if days <= 180.0 {
        "scene_triggered"
    } else {
        "loyalty"
    }
}

static CYCLE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "rebuy: repurchase intervals", description: None },
        "Classifies a repurchase interval in days: 'high_frequency' (< 30), 'regular' (30 to < 90), \
         'scene_triggered' (90 to 180), 'loyalty' (> 180). NULL in, NULL out; a negative or NaN \
         interval is an error.",
        "repurchase_cycle_class(days)",
    )
    .with_argument("days", "an interval in days (any number type)")
    .with_sql_example(
        "> SELECT repurchase_cycle_class(12) AS a, repurchase_cycle_class(45.5) AS b, repurchase_cycle_class(180) AS c, repurchase_cycle_class(365) AS d;\n\
         +----------------+---------+-----------------+---------+\n\
         | a              | b       | c               | d       |\n\
         +----------------+---------+-----------------+---------+\n\
         | high_frequency | regular | scene_triggered | loyalty |\n\
         +----------------+---------+-----------------+---------+",
    )
    .build()
});

impl ScalarUDFImpl for CycleClassFunc {
    fn name(&self) -> &str {
        "repurchase_cycle_class"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if t.is_numeric() || t.is_null() => Ok(vec![DataType::Float64]),
            [t] => plan_err!("repurchase_cycle_class expects a number of days, got {t}"),
            _ => plan_err!(
                "repurchase_cycle_class takes one argument (days), got {}",
                arg_types.len()
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let days = arrays[0].as_primitive::<Float64Type>();
        let mut out = StringBuilder::with_capacity(days.len(), days.len() * 10);
        for v in days.iter() {
            match v {
                None => out.append_null(),
                Some(d) if d.is_nan() || d < 0.0 => {
                    return Err(FunctionError::InvalidArgument {
                        function: "repurchase_cycle_class",
                        argument: "days",
                        message: format!("must be a non-negative number of days, got {d}"),
                    }
                    .into());
                }
                Some(d) => out.append_value(cycle_class(d)),
            }
        }
        super::columnar_result(Arc::new(out.finish()), &args.args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&CYCLE_DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_statistics() {
        let mut days = vec![10, 0, 0, 40, 10];
        normalize(&mut days);
        assert_eq!(days, vec![0, 10, 40]);
        assert_eq!(gaps(&days), vec![10, 30]);
        assert_eq!(mean_gap(&days), Some(20.0));
        assert_eq!(median(gaps(&days)), Some(20.0));
        assert_eq!(next_due(&days), Some(60));
        assert_eq!(mean_gap(&[5]), None);
        assert_eq!(next_due(&[5]), None);
        assert_eq!(median(vec![1, 2, 10]), Some(2.0));
    }

    #[test]
    fn classes() {
        assert_eq!(cycle_class(29.9), "high_frequency");
        assert_eq!(cycle_class(30.0), "regular");
        assert_eq!(cycle_class(89.99), "regular");
        assert_eq!(cycle_class(90.0), "scene_triggered");
        assert_eq!(cycle_class(180.0), "scene_triggered");
        assert_eq!(cycle_class(180.5), "loyalty");
    }
}
