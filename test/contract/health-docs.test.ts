import { afterAll, describe, expect, test } from 'bun:test'
import { tmpdir } from 'node:os'
import { createApp } from '../../src/app'
import { createVerifier } from '../../src/auth'
import { openDatabase } from '../../src/database'
import { silentLog } from '../../src/log'
import { asUser, call, errorOf, newUser, ORIGIN, SECRET, sign, taskOf, testApp } from '../support/app'
import { rawExchange } from '../robustness/processes'

const app = await testApp()

// A real Postgres client pointed at a port nothing listens on: the database is unreachable.
const down = await openDatabase({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none', dataDir: tmpdir() })
const verify = createVerifier({ secret: SECRET })
const offline = createApp({ database: down, verify, config: { corsOrigins: [ORIGIN] }, log: silentLog })
afterAll(() => down.close())

// No auth on these: neither a missing nor a bad Authorization header changes the answer.
const unauthenticated: Record<string, string>[] = [
	{},
	{ authorization: 'Bearer garbage' },
	{ authorization: 'Basic dXNlcjpwYXNz' }
]

type Schema = {
	type?: string | string[]
	properties?: Record<string, Schema>
	required?: string[]
	items?: Schema
	anyOf?: Schema[]
	multipleOf?: number
	$ref?: string
}
type Operation = {
	parameters?: { name: string; in: string; schema?: Schema & { default?: unknown; description?: string } }[]
	requestBody?: { content?: Record<string, { schema?: Schema }> }
	responses?: Record<string, { content?: Record<string, { schema?: Schema }> }>
	security?: Record<string, string[]>[]
}
type OpenApi = {
	openapi: string
	paths: Record<string, Record<string, Operation>>
	components?: { schemas?: Record<string, Schema> }
}

const TASK_FIELDS = ['id', 'user_id', 'title', 'description', 'completed', 'created_at', 'updated_at']

// Fetched after the routes have served requests, as in production, where the document is
// usually first asked for long after start.
async function documentAfterUse(): Promise<OpenApi> {
	const alice = await asUser(app)
	const task = taskOf(await alice.post('/api/tasks', { title: 'Warm up' }))
	await alice.get('/api/tasks?limit=1')
	await alice.get(`/api/tasks/${task.id}`)
	await alice.put(`/api/tasks/${task.id}`, { title: 'Warm' })
	await alice.patch(`/api/tasks/${task.id}/complete`, { completed: true })
	await alice.delete(`/api/tasks/${task.id}`)
	return (await call(app, 'GET', '/docs/json')).body as OpenApi
}

const doc = await documentAfterUse()

const resolve = (schema: Schema | undefined): Schema | undefined => {
	const name = schema?.$ref?.split('/').pop()
	return name ? doc.components?.schemas?.[name] : schema
}
const jsonBody = (operation: Operation | undefined) => resolve(operation?.requestBody?.content?.['application/json']?.schema)
const jsonResponse = (operation: Operation | undefined, status: string) =>
	resolve(operation?.responses?.[status]?.content?.['application/json']?.schema)

describe('GET /health', () => {
	test('200 {"status":"ok"}, no auth', async () => {
		for (const headers of unauthenticated) {
			const reply = await call(app, 'GET', '/health', { headers })
			expect(reply.status).toBe(200)
			expect(reply.headers.get('content-type')).toBe('application/json')
			expect(reply.body).toEqual({ status: 'ok' })
		}
	})

	test('200 while the process runs, even with the database down', async () => {
		const reply = await call(offline, 'GET', '/health')
		expect(reply.status).toBe(200)
		expect(reply.body).toEqual({ status: 'ok' })
	})
})

describe('GET /ready', () => {
	test('200 when the database answers, no auth', async () => {
		for (const headers of unauthenticated) expect((await call(app, 'GET', '/ready', { headers })).status).toBe(200)
	})

	test('503 SERVICE_UNAVAILABLE when it does not', async () => {
		const reply = await call(offline, 'GET', '/ready')
		expect(reply.status).toBe(503)
		expect(reply.headers.get('content-type')).toBe('application/json')
		expect(reply.body).toMatchObject({ error_code: 'SERVICE_UNAVAILABLE' })
		expect(Object.keys(errorOf(reply)).sort()).toEqual(['detail', 'error_code'])
	})
})

describe('listening before the database has started (it was away)', () => {
	// The test database answers: only the start still to come (settle, migrations) can make these 503.
	test('/health and the docs answer; /ready and every /api route 503 until it is done, then serve', async () => {
		const { promise: startup, resolve } = Promise.withResolvers<void>()
		const starting = await testApp(undefined, { startup })
		const token = await sign({ sub: newUser() })
		expect((await call(starting, 'GET', '/health')).status).toBe(200)
		expect((await call(starting, 'GET', '/docs/json')).status).toBe(200)
		for (const [method, path, body] of [
			['GET', '/ready'],
			['GET', '/api/tasks'],
			['POST', '/api/tasks', { title: 'Too early' }],
			['GET', '/api/tasks/1'],
			['PATCH', '/api/tasks/1/complete', { completed: true }]
		] as const) {
			const reply = await call(starting, method, path, { token, body })
			expect(reply.status).toBe(503)
			expect(reply.body).toEqual({ detail: expect.any(String), error_code: 'SERVICE_UNAVAILABLE' })
			expect(reply.headers.get('x-request-id')).toBeString()
		}
		resolve()
		await startup
		expect((await call(starting, 'GET', '/ready')).status).toBe(200)
		expect((await call(starting, 'POST', '/api/tasks', { token, body: { title: 'In time' } })).status).toBe(201)
		expect((await call(starting, 'GET', '/api/tasks', { token })).body).toHaveLength(1)
	})

	test('an unknown route or a wrong method answers 404 or 405 meanwhile, as it will after', async () => {
		const { promise: startup, resolve } = Promise.withResolvers<void>()
		const starting = await testApp(undefined, { startup })
		const token = await sign({ sub: newUser() })
		const answers = () =>
			Promise.all(
				[
					['GET', '/api/nope'],
					['GET', '/api/tasks/1/2'],
					['DELETE', '/api/tasks'],
					['GET', '/api/tasks/1/complete'],
					['POST', '/ready']
				].map(async ([method = '', path = '']) => errorOf(await call(starting, method, path, { token })).error_code)
			)
		const expected = ['NOT_FOUND', 'NOT_FOUND', 'METHOD_NOT_ALLOWED', 'METHOD_NOT_ALLOWED', 'METHOD_NOT_ALLOWED']
		expect(await answers()).toEqual(expected)
		resolve()
		await startup
		expect(await answers()).toEqual(expected)
	})

	test('a page of an allowed origin reads those 503s, and its preflights pass', async () => {
		const { promise: startup, resolve } = Promise.withResolvers<void>()
		const starting = await testApp(undefined, { startup })
		const preflight = await call(starting, 'OPTIONS', '/api/tasks', {
			headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' }
		})
		expect(preflight.status).toBe(204)
		expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN)
		for (const path of ['/api/tasks', '/ready']) {
			const reply = await call(starting, 'GET', path, { headers: { origin: ORIGIN } })
			expect(reply.status).toBe(503)
			expect(reply.headers.get('access-control-allow-origin')).toBe(ORIGIN)
			expect(reply.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('x-request-id')
		}
		resolve()
	})

	test('a Host that is no valid host name changes none of those answers', async () => {
		const { promise: startup, resolve } = Promise.withResolvers<void>()
		const server = (await testApp(undefined, { startup })).listen({ port: 0, hostname: '127.0.0.1' })
		const url = `http://127.0.0.1:${server.server?.port}`
		const answer = async (host: string, path: string) => (await rawExchange(url, { method: 'GET', path, headers: { host } })).status
		try {
			for (const host of ['x:abc', '[::1', 'localhost:99999', `127.0.0.1:${server.server?.port}`])
				expect({
					host,
					answers: await Promise.all(['/health', '/nope', '/ready', '/ready?now', '/api/tasks'].map((path) => answer(host, path)))
				}).toEqual({ host, answers: [200, 404, 503, 503, 503] })
		} finally {
			resolve()
			await server.stop()
		}
	})
})

describe('GET /docs', () => {
	test('the OpenAPI UI, no auth', async () => {
		for (const headers of unauthenticated) {
			const reply = await call(app, 'GET', '/docs', { headers })
			expect(reply.status).toBe(200)
			expect(reply.headers.get('content-type')).toStartWith('text/html')
			expect(reply.text).toContain('docs/json')
		}
	})

	test('with or without the trailing slash, the UI asks for /docs/json', async () => {
		for (const path of ['/docs', '/docs/']) {
			const reply = await call(app, 'GET', path)
			const configuration = /data-configuration='([^']*)'/.exec(reply.text)?.[1] ?? '{}'
			const spec: unknown = JSON.parse(configuration).url
			expect(new URL(String(spec), `http://localhost${path}`).pathname).toBe('/docs/json')
		}
	})
})

