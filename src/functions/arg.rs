//! `arg_max(value, key)` and `arg_min(value, key)`: the text `value` of the row with the
//! greatest (smallest) `key` in a group, as in DuckDB and ClickHouse. The views use them for a
//! customer's latest and first region, country and category (`arg_max(region, order_ts)`).
//!
//! DataFusion's `last_value(x ORDER BY ts)` answers the same question, but over millions of
//! customers its ordered accumulator costs several seconds per column; these keep, per group,
//! only the best key and an index into the distinct values seen (regions, countries and
//! categories are few), in DataFusion's [`GroupsAccumulator`] form.
//!
//! Rules: rows whose key is NULL are ignored; the value may be NULL (then NULL is the answer
//! when its row wins). Among rows with the same best key, the greatest value wins for
//! `arg_max` and the smallest for `arg_min` (NULL counting as the smallest), so the answer
//! does not depend on row order. No row with a key gives NULL.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, EmitTo, GroupsAccumulator, Signature,
    Volatility,
};

/// Which end of the key order wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgEnd {
    Max,
    Min,
}

impl ArgEnd {
    fn name(self) -> &'static str {
        match self {
            ArgEnd::Max => "arg_max",
            ArgEnd::Min => "arg_min",
        }
    }

    /// True when (key, value) beats the held (best_key, best_value).
    fn beats(self, key: i64, value: Option<&str>, best_key: i64, best: Option<&str>) -> bool {
        match self {
            ArgEnd::Max => key > best_key || (key == best_key && value > best),
            ArgEnd::Min => key < best_key || (key == best_key && value < best),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ArgAggregate {
    end: ArgEnd,
    signature: Signature,
}

impl ArgAggregate {
    pub fn new(end: ArgEnd) -> Self {
        Self {
            end,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

static DOCS: LazyLock<[Documentation; 2]> = LazyLock::new(|| {
    let section = DocSection {
        include: true,
        label: "rebuy: value at the first or latest row",
        description: None,
    };
    let example = |name: &str, value: &str| {
        format!(
            "> SELECT {name}(region, order_ts) AS result FROM (VALUES ('EU', TIMESTAMP '2026-01-05T10:00:00Z'), ('NA', TIMESTAMP '2026-03-01T08:00:00Z'), (NULL, NULL)) AS t(region, order_ts);\n\
             +--------+\n| result |\n+--------+\n| {value:<6} |\n+--------+"
        )
    };
    [
        Documentation::builder(
            section.clone(),
            "The text value of the row with the greatest key (a timestamp, date or integer) in the group: a customer's latest region is arg_max(region, order_ts). Rows with a NULL key are ignored; on equal keys the greatest value wins.",
            "arg_max(value, key)",
        )
        .with_argument("value", "text to return")
        .with_argument("key", "timestamp, date or integer ordering the rows")
        .with_sql_example(example("arg_max", "NA"))
        .build(),
        Documentation::builder(
            section,
            "The text value of the row with the smallest key in the group: a customer's first region is arg_min(region, order_ts). Rows with a NULL key are ignored; on equal keys the smallest value wins.",
            "arg_min(value, key)",
        )
        .with_argument("value", "text to return")
        .with_argument("key", "timestamp, date or integer ordering the rows")
        .with_sql_example(example("arg_min", "EU"))
        .build(),
    ]
});

impl AggregateUDFImpl for ArgAggregate {
    fn name(&self) -> &str {
        self.end.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.end.name();
        let [value, key] = arg_types else {
            return plan_err!(
                "{name} expects two arguments (value, key), got {}",
                arg_types.len()
            );
        };
        let value = match value {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
                DataType::Utf8
            }
            DataType::Dictionary(_, v)
                if matches!(
                    **v,
                    DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                ) =>
            {
                DataType::Utf8
            }
            other => return plan_err!("{name} expects a text value, got {other}"),
        };
        let key = match key {
            DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            DataType::Date32 | DataType::Date64 => DataType::Date32,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Null => DataType::Int64,
            other => {
                return plan_err!("{name} expects a timestamp, date or integer key, got {other}");
            }
        };
        Ok(vec![value, key])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[value]", args.name),
                DataType::Utf8,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[key]", args.name),
                DataType::Int64,
                true,
            )),
        ])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ArgAccumulator {
            groups: ArgGroups::new(self.end),
        }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(ArgGroups::new(self.end)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(
            &DOCS[match self.end {
                ArgEnd::Max => 0,
                ArgEnd::Min => 1,
            }],
        )
    }
}

/// Values and keys of a batch (value: text, key: the coerced key as i64).
fn inputs(values: &[ArrayRef]) -> Result<(StringArray, Int64Array)> {
    let value = cast(&values[0], &DataType::Utf8)?
        .as_string::<i32>()
        .clone();
    let key = cast(&values[1], &DataType::Int64)?
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .clone();
    Ok((value, key))
}

/// Per group: whether it has a row, its best key and its value (an index into `distinct`,
/// `u32::MAX` for NULL).
#[derive(Debug)]
struct ArgGroups {
    end: ArgEnd,
    has: Vec<bool>,
    keys: Vec<i64>,
    values: Vec<u32>,
    distinct: Vec<String>,
    index: HashMap<String, u32>,
    distinct_bytes: usize,
}

const NULL_VALUE: u32 = u32::MAX;

impl ArgGroups {
    fn new(end: ArgEnd) -> Self {
        Self {
            end,
            has: Vec::new(),
            keys: Vec::new(),
            values: Vec::new(),
            distinct: Vec::new(),
            index: HashMap::new(),
            distinct_bytes: 0,
        }
    }

    fn resize(&mut self, n: usize) {
        self.has.resize(n, false);
        self.keys.resize(n, 0);
        self.values.resize(n, NULL_VALUE);
    }

    fn value_of(&self, id: u32) -> Option<&str> {
        (id != NULL_VALUE).then(|| self.distinct[id as usize].as_str())
    }

    fn intern(&mut self, value: Option<&str>) -> u32 {
        let Some(v) = value else {
            return NULL_VALUE;
        };
        if let Some(&id) = self.index.get(v) {
            return id;
        }
        let id = self.distinct.len() as u32;
        self.distinct.push(v.to_string());
        self.index.insert(v.to_string(), id);
        self.distinct_bytes += 2 * v.len() + 64;
        id
    }

    fn offer(&mut self, group: usize, key: i64, value: Option<&str>) {
        let wins = !self.has[group]
            || self.end.beats(
                key,
                value,
                self.keys[group],
                self.value_of(self.values[group]),
            );
        if wins {
            let id = self.intern(value);
            self.has[group] = true;
            self.keys[group] = key;
            self.values[group] = id;
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> (Vec<bool>, Vec<i64>, Vec<u32>) {
        (
            emit_to.take_needed(&mut self.has),
            emit_to.take_needed(&mut self.keys),
            emit_to.take_needed(&mut self.values),
        )
    }

    fn strings(&self, has: &[bool], values: &[u32]) -> ArrayRef {
        let mut b = StringBuilder::with_capacity(values.len(), values.len() * 4);
        for (h, v) in has.iter().zip(values) {
            b.append_option(if *h { self.value_of(*v) } else { None });
        }
        Arc::new(b.finish())
    }
}

impl GroupsAccumulator for ArgGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let (value, key) = inputs(values)?;
        for (row, &g) in group_indices.iter().enumerate() {
            if key.is_null(row) || opt_filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            let v = value.is_valid(row).then(|| value.value(row));
            self.offer(g, key.value(row), v);
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        // A state is (value, key) with a NULL key for a group without rows: the same shape.
        self.update_batch(values, group_indices, None, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (has, _, values) = self.take(emit_to);
        Ok(self.strings(&has, &values))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (has, keys, values) = self.take(emit_to);
        let strings = self.strings(&has, &values);
        let keys: Int64Array = has.iter().zip(keys).map(|(h, k)| h.then_some(k)).collect();
        Ok(vec![strings, Arc::new(keys)])
    }

    /// Skipped partial aggregation: each row is a state of its own (a filtered-out row gets a
    /// NULL key, which merging ignores).
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let (value, key) = inputs(values)?;
        let key: Int64Array = (0..key.len())
            .map(|row| {
                let keep =
                    key.is_valid(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
                keep.then(|| key.value(row))
            })
            .collect();
        Ok(vec![Arc::new(value), Arc::new(key)])
    }

    fn size(&self) -> usize {
        self.has.capacity()
            + self.keys.capacity() * 8
            + self.values.capacity() * 4
            + self.distinct_bytes
    }
}

/// The row-at-a-time form: one group.
#[derive(Debug)]
struct ArgAccumulator {
    groups: ArgGroups,
}

impl ArgAccumulator {
    fn held_key(&mut self) -> Option<i64> {
        self.groups.resize(1);
        self.groups.has[0].then_some(self.groups.keys[0])
    }

    fn held_value(&mut self) -> Option<String> {
        self.held_key()?;
        self.groups
            .value_of(self.groups.values[0])
            .map(str::to_string)
    }
}

impl Accumulator for ArgAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let n = values[0].len();
        self.groups.update_batch(values, &vec![0; n], None, 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let key = self.held_key();
        Ok(vec![
            ScalarValue::Utf8(self.held_value()),
            ScalarValue::Int64(key),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(self.held_value()))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.groups.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_and_nulls_do_not_depend_on_row_order() {
        let mut g = ArgGroups::new(ArgEnd::Max);
        g.resize(1);
        g.offer(0, 5, Some("b"));
        g.offer(0, 5, None);
        g.offer(0, 5, Some("c"));
        g.offer(0, 4, Some("z"));
        assert_eq!(g.value_of(g.values[0]), Some("c"));
        let mut g = ArgGroups::new(ArgEnd::Min);
        g.resize(1);
        g.offer(0, 5, Some("b"));
        g.offer(0, 5, None);
        g.offer(0, 6, Some("a"));
        assert_eq!(g.value_of(g.values[0]), None);
    }
}
