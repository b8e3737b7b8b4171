//! When export jobs run: cron schedules read in each job's time zone, a clock that tests can
//! set (`REBUY_CLOCK`), and the catch-up of a slot missed while nothing was running.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};

use super::ExportError;
use super::config::{ExportJob, Schedule};
use super::run::{RunRequest, Trigger};
use super::runs::{self, Status};
use crate::storage::Warehouse;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a given instant and runs at normal speed from there.
pub struct ShiftedClock {
    start: DateTime<Utc>,
    at: Instant,
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.at.elapsed()).unwrap_or_default();
        self.start + elapsed
    }
}

/// The system clock, or, when `REBUY_CLOCK` holds an RFC 3339 instant, a clock starting
/// there (for tests and rehearsals of a schedule).
pub fn clock_from_env() -> Result<Arc<dyn Clock>, ExportError> {
    match std::env::var("REBUY_CLOCK") {
        Ok(text) if !text.trim().is_empty() => {
            let start = DateTime::parse_from_rfc3339(text.trim())
                .map_err(|e| {
                    ExportError::Clock(format!(
                        "REBUY_CLOCK '{text}' is not an RFC 3339 instant: {e}"
                    ))
                })?
                .with_timezone(&Utc);
            Ok(Arc::new(ShiftedClock {
                start,
                at: Instant::now(),
            }))
        }
        _ => Ok(Arc::new(SystemClock)),
    }
}

