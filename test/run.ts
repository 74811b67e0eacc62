// The test command: the whole suite on the embedded PGlite, then again on Postgres when
// TEST_DATABASE_URL names one (CI always does). Extra arguments go to `bun test`.
// The timeout is a flag because Bun 1.4 ignores bunfig's [test] timeout; migrating a fresh PGlite
// and starting compiled binaries take seconds.
import { spawnSync } from 'bun'

const args = Bun.argv.slice(2)
const runs: [string, Record<string, string | undefined>][] = [['PGlite', { TEST_DATABASE_URL: '' }]]
if (process.env.TEST_DATABASE_URL) runs.push(['Postgres', {}])
else console.warn('\n!! TEST_DATABASE_URL is not set: the Postgres half of the suite is NOT run.\n')

let failed = false
for (const [name, env] of runs) {
	console.log(`\n=== bun test on ${name} ===`)
	const run = spawnSync([process.execPath, 'test', '--timeout', '60000', ...args], { env: { ...process.env, ...env }, stdio: ['inherit', 'inherit', 'inherit'] })
	if (run.exitCode !== 0) failed = true
}
process.exit(failed ? 1 : 0)
