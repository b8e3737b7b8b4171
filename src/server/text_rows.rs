//! Text-format DataRows made a column at a time, for results whose every column is text,
//! an integer or a boolean once [`super::encode::to_wire_batch`] and
//! [`super::time_text::timestamps_as_text`] have run (numerics and timestamps are text by
//! then). The general encoder underneath dispatches on the type for every value of every row;
//! streaming a million orders spent a quarter of the server's time there. Other types (floats,
//! dates, arrays, binary) keep that encoder: its text for them is PostgreSQL's.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use pgwire::messages::data::DataRow;

/// One column's values as text bytes, or None for NULL.
enum Column<'a> {
    Text(Box<dyn Fn(usize) -> Option<&'a [u8]> + 'a>),
    Owned(Vec<Option<Vec<u8>>>),
}

/// The rows of `batch` in text format, or None when a column's type is not one this file
/// writes (the caller then uses the general encoder).
pub(super) fn text_rows(batch: &RecordBatch) -> Option<Vec<DataRow>> {
    let columns: Vec<Column> = batch.columns().iter().map(column).collect::<Option<_>>()?;
    let field_count = i16::try_from(columns.len()).ok()?;
    let n = batch.num_rows();
    // One buffer for the batch, split into the rows' own (shared allocation, no copy).
    let mut total = 0usize;
    for row in 0..n {
        for c in &columns {
            total += 4 + len_of(c, row);
        }
    }
    let mut buf = bytes::BytesMut::with_capacity(total);
    let mut rows = Vec::with_capacity(n);
    for row in 0..n {
        for c in &columns {
            match c {
                Column::Text(f) => put(&mut buf, f(row)),
                Column::Owned(v) => put(&mut buf, v[row].as_deref()),
            }
        }
        rows.push(DataRow::new(buf.split(), field_count));
    }
    Some(rows)
}

fn len_of(c: &Column, row: usize) -> usize {
    match c {
        Column::Text(f) => f(row).map_or(0, <[u8]>::len),
        Column::Owned(v) => v[row].as_ref().map_or(0, Vec::len),
    }
}

fn put(buf: &mut bytes::BytesMut, value: Option<&[u8]>) {
    match value {
        None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(v) => {
            buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
            buf.extend_from_slice(v);
        }
    }
}

fn column(array: &ArrayRef) -> Option<Column<'_>> {
    Some(match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            Column::Text(Box::new(move |i| {
                a.is_valid(i).then(|| a.value(i).as_bytes())
            }))
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            Column::Text(Box::new(move |i| {
                a.is_valid(i).then(|| a.value(i).as_bytes())
            }))
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            Column::Text(Box::new(move |i| {
                a.is_valid(i).then(|| a.value(i).as_bytes())
            }))
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            Column::Text(Box::new(move |i| {
                a.is_valid(i)
                    .then(|| if a.value(i) { &b"t"[..] } else { &b"f"[..] })
            }))
        }
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let cast = datafusion::arrow::compute::cast(array, &DataType::Int64).ok()?;
            let a = cast.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            Column::Owned(
                (0..a.len())
                    .map(|i| a.is_valid(i).then(|| a.value(i).to_string().into_bytes()))
                    .collect(),
            )
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn rows_carry_lengths_values_and_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("i", DataType::Int32, true),
            Field::new("b", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("ab"), None])),
                Arc::new(Int32Array::from(vec![Some(-12), Some(7)])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
            ],
        )
        .expect("batch");
        let rows = text_rows(&batch).expect("supported types");
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0].data[..], b"\0\0\0\x02ab\0\0\0\x03-12\0\0\0\x01t");
        assert_eq!(
            &rows[1].data[..],
            b"\xff\xff\xff\xff\0\0\0\x017\xff\xff\xff\xff"
        );
        assert_eq!(rows[1].field_count, 3);
    }
}
