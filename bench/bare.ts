// The stack's own limit on `list` and `get`: Bun.serve and the driver (postgres.js, or PGlite in
// DATA_DIR) answering GET /api/tasks and GET /api/tasks/:id with the API's very statements, sent
// as the API sends them (a list as the JSON text the database wrote, a task as the driver gives
// its row), and nothing else: no framework, token check, schema or log.
// bench/run.ts starts as many of these as the binary runs processes, on one port, and drives them
// like the binary.
import postgres from 'postgres'
import { holding, LIST_PIPELINE, PLANNED_ONCE, POOL_SIZE } from '../src/database'
import { openEmbedded } from '../src/embedded'
import { TASKS_PER_USER, userId } from './seed'
import type { BareKind } from './server'
import { bind, type Statement } from './statements'

type Value = string | number | boolean | null
type Run = (sql: string, values: Value[]) => Promise<unknown[]>

const statements = JSON.parse(process.env.BARE_STATEMENTS ?? '') as Record<BareKind, Statement>

// Connections as the API has them (src/database.ts): lists on a pool of POOL_SIZE whose statements
// are planned once, each connection LIST_PIPELINE deep, reads of a task by its id pipelined on one
// connection of their own.
async function drivers(): Promise<Record<BareKind, Run>> {
	const url = process.env.DATABASE_URL
	if (url) {
		const pool = (max: number, { settings = {}, pipeline }: { settings?: Record<string, string>; pipeline?: number } = {}): Run => {
			const sql = postgres(url, {
				max,
				...holding(pipeline),
				prepare: true,
				connection: settings,
				fetch_types: false,
				onnotice: () => {}
			})
			return (text, values) => sql.unsafe(text, values, { prepare: true })
		}
		return { list: pool(POOL_SIZE, { settings: PLANNED_ONCE, pipeline: LIST_PIPELINE }), get: pool(1) }
	}
	const { client } = await openEmbedded(process.env.DATA_DIR ?? '')
	const run: Run = async (text, values) => (await client.query(text, values)).rows
	return { list: run, get: run }
}

const run = await drivers()

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
			const [list] = (await run.list(statements.list.sql, bind(statements.list, { id: 0, uid: sub }) as Value[])) as {
				page: string
				total: number
			}[]
			const headers = { 'content-type': 'application/json;charset=utf-8', 'x-total-count': String(list?.total) }
			return new Response(list?.page, { headers })
		}
		const id = Number(last)
		// Seeded reader u owns ids (u-1)*TASKS_PER_USER+1 .. u*TASKS_PER_USER (bench/seed.ts).
		const chosen = { id, uid: userId(Math.floor((id - 1) / TASKS_PER_USER) + 1) }
		const [row] = await run.get(statements.get.sql, bind(statements.get, chosen) as Value[])
		return row ? Response.json(row) : new Response(null, { status: 404 })
	}
})
console.log('listening')
