//! asyncpg's type introspection. Before decoding arrays (and other non-scalar types) asyncpg
//! prepares a recursive catalog query that binds an `oid[]` and reads `"char"` and `oid[]`
//! columns. The emulated catalog cannot run it as written, so the server recognises it and
//! answers it for the built-in types rebuy returns: each array type with its element type.

use std::sync::Arc;

use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldInfo, QueryResponse};
use pgwire::error::PgWireResult;

use super::errors;

pub fn is_introspection(sql: &str) -> bool {
    sql.contains("typeinfo_tree") && sql.contains("$1::oid[]")
}

/// (array oid, array name, element oid, element name)
const ARRAYS: &[(u32, &str, u32, &str)] = &[
    (1000, "_bool", 16, "bool"),
    (1001, "_bytea", 17, "bytea"),
    (1003, "_name", 19, "name"),
    (1005, "_int2", 21, "int2"),
    (1007, "_int4", 23, "int4"),
    (1009, "_text", 25, "text"),
    (1015, "_varchar", 1043, "varchar"),
    (1016, "_int8", 20, "int8"),
    (1021, "_float4", 700, "float4"),
    (1022, "_float8", 701, "float8"),
    (1028, "_oid", 26, "oid"),
    (1115, "_timestamp", 1114, "timestamp"),
    (1182, "_date", 1082, "date"),
    (1183, "_time", 1083, "time"),
    (1185, "_timestamptz", 1184, "timestamptz"),
    (1187, "_interval", 1186, "interval"),
    (1231, "_numeric", 1700, "numeric"),
];

const COLUMNS: &[(&str, Type)] = &[
    ("oid", Type::OID),
    ("ns", Type::NAME),
    ("name", Type::NAME),
    ("kind", Type::CHAR),
    ("basetype", Type::OID),
    ("elemtype", Type::OID),
    ("elemdelim", Type::CHAR),
    ("range_subtype", Type::OID),
    ("attrtypoids", Type::OID_ARRAY),
    ("attrnames", Type::TEXT_ARRAY),
    ("depth", Type::INT4),
    ("basetype_name", Type::TEXT),
    ("elemtype_name", Type::TEXT),
    ("range_subtype_name", Type::TEXT),
];

pub fn parameter_types() -> Vec<Type> {
    vec![Type::OID_ARRAY]
}

pub fn fields(format: &Format) -> Vec<FieldInfo> {
    COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            FieldInfo::new(
                name.to_string(),
                None,
                None,
                ty.clone(),
                format.format_for(i),
            )
        })
        .collect()
}

/// The OIDs of the bound `oid[]` parameter, in binary or text form.
pub fn decode_oids(value: Option<&[u8]>, binary: bool) -> PgWireResult<Vec<u32>> {
    let bad = || {
        errors::pg_error(
            errors::INVALID_TEXT_REPRESENTATION,
            "malformed oid[] parameter",
        )
    };
    let Some(bytes) = value else {
        return Ok(vec![]);
    };
    if !binary {
        let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
        return text
            .trim_matches(|c| c == '{' || c == '}')
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse::<u32>().map_err(|_| bad()))
            .collect();
    }
    let int = |at: usize| -> PgWireResult<i32> {
        bytes
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(bad)
    };
    let ndim = int(0)?;
    if ndim == 0 {
        return Ok(vec![]);
    }
    if ndim != 1 {
        return Err(bad());
    }
    let count = int(12)?.max(0) as usize;
    let mut at = 20;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = int(at)?;
        at += 4;
        if len == 4 {
            out.push(int(at)? as u32);
            at += 4;
        } else if len < 0 {
            continue;
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

/// One row per requested array type (depth 0) and one per element type (depth 1).
pub fn response(oids: &[u32], format: &Format) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(fields(format));
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut rows = Vec::new();
    let mut elements = Vec::new();
    for oid in oids {
        if let Some(&(_, name, elem, elem_name)) = ARRAYS.iter().find(|a| a.0 == *oid) {
            rows.push(row(&mut encoder, *oid, name, elem, Some(elem_name), 0)?);
            elements.push((elem, elem_name));
        }
    }
    for (oid, name) in elements {
        rows.push(row(&mut encoder, oid, name, 0, None, 1)?);
    }
    Ok(QueryResponse::new(
        fields,
        futures::stream::iter(rows.into_iter().map(Ok)),
    ))
}

fn row(
    encoder: &mut DataRowEncoder,
    oid: u32,
    name: &str,
    elem: u32,
    elem_name: Option<&str>,
    depth: i32,
) -> PgWireResult<pgwire::messages::data::DataRow> {
    encoder.encode_field(&oid)?;
    encoder.encode_field(&"pg_catalog")?;
    encoder.encode_field(&name)?;
    encoder.encode_field(&(b'b' as i8))?;
    encoder.encode_field(&None::<u32>)?;
    encoder.encode_field(&elem)?;
    encoder.encode_field(&(b',' as i8))?;
    encoder.encode_field(&None::<u32>)?;
    encoder.encode_field(&None::<Vec<u32>>)?;
    encoder.encode_field(&None::<Vec<String>>)?;
    encoder.encode_field(&depth)?;
    encoder.encode_field(&None::<String>)?;
    encoder.encode_field(&elem_name)?;
    encoder.encode_field(&None::<String>)?;
    Ok(encoder.take_row())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_arrays_decode_in_both_formats() {
        assert_eq!(
            decode_oids(Some(b"{1016,1022}"), false).unwrap(),
            vec![1016, 1022]
        );
        let mut bin = Vec::new();
        for v in [1i32, 0, 26, 2, 1] {
            bin.extend_from_slice(&v.to_be_bytes());
        }
        for oid in [1016i32, 1009] {
            bin.extend_from_slice(&4i32.to_be_bytes());
            bin.extend_from_slice(&oid.to_be_bytes());
        }
        assert_eq!(decode_oids(Some(&bin), true).unwrap(), vec![1016, 1009]);
        assert!(decode_oids(Some(&[0, 0]), true).is_err());
    }
}
