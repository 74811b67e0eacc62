import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import type { Db } from '../../src/database'
import { listTasks } from '../../src/tasks/queries'
import { asUser, databaseKind, testApp, testDatabase } from '../support/app'

const app = await testApp()
const { db } = await testDatabase()
const TASKS = 100_000

interface PlanNode {
	'Node Type': string
	'Index Name'?: string
	Plans?: PlanNode[]
}

const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)]

const rows = (result: unknown): Record<string, unknown>[] =>
	Array.isArray(result) ? result : (result as { rows: Record<string, unknown>[] }).rows

// The statement listTasks really sends, recorded by a Drizzle logger on the same connection.
async function sentStatement(userId: string): Promise<{ text: string; params: unknown[] }> {
	const sent: { text: string; params: unknown[] }[] = []
	const logger = { logQuery: (text: string, params: unknown[]) => void sent.push({ text, params }) }
	const client = (db as unknown as { $client: never }).$client
	const logged: Db = databaseKind === 'postgres' ? drizzlePostgres(client, { logger }) : drizzlePglite(client, { logger })
	await listTasks(logged, userId, { limit: 50 })
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
		const json = row?.['QUERY PLAN']
		const [explained] = (typeof json === 'string' ? JSON.parse(json) : json) as { Plan: PlanNode }[]
		if (!explained) throw new Error('EXPLAIN returned no plan')
		return explained.Plan
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
		expect(page.body.map((t: { title: string }) => t.title)).toEqual(
			Array.from({ length: 50 }, (_, i) => `Task ${TASKS - i}`)
		)
	})
})
