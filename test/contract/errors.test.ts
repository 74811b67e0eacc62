import { afterAll, describe, expect, test } from 'bun:test'
import { sql } from 'drizzle-orm'
import fc from 'fast-check'
import { tmpdir } from 'node:os'
import { createApp } from '../../src/app'
import { createVerifier } from '../../src/auth'
import { type Database, openDatabase } from '../../src/database'
import { silentLog } from '../../src/log'
import { rawExchange } from '../robustness/processes'
import { asUser, call, databaseUrl, errorOf, ORIGIN, type Reply, SECRET, sign, taskOf, testApp, testDatabase } from '../support/app'

const app = await testApp()

// A real Postgres client pointed at a port nothing listens on: the database is unreachable.
const down = await openDatabase({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none', dataDir: tmpdir() })
const verify = createVerifier({ secret: SECRET })
const offline = createApp({ database: down, verify, config: { corsOrigins: [ORIGIN] }, log: silentLog })
afterAll(() => down.close())

const LIMIT = 64 * 1024

// The test database as seen without the tasks table, so every query fails for a reason no input
// explains. Postgres: a client of its own with another search_path; PGlite has one connection,
// whose search_path is changed for the test and restored after it.
async function withoutTasksTable(): Promise<{ database: Database; restore(): Promise<void> }> {
	if (databaseUrl) {
		const separator = databaseUrl.includes('?') ? '&' : '?'
		const other = await openDatabase({ databaseUrl: `${databaseUrl}${separator}search_path=nowhere`, dataDir: tmpdir() })
		return { database: other, restore: () => other.close() }
	}
	const database = await testDatabase()
	await database.writes.execute(sql`set search_path to nowhere`)
	return { database, restore: async () => void (await database.writes.execute(sql`reset search_path`)) }
}

function expectError(reply: Reply, status: number, code: string) {
	expect({ status: reply.status, body: reply.body }).toMatchObject({ status, body: { error_code: code } })
	expect(reply.headers.get('content-type')).toBe('application/json')
	expect(Object.keys(errorOf(reply)).sort()).toEqual(['detail', 'error_code'])
	expect(errorOf(reply).detail).toBeString()
	expect(errorOf(reply).detail.trim().length).toBeGreaterThan(0)
	expect(reply.headers.get('x-request-id')).toBeTruthy()
}

// A request the support's call() cannot make: a streamed body (no Content-Length) or raw bytes.
async function send(path: string, init: RequestInit & { token?: string }): Promise<Reply> {
	const headers = new Headers(init.headers)
	if (init.token) headers.set('authorization', `Bearer ${init.token}`)
	const request = new Request(`http://localhost${path}`, { ...init, headers, duplex: 'half' } as RequestInit)
	const response = await app.handle(request)
	const text = await response.text()
	let body: unknown
	try {
		body = JSON.parse(text)
	} catch {
		body = undefined
	}
	return { status: response.status, headers: response.headers, body, text }
}

function streamOf(bytes: Uint8Array, chunk = 8192): ReadableStream<Uint8Array> {
	let at = 0
	return new ReadableStream({
		pull(controller) {
			if (at >= bytes.length) return controller.close()
			controller.enqueue(bytes.slice(at, at + chunk))
			at += chunk
		}
	})
}

// A JSON task body of exactly `size` bytes, padded with an unknown field.
function bodyOfSize(size: number, title = 'Padded'): string {
	const empty = JSON.stringify({ title, pad: '' })
	return JSON.stringify({ title, pad: 'p'.repeat(size - empty.length) })
}

const count = async (user: Awaited<ReturnType<typeof asUser>>) => (await user.get('/api/tasks')).headers.get('x-total-count')

describe('Errors: always {detail, error_code}, Content-Type: application/json', () => {
	test('every kind of error has the same shape', async () => {
		const alice = await asUser(app)
		expectError(await call(app, 'GET', '/api/tasks'), 401, 'AUTHENTICATION_REQUIRED')
		expectError(await alice.get('/api/tasks/2147483647'), 404, 'RESOURCE_NOT_FOUND')
		expectError(await alice.get('/nowhere'), 404, 'NOT_FOUND')
		expectError(await alice.delete('/api/tasks'), 405, 'METHOD_NOT_ALLOWED')
		expectError(await alice.post('/api/tasks', { title: '' }), 422, 'VALIDATION_ERROR')
		expectError(await alice.post('/api/tasks', bodyOfSize(LIMIT + 1)), 413, 'PAYLOAD_TOO_LARGE')
	})
})

describe('An unknown route: 404 NOT_FOUND', () => {
	const routes: [string, string][] = [
		['GET', '/'],
		['GET', '/nope'],
		['GET', '/api'],
		['GET', '/api/nope'],
		['GET', '/api/task'],
		['GET', '/api/tasks/1/extra'],
		['GET', '/api/tasks/1/complete/extra'],
		['POST', '/api/tasks/1/uncomplete'],
		['DELETE', '/nope/deeper/still'],
		// An OPTIONS that is no CORS preflight (no Access-Control-Request-Method) is routed as any method.
		['OPTIONS', '/nope'],
		['OPTIONS', '/api/tasks/1/extra']
	]
	for (const [method, path] of routes)
		test(`${method} ${path}`, async () => {
			const alice = await asUser(app)
			const reply = await call(app, method, path, { token: alice.token })
			expectError(reply, 404, 'NOT_FOUND')
		})
})

describe('A known route with a wrong method: 405 METHOD_NOT_ALLOWED with Allow', () => {
	const cases: [string, string, string[]][] = [
		['DELETE', '/api/tasks', ['GET', 'HEAD', 'POST']],
		['PUT', '/api/tasks', ['GET', 'HEAD', 'POST']],
		['PATCH', '/api/tasks', ['GET', 'HEAD', 'POST']],
		['POST', '/api/tasks/1', ['GET', 'HEAD', 'PUT', 'DELETE']],
		['PATCH', '/api/tasks/1', ['GET', 'HEAD', 'PUT', 'DELETE']],
		['GET', '/api/tasks/1/complete', ['PATCH']],
		['PUT', '/api/tasks/1/complete', ['PATCH']],
		['POST', '/api/tasks/1/complete', ['PATCH']],
		['DELETE', '/api/tasks/1/complete', ['PATCH']],
		['POST', '/health', ['GET', 'HEAD']],
		['DELETE', '/ready', ['GET', 'HEAD']],
		['POST', '/docs/json', ['GET', 'HEAD']],
		['OPTIONS', '/api/tasks', ['GET', 'HEAD', 'POST']],
		['OPTIONS', '/api/tasks/1/complete', ['PATCH']]
	]
	for (const [method, path, allowed] of cases)
		test(`${method} ${path}: Allow ${allowed.join(', ')}`, async () => {
			const alice = await asUser(app)
			const body = method === 'GET' ? undefined : { completed: true, title: 'x' }
			const reply = await call(app, method, path, { token: alice.token, body })
			expectError(reply, 405, 'METHOD_NOT_ALLOWED')
			const allow = (reply.headers.get('allow') ?? '').split(',').map((m) => m.trim())
			for (const m of allowed) expect(allow).toContain(m)
			expect(allow).not.toContain(method)
		})

	test('a wrong method changes nothing', async () => {
		const alice = await asUser(app)
		const task = taskOf(await alice.post('/api/tasks', { title: 'Untouched' }))
		await alice.post(`/api/tasks/${task.id}`, { title: 'Changed' })
		await alice.patch(`/api/tasks/${task.id}`, { title: 'Changed', completed: true })
		await alice.delete('/api/tasks')
		expect((await alice.get('/api/tasks')).body).toEqual([task])
	})

	test('a short Host routes as a long one: no unknown path reaches a route, no known route loses its 405', async () => {
		const server = (await testApp()).listen({ port: 0, hostname: '127.0.0.1' })
		const url = `http://127.0.0.1:${server.server?.port}`
		const auth = { authorization: `Bearer ${await sign({ sub: 'host-length' })}` }
		// Only a raw request can name the Host and keep dot segments: fetch and Request resolve them.
		const answer = async (host: string, [method, path, headers]: readonly [string, string, Record<string, string>]) => {
			const reply = await rawExchange(url, { method, path, headers: { host, ...headers } })
			return `${reply.status} ${/"error_code":"(\w+)"/.exec(reply.text)?.[1] ?? ''}`.trim()
		}
		const requests = [
			['GET', '/zzz/api/tasks', auth],
			['GET', '/zzz/health', {}],
			['GET', '/api/tasks/', auth],
			['DELETE', '/api/tasks', {}],
			['POST', '/health', {}],
			['GET', '/a/../health', {}]
		] as const
		try {
			for (const request of requests) {
				const expected = await answer(`localhost:${server.server?.port}`, request)
				for (const host of ['x', 'api', 'api:80'])
					expect({ request, host, answer: await answer(host, request) }).toEqual({ request, host, answer: expected })
			}
			expect(await answer('x', requests[0])).toBe('404 NOT_FOUND')
			expect(await answer('api', requests[3])).toBe('405 METHOD_NOT_ALLOWED')
		} finally {
			await server.stop()
		}
	})
})

describe('A body over 64 KiB: 413 PAYLOAD_TOO_LARGE, nothing written', () => {
	test('exactly 64 KiB is accepted', async () => {
		const alice = await asUser(app)
		const body = bodyOfSize(LIMIT, 'Exactly the limit')
		expect(Buffer.byteLength(body)).toBe(LIMIT)
		const created = await alice.post('/api/tasks', body)
		expect(created.status).toBe(201)
		expect(taskOf(created).title).toBe('Exactly the limit')
	})

	test('one byte more, with Content-Length: 413', async () => {
		const alice = await asUser(app)
		expectError(await alice.post('/api/tasks', bodyOfSize(LIMIT + 1)), 413, 'PAYLOAD_TOO_LARGE')
		expectError(await alice.post('/api/tasks', bodyOfSize(1024 * 1024)), 413, 'PAYLOAD_TOO_LARGE')
		expect(await count(alice)).toBe('0')
	})

	test('streamed without Content-Length (chunked): 413', async () => {
		const alice = await asUser(app)
		for (const size of [LIMIT + 1, 512 * 1024]) {
			const reply = await send('/api/tasks', {
				method: 'POST',
				token: alice.token,
				headers: { 'content-type': 'application/json' },
				body: streamOf(new TextEncoder().encode(bodyOfSize(size)))
			})
			expectError(reply, 413, 'PAYLOAD_TOO_LARGE')
		}
		expect(await count(alice)).toBe('0')
	})

	test('a streamed body within the limit is read whole', async () => {
		const alice = await asUser(app)
		const reply = await send('/api/tasks', {
			method: 'POST',
			token: alice.token,
			headers: { 'content-type': 'application/json' },
			body: streamOf(new TextEncoder().encode(bodyOfSize(LIMIT, 'Streamed')), 1000)
		})
		expect(reply.status).toBe(201)
		expect(taskOf(reply).title).toBe('Streamed')
	})

	test('PUT and PATCH too, and the task is unchanged', async () => {
		const alice = await asUser(app)
		const task = taskOf(await alice.post('/api/tasks', { title: 'Small' }))
		expectError(await alice.put(`/api/tasks/${task.id}`, bodyOfSize(LIMIT + 1, 'Huge')), 413, 'PAYLOAD_TOO_LARGE')
		const patch = JSON.stringify({ completed: true, pad: 'p'.repeat(LIMIT) })
		expectError(await alice.patch(`/api/tasks/${task.id}/complete`, patch), 413, 'PAYLOAD_TOO_LARGE')
		expect((await alice.get(`/api/tasks/${task.id}`)).body).toEqual(task)
	})

	test('without a token: refused as too large or as unauthenticated, never as invalid', async () => {
		const reply = await call(app, 'POST', '/api/tasks', { body: bodyOfSize(LIMIT + 1) })
		expect([401, 413]).toContain(reply.status)
	})

	test('a large body that is not JSON: 413 as well', async () => {
		const alice = await asUser(app)
		expectError(await alice.post('/api/tasks', 'x'.repeat(LIMIT + 10)), 413, 'PAYLOAD_TOO_LARGE')
	})
})

describe('A body that is not JSON, not an object, or breaks the rules: 422 VALIDATION_ERROR, nothing written', () => {
	test('not JSON', async () => {
		const alice = await asUser(app)
		for (const body of ['{"title":', '{title: "x"}', "{'title': 'x'}", 'title=x', '{"title":"x",}', 'undefined', 'NaN', '\u0000'])
			expectError(await alice.post('/api/tasks', body), 422, 'VALIDATION_ERROR')
		expect(await count(alice)).toBe('0')
	})

	test('an empty body', async () => {
		const alice = await asUser(app)
		expectError(await alice.post('/api/tasks', ''), 422, 'VALIDATION_ERROR')
		expectError(await call(app, 'POST', '/api/tasks', { token: alice.token }), 422, 'VALIDATION_ERROR')
		expect(await count(alice)).toBe('0')
	})

	test('JSON that is not an object', async () => {
		const alice = await asUser(app)
		for (const body of ['[]', '[{"title":"x"}]', '"title"', '42', 'true', 'null'])
			expectError(await alice.post('/api/tasks', body), 422, 'VALIDATION_ERROR')
		expect(await count(alice)).toBe('0')
	})

	test('bytes that are not UTF-8', async () => {
		const alice = await asUser(app)
		const bytes = new Uint8Array([...new TextEncoder().encode('{"title":"'), 0xff, 0xfe, 0xc3, ...new TextEncoder().encode('"}')])
		const headers = { 'content-type': 'application/json' }
		const reply = await send('/api/tasks', { method: 'POST', token: alice.token, headers, body: bytes })
		expectError(reply, 422, 'VALIDATION_ERROR')
		expect(await count(alice)).toBe('0')
	})

	test('a form or text body instead of JSON', async () => {
		const alice = await asUser(app)
		for (const [type, body] of [
			['application/x-www-form-urlencoded', 'title=Buy+milk'],
			['text/plain', 'Buy milk'],
			['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="title"\r\n\r\nBuy milk\r\n--x--\r\n']
		] as const) {
			const reply = await send('/api/tasks', { method: 'POST', token: alice.token, headers: { 'content-type': type }, body })
			expect(reply.status).toBeGreaterThanOrEqual(400)
			expect(reply.status).toBeLessThan(500)
			expect(Object.keys(errorOf(reply)).sort()).toEqual(['detail', 'error_code'])
		}
		expect(await count(alice)).toBe('0')
	})

	test('a field of the wrong type; the detail names the field', async () => {
		const alice = await asUser(app)
		const cases: [Record<string, unknown>, string][] = [
			[{ title: 42 }, 'title'],
			[{ title: null }, 'title'],
			[{ title: ['x'] }, 'title'],
			[{ title: 'x', description: 42 }, 'description'],
			[{ title: 'x', description: { a: 1 } }, 'description'],
			[{ title: 'x', completed: 'yes' }, 'completed'],
			[{ title: 'x', completed: 1 }, 'completed']
		]
		for (const [body, field] of cases) {
			const reply = await alice.post('/api/tasks', body)
			expectError(reply, 422, 'VALIDATION_ERROR')
			expect(errorOf(reply).detail).toContain(field)
		}
		expect(await count(alice)).toBe('0')
	})

	test('text a database cannot store (NUL, lone surrogates) is refused, not a server error', async () => {
		const alice = await asUser(app)
		const unstorable = [
			'{"title":"a\\u0000b"}',
			'{"title":"\\ud800"}',
			'{"title":"ok","description":"\\u0000"}',
			'{"title":"ok","description":"\\udfff x"}'
		]
		for (const body of unstorable) expectError(await alice.post('/api/tasks', body), 422, 'VALIDATION_ERROR')
		expect(await count(alice)).toBe('0')
	})

	test('deeply nested JSON is parsed or refused, never a server error', async () => {
		const alice = await asUser(app)
		const depth = 10_000
		const deep = `{"title":"Deep","extra":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`
		const created = await alice.post('/api/tasks', deep)
		expect(created.status).toBe(201)
		expect(taskOf(created).title).toBe('Deep')
		expectError(await alice.post('/api/tasks', `${'['.repeat(30_000)}${']'.repeat(30_000)}`), 422, 'VALIDATION_ERROR')
	})

	test('PUT and PATCH with a bad body change nothing', async () => {
		const alice = await asUser(app)
		const task = taskOf(await alice.post('/api/tasks', { title: 'Stable', description: 'Kept' }))
		for (const body of ['{', '[]', 'null', '"x"', JSON.stringify({ title: 5 }), JSON.stringify({ title: 'x', completed: 'no' })]) {
			expectError(await alice.put(`/api/tasks/${task.id}`, body), 422, 'VALIDATION_ERROR')
			expectError(await alice.patch(`/api/tasks/${task.id}/complete`, body), 422, 'VALIDATION_ERROR')
		}
		expect((await alice.get(`/api/tasks/${task.id}`)).body).toEqual(task)
	})
})

describe('An id that is not a positive 32-bit integer: 404 RESOURCE_NOT_FOUND', () => {
	const ids = ['0', '-1', '1.5', 'abc', '2147483648', '99999999999999999999']
	ids.push('1e3', '0x10', '-0', 'NaN', 'Infinity', '1%20', '%201', '1abc', '00')
	for (const id of ids)
		test(`/api/tasks/${id}`, async () => {
			const alice = await asUser(app)
			const path = `/api/tasks/${id}`
			expectError(await alice.get(path), 404, 'RESOURCE_NOT_FOUND')
			expectError(await alice.put(path, { title: 'Valid' }), 404, 'RESOURCE_NOT_FOUND')
			expectError(await alice.patch(`${path}/complete`, { completed: true }), 404, 'RESOURCE_NOT_FOUND')
			expectError(await alice.delete(path), 404, 'RESOURCE_NOT_FOUND')
		})

	test('the largest 32-bit id is an id like any other: 404 when it does not exist', async () => {
		const alice = await asUser(app)
		const path = '/api/tasks/2147483647'
		expectError(await alice.get(path), 404, 'RESOURCE_NOT_FOUND')
		expectError(await alice.put(path, { title: 'Valid' }), 404, 'RESOURCE_NOT_FOUND')
		expectError(await alice.patch(`${path}/complete`, { completed: false }), 404, 'RESOURCE_NOT_FOUND')
		expectError(await alice.delete(path), 404, 'RESOURCE_NOT_FOUND')
	})

	test('the body of a bad id is the body of an id that never existed', async () => {
		const alice = await asUser(app)
		const never = await alice.get('/api/tasks/2147483647')
		for (const id of ['0', 'abc', '2147483648']) expect((await alice.get(`/api/tasks/${id}`)).body).toEqual(never.body)
	})
})

describe('Every response carries X-Request-Id', () => {
	test('on successes, errors, health, docs and preflight', async () => {
		const alice = await asUser(app)
		const task = taskOf(await alice.post('/api/tasks', { title: 'Ids' }))
		const replies: Reply[] = [
			await alice.get('/api/tasks'),
			await alice.post('/api/tasks', { title: 'Another' }),
			await alice.get(`/api/tasks/${task.id}`),
			await alice.put(`/api/tasks/${task.id}`, { title: 'Ids' }),
			await alice.patch(`/api/tasks/${task.id}/complete`, { completed: true }),
			await alice.delete(`/api/tasks/${task.id}`),
			await call(app, 'GET', '/api/tasks'),
			await alice.get('/api/tasks/abc'),
			await alice.get('/nowhere'),
			await alice.delete('/api/tasks'),
			await alice.post('/api/tasks', '{'),
			await alice.post('/api/tasks', bodyOfSize(LIMIT + 1)),
			await call(app, 'GET', '/health'),
			await call(app, 'GET', '/ready'),
			await call(app, 'GET', '/docs'),
			await call(app, 'GET', '/docs/json'),
			await call(app, 'OPTIONS', '/api/tasks', { headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } })
		]
		const seen = new Set<string>()
		for (const reply of replies) {
			const id = reply.headers.get('x-request-id')
			expect(id).toBeString()
			expect(id?.length).toBeGreaterThan(0)
			seen.add(id ?? '')
		}
		expect(seen.size).toBe(replies.length)
	})

	test('the caller`s sane id is sent back, on successes and on errors', async () => {
		const alice = await asUser(app)
		for (const id of ['abc-123', crypto.randomUUID(), 'req_1.2:3', 'A'.repeat(64)]) {
			expect((await alice.get('/api/tasks', undefined, { 'x-request-id': id })).headers.get('x-request-id')).toBe(id)
			const refused = await call(app, 'GET', '/api/tasks', { headers: { 'x-request-id': id } })
			expect(refused.headers.get('x-request-id')).toBe(id)
			expect((await alice.get('/api/tasks/abc', undefined, { 'x-request-id': id })).headers.get('x-request-id')).toBe(id)
			expect((await alice.post('/api/tasks', '{', { 'x-request-id': id })).headers.get('x-request-id')).toBe(id)
		}
	})

	test('an insane one is replaced by an id of the server`s own', async () => {
		const alice = await asUser(app)
		for (const insane of ['has spaces', 'x'.repeat(1000), '<script>alert(1)</script>', 'a"b', 'tab\tin', "quote'id", '{}', '']) {
			const reply = await alice.get('/api/tasks', undefined, { 'x-request-id': insane })
			const id = reply.headers.get('x-request-id') ?? ''
			expect(reply.status).toBe(200)
			expect(id).not.toBe(insane)
			expect(id).toMatch(/^[\w.:@/+=-]{8,128}$/)
		}
	})
})

describe('The database unreachable: 503 SERVICE_UNAVAILABLE', () => {
	test('every task route answers 503, never 500', async () => {
		const token = await sign({ sub: 'user-offline' })
		for (const [method, path, body] of [
			['GET', '/api/tasks'],
			['POST', '/api/tasks', { title: 'Lost?' }],
			['GET', '/api/tasks/1'],
			['PUT', '/api/tasks/1', { title: 'x' }],
			['PATCH', '/api/tasks/1/complete', { completed: true }],
			['DELETE', '/api/tasks/1']
		] as [string, string, unknown?][])
			expectError(await call(offline, method, path, { token, body }), 503, 'SERVICE_UNAVAILABLE')
	})

	test('authentication and validation still answer first', async () => {
		expectError(await call(offline, 'GET', '/api/tasks'), 401, 'AUTHENTICATION_REQUIRED')
		const token = await sign({ sub: 'user-offline' })
		expectError(await call(offline, 'POST', '/api/tasks', { token, body: { title: '' } }), 422, 'VALIDATION_ERROR')
	})
})

describe('Anything unexpected: 500 INTERNAL_ERROR, details in the log only', () => {
	test('no stack, no SQL, no secret in the body; the log has the details and the request id', async () => {
		const logged: Record<string, unknown>[] = []
		const broken = await withoutTasksTable()
		try {
			const failing = createApp({
				database: broken.database,
				verify: createVerifier({ secret: SECRET }),
				config: { corsOrigins: [ORIGIN] },
				log: (fields) => logged.push(fields)
			})
			const token = await sign({ sub: 'user-unexpected' })
			for (const [method, body] of [['GET'], ['POST', { title: 'x' }]] as [string, unknown?][]) {
				const reply = await call(failing, method, '/api/tasks', { token, body, headers: { 'x-request-id': `unexpected-${method}` } })
				expectError(reply, 500, 'INTERNAL_ERROR')
				for (const leak of ['tasks', 'relation', 'select', 'insert', 'nowhere', SECRET, ' at ', '.ts:'])
					expect(reply.text.toLowerCase()).not.toContain(leak.toLowerCase())
				const entry = logged.find((fields) => fields.request_id === `unexpected-${method}` && fields.level === 'error')
				expect(JSON.stringify(entry)).toContain('tasks')
				// undefined_table: why the query failed, which Drizzle's message leaves out.
				expect(entry?.code).toBe('42P01')
			}
		} finally {
			await broken.restore()
		}
	})
})

describe('No request, however malformed, is answered with a 5xx', () => {
	// Seeded, so a run is repeatable; the cases that matter most are spelled out above.
	const RUNS = { numRuns: 50, seed: 20260118 }

	test('any JSON value as a body of POST, PUT and PATCH', async () => {
		const alice = await asUser(app)
		const task = taskOf(await alice.post('/api/tasks', { title: 'Target' }))
		await fc.assert(
			fc.asyncProperty(fc.jsonValue(), fc.constantFrom('POST', 'PUT', 'PATCH'), async (value, method) => {
				const path = method === 'POST' ? '/api/tasks' : method === 'PUT' ? `/api/tasks/${task.id}` : `/api/tasks/${task.id}/complete`
				const reply = await call(app, method, path, { token: alice.token, body: JSON.stringify(value) })
				expect(reply.status).toBeLessThan(500)
			}),
			RUNS
		)
	})

	test('any task-like object as a body', async () => {
		const alice = await asUser(app)
		const text = fc.string({ maxLength: 300 })
		const field = fc.oneof(text, fc.string({ unit: 'binary', maxLength: 300 }), fc.jsonValue({ maxDepth: 2 }))
		await fc.assert(
			fc.asyncProperty(fc.record({ title: field, description: field, completed: field }, { requiredKeys: [] }), async (body) => {
				const reply = await alice.post('/api/tasks', body)
				expect([201, 422]).toContain(reply.status)
			}),
			RUNS
		)
	})

	test('any text as an id', async () => {
		const alice = await asUser(app)
		await fc.assert(
			fc.asyncProperty(fc.string({ minLength: 1 }), async (id) => {
				const reply = await alice.get(`/api/tasks/${encodeURIComponent(id)}`)
				expect(reply.status).toBeLessThan(500)
			}),
			RUNS
		)
	})

	test('any query string', async () => {
		const alice = await asUser(app)
		const key = fc.constantFrom('completed', 'q', 'sort', 'order', 'limit', 'offset', 'other')
		const value = fc.oneof(fc.string(), fc.integer().map(String), fc.bigInt().map(String), fc.double().map(String))
		await fc.assert(
			fc.asyncProperty(fc.array(fc.tuple(key, value), { maxLength: 4 }), async (pairs) => {
				const query = new URLSearchParams(pairs).toString()
				const reply = await alice.get(`/api/tasks?${query}`)
				expect(reply.status).toBeLessThan(500)
			}),
			RUNS
		)
	})
})
