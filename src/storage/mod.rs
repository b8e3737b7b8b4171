//! The warehouse on disk (or in an object store): one Delta Lake table per [`TableKind`] under
//! the data directory, `<data>/orders`, `<data>/customers`, `<data>/fx_rates`.
//!
//! Delta's transaction log is what makes every ingest atomic: data files are written first
//! under fresh names, and nothing is visible until the single commit file
//! `_delta_log/<version>.json` is created with put-if-absent. A reader opens one version and
//! sees exactly that snapshot for the whole query, whatever an ingest is doing meanwhile.
//! Files left by a killed writer are never referenced by the log, so they are never read.
//!
//! Besides the tables, the data directory holds `_rejects/` (one CSV per ingest that rejected
//! rows) and `_staging/` (scratch space of running ingests; safe to delete when none runs).

pub mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use deltalake::DeltaTable;
use deltalake::errors::DeltaTableError;
use deltalake::logstore::{
    LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, logstore_factories,
    object_store_factories,
};
use url::Url;

pub use schema::TableKind;

/// What can go wrong between rebuy and its stored tables.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("data directory '{location}' is not usable: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("table '{table}' at {url}: {source}")]
    Delta {
        table: &'static str,
        url: String,
        #[source]
        source: Box<DeltaTableError>,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A data directory: a local folder or an object-store URL (`s3://bucket/prefix`, `gs://…`,
/// `az://…`, `file:///…`), holding one Delta table per [`TableKind`].
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: Url,
    options: HashMap<String, String>,
}

impl Warehouse {
    /// Opens (and for a local path, creates) the data directory. Object-store credentials and
    /// endpoints come from the usual environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    pub fn open(location: &str) -> Result<Self, StorageError> {
        register_cloud_schemes();
        let invalid = |reason: String| StorageError::InvalidLocation {
            location: location.to_string(),
            reason,
        };
        let root = if location.contains("://") {
            let mut url = Url::parse(location).map_err(|e| invalid(e.to_string()))?;
            match url.scheme() {
                "file" | "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "memory" => {}
                other => return Err(invalid(format!("unsupported URL scheme '{other}'"))),
            }
            if url.scheme() == "file" {
                let path = url
                    .to_file_path()
                    .map_err(|_| invalid("not a local file URL".into()))?;
                create_dir(&path)?;
            }
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            url
        } else {
            let path = PathBuf::from(location);
            create_dir(&path)?;
            let abs = std::fs::canonicalize(&path).map_err(|source| StorageError::Io {
                path: path.clone(),
                source,
            })?;
            Url::from_directory_path(&abs).map_err(|_| invalid("not an absolute path".into()))?
        };
        Ok(Self {
            root,
            options: cloud_options_from_env(),
        })
    }

    /// The data directory as a URL, ending in `/`.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The local folder of the data directory, when it is on this machine.
    pub fn local_dir(&self) -> Option<PathBuf> {
        (self.root.scheme() == "file")
            .then(|| self.root.to_file_path().ok())
            .flatten()
    }

    /// Where a table lives.
    pub fn table_url(&self, table: TableKind) -> Url {
        // A relative join of a plain name onto a URL ending in '/' cannot fail.
        self.named_table_url(table.name())
    }

    /// A handle on the table at its latest committed version, created in memory only (not on
    /// storage) when the table does not exist yet: the first write creates it.
    pub async fn table(&self, table: TableKind) -> Result<DeltaTable, StorageError> {
        self.table_named(table.name()).await
    }

    /// Like [`Warehouse::table`], for rebuy's own bookkeeping tables (`export_runs`).
    pub async fn table_named(&self, name: &'static str) -> Result<DeltaTable, StorageError> {
        if let Some(dir) = self.local_dir() {
            // Local tables need their folder to exist before delta-rs will open them.
            create_dir(&dir.join(name))?;
        }
        let url = self.named_table_url(name);
        DeltaTable::try_from_url_with_storage_options(url.clone(), self.options.clone())
            .await
            .map_err(|e| StorageError::Delta {
                table: name,
                url: url.to_string(),
                source: Box::new(e),
            })
    }

    /// The table of that name if anything was ever committed to it (nothing is created).
    pub async fn existing_table_named(
        &self,
        name: &'static str,
    ) -> Result<Option<DeltaTable>, StorageError> {
        if let Some(dir) = self.local_dir()
            && !dir.join(name).join("_delta_log").is_dir()
        {
            return Ok(None);
        }
        let table = self.table_named(name).await?;
        Ok(table.version().is_some().then_some(table))
    }

    /// Where a table of that name lives.
    pub fn named_table_url(&self, name: &str) -> Url {
        self.root
            .join(&format!("{name}/"))
            .unwrap_or_else(|_| self.root.clone())
    }

    /// The latest committed version of a table, `None` when nothing was ever committed.
    pub async fn version(&self, table: TableKind) -> Result<Option<u64>, StorageError> {
        Ok(self.table(table).await?.version())
    }

    /// Scratch folder for an ingest: local even when the warehouse is remote.
    pub fn staging_dir(&self) -> PathBuf {
        match self.local_dir() {
            Some(dir) => dir.join("_staging"),
            None => std::env::temp_dir().join("rebuy-staging"),
        }
    }

    /// Folder for rejected-row reports: under the data directory when it is local,
    /// under the current directory otherwise (object stores are for tables).
    pub fn rejects_dir(&self) -> PathBuf {
        match self.local_dir() {
            Some(dir) => dir.join("_rejects"),
            None => PathBuf::from("rebuy_rejects"),
        }
    }

    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.options
    }
}

fn create_dir(path: &Path) -> Result<(), StorageError> {
    std::fs::create_dir_all(path).map_err(|source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Object-store settings from the environment, in the key spelling object_store accepts.
pub(crate) fn cloud_options_from_env() -> HashMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// deltalake-core only knows `file://` and `memory://` by itself; its cloud crates would add
/// AWS SDK builds that take longer than the rest of rebuy. Cloud stores here are plain
/// object_store clients: commits use put-if-absent, which S3 (conditional writes), GCS and
/// Azure all provide natively.
fn register_cloud_schemes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for scheme in ["s3", "s3a", "gs", "az", "abfs", "abfss"] {
            let Ok(url) = Url::parse(&format!("{scheme}://")) else {
                continue;
            };
            object_store_factories().insert(url.clone(), Arc::new(CloudStores));
            logstore_factories().insert(url, Arc::new(CloudStores));
        }
    });
}

struct CloudStores;

impl ObjectStoreFactory for CloudStores {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> deltalake::DeltaResult<(ObjectStoreRef, object_store::path::Path)> {
        let (store, path) = object_store::parse_url_opts(url, config.raw.iter())?;
        Ok((Arc::from(store), path))
    }
}

impl LogStoreFactory for CloudStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn deltalake::logstore::LogStore>> {
        Ok(deltalake::logstore::default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}
