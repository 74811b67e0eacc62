// The stack's own limit on `get`: Bun.serve and postgres.js answering GET /api/tasks/:id with the
// API's very statement, and nothing else: no framework, token, schema or log. bench/run.ts starts
// as many of these as the binary runs processes, on one port, and drives them like the binary.
import postgres from 'postgres'
import { TASKS_PER_USER, userId } from './seed'
import type { Statement } from './statements'

const statement = JSON.parse(process.env.BARE_STATEMENT ?? '') as Statement
const sql = postgres(process.env.DATABASE_URL ?? '', { max: 4, prepare: true, fetch_types: false, onnotice: () => {} })

Bun.serve({
	port: Number(process.env.PORT),
	hostname: '127.0.0.1',
	reusePort: true,
	async fetch(request) {
		const id = Number(request.url.slice(request.url.lastIndexOf('/') + 1))
		// Seeded reader u owns ids (u-1)*TASKS_PER_USER+1 .. u*TASKS_PER_USER (bench/seed.ts).
		const chosen = { id, uid: userId(Math.floor((id - 1) / TASKS_PER_USER) + 1) }
		const values = statement.params.map((p) => ('variable' in p ? chosen[p.variable] : p.value))
		const [row] = await sql.unsafe(statement.sql, values as (string | number | boolean | null)[], { prepare: true })
		return row ? Response.json(row) : new Response(null, { status: 404 })
	}
})
console.log('listening')
