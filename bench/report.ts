// The bench's table, as printed and as kept in bench/results/*.json.
import type { Rate } from './ceiling'
import { BARE_KINDS, type BareKind } from './server'
import type { Kind, Statement } from './statements'
import type { Load } from './wrk'

export interface Row extends Load {
	database: string
	scenario: string
	/** The database's own rate on the same statements (pgbench / raw PGlite). */
	ceiling?: number
	/** Of a scenario measured in rounds: each round's rate over its ceiling; the row is the median round. */
	ratios?: number[]
}

export interface HalfResults {
	rows: Row[]
	firstHealthMs: number
	firstApiMs: number
	starts: number
	idleRssMiB: number[]
	/** The same processes' PSS in all: pages they share (the binary's) counted once. */
	idlePssMiB: number
	pageBig: Load
	pageSmall: Load
	/** How many times slower the big user's first page was in each round; pageBig/pageSmall are the median's. */
	pageRatios: number[]
	/** `floor`: the database's own latency on the same statements at the same rate. */
	fixed: Load & { target: number; floor: Rate }
	/** `get` alone at the same fixed rate. */
	fixedGet: Load
	statements: Record<Kind, Statement[]>
	/** `list` and `get` served by bench/bare.ts: Bun.serve and the driver alone. */
	bare: Partial<Record<BareKind, Load>>
}

export interface Results {
	when: string
	binaryBytes: number
	connections: number
	seconds: number
	halves: Partial<Record<'postgres' | 'pglite', HalfResults>>
}

const fixed = (n: number, digits = 0) => n.toFixed(digits)

function table(head: string[], rows: string[][]): string {
	const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
	const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`
	return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

export function report(results: Results): string {
	const out: string[] = [
		`${results.connections} connections, ${results.seconds} s per scenario, binary ${fixed(results.binaryBytes / 2 ** 20, 1)} MiB`
	]
	const rows: string[][] = []
	const facts: string[][] = []
	for (const [name, half] of Object.entries(results.halves)) {
		if (!half) continue
		for (const r of half.rows)
			rows.push([
				name,
				r.scenario,
				fixed(r.rate),
				fixed(r.p50Ms, 2),
				fixed(r.p99Ms, 2),
				String(r.errors),
				fixed(r.peakRssMiB),
				fixed(r.cpuUs, 1),
				r.ceiling ? fixed(r.ceiling) : '-',
				r.ceiling ? `${fixed((100 * r.rate) / r.ceiling)} %${r.ratios ? ` (of ${r.ratios.map((x) => fixed(100 * x)).join(', ')})` : ''}` : '-'
			])
		const idle = half.idleRssMiB
		for (const kind of BARE_KINDS) {
			const bare = half.bare[kind]
			const api = half.rows.find((r) => r.scenario === kind)
			if (bare && api?.ceiling)
				facts.push([
					name,
					`${kind} on the bare stack: Bun.serve + ${name === 'postgres' ? 'postgres.js' : 'PGlite'}, same statement`,
					`${fixed(bare.rate)} req/s (${fixed((100 * bare.rate) / api.ceiling)} % of ceiling) at ${fixed(bare.cpuUs, 1)} µs of CPU a request; ` +
						`the API serves ${fixed((100 * api.rate) / bare.rate)} % of it at ${fixed(api.cpuUs, 1)} µs`
				])
		}
		facts.push(
			[name, 'exec to first 200 (/health, median)', `${fixed(half.firstHealthMs, 1)} ms over ${half.starts} starts`],
			[name, 'exec to first 200 (GET /api/tasks, median)', `${fixed(half.firstApiMs, 1)} ms`],
			[
				name,
				'idle RSS; PSS of all processes',
				`${idle.map((m) => fixed(m, 1)).join(' + ')} MiB (${idle.length} process${idle.length > 1 ? 'es' : ''}); ${fixed(half.idlePssMiB, 1)} MiB`
			],
			[
				name,
				`p99 at a fixed ${half.fixed.target} req/s (mixed)`,
				`${fixed(half.fixed.p99Ms, 2)} ms (p50 ${fixed(half.fixed.p50Ms, 2)} ms, ${fixed(half.fixed.rate)} req/s, ${half.fixed.errors} errors)`
			],
			[
				name,
				`the database's own p99 at ${half.fixed.target}/s (mixed, same statements)`,
				`${fixed(half.fixed.floor.p99Ms ?? 0, 2)} ms (p50 ${fixed(half.fixed.floor.p50Ms ?? 0, 2)} ms, ${fixed(half.fixed.floor.rate)}/s)`
			],
			[
				name,
				`p99 at a fixed ${half.fixed.target} req/s (get)`,
				`${fixed(half.fixedGet.p99Ms, 2)} ms (p50 ${fixed(half.fixedGet.p50Ms, 2)} ms, ${fixed(half.fixedGet.rate)} req/s, ${half.fixedGet.errors} errors)`
			],
			[
				name,
				'first page (limit 50): 100,000-task user vs 20-task users',
				`${fixed(half.pageBig.rate)} vs ${fixed(half.pageSmall.rate)} req/s (${half.pageBig.rate ? fixed(half.pageSmall.rate / half.pageBig.rate, 2) : '∞'}x slower; ` +
					`of ${half.pageRatios.map((ratio) => `${fixed(ratio, 2)}x`).join(', ')}); p50 ${fixed(half.pageBig.p50Ms, 2)} vs ${fixed(half.pageSmall.p50Ms, 2)} ms`
			]
		)
	}
	out.push(table(['db', 'scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'peak RSS MiB', 'CPU µs/req', 'ceiling/s', 'of ceiling'], rows))
	out.push(table(['db', 'measure', 'value'], facts))
	return out.join('\n\n')
}
