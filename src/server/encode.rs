//! Arrow values as PostgreSQL clients expect them on the wire: structs and maps as JSON text,
//! timestamps with time zone in the session's zone, no trailing zeros in seconds, and the
//! mapping between PostgreSQL and Arrow types.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::{Expr, LogicalPlan};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;

use super::errors::{self, pg_error};

/// Drops the zeros at the end of the seconds' fraction (and the point, if nothing is left) in
/// the given text columns: `16:50:15.000000+00` becomes `16:50:15+00`.
pub(super) fn trim_fractions(row: DataRow, columns: &[usize]) -> DataRow {
    let mut fields = row_fields(&row);
    for &i in columns {
        let Some(Some(value)) = fields.get_mut(i) else {
            continue;
        };
        let Some(dot) = value.iter().rposition(|b| *b == b'.') else {
            continue;
        };
        let digits_end = value[dot + 1..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .map_or(value.len(), |p| dot + 1 + p);
        let mut keep = digits_end;
        while keep > dot + 1 && value[keep - 1] == b'0' {
            keep -= 1;
        }
        if keep == dot + 1 {
            keep = dot;
        }
        value.drain(keep..digits_end);
    }
    row_from_fields(&fields, row.field_count, row.data.len())
}

/// A DataRow of these field values (None: NULL).
pub(super) fn row_from_fields(
    fields: &[Option<Vec<u8>>],
    field_count: i16,
    capacity: usize,
) -> DataRow {
    let mut data = bytes::BytesMut::with_capacity(capacity);
    for f in fields {
        match f {
            None => data.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                data.extend_from_slice(&(v.len() as i32).to_be_bytes());
                data.extend_from_slice(v);
            }
        }
    }
    DataRow::new(data, field_count)
}

/// Splits a text-format DataRow into its fields.
pub(super) fn row_fields(row: &DataRow) -> Vec<Option<Vec<u8>>> {
    let data = &row.data;
    let mut fields = Vec::with_capacity(row.field_count.max(0) as usize);
    let mut pos = 0usize;
    for _ in 0..row.field_count {
        if pos + 4 > data.len() {
            break;
        }
        let len = i32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        pos += 4;
        if len < 0 {
            fields.push(None);
        } else {
            let end = (pos + len as usize).min(data.len());
            fields.push(Some(data[pos..end].to_vec()));
            pos = end;
        }
    }
    fields
}

/// The type an Arrow type travels as. Structs and maps as JSON text (PostgreSQL clients have
/// no generic composite decoder); unsigned integers (`row_number()`, `rank()`) as the signed
/// type PostgreSQL gives them, not `numeric`; an untyped NULL as text, as PostgreSQL resolves
/// an unknown result column.
fn wire_type(t: &DataType) -> Option<DataType> {
    Some(match t {
        DataType::Struct(_) | DataType::Map(_, _) | DataType::Null => DataType::Utf8,
        // Exact text at the column's scale (`0.00`), for any precision up to 76 digits; binary
        // values are made from it (see super::numeric), which the encoder underneath cannot
        // do past 28 digits.
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => DataType::Utf8,
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        _ => return None,
    })
}

/// The schema rows are encoded with: wire types, and the names clients see.
pub(super) fn wire_schema(schema: &SchemaRef) -> Schema {
    wire_schema_with(schema, wire_type)
}

/// The schema RowDescription is made from: as [`wire_schema`], but numerics stay numerics.
fn described_schema(schema: &SchemaRef) -> Schema {
    wire_schema_with(schema, |t| match t {
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => None,
        other => wire_type(other),
    })
}

fn wire_schema_with(schema: &SchemaRef, map: impl Fn(&DataType) -> Option<DataType>) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let name = crate::sql::output_name(f.name());
                match map(f.data_type()) {
                    Some(t) => Field::new(name, t, f.is_nullable()),
                    None => f.as_ref().clone().with_name(name),
                }
            })
            .collect::<Vec<_>>(),
    )
}

