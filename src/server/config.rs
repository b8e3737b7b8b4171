//! The server part of `rebuy.toml` (in the data directory, or `--config FILE`) and the user list.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:5433"
//! auth = "scram"            # or "trust": loopback only, for demos
//! max_connections = 100
//! idle_timeout_secs = 3600
//! statement_timeout_ms = 0  # default for new sessions; clients may SET their own
//! max_statement_timeout_ms = 0  # a ceiling no session can lift (0: none)
//! query_memory_mb = 2048    # per query; beyond it operators spill or the query fails with 53200
//! memory_mb = 0             # all queries together (0: 60% of the machine's memory)
//! auth_timeout_secs = 10    # a connection must have logged in by then
//! max_unauthenticated = 16  # connections still logging in, at most
//! tls_cert = "server.crt"   # PEM; with tls_key, clients may (or must, sslmode=require) use TLS
//! tls_key = "server.key"
//! require_tls = true        # refuse logins without TLS (default: on off loopback)
//!
//! [[user]]
//! name = "analyst"
//! role = "analyst"          # read-only; "admin" may also write
//! password = "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"
//! ```
//!
//! A password is stored as PostgreSQL stores it: the SCRAM verifier (salt, iterations,
//! StoredKey, ServerKey), from which no client proof can be made, so a leaked file hands out no
//! login. Entries in rebuy's earlier format (the SaltedPassword itself, which did log in) are
//! rewritten as verifiers the first time the server starts. `rebuy user add` writes the file
//! readable by its owner only. Sections this module does not know (exports, for instance)
//! are left as they are.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// SCRAM iteration count written by `rebuy user add` (PostgreSQL's default).
pub const SCRAM_ITERATIONS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl From<crate::config::ConfigFileError> for ConfigError {
    fn from(e: crate::config::ConfigFileError) -> Self {
        match e {
            crate::config::ConfigFileError::Read { path, source } => {
                ConfigError::Read { path, source }
            }
            crate::config::ConfigFileError::Invalid { path, message } => {
                ConfigError::Invalid { path, message }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Scram,
    Trust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only: queries, SET/SHOW, COPY TO STDOUT.
    Analyst,
    /// May also run DDL, DML and COPY to files or object stores.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub name: String,
    pub role: Role,
    /// `scram-sha-256$ITER:SALT$SALTED_PASSWORD`, both base64.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: String,
    pub auth: AuthMode,
    pub max_connections: usize,
    pub idle_timeout_secs: u64,
    pub statement_timeout_ms: u64,
    /// A maximum no session can exceed: 0 or more set by a session mean this (0: none).
    pub max_statement_timeout_ms: u64,
    pub query_memory_mb: usize,
    /// The pool all queries share; 0 means 60% of the machine's memory.
    pub memory_mb: usize,
    /// Seconds a connection may take to log in.
    pub auth_timeout_secs: u64,
    /// Connections that have not logged in yet, at most (the rest are refused at once), so
    /// that sockets that never authenticate cannot hold the slots of `max_connections`.
    pub max_unauthenticated: usize,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse logins that do not use TLS; unset means on for a non-loopback address.
    pub require_tls: Option<bool>,
    /// How often an object-store warehouse is checked for new commits (local ones are
    /// checked before every query).
    pub refresh_secs: u64,
    /// How long running queries may finish after SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:5433".to_string(),
            auth: AuthMode::Scram,
            max_connections: 100,
            idle_timeout_secs: 3600,
            statement_timeout_ms: 0,
            max_statement_timeout_ms: 0,
            query_memory_mb: 2048,
            memory_mb: 0,
            auth_timeout_secs: 10,
            max_unauthenticated: 16,
            tls_cert: None,
            tls_key: None,
            require_tls: None,
            refresh_secs: 5,
            shutdown_grace_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct FileShape {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    user: Vec<UserEntry>,
}

/// The parsed configuration, with where it came from.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub path: Option<PathBuf>,
    pub server: ServerSection,
    pub users: Vec<UserEntry>,
    /// The `[[export]]` jobs (read by [`crate::export::ExportConfig`]): their destinations
    /// are the only object stores admins may `COPY … TO`.
    pub exports: Vec<crate::export::ExportJob>,
}

impl ServerConfig {
    /// Reads `path` (see [`crate::config::ConfigFile`]); a missing file gives the defaults
    /// (no users).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_file(&crate::config::ConfigFile::load(path)?)
    }

    /// The `[server]` and `[[user]]` sections of a read configuration file, checked; the other
    /// sections belong to other modules.
    pub fn from_file(file: &crate::config::ConfigFile) -> Result<Self, ConfigError> {
        let path = file.path.clone();
        let shape: FileShape = toml::Value::Table(file.sections(&["server", "user"]))
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let config = ServerConfig {
            path: Some(path),
            server: shape.server,
            users: shape.user,
            exports: vec![],
        };
        config.validate()?;
        Ok(config)
    }

    /// The object stores of the configured export destinations, keyed by scheme and bucket.
    pub fn export_stores(&self) -> Vec<(url::Url, std::sync::Arc<dyn object_store::ObjectStore>)> {
        self.exports
            .iter()
            .filter_map(|job| {
                let dest = crate::export::store::Destination::open(job).ok()?;
                Some((dest.store_url()?, dest.store))
            })
            .filter(|(url, _)| url.scheme() != "file")
            .collect()
    }

    /// Whether `target` (a URL) is inside a configured export destination's store.
    pub fn is_export_store(&self, target: &str) -> bool {
        let Ok(target) = url::Url::parse(target) else {
            return false;
        };
        self.exports.iter().any(|job| {
            job.destination.scheme() == target.scheme()
                && job.destination.host_str() == target.host_str()
        })
    }

    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone().unwrap_or_default(),
            message,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        for u in &self.users {
            if let Some(p) = &u.password {
                StoredPassword::parse(p)
                    .map_err(|m| self.invalid(format!("user {}: {m}", u.name)))?;
            }
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(self.invalid("[server] needs both tls_cert and tls_key, or neither".into()));
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|e| {
            self.invalid(format!(
                "[server] listen = {:?} is not an address:port ({e})",
                self.server.listen
            ))
        })
    }

    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        self.users.iter().find(|u| u.name == name)
    }
}

