// The database's own limit on the API's statements: pgbench on Postgres, a Bun loop on PGlite.
import type { PGlite } from '@electric-sql/pglite'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { PLANNED_ONCE } from '../src/database/postgres'
import type { Doomed } from './seed'
import { TASKS_PER_USER, USER_BASE, USERS } from './seed'
import { bind, type Kind, type Statement } from './statements'

/** A scenario's share of each kind of request; the load script (load.lua) draws the same way. */
export const MIX: Record<string, [Kind, number][]> = {
	list: [['list', 1]],
	get: [['get', 1]],
	create: [['create', 1]],
	put: [['put', 1]],
	patch: [['patch', 1]],
	delete: [['delete', 1]],
	mixed: [
		['list', 40],
		['get', 40],
		['create', 5],
		['put', 5],
		['patch', 5],
		['delete', 5]
	]
}

// pgbench turns every `:name` into a parameter, even inside a quoted literal (such as a
// to_char format); spelling the colon as an escape leaves the same constant.
const escapeColons = (sql: string) =>
	sql.replace(/'([^']*)'/g, (literal, body: string) =>
		body.includes(':') ? `E'${body.replace(/\\/g, '\\\\').replace(/:/g, '\\x3a')}'` : literal
	)

const reader = `\\set uid ${USER_BASE} + random(1, ${USERS})`
const ownTask = `\\set u random(1, ${USERS})\n\\set uid ${USER_BASE} + :u\n\\set id (:u - 1) * ${TASKS_PER_USER} + random(1, ${TASKS_PER_USER})`
// The per-client counter `n` (pgbench keeps variables across a client's transactions) walks
// doomed ids base+client, base+client+clients, …: every delete hits a task that exists.
const pick: Record<Kind, string> = {
	list: reader,
	page: reader,
	create: `\\set uid ${USER_BASE + USERS} + random(1, ${USERS})`,
	get: ownTask,
	put: ownTask,
	patch: ownTask,
	delete: `\\set id :doomed_base + :client_id + :clients * :n\n\\set n :n + 1\n\\set uid ${USER_BASE + USERS} + (:id - :doomed_base) % ${USERS} + 1`
}

function pgbenchScript(kind: Kind, statements: Statement[]): { script: string; constants: Record<string, string> } {
	const constants: Record<string, string> = {}
	const lines = [pick[kind]]
	statements.forEach((statement, s) => {
		let sql = escapeColons(statement.sql)
		// Right to left, so that $1 does not eat the start of $12.
		for (let i = statement.params.length; i >= 1; i--) {
			const param = statement.params[i - 1]
			let name: string
			if (!param || 'variable' in param) name = param?.variable ?? 'uid'
			else {
				name = `${kind}_${s}_${i}`
				constants[name] = String(param.value)
			}
			sql = sql.replaceAll(`$${i}`, `:${name}`)
		}
		lines.push(`${sql};`)
	})
	return { script: `${lines.join('\n')}\n`, constants }
}

export interface PgTarget {
	host: string
	port: string
	user: string
	database: string
}

export interface Rate {
	rate: number
	latencyMs: number
	/** Percentiles of each transaction's own time, measured only at a fixed rate. */
	p50Ms?: number
	p99Ms?: number
}

export interface CeilingOptions {
	seconds: number
	doomed: Doomed
	/** Transactions per second, arriving at random (Poisson) as wrk's fixed-rate connections send. */
	rate?: number
}

function percentiles(latenciesMs: number[]): { p50Ms: number; p99Ms: number } {
	const sorted = latenciesMs.sort((a, b) => a - b)
	const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
	return { p50Ms: at(0.5), p99Ms: at(0.99) }
}

/**
 * Runs the scenario's statements with pgbench (prepared, `clients` connections) for `seconds`, as
 * fast as it can or at a fixed rate.
 */
