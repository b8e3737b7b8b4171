//! `rebuy.toml`, read once per command: the file's text is parsed here, the environment's
//! overrides applied, and the result handed to the modules that own its sections, which check
//! them into typed values and name the section and key in their errors:
//! [`crate::server::config::ServerConfig::from_file`] (`[server]`, `[[user]]`) and
//! [`crate::export::ExportConfig::from_file`] (`[[export]]`).
//!
//! Overrides: `REBUY_SERVER_<KEY>=<value>` sets `[server] <key>` (the key in lower case), the
//! value read as a TOML value when it is one (`REBUY_SERVER_MAX_CONNECTIONS=20`,
//! `REBUY_SERVER_REQUIRE_TLS=false`) and as text otherwise (`REBUY_SERVER_AUTH=trust`,
//! `REBUY_SERVER_LISTEN=0.0.0.0:5433`). Containers and CI set them without editing the file;
//! secrets (users' verifiers) stay in the file only.

use std::path::{Path, PathBuf};

/// The prefix of the environment variables that override `[server]` keys.
pub const SERVER_ENV_PREFIX: &str = "REBUY_SERVER_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A configuration file's sections, with the environment's overrides applied.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// Whether the file exists (a missing one means every default and no users or jobs).
    pub exists: bool,
    table: toml::Table,
}

impl ConfigFile {
    /// Reads `path` with the process environment's overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Reads `path` with the overrides among `vars`.
    pub fn load_with_env(
        path: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigFileError> {
        let (text, exists) = match std::fs::read_to_string(path) {
            Ok(t) => (t, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
            Err(source) => {
                return Err(ConfigFileError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut file = Self::parse(path, &text)?;
        file.exists = exists;
        file.apply_env(vars)?;
        Ok(file)
    }

    /// The file's text, before the overrides.
    fn parse(path: &Path, text: &str) -> Result<Self, ConfigFileError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigFileError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            exists: true,
            table,
        })
    }

    fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigFileError> {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix(SERVER_ENV_PREFIX) else {
                continue;
            };
            if key.is_empty() {
                continue;
            }
            let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let server = self
                .table
                .entry("server")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(server) = server else {
                return Err(ConfigFileError::Invalid {
                    path: self.path.clone(),
                    message: format!("`server` must be a [server] table to take {name}"),
                });
            };
            server.insert(key.to_ascii_lowercase(), value);
        }
        Ok(())
    }

    /// The named top-level sections, as a table of their own.
    pub fn sections(&self, names: &[&str]) -> toml::Table {
        self.table
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_keys_are_overridden_by_the_environment_with_their_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rebuy.toml");
        std::fs::write(
            &path,
            "[server]\nmax_connections = 100\n[[export]]\nname = \"x\"\n",
        )
        .unwrap();
        let file = ConfigFile::load_with_env(
            &path,
            [
                ("REBUY_SERVER_MAX_CONNECTIONS".to_string(), "20".to_string()),
                ("REBUY_SERVER_AUTH".to_string(), "trust".to_string()),
                ("REBUY_SERVER_REQUIRE_TLS".to_string(), "false".to_string()),
                ("HOME".to_string(), "/root".to_string()),
            ],
        )
        .unwrap();
        let server = file.sections(&["server"]);
        let server = server["server"].as_table().unwrap();
        assert_eq!(server["max_connections"].as_integer(), Some(20));
        assert_eq!(server["auth"].as_str(), Some("trust"));
        assert_eq!(server["require_tls"].as_bool(), Some(false));
        assert!(file.sections(&["export"]).contains_key("export"));
        assert!(!file.sections(&["server"]).contains_key("export"));
    }

    #[test]
    fn overrides_are_checked_as_the_file_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rebuy.toml");
        let env = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let file =
            ConfigFile::load_with_env(&path, env("REBUY_SERVER_MAX_CONNECTIONS", "7")).unwrap();
        let config = crate::server::config::ServerConfig::from_file(&file).unwrap();
        assert_eq!(config.server.max_connections, 7);
        for (key, value) in [
            ("REBUY_SERVER_NO_SUCH_KEY", "1"),
            ("REBUY_SERVER_MAX_CONNECTIONS", "many"),
            ("REBUY_SERVER_LISTEN", "nowhere"),
        ] {
            let file = ConfigFile::load_with_env(&path, env(key, value)).unwrap();
            let err = crate::server::config::ServerConfig::from_file(&file)
                .unwrap_err()
                .to_string();
            let named = key
                .trim_start_matches(SERVER_ENV_PREFIX)
                .to_ascii_lowercase();
            assert!(
                err.contains(&named) || err.contains(value),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn a_missing_file_is_empty_and_a_broken_one_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ConfigFile::load_with_env(&dir.path().join("none.toml"), []).unwrap();
        assert!(!missing.exists && missing.sections(&["server"]).is_empty());
        let broken = dir.path().join("broken.toml");
        std::fs::write(&broken, "[server\n").unwrap();
        let err = ConfigFile::load_with_env(&broken, [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("broken.toml"), "{err}");
    }
}
