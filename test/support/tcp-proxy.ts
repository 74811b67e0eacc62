import type { Socket, TCPSocketListener } from 'bun'
import { onLoopbackPort } from './app'

/**
 * A loopback TCP proxy put between a todo-api and its Postgres, so a test can take the database
 * away without stopping the shared server:
 * - `cut()`: the port refuses connections and every live connection is reset, as when Postgres stops;
 * - `blackHole()`: connections are accepted and bytes taken, but nothing goes through either way,
 *   as on a dead network path, which only timeouts can detect;
 * - `silenceOpen()`: nothing goes through the connections open now, either way, while new ones
 *   work, as after a failover to a new address or when a NAT forgets a connection;
 * - `resetAfterNextReply()`: each connection open now is reset right behind the next bytes the
 *   database sends on it, as when a backend dies just after answering, or midway;
 * - `startingUp()`: every connection is reset, as when Postgres stops, and each new one is refused
 *   in Postgres's words for a server starting up (FATAL 57P03), as each new backend is until its
 *   recovery is done;
 * - `restore()`: forwards again on the same port (connections held in the black hole, or refused
 *   as starting up, are dropped).
 */
export interface TcpProxy {
	readonly port: number
	/** How many connections the proxy has accepted. */
	readonly accepted: number
	/** `databaseUrl` with its host and port replaced by the proxy's. */
	url(databaseUrl: string): string
	cut(): void
	blackHole(): void
	silenceOpen(): void
	resetAfterNextReply(): void
	startingUp(): void
	restore(): void
	close(): void
}

interface Link {
	upstream?: Socket<undefined>
	/** Bytes not yet taken by the upstream (before it connects, or when it pushes back). */
	toUpstream: Uint8Array[]
	toClient: Uint8Array[]
	closed: boolean
	silent: boolean
	resetsAfterReply: boolean
}

type Mode = 'open' | 'cut' | 'black-hole' | 'starting-up'

// An ErrorResponse (protocol 3.0): its type byte, its length, then fields of one code byte and a
// NUL-ended string each, and a NUL.
function errorResponse(fields: Record<string, string>): Uint8Array {
	const body = `${Object.entries(fields).map(([code, text]) => `${code}${text}\0`).join('')}\0`
	const bytes = new TextEncoder().encode(body)
	const message = new Uint8Array(5 + bytes.byteLength)
	message[0] = 'E'.charCodeAt(0)
	new DataView(message.buffer).setInt32(1, 4 + bytes.byteLength)
	message.set(bytes, 5)
	return message
}

const STARTING_UP = errorResponse({ S: 'FATAL', V: 'FATAL', C: '57P03', M: 'the database system is starting up' })

// Writes what the socket takes now and queues the rest, in order, for its drain event.
function send(socket: Socket<unknown> | undefined, queue: Uint8Array[], chunk: Uint8Array) {
	if (!socket || queue.length) return void queue.push(chunk)
	const written = socket.write(chunk)
	if (written < chunk.byteLength) queue.push(chunk.slice(written))
}

function flush(socket: Socket<unknown>, queue: Uint8Array[]) {
	while (queue.length) {
		const chunk = queue[0] as Uint8Array
		const written = socket.write(chunk)
		if (written < chunk.byteLength) return void (queue[0] = chunk.slice(written))
		queue.shift()
	}
}

const started = new Set<TcpProxy>()

/** Closes every proxy this process started: for a test file's afterEach. */
export function closeTcpProxies(): void {
	for (const proxy of started) proxy.close()
	started.clear()
}

/** A proxy in front of the Postgres server that `databaseUrl` names. */
export async function startTcpProxy(databaseUrl: string): Promise<TcpProxy> {
	const upstream = new URL(databaseUrl)
	const target = { host: upstream.hostname, port: Number(upstream.port || 5432) }
	let mode: Mode = 'open'
	let accepted = 0
	const clients = new Set<Socket<Link>>()
	let listener: TCPSocketListener<Link> | undefined

	function connectUpstream(client: Socket<Link>) {
		Bun.connect<undefined>({
			hostname: target.host,
			port: target.port,
			socket: {
				open(upstream) {
					if (mode !== 'open' || client.data.closed) return void upstream.end()
					client.data.upstream = upstream
					flush(upstream, client.data.toUpstream)
				},
				data(_upstream, chunk) {
					if (mode !== 'open' || client.data.silent) return
					send(client, client.data.toClient, new Uint8Array(chunk))
					if (client.data.resetsAfterReply) client.terminate()
				},
				drain(upstream) {
					flush(upstream, client.data.toUpstream)
				},
				close() {
					if (mode === 'open') client.end()
				},
				error() {
					client.end()
				}
			}
		}).catch(() => client.end())
	}

	function listen(port: number) {
		listener = Bun.listen<Link>({
			hostname: '127.0.0.1',
			port,
			socket: {
				open(client) {
					client.data = { toUpstream: [], toClient: [], closed: false, silent: false, resetsAfterReply: false }
					clients.add(client)
					accepted++
					if (mode === 'open') connectUpstream(client)
				},
				data(client, chunk) {
					// A client's first message is its startup message: the answer is the refusal.
					if (mode === 'starting-up') return void client.end(STARTING_UP)
					if (mode === 'open' && !client.data.silent) send(client.data.upstream, client.data.toUpstream, new Uint8Array(chunk))
				},
				drain(client) {
					flush(client, client.data.toClient)
				},
				close(client) {
					client.data.closed = true
					clients.delete(client)
					client.data.upstream?.end()
				},
				error(client) {
					client.data.closed = true
					clients.delete(client)
					client.data.upstream?.end()
				}
			}
		})
		return listener.port
	}

	const dropAll = () => {
		for (const client of clients) {
			client.data.upstream?.terminate()
			client.terminate()
		}
		clients.clear()
	}

	const port = listen(0)
	const proxy: TcpProxy = {
		port,
		get accepted() {
			return accepted
		},
		url: (databaseUrl) => onLoopbackPort(databaseUrl, port),
		cut() {
			mode = 'cut'
			listener?.stop(true)
			listener = undefined
			dropAll()
		},
		blackHole() {
			mode = 'black-hole'
			if (!listener) listen(port)
		},
		silenceOpen() {
			for (const client of clients) client.data.silent = true
		},
		resetAfterNextReply() {
			for (const client of clients) client.data.resetsAfterReply = true
		},
		startingUp() {
			mode = 'starting-up'
			dropAll()
			if (!listener) listen(port)
		},
		restore() {
			if (mode === 'black-hole' || mode === 'starting-up') dropAll()
			mode = 'open'
			if (!listener) listen(port)
		},
		close() {
			mode = 'cut'
			listener?.stop(true)
			dropAll()
		}
	}
	started.add(proxy)
	return proxy
}
