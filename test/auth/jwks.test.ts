import { afterAll, describe, expect, setSystemTime, test } from 'bun:test'
import { base64url, decodeProtectedHeader, generateKeyPair, type JWK, SignJWT } from 'jose'
import { call, errorOf, testDatabase } from '../support/app'
import { jwksApp, startBetterAuth } from '../support/better-auth'

// Set up before the first test, outside the per-test timeout.
const [auth] = await Promise.all([startBetterAuth(), testDatabase()])
afterAll(() => auth.close())

type App = Awaited<ReturnType<typeof jwksApp>>
const status = async (app: App, token: string) => (await call(app, 'GET', '/api/tasks', { token })).status

// A key set endpoint of the test's own on a random loopback port; an app pointed at its origin is
// told Better Auth's iss and aud.
const serve = (fetch: () => Response | Promise<Response>) => Bun.serve({ hostname: '127.0.0.1', port: 0, fetch })

// Keys are refreshed in the background, so what a refresh brings shows only in later answers: the
// token is tried until its answer is no longer `from`, or long enough for any refresh to have landed.
async function statusAfterRefresh(app: App, token: string, from: number) {
	for (let tries = 0; tries < 50; tries++) {
		const now = await status(app, token)
		if (now !== from) return now
		await Bun.sleep(10)
	}
	return from
}

async function publicKeys(): Promise<(JWK & { kid: string })[]> {
	return ((await (await fetch(`${auth.url}/api/auth/jwks`)).json()) as { keys: (JWK & { kid: string })[] }).keys
}

// A token shaped exactly like Better Auth's, signed with a key of our own making.
async function forged(kid: string, sub = 'victim') {
	const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
	return new SignJWT({ sub })
		.setProtectedHeader({ alg: 'EdDSA', kid })
		.setIssuer(auth.url)
		.setAudience(auth.url)
		.setIssuedAt()
		.setExpirationTime('15m')
		.sign(privateKey)
}

async function hs256(secret: Uint8Array, kid: string) {
	return new SignJWT({ sub: 'victim' })
		.setProtectedHeader({ alg: 'HS256', kid })
		.setIssuer(auth.url)
		.setAudience(auth.url)
		.setIssuedAt()
		.setExpirationTime('15m')
		.sign(secret)
}

