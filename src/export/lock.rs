//! One run of a job at a time, across processes and machines: a lock object in the job's own
//! destination, `<destination>/_rebuy_tmp/<job>.lock`, created with a conditional put
//! (`PutMode::Create`: S3 conditional writes, GCS and Azure preconditions, an exclusive
//! create on local disks), so that of two runs started together exactly one gets it.
//!
//! An operator's `rebuy export run` during the scheduled run used to go ahead: it deleted the
//! other run's staging folder, and a `_SUCCESS` then listed files that were not there. With
//! the lock the second run stops at once (exit 1, "already running"), and whoever holds the
//! lock may clear every other staging folder of the job, which can then only be a dead run's.
//!
//! A lock whose process died (same host, pid gone) or that is older than [`STALE_AFTER`] is
//! taken over.

use chrono::{DateTime, Utc};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::ExportError;
use super::store::Destination;

/// A lock older than this is a dead run's, wherever it ran.
pub const STALE_AFTER: chrono::Duration = chrono::Duration::hours(12);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    host: String,
    pid: u32,
    since: DateTime<Utc>,
}

/// A held lock; [`JobLock::release`] removes it (a run that dies leaves it, see above).
pub struct JobLock {
    path: object_store::path::Path,
    holder: Holder,
}

fn lock_path(dest: &Destination, job: &str) -> object_store::path::Path {
    dest.path(&["_rebuy_tmp", &format!("{job}.lock")])
}

fn store_err(job: &str, what: &'static str) -> impl Fn(object_store::Error) -> ExportError {
    let job = job.to_string();
    move |source| ExportError::Store {
        job: job.clone(),
        what,
        source,
    }
}

impl JobLock {
    pub async fn take(
        dest: &Destination,
        job: &str,
        run_id: &str,
        now: DateTime<Utc>,
    ) -> Result<JobLock, ExportError> {
        let path = lock_path(dest, job);
        let holder = Holder {
            run_id: run_id.to_string(),
            host: super::runs::host_name(),
            pid: std::process::id(),
            since: now,
        };
        let body = serde_json::to_vec(&holder).unwrap_or_default();
        for _ in 0..2 {
            let put = dest
                .store
                .put_opts(
                    &path,
                    PutPayload::from(body.clone()),
                    PutOptions::from(PutMode::Create),
                )
                .await;
            match put {
                Ok(_) => {
                    return Ok(JobLock {
                        path,
                        holder: holder.clone(),
                    });
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let other = read_holder(dest, &path).await;
                    match other {
                        Some(other) if !is_stale(&other, now) => {
                            return Err(ExportError::AlreadyRunning(format!(
                                "{job} (run {} on {} pid {}, since {})",
                                other.run_id, other.host, other.pid, other.since
                            )));
                        }
                        _ => {
                            tracing::warn!(job, "taking over the lock of a run that is gone");
                            let _ = dest.store.delete(&path).await;
                        }
                    }
                }
                Err(e) => return Err(store_err(job, "taking the job's lock")(e)),
            }
        }
        Err(ExportError::AlreadyRunning(job.to_string()))
    }

    /// Removes the lock if it is still this run's (and, on a local disk, the scratch folder
    /// if nothing else is in it).
    pub async fn release(self, dest: &Destination) {
        if read_holder(dest, &self.path).await.as_ref() == Some(&self.holder) {
            let _ = dest.store.delete(&self.path).await;
        }
        if let Some(root) = &dest.local_root {
            let _ = std::fs::remove_dir(root.join("_rebuy_tmp"));
        }
    }
}

async fn read_holder(dest: &Destination, path: &object_store::path::Path) -> Option<Holder> {
    let bytes = dest.store.get(path).await.ok()?.bytes().await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn is_stale(holder: &Holder, now: DateTime<Utc>) -> bool {
    if now - holder.since > STALE_AFTER {
        return true;
    }
    holder.host == super::runs::host_name() && !process_alive(holder.pid)
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}
