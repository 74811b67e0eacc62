import { afterAll, describe, expect, test } from 'bun:test'
import { base64url, decodeJwt, decodeProtectedHeader } from 'jose'
import { call, errorOf, sign, taskOf, tasksOf, testApp, testDatabase } from '../support/app'
import { jwksApp, startBetterAuth } from '../support/better-auth'

// Better Auth signs its cookie cache with its own secret, which the API shares as BETTER_AUTH_SECRET.
const [auth, foreign] = await Promise.all([
	startBetterAuth(),
	startBetterAuth({ secret: 'a-secret-this-api-does-not-know-of-at-all' }),
	testDatabase()
])
afterAll(() => Promise.all([auth.close(), foreign.close()]))

const app = await testApp()
const status = async (token: string) => (await call(app, 'GET', '/api/tasks', { token })).status

type Claims = Record<string, unknown>

// What a real session_data cookie carries, re-signed with one change, to probe one rule at a time.
async function resigned(patch: { session?: Claims; user?: Claims } = {}) {
	const { iat: _, exp: __, session, user, ...claims } = decodeJwt((await auth.signUp()).sessionData)
	return sign({
		...claims,
		session: { ...(session as Claims), ...patch.session },
		user: { ...(user as Claims), ...patch.user }
	})
}

describe('Authentication with the session cookie cache token (cookieCache.strategy "jwt")', () => {
	test('the session_data cookie of a real sign-up drives the API as that user', async () => {
		const user = await auth.signUp()
		expect(decodeProtectedHeader(user.sessionData).alg).toBe('HS256')
		const claims = decodeJwt(user.sessionData)
		expect(claims.sub).toBeUndefined()
		expect(claims).toMatchObject({ session: { userId: user.id }, user: { id: user.id } })

		const created = await call(app, 'POST', '/api/tasks', { token: user.sessionData, body: { title: 'From a cookie' } })
		expect(created.status).toBe(201)
		expect(taskOf(created).user_id).toBe(user.id)
		const list = await call(app, 'GET', '/api/tasks', { token: user.sessionData })
		expect(list.body).toEqual([created.body])
	})

	test('it is also accepted in JWKS mode, and names the same user as the JWT plugin token', async () => {
		const both = await jwksApp(auth.url)
		const user = await auth.signUp()
		await call(both, 'POST', '/api/tasks', { token: user.sessionData, body: { title: 'x' } })
		const list = await call(both, 'GET', '/api/tasks', { token: await auth.token(user) })
		expect(list.body).toHaveLength(1)
		expect(tasksOf(list)[0]?.user_id).toBe(user.id)
	})

	test('one signed with another secret is refused', async () => {
		expect(await status((await foreign.signUp()).sessionData)).toBe(401)
	})

	test('one whose claims were edited is refused', async () => {
		const [header, payload, signature] = (await auth.signUp()).sessionData.split('.')
		const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload ?? '')))
		claims.session.userId = claims.user.id = 'someone-else'
		expect(await status([header, base64url.encode(JSON.stringify(claims)), signature].join('.'))).toBe(401)
	})

	test('one whose session and user disagree, or that names no user, is refused', async () => {
		expect(await status(await resigned({ user: { id: 'someone-else' } }))).toBe(401)
		expect(await status(await resigned({ session: { userId: undefined }, user: { id: undefined } }))).toBe(401)
		expect(await status(await resigned({ session: { userId: '' }, user: { id: '' } }))).toBe(401)
		expect(await status(await resigned({ session: { userId: 42 }, user: { id: 42 } }))).toBe(401)
		expect(await status(await resigned({ session: { userId: 'x\0' }, user: { id: 'x\0' } }))).toBe(401)
		expect(await status(await resigned({ session: { userId: 'x\ud800' }, user: { id: 'x\ud800' } }))).toBe(401)
	})

	test("the session's own expiresAt is honoured", async () => {
		const past = new Date(Date.now() - 60_000).toISOString()
		const reply = await call(app, 'GET', '/api/tasks', { token: await resigned({ session: { expiresAt: past } }) })
		expect(reply.status).toBe(401)
		expect(errorOf(reply).detail).toContain('session')
		expect(await status(await resigned({ session: { expiresAt: 'not a date' } }))).toBe(401)
		expect(await status(await resigned())).toBe(200)
	})
})
