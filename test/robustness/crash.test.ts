import { afterEach, describe, expect, test } from 'bun:test'
import { SECRET } from '../support/app'
import { binaryDatabases, killLeftovers } from '../support/binary'
import { crashLoop } from './crashing'
import { binaryCopy } from './processes'

const binary = await binaryCopy()
afterEach(killLeftovers)

describe('Running it: no acknowledged write lost when the process is killed', () => {
	for (const database of binaryDatabases)
		test(`SIGKILL at 20 random moments under concurrent writes: every 2xx write is there, whole, after each restart (${database.name})`, async () => {
			const report = await crashLoop({
				binary,
				settings: await database.settings(),
				secret: SECRET,
				kills: 20,
				killAfterMs: [30, 600]
			})
			expect(report.problems).toEqual([])
			expect({ kills: report.kills, lost: report.lost, wrong: report.wrong }).toEqual({ kills: 20, lost: 0, wrong: 0 })
			// The kills landed while writes were in flight, and many writes were acknowledged in between.
			expect(report.cutOff).toBeGreaterThan(0)
			expect(report.acknowledged).toBeGreaterThan(100)
		}, 240_000)
})
