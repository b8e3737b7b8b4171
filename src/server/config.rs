//! The server part of `rebuy.toml` (in the data directory, or `--config FILE`) and the user list.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:5433"
//! auth = "scram"            # or "trust": loopback only, for demos
//! max_connections = 100
//! idle_timeout_secs = 3600
//! statement_timeout_ms = 0  # default for new sessions; clients may SET their own
//! query_memory_mb = 2048    # per query; beyond it operators spill or the query fails with 53200
//! tls_cert = "server.crt"   # PEM; with tls_key, clients may (or must, sslmode=require) use TLS
//! tls_key = "server.key"
//!
//! [[user]]
//! name = "analyst"
//! role = "analyst"          # read-only; "admin" may also write
//! password = "scram-sha-256$4096:<salt base64>$<salted password base64>"
//! ```
//!
//! Only the salted, iterated SCRAM hash of a password is stored (`rebuy user add` writes it);
//! sections this module does not know (exports, for instance) are left as they are.

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
    pub query_memory_mb: usize,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
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
            query_memory_mb: 2048,
            tls_cert: None,
            tls_key: None,
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
    /// Reads `path`; a missing file gives the defaults (no users).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ServerConfig {
                    path: Some(path.to_path_buf()),
                    ..Default::default()
                });
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        // Only the sections this module owns are read strictly; others belong to other modules.
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        table.retain(|k, _| k == "server" || k == "user");
        let shape: FileShape =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
        let config = ServerConfig {
            path: Some(path.to_path_buf()),
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

/// A stored SCRAM verifier: salt and salted password.
#[derive(Debug, Clone)]
pub struct StoredPassword {
    pub iterations: usize,
    pub salt: Vec<u8>,
    pub salted: Vec<u8>,
}

impl StoredPassword {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || "password is not a `scram-sha-256$ITER:SALT$HASH` string".to_string();
        let rest = text.strip_prefix("scram-sha-256$").ok_or_else(bad)?;
        let (iter_salt, hash) = rest.split_once('$').ok_or_else(bad)?;
        let (iter, salt) = iter_salt.split_once(':').ok_or_else(bad)?;
        let iterations: usize = iter.parse().map_err(|_| bad())?;
        if iterations != SCRAM_ITERATIONS {
            return Err(format!(
                "password hash uses {iterations} iterations; this server expects {SCRAM_ITERATIONS}"
            ));
        }
        Ok(StoredPassword {
            iterations,
            salt: STANDARD.decode(salt).map_err(|_| bad())?,
            salted: STANDARD.decode(hash).map_err(|_| bad())?,
        })
    }

    pub fn hash(password: &str) -> Self {
        let salt: [u8; 16] = rand::random();
        let salted =
            pgwire::api::auth::sasl::scram::gen_salted_password(password, &salt, SCRAM_ITERATIONS);
        StoredPassword {
            iterations: SCRAM_ITERATIONS,
            salt: salt.to_vec(),
            salted,
        }
    }

    pub fn render(&self) -> String {
        format!(
            "scram-sha-256${}:{}${}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.salted)
        )
    }
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
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Invalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
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
    let tmp = path.with_extension("toml.tmp");
    let write = |p: &Path, data: &str| {
        std::fs::write(p, data).map_err(|source| ConfigError::Write {
            path: p.to_path_buf(),
            source,
        })
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ConfigError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    write(&tmp, &doc.to_string())?;
    std::fs::rename(&tmp, path).map_err(|source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_password_round_trips_and_never_holds_the_password() {
        let p = StoredPassword::hash("s3cret pass");
        let text = p.render();
        assert!(!text.contains("s3cret"));
        let back = StoredPassword::parse(&text).unwrap();
        assert_eq!(back.salt, p.salt);
        assert_eq!(back.salted, p.salted);
        assert!(StoredPassword::parse("plain").is_err());
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
