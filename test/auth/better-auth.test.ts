import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { JWSAlgorithms } from 'better-auth/plugins/jwt'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { call, errorOf, sign, taskOf, testDatabase } from '../support/app'
import { type AuthUser, jwksApp, startBetterAuth } from '../support/better-auth'

// Set up before the first test, outside the per-test timeout.
const [auth, other] = await Promise.all([startBetterAuth(), startBetterAuth(), testDatabase()])
afterAll(() => Promise.all([auth.close(), other.close()]))

type App = Awaited<ReturnType<typeof jwksApp>>

async function expectRefused(app: App, token: string) {
	const reply = await call(app, 'GET', '/api/tasks', { token })
	expect(reply.status).toBe(401)
	expect(reply.headers.get('www-authenticate')).toBe('Bearer')
	expect(errorOf(reply).error_code).toBe('AUTHENTICATION_REQUIRED')
	return reply
}

// Every route with one token, and the tasks land under the Better Auth user's id.
async function driveEveryRoute(app: App, token: string, userId: string) {
	const created = await call(app, 'POST', '/api/tasks', { token, body: { title: 'Buy milk' } })
	expect(created.status).toBe(201)
	expect(taskOf(created).user_id).toBe(userId)
	const id = taskOf(created).id
	expect(created.headers.get('location')).toBe(`/api/tasks/${id}`)

	const list = await call(app, 'GET', '/api/tasks', { token })
	expect(list.status).toBe(200)
	expect(list.body).toEqual([created.body])
	expect(list.headers.get('x-total-count')).toBe('1')

	expect((await call(app, 'GET', `/api/tasks/${id}`, { token })).body).toEqual(created.body)
	const put = await call(app, 'PUT', `/api/tasks/${id}`, { token, body: { title: 'Buy oat milk', description: '2 l' } })
	expect(put.status).toBe(200)
	expect(put.body).toMatchObject({ title: 'Buy oat milk', description: '2 l', completed: false, user_id: userId })
	const done = await call(app, 'PATCH', `/api/tasks/${id}/complete`, { token, body: { completed: true } })
	expect(done.status).toBe(200)
	expect(taskOf(done).completed).toBe(true)
	expect((await call(app, 'DELETE', `/api/tasks/${id}`, { token })).status).toBe(204)
	expect((await call(app, 'GET', `/api/tasks/${id}`, { token })).status).toBe(404)
}

// Every algorithm the installed Better Auth can sign with: the Record fails the type check when an
// upgrade adds one, so a new algorithm cannot go untested.
const SIGNING_ALGORITHMS = Object.keys({ EdDSA: 0, ES256: 0, ES512: 0, PS256: 0, RS256: 0 } satisfies Record<JWSAlgorithms, 0>) as JWSAlgorithms[]

