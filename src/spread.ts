// Connections remembered while the primary listens alone: a database that stays away at start
// keeps it alone for as long, and the clients' connections must not grow the process.
const MOST_REMEMBERED = 10_000
// Bun closes a connection idle for 10 s (Bun.serve's default idleTimeout): by then each early
// connection has come back, and been closed after its answer, or been closed for its silence.
const FORGET_AFTER_MS = 10_000

/** What the server tells of a request's connection (Bun's and Elysia's Server). */
type Peers = { requestIP(request: Request): { address: string; port: number } | null }

export interface Spreader {
	/** Whether the answer to `request` closes its connection. */
	closes(request: Request, server: Peers | null): boolean
	/** The workers listen: from now on each early connection closes after its next answer. */
	shared(): void
}

/**
 * The kernel hands a new connection to one of the processes listening on the port when it
 * arrives, and a keep-alive connection stays where it landed. The primary answers before its
 * workers listen, so a client that opens its connections at once (a load generator, a proxy's or
 * a server's pool) would keep them all on the primary, and the other cores idle, for as long as
 * it keeps them. Once the workers listen, the next answer on each connection that came earlier
 * asks the client to reconnect (`Connection: close`), once: the kernel then spreads them.
 */
export function connectionSpreader(): Spreader {
	let phase: 'alone' | 'spreading' | 'done' = 'alone'
	const early = new Set<string>()
	return {
		closes(request, server) {
			if (phase === 'done') return false
			const peer = server?.requestIP(request)
			if (!peer) return false
			const key = `${peer.address} ${peer.port}`
			if (phase === 'alone') {
				if (early.size < MOST_REMEMBERED) early.add(key)
				return false
			}
			if (!early.delete(key)) return false
			if (!early.size) phase = 'done'
			return true
		},
		shared() {
			phase = early.size ? 'spreading' : 'done'
			setTimeout(() => {
				phase = 'done'
				early.clear()
			}, FORGET_AFTER_MS).unref()
		}
	}
}
