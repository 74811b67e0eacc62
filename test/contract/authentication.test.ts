import { describe, expect, test } from 'bun:test'
import { createHmac, randomBytes } from 'node:crypto'
import { type JWTPayload, SignJWT } from 'jose'
import { createVerifier } from '../../src/auth'
import { asUser, call, errorOf, newUser, type Reply, SECRET, sign, taskOf, testApp } from '../support/app'

const app = await testApp()

const now = () => Math.floor(Date.now() / 1000)
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

// Signs exactly the claims given (sign() from the support always adds iat and exp).
const signExactly = (claims: JWTPayload, { alg = 'HS256', secret = SECRET } = {}) =>
	new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret))

function expectRefused(reply: Reply) {
	expect(reply.status).toBe(401)
	expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer\b/)
	expect(reply.headers.get('content-type')).toBe('application/json')
	expect(Object.keys(errorOf(reply)).sort()).toEqual(['detail', 'error_code'])
	expect(errorOf(reply).error_code).toBe('AUTHENTICATION_REQUIRED')
	expect(errorOf(reply).detail).toBeString()
	expect(errorOf(reply).detail.length).toBeGreaterThan(0)
}

const listWith = (authorization: string) => call(app, 'GET', '/api/tasks', { headers: { authorization } })
const listWithToken = (token: string) => call(app, 'GET', '/api/tasks', { token })

