//! What a role may do, decided on the logical plan that will run, not on the statement's
//! first word.
//!
//! `EXPLAIN ANALYZE INSERT …` is an EXPLAIN statement, yet running it inserts; a check of the
//! top-level statement let analysts write, delete and forge rows that way. Every plan is
//! therefore walked whole, subqueries and EXPLAIN/ANALYZE inputs included:
//!
//! - analysts: no DDL, DML, COPY or statement node anywhere (DataFusion's
//!   `SQLOptions::verify_plan`), and their tables cannot write anyway
//!   ([`super::catalog::ReadOnlyTable`]);
//! - admins: files and URLs only inside the warehouse's own folder and the configured export
//!   stores, never the configuration file or the TLS key (`CREATE EXTERNAL TABLE … LOCATION
//!   '<data>/rebuy.toml'` handed out the password entries).

use std::path::{Component, Path, PathBuf};

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use pgwire::error::PgWireResult;

use super::config::{Role, ServerConfig};
use super::errors::{self, pg_error};

/// The places an admin's plan may read or write as files or URLs.
pub struct FileRules<'a> {
    pub config: &'a ServerConfig,
    /// The warehouse folder, when it is on this machine.
    pub data_dir: Option<PathBuf>,
}

/// Refuses `plan` when `role` may not run it.
pub fn check_plan(plan: &LogicalPlan, role: Role, rules: &FileRules<'_>) -> PgWireResult<()> {
    match role {
        Role::Analyst => SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(plan)
            .map_err(|e| {
                let what = e
                    .find_root()
                    .to_string()
                    .split(": ")
                    .last()
                    .unwrap_or("this statement")
                    .trim()
                    .to_string();
                pg_error(
                    errors::READ_ONLY_TRANSACTION,
                    format!("cannot execute {what} in a read-only transaction (role analyst)"),
                )
            }),
        Role::Admin => {
            let mut refused = None;
            let _ = plan.apply_with_subqueries(|node| {
                let targets: Vec<String> = match node {
                    LogicalPlan::Copy(copy) => vec![copy.output_url.clone()],
                    LogicalPlan::Ddl(DdlStatement::CreateExternalTable(t)) => t.locations.clone(),
                    _ => vec![],
                };
                for target in targets {
                    if let Err(e) = rules.check_location(&target) {
                        refused = Some(e);
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            });
            match refused {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }
}

impl FileRules<'_> {
    /// A file path or URL an admin's COPY or external table names.
    pub fn check_location(&self, target: &str) -> PgWireResult<()> {
        let target = target.trim();
        let denied = |why: String| {
            Err(pg_error(
                errors::INSUFFICIENT_PRIVILEGE,
                format!("permission denied for '{target}': {why}"),
            ))
        };
        let is_url = target.contains("://");
        if is_url && !target.starts_with("file://") {
            if self.config.is_export_store(target) {
                return Ok(());
            }
            return denied(
                "only the object stores of configured export destinations ([[export]] in \
                 rebuy.toml) may be read or written"
                    .into(),
            );
        }
        let local = if is_url {
            match url::Url::parse(target)
                .ok()
                .and_then(|u| u.to_file_path().ok())
            {
                Some(p) => p,
                None => return denied("not a local file URL".into()),
            }
        } else {
            PathBuf::from(target)
        };
        // A glob ('<data>/rebuy.tom?', '<data>/*') lists whatever its folder part holds:
        // judged by that folder, as a directory would be.
        let text = local.to_string_lossy().to_string();
        let local = match text.find(['*', '?', '[', '{']) {
            Some(i) => PathBuf::from(&text[..text[..i].rfind('/').map_or(0, |s| s + 1)]),
            None => local,
        };
        let path = resolve(&local);
        for secret in self.secrets() {
            if path == secret || secret.starts_with(&path) {
                return denied("the server's configuration and keys are not data".into());
            }
        }
        let inside_export = self.config.exports.iter().any(|job| {
            job.destination.scheme() == "file"
                && job
                    .destination
                    .to_file_path()
                    .is_ok_and(|d| path.starts_with(resolve(&d)))
        });
        let inside_data = self
            .data_dir
            .as_ref()
            .is_some_and(|d| path.starts_with(resolve(d)));
        if inside_data || inside_export {
            return Ok(());
        }
        denied(
            "admins may use local files only inside the data directory and the file:// export \
             destinations"
                .into(),
        )
    }

    fn secrets(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        if let Some(p) = &self.config.path {
            out.push(resolve(p));
        }
        if let Some(d) = &self.data_dir {
            out.push(resolve(&d.join("rebuy.toml")));
        }
        for p in [&self.config.server.tls_key, &self.config.server.tls_cert]
            .into_iter()
            .flatten()
        {
            out.push(resolve(p));
        }
        out
    }
}

/// `path` made absolute without `.` and `..`, with symbolic links of its existing part
/// resolved (so that a link inside the data directory cannot point out of it).
fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut lexical = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other.as_os_str()),
        }
    }
    // Canonicalise the longest prefix that exists, then append the rest.
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(|f| f.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return lexical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_files_stay_in_the_warehouse_and_away_from_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("orders")).unwrap();
        let config = ServerConfig {
            path: Some(data.join("rebuy.toml")),
            ..Default::default()
        };
        let rules = FileRules {
            config: &config,
            data_dir: Some(data.clone()),
        };
        let ok = |p: &Path| rules.check_location(p.to_str().unwrap()).is_ok();
        assert!(ok(&data.join("scratch/out.parquet")));
        assert!(!ok(&data.join("rebuy.toml")));
        assert!(
            !ok(&data),
            "a listing of the data folder would read rebuy.toml"
        );
        assert!(!ok(&data.join("orders/../rebuy.toml")));
        assert!(!ok(&data.join("../elsewhere.csv")));
        for glob in [
            "rebuy.tom?",
            "*.toml",
            "*",
            "rebuy.[t]oml",
            "**/*.toml",
            "{rebuy,x}.toml",
        ] {
            assert!(!ok(&data.join(glob)), "{glob}");
        }
        assert!(ok(&data.join("orders/*.parquet")));
        assert!(!ok(Path::new("/etc/passwd")));
        assert!(rules.check_location("s3://anywhere/x.parquet").is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", data.join("link")).unwrap();
            assert!(!ok(&data.join("link/passwd")));
        }
    }
}
