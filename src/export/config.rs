//! The `[[export]]` tables of `rebuy.toml`: which segment goes where, when, and for what.
//!
//! ```toml
//! [[export]]
//! name = "winback_tonight"
//! view = "winback_candidates"          # or: sql = "SELECT ... FROM customer_rfm WHERE ..."
//! destination = "s3://crm-drop/rebuy"  # s3://, gs://, az://, file:///
//! format = "parquet"                   # or "csv"
//! schedule = "0 2 * * *"               # cron: minute hour day-of-month month day-of-week
//! timezone = "Asia/Shanghai"           # IANA name; default UTC
//! purpose = "marketing"                # marketing: only customers with marketing consent
//! allow_personal = ["email_sha256"]    # personal columns the job may export (default none)
//! retries = 3                          # extra attempts after a transient failure
//!
//! [export.options]                     # object_store configuration keys, never credentials
//! endpoint = "http://127.0.0.1:8333"
//! region = "us-east-1"
//! allow_http = "true"
//! ```
//!
//! Credentials come only from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`) or the
//! providers' standard chains; a credential-looking key in `[export.options]` is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;
use croner::Cron;
use serde::Deserialize;
use url::Url;

use super::ExportError;

/// Columns that identify a person. They are left out of every export unless the job names
/// them in `allow_personal` (or sets `allow_personal = true`).
pub const PERSONAL_COLUMNS: &[&str] = &[
    "email_sha256",
    "email",
    "phone",
    "phone_sha256",
    "first_name",
    "last_name",
    "full_name",
    "address",
    "street",
    "postal_code",
    "ip_address",
];

/// Option keys that would put a secret into the file.
const SECRET_WORDS: &[&str] = &[
    "secret",
    "access_key",
    "account_key",
    "token",
    "password",
    "sas",
    "service_account",
    "client_secret",
    "credentials",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    View(String),
    Sql(String),
}