describe('Authentication', () => {
	describe('every route under /api requires Authorization: Bearer <JWT>', () => {
		const routes: [string, string, unknown?][] = [
			['GET', '/api/tasks'],
			['POST', '/api/tasks', { title: 'Buy milk' }],
			['GET', '/api/tasks/1'],
			['PUT', '/api/tasks/1', { title: 'Buy milk' }],
			['DELETE', '/api/tasks/1'],
			['PATCH', '/api/tasks/1/complete', { completed: true }]
		]
		for (const [method, path, body] of routes)
			test(`${method} ${path} without a token: 401`, async () => {
				expectRefused(await call(app, method, path, { body }))
			})

		test('a task that exists is not shown, changed or deleted without a token', async () => {
			const alice = await asUser(app)
			const task = taskOf(await alice.post('/api/tasks', { title: 'Private' }))
			expectRefused(await call(app, 'GET', `/api/tasks/${task.id}`))
			expectRefused(await call(app, 'PUT', `/api/tasks/${task.id}`, { body: { title: 'Changed' } }))
			expectRefused(await call(app, 'PATCH', `/api/tasks/${task.id}/complete`, { body: { completed: true } }))
			expectRefused(await call(app, 'DELETE', `/api/tasks/${task.id}`))
			expect((await alice.get(`/api/tasks/${task.id}`)).body).toEqual(task)
		})

		test('401 comes before 422: a bad body without a token is refused as unauthenticated', async () => {
			expectRefused(await call(app, 'POST', '/api/tasks', { body: '{not json' }))
			expectRefused(await call(app, 'POST', '/api/tasks', { body: { title: '' } }))
			expectRefused(await call(app, 'POST', '/api/tasks', { body: [1, 2] }))
			expectRefused(await call(app, 'PUT', '/api/tasks/1', { body: { completed: 'yes' } }))
			expectRefused(await call(app, 'PATCH', '/api/tasks/1/complete', { body: {} }))
		})

		test('401 comes before 422: a bad query without a token is refused as unauthenticated', async () => {
			expectRefused(await call(app, 'GET', '/api/tasks?limit=0&sort=nope'))
		})

		test('401 comes before 404: an id that does not exist or is not an id, without a token', async () => {
			for (const id of ['2147483647', '0', 'abc', '2147483648', '99999999999999999999']) {
				expectRefused(await call(app, 'GET', `/api/tasks/${id}`))
				expectRefused(await call(app, 'DELETE', `/api/tasks/${id}`))
			}
		})
	})

	describe('the Authorization header', () => {
		test('missing: 401', async () => {
			expectRefused(await call(app, 'GET', '/api/tasks'))
		})

		test('another scheme than Bearer: 401', async () => {
			const token = await sign({ sub: newUser() })
			expectRefused(await listWith(`Basic ${Buffer.from('user:password').toString('base64')}`))
			expectRefused(await listWith(`Token ${token}`))
			expectRefused(await listWith(token))
		})

		test('Bearer with an empty token: 401', async () => {
			expectRefused(await listWith('Bearer'))
			expectRefused(await listWith('Bearer '))
		})

		test('Bearer with garbage: 401', async () => {
			for (const garbage of ['garbage', 'a.b.c', 'x.y', '...', 'eyJhbGciOiJIUzI1NiJ9.e30', '!!!', 'Ã©Ã©'])
				expectRefused(await listWith(`Bearer ${garbage}`))
		})

		test('a well-formed token is accepted: 200', async () => {
			const token = await sign({ sub: newUser() })
			expect((await listWith(`Bearer ${token}`)).status).toBe(200)
		})
	})

	describe('accepted: HS256 signed with BETTER_AUTH_SECRET, nothing else', () => {
		test('signed with another secret: 401', async () => {
			const forged = await sign({ sub: newUser() }, { secret: 'another-secret-that-is-also-32-bytes-long' })
			expectRefused(await listWithToken(forged))
		})

		test('alg none (unsigned): 401', async () => {
			const payload = { sub: newUser(), iat: now(), exp: now() + 3600 }
			for (const alg of ['none', 'None', 'NONE'])
				expectRefused(await listWithToken(`${base64url({ alg, typ: 'JWT' })}.${base64url(payload)}.`))
		})

		test('a valid token whose payload was changed after signing: 401', async () => {
			const [header, , signature] = (await sign({ sub: newUser() })).split('.')
			const tampered = base64url({ sub: 'someone-else', iat: now(), exp: now() + 3600 })
			expectRefused(await listWithToken(`${header}.${tampered}.${signature}`))
		})

		test("a valid token with its signature's last character changed: 401, padded or not", async () => {
			const token = await sign({ sub: newUser() })
			const others = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].filter(
				(character) => character !== token.at(-1)
			)
			for (const character of others) {
				expectRefused(await listWithToken(token.slice(0, -1) + character))
				expectRefused(await listWithToken(`${token.slice(0, -1) + character}=`))
			}
		})

		test('a valid token with base64 padding kept, as a hand-made one may: accepted', async () => {
			// An HS256 signature is 32 bytes: 43 characters, and one "=" of padding.
			const token = await sign({ sub: newUser() })
			expect((await listWithToken(`${token}=`)).status).toBe(200)
		})

		test('padding inside the token, where the header syntax (RFC 6750) has none, under a valid signature: 401', async () => {
			// 28 bytes of header: 38 characters, and two "=" of padding.
			const header = `${Buffer.from('{"alg":"HS256","typ":"JWT" }').toString('base64url')}==`
			const signed = `${header}.${base64url({ sub: newUser(), iat: now(), exp: now() + 3600 })}`
			const token = `${signed}.${createHmac('sha256', SECRET).update(signed).digest('base64url')}`
			expect((await createVerifier({ secret: SECRET })(token)).userId).toBeString()
			expectRefused(await listWithToken(token))
		})

		test('a valid signature under an alg header that was changed: 401', async () => {
			const [, payload, signature] = (await sign({ sub: newUser() })).split('.')
			for (const alg of ['HS384', 'HS512', 'RS256', 'ES256', 'EdDSA'])
				expectRefused(await listWithToken(`${base64url({ alg, typ: 'JWT' })}.${payload}.${signature}`))
		})

		test('signed with the right secret but HS384 or HS512: 401', async () => {
			for (const alg of ['HS384', 'HS512'])
				expectRefused(await listWithToken(await signExactly({ sub: newUser(), exp: now() + 3600 }, { alg })))
		})
	})

	describe('the token must carry a non-empty string sub', () => {
		test('no sub: 401', async () => {
			expectRefused(await listWithToken(await sign({})))
		})

		test('empty sub: 401', async () => {
			expectRefused(await listWithToken(await sign({ sub: '' })))
		})

		test('a sub that is not a string: 401', async () => {
			for (const sub of [123, true, ['user-1'], { id: 'user-1' }, null])
				expectRefused(await listWithToken(await signExactly({ sub, exp: now() + 3600 } as unknown as JWTPayload)))
		})

		test('a sub the database cannot store as sent (NUL, a lone surrogate): 401, on every route', async () => {
			for (const sub of [`${newUser()}\0`, `${newUser()}\ud800`]) {
				const token = await sign({ sub })
				for (const [method, path, body] of [
					['GET', '/api/tasks'],
					['POST', '/api/tasks', { title: 'Mine?' }],
					['GET', '/api/tasks/1'],
					['DELETE', '/api/tasks/1']
				] as const)
					expectRefused(await call(app, method, path, { token, body }))
			}
		})

		test('a user id of up to 255 characters is a user; a longer one: 401, on every route', async () => {
			// Characters as in a title: an emoji is one, though JavaScript counts it as two.
			const named = newUser()
			for (const longest of [newUser().padEnd(255, 'x'), named + '😀'.repeat(255 - named.length)]) {
				const user = await asUser(app, longest)
				expect((await user.post('/api/tasks', { title: 'Mine' })).status).toBe(201)
				expect((await user.get('/api/tasks')).body).toHaveLength(1)
			}
			// 2,800 random characters do not fit in the index on a user's tasks, whatever the limit.
			const tooLong = [newUser().padEnd(256, 'x'), `x${'😀'.repeat(255)}`, randomBytes(2_100).toString('base64url')]
			const tokens = await Promise.all([
				...tooLong.map((sub) => sign({ sub })),
				signExactly({ session: { userId: tooLong[0] }, user: { id: tooLong[0] }, exp: now() + 3600 })
			])
			for (const token of tokens)
				for (const [method, path, body] of [
					['GET', '/api/tasks'],
					['POST', '/api/tasks', { title: 'Mine?' }],
					['GET', '/api/tasks/1']
				] as const)
					expectRefused(await call(app, method, path, { token, body }))
		})

		test('a lone surrogate in sub does not reach the user whose id has U+FFFD in its place', async () => {
			const owner = await asUser(app, `${newUser()}\ufffd`)
			expect((await owner.post('/api/tasks', { title: 'Only mine' })).status).toBe(201)
			expectRefused(await listWithToken(await sign({ sub: owner.sub.replace('\ufffd', '\ud800') })))
		})
	})

	describe('an exp in the future (30 s of clock skew allowed)', () => {
		test('exp missing: 401', async () => {
			expectRefused(await listWithToken(await signExactly({ sub: newUser(), iat: now() })))
		})

		test('exp that is not a number: 401', async () => {
			const exp = String(now() + 3600) as unknown as number
			expectRefused(await listWithToken(await signExactly({ sub: newUser(), exp })))
		})

		test('expired beyond the skew: 401', async () => {
			for (const ago of [31 + 5, 3600])
				expectRefused(await listWithToken(await signExactly({ sub: newUser(), iat: now() - 7200, exp: now() - ago })))
		})

		test('expired within the skew: accepted', async () => {
			const token = await signExactly({ sub: newUser(), iat: now() - 60, exp: now() - 10 })
			expect((await listWithToken(token)).status).toBe(200)
		})
	})

	describe('nbf, when present, must have passed', () => {
		test('nbf in the future, even within the skew exp gets: 401', async () => {
			for (const ahead of [600, 10])
				expectRefused(await listWithToken(await signExactly({ sub: newUser(), nbf: now() + ahead, exp: now() + 3600 })))
		})

		test('nbf now or in the past: accepted', async () => {
			for (const ago of [0, 60]) {
				const token = await signExactly({ sub: newUser(), nbf: now() - ago, exp: now() + 3600 })
				expect((await listWithToken(token)).status).toBe(200)
			}
		})
	})

	describe('the user id comes from the token alone', () => {
		test('user_id in the body is ignored: the task belongs to sub', async () => {
			const alice = await asUser(app)
			const created = await alice.post('/api/tasks', { title: 'Mine', user_id: 'someone-else' })
			expect(created.status).toBe(201)
			expect(taskOf(created).user_id).toBe(alice.sub)
			const put = await alice.put(`/api/tasks/${taskOf(created).id}`, { title: 'Still mine', user_id: 'someone-else' })
			expect(taskOf(put).user_id).toBe(alice.sub)
		})

		test('user_id in the query is ignored: the list is the caller`s', async () => {
			const alice = await asUser(app)
			const bob = await asUser(app)
			const mine = taskOf(await alice.post('/api/tasks', { title: 'Alice task' }))
			await bob.post('/api/tasks', { title: 'Bob task' })
			for (const key of ['user_id', 'userId', 'sub']) {
				const list = await alice.get(`/api/tasks?${key}=${encodeURIComponent(bob.sub)}`)
				expect(list.status).toBe(200)
				expect(list.body).toEqual([mine])
			}
		})

		test('two subs that differ only in case are two users', async () => {
			const sub = `Case-${crypto.randomUUID()}`
			const upper = await asUser(app, sub)
			const lower = await asUser(app, sub.toLowerCase())
			const task = taskOf(await upper.post('/api/tasks', { title: 'Upper' }))
			expect((await lower.get(`/api/tasks/${task.id}`)).status).toBe(404)
			expect((await lower.get('/api/tasks')).body).toEqual([])
		})

		test('the sub is stored exactly, whatever characters it holds', async () => {
			const sub = `ü/ser:${crypto.randomUUID()} with space`
			const user = await asUser(app, sub)
			const created = await user.post('/api/tasks', { title: 'Odd sub' })
			expect(taskOf(created).user_id).toBe(sub)
			expect((await user.get('/api/tasks')).body).toEqual([created.body])
		})
	})

	test('JWT_ISSUER and JWT_AUDIENCE without BETTER_AUTH_URL: said at start to be ignored, and the secret\'s tokens are not held to them', async () => {
		const said: unknown[] = []
		const verify = createVerifier({ secret: SECRET, issuer: 'https://issuer.example', audience: 'todo-api' }, { log: (line) => said.push(line.msg) })
		expect(said).toEqual(['JWT_ISSUER and JWT_AUDIENCE apply to the tokens of BETTER_AUTH_URL, which is not set: ignored'])
		const token = await signExactly({ sub: 'issuer-less', exp: now() + 60, iss: 'https://elsewhere.example', aud: 'other' })
		expect((await verify(token)).userId).toBe('issuer-less')
		createVerifier({ secret: SECRET }, { log: (line) => said.push(line.msg) })
		expect(said).toHaveLength(1)
	})
})
