//! Session parameters a PostgreSQL client sets and reads (`SET`/`SHOW`/`current_setting`), with
//! PostgreSQL's defaults. rebuy's own settings (`rebuy.*`) and DataFusion's live in the
//! DataFusion session; the rest live here, per connection.

use std::collections::BTreeMap;
use std::time::Duration;

/// The PostgreSQL version rebuy answers as (for clients that branch on it).
pub const PG_VERSION: &str = "16.6";

/// Parameters PostgreSQL reports to the client whenever they change (ParameterStatus).
pub const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "standard_conforming_strings",
    "integer_datetimes",
    "server_version",
    "server_encoding",
    "is_superuser",
    "search_path",
];

fn defaults() -> Vec<(&'static str, String)> {
    vec![
        ("application_name", String::new()),
        ("client_encoding", "UTF8".into()),
        ("server_encoding", "UTF8".into()),
        ("DateStyle", "ISO, MDY".into()),
        ("IntervalStyle", "postgres".into()),
        ("TimeZone", "UTC".into()),
        ("standard_conforming_strings", "on".into()),
        ("integer_datetimes", "on".into()),
        ("server_version", PG_VERSION.into()),
        ("server_version_num", "160006".into()),
        ("search_path", "\"$user\", public".into()),
        ("extra_float_digits", "1".into()),
        ("statement_timeout", "0".into()),
        ("lock_timeout", "0".into()),
        ("idle_in_transaction_session_timeout", "0".into()),
        ("transaction_isolation", "read committed".into()),
        ("default_transaction_isolation", "read committed".into()),
        ("transaction_read_only", "off".into()),
        ("default_transaction_read_only", "off".into()),
        ("max_identifier_length", "63".into()),
        // Read by pgjdbc before its key queries (getImportedKeys, getExportedKeys).
        ("max_index_keys", "32".into()),
        ("max_function_args", "100".into()),
        ("bytea_output", "hex".into()),
        ("lc_messages", "C".into()),
        ("lc_monetary", "C".into()),
        ("lc_numeric", "C".into()),
        ("lc_time", "C".into()),
        ("lc_collate", "C".into()),
        ("lc_ctype", "C".into()),
        ("client_min_messages", "notice".into()),
        ("row_security", "on".into()),
        ("jit", "off".into()),
        ("is_superuser", "off".into()),
        ("max_connections", "100".into()),
        ("block_size", "8192".into()),
        ("geqo", "on".into()),
        ("work_mem", "4MB".into()),
        ("search_path_display", String::new()),
    ]
}

/// One connection's parameters, keyed case-insensitively, remembering the canonical spelling.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, (String, String)>,
    /// Defaults the server's configuration gives (`statement_timeout_ms`), which `RESET`
    /// returns to, as PostgreSQL's return to postgresql.conf.
    server_defaults: BTreeMap<String, String>,
}

impl Settings {
    pub fn new() -> Self {
        let mut values = BTreeMap::new();
        for (k, v) in defaults() {
            values.insert(k.to_ascii_lowercase(), (k.to_string(), v));
        }
        Settings {
            values,
            server_defaults: BTreeMap::new(),
        }
    }

    /// Sets `name` and makes `value` what RESET returns it to.
    pub fn set_default(&mut self, name: &str, value: String) {
        self.server_defaults
            .insert(canonical_key(name), value.clone());
        self.set(name, value);
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(&canonical_key(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets `name`; returns the canonical name to report when the client must be told.
    pub fn set(&mut self, name: &str, value: String) -> Option<String> {
        let key = canonical_key(name);
        let display = self
            .values
            .get(&key)
            .map(|(d, _)| d.clone())
            .unwrap_or_else(|| name.to_ascii_lowercase());
        self.values.insert(key, (display.clone(), value));
        REPORTED
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&display))
            .then_some(display)
    }

    /// Back to the default; a setting with none (one a client made up) is forgotten.
    pub fn reset(&mut self, name: &str) -> Option<String> {
        let key = canonical_key(name);
        let Some((display, builtin)) = defaults()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&key))
        else {
            self.values.remove(&key);
            return None;
        };
        let value = self.server_defaults.get(&key).cloned().unwrap_or(builtin);
        self.set(display, value)
    }

    /// `RESET ALL`: every setting back to its default; the names to report to the client.
    pub fn reset_all(&mut self) -> Vec<String> {
        let keys: Vec<String> = self.values.keys().cloned().collect();
        keys.iter().filter_map(|k| self.reset(k)).collect()
    }

    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.values().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The session's `statement_timeout` under the server's maximum `max_ms` (0: none): a
    /// session may shorten it, never lengthen or remove it (0 or more than the maximum means
    /// the maximum).
    pub fn statement_timeout_within(&self, max_ms: u64) -> Option<Duration> {
        let own = self
            .get("statement_timeout")
            .and_then(parse_duration_ms)
            .unwrap_or(0);
        let ms = match (own, max_ms) {
            (0, max) => max,
            (own, 0) => own,
            (own, max) => own.min(max),
        };
        (ms > 0).then(|| Duration::from_millis(ms))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

fn canonical_key(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "time zone" | "timezone" => "timezone".into(),
        "transaction isolation level" => "transaction_isolation".into(),
        "names" => "client_encoding".into(),
        other => other.to_string(),
    }
}