/// A stored SCRAM-SHA-256 verifier, as PostgreSQL keeps it in `pg_authid.rolpassword`:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64). The server checks a
/// client's proof against StoredKey and proves itself with ServerKey; neither lets anyone
/// compute a proof (RFC 5802 section 3).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPassword {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// What a `password = …` entry holds.
#[derive(Debug, Clone, PartialEq)]
pub enum PasswordEntry {
    Verifier(StoredPassword),
    /// rebuy's earlier `scram-sha-256$ITER:SALT$SALTED_PASSWORD`: the SaltedPassword itself,
    /// which is enough to log in. Read only to be rewritten as a verifier.
    Legacy(StoredPassword),
}

impl PasswordEntry {
    pub fn verifier(&self) -> &StoredPassword {
        match self {
            PasswordEntry::Verifier(v) | PasswordEntry::Legacy(v) => v,
        }
    }
}

impl StoredPassword {
    pub fn parse(text: &str) -> Result<PasswordEntry, String> {
        let bad = || {
            "password is not a SCRAM verifier (`SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY`, as \
             `rebuy user add` writes it)"
                .to_string()
        };
        let decode = |b: &str| STANDARD.decode(b).map_err(|_| bad());
        if let Some(rest) = text.strip_prefix("SCRAM-SHA-256$") {
            let (iter_salt, keys) = rest.split_once('$').ok_or_else(bad)?;
            let (iter, salt) = iter_salt.split_once(':').ok_or_else(bad)?;
            let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
            let iterations: u32 = iter.parse().map_err(|_| bad())?;
            let v = StoredPassword {
                iterations,
                salt: decode(salt)?,
                stored_key: decode(stored)?,
                server_key: decode(server)?,
            };
            if iterations == 0
                || v.salt.is_empty()
                || v.stored_key.len() != 32
                || v.server_key.len() != 32
            {
                return Err(bad());
            }
            return Ok(PasswordEntry::Verifier(v));
        }
        if let Some(rest) = text.strip_prefix("scram-sha-256$") {
            let (iter_salt, salted) = rest.split_once('$').ok_or_else(bad)?;
            let (iter, salt) = iter_salt.split_once(':').ok_or_else(bad)?;
            let iterations: u32 = iter.parse().map_err(|_| bad())?;
            let salted = decode(salted)?;
            if iterations == 0 || salted.len() != 32 {
                return Err(bad());
            }
            return Ok(PasswordEntry::Legacy(Self::from_salted(
                iterations,
                decode(salt)?,
                &salted,
            )));
        }
        Err(bad())
    }