describe('Authentication: the JWKS of BETTER_AUTH_URL', () => {
	test('keys are fetched lazily, once, and cached', async () => {
		const before = auth.jwksFetches()
		const app = await jwksApp(auth.url)
		expect(auth.jwksFetches()).toBe(before)
		const token = await auth.token(await auth.signUp())
		for (let i = 0; i < 5; i++) expect(await status(app, token)).toBe(200)
		expect(auth.jwksFetches()).toBe(before + 1)
	})

	test('key rotation: new tokens are accepted at once, even just after a fetch; old ones stay valid until they expire', async () => {
		const app = await jwksApp(auth.url)
		const user = await auth.signUp()
		const oldToken = await auth.token(user)
		expect(await status(app, oldToken)).toBe(200)

		await auth.rotateKey()
		const newToken = await auth.token(user)
		expect(decodeProtectedHeader(newToken).kid).not.toBe(decodeProtectedHeader(oldToken).kid)
		const before = auth.jwksFetches()
		expect(await status(app, newToken)).toBe(200)
		expect(auth.jwksFetches()).toBe(before + 1)
		expect(await status(app, oldToken)).toBe(200)
		expect(await status(app, newToken)).toBe(200)
	})

	test('a forged key under a known kid is refused', async () => {
		const app = await jwksApp(auth.url)
		const [known] = await publicKeys()
		expect(await status(app, await forged(known?.kid ?? ''))).toBe(401)
	})

	test('a flood of unknown kids fetches the JWKS at most once per cool-down', async () => {
		const app = await jwksApp(auth.url, { jwks: { cooldownMs: 60_000 } })
		expect(await status(app, await auth.token(await auth.signUp()))).toBe(200)
		const before = auth.jwksFetches()
		const flood = await Promise.all(Array.from({ length: 50 }, async () => status(app, await forged(crypto.randomUUID()))))
		expect(flood).toEqual(Array(50).fill(401))
		for (let i = 0; i < 20; i++) expect(await status(app, await forged(crypto.randomUUID()))).toBe(401)
		expect(auth.jwksFetches() - before).toBeLessThanOrEqual(1)
	})

	test('past the cool-down an unknown kid triggers one refetch', async () => {
		const app = await jwksApp(auth.url, { jwks: { cooldownMs: 200 } })
		expect(await status(app, await auth.token(await auth.signUp()))).toBe(200)
		await Bun.sleep(250)
		const before = auth.jwksFetches()
		expect(await status(app, await forged(crypto.randomUUID()))).toBe(401)
		expect(auth.jwksFetches()).toBe(before + 1)
	})

	test('alg confusion: an HS256 token signed with the public key is refused', async () => {
		const app = await jwksApp(auth.url)
		const jwksOnly = await jwksApp(auth.url, { secret: null })
		const [key] = await publicKeys()
		if (!key?.x) throw new Error('the JWKS holds no OKP key')
		for (const secret of [base64url.decode(key.x), new TextEncoder().encode(JSON.stringify(key))]) {
			const token = await hs256(secret, key.kid)
			expect(await status(app, token)).toBe(401)
			expect(await status(jwksOnly, token)).toBe(401)
		}
	})

	test('alg none is refused', async () => {
		const app = await jwksApp(auth.url)
		const [key] = await publicKeys()
		const unsigned = [
			base64url.encode(JSON.stringify({ alg: 'none', kid: key?.kid })),
			base64url.encode(JSON.stringify({ sub: 'victim', iss: auth.url, aud: auth.url, exp: Date.now() / 1000 + 600 })),
			''
		].join('.')
		expect(await status(app, unsigned)).toBe(401)
	})

	test('10 minutes after a fetch the keys are refreshed in the background: a key dropped from the JWKS is refused from then on, by a token verified and remembered before too; the keys still in it pass', async () => {
		const user = await auth.signUp()
		const dropped = await auth.token(user)
		await auth.rotateKey()
		const kept = await auth.token(user)
		let keys = await publicKeys()
		let fetches = 0
		const keySet = serve(() => {
			fetches++
			return Response.json({ keys })
		})
		const app = await jwksApp(keySet.url.origin, { issuer: auth.url, audience: auth.url })
		try {
			const start = Date.now()
			expect(await status(app, dropped)).toBe(200)
			const end = Date.now()
			keys = keys.filter(({ kid }) => kid !== decodeProtectedHeader(dropped).kid)
			// The clock moves on ten minutes, and the test does not wait for it.
			setSystemTime(start + 600_000 - 1)
			expect(await statusAfterRefresh(app, dropped, 200)).toBe(200)
			expect(fetches).toBe(1)
			setSystemTime(end + 600_000)
			// In the background: the request that finds the keys stale is still served by them.
			expect(await status(app, dropped)).toBe(200)
			expect(await statusAfterRefresh(app, dropped, 200)).toBe(401)
			expect(await status(app, kept)).toBe(200)
		} finally {
			setSystemTime()
			await keySet.stop(true)
		}
	})
})

