//! Row-level validation: one input row (text fields in the order of
//! [`TableKind::input_columns`]) becomes one stored row, or a [`RowProblem`] naming the column and
//! the reason. Derived columns (`amount_usd`, `order_month`) are computed here too.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;

use super::parse;
use crate::storage::TableKind;

/// Name of the hidden column that orders input rows (file, then row), so that the last of
/// several rows with one key wins. It exists only in staging files.
pub const SEQ_COLUMN: &str = "_rebuy_seq";

/// Why one row was refused.
#[derive(Debug, Clone)]
pub struct RowProblem {
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// Daily exchange rates, for `amount_usd`: the latest rate on or before the order's UTC day.
#[derive(Debug, Default, Clone)]
pub struct FxRates {
    by_currency: HashMap<String, Vec<(i32, f64)>>,
}

impl FxRates {
    pub fn insert(&mut self, currency: &str, day: i32, to_usd: f64) {
        self.by_currency
            .entry(currency.to_string())
            .or_default()
            .push((day, to_usd));
    }

    /// Sorts the rates by day; call once after the last insert.
    pub fn seal(&mut self) {
        for v in self.by_currency.values_mut() {
            v.sort_by_key(|(d, _)| *d);
        }
    }

    pub fn rate(&self, currency: &str, day: i32) -> Option<f64> {
        match self.by_currency.get(currency) {
            Some(rates) => {
                let idx = rates.partition_point(|(d, _)| *d <= day);
                if idx == 0 {
                    None
                } else {
                    Some(rates[idx - 1].1)
                }
            }
            // One US dollar is one US dollar, whether or not the store sent a USD row.
            None if currency == "USD" => Some(1.0),
            None => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_currency.is_empty()
    }
}

enum Val<'a> {
    Null,
    Str(&'a str),
    Owned(String),
    Cow(Cow<'a, str>),
    Ts(i64),
    Cents(i128),
    Bool(bool),
    F64(f64),
    Date(i32),
}

impl Val<'_> {
    fn hash_key(&self, h: &mut impl std::hash::Hasher) {
        use std::hash::Hash;
        match self {
            Val::Str(s) => s.hash(h),
            Val::Owned(s) => s.as_str().hash(h),
            Val::Cow(s) => s.as_ref().hash(h),
            Val::Date(d) => d.hash(h),
            Val::Ts(t) => t.hash(h),
            _ => 0u8.hash(h),
        }
    }
}

enum Col {
    Str(StringBuilder),
    Ts(TimestampMicrosecondBuilder),
    Dec(Decimal128Builder),
    Bool(BooleanBuilder),
    F64(Float64Builder),
    Date(Date32Builder),
}

impl Col {
    fn for_type(dt: &DataType) -> Col {
        match dt {
            DataType::Timestamp(_, _) => {
                Col::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            DataType::Decimal128(p, s) => Col::Dec(
                Decimal128Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .unwrap_or_default(),
            ),
            DataType::Boolean => Col::Bool(BooleanBuilder::new()),
            DataType::Float64 => Col::F64(Float64Builder::new()),
            DataType::Date32 => Col::Date(Date32Builder::new()),
            _ => Col::Str(StringBuilder::new()),
        }
    }

    fn append(&mut self, v: &Val<'_>) {
        match (self, v) {
            (Col::Str(b), Val::Str(s)) => b.append_value(s),
            (Col::Str(b), Val::Owned(s)) => b.append_value(s),
            (Col::Str(b), Val::Cow(s)) => b.append_value(s),
            (Col::Ts(b), Val::Ts(t)) => b.append_value(*t),
            (Col::Dec(b), Val::Cents(c)) => b.append_value(*c),
            (Col::Bool(b), Val::Bool(x)) => b.append_value(*x),
            (Col::F64(b), Val::F64(x)) => b.append_value(*x),
            (Col::Date(b), Val::Date(d)) => b.append_value(*d),
            (Col::Str(b), _) => b.append_null(),
            (Col::Ts(b), _) => b.append_null(),
            (Col::Dec(b), _) => b.append_null(),
            (Col::Bool(b), _) => b.append_null(),
            (Col::F64(b), _) => b.append_null(),
            (Col::Date(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Str(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish()),
            Col::Dec(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
        }
    }
}

/// Accumulates validated rows of one table into Arrow columns in the stored schema, plus the
/// [`SEQ_COLUMN`].
pub struct RowSink {
    table: TableKind,
    names: Vec<String>,
    cols: Vec<Col>,
    seq: UInt64Builder,
    schema: SchemaRef,
    fx: Arc<FxRates>,
    len: usize,
    /// A 64-bit hash of the key of every accepted row (see [`RowSink::take_key_hashes`]).
    key_hashes: Vec<u64>,
    /// Positions of the table's key columns in a stored row.
    key_positions: Vec<usize>,
}

type Outcome<T> = Result<T, (usize, String)>;

impl RowSink {
    pub fn new(table: TableKind, fx: Arc<FxRates>) -> Self {
        let stored = table.schema();
        let mut fields: Vec<Field> = stored.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(SEQ_COLUMN, DataType::UInt64, false));
        Self {
            table,
            names: table.input_columns().into_iter().map(|c| c.name).collect(),
            cols: stored
                .fields()
                .iter()
                .map(|f| Col::for_type(f.data_type()))
                .collect(),
            seq: UInt64Builder::new(),
            schema: Arc::new(Schema::new(fields)),
            fx,
            len: 0,
            key_hashes: Vec::new(),
            key_positions: table
                .key_columns()
                .iter()
                .filter_map(|k| stored.index_of(k).ok())
                .collect(),
        }
    }

    /// The key hashes of all rows accepted so far. Distinct hashes prove distinct keys, so
    /// the commit can skip its exact duplicate check; equal hashes only mean "check".
    pub fn take_key_hashes(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.key_hashes)
    }

    /// Schema of the batches [`RowSink::finish`] returns.
    pub fn staging_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Validates one row; on success it is appended, on failure nothing is.
    pub fn push(&mut self, fields: &[Option<&str>], seq: u64) -> Result<(), RowProblem> {
        let row = match self.table {
            TableKind::Orders => self.order(fields),
            TableKind::Customers => customer(fields),
            TableKind::FxRates => fx_rate(fields),
            TableKind::MarketingSpend => self.spend(fields),
        };
        match row {
            Ok(vals) => {
                let mut hasher = std::hash::DefaultHasher::new();
                for k in &self.key_positions {
                    vals[*k].hash_key(&mut hasher);
                }
                self.key_hashes.push(std::hash::Hasher::finish(&hasher));
                for (col, v) in self.cols.iter_mut().zip(&vals) {
                    col.append(v);
                }
                self.seq.append_value(seq);
                self.len += 1;
                Ok(())
            }
            Err((idx, reason)) => Err(RowProblem {
                column: self.names.get(idx).cloned().unwrap_or_else(|| "*".into()),
                value: fields
                    .get(idx)
                    .copied()
                    .flatten()
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect(),
                reason,
            }),
        }
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        arrays.push(Arc::new(self.seq.finish()));
        self.len = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
    }

    fn order<'a>(&self, f: &[Option<&'a str>]) -> Outcome<Vec<Val<'a>>> {
        let order_id = required(f, 0)?;
        let customer_id = required(f, 1)?;
        let ts = parse::timestamp_micros(required(f, 2)?, false).map_err(|e| (2, e))?;
        let amount = amount_cents(required(f, 3)?, 3)?;
        let currency = parse::currency(required(f, 4)?).map_err(|e| (4, e))?;
        let country = optional(f, 6)
            .map(parse::country)
            .transpose()
            .map_err(|e| (6, e))?;
        let is_subscription = optional(f, 9)
            .map(parse::boolean)
            .transpose()
            .map_err(|e| (9, e))?
            .unwrap_or(false);
        let status = parse::status(optional(f, 10).unwrap_or("")).map_err(|e| (10, e))?;
        let discount = match optional(f, 11) {
            Some(d) => parse::money_cents(d).map_err(|e| (11, e))?,
            None => 0,
        };
        if discount < 0 {
            return Err((11, "negative discount".into()));
        }
        let email = optional(f, 12)
            .map(parse::sha256_hex)
            .transpose()
            .map_err(|e| (12, e))?;
        let rate = self.usd_rate(&currency, parse::utc_day(ts), 4)?;
        let amount_usd = amount as f64 / 100.0 * rate;
        Ok(vec![
            Val::Str(order_id),
            Val::Str(customer_id),
            Val::Ts(ts),
            Val::Cents(amount),
            Val::Cow(currency),
            text(optional(f, 5)),
            country.map_or(Val::Null, Val::Cow),
            lower(optional(f, 7)),
            lower(optional(f, 8)),
            Val::Bool(is_subscription),
            Val::Str(status),
            Val::Cents(discount),
            email.map_or(Val::Null, Val::Cow),
            Val::F64(amount_usd),
            Val::Owned(parse::utc_month(ts)),
        ])
    }

