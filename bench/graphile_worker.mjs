// graphile_worker.mjs - the anchor of the queue benchmark: graphile-worker 0.17 (installed from
// npm by scripts/bench.sh into the build directory, never a dependency of dealsync) drains JOBS
// no-op jobs with CONCURRENCY concurrent jobs on the same PostgreSQL cluster as bench-queue.
// MODE "default" runs it as installed; "batched" turns on its own batching (localQueue of
// BATCH jobs, batched completions), its documented fast configuration.
// Prints one JSON line. usage: node graphile_worker.mjs DATABASE_URL JOBS CONCURRENCY MODE [BATCH]
import { run, runMigrations, makeWorkerUtils } from "graphile-worker";

const [url, jobsArg, concArg, mode = "default", batchArg = "20"] = process.argv.slice(2);
const jobs = Number(jobsArg);
const concurrency = Number(concArg);
const logFactory = () => () => {};
const quiet = new (await import("graphile-worker")).Logger(logFactory);

await runMigrations({ connectionString: url, logger: quiet });
const utils = await makeWorkerUtils({ connectionString: url, logger: quiet });
await utils.withPgClient(async (c) => {
  await c.query("DELETE FROM graphile_worker._private_jobs");
  await c.query(
    "SELECT graphile_worker.add_jobs(array(SELECT ROW('noop', json_build_object('i', g)," +
      " NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec" +
      " FROM generate_series(1, $1::int) g))",
    [jobs],
  );
  await c.query("ANALYZE graphile_worker._private_jobs");
});
await utils.release();

const preset =
  mode === "batched"
    ? {
        worker: {
          localQueue: { size: Number(batchArg) },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      }
    : {};
let done = 0;
let finished;
const allDone = new Promise((resolve) => (finished = resolve));
const start = process.hrtime.bigint();
const runner = await run({
  connectionString: url,
  concurrency,
  noHandleSignals: true,
  pollInterval: 1000,
  logger: quiet,
  preset,
  taskList: {
    noop: async () => {
      if (++done === jobs) finished();
    },
  },
});
await allDone;
// The last completions are written after the task returns: wait until the table is empty.
const check = await makeWorkerUtils({ connectionString: url, logger: quiet });
for (;;) {
  const left = await check.withPgClient(async (c) =>
    Number((await c.query("SELECT count(*) FROM graphile_worker._private_jobs")).rows[0].count),
  );
  if (left === 0) break;
  await new Promise((r) => setTimeout(r, 5));
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
await check.release();
await runner.stop();
console.log(
  JSON.stringify({
    mode: `graphile_worker_0.17_${mode}`,
    events: jobs,
    seconds: Number(seconds.toFixed(3)),
    events_per_second: Math.round(jobs / seconds),
  }),
);
