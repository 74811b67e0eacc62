import type { Verifier } from './auth'

/** Most distinct tokens kept per process; the oldest entry makes room for a new one. */
export const MAX_CACHED_TOKENS = 10_000
/** Longer tokens are verified every time rather than kept, so the cache stays small. */
export const MAX_CACHED_TOKEN_LENGTH = 2048

interface Entry {
	userId: string
	/** Milliseconds since the epoch after which the entry no longer counts. */
	until: number
}

// Read only after the token verified, so the payload is the signed one. A session cookie cache
// token also ends with the session it carries, which the verifier checks too.
function expiryOf(token: string): number | undefined {
	try {
		const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
			exp?: unknown
			session?: { expiresAt?: unknown }
		}
		if (typeof payload.exp !== 'number') return undefined
		const sessionEnd = payload.session?.expiresAt
		const end = typeof sessionEnd === 'string' || typeof sessionEnd === 'number' ? new Date(sessionEnd).getTime() : Infinity
		return Math.min(payload.exp * 1000, Number.isNaN(end) ? 0 : end)
	} catch {
		return undefined
	}
}

/**
 * Remembers what `verify` answered for each token until the token's own `exp`, so a client's
 * requests after the first skip the signature check. Failures are never kept: a refused token is
 * checked again next time. Concurrent checks of one token share one verification.
 */
export function cacheTokens(
	verify: Verifier,
	{ maxEntries = MAX_CACHED_TOKENS, now = Date.now }: { maxEntries?: number; now?: () => number } = {}
): Verifier {
	const known = new Map<string, Entry>()
	const pending = new Map<string, Promise<string>>()
	let swept = 0

	function remember(token: string, userId: string) {
		const at = now()
		const until = expiryOf(token)
		if (until === undefined || until <= at || token.length > MAX_CACHED_TOKEN_LENGTH) return
		if (known.size >= maxEntries) {
			// Expired entries go first (a full sweep at most once a second); failing that, the oldest.
			if (at - swept >= 1000) {
				swept = at
				for (const [key, entry] of known) if (entry.until <= at) known.delete(key)
			}
			if (known.size >= maxEntries) known.delete(known.keys().next().value as string)
		}
		known.set(token, { userId, until })
	}

	return (token) => {
		const entry = known.get(token)
		if (entry) {
			if (entry.until > now()) return Promise.resolve(entry.userId)
			known.delete(token)
		}
		const running = pending.get(token)
		if (running) return running
		const verifying = verify(token).then(
			(userId) => {
				pending.delete(token)
				remember(token, userId)
				return userId
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