/// The first scheduled instant strictly after `after`.
pub fn next_after(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = after.with_timezone(&schedule.timezone);
    schedule
        .cron
        .find_next_occurrence(&local, false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The last scheduled instant at or before `at`.
pub fn previous_at_or_before(schedule: &Schedule, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = at.with_timezone(&schedule.timezone);
    schedule
        .cron
        .find_previous_occurrence(&local, true)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The slot (and as-of date) of a run at `instant`: its date in the job's time zone.
pub fn slot_of(job: &ExportJob, instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&job.timezone).date_naive()
}

/// The scheduling state of the jobs: when each is next due.
pub struct Timetable {
    entries: Vec<(ExportJob, Option<DateTime<Utc>>)>,
}

impl Timetable {
    pub fn new(jobs: &[ExportJob], now: DateTime<Utc>) -> Self {
        Timetable {
            entries: jobs
                .iter()
                .filter_map(|j| {
                    let s = j.schedule.as_ref()?;
                    Some((j.clone(), next_after(s, now)))
                })
                .collect(),
        }
    }

    /// The jobs due at `now`, each once (a clock that jumped over several occurrences fires
    /// once), with the run each should make.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<(ExportJob, RunRequest)> {
        let mut out = Vec::new();
        for (job, next) in &mut self.entries {
            let Some(at) = *next else { continue };
            if at > now {
                continue;
            }
            let slot = slot_of(job, at);
            out.push((
                job.clone(),
                RunRequest {
                    slot,
                    as_of: slot,
                    trigger: Trigger::Schedule,
                },
            ));
            *next = job.schedule.as_ref().and_then(|s| next_after(s, now));
        }
        out
    }

    /// How long until the next job is due (at most `cap`).
    pub fn wait(&self, now: DateTime<Utc>, cap: Duration) -> Duration {
        self.entries
            .iter()
            .filter_map(|(_, n)| *n)
            .map(|n| (n - now).to_std().unwrap_or_default())
            .min()
            .unwrap_or(cap)
            .min(cap)
    }
}

/// When a scheduler last watched each job: `_exports/schedule_state.json` in the data
/// directory (local or object store), refreshed while `rebuy serve` runs.
pub struct Watched {
    store: Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
}

impl Watched {
    pub fn open(warehouse: &Warehouse) -> Result<Self, ExportError> {
        let (store, root) =
            object_store::parse_url_opts(warehouse.root(), warehouse.storage_options().iter())
                .map_err(|e| ExportError::Log(format!("schedule state: {e}")))?;
        Ok(Watched {
            store: Arc::from(store),
            path: root.join("_exports").join("schedule_state.json"),
        })
    }

    pub async fn read(&self) -> BTreeMap<String, DateTime<Utc>> {
        use object_store::ObjectStoreExt;
        let Ok(got) = self.store.get(&self.path).await else {
            return BTreeMap::new();
        };
        let Ok(bytes) = got.bytes().await else {
            return BTreeMap::new();
        };
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    /// Records that `jobs` are watched as of `now`.
    pub async fn write(&self, jobs: &[ExportJob], now: DateTime<Utc>) {
        use object_store::ObjectStoreExt;
        let mut state = self.read().await;
        for job in jobs.iter().filter(|j| j.schedule.is_some()) {
            state.insert(job.name.clone(), now);
        }
        let Ok(body) = serde_json::to_vec_pretty(&state) else {
            return;
        };
        if let Err(e) = self.store.put(&self.path, body.into()).await {
            tracing::warn!("cannot record the schedule state: {e}");
        }
    }
}

/// Jobs whose latest slot passed without a successful run while no scheduler was watching
/// them (the server was down): each runs once now. A job no scheduler ever watched, and that
/// never ran, has missed nothing.
pub async fn missed(
    warehouse: &Warehouse,
    jobs: &[ExportJob],
    watched: &BTreeMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<(ExportJob, RunRequest)>, ExportError> {
    let history = runs::latest(warehouse, "true").await?;
    let mut out = Vec::new();
    for job in jobs {
        let Some(schedule) = &job.schedule else {
            continue;
        };
        let Some(last_due) = previous_at_or_before(schedule, now) else {
            continue;
        };
        let slot = slot_of(job, last_due);
        let mine: Vec<_> = history.iter().filter(|e| e.job == job.name).collect();
        let known = !mine.is_empty() || watched.get(&job.name).is_some_and(|w| *w < last_due);
        if !known {
            continue;
        }
        let done = mine
            .iter()
            .any(|e| e.slot == slot && matches!(e.status, Status::Succeeded | Status::Running));
        let ran_since = mine.iter().any(|e| e.started_at >= last_due);
        if !done && !ran_since {
            out.push((
                job.clone(),
                RunRequest {
                    slot,
                    as_of: slot,
                    trigger: Trigger::CatchUp,
                },
            ));
        }
    }
    Ok(out)
}

/// Runs the schedule until `shutdown` resolves: first the missed slots, then each job when
/// it is due. Runs go on in the background; a job still running when it is due again is
/// skipped (and logged). After `shutdown`, returns when the runs under way have finished.
pub async fn run_schedule(
    warehouse: Warehouse,
    jobs: Vec<ExportJob>,
    clock: Arc<dyn Clock>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    if jobs.iter().all(|j| j.schedule.is_none()) {
        return;
    }
    let start = clock.now();
    if let Err(e) = runs::mark_interrupted(&warehouse, start).await {
        tracing::warn!("export runs: {e}");
    }
    let mut timetable = Timetable::new(&jobs, start);
    let mut running: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let watched = Watched::open(&warehouse);
    let before = match &watched {
        Ok(w) => w.read().await,
        Err(e) => {
            tracing::warn!("{e}");
            BTreeMap::new()
        }
    };
    match missed(&warehouse, &jobs, &before, start).await {
        Ok(list) => {
            for (job, request) in list {
                running.push(spawn_run(&warehouse, job, request, &clock));
            }
        }
        Err(e) => tracing::warn!("checking for missed export slots: {e}"),
    }
    tokio::pin!(shutdown);
    let mut noted = Instant::now() - HEARTBEAT;
    loop {
        let now = clock.now();
        if noted.elapsed() >= HEARTBEAT
            && let Ok(w) = &watched
        {
            w.write(&jobs, now).await;
            noted = Instant::now();
        }
        for (job, request) in timetable.due(now) {
            running.push(spawn_run(&warehouse, job, request, &clock));
        }
        running.retain(|r| !r.is_finished());
        let wait = timetable.wait(clock.now(), Duration::from_millis(500));
        tokio::select! {
            _ = tokio::time::sleep(wait.max(Duration::from_millis(20))) => {}
            _ = &mut shutdown => {
                if let Ok(w) = &watched {
                    w.write(&jobs, clock.now()).await;
                }
                // Runs under way finish (the caller bounds how long it waits).
                for run in running {
                    let _ = run.await;
                }
                return;
            }
        }
    }
}

/// How often the scheduler notes that it is watching (a slot due within this long of a crash
/// may be taken as watched and not be caught up; a recorded run is what really counts).
const HEARTBEAT: Duration = Duration::from_secs(20);

fn spawn_run(
    warehouse: &Warehouse,
    job: ExportJob,
    request: RunRequest,
    clock: &Arc<dyn Clock>,
) -> tokio::task::JoinHandle<()> {
    let warehouse = warehouse.clone();
    let clock = clock.clone();
    tokio::spawn(async move {
        let now = || clock.now();
        match super::run::run_job(&warehouse, &job, request, now).await {
            Ok(_) => {}
            Err(ExportError::AlreadyRunning(name)) => {
                tracing::warn!(job = %name, "export still running from its previous slot; this one is skipped");
            }
            Err(e) => tracing::error!(job = %job.name, "export: {e}"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::config::ExportConfig;

    fn job(schedule: &str, tz: &str) -> ExportJob {
        let text = format!(
            "[[export]]\nname = \"j\"\nview = \"customer_rfm\"\ndestination = \"file:///tmp/x\"\n\
             schedule = \"{schedule}\"\ntimezone = \"{tz}\"\npurpose = \"analytics\"\n"
        );
        ExportConfig::parse(&text).unwrap().jobs.remove(0)
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn fires_on_time_in_the_jobs_time_zone() {
        // 02:00 in Shanghai is 18:00 UTC the day before.
        let j = job("0 2 * * *", "Asia/Shanghai");
        let mut tt = Timetable::new(std::slice::from_ref(&j), t("2026-07-01T17:59:58Z"));
        assert!(tt.due(t("2026-07-01T17:59:59Z")).is_empty());
        let fired = tt.due(t("2026-07-01T18:00:00Z"));
        assert_eq!(fired.len(), 1);
        assert_eq!(
            fired[0].1.slot,
            NaiveDate::from_ymd_opt(2026, 7, 2).unwrap()
        );
        assert_eq!(fired[0].1.trigger, Trigger::Schedule);
        // Not again until the next day's 02:00.
        assert!(tt.due(t("2026-07-02T17:59:00Z")).is_empty());
        assert_eq!(tt.due(t("2026-07-02T18:00:01Z")).len(), 1);
        assert_eq!(
            tt.wait(t("2026-07-02T18:00:01Z"), Duration::from_secs(100_000)),
            Duration::from_secs(86_399)
        );
    }

    #[test]
    fn a_jump_over_several_occurrences_fires_once() {
        let j = job("*/15 * * * *", "UTC");
        let mut tt = Timetable::new(std::slice::from_ref(&j), t("2026-07-01T00:01:00Z"));
        assert_eq!(tt.due(t("2026-07-01T03:00:00Z")).len(), 1);
        assert!(tt.due(t("2026-07-01T03:05:00Z")).is_empty());
        assert_eq!(tt.due(t("2026-07-01T03:15:00Z")).len(), 1);
    }

    #[test]
    fn daylight_saving_days_keep_local_time() {
        // New York springs forward on 2026-03-08: 03:00 local is 07:00 UTC that day and
        // 08:00 UTC the day before.
        let j = job("0 3 * * *", "America/New_York");
        let s = j.schedule.as_ref().unwrap();
        assert_eq!(
            next_after(s, t("2026-03-07T00:00:00Z")),
            Some(t("2026-03-07T08:00:00Z"))
        );
        assert_eq!(
            next_after(s, t("2026-03-07T08:00:00Z")),
            Some(t("2026-03-08T07:00:00Z"))
        );
        assert_eq!(
            previous_at_or_before(s, t("2026-03-08T07:00:00Z")),
            Some(t("2026-03-08T07:00:00Z"))
        );
    }
}
