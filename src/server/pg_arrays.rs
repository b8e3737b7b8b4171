//! `information_schema._pg_expandarray`, which pgjdbc's `getPrimaryKeys` and `getIndexInfo`
//! call on `pg_index.indkey` to number a key's columns:
//!
//! ```sql
//! SELECT ..., (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ,
//!        information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM ...
//! ... WHERE result.A_ATTNUM = (result.KEYS).x
//! ```
//!
//! In PostgreSQL it returns a set of `(x, n)` rows: each element and its position. DataFusion
//! has no set-returning functions in a select list except `unnest`, so this function returns
//! the whole list of `{x, n}` structs and the catalog rewrite (`rewrite/index_keys.rs`) wraps
//! the call in `unnest`, which gives one row per element and zips with the statement's other
//! `unnest`s as PostgreSQL zips its set-returning functions.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Builder, ListArray, StructArray, new_null_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The name the rewrite calls (PostgreSQL's, without its schema).
pub const EXPAND_ARRAY: &str = "_pg_expandarray";

pub fn expand_array_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ExpandArray {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

fn element_type(list: &DataType) -> DfResult<DataType> {
    match list {
        DataType::List(f) => Ok(f.data_type().clone()),
        DataType::Null => Ok(DataType::Null),
        other => exec_err!("_pg_expandarray takes an array, not {other}"),
    }
}

fn pair_fields(element: DataType) -> Fields {
    Fields::from(vec![
        Field::new("x", element, true),
        Field::new("n", DataType::Int32, false),
    ])
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        EXPAND_ARRAY
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let Some(list) = args.first() else {
            return exec_err!("_pg_expandarray takes one array");
        };
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Struct(pair_fields(element_type(list)?)),
            true,
        ))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(arg) = args.args.first() else {
            return exec_err!("_pg_expandarray takes one array");
        };
        let input = arg.to_array(args.number_rows)?;
        let list: ListArray = match input.data_type() {
            DataType::List(_) => input.as_list::<i32>().clone(),
            DataType::Null => {
                return Ok(ColumnarValue::Array(new_null_array(
                    args.return_field.data_type(),
                    args.number_rows,
                )));
            }
            other => return exec_err!("_pg_expandarray takes an array, not {other}"),
        };
        // Positions restart at 1 in every row's list.
        let mut positions = Int32Builder::with_capacity(list.values().len());
        let offsets = list.value_offsets();
        let first = offsets.first().copied().unwrap_or(0);
        let last = offsets.last().copied().unwrap_or(0);
        for row in 0..list.len() {
            let (start, end) = (offsets[row], offsets[row + 1]);
            for k in 0..(end - start) {
                positions.append_value(k + 1);
            }
        }
        let values: ArrayRef = list.values().slice(first as usize, (last - first) as usize);
        let fields = pair_fields(values.data_type().clone());
        let pairs = StructArray::try_new(
            fields.clone(),
            vec![values, Arc::new(positions.finish())],
            None,
        )?;
        let shifted: Vec<i32> = offsets.iter().map(|o| o - first).collect();
        let out = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Struct(fields), true)),
            OffsetBuffer::new(shifted.into()),
            Arc::new(pairs),
            list.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
