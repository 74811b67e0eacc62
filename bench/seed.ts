// The bench's data, written with set-based SQL (generate_series), never through the API.
// Ids are explicit so the load scripts can compute which task belongs to which user:
// reader u (1..USERS) owns ids (u-1)*TASKS_PER_USER+1 .. u*TASKS_PER_USER; the big user owns the
// next BIG_TASKS ids. Creates and deletes go to other users, the writers (USERS+1..2*USERS), so the
// readers' lists keep their 20 tasks whatever ran before: "doomed" tasks for the delete scenarios
// come after all others, owned round-robin by the writers.
import { SignJWT } from 'jose'

export const USERS = 1000
export const TASKS_PER_USER = 20
const BIG_TASKS = 100_000

// Numeric user ids let pgbench compute them (`\set uid USER_BASE + u`) and send the very same
// parameter the API sends; 16 digits, about the length of real ids.
export const USER_BASE = 1_000_000_000_000_000
export const userId = (u: number) => String(USER_BASE + u)
const BIG_USER = userId(0)

/** Runs SQL text and returns its rows: the bench's only access to the database. */
export type Exec = (sql: string) => Promise<Record<string, unknown>[]>

const rows = (first: number, last: number, owner: string) => `
	insert into tasks (id, user_id, title, description, completed, created_at, updated_at)
	select g, ${owner}, 'Task number ' || g, case when g % 3 = 0 then 'A description of task ' || g end,
		g % 4 = 0, at, at
	from generate_series(${first}, ${last}) g,
		lateral (select timestamptz '2026-01-01' + g * interval '1 second' as at) s`

export async function seed(exec: Exec): Promise<void> {
	const small = USERS * TASKS_PER_USER
	await exec(rows(1, small, `(${USER_BASE} + (g - 1) / ${TASKS_PER_USER} + 1)::text`))
	await exec(rows(small + 1, small + BIG_TASKS, `'${BIG_USER}'`))
	await exec(`select setval(pg_get_serial_sequence('tasks', 'id'), ${small + BIG_TASKS})`)
	// As autovacuum would have done on a live database: statistics, and a visibility map that
	// allows index-only scans.
	await exec('vacuum analyze tasks')
}

export interface Doomed {
	base: number
	count: number
}

/** Adds `count` tasks for the delete scenarios; task base+k belongs to writer USERS + k % USERS + 1. */
export async function addDoomed(exec: Exec, count: number): Promise<Doomed> {
	const [last] = await exec(`select greatest((select max(id) from tasks), (select last_value from tasks_id_seq)) as id`)
	const base = Number(last?.id ?? 0) + 1
	await exec(`
		insert into tasks (id, user_id, title, completed)
		select g, (${USER_BASE + USERS} + (g - ${base}) % ${USERS} + 1)::text, 'Doomed task ' || g, false
		from generate_series(${base}, ${base + count - 1}) g`)
	await exec(`select setval('tasks_id_seq', ${base + count - 1})`)
	return { base, count }
}

/** tokens[u] is user u's token (readers 1..USERS, writers USERS+1..2*USERS); tokens[0] the big user's. */
export async function signTokens(secret: string): Promise<string[]> {
	const key = new TextEncoder().encode(secret)
	const sign = (sub: string) =>
		new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime('2h').sign(key)
	return Promise.all(Array.from({ length: 2 * USERS + 1 }, (_, u) => sign(userId(u))))
}