    fn spend<'a>(&self, f: &[Option<&'a str>]) -> Outcome<Vec<Val<'a>>> {
        let day = parse::date_days(required(f, 0)?).map_err(|e| (0, e))?;
        let channel = parse::lower(required(f, 1)?);
        let amount = amount_cents(required(f, 3)?, 3)?;
        let currency = parse::currency(required(f, 4)?).map_err(|e| (4, e))?;
        let amount_usd = amount as f64 / 100.0 * self.usd_rate(&currency, day, 4)?;
        Ok(vec![
            Val::Date(day),
            Val::Cow(channel),
            text(optional(f, 2)),
            Val::Cents(amount),
            Val::Cow(currency),
            Val::F64(amount_usd),
        ])
    }

    /// The rate of `currency` on `day` (the latest on or before it); without one the row is
    /// rejected at `column`, never converted at 1.0.
    fn usd_rate(&self, currency: &str, day: i32, column: usize) -> Outcome<f64> {
        self.fx.rate(currency, day).ok_or_else(|| {
            let date = parse::days_to_date(day)
                .map(|d| d.to_string())
                .unwrap_or_default();
            (
                column,
                format!("missing fx rate: no {currency} rate on or before {date}"),
            )
        })
    }
}

/// An amount of money (orders and spend alike), rejected at `column` when it is negative.
fn amount_cents(text: &str, column: usize) -> Outcome<i128> {
    let cents = parse::money_cents(text).map_err(|e| (column, e))?;
    if cents < 0 {
        return Err((column, "negative amount".into()));
    }
    Ok(cents)
}

