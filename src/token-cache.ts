import type { Identity, Verifier } from './auth'

/** Most distinct tokens kept per process; the oldest entry makes room for a new one. */
const MAX_CACHED_TOKENS = 10_000
/** Longer tokens are verified every time rather than kept, so the cache stays small. */
const MAX_CACHED_TOKEN_LENGTH = 2048

/**
 * Remembers what `verify` answered for each token until the end it gave (the token's `exp`, its
 * session's end, or when the keys that verified it are due for a refresh, whichever comes first),
 * so a client's requests after the first skip the signature check.
 * Failures are never kept: a refused token is checked again next time. Concurrent checks of one
 * token share one verification.
 */
export function cacheTokens(
	verify: Verifier,
	{ maxEntries = MAX_CACHED_TOKENS, now = Date.now }: { maxEntries?: number; now?: () => number } = {}
): Verifier {
	const known = new Map<string, Identity>()
	const pending = new Map<string, Promise<Identity>>()
	let swept = 0

	function remember(token: string, identity: Identity) {
		const at = now()
		if (identity.until <= at || token.length > MAX_CACHED_TOKEN_LENGTH) return
		if (known.size >= maxEntries) {
			// Expired entries go first (a full sweep at most once a second); failing that, the oldest.
			if (at - swept >= 1000) {
				swept = at
				for (const [key, entry] of known) if (entry.until <= at) known.delete(key)
			}
			if (known.size >= maxEntries) known.delete(known.keys().next().value as string)
		}
		known.set(token, identity)
	}

	return (token) => {
		const entry = known.get(token)
		if (entry) {
			if (entry.until > now()) return Promise.resolve(entry)
			known.delete(token)
		}
		const running = pending.get(token)
		if (running) return running
		const verifying = verify(token).then(
			(identity) => {
				pending.delete(token)
				remember(token, identity)
				return identity
			},
			(error: unknown) => {
				pending.delete(token)
				throw error
			}
		)
		pending.set(token, verifying)
		return verifying
	}
}
