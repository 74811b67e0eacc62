import { afterAll, describe, expect, test } from 'bun:test'
import { drizzle } from 'drizzle-orm/pglite'
import { openEmbedded } from '../../src/database/embedded'
import { migrate } from '../../src/database/migrate'
import { silentLog } from '../../src/log'
import { createTask, getTask } from '../../src/tasks/queries'
import { newUser } from '../support/app'
import { temporaryFolder } from '../support/binary'

// PGlite of its own, whose every statement is recorded.
const statements: string[] = []
const { client, unlock } = await openEmbedded(temporaryFolder())
const db = drizzle(client, { logger: { logQuery: (sql) => void statements.push(sql) } })
await migrate(db, silentLog)
afterAll(async () => {
	await client.close()
	unlock()
})
const pools = { writes: db, reads: db, searches: db, lookups: db, kind: 'pglite' as const }

// Each read asked for in a task of its own, all in one turn of the event loop, as a server asks
// for those of the requests it reads at once.
const readInOneTurn = (reads: [userId: string, id: number][]) =>
	Promise.all(
		reads.map(([userId, id]) => new Promise((resolve) => setTimeout(() => resolve(getTask(pools, userId, id)), 0)))
	)

describe('Reads by id on PGlite, which runs a statement in the turn of the event loop that asks for it', () => {
	test('the reads of one turn go to it as one statement, and each gets its own task, or none', async () => {
		const [alice, bob] = [newUser(), newUser()]
		const alices = await createTask(pools, alice, { title: 'Alice`s own' })
		const bobs = await createTask(pools, bob, { title: 'Bob`s own' })
		statements.length = 0
		const read = await readInOneTurn([
			[alice, alices.id],
			[bob, bobs.id],
			[alice, bobs.id],
			[bob, alices.id],
			[alice, alices.id]
		])
		expect(read).toEqual([alices, bobs, undefined, undefined, alices])
		expect(statements).toHaveLength(1)
	})
})
