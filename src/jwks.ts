import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type { Log } from './log'

export interface KeySetOptions {
	/** Least time between two fetches, so a flood of unknown kids cannot hammer the auth server. */
	cooldownMs?: number
	/** Age after which the keys are refetched in the background while the cached ones keep working. */
	maxAgeMs?: number
	timeoutMs?: number
}

/** No key set has ever been fetched, so no asymmetric token can be checked. */
export class KeySetUnavailable extends Error {}

// jose's createRemoteJWKSet drops its cached keys when a refetch fails and retries on every call
// until one succeeds. Here an outage of the auth server leaves the cached keys in use, and a
// failed fetch counts against the cool-down like a successful one.
export function remoteKeySet(
	url: URL,
	log: Log,
	{ cooldownMs = 10_000, maxAgeMs = 600_000, timeoutMs = 5_000 }: KeySetOptions = {}
): JWTVerifyGetKey {
	let keys: JWTVerifyGetKey | undefined
	let loadedAt = 0
	let attemptedAt = Number.NEGATIVE_INFINITY
	let pending: Promise<void> | undefined

	async function load(): Promise<void> {
		attemptedAt = Date.now()
		try {
			const response = await fetch(url, {
				redirect: 'manual',
				signal: AbortSignal.timeout(timeoutMs),
				headers: { accept: 'application/json, application/jwk-set+json' }
			})
			if (response.status !== 200) throw new Error(`HTTP ${response.status}`)
			keys = createLocalJWKSet((await response.json()) as JSONWebKeySet)
			loadedAt = Date.now()
		} catch (error) {
			log({
				level: 'warn',
				msg: keys ? 'cannot refresh the JWKS; the keys fetched before stay in use' : 'cannot fetch the JWKS',
				url: url.href,
				error: String(error)
			})
		}
	}

	function refresh(): Promise<void> {
		if (!pending && Date.now() - attemptedAt >= cooldownMs)
			pending = load().finally(() => {
				pending = undefined
			})
		return pending ?? Promise.resolve()
	}

	return async (header, token) => {
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
			return (keys ?? current)(header, token)
		}
	}
}