describe('Authentication with a real Better Auth (JWT plugin, BETTER_AUTH_URL)', () => {
	let user: AuthUser
	beforeAll(async () => {
		user = await auth.signUp()
	})

	test('the token from /api/auth/token drives every route as that user', async () => {
		const token = await auth.token(user)
		expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', kid: expect.any(String) })
		expect(decodeJwt(token)).toMatchObject({ sub: user.id, iss: auth.url, aud: auth.url })
		await driveEveryRoute(await jwksApp(auth.url), token, user.id)
	})

	test('the set-auth-jwt header of get-session is accepted too', async () => {
		const app = await jwksApp(auth.url)
		const created = await call(app, 'POST', '/api/tasks', { token: await auth.sessionJwt(user), body: { title: 'x' } })
		expect(created.status).toBe(201)
		expect(taskOf(created).user_id).toBe(user.id)
	})

	test("a user sees only their own tasks, whoever's token they started from", async () => {
		const app = await jwksApp(auth.url)
		const [alice, bob] = [await auth.signUp(), await auth.signUp()]
		const aliceToken = await auth.token(alice)
		const task = taskOf(await call(app, 'POST', '/api/tasks', { token: aliceToken, body: { title: 'mine' } }))
		const bobToken = await auth.token(bob)
		expect((await call(app, 'GET', `/api/tasks/${task.id}`, { token: bobToken })).status).toBe(404)
		expect((await call(app, 'GET', '/api/tasks', { token: bobToken })).body).toEqual([])
	})

	test('HS256 tokens signed with BETTER_AUTH_SECRET stay accepted next to the JWKS', async () => {
		const app = await jwksApp(auth.url)
		const reply = await call(app, 'POST', '/api/tasks', { token: await sign({ sub: 'hs-user' }), body: { title: 'x' } })
		expect(reply.status).toBe(201)
		expect(taskOf(reply).user_id).toBe('hs-user')
	})

	test('without BETTER_AUTH_SECRET an HS256 token is refused, however it is signed', async () => {
		const app = await jwksApp(auth.url, { secret: null })
		await expectRefused(app, await sign({ sub: 'hs-user' }))
		expect((await call(app, 'GET', '/api/tasks', { token: await auth.token(user) })).status).toBe(200)
	})

	test('an expired token is refused; one within the 30 s clock skew is not', async () => {
		const app = await jwksApp(auth.url)
		const now = Math.floor(Date.now() / 1000)
		const expired = await auth.sign({ sub: user.id, iat: now - 3600, exp: now - 60 })
		const reply = await expectRefused(app, expired)
		expect(errorOf(reply).detail).toContain('expired')
		const skewed = await auth.sign({ sub: user.id, iat: now - 3600, exp: now - 5 })
		expect((await call(app, 'GET', '/api/tasks', { token: skewed })).status).toBe(200)
	})

	test('a token not yet valid (nbf in the future) is refused', async () => {
		const now = Math.floor(Date.now() / 1000)
		await expectRefused(await jwksApp(auth.url), await auth.sign({ sub: user.id, nbf: now + 600 }))
	})

	test('a token of the right key that names no user is refused', async () => {
		const reply = await expectRefused(await jwksApp(auth.url), await auth.sign({ email: user.email }))
		expect(errorOf(reply).detail).toBe('The token names no user.')
	})

	test('a key-set token must name its user in sub: user.id or session.userId alone are refused', async () => {
		const app = await jwksApp(auth.url)
		await expectRefused(app, await auth.sign({ user: { id: user.id } }))
		await expectRefused(app, await auth.sign({ session: { userId: user.id } }))
		await expectRefused(app, await auth.sign({ sub: '', user: { id: user.id } }))
	})

	test('BETTER_AUTH_URL in any form Better Auth takes as its baseURL: upper-case scheme, a trailing slash, its /api/auth path', async () => {
		const token = await auth.token(user)
		for (const url of [auth.url.replace('http://', 'HTTP://'), `${auth.url}/`, `${auth.url}/api/auth`, `${auth.url}/api/auth/`])
			expect({ url, status: (await call(await jwksApp(url), 'GET', '/api/tasks', { token })).status }).toEqual({ url, status: 200 })
	})

	test('iss and aud must be the Better Auth URL', async () => {
		const app = await jwksApp(auth.url)
		const wrongAudience = await expectRefused(app, await auth.sign({ sub: user.id, aud: 'https://elsewhere.example' }))
		expect(errorOf(wrongAudience).detail).toBe('The bearer token\'s "aud" claim is not the one this API expects.')
		const wrongIssuer = await expectRefused(app, await auth.sign({ sub: user.id, iss: 'https://elsewhere.example' }))
		expect(errorOf(wrongIssuer).detail).toBe('The bearer token\'s "iss" claim is not the one this API expects.')
	})

	test('JWT_ISSUER and JWT_AUDIENCE replace the URL as the expected iss and aud', async () => {
		const app = await jwksApp(auth.url, { issuer: 'https://issuer.example', audience: 'todo-api' })
		const custom = await auth.sign({ sub: user.id, iss: 'https://issuer.example', aud: 'todo-api' })
		expect((await call(app, 'GET', '/api/tasks', { token: custom })).status).toBe(200)
		await expectRefused(app, await auth.token(user))
	})

	test('a token from another Better Auth instance, with other keys, is refused', async () => {
		const app = await jwksApp(auth.url)
		const stranger = await other.signUp()
		await expectRefused(app, await other.token(stranger))
		// Even when it claims to come from ours: its kid is not in our JWKS.
		await expectRefused(app, await other.sign({ sub: stranger.id, iss: auth.url, aud: auth.url }))
	})

	test.each(SIGNING_ALGORITHMS)("a token signed by the JWKS's %s key drives every route as its user", async (alg) => {
		const signer = await startBetterAuth({ alg })
		try {
			const signed = await signer.signUp()
			const token = await signer.token(signed)
			expect(decodeProtectedHeader(token).alg).toBe(alg)
			await driveEveryRoute(await jwksApp(signer.url), token, signed.id)
		} finally {
			await signer.close()
		}
	})
})
