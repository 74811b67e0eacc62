import { describe, expect, test } from 'bun:test'
import { loadConfig } from '../../src/config'
import { asUser, call, ORIGIN, type Reply, SECRET, testApp } from '../support/app'

// testApp() allows exactly ORIGIN, as CORS_ORIGINS would.
const app = await testApp()

const list = (value: string | null) =>
	(value ?? '')
		.split(',')
		.map((item) => item.trim().toLowerCase())
		.filter(Boolean)

const preflight = (path: string, origin: string, method: string, to = app) =>
	call(to, 'OPTIONS', path, {
		headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization,content-type' }
	})

function expectAllowed(reply: Reply) {
	expect(reply.headers.get('access-control-allow-origin')).toBe(ORIGIN)
}

function expectExposed(reply: Reply) {
	const exposed = list(reply.headers.get('access-control-expose-headers'))
	for (const header of ['x-total-count', 'x-request-id', 'location']) expect(exposed).toContain(header)
}

describe('CORS', () => {
	describe('a preflight from an allowed origin', () => {
		const routes: [string, string][] = [
			['/api/tasks', 'GET'],
			['/api/tasks', 'POST'],
			['/api/tasks/1', 'GET'],
			['/api/tasks/1', 'PUT'],
			['/api/tasks/1', 'DELETE'],
			['/api/tasks/1/complete', 'PATCH']
		]
		for (const [path, method] of routes)
			test(`${method} ${path}: allowed, without a token`, async () => {
				const reply = await preflight(path, ORIGIN, method)
				expect(reply.status).toBeGreaterThanOrEqual(200)
				expect(reply.status).toBeLessThan(300)
				expectAllowed(reply)
				expect(list(reply.headers.get('access-control-allow-methods'))).toContain(method.toLowerCase())
				const headers = list(reply.headers.get('access-control-allow-headers'))
				expect(headers).toContain('authorization')
				expect(headers).toContain('content-type')
				expect(reply.text).toBe('')
				expect(reply.headers.get('content-type')).toBeNull()
				expect(reply.headers.get('access-control-max-age')).toBe('600')
			})

		test('to a path that has no route: allowed, so that the page reads the 404 its request gets', async () => {
			const reply = await preflight('/api/nope', ORIGIN, 'GET')
			expect(reply.status).toBe(204)
			expectAllowed(reply)
			const answer = await call(app, 'GET', '/api/nope', { headers: { origin: ORIGIN } })
			expect(answer.status).toBe(404)
			expectAllowed(answer)
		})

		test('an OPTIONS that is no preflight (no Access-Control-Request-Method) gets the 405 any method would, which the page reads', async () => {
			const reply = await call(app, 'OPTIONS', '/api/tasks', { headers: { origin: ORIGIN } })
			expect(reply.status).toBe(405)
			expectAllowed(reply)
		})

		test('allows every method of the contract', async () => {
			const methods = list((await preflight('/api/tasks', ORIGIN, 'POST')).headers.get('access-control-allow-methods'))
			for (const method of ['get', 'post', 'put', 'patch', 'delete']) expect(methods).toContain(method)
		})
	})

	describe('responses to an allowed origin', () => {
		test('allow the origin and expose X-Total-Count, X-Request-Id and Location', async () => {
			const alice = await asUser(app)
			const headers = { origin: ORIGIN }
			const created = await alice.post('/api/tasks', { title: 'Cross-origin' }, headers)
			expect(created.status).toBe(201)
			expectAllowed(created)
			expectExposed(created)
			const listed = await alice.get('/api/tasks', undefined, headers)
			expectAllowed(listed)
			expectExposed(listed)
		})

		test('errors carry CORS headers too, so the frontend can read them', async () => {
			const alice = await asUser(app)
			const headers = { origin: ORIGIN }
			for (const reply of [
				await call(app, 'GET', '/api/tasks', { headers }),
				await alice.get('/api/tasks/2147483647', undefined, headers),
				await alice.post('/api/tasks', { title: '' }, headers),
				await alice.get('/nowhere', undefined, headers)
			]) {
				expect(reply.status).toBeGreaterThanOrEqual(400)
				expectAllowed(reply)
				expectExposed(reply)
			}
		})
	})

	describe('other origins get no Access-Control-Allow-Origin', () => {
		const others = [
			'http://evil.example',
			'https://localhost:3000',
			'http://localhost:3001',
			'http://localhost:30000',
			'http://localhost:3000.evil.example',
			'http://evil.localhost:3000',
			'null'
		]
		for (const origin of others)
			test(origin, async () => {
				const alice = await asUser(app)
				const preflighted = await preflight('/api/tasks', origin, 'POST')
				expect(preflighted.headers.get('access-control-allow-origin')).toBeNull()
				const listed = await alice.get('/api/tasks', undefined, { origin })
				expect(listed.headers.get('access-control-allow-origin')).toBeNull()
			})
	})

	test('several origins in CORS_ORIGINS: each is allowed as itself, and others still are not', async () => {
		const CORS_ORIGINS = `${ORIGIN}, https://todo.example.com:8443,https://staging.todo.example.com`
		const several = await testApp(undefined, { config: loadConfig({ BETTER_AUTH_SECRET: SECRET, CORS_ORIGINS }) })
		const alice = await asUser(several)
		const allowed = (reply: Reply) => reply.headers.get('access-control-allow-origin')
		for (const origin of [ORIGIN, 'https://todo.example.com:8443', 'https://staging.todo.example.com', 'https://todo.example.com']) {
			const preflighted = await preflight('/api/tasks', origin, 'POST', several)
			const listed = await alice.get('/api/tasks', undefined, { origin })
			const expected = origin === 'https://todo.example.com' ? null : origin
			expect({ origin, preflight: allowed(preflighted), list: allowed(listed) }).toEqual({ origin, preflight: expected, list: expected })
		}
	})

	test('credentials are not needed (tokens travel in a header), so none are offered', async () => {
		const reply = await preflight('/api/tasks', ORIGIN, 'POST')
		expect(reply.headers.get('access-control-allow-credentials')).not.toBe('true')
	})
})
