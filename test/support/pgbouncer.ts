import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onLoopbackPort } from './app'

const READY_TIMEOUT_MS = 10_000

function freePort(): number {
	const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
	const { port } = listener
	listener.stop(true)
	return port
}

async function accepts(port: number): Promise<boolean> {
	try {
		const socket = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } })
		socket.end()
		return true
	} catch {
		return false
	}
}

/**
 * A real PgBouncer in transaction mode, as Neon's pooled hosts and most self-hosted poolers run,
 * in front of the server of `serverUrl`: each transaction may go to another server connection.
 * `url` is serverUrl with this pooler's host and port; `settings` are more lines of its [pgbouncer].
 */
export async function startPgBouncer(serverUrl: string, ...settings: string[]): Promise<{ url: string; stop(): Promise<void> }> {
	const binary = Bun.which('pgbouncer', { PATH: `${process.env.PATH}:/usr/sbin` })
	if (!binary) throw new Error('pgbouncer is not installed (Debian: apt-get install pgbouncer)')
	const server = new URL(serverUrl)
	const port = freePort()
	const folder = mkdtempSync(join(tmpdir(), 'pgbouncer-'))
	const config = join(folder, 'pgbouncer.ini')
	const password = server.password ? ` password=${decodeURIComponent(server.password)}` : ''
	writeFileSync(
		config,
		[
			'[databases]',
			`* = host=${server.hostname} port=${server.port || 5432} user=${decodeURIComponent(server.username)}${password}`,
			'[pgbouncer]',
			'listen_addr = 127.0.0.1',
			`listen_port = ${port}`,
			'unix_socket_dir =',
			'auth_type = any',
			'pool_mode = transaction',
			'default_pool_size = 8',
			'max_client_conn = 500',
			...settings
		].join('\n')
	)
	// PgBouncer refuses to run as root, and then reads its file as the user it switches to.
	const asRoot = process.getuid?.() === 0
	if (asRoot) {
		chmodSync(folder, 0o755)
		chmodSync(config, 0o644)
	}
	const bouncer = Bun.spawn([binary, ...(asRoot ? ['-u', 'nobody'] : []), config], { stdout: 'ignore', stderr: 'pipe' })
	const stop = async () => {
		bouncer.kill()
		await bouncer.exited
		rmSync(folder, { recursive: true, force: true })
	}
	const deadline = Date.now() + READY_TIMEOUT_MS
	while (!(await accepts(port))) {
		if (bouncer.exitCode !== null || Date.now() > deadline) {
			const said = bouncer.exitCode !== null ? await new Response(bouncer.stderr).text() : 'no answer'
			await stop()
			throw new Error(`pgbouncer did not start: ${said}`)
		}
		await Bun.sleep(20)
	}
	return { url: onLoopbackPort(serverUrl, port), stop }
}
