import type { Log } from '../log'

// A connection to the database could not be opened: refused, not found, no route (an interface or
// a VPN link down, no route for its address), no answer, or a server starting up or shutting down.
const CONNECT_FAILURES = new Set([
	'ECONNREFUSED',
	'ENOTFOUND',
	'EAI_AGAIN',
	'EHOSTUNREACH',
	'ENETUNREACH',
	'ENETDOWN',
	'EHOSTDOWN',
	'EADDRNOTAVAIL',
	'CONNECT_TIMEOUT',
	'57P03' // cannot_connect_now
])

const UNAVAILABLE_CODES = new Set([
	...CONNECT_FAILURES,
	'ECONNRESET',
	'ETIMEDOUT',
	'EPIPE',
	'ENETRESET',
	'ECONNABORTED',
	'CONNECTION_CLOSED',
	'CONNECTION_ENDED',
	'CONNECTION_DESTROYED',
	'57P01', // admin_shutdown
	'57P02', // crash_shutdown
	'57014' // query_canceled: past a search's statement_timeout (postgres.ts) or STATEMENT_LIMIT_MS (guarded-pool.ts)
])

// Drizzle wraps driver errors; the driver's code sits on the cause.
export function codeOf(error: unknown): string | undefined {
	for (let e = error; e instanceof Error; e = e.cause) {
		const code = (e as { code?: unknown }).code
		if (typeof code === 'string') return code
	}
	return undefined
}

/** A statement failed because no connection could be opened for it. */
export const isConnectFailure = (error: unknown): boolean => CONNECT_FAILURES.has(codeOf(error) ?? '')

/** A statement failed because its pool was dropped (guarded-pool.ts) or closed under it. */
export const isPoolDropped = (error: unknown): boolean => codeOf(error) === 'CONNECTION_DESTROYED'

/** The database cannot be reached right now: a 503, not a bug. */
export function isUnavailable(error: unknown): boolean {
	const code = codeOf(error)
	// Class 08 is a connection lost; class 53, resources the server has run out of for now: a full
	// disk (53100), memory, connections (53300).
	return code !== undefined && (UNAVAILABLE_CODES.has(code) || code.startsWith('08') || code.startsWith('53'))
}

const START_RETRY_MS = 1_000

/**
 * A step of the start: a database that cannot be reached is tried again every START_RETRY_MS for as
 * long as it takes (it may start after the service, or be down); `waiting` is called when the first
 * try fails so. Any other error is thrown.
 */
export async function whileUnavailable<T>(step: () => Promise<T>, log: Log, waiting?: () => void): Promise<T> {
	for (let attempt = 1; ; attempt++) {
		try {
			return await step()
		} catch (error) {
			if (!isUnavailable(error)) throw error
			log({ level: 'warn', msg: 'database unavailable, retrying', attempt, error: codeOf(error) })
			if (attempt === 1) waiting?.()
			await Bun.sleep(START_RETRY_MS)
		}
	}
}
