import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import type { Db } from '../../src/database'
import type { ListQuery } from '../../src/tasks/model'
import { listTasks } from '../../src/tasks/queries'
import { asUser, databaseKind, newUser, tasksOf, testApp, testDatabase } from '../support/app'
import { nodes, type PlanNode, planOf } from '../support/plans'

const app = await testApp()
const { writes: db, reads, searches } = await testDatabase()
const TASKS = 100_000

const rows = (result: unknown): Record<string, unknown>[] =>
	Array.isArray(result) ? result : (result as { rows: Record<string, unknown>[] }).rows

interface Sent {
	text: string
	params: unknown[]
}

// The test database's client, with a Drizzle logger that hands on each statement it sends.
function logged(record: (sent: Sent) => void): Db {
	const logger = { logQuery: (text: string, params: unknown[]) => record({ text, params }) }
	const client = (db as unknown as { $client: never }).$client
	return databaseKind === 'postgres' ? drizzlePostgres(client, { logger }) : drizzlePglite(client, { logger })
}

// The statement listTasks really sends for this user and query.
async function sentStatement(userId: string, query: ListQuery = { limit: 50 }): Promise<Sent> {
	const sent: Sent[] = []
	const recording = logged((statement) => sent.push(statement))
	await listTasks({ reads: recording, searches: recording, kind: databaseKind }, userId, query)
	if (sent.length !== 1 || !sent[0]) throw new Error(`listTasks sent ${sent.length} statements, not one`)
	return sent[0]
}

const literal = (value: unknown) => (typeof value === 'number' ? String(value) : `'${String(value).replace(/'/g, "''")}'`)

type PlanMode = 'force_custom_plan' | 'force_generic_plan'

// EXPLAIN of the statement as the prepared statement it is, planned for its values (a custom plan)
// or for any values (the generic plan, which Postgres settles on for a prepared statement once
// that looks no dearer than planning each call: after a few calls by 20-task users, say).
async function plan(text: string, params: unknown[], mode: PlanMode): Promise<PlanNode> {
	const name = `first_page_${crypto.randomUUID().slice(0, 8)}`
	return db.transaction(async (tx) => {
		await tx.execute(sql.raw(`prepare ${name} as ${text}`))
		await tx.execute(sql.raw(`set local plan_cache_mode = ${mode}`))
		const [row] = rows(await tx.execute(sql.raw(`explain (format json) execute ${name}(${params.map(literal).join(', ')})`)))
		await tx.execute(sql.raw(`deallocate ${name}`))
		return planOf(row)
	})
}

describe(`Scale on ${databaseKind}: the first page of a user with ${TASKS.toLocaleString('en')} tasks`, () => {
	let big: Awaited<ReturnType<typeof asUser>>

	beforeAll(async () => {
		big = await asUser(app)
		await db.execute(sql`
			insert into tasks (user_id, title, created_at, updated_at)
			select ${big.sub}, 'Task ' || g, t, t
			from generate_series(1, ${TASKS}) g, lateral (select timestamptz '2026-01-01' + g * interval '1 second' as t) s`)
		await db.execute(sql`analyze tasks`)
	})
	afterAll(async () => {
		await db.execute(sql`delete from tasks where user_id = ${big.sub}`)
	})

	test.each<PlanMode>(['force_custom_plan', 'force_generic_plan'])(
		'is read through the (user_id, created_at, id) index, never by sorting all the user`s tasks (%s)',
		async (mode) => {
			const { text, params } = await sentStatement(big.sub)
			const all = nodes(await plan(text, params, mode))
			expect(all.some((n) => n['Index Name'] === 'tasks_user_id_created_at_idx')).toBe(true)
			expect(all.map((n) => n['Node Type'])).not.toContain('Sort')
			expect(all.map((n) => n['Node Type'])).not.toContain('Incremental Sort')
		}
	)

	test('still answers as the contract says: the newest 50, and the total in X-Total-Count', async () => {
		const page = await big.get('/api/tasks?limit=50&sort=created_at&order=desc')
		expect(page.status).toBe(200)
		expect(page.headers.get('x-total-count')).toBe(String(TASKS))
		expect(tasksOf(page).map((task) => task.title)).toEqual(
			Array.from({ length: 50 }, (_, i) => `Task ${TASKS - i}`)
		)
	})
})

// The text of the statement that lists in this way, whoever asks.
const textOf = async (query: ListQuery) => (await sentStatement(newUser(), query)).text

// How the statements a session has prepared were planned: once for any values (generic), or for
// the values of each call (custom).
async function plansOf(tx: Db, text: string) {
	const [counts] = rows(
		await tx.execute(
			sql`select generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements where statement = ${text}`
		)
	)
	return counts
}

describe(`Where lists are read, on ${databaseKind}`, () => {
	test.each<[string, ListQuery, string[]]>([
		['in creation order, newest first: reads', {}, ['reads']],
		['oldest first: reads', { order: 'asc' }, ['reads']],
		['completed only, a page of 50: reads', { completed: true, limit: 50 }, ['reads']],
		['past the last page, with its total: reads, once', { offset: 1_000_000 }, ['reads']],
		['by title: searches', { sort: 'title' }, ['searches']],
		['by last change: searches', { sort: 'updated_at' }, ['searches']],
		['with a search: searches', { q: 'milk' }, ['searches']]
	])('%s', async (_, query, expected) => {
		const where: string[] = []
		const pool = (name: string) => logged(() => where.push(name))
		await listTasks({ reads: pool('reads'), searches: pool('searches'), kind: databaseKind }, newUser(), query)
		expect(where).toEqual(expected)
	})

	// Postgres would otherwise plan these again on every call: a plan for the values at hand looks
	// cheaper than the generic one, costed for an average user.
	test.skipIf(databaseKind !== 'postgres')('on `reads` each statement is planned once, for every user', async () => {
		const user = await asUser(app)
		for (let task = 1; task <= 20; task++) await user.post('/api/tasks', { title: `Task ${task}` })
		// A transaction keeps one connection of the pool, so its session is the one asked.
		await reads.transaction(async (tx) => {
			const pools = { reads: tx, searches: tx, kind: databaseKind }
			for (let call = 0; call < 10; call++) await listTasks(pools, user.sub, {})
			// The connection may have run it before, for other tests: count what it did, not these calls.
			const plans = await plansOf(tx, await textOf({}))
			expect(plans).toEqual({ generic: expect.any(Number), custom: 0 })
			expect(plans?.generic).toBeGreaterThanOrEqual(10)
		})
	})

	test.skipIf(databaseKind !== 'postgres')('on `searches` Postgres plans a call for its user', async () => {
		const user = await asUser(app)
		await searches.transaction(async (tx) => {
			const pools = { reads: tx, searches: tx, kind: databaseKind }
			for (let call = 0; call < 10; call++) await listTasks(pools, user.sub, { sort: 'title' })
			expect((await plansOf(tx, await textOf({ sort: 'title' })))?.custom).toBeGreaterThanOrEqual(5)
		})
	})
})
