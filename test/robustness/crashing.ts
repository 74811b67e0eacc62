// Crash durability, shared by test/robustness/crash.test.ts (20+ kills) and scripts/crash.ts (100+):
// writers create, replace, complete and delete their own tasks on the compiled binary, which is
// killed with SIGKILL at random moments and started again on the same database. After each restart
// every write that was answered 2xx must be there with the content it was answered with; a write
// cut off by the kill may be there or not, but only whole; nothing else may appear.
import { SignJWT } from 'jose'
import postgres from 'postgres'
import { taskOf, tasksOf } from '../support/app'
import { type Running, startBinary, temporaryFolder } from '../support/binary'
import type { Task } from '../../src/tasks/model'

type Env = Record<string, string | undefined>


type Content = Pick<Task, 'title' | 'description' | 'completed'>

/** A write sent but not answered: the kill came first, so it may or may not have happened. */
type Pending =
	| { kind: 'create'; content: Content }
	| { kind: 'change'; id: number; content: Content }
	| { kind: 'delete'; id: number }

interface Writer {
	sub: string
	token: string
	/** What the server acknowledged, by id. */
	tasks: Map<number, Task>
	/** Ids whose deletion was acknowledged: they must never come back. */
	deleted: Set<number>
	pending?: Pending
	serial: number
}

export interface CrashReport {
	kills: number
	/** Writes answered 2xx, all cycles together. */
	acknowledged: number
	/** Writes cut off by a kill (no answer), found applied or not after the restart. */
	cutOff: number
	/** An acknowledged write missing or rolled back after a restart. */
	lost: number
	/** A task whose content is no whole version that was ever sent, or one nobody created. */
	wrong: number
	problems: string[]
}

export interface CrashOptions {
	binary: string
	settings: Env
	secret: string
	kills: number
	writers?: number
	/** Each cycle kills the binary this long (at random, in ms) after it started serving. */
	killAfterMs?: [number, number]
	progress?: (report: CrashReport) => void
}

// On Postgres a killed process's statements run on: its backends notice the lost client only when
// they answer it, and a commit that waits for the disk can land after the restarted binary has been
// checked. A cut-off write is judged once no statement of the database's clients has run for two
// looks 25 ms apart (statements pipelined behind one leave a backend idle only between them); the
// writers have stopped. At most 10 s.
async function statementsEnded(databaseUrl: string): Promise<void> {
	const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
	try {
		let quiet = 0
		for (const deadline = Date.now() + 10_000; quiet < 2 && Date.now() < deadline; await Bun.sleep(25)) {
			const [row] = await sql<{ running: number }[]>`
				select count(*)::int as running from pg_stat_activity
				where datname = current_database() and backend_type = 'client backend'
					and state <> 'idle' and pid <> pg_backend_pid()`
			quiet = row?.running === 0 ? quiet + 1 : 0
		}
	} finally {
		await sql.end()
	}
}

const same = (task: Task | undefined, content: Content) =>
	task !== undefined &&
	task.title === content.title &&
	task.description === content.description &&
	task.completed === content.completed