impl Source {
    /// The query the job runs.
    pub fn sql(&self) -> String {
        match self {
            Source::View(v) => format!("SELECT * FROM {v}"),
            Source::Sql(s) => s.trim().trim_end_matches(';').to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AllowPersonal {
    None,
    All,
    Columns(Vec<String>),
}

impl AllowPersonal {
    pub fn allows(&self, column: &str) -> bool {
        match self {
            AllowPersonal::None => false,
            AllowPersonal::All => true,
            AllowPersonal::Columns(c) => c.iter().any(|a| a.eq_ignore_ascii_case(column)),
        }
    }
}

/// A cron schedule read in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub text: String,
    pub cron: Cron,
    pub timezone: Tz,
}

/// One export job, checked.
#[derive(Debug, Clone)]
pub struct ExportJob {
    pub name: String,
    pub source: Source,
    pub destination: Url,
    pub format: Format,
    pub schedule: Option<Schedule>,
    pub timezone: Tz,
    pub purpose: String,
    pub allow_personal: AllowPersonal,
    pub options: BTreeMap<String, String>,
    pub retries: u32,
    pub retry_backoff_ms: u64,
    pub max_rows_per_file: u64,
}

impl ExportJob {
    /// Outreach jobs export only customers who consented to marketing.
    pub fn needs_consent(&self) -> bool {
        self.purpose.eq_ignore_ascii_case("marketing")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Option<String>,
    view: Option<String>,
    sql: Option<String>,
    destination: Option<String>,
    format: Option<String>,
    schedule: Option<String>,
    timezone: Option<String>,
    purpose: Option<String>,
    allow_personal: Option<toml::Value>,
    #[serde(default)]
    options: BTreeMap<String, toml::Value>,
    retries: Option<u32>,
    retry_backoff_ms: Option<u64>,
    max_rows_per_file: Option<u64>,
}

/// The export jobs of one configuration file.
#[derive(Debug, Clone, Default)]
pub struct ExportConfig {
    pub path: Option<PathBuf>,
    pub jobs: Vec<ExportJob>,
}

impl ExportConfig {
    /// Reads the `[[export]]` tables of `path` (see [`crate::config::ConfigFile`]); a missing
    /// file has no jobs.
    pub fn load(path: &Path) -> Result<Self, ExportError> {
        let file = crate::config::ConfigFile::load(path).map_err(|e| ExportError::Config {
            path: path.to_path_buf(),
            job: None,
            message: match e {
                crate::config::ConfigFileError::Read { source, .. } => {
                    format!("cannot read: {source}")
                }
                crate::config::ConfigFileError::Invalid { message, .. } => message,
            },
        })?;
        Self::from_file(&file)
    }

    /// The `[[export]]` jobs of a read configuration file, checked.
    pub fn from_file(file: &crate::config::ConfigFile) -> Result<Self, ExportError> {
        let mut config =
            Self::from_table(file.sections(&["export"])).map_err(|(job, message)| {
                ExportError::Config {
                    path: file.path.clone(),
                    job,
                    message,
                }
            })?;
        config.path = Some(file.path.clone());
        Ok(config)
    }

    /// Parses the text of a configuration file; the error names the job when it is one.
    pub fn parse(text: &str) -> Result<Self, (Option<String>, String)> {
        let table: toml::Table = toml::from_str(text).map_err(|e| (None, e.to_string()))?;
        Self::from_table(table)
    }

    fn from_table(mut table: toml::Table) -> Result<Self, (Option<String>, String)> {
        let Some(exports) = table.remove("export") else {
            return Ok(ExportConfig::default());
        };
        let toml::Value::Array(items) = exports else {
            return Err((None, "`export` must be a list of [[export]] tables".into()));
        };
        let mut jobs: Vec<ExportJob> = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let label = item
                .get("name")
                .and_then(|n| n.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{}", i + 1));
            let raw: RawJob = item
                .try_into()
                .map_err(|e: toml::de::Error| (Some(label.clone()), e.message().to_string()))?;
            let job = check_job(raw).map_err(|m| (Some(label.clone()), m))?;
            if jobs.iter().any(|j| j.name == job.name) {
                return Err((Some(label), "two export jobs have this name".into()));
            }
            jobs.push(job);
        }
        Ok(ExportConfig { path: None, jobs })
    }

    pub fn job(&self, name: &str) -> Option<&ExportJob> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

fn check_job(raw: RawJob) -> Result<ExportJob, String> {
    let name = raw.name.ok_or("missing `name`")?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err("`name` must be letters, digits, '_' or '-'".into());
    }
    let source = match (raw.view, raw.sql) {
        (Some(v), None) => {
            let v = v.trim().to_string();
            if v.is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                return Err(format!("`view` '{v}' is not a view name"));
            }
            Source::View(v)
        }
        (None, Some(s)) if !s.trim().is_empty() => Source::Sql(s),
        (Some(_), Some(_)) => return Err("give either `view` or `sql`, not both".into()),
        _ => return Err("missing `view` or `sql`".into()),
    };
    let destination_text = raw.destination.ok_or("missing `destination`")?;
    let destination = parse_destination(&destination_text)?;
    let format = match raw
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("parquet") => Format::Parquet,
        Some("csv") => Format::Csv,
        Some(other) => return Err(format!("`format` '{other}' is not parquet or csv")),
    };
    let timezone = match &raw.timezone {
        None => Tz::UTC,
        Some(t) => Tz::from_str(t)
            .map_err(|_| format!("`timezone` '{t}' is not an IANA time zone name"))?,
    };
    let schedule = match raw.schedule {
        None => None,
        Some(text) => {
            let cron = croner::parser::CronParser::new()
                .parse(&text)
                .map_err(|e| format!("`schedule` '{text}' is not a cron expression: {e}"))?;
            Some(Schedule {
                text,
                cron,
                timezone,
            })
        }
    };
    let purpose = raw
        .purpose
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .ok_or(
            "missing `purpose` (\"marketing\" for outreach, which exports only consenting \
             customers; or another word such as \"analytics\")",
        )?;
    let allow_personal = match raw.allow_personal {
        None | Some(toml::Value::Boolean(false)) => AllowPersonal::None,
        Some(toml::Value::Boolean(true)) => AllowPersonal::All,
        Some(toml::Value::Array(items)) => AllowPersonal::Columns(
            items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    other => Err(format!("`allow_personal` lists column names, not {other}")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => {
            return Err(format!(
                "`allow_personal` is true, false or a list of column names, not {other}"
            ));
        }
    };
    let mut options = BTreeMap::new();
    for (key, value) in raw.options {
        let lower = key.to_ascii_lowercase();
        if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
            return Err(format!(
                "option `{key}` looks like a credential: credentials come from the environment \
                 (AWS_*, GOOGLE_*, AZURE_*) or the provider's standard chain, never from rebuy.toml"
            ));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Integer(i) => i.to_string(),
            other => return Err(format!("option `{key}`: {other} is not a plain value")),
        };
        options.insert(key, text);
    }
    let job = ExportJob {
        name,
        source,
        destination,
        format,
        schedule,
        timezone,
        purpose,
        allow_personal,
        options,
        retries: raw.retries.unwrap_or(3),
        retry_backoff_ms: raw.retry_backoff_ms.unwrap_or(1000),
        max_rows_per_file: raw.max_rows_per_file.unwrap_or(10_000_000).max(1),
    };
    // Unknown option keys and unusable URLs show up here, before anything runs.
    super::store::Destination::open(&job).map_err(|e| e.to_string())?;
    Ok(job)
}

/// An export destination URL: `s3://bucket/prefix`, `gs://`, `az://`, `abfs(s)://`, `file:///`.
pub fn parse_destination(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim())
        .map_err(|e| format!("`destination` '{text}' is not a URL ({e})"))?;
    match url.scheme() {
        "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!(
                    "`destination` '{text}' names no bucket or container"
                ));
            }
        }
        "file" => {
            if url.to_file_path().is_err() {
                return Err(format!("`destination` '{text}' is not a local path"));
            }
        }
        other => {
            return Err(format!(
                "`destination` '{text}': scheme '{other}' is not one of s3, gs, az, abfs, file"
            ));
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match ExportConfig::parse(text) {
            Ok(_) => panic!("accepted: {text}"),
            Err((job, m)) => format!("{}: {m}", job.unwrap_or_default()),
        }
    }

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:5433"