fn customer<'a>(f: &[Option<&'a str>]) -> Outcome<Vec<Val<'a>>> {
    let customer_id = required(f, 0)?;
    let signup = optional(f, 1)
        .map(|t| parse::timestamp_micros(t, true))
        .transpose()
        .map_err(|e| (1, e))?;
    let country = optional(f, 2)
        .map(parse::country)
        .transpose()
        .map_err(|e| (2, e))?;
    let consent = optional(f, 5)
        .map(parse::boolean)
        .transpose()
        .map_err(|e| (5, e))?
        .unwrap_or(false);
    let email = optional(f, 7)
        .map(parse::sha256_hex)
        .transpose()
        .map_err(|e| (7, e))?;
    Ok(vec![
        Val::Str(customer_id),
        signup.map_or(Val::Null, Val::Ts),
        country.map_or(Val::Null, Val::Cow),
        text(optional(f, 3)),
        lower(optional(f, 4)),
        Val::Bool(consent),
        text(optional(f, 6)),
        email.map_or(Val::Null, Val::Cow),
    ])
}

fn fx_rate<'a>(f: &[Option<&'a str>]) -> Outcome<Vec<Val<'a>>> {
    let day = parse::date_days(required(f, 0)?).map_err(|e| (0, e))?;
    let currency = parse::currency(required(f, 1)?).map_err(|e| (1, e))?;
    let rate = parse::positive_rate(required(f, 2)?).map_err(|e| (2, e))?;
    Ok(vec![Val::Date(day), Val::Cow(currency), Val::F64(rate)])
}

