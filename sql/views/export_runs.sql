-- export_runs: one row per segment export run (`rebuy export run`, or the schedule of
-- `rebuy serve`): its job, slot (the dt= folder, also the as-of date), why it ran (schedule,
-- catch-up, manual), status (running, succeeded, failed, interrupted: the process stopped before
-- the run finished), start and end, attempts, rows written, rows left out for lack of marketing
-- consent, bytes, files, the slot's URL and the error of a failed run. Newest first.
CREATE VIEW export_runs AS
SELECT run_id, job, slot, as_of, "trigger", status, started_at, finished_at,
       CAST(date_part('epoch', finished_at) - date_part('epoch', started_at) AS DOUBLE) AS seconds,
       attempts, "rows", rows_excluded, bytes, files, destination, error
FROM (
    SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY event_seq DESC) AS rn
    FROM export_run_log
) latest
WHERE rn = 1
ORDER BY started_at DESC