/// RowDescription for `schema`: PostgreSQL's types, and for a `numeric(p,s)` column its
/// precision and scale as the type modifier (`((p << 16) | s) + 4`), which pgjdbc's
/// `getPrecision`/`getScale` and SQLAlchemy read. A DataFusion result widened to 38 digits
/// (sums, averages) has no declared precision, as in PostgreSQL; nor, when `declared` says
/// which columns are a table's or an explicit cast's (see [`declared_columns`]), do the others.
pub(super) fn pg_fields(
    schema: &SchemaRef,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
    declared: Option<&[bool]>,
) -> PgWireResult<Vec<FieldInfo>> {
    let wire = described_schema(schema);
    let fields = arrow_pg::datatypes::arrow_schema_to_pg_fields(&wire, format, options)?;
    Ok(fields
        .into_iter()
        .zip(wire.fields().iter())
        .enumerate()
        .map(|(i, (info, field))| match field.data_type() {
            DataType::Decimal128(p, s) | DataType::Decimal256(p, s)
                if *p < 38 && *s >= 0 && declared.is_none_or(|d| d.get(i) == Some(&true)) =>
            {
                info.with_type_modifier(((i32::from(*p) << 16) | i32::from(*s as u8)) + 4)
            }
            _ => info,
        })
        .collect())
}

/// Which result columns of `plan` have a declared type PostgreSQL would report with its
/// modifier: a table's column (qualified by its table) or an explicit cast. Constants,
/// aggregates and arithmetic have none (`max(amount)` is plain `numeric` in PostgreSQL).
pub(super) fn declared_columns(plan: &LogicalPlan) -> Vec<bool> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    // Output names of explicit casts anywhere in the plan (a sort or limit above the
    // projection passes them on as plain columns).
    let mut cast_names: Vec<String> = Vec::new();
    let _ = plan.apply(|node| {
        if let LogicalPlan::Projection(p) = node {
            for (e, field) in p.expr.iter().zip(p.schema.fields()) {
                if matches!(
                    e.clone().unalias_nested().data,
                    Expr::Cast(_) | Expr::TryCast(_)
                ) {
                    cast_names.push(field.name().clone());
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let schema = plan.schema();
    (0..schema.fields().len())
        .map(|i| {
            let (qualifier, field) = schema.qualified_field(i);
            qualifier.is_some() || cast_names.iter().any(|n| n == field.name())
        })
        .collect()
}

/// The name of a time zone the way the engine knows it (IANA names in any case, `UTC`,
/// `+05:30`), or None when it is not one.
pub(super) fn canonical_time_zone(value: &str) -> Option<String> {
    use std::str::FromStr;
    let value = value.trim();
    if datafusion::arrow::array::timezone::Tz::from_str(value).is_ok() {
        return Some(value.to_string());
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(value))
        .map(|tz| tz.name().to_string())
}

pub(super) fn to_wire_batch(batch: RecordBatch) -> PgWireResult<RecordBatch> {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| wire_type(f.data_type()).is_some())
    {
        return Ok(batch);
    }
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Struct(_) | DataType::Map(_, _) => columns.push(json_column(field, column)?),
            DataType::Decimal128(_, scale)
                if *scale >= 0 && *field.data_type() != UNCONSTRAINED_NUMERIC =>
            {
                columns.push(decimal_text(column, *scale as u32));
            }
            t => match wire_type(t) {
                Some(to) => {
                    let cast = datafusion::arrow::compute::cast(column, &to)
                        .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))?;
                    columns.push(if *t == UNCONSTRAINED_NUMERIC {
                        natural_scale(&cast)
                    } else {
                        cast
                    });
                }
                None => columns.push(column.clone()),
            },
        }
    }
    RecordBatch::try_new(Arc::new(wire_schema(&schema)), columns)
        .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))
}

/// A decimal column as text at its scale (`13.88`, `-0.05`, `7`), as the cast underneath
/// writes it: that cast formats each value through `format!`, a sixth of the server's time
/// when streaming orders.
fn decimal_text(column: &ArrayRef, scale: u32) -> ArrayRef {
    use datafusion::arrow::array::{Array, AsArray, StringBuilder};
    use datafusion::arrow::datatypes::Decimal128Type;
    let values = column.as_primitive::<Decimal128Type>();
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 8);
    let mut buf: Vec<u8> = Vec::with_capacity(48);
    let divisor = 10u128.pow(scale.min(38));
    for i in 0..values.len() {
        if values.is_null(i) {
            out.append_null();
            continue;
        }
        let v = values.value(i);
        buf.clear();
        if v < 0 {
            buf.push(b'-');
        }
        let abs = v.unsigned_abs();
        write_u128(&mut buf, abs / divisor, 1);
        if scale > 0 {
            buf.push(b'.');
            write_u128(&mut buf, abs % divisor, scale as usize);
        }
        // Digits, a sign and a point only.
        out.append_value(std::str::from_utf8(&buf).unwrap_or_default());
    }
    Arc::new(out.finish())
}

