// The long form of test/robustness/crash.test.ts: the compiled binary killed with SIGKILL --kills
// times at random moments under concurrent writes, restarted each time on the same database, every
// acknowledged write checked after each restart. PGlite by default; --postgres uses TEST_DATABASE_URL.
//   bun scripts/crash.ts --kills 100 [--postgres] [--writers 6]
import { parseArgs } from 'node:util'
import { SECRET } from '../test/support/app'
import { temporaryFolder } from '../test/support/binary'
import { crashLoop } from '../test/robustness/crashing'
import { binaryCopy, settingsFor } from '../test/robustness/processes'

const { values } = parseArgs({
	options: {
		kills: { type: 'string', default: '100' },
		writers: { type: 'string', default: '6' },
		postgres: { type: 'boolean', default: false }
	}
})
const databaseUrl = values.postgres ? process.env.TEST_DATABASE_URL : undefined
if (values.postgres && !databaseUrl) throw new Error('--postgres needs TEST_DATABASE_URL')

const started = performance.now()
const report = await crashLoop({
	binary: await binaryCopy(),
	settings: settingsFor(databaseUrl, `${temporaryFolder('crash-data-')}/data`),
	secret: SECRET,
	kills: Number(values.kills),
	writers: Number(values.writers),
	progress: (r) => process.stdout.write(`\r${r.kills} kills, ${r.acknowledged} acknowledged writes, ${r.lost} lost`)
})
console.log(
	`\n\ncrash loop on ${databaseUrl ? 'Postgres' : 'PGlite'}: ${Math.round((performance.now() - started) / 1000)} s`
)
console.log(
	`kills ${report.kills}, acknowledged writes ${report.acknowledged}, writes cut off by a kill ${report.cutOff}`
)
console.log(`lost ${report.lost}, wrong or half-written ${report.wrong}`)
for (const problem of report.problems) console.log(`  ${problem}`)
process.exit(report.lost || report.wrong ? 1 : 0)