    /// A verifier for `password` with a fresh random salt.
    pub fn hash(password: &str) -> Self {
        let salt: [u8; 16] = rand::random();
        let salted =
            pgwire::api::auth::sasl::scram::gen_salted_password(password, &salt, SCRAM_ITERATIONS);
        Self::from_salted(SCRAM_ITERATIONS as u32, salt.to_vec(), &salted)
    }

    /// StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword,
    /// "Server Key").
    pub fn from_salted(iterations: u32, salt: Vec<u8>, salted: &[u8]) -> Self {
        let client_key = super::scram::hmac(salted, b"Client Key");
        StoredPassword {
            iterations,
            salt,
            stored_key: super::scram::sha256(&client_key),
            server_key: super::scram::hmac(salted, b"Server Key"),
        }
    }

    pub fn render(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
        )
    }
}

/// Rewrites every earlier-format password entry of the file at `path` as a verifier (the
/// rest of the file kept as it is) and returns how many it rewrote. The file is written
/// readable by its owner only.
pub fn migrate_passwords(path: &Path) -> Result<usize, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut doc = editable(path, &text)?;
    let mut rewritten = 0;
    if let Some(users) = doc.get_mut("user").and_then(|u| u.as_array_of_tables_mut()) {
        for user in users.iter_mut() {
            let Some(text) = user.get("password").and_then(|p| p.as_str()) else {
                continue;
            };
            if let Ok(PasswordEntry::Legacy(v)) = StoredPassword::parse(text) {
                user["password"] = toml_edit::value(v.render());
                rewritten += 1;
            }
        }
    }
    if rewritten > 0 {
        write_private(path, &doc.to_string())?;
    }
    Ok(rewritten)
}

