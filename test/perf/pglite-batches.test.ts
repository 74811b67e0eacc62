import { afterAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/pglite'
import { openEmbedded } from '../../src/database/embedded'
import { migrate } from '../../src/database/migrate'
import { codeOf } from '../../src/database/unavailable'
import { silentLog } from '../../src/log'
import type { ListQuery } from '../../src/tasks/model'
import { createTask, getTask, listTasks } from '../../src/tasks/queries'
import { newUser } from '../support/app'
import { temporaryFolder } from '../support/binary'
import { nodes, planOf } from '../support/plans'

// PGlite of its own, whose every statement is recorded.
const statements: { text: string; params: unknown[] }[] = []
const { client, unlock } = await openEmbedded(temporaryFolder())
const db = drizzle(client, { logger: { logQuery: (text, params) => void statements.push({ text, params }) } })
await migrate(db, silentLog)
afterAll(async () => {
	await client.close()
	unlock()
})
const pools = { writes: db, reads: db, searches: db, lookups: db, kind: 'pglite' as const }

// Each call made in a task of its own, all in one turn of the event loop, as a server makes those
// of the requests it reads at once.
const inOneTurn = <T>(calls: (() => Promise<T>)[]) =>
	Promise.all(calls.map((call) => new Promise<T>((resolve, reject) => setTimeout(() => call().then(resolve, reject), 0))))

// The same, each call's value or its error's code.
const settledInOneTurn = <T>(calls: (() => Promise<T>)[]) =>
	inOneTurn(calls.map((call) => () => call().then((value) => ({ value }), (error: unknown) => ({ code: codeOf(error) }))))

async function usersWithTasks(...counts: number[]) {
	const users = counts.map(() => newUser())
	for (const [n, user] of users.entries())
		for (let task = 1; task <= (counts[n] ?? 0); task++) await createTask(pools, user, { title: `Task ${task}` })
	return users
}

describe('Reads by id on PGlite, which runs a statement in the turn of the event loop that asks for it', () => {
	test('the reads of one turn go to it as one statement, and each gets its own task, or none', async () => {
		const [alice, bob] = [newUser(), newUser()]
		const alices = await createTask(pools, alice, { title: 'Alice`s own' })
		const bobs = await createTask(pools, bob, { title: 'Bob`s own' })
		statements.length = 0
		const asked: [string, number][] = [
			[alice, alices.id],
			[bob, bobs.id],
			[alice, bobs.id],
			[bob, alices.id],
			[alice, alices.id]
		]
		const read = await inOneTurn(asked.map(([userId, id]) => () => getTask(pools, userId, id)))
		expect(read).toEqual([alices, bobs, undefined, undefined, alices])
		expect(statements).toHaveLength(1)
	})
})

describe('Lists newest first on PGlite', () => {
	const asked: [number, ListQuery][] = [
		[0, {}],
		[1, {}],
		[0, { limit: 2 }],
		[2, { offset: 1 }],
		[0, { limit: 1, offset: 2 }],
		[2, { offset: Number.MAX_SAFE_INTEGER }],
		[0, {}]
	]

	test('those of one turn go to it as one statement, and each gets its own page and total, as when asked alone', async () => {
		const users = await usersWithTasks(3, 0, 2)
		const alone = []
		for (const [user, query] of asked) alone.push(await listTasks(pools, users[user] ?? '', query))
		statements.length = 0
		const together = await inOneTurn(asked.map(([user, query]) => () => listTasks(pools, users[user] ?? '', query)))
		expect(together).toEqual(alone)
		expect(statements).toHaveLength(1)
	})

	test('a batch that fails is answered list by list: the failing list gets its error, the others their pages', async () => {
		const users = await usersWithTasks(2, 1)
		const wrong: ListQuery = { offset: -1 }
		const outcomes = await settledInOneTurn([
			() => listTasks(pools, users[0] ?? '', {}),
			() => listTasks(pools, users[1] ?? '', wrong),
			() => listTasks(pools, users[1] ?? '', {})
		])
		expect(outcomes[0]).toEqual({ value: await listTasks(pools, users[0] ?? '', {}) })
		// 2201X: OFFSET must not be negative.
		expect(outcomes[1]).toEqual({ code: '2201X' })
		expect(outcomes[2]).toEqual({ value: await listTasks(pools, users[1] ?? '', {}) })
	})

	test('each page of a batch is read through the (user_id, created_at, id) index, never by sorting the user`s tasks', async () => {
		const [big, small] = await usersWithTasks(0, 1)
		await db.execute(sql`insert into tasks (user_id, title) select ${big}, 'Task ' || g from generate_series(1, 20000) g`)
		await db.execute(sql`analyze tasks`)
		statements.length = 0
		await inOneTurn([() => listTasks(pools, big ?? '', { limit: 50 }), () => listTasks(pools, small ?? '', {})])
		expect(statements).toHaveLength(1)
		const [batch] = statements
		const { rows } = await client.query<Record<string, unknown>>(`explain (format json) ${batch?.text}`, batch?.params)
		const all = nodes(planOf(rows[0]))
		expect(all.some((n) => n['Index Name'] === 'tasks_user_id_created_at_idx')).toBe(true)
		expect(all.filter((n) => n['Relation Name'] === 'tasks').map((n) => n['Node Type'])).not.toContain('Seq Scan')
		// The one sort puts the batch's lists back in the order they were asked for.
		expect(all.filter((n) => n['Node Type'].includes('Sort')).map((n) => n['Sort Key'])).toEqual([['lookup.n']])
	})
})