/// A non-empty field, trimmed.
fn optional<'a>(f: &[Option<&'a str>], i: usize) -> Option<&'a str> {
    f.get(i)
        .copied()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn required<'a>(f: &[Option<&'a str>], i: usize) -> Outcome<&'a str> {
    optional(f, i).ok_or((i, "missing value (required column is empty)".to_string()))
}

fn text(v: Option<&str>) -> Val<'_> {
    v.map_or(Val::Null, Val::Str)
}

fn lower(v: Option<&str>) -> Val<'_> {
    v.map_or(Val::Null, |s| Val::Cow(parse::lower(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fx() -> Arc<FxRates> {
        let mut fx = FxRates::default();
        fx.insert("EUR", parse::date_days("2025-01-01").unwrap(), 1.10);
        fx.insert("EUR", parse::date_days("2025-01-03").unwrap(), 1.20);
        fx.seal();
        Arc::new(fx)
    }

    fn order(id: &str, ts: &str, amount: &str, currency: &str) -> Vec<Option<String>> {
        let mut v = vec![None; 13];
        v[0] = Some(id.to_string());
        v[1] = Some("c-1".to_string());
        v[2] = Some(ts.to_string());
        v[3] = Some(amount.to_string());
        v[4] = Some(currency.to_string());
        v
    }

    fn push(sink: &mut RowSink, row: &[Option<String>]) -> Result<(), RowProblem> {
        let refs: Vec<Option<&str>> = row.iter().map(|s| s.as_deref()).collect();
        sink.push(&refs, 0)
    }

    #[test]
    fn fx_uses_latest_rate_on_or_before_the_utc_day() {
        let fx = fx();
        let d = |s| parse::date_days(s).unwrap();
        assert_eq!(fx.rate("EUR", d("2025-01-02")), Some(1.10));
        assert_eq!(fx.rate("EUR", d("2025-01-03")), Some(1.20));
        assert_eq!(fx.rate("EUR", d("2024-12-31")), None);
        assert_eq!(fx.rate("USD", d("2024-12-31")), Some(1.0));
        assert_eq!(fx.rate("GBP", d("2025-01-02")), None);
    }

    #[test]
    fn rejects_name_column_and_reason() {
        let mut sink = RowSink::new(TableKind::Orders, fx());
        let p = push(&mut sink, &order("o1", "2025-01-02T10:00:00Z", "-1", "EUR")).unwrap_err();
        assert_eq!(p.column, "amount");
        assert!(p.reason.contains("negative"));
        let p = push(&mut sink, &order("o1", "2024-06-02T10:00:00Z", "1", "EUR")).unwrap_err();
        assert_eq!(p.column, "currency");
        assert!(p.reason.contains("missing fx rate"));
        let p = push(&mut sink, &order("", "2025-01-02T10:00:00Z", "1", "EUR")).unwrap_err();
        assert_eq!(p.column, "order_id");
        let mut row = order("o1", "2025-01-02T10:00:00Z", "1", "EUR");
        row[9] = Some("sometimes".into());
        assert_eq!(push(&mut sink, &row).unwrap_err().column, "is_subscription");
        assert!(sink.is_empty());
    }

    #[test]
    fn derived_columns() {
        let mut sink = RowSink::new(TableKind::Orders, fx());
        // 00:30 on Jan 3rd in UTC+8 is still Jan 2nd in UTC: the Jan 1st rate applies.
        push(
            &mut sink,
            &order("o1", "2025-01-03T00:30:00+08:00", "10.00", "EUR"),
        )
        .unwrap();
        let batch = sink.finish().unwrap();
        let usd = batch
            .column_by_name("amount_usd")
            .unwrap()
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .unwrap()
            .value(0);
        assert!((usd - 11.0).abs() < 1e-9);
        let month = batch
            .column_by_name("order_month")
            .unwrap()
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .unwrap()
            .value(0)
            .to_string();
        assert_eq!(month, "2025-01");
    }
}
