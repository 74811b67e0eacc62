// Start-up of the compiled binary: from exec to the first 200 from /ready, on Postgres, on a fresh
// PGlite folder and on a reopened one (median of --runs, default 5), with the binary's size, the
// CPU time and memory of the process once ready, and its memory when it has then idled for
// IDLE_MS (Linux). Prints a table and one JSON line; asserts nothing.
//   bun run build && bun bench/startup.ts [--runs 5]
// Postgres is measured when BENCH_DATABASE_URL (or TEST_DATABASE_URL) names a migrated database.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cpuUs, freePort } from './server'

const BINARY = join(import.meta.dir, '..', 'dist', 'todo-api')
const SECRET = 'bench-secret-that-is-longer-than-32-bytes'
const { values } = parseArgs({ args: Bun.argv.slice(2), options: { runs: { type: 'string', default: '5' } } })
const runs = Number(values.runs)
const IDLE_MS = 2_000
const databaseUrl = process.env.BENCH_DATABASE_URL || process.env.TEST_DATABASE_URL || undefined

const rssMiB = (pid: number) =>
	Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

// CPU time (user + system) the process has used: unlike wall time, it hardly grows when other work
// shares the cores.
const cpuMs = (pid: number) => cpuUs(pid) / 1000

interface Sample {
	ms: number
	cpu: number
	rss: number
	idleRss: number
}

/** Runs the binary once; resolves with ms from exec to the first 200 of /ready, its CPU and RSS then, and its RSS IDLE_MS later. */
async function startOnce(env: Record<string, string>, cwd: string): Promise<Sample> {
	const port = freePort()
	const started = performance.now()
	const child = Bun.spawn([BINARY], {
		cwd,
		env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), BETTER_AUTH_SECRET: SECRET, ...env },
		stdout: 'ignore',
		stderr: 'pipe'
	})
	try {
		for (;;) {
			if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${await new Response(child.stderr).text()}`)
			if (performance.now() - started > 60_000) throw new Error('not ready within 60 s')
			const status = await fetch(`http://127.0.0.1:${port}/ready`).then(
				(response) => response.status,
				() => 0
			)
			if (status === 200) {
				const ready = { ms: performance.now() - started, cpu: cpuMs(child.pid), rss: rssMiB(child.pid) }
				await Bun.sleep(IDLE_MS)
				return { ...ready, idleRss: rssMiB(child.pid) }
			}
			await Bun.sleep(5)
		}
	} finally {
		child.kill('SIGTERM')
		await child.exited
	}
}

const median = (xs: number[]) => {
	const sorted = xs.toSorted((a, b) => a - b)
	const mid = sorted.length >> 1
	return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

const scratch = mkdtempSync(join(tmpdir(), 'todo-startup-'))
const results: Record<
	string,
	{ median_ms: number; runs_ms: number[]; cpu_ms: number; rss_mib: number; idle_rss_mib: number }
> = {}

async function measure(name: string, once: (run: number) => Promise<Sample>) {
	const samples: Sample[] = []
	for (let run = 0; run < runs; run++) samples.push(await once(run))
	results[name] = {
		median_ms: Math.round(median(samples.map((s) => s.ms))),
		runs_ms: samples.map((s) => Math.round(s.ms)),
		cpu_ms: Math.round(median(samples.map((s) => s.cpu))),
		rss_mib: Math.round(median(samples.map((s) => s.rss))),
		idle_rss_mib: Math.round(median(samples.map((s) => s.idleRss)))
	}
}

try {
	const versionStart = performance.now()
	Bun.spawnSync([BINARY, '--version'])
	const versionMs = Math.round(performance.now() - versionStart)

	if (databaseUrl) await measure('postgres', () => startOnce({ DATABASE_URL: databaseUrl }, scratch))
	await measure('pglite_fresh', (run) => startOnce({ DATA_DIR: join(scratch, `fresh-${run}`) }, scratch))
	const reopened = join(scratch, 'reopened')
	await startOnce({ DATA_DIR: reopened }, scratch)
	await measure('pglite_reopened', () => startOnce({ DATA_DIR: reopened }, scratch))

	const summary = {
		binary_bytes: statSync(BINARY).size,
		version_exec_ms: versionMs,
		runs,
		load_average_1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
		...results
	}
	console.log(`binary: ${(summary.binary_bytes / 2 ** 20).toFixed(1)} MiB; \`todo-api --version\`: ${versionMs} ms`)
	for (const [name, result] of Object.entries(results))
		console.log(
			`${name.padEnd(16)} exec -> first 200 /ready: median ${result.median_ms} ms (${result.runs_ms.join(', ')}); ` +
				`CPU ${result.cpu_ms} ms, RSS ${result.rss_mib} MiB, ${result.idle_rss_mib} MiB ${IDLE_MS / 1000} s later`
		)
	console.log(JSON.stringify(summary))
} finally {
	rmSync(scratch, { recursive: true, force: true })
}