describe('GET /docs/json: the OpenAPI document', () => {
	test('no auth, JSON, OpenAPI 3', async () => {
		for (const headers of unauthenticated) {
			const reply = await call(app, 'GET', '/docs/json', { headers })
			expect(reply.status).toBe(200)
			expect(reply.headers.get('content-type')).toBe('application/json')
			expect(reply.body).toMatchObject({ openapi: expect.stringMatching(/^3\./) })
		}
	})

	test('lists the six task routes, /health and /ready', () => {
		expect(Object.keys(doc.paths['/health'] ?? {})).toContain('get')
		expect(Object.keys(doc.paths['/ready'] ?? {})).toContain('get')
		expect(Object.keys(doc.paths['/api/tasks'] ?? {}).sort()).toEqual(['get', 'post'])
		expect(Object.keys(doc.paths['/api/tasks/{id}'] ?? {}).sort()).toEqual(['delete', 'get', 'put'])
		expect(Object.keys(doc.paths['/api/tasks/{id}/complete'] ?? {})).toEqual(['patch'])
	})

	test('the task routes declare bearer security', () => {
		for (const path of ['/api/tasks', '/api/tasks/{id}', '/api/tasks/{id}/complete'])
			for (const operation of Object.values(doc.paths[path] ?? {})) expect(operation.security?.length).toBeGreaterThan(0)
	})

	test('POST and PUT document the JSON body {title, description?, completed?}', () => {
		for (const operation of [doc.paths['/api/tasks']?.post, doc.paths['/api/tasks/{id}']?.put]) {
			const schema = jsonBody(operation)
			expect(Object.keys(schema?.properties ?? {}).sort()).toEqual(['completed', 'description', 'title'])
			expect(schema?.required).toEqual(['title'])
		}
	})

	test('PATCH .../complete documents the JSON body {completed}', () => {
		const schema = jsonBody(doc.paths['/api/tasks/{id}/complete']?.patch)
		expect(Object.keys(schema?.properties ?? {})).toEqual(['completed'])
		expect(schema?.required).toEqual(['completed'])
	})

	test('the task responses document the task', () => {
		const cases: [Operation | undefined, string][] = [
			[doc.paths['/api/tasks']?.post, '201'],
			[doc.paths['/api/tasks/{id}']?.get, '200'],
			[doc.paths['/api/tasks/{id}']?.put, '200'],
			[doc.paths['/api/tasks/{id}/complete']?.patch, '200']
		]
		for (const [operation, status] of cases)
			expect(Object.keys(jsonResponse(operation, status)?.properties ?? {}).sort()).toEqual([...TASK_FIELDS].sort())
		const list = jsonResponse(doc.paths['/api/tasks']?.get, '200')
		expect(list?.type).toBe('array')
		expect(Object.keys(resolve(list?.items)?.properties ?? {}).sort()).toEqual([...TASK_FIELDS].sort())
		expect(Object.keys(doc.paths['/api/tasks/{id}']?.delete?.responses ?? {})).toContain('204')
	})

	test("a task's id is documented as a whole number, never as a string", () => {
		const id = jsonResponse(doc.paths['/api/tasks/{id}']?.get, '200')?.properties?.id
		expect(id?.anyOf).toBeUndefined()
		expect(id?.type === 'integer' || (id?.type === 'number' && id.multipleOf === 1)).toBe(true)
	})

	test("each task route documents the errors of the contract's table, and 503; only routes of one task a 404", () => {
		const contract = [
			['/api/tasks', 'get', ['401', '422']],
			['/api/tasks', 'post', ['401', '413', '422']],
			['/api/tasks/{id}', 'get', ['401', '404']],
			['/api/tasks/{id}', 'put', ['401', '404', '413', '422']],
			['/api/tasks/{id}', 'delete', ['401', '404']],
			['/api/tasks/{id}/complete', 'patch', ['401', '404', '413', '422']]
		] as const
		for (const [path, method, errors] of contract) {
			const documented = Object.keys(doc.paths[path]?.[method]?.responses ?? {})
			const expected = [...errors, '503']
			expect(documented).toEqual(expect.arrayContaining(expected))
			for (const status of expected)
				expect(Object.keys(jsonResponse(doc.paths[path]?.[method], status)?.properties ?? {}).sort()).toEqual(['detail', 'error_code'])
			expect(documented.includes('404')).toBe(path !== '/api/tasks')
		}
	})

	// order's default depends on sort, which no single `default` can say; a schema default (UnionEnum's
	// own would be its first value, asc) would tell clients the wrong order. list-query.test.ts checks
	// that the API does what these words say.
	test('the list documents its query, and states the defaults of sort and order in words rather than as a default', () => {
		const parameters = doc.paths['/api/tasks']?.get?.parameters ?? []
		const query = parameters.filter((p) => p.in === 'query')
		expect(query.map((p) => p.name).sort()).toEqual(['completed', 'limit', 'offset', 'order', 'q', 'sort'])
		const sort = query.find((p) => p.name === 'sort')?.schema
		const order = query.find((p) => p.name === 'order')?.schema
		expect([sort?.default, order?.default]).toEqual([undefined, undefined])
		expect(sort?.description).toStartWith('created_at when left out')
		expect(order?.description).toStartWith('When left out: asc for sort=title (A to Z), else desc (newest first)')
	})

	test('the id routes document the id path parameter', () => {
		for (const path of ['/api/tasks/{id}', '/api/tasks/{id}/complete'])
			for (const operation of Object.values(doc.paths[path] ?? {}))
				expect(operation.parameters?.some((p) => p.name === 'id' && p.in === 'path')).toBe(true)
	})
})