export async function crashLoop({
	binary,
	settings,
	secret,
	kills,
	writers: writerCount = 6,
	killAfterMs = [30, 1200],
	progress
}: CrashOptions): Promise<CrashReport> {
	const report: CrashReport = { kills: 0, acknowledged: 0, cutOff: 0, lost: 0, wrong: 0, problems: [] }
	const run = crypto.randomUUID().slice(0, 8)
	const writers: Writer[] = await Promise.all(
		Array.from({ length: writerCount }, async (_, n) => {
			const sub = `crash-${run}-${n}`
			const token = await new SignJWT({ sub })
				.setProtectedHeader({ alg: 'HS256' })
				.setIssuedAt()
				.setExpirationTime('6h')
				.sign(new TextEncoder().encode(secret))
			return { sub, token, tasks: new Map(), deleted: new Set(), serial: 0 }
		})
	)
	const cwd = temporaryFolder('crash-')
	const problem = (text: string) => {
		if (report.problems.length < 20) report.problems.push(text)
	}

	async function call(url: string, writer: Writer, method: string, path: string, body?: unknown) {
		const response = await fetch(`${url}${path}`, {
			method,
			headers: { authorization: `Bearer ${writer.token}`, 'content-type': 'application/json' },
			body: body === undefined ? undefined : JSON.stringify(body)
		})
		const text = await response.text()
		return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined }
	}

	// The task a write answered with, when it answered `status`; any other answer stops the writer.
	const answered = (reply: { status: number; body: unknown }, status: number, what: string): Task => {
		if (reply.status !== status) throw new Error(`${what} answered ${reply.status}`)
		return taskOf(reply)
	}

	// One write at a time per writer, each on its own tasks, so the order of its writes is known.
	async function write(url: string, writer: Writer): Promise<void> {
		const serial = ++writer.serial
		const ids = [...writer.tasks.keys()]
		const pick = ids[Math.floor(Math.random() * ids.length)]
		// Past 100 tasks a writer stops creating, so a listing of 1000 always shows all of them.
		const roll = writer.tasks.size >= 100 ? 0.4 + Math.random() * 0.6 : Math.random()
		// A version tag in both title and description: a write applied by halves would show two.
		const tag = `${writer.sub}-v${serial}`
		const content: Content = { title: `title ${tag}`, description: `description ${tag}`, completed: serial % 2 === 0 }
		if (pick === undefined || roll < 0.4) {
			writer.pending = { kind: 'create', content }
			const task = answered(await call(url, writer, 'POST', '/api/tasks', content), 201, 'create')
			writer.tasks.set(task.id, task)
		} else if (roll < 0.7) {
			writer.pending = { kind: 'change', id: pick, content }
			writer.tasks.set(pick, answered(await call(url, writer, 'PUT', `/api/tasks/${pick}`, content), 200, 'replace'))
		} else if (roll < 0.85) {
			const before = writer.tasks.get(pick)
			if (!before) throw new Error(`task ${pick} is not the writer's`)
			const completed = !before.completed
			writer.pending = { kind: 'change', id: pick, content: { ...before, completed } }
			const reply = await call(url, writer, 'PATCH', `/api/tasks/${pick}/complete`, { completed })
			writer.tasks.set(pick, answered(reply, 200, 'complete'))
		} else {
			writer.pending = { kind: 'delete', id: pick }
			const reply = await call(url, writer, 'DELETE', `/api/tasks/${pick}`)
			// 404: fetch sent the DELETE again after a reset, and the first one had deleted it. Gone either way.
			if (reply.status !== 204 && reply.status !== 404) throw new Error(`delete answered ${reply.status}`)
			writer.tasks.delete(pick)
			writer.deleted.add(pick)
		}
		writer.pending = undefined
		report.acknowledged++
	}

	// Compares what the restarted server has with what was acknowledged, then takes the outcome of
	// each cut-off write as the server shows it.
	async function verify(url: string, writer: Writer): Promise<void> {
		const reply = await fetch(`${url}/api/tasks?limit=1000`, { headers: { authorization: `Bearer ${writer.token}` } })
		if (reply.status !== 200) throw new Error(`listing after a restart answered ${reply.status}`)
		const found = new Map(tasksOf({ status: reply.status, body: await reply.json() }).map((task) => [task.id, task]))
		const pending = writer.pending
		if (pending) report.cutOff++
		for (const [id, acknowledged] of writer.tasks) {
			const now = found.get(id)
			const cutOff = pending && pending.kind !== 'create' && pending.id === id ? pending : undefined
			if (!now) {
				if (cutOff?.kind === 'delete') {
					writer.tasks.delete(id)
					writer.deleted.add(id)
					continue
				}
				report.lost++
				problem(`${writer.sub}: task ${id} acknowledged as ${JSON.stringify(acknowledged)} is gone`)
				writer.tasks.delete(id)
				continue
			}
			found.delete(id)
			if (Bun.deepEquals(now, acknowledged)) continue
			// fetch sends a PUT again when its connection is reset before the answer (PUT is idempotent);
			// the killed process's statement may still commit after the copy that was answered. The
			// content is the acknowledged one; only updated_at tells of the second run.
			if (
				same(now, acknowledged) &&
				now.created_at === acknowledged.created_at &&
				now.updated_at > acknowledged.updated_at
			) {
				writer.tasks.set(id, now)
				continue
			}
			if (cutOff?.kind === 'change' && same(now, cutOff.content) && now.created_at === acknowledged.created_at) {
				writer.tasks.set(id, now)
				continue
			}
			const older = now.updated_at < acknowledged.updated_at
			if (older) report.lost++
			else report.wrong++
			problem(`${writer.sub}: task ${id} is ${JSON.stringify(now)}, acknowledged ${JSON.stringify(acknowledged)}`)
			writer.tasks.set(id, now)
		}
		for (const [id, task] of found) {
			if (pending?.kind === 'create' && same(task, pending.content) && !writer.deleted.has(id)) {
				writer.tasks.set(id, task)
				continue
			}
			report.wrong++
			problem(`${writer.sub}: task ${id} ${JSON.stringify(task)} was never created (or was deleted)`)
		}
		writer.pending = undefined
	}

	let running: Running | undefined
	try {
		for (let cycle = 0; cycle <= kills; cycle++) {
			running = await startBinary({ binary, cwd, env: settings, timeoutMs: 60_000 })
			const url = running.url
			for (const writer of writers) await verify(url, writer)
			if (cycle === kills) break
			let killed = false
			const load = writers.map(async (writer) => {
				while (!killed)
					try {
						await write(url, writer)
					} catch (error) {
						if (killed) return
						throw error
					}
			})
			const [low, high] = killAfterMs
			await Promise.race([Bun.sleep(low + Math.random() * (high - low)), ...load])
			killed = true
			running.process.kill('SIGKILL')
			await running.process.exited
			await Promise.all(load)
			if (settings.DATABASE_URL) await statementsEnded(settings.DATABASE_URL)
			report.kills++
			progress?.(report)
		}
		await running?.stop('SIGTERM')
	} finally {
		running?.process.kill('SIGKILL')
	}
	return report
}
