import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { t, type Static, type TSchema } from 'elysia'
import { TypeCompiler } from 'elysia/type-system'
import { SignJWT, type JWTPayload } from 'jose'
import postgres from 'postgres'
import { type AppDependencies, createApp } from '../../src/app'
import { createVerifier } from '../../src/auth'
import { type Database, openDatabase } from '../../src/database'
import { migrate } from '../../src/database/migrate'
import { silentLog } from '../../src/log'
import { ErrorBody, Task } from '../../src/tasks/model'
import { cacheTokens } from '../../src/token-cache'

export const SECRET = 'a-test-secret-that-is-longer-than-32-bytes'
export const ORIGIN = 'http://localhost:3000'

/** Postgres when the run was started with TEST_DATABASE_URL, else an embedded PGlite. */
export const databaseUrl = process.env.TEST_DATABASE_URL || undefined
export const databaseKind: 'postgres' | 'pglite' = databaseUrl ? 'postgres' : 'pglite'

let shared: Promise<Database> | undefined

// One migrated database per test process; tests stay apart by using users of their own.
export function testDatabase(): Promise<Database> {
	shared ??= (async () => {
		const database = await openDatabase({ databaseUrl, dataDir: mkdtempSync(join(tmpdir(), 'todo-test-')) })
		await database.settle()
		await migrate(database.writes)
		return database
	})()
	return shared
}

/** The app built the way main builds it, on the test database or the one given; it allows the
 * origin ORIGIN unless given a config. */
export async function testApp(
	database?: Database,
	{ startup, config = { corsOrigins: [ORIGIN] } }: Partial<Pick<AppDependencies, 'startup' | 'config'>> = {}
) {
	return createApp({
		database: database ?? (await testDatabase()),
		verify: cacheTokens(createVerifier({ secret: SECRET })),
		config,
		log: silentLog,
		startup
	})
}

/**
 * A new, empty database on the run's Postgres server, for a test that must be its only user, made
 * with `create database`'s `options` when given. It is named after the run's own database, so
 * whoever runs the suite owns it; `admin` is a connection to the run's database, and drop()
 * removes the new one.
 */
export async function emptyDatabase(
	label: string,
	options = ''
): Promise<{ name: string; url: string; admin: postgres.Sql; drop(): Promise<void> }> {
	const server = new URL(databaseUrl ?? '')
	const name = `${server.pathname.slice(1) || 'todo'}_${label}_${crypto.randomUUID().slice(0, 8)}`
	const admin = postgres(server.href, { max: 1, onnotice: () => {} })
	await admin.unsafe(`create database "${name}" ${options}`)
	return {
		name,
		admin,
		url: Object.assign(new URL(server), { pathname: `/${name}` }).href,
		async drop() {
			await admin.unsafe(`drop database if exists "${name}" with (force)`)
			await admin.end()
		}
	}
}

/** `url` with its host and port made those of something in front of the database on this host: a proxy, a pooler. */
export const onLoopbackPort = (url: string, port: number) =>
	Object.assign(new URL(url), { hostname: '127.0.0.1', port: String(port) }).href

export const newUser = () => `user-${crypto.randomUUID()}`

export async function sign(claims: JWTPayload, { secret = SECRET, ttl = '1h' }: { secret?: string; ttl?: string | number } = {}) {
	return new SignJWT(claims)
		.setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
		.setIssuedAt()
		.setExpirationTime(ttl)
		.sign(new TextEncoder().encode(secret))
}

export interface Reply {
	status: number
	headers: Headers
	body: unknown
	text: string
}

// A typed read checks the body against the schema the API promises, so a reply of another shape
// fails right there, showing what came back, rather than as an undefined somewhere further on.
function reader<T extends TSchema>(schema: T, what: string) {
	const shape = TypeCompiler.Compile(schema)
	return (reply: Pick<Reply, 'status' | 'body'>): Static<T> => {
		if (!shape.Check(reply.body)) throw new Error(`Expected ${what}, got ${reply.status} ${JSON.stringify(reply.body)?.slice(0, 500)}`)
		return reply.body
	}
}

export const taskOf = reader(Task, 'a task')
export const tasksOf = reader(t.Array(Task), 'a list of tasks')
export const errorOf = reader(ErrorBody, 'an error body')

/** A response read: its status, headers and text, and the text as JSON when it is JSON (a 204 has none). */
export async function replyOf(response: Response): Promise<Reply> {
	const text = await response.text()
	let body: unknown
	try {
		body = text ? JSON.parse(text) : undefined
	} catch {
		body = undefined
	}
	return { status: response.status, headers: response.headers, body, text }
}

type Handler = { handle(request: Request): Promise<Response> }

/** Sends one request to the app in process and reads the reply. */
export async function call(
	app: Handler,
	method: string,
	path: string,
	{ token, body, headers = {} }: { token?: string; body?: unknown; headers?: Record<string, string> } = {}
): Promise<Reply> {
	const init: RequestInit = { method, headers: { ...headers } }
	const sent = init.headers as Record<string, string>
	if (token) sent.authorization = `Bearer ${token}`
	if (body !== undefined) {
		init.body = typeof body === 'string' ? body : JSON.stringify(body)
		sent['content-type'] ??= 'application/json'
	}
	return replyOf(await app.handle(new Request(`http://localhost${path}`, init)))
}

/** A user with a token and the calls a frontend makes. */
export async function asUser(app: Handler, sub = newUser()) {
	const token = await sign({ sub })
	const as = (method: string) => (path: string, body?: unknown, headers?: Record<string, string>) =>
		call(app, method, path, { token, body, headers })
	return { sub, token, get: as('GET'), post: as('POST'), put: as('PUT'), patch: as('PATCH'), delete: as('DELETE') }
}
