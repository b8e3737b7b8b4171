//! An export destination as an object_store client: credentials and endpoints from the
//! environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), then the job's `[export.options]`.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use url::Url;

use super::ExportError;
use super::config::ExportJob;

/// Where a job's files go.
#[derive(Debug, Clone)]
pub struct Destination {
    pub url: Url,
    pub store: Arc<dyn ObjectStore>,
    /// The destination's prefix inside the store.
    pub prefix: Path,
    /// The folder, for `file://` destinations (published by renaming folders).
    pub local_root: Option<PathBuf>,
}

/// The store's own retries stay short: rebuy retries whole attempts with the job's backoff.
fn client_retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: Duration::from_secs(20),
    }
}

impl Destination {
    /// Builds the client (no network traffic yet). Unknown option keys are errors.
    pub fn open(job: &ExportJob) -> Result<Self, ExportError> {
        Self::for_url(&job.destination, &job.options, &job.name)
    }

    pub fn for_url(
        url: &Url,
        options: &std::collections::BTreeMap<String, String>,
        job: &str,
    ) -> Result<Self, ExportError> {
        let bad = |message: String| ExportError::Destination {
            job: job.to_string(),
            url: url.to_string(),
            message,
        };
        let unknown = |key: &str| bad(format!("unknown option `{key}` for this kind of store"));
        let prefix = Path::from_url_path(url.path().trim_matches('/'))
            .map_err(|e| bad(format!("bad path: {e}")))?;
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" | "s3a" => {
                let mut b = AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .with_retry(client_retry());
                for (k, v) in options {
                    let key = AmazonS3ConfigKey::from_str(k).map_err(|_| unknown(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "gs" => {
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(client_retry());
                for (k, v) in options {
                    let key = GoogleConfigKey::from_str(k).map_err(|_| unknown(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "az" | "abfs" | "abfss" => {
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(client_retry());
                for (k, v) in options {
                    let key = AzureConfigKey::from_str(k).map_err(|_| unknown(k))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "file" => {
                if let Some(k) = options.keys().next() {
                    return Err(unknown(k));
                }
                let root = url
                    .to_file_path()
                    .map_err(|_| bad("not a local path".into()))?;
                let store = Arc::new(LocalFileSystem::new());
                return Ok(Destination {
                    url: url.clone(),
                    store,
                    prefix,
                    local_root: Some(root),
                });
            }
            other => return Err(bad(format!("unsupported scheme '{other}'"))),
        };
        Ok(Destination {
            url: url.clone(),
            store,
            prefix,
            local_root: None,
        })
    }

    /// `prefix/part/part/...`
    pub fn path(&self, parts: &[&str]) -> Path {
        let mut p = self.prefix.clone();
        for part in parts {
            p = p.clone().join(*part);
        }
        p
    }

    /// The URL of the store's root (scheme and bucket), which DataFusion keys stores by.
    pub fn store_url(&self) -> Option<Url> {
        let host = self.url.host_str()?;
        Url::parse(&format!("{}://{}", self.url.scheme(), host)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::config::ExportConfig;

    fn job(destination: &str, options: &str) -> Result<ExportJob, String> {
        let text = format!(
            "[[export]]\nname = \"j\"\nview = \"customer_rfm\"\ndestination = \"{destination}\"\n\
             purpose = \"analytics\"\n[export.options]\n{options}\n"
        );
        ExportConfig::parse(&text)
            .map(|mut c| c.jobs.remove(0))
            .map_err(|(_, m)| m)
    }

    // No GCS emulator works with object_store writes here: GCS is checked at the
    // configuration level (the client builds; its keys are GCS keys).
    #[test]
    fn gcs_destinations_build_with_gcs_keys_only() {
        let j = job("gs://bucket/segments", "").unwrap();
        let d = Destination::open(&j).unwrap();
        assert_eq!(d.prefix.as_ref(), "segments");
        assert_eq!(d.store_url().unwrap().as_str(), "gs://bucket");
        assert_eq!(
            d.path(&["j", "dt=2026-07-01"]).as_ref(),
            "segments/j/dt=2026-07-01"
        );
        let err = job("gs://bucket/segments", "region = \"us-east-1\"").unwrap_err();
        assert!(err.contains("unknown option `region`"), "{err}");
    }

    #[test]
    fn s3_and_azure_keys_are_checked_per_store() {
        assert!(
            job(
                "s3://b/p",
                "endpoint = \"http://127.0.0.1:9\"\nallow_http = true"
            )
            .is_ok()
        );
        let err = job("s3://b/p", "use_emulator = true").unwrap_err();
        assert!(err.contains("unknown option `use_emulator`"), "{err}");
        assert!(job("az://container/p", "use_emulator = true").is_ok());
        let err = job("file:///tmp/x", "endpoint = \"x\"").unwrap_err();
        assert!(err.contains("unknown option `endpoint`"), "{err}");
    }
}