/// Whether a session may `SET` this DataFusion option to `value`. Most options change how
/// much of the machine one query takes (`target_partitions = 4000` took a server to 22 GB) or
/// how SQL is read (`sql_parser.dialect`, which let text checked in one dialect run in another),
/// so only these may be set, within bounds; the rest are refused with 42501, out-of-range
/// values with 22023. `Err((sqlstate, message))`.
pub fn check_datafusion_option(name: &str, value: &str) -> Result<(), (&'static str, String)> {
    let key = name.to_ascii_lowercase();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let bounded = |low: u64, high: u64| -> Result<(), (&'static str, String)> {
        if value.eq_ignore_ascii_case("default") {
            return Ok(());
        }
        match value.trim().trim_matches('\'').parse::<u64>() {
            Ok(n) if (low..=high).contains(&n) => Ok(()),
            _ => Err((
                super::errors::INVALID_PARAMETER_VALUE,
                format!(
                    "{value} is outside the valid range for parameter \"{name}\" ({low} .. {high})"
                ),
            )),
        }
    };
    match key.as_str() {
        "datafusion.execution.batch_size" => bounded(1, 65_536),
        "datafusion.execution.target_partitions" => bounded(1, (2 * cores).max(4) as u64),
        "datafusion.execution.collect_statistics"
        | "datafusion.execution.time_zone"
        | "datafusion.explain.logical_plan_only"
        | "datafusion.explain.physical_plan_only"
        | "datafusion.explain.show_statistics"
        | "datafusion.explain.show_schema"
        | "datafusion.explain.show_sizes"
        | "datafusion.explain.format" => Ok(()),
        _ => Err((
            super::errors::INSUFFICIENT_PRIVILEGE,
            format!("permission denied to set parameter \"{name}\""),
        )),
    }
}

/// `value` as it is stored for the PostgreSQL setting `name`, or the error PostgreSQL gives
/// for it. `SET` and `set_config()` both check here, so neither accepts what the other refuses
/// (`set_config('statement_timeout', 'soon', false)` used to switch the timeout off).
pub fn checked_value(name: &str, value: &str) -> Result<String, (&'static str, String)> {
    let invalid = || {
        (
            super::errors::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"{name}\": \"{value}\""),
        )
    };
    if value.eq_ignore_ascii_case("default") {
        return Ok(value.to_string());
    }
    match canonical_key(name).as_str() {
        "timezone" if value.eq_ignore_ascii_case("local") => Ok("default".to_string()),
        "timezone" => super::encode::canonical_time_zone(value).ok_or_else(invalid),
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            parse_duration_ms(value)
                .map(|_| value.to_string())
                .ok_or_else(invalid)
        }
        _ => Ok(value.to_string()),
    }
}

/// PostgreSQL time values: a bare number is milliseconds; units us, ms, s, min, h, d.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let t = text.trim().trim_matches('\'').trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    Some((n * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_set_config_check_values_alike() {
        assert!(checked_value("statement_timeout", "soon").is_err());
        assert_eq!(checked_value("statement_timeout", "3s").unwrap(), "3s");
        assert!(checked_value("TimeZone", "Mars/Olympus").is_err());
        assert_eq!(checked_value("timezone", "utc").unwrap(), "UTC");
    }

    #[test]
    fn reset_returns_to_the_server_default() {
        let mut s = Settings::new();
        s.set_default("statement_timeout", "30000".into());
        s.set("statement_timeout", "5s".into());
        s.set("application_name", "x".into());
        s.set("my.custom", "1".into());
        s.reset("statement_timeout");
        assert_eq!(s.get("statement_timeout"), Some("30000"));
        s.reset_all();
        assert_eq!(s.get("application_name"), Some(""));
        assert_eq!(s.get("my.custom"), None);
    }

    #[test]
    fn timeouts_parse_like_postgres() {
        assert_eq!(parse_duration_ms("5000"), Some(5000));
        assert_eq!(parse_duration_ms("'2s'"), Some(2000));
        assert_eq!(parse_duration_ms("1min"), Some(60_000));
        assert_eq!(parse_duration_ms("soon"), None);
        let mut s = Settings::new();
        assert_eq!(s.statement_timeout_within(0), None);
        s.set("STATEMENT_TIMEOUT", "150ms".into());
        assert_eq!(
            s.statement_timeout_within(0),
            Some(Duration::from_millis(150))
        );
        assert_eq!(
            s.set("timezone", "Europe/Berlin".into()).as_deref(),
            Some("TimeZone")
        );
        assert_eq!(s.get("TimeZone"), Some("Europe/Berlin"));
    }

    #[test]
    fn the_server_maximum_caps_every_session_timeout() {
        let mut s = Settings::new();
        assert_eq!(s.statement_timeout_within(0), None);
        assert_eq!(
            s.statement_timeout_within(500),
            Some(Duration::from_millis(500))
        );
        s.set("statement_timeout", "0".into());
        assert_eq!(
            s.statement_timeout_within(500),
            Some(Duration::from_millis(500))
        );
        s.set("statement_timeout", "10min".into());
        assert_eq!(
            s.statement_timeout_within(500),
            Some(Duration::from_millis(500))
        );
        s.set("statement_timeout", "100".into());
        assert_eq!(
            s.statement_timeout_within(500),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn only_listed_datafusion_options_within_bounds() {
        assert!(check_datafusion_option("datafusion.execution.batch_size", "4096").is_ok());
        let code = |n: &str, v: &str| check_datafusion_option(n, v).unwrap_err().0;
        assert_eq!(
            code("datafusion.execution.target_partitions", "4000"),
            "22023"
        );
        assert_eq!(code("datafusion.sql_parser.dialect", "mysql"), "42501");
        assert_eq!(code("datafusion.runtime.memory_limit", "100G"), "42501");
    }
}
