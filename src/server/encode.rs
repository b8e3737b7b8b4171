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

/// `batch` with the timestamp-with-time-zone `columns` as PostgreSQL's text for them in the
/// session's `time_zone` (else the column's), `2026-07-01 18:04:56.5+05:30`: the encoder
/// underneath prints the offset's hours only, which shows a different instant in a zone like
/// Asia/Kolkata. Binary values are instants and need no zone.
pub(super) fn zoned_as_text(
    batch: RecordBatch,
    columns: &[usize],
    time_zone: Option<&str>,
) -> PgWireResult<RecordBatch> {
    use datafusion::arrow::array::{Array, AsArray, StringBuilder};
    use datafusion::arrow::datatypes::{TimeUnit, TimestampMicrosecondType};
    use std::fmt::Write;
    use std::str::FromStr;
    if columns.is_empty() {
        return Ok(batch);
    }
    let internal = |e: String| pg_error(errors::INTERNAL_ERROR, e);
    let schema = batch.schema();
    let mut fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut arrays = batch.columns().to_vec();
    for &i in columns {
        let Some(DataType::Timestamp(_, Some(column_zone))) =
            fields.get(i).map(|f| f.data_type().clone())
        else {
            continue;
        };
        let zone: Arc<str> = time_zone.map_or(column_zone, Arc::from);
        let tz = datafusion::arrow::array::timezone::Tz::from_str(&zone)
            .map_err(|e| internal(e.to_string()))?;
        let micros = datafusion::arrow::compute::cast(
            &arrays[i],
            &DataType::Timestamp(TimeUnit::Microsecond, Some(zone.clone())),
        )
        .map_err(|e| internal(e.to_string()))?;
        let micros = micros.as_primitive::<TimestampMicrosecondType>();
        let mut text = StringBuilder::with_capacity(micros.len(), micros.len() * 26);
        for row in 0..micros.len() {
            let Some(t) = micros
                .is_valid(row)
                .then(|| micros.value_as_datetime_with_tz(row, tz))
                .flatten()
            else {
                text.append_null();
                continue;
            };
            let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
            let fraction = t.timestamp_subsec_micros();
            if fraction != 0 {
                let digits = format!("{fraction:06}");
                s.push('.');
                s.push_str(digits.trim_end_matches('0'));
            }
            let offset = chrono::Offset::fix(t.offset()).local_minus_utc();
            let (sign, offset) = if offset < 0 {
                ('-', -offset)
            } else {
                ('+', offset)
            };
            let _ = write!(s, "{sign}{:02}", offset / 3600);
            if offset % 3600 != 0 {
                let _ = write!(s, ":{:02}", offset % 3600 / 60);
            }
            text.append_value(s);
        }
        arrays[i] = Arc::new(text.finish());
        fields[i] = fields[i].clone().with_data_type(DataType::Utf8);
    }
    RecordBatch::try_new(
        Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        )),
        arrays,
    )
    .map_err(|e| internal(e.to_string()))
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