export async function pgbench(
	target: PgTarget,
	scenario: string,
	statements: Record<Kind, Statement[]>,
	{ clients, seconds, doomed, rate, dir }: CeilingOptions & { clients: number; dir: string }
): Promise<Rate> {
	const args = ['-h', target.host, '-p', target.port, '-U', target.user, '-n', '-M', 'prepared']
	args.push('-c', String(clients), '-j', '2', '-T', String(seconds))
	const logPrefix = join(dir, `pgbench-${scenario}-${Date.now()}`)
	if (rate) args.push('-R', String(rate), '-l', `--log-prefix=${logPrefix}`)
	args.push('-D', 'n=0', '-D', `clients=${clients}`, '-D', `doomed_base=${doomed.base}`)
	for (const [kind, weight] of MIX[scenario] ?? []) {
		const { script, constants } = pgbenchScript(kind, statements[kind])
		const file = join(dir, `${scenario}-${kind}.sql`)
		writeFileSync(file, script)
		args.push('-f', `${file}@${weight}`)
		for (const [name, value] of Object.entries(constants)) args.push('-D', `${name}=${value}`)
	}
	// The sessions of the API's pool for lists. The other statements here (a task by its id, writes)
	// have one plan, which Postgres keeps for them under either setting.
	const options = Object.entries(PLANNED_ONCE).map(([name, value]) => `-c ${name}=${value}`)
	const run = Bun.spawn(['pgbench', ...args, target.database], {
		env: { ...process.env, PGOPTIONS: options.join(' ') },
		stdout: 'pipe',
		stderr: 'pipe'
	})
	const [out, err, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited])
	const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out)
	const latency = /latency average = ([\d.]+) ms/.exec(out)
	const failed = /number of failed transactions: (\d+)/.exec(out)
	if (code !== 0 || !tps || (failed && failed[1] !== '0')) throw new Error(`pgbench ${scenario} failed: ${out}${err}`)
	const measured = { rate: Number(tps[1]), latencyMs: Number(latency?.[1] ?? 0) }
	return rate ? { ...measured, ...percentiles(transactionTimes(logPrefix)) } : measured
}

// A log line per transaction: client, number, time (µs, counted from when it was due), script,
// epoch s, µs, and its lag (µs from when it was due to when it began). wrk times a request from
// when it is sent, so the lag, spent waiting for a client's previous transaction, is taken off.
function transactionTimes(logPrefix: string): number[] {
	const dir = dirname(logPrefix)
	const times: number[] = []
	for (const file of readdirSync(dir).filter((name) => join(dir, name).startsWith(`${logPrefix}.`)))
		for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
			const fields = line.split(' ')
			if (fields.length >= 7) times.push((Number(fields[2]) - Number(fields[6])) / 1000)
		}
	return times
}

/**
 * PGlite runs one statement at a time, whatever the number of callers: this is its rate on the
 * scenario's statements from a loop in the same process, with the parameters pgbench would use;
 * at a fixed rate, a transaction due while another runs waits for it, as it would in the API.
 */
export async function pgliteRate(
	client: PGlite,
	scenario: string,
	statements: Record<Kind, Statement[]>,
	{ seconds, doomed, rate }: CeilingOptions
): Promise<Rate> {
	const mix = MIX[scenario] ?? []
	const total = mix.reduce((sum, [, weight]) => sum + weight, 0)
	let next = 0
	const draw = (): Kind => {
		let r = Math.random() * total
		for (const [kind, weight] of mix) if ((r -= weight) < 0) return kind
		return mix[0]?.[0] ?? 'list'
	}
	const values = (kind: Kind): { uid: string; id: number } => {
		if (kind === 'delete') {
			const k = next++
			return { uid: String(USER_BASE + USERS + (k % USERS) + 1), id: doomed.base + k }
		}
		const u = 1 + Math.floor(Math.random() * USERS) + (kind === 'create' ? USERS : 0)
		return { uid: String(USER_BASE + u), id: (u - 1) * TASKS_PER_USER + 1 + Math.floor(Math.random() * TASKS_PER_USER) }
	}
	const transaction = async () => {
		const kind = draw()
		const chosen = values(kind)
		for (const statement of statements[kind])
			await client.query(statement.sql, bind(statement, chosen))
	}
	const started = performance.now()
	const until = started + seconds * 1000
	const latenciesMs: number[] = []
	let due = started
	let previousEnd = started
	let done = 0
	while (performance.now() < until) {
		// Waiting behind the previous transaction counts; a timer that wakes late does not.
		let queuedMs = 0
		if (rate) {
			due += -Math.log(1 - Math.random()) * (1000 / rate)
			queuedMs = Math.max(0, previousEnd - due)
			const wait = due - performance.now()
			if (wait > 0) await Bun.sleep(wait)
		}
		const begun = performance.now()
		await transaction()
		previousEnd = performance.now()
		latenciesMs.push(queuedMs + previousEnd - begun)
		done++
	}
	const elapsed = (performance.now() - started) / 1000
	const measured = { rate: done / elapsed, latencyMs: (elapsed * 1000) / done }
	return rate ? { ...measured, ...percentiles(latenciesMs) } : measured
}
