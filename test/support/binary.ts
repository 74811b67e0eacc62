import { type Subprocess, spawn } from 'bun'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

export const ROOT = join(import.meta.dir, '..', '..')
export const BINARY = join(ROOT, 'dist', 'todo-api')

let built: Promise<void> | undefined

/** Compiles dist/todo-api once per test run, as `bun run build` does. */
export function buildBinary(): Promise<void> {
	built ??= (async () => {
		const build = spawn(['bun', 'run', 'build'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
		if ((await build.exited) !== 0) throw new Error(`build failed: ${await new Response(build.stderr).text()}`)
		if (!existsSync(BINARY)) throw new Error('build wrote no dist/todo-api')
	})()
	return built
}

export interface Running {
	url: string
	process: Subprocess<'ignore', 'pipe', 'pipe'>
	/** Everything the process printed so far. */
	output(): string
	stop(signal?: NodeJS.Signals): Promise<number>
}

/**
 * Starts the binary (PORT=0 unless given) and resolves once it logs that it listens,
 * with the URL it listens on.
 */
export async function startBinary({
	binary = BINARY,
	cwd,
	env,
	timeoutMs = 20_000
}: { binary?: string; cwd: string; env: Record<string, string | undefined>; timeoutMs?: number }): Promise<Running> {
	const child = spawn([binary], {
		cwd,
		env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', ...env },
		stdin: 'ignore',
		stdout: 'pipe',
		stderr: 'pipe'
	})
	let printed = ''
	const drain = async (stream: ReadableStream<Uint8Array>) => {
		for await (const chunk of stream) printed += new TextDecoder().decode(chunk)
	}
	void drain(child.stdout)
	void drain(child.stderr)
	const running: Running = {
		url: '',
		process: child,
		output: () => printed,
		async stop(signal = 'SIGTERM') {
			child.kill(signal)
			return child.exited
		}
	}
	const deadline = Date.now() + timeoutMs
	while (Date.now() < deadline) {
		const match = /"msg":"listening","url":"(http:\/\/[^"]+?)\/?"/.exec(printed)
		if (match?.[1]) {
			running.url = match[1].replace('0.0.0.0', '127.0.0.1')
			return running
		}
		if (child.exitCode !== null) throw new Error(`todo-api exited with ${child.exitCode}: ${printed}`)
		await Bun.sleep(20)
	}
	child.kill('SIGKILL')
	throw new Error(`todo-api did not listen within ${timeoutMs} ms: ${printed}`)
}
