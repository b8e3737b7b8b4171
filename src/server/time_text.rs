//! Timestamps in PostgreSQL's text output: `2026-07-01 18:04:56.5+05:30` for `timestamptz`
//! in the session's TimeZone, `2026-07-01 18:04:56` for `timestamp`. The encoder underneath
//! prints an offset's hours only (a different instant in a zone like Asia/Kolkata) and six
//! fraction digits always; chrono's formatter is right but was a third of the server's time
//! when streaming a result with one timestamp column, so the digits are written here.

use std::sync::Arc;

use chrono::{Offset, TimeZone};
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use pgwire::error::PgWireResult;

use super::errors::{self, pg_error};

/// `batch` with the timestamp `columns` (with or without time zone) as PostgreSQL's text:
/// zoned ones in the session's `time_zone`, else the column's own. Binary values are instants
/// and need none of this.
pub(super) fn timestamps_as_text(
    batch: RecordBatch,
    columns: &[usize],
    time_zone: Option<&str>,
) -> PgWireResult<RecordBatch> {
    use std::str::FromStr;
    if columns.is_empty() {
        return Ok(batch);
    }
    let internal = |e: String| pg_error(errors::INTERNAL_ERROR, e);
    let schema = batch.schema();
    let mut fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut arrays = batch.columns().to_vec();
    for &i in columns {
        let Some(DataType::Timestamp(_, column_zone)) =
            fields.get(i).map(|f| f.data_type().clone())
        else {
            continue;
        };
        let zone: Option<Arc<str>> = column_zone.map(|z| time_zone.map_or(z, Arc::from));
        let tz = zone
            .as_deref()
            .map(datafusion::arrow::array::timezone::Tz::from_str)
            .transpose()
            .map_err(|e| internal(e.to_string()))?;
        let micros = datafusion::arrow::compute::cast(
            &arrays[i],
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )
        .map_err(|e| internal(e.to_string()))?;
        let micros = micros.as_primitive::<TimestampMicrosecondType>();
        let mut text = StringBuilder::with_capacity(micros.len(), micros.len() * 26);
        let mut buf: Vec<u8> = Vec::with_capacity(40);
        // A zone without daylight rules has one offset for every value.
        let fixed = zone.as_deref().and_then(fixed_offset);
        for row in 0..micros.len() {
            if micros.is_null(row) {
                text.append_null();
                continue;
            }
            let utc = micros.value(row);
            let offset = match (&tz, fixed) {
                (None, _) => None,
                (Some(_), Some(seconds)) => Some(seconds),
                (Some(tz), None) => {
                    let Some(at) = chrono::DateTime::from_timestamp_micros(utc) else {
                        text.append_null();
                        continue;
                    };
                    Some(
                        tz.offset_from_utc_datetime(&at.naive_utc())
                            .fix()
                            .local_minus_utc(),
                    )
                }
            };
            let local = utc.saturating_add(i64::from(offset.unwrap_or(0)) * 1_000_000);
            buf.clear();
            write_timestamp(&mut buf, local, offset);
            // Only ASCII digits and signs were written.
            match std::str::from_utf8(&buf) {
                Ok(s) => text.append_value(s),
                Err(e) => return Err(internal(e.to_string())),
            }
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

/// The offset in seconds of a zone that has only one (`UTC`, `+05:30`), else None.
fn fixed_offset(zone: &str) -> Option<i32> {
    let z = zone.trim();
    if ["UTC", "Etc/UTC", "Z", "GMT", "Etc/GMT", "UCT", "Zulu"]
        .iter()
        .any(|u| z.eq_ignore_ascii_case(u))
    {
        return Some(0);
    }
    let (sign, rest) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None if rest.len() == 4 => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        None => (rest.parse().ok()?, 0),
    };
    Some(sign * (h * 3600 + m * 60))
}

/// The proleptic Gregorian (year, month, day) of a day count from 1970-01-01 (H. Hinnant's
/// days-to-civil algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Local time `micros` (since 1970-01-01 00:00 of the wall clock) as PostgreSQL prints it:
/// the fraction without trailing zeros (none when zero), the offset as `+HH`, `+HH:MM` or
/// `+HH:MM:SS` (local mean time of old dates), years before 1 as ` BC` at the end.
fn write_timestamp(out: &mut Vec<u8>, micros: i64, offset: Option<i32>) {
    let days = micros.div_euclid(86_400_000_000);
    let in_day = micros.rem_euclid(86_400_000_000);
    let (year, month, day) = civil_from_days(days);
    let (year, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    digits(out, year as u64, 4);
    out.push(b'-');
    digits(out, u64::from(month), 2);
    out.push(b'-');
    digits(out, u64::from(day), 2);
    out.push(b' ');
    let seconds = (in_day / 1_000_000) as u64;
    digits(out, seconds / 3600, 2);
    out.push(b':');
    digits(out, seconds / 60 % 60, 2);
    out.push(b':');
    digits(out, seconds % 60, 2);
    let mut fraction = (in_day % 1_000_000) as u64;
    if fraction != 0 {
        let mut width = 6;
        while fraction % 10 == 0 {
            fraction /= 10;
            width -= 1;
        }
        out.push(b'.');
        digits(out, fraction, width);
    }
    if let Some(offset) = offset {
        out.push(if offset < 0 { b'-' } else { b'+' });
        let offset = u64::from(offset.unsigned_abs());
        digits(out, offset / 3600, 2);
        if offset % 3600 != 0 {
            out.push(b':');
            digits(out, offset % 3600 / 60, 2);
            if offset % 60 != 0 {
                out.push(b':');
                digits(out, offset % 60, 2);
            }
        }
    }
    if bc {
        out.extend_from_slice(b" BC");
    }
}

/// `value` in decimal, left-padded with zeros to `width` (longer values are written whole).
pub(super) fn digits(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut v = value;
    let mut n = 0;
    loop {
        tmp[19 - n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
        if v == 0 {
            break;
        }
    }
    for _ in n..width {
        out.push(b'0');
    }
    out.extend_from_slice(&tmp[20 - n..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn text(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32, off: Option<i32>) -> String {
        let t = NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_micro_opt(h, mi, s, us))
            .expect("valid test date");
        let mut out = Vec::new();
        write_timestamp(&mut out, t.and_utc().timestamp_micros(), off);
        String::from_utf8(out).expect("ascii")
    }

    // Expected strings are what PostgreSQL 15 prints for the same values
    // (`SET TimeZone`, then `SELECT '…'::timestamptz`).
    #[test]
    fn prints_as_postgres() {
        assert_eq!(
            text(2026, 7, 1, 18, 4, 56, 0, Some(0)),
            "2026-07-01 18:04:56+00"
        );
        assert_eq!(
            text(2026, 7, 1, 18, 4, 56, 500_000, Some(19_800)),
            "2026-07-01 18:04:56.5+05:30"
        );
        assert_eq!(
            text(2026, 1, 2, 3, 4, 5, 123_456, Some(-18_000)),
            "2026-01-02 03:04:05.123456-05"
        );
        assert_eq!(
            text(2026, 1, 2, 3, 4, 5, 10, None),
            "2026-01-02 03:04:05.00001"
        );
        assert_eq!(
            text(1850, 1, 1, 0, 0, 0, 0, Some(3208)),
            "1850-01-01 00:00:00+00:53:28"
        );
        assert_eq!(
            text(-43, 3, 15, 0, 0, 0, 0, Some(0)),
            "0044-03-15 00:00:00+00 BC"
        );
        assert_eq!(text(12345, 1, 1, 0, 0, 0, 0, None), "12345-01-01 00:00:00");
        assert_eq!(
            text(2024, 2, 29, 23, 59, 59, 999_999, None),
            "2024-02-29 23:59:59.999999"
        );
        assert_eq!(
            text(1969, 12, 31, 23, 59, 59, 500_000, None),
            "1969-12-31 23:59:59.5"
        );
        assert_eq!(text(1600, 3, 1, 0, 0, 0, 0, None), "1600-03-01 00:00:00");
    }

    #[test]
    fn days_become_dates_as_chrono_counts_them() {
        for days in (-1_000_000i64..1_000_000).step_by(997) {
            let d = chrono::NaiveDate::from_num_days_from_ce_opt(days as i32 + 719_163)
                .expect("in range");
            let (y, m, dd) = civil_from_days(days);
            assert_eq!(
                (y, m, dd),
                (
                    i64::from(chrono::Datelike::year(&d)),
                    chrono::Datelike::month(&d),
                    chrono::Datelike::day(&d)
                )
            );
        }
    }

    #[test]
    fn fixed_zones_have_one_offset() {
        assert_eq!(fixed_offset("UTC"), Some(0));
        assert_eq!(fixed_offset("+05:30"), Some(19_800));
        assert_eq!(fixed_offset("-0800"), Some(-28_800));
        assert_eq!(fixed_offset("Asia/Kolkata"), None);
    }
}
