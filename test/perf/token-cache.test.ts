import { describe, expect, test } from 'bun:test'
import { createVerifier, type Verifier } from '../../src/auth'
import { AuthenticationRequired } from '../../src/errors'
import { cacheTokens } from '../../src/token-cache'
import { newUser, SECRET, sign } from '../support/app'

// The real verifier, counting how often the cache lets a token through to it.
function counted(): { verify: Verifier; calls: () => number } {
	const real = createVerifier({ secret: SECRET })
	let calls = 0
	return {
		verify: (token) => {
			calls++
			return real(token)
		},
		calls: () => calls
	}
}

const refused = (promise: Promise<unknown>) => expect(promise).rejects.toBeInstanceOf(AuthenticationRequired)

describe('Verified tokens are cached per process until their expiry', () => {
	test('a token is verified once, then answered from the cache with the same user', async () => {
		const { verify, calls } = counted()
		const cached = cacheTokens(verify)
		const sub = newUser()
		const token = await sign({ sub })
		expect((await cached(token)).userId).toBe(sub)
		expect((await cached(token)).userId).toBe(sub)
		expect((await cached(token)).userId).toBe(sub)
		expect(calls()).toBe(1)
	})

	test('concurrent requests with one new token share one verification', async () => {
		const { verify, calls } = counted()
		const cached = cacheTokens(verify)
		const sub = newUser()
		const token = await sign({ sub })
		expect((await Promise.all(Array.from({ length: 20 }, () => cached(token)))).map((it) => it.userId)).toEqual(Array(20).fill(sub))
		expect(calls()).toBe(1)
	})

	test('once the token expires the entry no longer counts and the verifier decides again', async () => {
		const { verify, calls } = counted()
		let clock = Date.now()
		const cached = cacheTokens(verify, { now: () => clock })
		const token = await sign({ sub: newUser() }, { ttl: '60s' })
		await cached(token)
		clock += 59_000
		await cached(token)
		expect(calls()).toBe(1)
		clock += 2_000
		await cached(token)
		expect(calls()).toBe(2)
	})

	test('a token already past its exp (accepted within the clock skew) is not cached', async () => {
		const { verify, calls } = counted()
		const cached = cacheTokens(verify)
		const sub = newUser()
		const token = await sign({ sub }, { ttl: Math.floor(Date.now() / 1000) - 10 })
		expect((await cached(token)).userId).toBe(sub)
		expect((await cached(token)).userId).toBe(sub)
		expect(calls()).toBe(2)
	})

	test('failures are never cached: a refused token is checked every time, and stays refused', async () => {
		const { verify, calls } = counted()
		const cached = cacheTokens(verify)
		const forged = await sign({ sub: newUser() }, { secret: 'another-secret-that-is-also-32-bytes-long' })
		await refused(cached(forged))
		await refused(cached(forged))
		expect(calls()).toBe(2)
	})

	test('a forged token never gets the user of a cached one', async () => {
		const { verify } = counted()
		const cached = cacheTokens(verify)
		const sub = newUser()
		const good = await sign({ sub })
		await cached(good)
		const [header, payload] = good.split('.')
		await refused(cached(`${header}.${payload}.${'A'.repeat(43)}`))
	})

	test('the cache is bounded: past its size the oldest token is dropped and verified again', async () => {
		const { verify, calls } = counted()
		const cached = cacheTokens(verify, { maxEntries: 3 })
		const tokens = await Promise.all([1, 2, 3, 4].map(() => sign({ sub: newUser() })))
		for (const token of tokens) await cached(token)
		expect(calls()).toBe(4)
		await cached(tokens[3] ?? '')
		await cached(tokens[1] ?? '')
		expect(calls()).toBe(4)
		await cached(tokens[0] ?? '')
		expect(calls()).toBe(5)
	})
})
