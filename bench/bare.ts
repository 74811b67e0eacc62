// The stack's own limit on `list` and `get`: Bun.serve and the driver (postgres.js, or PGlite in
// DATA_DIR) answering GET /api/tasks and GET /api/tasks/:id with the API's very statements, sent
// as the API sends them (a list as the JSON text the database wrote, a task as the driver gives
// its row), and nothing else: no framework, token check, schema or log.
// bench/run.ts starts as many of these as the binary runs processes, on one port, and drives them
// like the binary.
import postgres from 'postgres'
import { holding, LIST_PIPELINE, PLANNED_ONCE, POOL_SIZE } from '../src/database/postgres'
import { openEmbedded } from '../src/database/embedded'
import { TASKS_PER_USER, userId } from './seed'
import type { BareKind } from './server'
import { bind, type Statement } from './statements'

type Value = string | number | boolean | null
interface Driver {
	/** A list's one row, read by position as Drizzle reads it: its two columns are both named "coalesce". */
	list(sql: string, values: Value[]): Promise<unknown[][]>
	/** A task's row, by column name. */
	get(sql: string, values: Value[]): Promise<Record<string, unknown>[]>
}

const statements = JSON.parse(process.env.BARE_STATEMENTS ?? '') as Record<BareKind, Statement>

// Connections as the API has them (src/database/postgres.ts): lists on a pool of POOL_SIZE whose statements
// are planned once, each connection LIST_PIPELINE deep, reads of a task by its id pipelined on one
// connection of their own.
async function driver(): Promise<Driver> {
	const url = process.env.DATABASE_URL
	if (url) {
		const pool = (max: number, { settings = {}, pipeline }: { settings?: Record<string, string>; pipeline?: number } = {}) =>
			postgres(url, { max, ...holding(pipeline), prepare: true, connection: settings, fetch_types: false, onnotice: () => {} })
		const lists = pool(POOL_SIZE, { settings: PLANNED_ONCE, pipeline: LIST_PIPELINE })
		const lookups = pool(1)
		return {
			list: (text, values) => lists.unsafe(text, values, { prepare: true }).values(),
			get: (text, values) => lookups.unsafe(text, values, { prepare: true })
		}
	}
	const { client } = await openEmbedded(process.env.DATA_DIR ?? '')
	return {
		list: async (text, values) => (await client.query<unknown[]>(text, values, { rowMode: 'array' })).rows,
		get: async (text, values) => (await client.query<Record<string, unknown>>(text, values)).rows
	}
}

const run = await driver()

Bun.serve({
	port: Number(process.env.PORT),
	hostname: '127.0.0.1',
	reusePort: true,
	async fetch(request) {
		const last = request.url.slice(request.url.lastIndexOf('/') + 1)
		if (last === 'tasks') {
			// The token's user, read from its payload without a signature check: the API checks a
			// token once, then finds it in its cache.
			const payload = request.headers.get('authorization')?.split('.')[1] ?? ''
			const { sub } = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub: string }
			const [[page, total] = []] = await run.list(statements.list.sql, bind(statements.list, { id: 0, uid: sub }) as Value[])
			const headers = { 'content-type': 'application/json', 'x-total-count': String(total) }
			return new Response(String(page), { headers })
		}
		const id = Number(last)
		// Seeded reader u owns ids (u-1)*TASKS_PER_USER+1 .. u*TASKS_PER_USER (bench/seed.ts).
		const chosen = { id, uid: userId(Math.floor((id - 1) / TASKS_PER_USER) + 1) }
		const [row] = await run.get(statements.get.sql, bind(statements.get, chosen) as Value[])
		return row ? Response.json(row) : new Response(null, { status: 404 })
	}
})
console.log('listening')
