//! Parsing of single text fields into stored values, with the reason a value is refused.
//! Pure functions: every rule of the data model that concerns one field lives here.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Days from 0001-01-01 (chrono's CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// A timestamp with an explicit UTC offset (`2025-11-28T09:15:00+08:00`, `...Z`, a space instead
/// of `T`, fractional seconds), returned as microseconds since the epoch in UTC.
/// With `date_only_ok`, a bare date means midnight UTC.
pub fn timestamp_micros(text: &str, date_only_ok: bool) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc).timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
            return Ok(dt.with_timezone(&Utc).timestamp_micros());
        }
    }
    if let Some(stripped) = t.strip_suffix(" UTC").or_else(|| t.strip_suffix(" Z")) {
        for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(stripped, fmt) {
                return Ok(naive.and_utc().timestamp_micros());
            }
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if date_only_ok {
            return Ok(date.and_time(NaiveTime::MIN).and_utc().timestamp_micros());
        }
        return Err("a date without time and UTC offset".into());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if NaiveDateTime::parse_from_str(t, fmt).is_ok() {
            return Err("timestamp without UTC offset (add Z or +hh:mm)".into());
        }
    }
    Err(
        "unparseable timestamp (expected ISO-8601 with offset, e.g. 2025-11-28T09:15:00+08:00)"
            .into(),
    )
}

/// A calendar date `YYYY-MM-DD` as days since 1970-01-01 (Arrow Date32).
pub fn date_days(text: &str) -> Result<i32, String> {
    let t = text.trim();
    let date = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .or_else(|_| {
            // Parquet dates cast to text, or a timestamp at midnight, name the same day.
            DateTime::parse_from_rfc3339(t).map(|d| d.with_timezone(&Utc).date_naive())
        })
        .map_err(|_| "unparseable date (expected YYYY-MM-DD)".to_string())?;
    Ok(date_to_days(date))
}

pub fn date_to_days(date: NaiveDate) -> i32 {
    use chrono::Datelike;
    date.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

pub fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_CE_DAYS)
}

/// UTC calendar day (days since epoch) of a timestamp in microseconds.
pub fn utc_day(micros: i64) -> i32 {
    micros.div_euclid(86_400_000_000) as i32
}

/// `YYYY-MM` of a UTC timestamp in microseconds.
pub fn utc_month(micros: i64) -> String {
    use chrono::Datelike;
    match days_to_date(utc_day(micros)) {
        Some(d) => {
            // Formatting by hand: chrono's strftime machinery is a hot spot at ingest.
            let (y, m) = (d.year(), d.month());
            let mut s = String::with_capacity(7);
            if (0..10000).contains(&y) {
                s.push(char::from(b'0' + (y / 1000) as u8));
                s.push(char::from(b'0' + (y / 100 % 10) as u8));
                s.push(char::from(b'0' + (y / 10 % 10) as u8));
                s.push(char::from(b'0' + (y % 10) as u8));
            } else {
                s.push_str(&y.to_string());
            }
            s.push('-');
            s.push(char::from(b'0' + (m / 10) as u8));
            s.push(char::from(b'0' + (m % 10) as u8));
            s
        }
        None => "0000-00".into(),
    }
}

/// A money amount as hundredths (numeric(18,2)). Accepts `1234.5`, `-0.99`, `1e3`; more than
/// two decimals are rounded half away from zero (three-decimal currencies such as KWD).
pub fn money_cents(text: &str) -> Result<i128, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty amount".into());
    }
    let (neg, digits) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let parsed = if digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        parse_plain_decimal(digits)
    } else {
        None
    };
    let cents = match parsed {
        Some(c) => c,
        None => {
            // Scientific notation or other float spellings.
            let v: f64 = digits.parse().map_err(|_| format!("not a number: '{t}'"))?;
            if !v.is_finite() {
                return Err(format!("not a finite number: '{t}'"));
            }
            (v * 100.0).round() as i128
        }
    };
    const LIMIT: i128 = 10i128.pow(18);
    if cents >= LIMIT {
        return Err(format!("amount out of range for numeric(18,2): '{t}'"));
    }
    Ok(if neg { -cents } else { cents })
}

fn parse_plain_decimal(s: &str) -> Option<i128> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') || int.len() > 20 {
        return None;
    }
    let mut cents: i128 = 0;
    for b in int.bytes() {
        cents = cents * 10 + i128::from(b - b'0');
    }
    let fb = frac.as_bytes();
    let d1 = fb.first().map_or(0, |b| i128::from(b - b'0'));
    let d2 = fb.get(1).map_or(0, |b| i128::from(b - b'0'));
    cents = cents * 100 + d1 * 10 + d2;
    if fb.get(2).is_some_and(|b| *b >= b'5') {
        cents += 1;
    }
    Some(cents)
}