[[export]]
name = "winback"
view = "winback_candidates"
destination = "s3://bucket/segments"
schedule = "0 2 * * *"
timezone = "Asia/Shanghai"
purpose = "marketing"
allow_personal = ["email_sha256"]

[export.options]
endpoint = "http://127.0.0.1:8333"
allow_http = true
"#;

    #[test]
    fn reads_a_job() {
        let c = ExportConfig::parse(GOOD).unwrap();
        let j = &c.jobs[0];
        assert_eq!(j.name, "winback");
        assert_eq!(j.format, Format::Parquet);
        assert!(j.needs_consent());
        assert!(j.allow_personal.allows("email_sha256"));
        assert_eq!(j.options["allow_http"], "true");
        assert_eq!(
            j.schedule.as_ref().unwrap().timezone,
            chrono_tz::Asia::Shanghai
        );
    }

    #[test]
    fn errors_name_the_job_and_the_key() {
        let bad_cron = GOOD.replace("0 2 * * *", "0 25 * * *");
        assert!(err(&bad_cron).starts_with("winback: `schedule` '0 25 * * *'"));
        let bad_url = GOOD.replace("s3://bucket/segments", "ftp://x/y");
        assert!(err(&bad_url).contains("winback: `destination` 'ftp://x/y'"));
        let bad_tz = GOOD.replace("Asia/Shanghai", "Mars/Olympus");
        assert!(err(&bad_tz).contains("`timezone` 'Mars/Olympus'"));
        let secret = GOOD.replace("allow_http = true", "secret_access_key = \"x\"");
        assert!(err(&secret).contains("looks like a credential"));
        let unknown = GOOD.replace("allow_http = true", "no_such_option = \"x\"");
        assert!(
            err(&unknown).contains("no_such_option"),
            "{}",
            err(&unknown)
        );
        let no_purpose = GOOD.replace("purpose = \"marketing\"", "");
        assert!(err(&no_purpose).contains("missing `purpose`"));
        let both = GOOD.replace("view = ", "sql = \"SELECT 1\"\nview = ");
        assert!(err(&both).contains("either `view` or `sql`"));
        let typo = GOOD.replace("purpose =", "purpos =");
        assert!(err(&typo).contains("purpos"));
        let twice = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[export]]").unwrap()..]);
        assert!(err(&twice).contains("two export jobs"));
    }
}
