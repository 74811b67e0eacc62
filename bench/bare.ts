// The stack's own limit on `get`: Bun.serve and the driver (postgres.js, or PGlite in DATA_DIR)
// answering GET /api/tasks/:id with the API's very statement, and nothing else: no framework,
// token, schema or log. bench/run.ts starts as many of these as the binary runs processes, on one
// port, and drives them like the binary.
import postgres from 'postgres'
import { openEmbedded } from '../src/embedded'
import { TASKS_PER_USER, userId } from './seed'
import { bind, type Statement } from './statements'

type Value = string | number | boolean | null
type Run = (sql: string, values: Value[]) => Promise<unknown[]>

const statement = JSON.parse(process.env.BARE_STATEMENT ?? '') as Statement

async function driver(): Promise<Run> {
	const url = process.env.DATABASE_URL
	if (url) {
		// As the API reads a task by its id: on one connection of its own, every query pipelined.
		const sql = postgres(url, { max: 1, prepare: true, fetch_types: false, onnotice: () => {} })
		return (text, values) => sql.unsafe(text, values, { prepare: true })
	}
	const { client } = await openEmbedded(process.env.DATA_DIR ?? '')
	return async (text, values) => (await client.query(text, values)).rows
}

const run = await driver()

Bun.serve({
	port: Number(process.env.PORT),
	hostname: '127.0.0.1',
	reusePort: true,
	async fetch(request) {
		const id = Number(request.url.slice(request.url.lastIndexOf('/') + 1))
		// Seeded reader u owns ids (u-1)*TASKS_PER_USER+1 .. u*TASKS_PER_USER (bench/seed.ts).
		const chosen = { id, uid: userId(Math.floor((id - 1) / TASKS_PER_USER) + 1) }
		const [row] = await run(statement.sql, bind(statement, chosen) as Value[])
		return row ? Response.json(row) : new Response(null, { status: 404 })
	}
})
console.log('listening')
