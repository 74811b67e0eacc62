// The long form of test/robustness/fuzz.test.ts: generated valid and hostile requests, over HTTP,
// against the compiled binary (PGlite in a temp folder, or the Postgres of --database-url /
// TEST_DATABASE_URL), until --runs requests under test have been sent; prints a count summary.
//   bun scripts/fuzz.ts --runs 10000 [--postgres] [--seed N]
import { parseArgs } from 'node:util'
import { SECRET } from '../test/support/app'
import { binaryCopy, fuzzTarget } from '../test/robustness/processes'
import { fuzz, type FuzzReport } from '../test/robustness/fuzzing'

const { values } = parseArgs({
	options: {
		runs: { type: 'string', default: '10000' },
		postgres: { type: 'boolean', default: false },
		seed: { type: 'string' }
	}
})
const wanted = Number(values.runs)
const databaseUrl = values.postgres ? process.env.TEST_DATABASE_URL : undefined
if (values.postgres && !databaseUrl) throw new Error('--postgres needs TEST_DATABASE_URL')

const target = await fuzzTarget(await binaryCopy(), databaseUrl)
const total: FuzzReport = { runs: 0, steps: 0, requests: 0, byStatus: {} }
// A failure ends its batch (after shrinking); the run goes on with the next batch, and the summary
// counts each kind of failure (its first line) with one shrunk example.
const failures = new Map<string, { count: number; example: string }>()
const started = performance.now()
let seed = values.seed === undefined ? Date.now() : Number(values.seed)
while (total.steps < wanted && target.alive()) {
	const report = await fuzz({ send: target.send, secret: SECRET, runs: 50, maxSteps: 40, seed: seed++ })
	total.runs += report.runs
	total.steps += report.steps
	total.requests += report.requests
	for (const [status, count] of Object.entries(report.byStatus))
		total.byStatus[status] = (total.byStatus[status] ?? 0) + count
	if (report.failure) {
		const kind = report.failure.split('\n')[0] as string
		const known = failures.get(kind)
		failures.set(kind, { count: (known?.count ?? 0) + 1, example: known?.example ?? report.failure })
	}
	process.stdout.write(`\r${total.steps} steps, ${total.requests} requests, ${failures.size} kinds of failure`)
}
const alive = target.alive()
await target.stop()
const errors5xx = Object.entries(total.byStatus)
	.filter(([status]) => Number(status) >= 500)
	.reduce((sum, [, n]) => sum + n, 0)
console.log(
	`\n\nfuzz against the compiled binary on ${databaseUrl ? 'Postgres' : 'PGlite'}, first seed ${values.seed ?? 'time-based'}`
)
console.log(
	`runs ${total.runs}, steps (requests under test) ${total.steps}, requests in all ${total.requests}, ${Math.round((performance.now() - started) / 1000)} s`
)
console.log(`by status: ${JSON.stringify(total.byStatus)}`)
const failed = [...failures.values()].reduce((sum, f) => sum + f.count, 0)
console.log(`5xx: ${errors5xx}; the binary ${alive ? 'stayed up' : 'DIED'}; failed batches: ${failed}`)
for (const [kind, { count, example }] of failures) console.log(`\n--- ${count} x ${kind}\n${example.slice(0, 3000)}`)
process.exit(failed || errors5xx || !alive ? 1 : 0)