describe('Authentication: when the JWKS cannot be fetched', () => {
	// Better Auth's key set behind a server that pads it to `bytes` and sends it in chunks, with no length.
	const paddedKeySet = (bytes: number) =>
		serve(async () => {
			const body = new TextEncoder().encode(JSON.stringify({ keys: await publicKeys(), padding: '' }))
			const padded = new Uint8Array(bytes).fill(0x20)
			padded.set(body.subarray(0, -2))
			padded.set(body.subarray(-2), bytes - 2)
			return new Response(
				new ReadableStream({
					start(controller) {
						for (let at = 0; at < bytes; at += 65_536) controller.enqueue(padded.slice(at, at + 65_536))
						controller.close()
					}
				})
			)
		})

	test('a key set past 1 MiB is not read: its tokens get 401 and the log says why; the same keys within it pass', async () => {
		const token = await auth.token(await auth.signUp())
		const large = paddedKeySet(1024 * 1024 + 1)
		const within = paddedKeySet(1024 * 1024)
		try {
			const lines: Record<string, unknown>[] = []
			const log = (fields: Record<string, unknown>) => lines.push(fields)
			const refusing = await jwksApp(large.url.origin, { issuer: auth.url, audience: auth.url, log })
			expect(await status(refusing, token)).toBe(401)
			expect(lines).toContainEqual(
				expect.objectContaining({ msg: 'cannot fetch the JWKS', error: expect.stringContaining('larger than 1048576 bytes') })
			)
			const accepting = await jwksApp(within.url.origin, { issuer: auth.url, audience: auth.url })
			expect(await status(accepting, token)).toBe(200)
		} finally {
			await Promise.all([large.stop(true), within.stop(true)])
		}
	})

	test('a JWKS URL that redirects, even to the key set itself, counts as a failure: 401 (not 500), and the log says why', async () => {
		const token = await auth.token(await auth.signUp())
		const redirecting = serve(() => Response.redirect(`${auth.url}/api/auth/jwks`, 302))
		try {
			const lines: Record<string, unknown>[] = []
			const log = (fields: Record<string, unknown>) => lines.push(fields)
			const app = await jwksApp(redirecting.url.origin, { issuer: auth.url, audience: auth.url, log })
			const refused = await call(app, 'GET', '/api/tasks', { token })
			expect(refused.status).toBe(401)
			expect(errorOf(refused).error_code).toBe('AUTHENTICATION_REQUIRED')
			expect(lines).toContainEqual(
				expect.objectContaining({
					level: 'warn',
					msg: 'cannot fetch the JWKS',
					url: `${redirecting.url.origin}/api/auth/jwks`,
					error: expect.stringContaining('302')
				})
			)
			expect(await status(await jwksApp(auth.url), token)).toBe(200)
		} finally {
			await redirecting.stop(true)
		}
	})

	test('cached keys still pass, unknown kids get 401 (not 500), and the log says why', async () => {
		const lines: Record<string, unknown>[] = []
		const log = (fields: Record<string, unknown>) => lines.push(fields)
		// maxAgeMs 0: every request finds the keys stale and tries to refresh them.
		const app = await jwksApp(auth.url, { log, jwks: { cooldownMs: 0, maxAgeMs: 0 } })
		const user = await auth.signUp()
		const cached = await auth.token(user)
		expect(await status(app, cached)).toBe(200)
		await auth.rotateKey()
		const unseen = await auth.token(user)

		await auth.pause()
		try {
			for (let i = 0; i < 3; i++) expect(await status(app, cached)).toBe(200)
			const refused = await call(app, 'GET', '/api/tasks', { token: unseen })
			expect(refused.status).toBe(401)
			expect(errorOf(refused).error_code).toBe('AUTHENTICATION_REQUIRED')
			expect(lines).toContainEqual(
				expect.objectContaining({ level: 'warn', url: `${auth.url}/api/auth/jwks`, error: expect.any(String) })
			)
		} finally {
			auth.resume()
		}
		expect(await status(app, unseen)).toBe(200)
	})

	test('with no key fetched yet, every asymmetric token gets 401, the log says why, and a failed fetch starts the cool-down', async () => {
		const lines: Record<string, unknown>[] = []
		const app = await jwksApp(auth.url, { log: (fields) => lines.push(fields) })
		const token = await auth.token(await auth.signUp())
		await auth.pause()
		try {
			for (let i = 0; i < 5; i++) expect(await status(app, token)).toBe(401)
		} finally {
			auth.resume()
		}
		expect(lines.filter(({ msg }) => msg === 'cannot fetch the JWKS')).toHaveLength(1)
		expect(lines).toContainEqual(expect.objectContaining({ msg: 'token refused', reason: expect.stringContaining('JWKS') }))
	})
})
