// Drives the server with wrk (keep-alive, C, two threads) and bench/load.lua.
import { join } from 'node:path'
import { treeCpuUs, watchPeakRss } from './server'

export interface Load {
	requests: number
	rate: number
	p50Ms: number
	p99Ms: number
	/** Responses other than 2xx/3xx, plus socket errors and timeouts. */
	errors: number
	peakRssMiB: number
	/** The CPU the served processes spent, user and system, per request answered, in µs. */
	cpuUs: number
}

const SCRIPT = join(import.meta.dir, 'load.lua')

export async function wrk(
	url: string,
	scenario: string,
	{ data, connections, seconds, rate, pids }: { data: string; connections: number; seconds: number; rate?: number; pids: number[] }
): Promise<Load> {
	const peak = watchPeakRss(pids)
	const cpuBefore = treeCpuUs(pids)
	const run = Bun.spawn(
		['wrk', '-t', '2', '-c', String(connections), '-d', `${seconds}s`, '--timeout', '5s', '-s', SCRIPT, url],
		{
			env: {
				PATH: process.env.PATH ?? '',
				BENCH_DATA: data,
				BENCH_SCENARIO: scenario,
				BENCH_CONNECTIONS: String(connections),
				...(rate ? { BENCH_RATE: String(rate) } : {})
			},
			stdout: 'pipe',
			stderr: 'pipe'
		}
	)
	const [out, err, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited])
	const peakRssMiB = peak()
	const cpuUs = treeCpuUs(pids) - cpuBefore
	const line = /BENCH_RESULT (\{.*\})/.exec(out)?.[1]
	if (code !== 0 || !line) throw new Error(`wrk ${scenario} failed (${code}): ${out}${err}`)
	const r = JSON.parse(line) as Record<string, number>
	const n = (key: string) => r[key] ?? 0
	return {
		requests: n('requests'),
		rate: n('requests') / (n('duration_us') / 1e6),
		p50Ms: n('p50_us') / 1000,
		p99Ms: n('p99_us') / 1000,
		errors: n('connect') + n('read') + n('write') + n('status') + n('timeout'),
		peakRssMiB,
		cpuUs: n('requests') ? cpuUs / n('requests') : 0
	}
}
