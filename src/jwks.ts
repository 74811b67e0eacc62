import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type { Log } from './log'
import { readAtMost } from './stream'

export interface KeySetOptions {
	/** How long no fetch follows one that failed or did not hold the kid asked for, so that a flood
	 * of unknown kids cannot hammer the auth server. */
	cooldownMs?: number
	/** Age after which the keys are refetched in the background while the cached ones keep working. */
	maxAgeMs?: number
	timeoutMs?: number
}

// Better Auth's keys take under a kilobyte each; a body past this is not a key set, and is not held.
const MAX_KEY_SET_BYTES = 1024 * 1024

/** No key set has ever been fetched, so no asymmetric token can be checked. */
export class KeySetUnavailable extends Error {}

export interface KeySet {
	/** The key for a token, as jose's jwtVerify takes it. */
	getKey: JWTVerifyGetKey
	/** When the keys in use are due for a refresh, which may drop some of them: what they verified
	 * is not to be trusted past it without being checked again. */
	dueAt(): number
}

// jose's createRemoteJWKSet drops its cached keys when a refetch fails and retries on every call
// until one succeeds. Here an outage of the auth server leaves the cached keys in use. The cool-down
// follows only a fetch that failed or did not hold the kid asked for: a key Better Auth has just
// rotated in is fetched at once, and made-up kids cost at most one fetch per cool-down.
export function remoteKeySet(
	url: URL,
	log: Log,
	{ cooldownMs = 10_000, maxAgeMs = 600_000, timeoutMs = 5_000 }: KeySetOptions = {}
): KeySet {
	let keys: JWTVerifyGetKey | undefined
	let loadedAt = 0
	let quietUntil = 0
	let pending: Promise<void> | undefined
	const quiet = () => {
		quietUntil = Date.now() + cooldownMs
	}

	async function load(): Promise<void> {
		try {
			const response = await fetch(url, {
				redirect: 'manual',
				signal: AbortSignal.timeout(timeoutMs),
				headers: { accept: 'application/json, application/jwk-set+json' }
			})
			if (response.status !== 200) throw new Error(`HTTP ${response.status}`)
			const body = await readAtMost(response.body, MAX_KEY_SET_BYTES)
			if (!body) throw new Error(`the key set is larger than ${MAX_KEY_SET_BYTES} bytes`)
			keys = createLocalJWKSet(JSON.parse(new TextDecoder().decode(body)) as JSONWebKeySet)
			loadedAt = Date.now()
		} catch (error) {
			quiet()
			log({
				level: 'warn',
				msg: keys ? 'cannot refresh the JWKS; the keys fetched before stay in use' : 'cannot fetch the JWKS',
				url: url.href,
				error: String(error)
			})
		}
	}

	function refresh(): Promise<void> {
		if (!pending && Date.now() >= quietUntil)
			pending = load().finally(() => {
				pending = undefined
			})
		return pending ?? Promise.resolve()
	}

	const getKey: JWTVerifyGetKey = async (header, token) => {
		if (!keys) await refresh()
		else if (Date.now() - loadedAt >= maxAgeMs) void refresh()
		const current = keys
		if (!current) throw new KeySetUnavailable(`The JWKS at ${url.href} could not be fetched.`)
		try {
			return await current(header, token)
		} catch (error) {
			if (!(error instanceof errors.JWKSNoMatchingKey)) throw error
			await refresh()
			if (keys === current) throw error
			try {
				return await (keys ?? current)(header, token)
			} catch (stillUnknown) {
				if (stillUnknown instanceof errors.JWKSNoMatchingKey) quiet()
				throw stillUnknown
			}
		}
	}

	return { getKey, dueAt: () => loadedAt + maxAgeMs }
}