/// The file's text as a document that keeps comments and layout when written back.
fn editable(path: &Path, text: &str) -> Result<toml_edit::DocumentMut, ConfigError> {
    text.parse()
        .map_err(|e: toml_edit::TomlError| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Replaces the file at `path` with `data`, created readable and writable by its owner only
/// (it holds password verifiers), in one rename.
fn write_private(path: &Path, data: &str) -> Result<(), ConfigError> {
    use std::io::Write;
    let write_err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ConfigError::Write { path: p, source }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    }
    let tmp = path.with_extension("toml.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(write_err(&tmp))?;
    file.write_all(data.as_bytes()).map_err(write_err(&tmp))?;
    file.sync_all().map_err(write_err(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(write_err(path))?;
    Ok(())
}

/// Files that others than their owner may read: the configuration (password verifiers) and
/// the TLS key. Reported at start-up.
pub fn readable_by_others(config: &ServerConfig) -> Vec<PathBuf> {
    let mut out = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [config.path.as_ref(), config.server.tls_key.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Ok(meta) = std::fs::metadata(p)
                && meta.permissions().mode() & 0o077 != 0
            {
                out.push(p.clone());
            }
        }
    }
    out
}

/// Adds or replaces user `name` in the config file at `path`, keeping everything else in the
/// file (comments included). The file is replaced atomically.
pub fn add_user(path: &Path, name: &str, role: Role, password: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.chars().any(|c| c.is_control()) {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            message: format!("{name:?} is not a usable user name"),
        });
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut doc = editable(path, &text)?;
    let mut entry = toml_edit::Table::new();
    entry["name"] = toml_edit::value(name);
    entry["role"] = toml_edit::value(role.name());
    entry["password"] = toml_edit::value(StoredPassword::hash(password).render());
    let users = doc.entry("user").or_insert(toml_edit::Item::ArrayOfTables(
        toml_edit::ArrayOfTables::new(),
    ));
    let Some(users) = users.as_array_of_tables_mut() else {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            message: "`user` must be an array of tables ([[user]])".into(),
        });
    };
    let position = users
        .iter()
        .position(|t| t.get("name").and_then(|v| v.as_str()) == Some(name));
    match position.and_then(|i| users.get_mut(i)) {
        Some(existing) => *existing = entry,
        None => users.push(entry),
    }
    write_private(path, &doc.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_password_round_trips_and_never_holds_the_password() {
        let p = StoredPassword::hash("s3cret pass");
        let text = p.render();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"));
        assert!(!text.contains("s3cret"));
        assert_eq!(
            StoredPassword::parse(&text).unwrap(),
            PasswordEntry::Verifier(p)
        );
        assert!(StoredPassword::parse("plain").is_err());
    }

    /// RFC 7677 section 3's example: user "user", password "pencil", salt
    /// W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations; its ServerSignature needs these keys.
    /// StoredKey and ServerKey as PostgreSQL 16 stores them for that password and salt.
    #[test]
    fn verifier_keys_match_postgres() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = pgwire::api::auth::sasl::scram::gen_salted_password("pencil", &salt, 4096);
        let v = StoredPassword::from_salted(4096, salt, &salted);
        assert_eq!(
            v.render(),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn earlier_entries_are_rewritten_as_verifiers_readable_by_the_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rebuy.toml");
        let salt = [7u8; 16];
        let salted = pgwire::api::auth::sasl::scram::gen_salted_password("pw", &salt, 4096);
        let legacy = format!(
            "scram-sha-256$4096:{}${}",
            STANDARD.encode(salt),
            STANDARD.encode(&salted)
        );
        std::fs::write(
            &path,
            format!(
                "# keep me\n[[user]]\nname = \"a\"\nrole = \"admin\"\npassword = \"{legacy}\"\n"
            ),
        )
        .unwrap();
        assert!(matches!(
            StoredPassword::parse(&legacy),
            Ok(PasswordEntry::Legacy(_))
        ));
        assert_eq!(migrate_passwords(&path).unwrap(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# keep me") && !text.contains(&legacy),
            "{text}"
        );
        let config = ServerConfig::load(&path).unwrap();
        let entry = StoredPassword::parse(config.users[0].password.as_deref().unwrap()).unwrap();
        assert_eq!(
            entry,
            PasswordEntry::Verifier(StoredPassword::from_salted(4096, salt.to_vec(), &salted))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(migrate_passwords(&path).unwrap(), 0);
    }

    #[test]
    fn add_user_keeps_other_sections_and_replaces_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rebuy.toml");
        std::fs::write(&path, "# exports below\n[[export]]\nname = \"x\"\n").unwrap();
        add_user(&path, "ana", Role::Analyst, "one").unwrap();
        add_user(&path, "ana", Role::Admin, "two").unwrap();
        add_user(&path, "bob", Role::Analyst, "three").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# exports below") && text.contains("[[export]]"));
        let config = ServerConfig::load(&path).unwrap();
        assert_eq!(config.users.len(), 2);
        assert_eq!(config.user("ana").unwrap().role, Role::Admin);
    }
}