/// Booleans as stores export them: true/false, t/f, yes/no, y/n, 1/0 (any case).
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!(
            "bad boolean '{}' (expected true or false)",
            text.trim()
        )),
    }
}

/// A positive, finite exchange rate.
pub fn positive_rate(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("not a number: '{}'", text.trim()))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!(
            "rate must be a positive number, got '{}'",
            text.trim()
        ));
    }
    Ok(v)
}

/// Upper-cased text, borrowed when it already is.
fn upper(t: &str) -> Cow<'_, str> {
    if t.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(t.to_ascii_uppercase())
    } else {
        Cow::Borrowed(t)
    }
}

/// Lower-cased text, borrowed when it already is.
pub fn lower(t: &str) -> Cow<'_, str> {
    if t.chars().any(char::is_uppercase) {
        Cow::Owned(t.to_lowercase())
    } else {
        Cow::Borrowed(t)
    }
}

/// An ISO 4217 currency code, upper-cased.
pub fn currency(text: &str) -> Result<Cow<'_, str>, String> {
    let code = upper(text.trim());
    if super::currency::is_iso4217(&code) {
        Ok(code)
    } else {
        Err(format!(
            "unknown currency '{}' (not an ISO 4217 code)",
            text.trim()
        ))
    }
}

/// ISO 3166-1 alpha-2 country code, upper-cased.
pub fn country(text: &str) -> Result<Cow<'_, str>, String> {
    let code = upper(text.trim());
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(format!(
            "country '{}' is not an ISO 3166-1 alpha-2 code",
            text.trim()
        ))
    }
}

/// Order status; empty means completed.
pub fn status(text: &str) -> Result<&'static str, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "completed" | "complete" | "paid" | "fulfilled" => Ok("completed"),
        "refunded" => Ok("refunded"),
        "cancelled" | "canceled" => Ok("cancelled"),
        _ => Err(format!(
            "unknown status '{}' (expected completed, refunded or cancelled)",
            text.trim()
        )),
    }
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(text: &str) -> Result<Cow<'_, str>, String> {
    let t = text.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(lower(t))
    } else {
        Err("not a SHA-256 hex digest (64 hex characters)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_converted_to_utc() {
        let a = timestamp_micros("2025-11-28T09:15:00+08:00", false).unwrap();
        let b = timestamp_micros("2025-11-28T01:15:00Z", false).unwrap();
        let c = timestamp_micros("2025-11-28 01:15:00.000+00:00", false).unwrap();
        let d = timestamp_micros("2025-11-27T20:15:00-0500", false).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        assert_eq!(
            utc_month(timestamp_micros("2025-12-01T03:00:00+08:00", false).unwrap()),
            "2025-11"
        );
    }

    #[test]
    fn timestamps_without_offset_are_refused() {
        assert!(
            timestamp_micros("2025-11-28T09:15:00", false)
                .unwrap_err()
                .contains("offset")
        );
        assert!(timestamp_micros("2025-11-28", false).is_err());
        assert!(timestamp_micros("2025-11-28", true).is_ok());
        assert!(
            timestamp_micros("yesterday", false)
                .unwrap_err()
                .contains("unparseable")
        );
        assert!(timestamp_micros("2025-02-30T00:00:00Z", false).is_err());
    }

    #[test]
    fn money() {
        assert_eq!(money_cents("12.5").unwrap(), 1250);
        assert_eq!(money_cents("12").unwrap(), 1200);
        assert_eq!(money_cents("0.005").unwrap(), 1);
        assert_eq!(money_cents("-3.10").unwrap(), -310);
        assert_eq!(money_cents("1e3").unwrap(), 100_000);
        assert_eq!(money_cents(".5").unwrap(), 50);
        assert!(money_cents("12,50").is_err());
        assert!(money_cents("abc").is_err());
        assert!(money_cents("").is_err());
        assert!(money_cents("NaN").is_err());
        assert!(money_cents("1.2.3").is_err());
    }

    #[test]
    fn dates_round_trip() {
        let d = date_days("2026-07-01").unwrap();
        assert_eq!(days_to_date(d).unwrap().to_string(), "2026-07-01");
        assert_eq!(date_days("1970-01-01").unwrap(), 0);
        assert_eq!(utc_day(-1), -1);
        assert!(date_days("2026-13-01").is_err());
    }

    #[test]
    fn codes() {
        assert_eq!(currency("eur").unwrap(), "EUR");
        assert!(currency("EUX").is_err());
        assert!(country("DEU").is_err());
        assert_eq!(status("Canceled").unwrap(), "cancelled");
        assert!(status("lost").is_err());
        assert!(boolean("maybe").is_err());
        assert!(boolean("YES").unwrap());
        assert!(sha256_hex("abc").is_err());
    }
}