/// `value` in decimal, left-padded with zeros to `width`.
fn write_u128(out: &mut Vec<u8>, value: u128, width: usize) {
    if let Ok(small) = u64::try_from(value) {
        return super::time_text::digits(out, small, width);
    }
    let text = value.to_string();
    for _ in text.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(text.as_bytes());
}

/// The type DataFusion gives `numeric` written without precision and scale (`$1::numeric`,
/// `CAST(x AS numeric)`).
const UNCONSTRAINED_NUMERIC: DataType = DataType::Decimal128(38, 10);

/// PostgreSQL prints an unconstrained numeric at each value's own scale (`1234.56`), where
/// DataFusion holds every value at scale 10 (`1234.5600000000`). The zeros a value was written
/// with are gone by then, so all trailing zeros of the fraction are dropped: `1.50::numeric`
/// prints `1.5` (PostgreSQL: `1.50`), which no driver reads differently as a number.
fn natural_scale(text: &ArrayRef) -> ArrayRef {
    use datafusion::arrow::array::AsArray;
    let Some(strings) = text.as_string_opt::<i32>() else {
        return text.clone();
    };
    let trimmed: StringArray = strings
        .iter()
        .map(|v| {
            v.map(|v| {
                if v.contains('.') {
                    v.trim_end_matches('0').trim_end_matches('.')
                } else {
                    v
                }
            })
        })
        .collect();
    Arc::new(trimmed)
}

pub(super) fn json_column(field: &Field, column: &ArrayRef) -> PgWireResult<ArrayRef> {
    let one = Arc::new(Schema::new(vec![Field::new(
        "v",
        field.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(one, vec![column.clone()])
        .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))?;
    let mut buf = Vec::new();
    {
        let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
        writer
            .write(&batch)
            .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))?;
        writer
            .finish()
            .map_err(|e| pg_error(errors::INTERNAL_ERROR, e.to_string()))?;
    }
    let text = String::from_utf8_lossy(&buf);
    let mut out = Vec::with_capacity(column.len());
    for (i, line) in text.lines().enumerate() {
        if column.is_null(i) {
            out.push(None);
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or(serde_json::Value::Null);
        out.push(v.get("v").map(|x| x.to_string()));
    }
    Ok(Arc::new(StringArray::from(out)))
}

pub(super) fn pg_to_arrow(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => DataType::Float64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DataType::Utf8,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => {
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None)
        }
        Type::TIMESTAMPTZ => DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        ),
        _ => return None,
    })
}

pub(super) fn sql_type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "BOOLEAN",
        DataType::Int16 => "SMALLINT",
        DataType::Int32 => "INT",
        DataType::Int64 => "BIGINT",
        DataType::Float32 => "REAL",
        DataType::Float64 => "DOUBLE",
        DataType::Date32 => "DATE",
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ",
        DataType::Timestamp(_, None) => "TIMESTAMP",
        _ => "VARCHAR",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray, Decimal128Array};

    /// The text is the cast's, value for value, at every scale and sign.
    #[test]
    fn decimal_text_is_the_casts() {
        // Values of at most 38 digits, the widest a Decimal128 column declares.
        let widest = 10i128.pow(38) - 1;
        let mut values: Vec<Option<i128>> = vec![None, Some(0), Some(widest), Some(-widest)];
        let mut v: i128 = 1;
        for i in 0..120 {
            values.push(Some(v));
            values.push(Some(-v + i));
            v = (v * 3 + i) % 10i128.pow(37);
        }
        for (precision, scale) in [(38u8, 0i8), (18, 2), (38, 10), (38, 37), (10, 5)] {
            let array: ArrayRef = Arc::new(
                Decimal128Array::from(
                    values
                        .iter()
                        .map(|v| v.filter(|v| v.unsigned_abs() < 10u128.pow(precision.into())))
                        .collect::<Vec<_>>(),
                )
                .with_precision_and_scale(precision, scale)
                .expect("valid decimal type"),
            );
            let ours = decimal_text(&array, scale as u32);
            let cast = datafusion::arrow::compute::cast(&array, &DataType::Utf8).expect("cast");
            let (ours, cast) = (ours.as_string::<i32>(), cast.as_string::<i32>());
            for i in 0..array.len() {
                assert_eq!(ours.is_null(i), cast.is_null(i));
                if !cast.is_null(i) {
                    assert_eq!(ours.value(i), cast.value(i), "scale {scale}");
                }
            }
        }
    }
}
