// Running the compiled binary for the robustness tests and their long forms in scripts/.
import { buildBinary, copyBinaryAlone, type Running, startBinary, temporaryFolder } from '../support/binary'
import { SECRET } from '../support/app'
import type { Send } from './fuzzing'

/**
 * The binary, built once, then copied into a folder of its own: a long run keeps working while
 * another `bun run build` rewrites dist/todo-api.
 */
export async function binaryCopy(): Promise<string> {
	await buildBinary()
	return copyBinaryAlone()
}

/** The settings of a binary on Postgres (`databaseUrl`) or on a new PGlite folder. */
export function settingsFor(databaseUrl: string | undefined, dataDir = `${temporaryFolder('data-')}/data`) {
	return databaseUrl
		? { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: databaseUrl }
		: { BETTER_AUTH_SECRET: SECRET, DATA_DIR: dataDir }
}

const FETCH_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']

/**
 * `send` of the fuzzer, over HTTP to `url`: fetch for the usual methods; a raw HTTP/1.1 exchange
 * for the others, which fetch rewrites (an unknown method becomes GET) or answers without a body.
 */
const sendTo =
	(url: string): Send =>
	async ({ method, path, headers, body }) => {
		if (!FETCH_METHODS.includes(method)) return rawExchange(url, { method, path, headers, body })
		const response = await fetch(`${url}${path}`, { method, headers, body, redirect: 'manual' })
		return { status: response.status, headers: response.headers, text: await response.text() }
	}

/**
 * One request on a connection of its own, read to its end; no reply (the server hung up) is status 0.
 * The path is sent as written, dot segments and all; a `host` header replaces the URL's host.
 */
export async function rawExchange(url: string, { method, path, headers, body }: Parameters<Send>[0]) {
	const { hostname, port } = new URL(url)
	const target = path.replace(/#.*$/, '').replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c))
	const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body
	const { host = `${hostname}:${port}`, ...others } = headers
	const head = [`${method} ${target} HTTP/1.1`, `Host: ${host}`, 'Connection: close']
	for (const [name, value] of Object.entries(others)) head.push(`${name}: ${value}`)
	if (bytes) head.push(`Content-Length: ${bytes.byteLength}`)
	const chunks: Uint8Array[] = []
	await new Promise<void>((resolve, reject) => {
		Bun.connect({
			hostname,
			port: Number(port),
			socket: {
				open(socket) {
					socket.write(`${head.join('\r\n')}\r\n\r\n`)
					if (bytes) socket.write(bytes)
				},
				data(_socket, chunk) {
					chunks.push(new Uint8Array(chunk))
				},
				close: () => resolve(),
				error: (_socket, error) => reject(error)
			}
		}).catch(reject)
	})
	const raw = Buffer.concat(chunks).toString('latin1')
	const end = raw.indexOf('\r\n\r\n')
	const lines = raw.slice(0, end).split('\r\n')
	const replyHeaders = new Headers()
	for (const line of lines.slice(1)) {
		const colon = line.indexOf(':')
		if (colon > 0) replyHeaders.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim())
	}
	let rest: Buffer = Buffer.from(raw.slice(end + 4), 'latin1')
	if (replyHeaders.get('transfer-encoding')?.includes('chunked')) rest = unchunk(rest)
	return {
		status: Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0),
		headers: replyHeaders,
		text: rest.toString('utf8')
	}
}

function unchunk(data: Buffer): Buffer {
	const parts: Buffer[] = []
	let at = 0
	while (at < data.length) {
		const lineEnd = data.indexOf('\r\n', at)
		const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16)
		if (!size) break
		parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
		at = lineEnd + 2 + size + 2
	}
	return Buffer.concat(parts)
}

export async function fuzzTarget(binary: string, databaseUrl: string | undefined) {
	const running: Running = await startBinary({ binary, cwd: temporaryFolder('cwd-'), env: settingsFor(databaseUrl) })
	return {
		send: sendTo(running.url),
		alive: () => running.process.exitCode === null && running.process.signalCode === null,
		stop: () => running.stop('SIGTERM'),
		output: running.output
	}
}
