// Property-based fuzzing of the API from its own OpenAPI document, shared by
// test/robustness/fuzz.test.ts (a few hundred requests, in process) and scripts/fuzz.ts (the long
// run, over HTTP against the compiled binary). Each run is a sequence of steps by a fresh user
// "alice" beside a fresh "bob": valid and hostile requests, each judged by an oracle built from the
// document and the contract, then alice's list is compared with the model the run keeps.
import fc from 'fast-check'
import { SignJWT } from 'jose'
import { type Document, judgeBody, judgeQueryValue, MAX_ID, readDocument, ROUTES, type Route } from './fuzz-oracle'
import { type Body, type Forgery, JSON_TYPES, type Step, stepArb, type Target } from './fuzz-steps'
import type { Task } from '../../src/tasks/model'

export interface Reply {
	status: number
	headers: Headers
	text: string
}

export interface Request {
	method: string
	path: string
	headers: Record<string, string>
	body?: string | Uint8Array
}

export type Send = (request: Request) => Promise<Reply>

export interface FuzzOptions {
	send: Send
	/** The BETTER_AUTH_SECRET of the server under test. */
	secret: string
	/** How many fast-check runs; each sends up to `maxSteps` steps, each step two requests or more. */
	runs: number
	maxSteps?: number
	seed?: number
}

export interface FuzzReport {
	runs: number
	steps: number
	requests: number
	byStatus: Record<string, number>
	/** The shrunk counterexample and what broke, when something did. */
	failure?: string
}

// ---------------------------------------------------------------------------------------------
// Running a sequence of steps against the server and the model.


class Broken extends Error {}

// HTTP servers bound the size of a request's head (here 64 KiB; Bun's default is 16); a head over
// that is refused with 431 before the app sees it. Such a step ends there: nothing reached the app,
// nothing changed.
const HEAD_LIMIT_BYTES = 8 * 1024

class RefusedByServer extends Error {}

function check(condition: unknown, what: string, context: () => string): asserts condition {
	if (!condition) throw new Broken(`${what}\n${context()}`)
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')

async function hs(
	claims: Record<string, unknown>,
	secret: string,
	alg = 'HS256',
	times?: { iat: number; exp: number }
) {
	const jwt = new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' })
	if (times) jwt.setIssuedAt(times.iat).setExpirationTime(times.exp)
	else jwt.setIssuedAt().setExpirationTime('1h')
	return jwt.sign(new TextEncoder().encode(secret))
}

const ERROR_CODES: Record<number, string[]> = {
	401: ['AUTHENTICATION_REQUIRED'],
	404: ['RESOURCE_NOT_FOUND', 'NOT_FOUND'],
	405: ['METHOD_NOT_ALLOWED'],
	413: ['PAYLOAD_TOO_LARGE'],
	422: ['VALIDATION_ERROR']
}

const byNewest = (a: Task, b: Task) =>
	a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : b.id - a.id

const isTask = (value: unknown): value is Task =>
	typeof value === 'object' && value !== null && 'id' in value && 'user_id' in value && 'title' in value

const ascii = (text: string | null) => text === null || /^[\x20-\x7e]*$/.test(text)

export async function fuzz({ send, secret, runs, maxSteps = 30, seed }: FuzzOptions): Promise<FuzzReport> {
	const report: FuzzReport = { runs: 0, steps: 0, requests: 0, byStatus: {} }
	const sent: Send = async (request) => {
		const reply = await send(request)
		report.requests++
		report.byStatus[reply.status] = (report.byStatus[reply.status] ?? 0) + 1
		return reply
	}
	const documentReply = await sent({ method: 'GET', path: '/docs/json', headers: {} })
	if (documentReply.status !== 200) throw new Error(`/docs/json answered ${documentReply.status}`)
	const api = readDocument(JSON.parse(documentReply.text) as Document)

	async function run(steps: Step[]): Promise<void> {
		report.runs++
		const alice = { sub: `fuzz-alice-${crypto.randomUUID()}`, token: '' }
		const bob = { sub: `fuzz-bob-${crypto.randomUUID()}`, token: '' }
		alice.token = await hs({ sub: alice.sub }, secret)
		bob.token = await hs({ sub: bob.sub }, secret)
		const model = new Map<number, Task>()
		const deleted: number[] = []
		const log: string[] = []
		const context = () => log.slice(-6).join('\n')

		const request = async (
			method: string,
			path: string,
			token: string | undefined,
			body?: Body,
			headers: Record<string, string> = {}
		) => {
			const all: Record<string, string> = { ...headers }
			if (token !== undefined) all.authorization = token
			// fetch refuses a body on GET and HEAD.
			if (method === 'GET' || method === 'HEAD') body = undefined
			if (body?.contentType) all['content-type'] = body.contentType
			const reply = await sent({ method, path, headers: all, body: body?.raw })
			const headBytes =
				Buffer.byteLength(path) + Object.values(all).reduce((sum, value) => sum + Buffer.byteLength(value), 0)
			if ([414, 431].includes(reply.status) && headBytes > HEAD_LIMIT_BYTES) throw new RefusedByServer()
			const shown =
				typeof body?.raw === 'string'
					? JSON.stringify(body.raw.slice(0, 200))
					: body
						? `<${body.raw.byteLength} bytes>`
						: ''
			log.push(`${method} ${path.slice(0, 200)} ${shown} -> ${reply.status} ${reply.text.slice(0, 300)}`)
			return reply
		}
		const json = (reply: Reply): unknown => {
			try {
				return JSON.parse(reply.text)
			} catch {
				return undefined
			}
		}

		// bob's tasks, with titles that must never show up in anything alice gets.
		const secrets: string[] = []
		const bobs: Task[] = []
		for (let i = 0; i < 2; i++) {
			const title = `bob-only-${crypto.randomUUID()}`
			const reply = await request('POST', '/api/tasks', `Bearer ${bob.token}`, {
				raw: JSON.stringify({ title }),
				contentType: 'application/json'
			})
			check(reply.status === 201, 'bob could not create his task', context)
			secrets.push(title)
			bobs.push(json(reply) as Task)
		}

		const idOf = (target: Target): { id: string; own?: Task } => {
			if (target.kind === 'raw') return { id: target.id }
			if (target.kind === 'foreign') return { id: String(bobs[target.pick % bobs.length]?.id) }
			if (target.kind === 'deleted')
				return { id: String(deleted.length ? deleted[target.pick % deleted.length] : MAX_ID) }
			const own = [...model.values()]
			const task = own.length ? own[target.pick % own.length] : undefined
			return task ? { id: String(task.id), own: task } : { id: String(MAX_ID) }
		}

		// The checks every reply gets, whatever was sent.
		const invariants = (reply: Reply, method: string) => {
			check(reply.status < 500, `a ${reply.status}`, context)
			check(reply.headers.get('x-request-id'), 'no X-Request-Id', context)
			check(reply.headers.get('x-content-type-options') === 'nosniff', 'no X-Content-Type-Options', context)
			for (const secret of secrets) check(!reply.text.includes(secret), "bob's data shown to alice", context)
			const body = json(reply)
			for (const task of Array.isArray(body) ? body : [body])
				if (isTask(task)) check(task.user_id === alice.sub, "a task of someone else's shown to alice", context)
			if (reply.status < 400 || method === 'HEAD') return
			check(
				reply.headers.get('content-type') === 'application/json',
				'an error that is not application/json',
				context
			)
			const keys = typeof body === 'object' && body !== null ? Object.keys(body).sort().join() : ''
			check(keys === 'detail,error_code', 'an error not shaped {detail, error_code}', context)
			const { detail, error_code } = body as { detail: unknown; error_code: unknown }
			check(typeof detail === 'string' && detail.length > 0, 'an error without a detail', context)
			const codes = ERROR_CODES[reply.status]
			check(
				!codes || codes.includes(error_code as string),
				`${reply.status} with error_code ${String(error_code)}`,
				context
			)
			if (reply.status === 401)
				check(
					reply.headers.get('www-authenticate')?.startsWith('Bearer'),
					'401 without WWW-Authenticate: Bearer',
					context
				)
			if (reply.status === 405) check(reply.headers.get('allow'), '405 without Allow', context)
		}
		const expectStatus = (reply: Reply, allowed: number[]) =>
			check(allowed.includes(reply.status), `expected ${allowed.join(' or ')}`, context)

		const acceptTask = (reply: Reply, sentValue: Record<string, unknown>, before?: Task): Task => {
			const task = json(reply)
			check(isTask(task), 'no task in the reply', context)
			check(task.title === sentValue.title, 'the title is not the one sent', context)
			const description = 'description' in sentValue ? sentValue.description : (before?.description ?? null)
			const completed = 'completed' in sentValue ? sentValue.completed : (before?.completed ?? false)
			check(
				task.description === description && task.completed === completed,
				'description/completed not as sent',
				context
			)
			if (before) {
				check(task.id === before.id && task.created_at === before.created_at, 'id or created_at changed', context)
				check(task.updated_at > before.updated_at, 'updated_at did not move', context)
			}
			model.set(task.id, task)
			return task
		}

		const routePath = (route: Route, id: string) => ROUTES[route][1].replace('{id}', id)

		async function perform(step: Step): Promise<void> {
			const bearer = `Bearer ${alice.token}`
			switch (step.op) {
				case 'create': {
					const reply = await request('POST', '/api/tasks', bearer, step.body)
					invariants(reply, 'POST')
					const verdict = judgeBody(step.body.raw, api.bodies.create)
					const jsonType = JSON_TYPES.includes(step.body.contentType ?? '')
					if (verdict.kind === 'too-large') return expectStatus(reply, [413])
					if (verdict.kind === 'invalid') return expectStatus(reply, [422, ...(jsonType ? [] : [415])])
					expectStatus(reply, jsonType ? [201] : [201, 415, 422])
					if (reply.status !== 201) return
					const task = acceptTask(reply, verdict.value)
					check(reply.headers.get('location') === `/api/tasks/${task.id}`, 'no Location', context)
					return
				}
				case 'read':
				case 'delete': {
					const { id, own } = idOf(step.target)
					const method = step.op === 'read' ? 'GET' : 'DELETE'
					const reply = await request(method, routePath(step.op, id), bearer)
					invariants(reply, method)
					if (!own) return expectStatus(reply, [404])
					expectStatus(reply, [step.op === 'read' ? 200 : 204])
					if (step.op === 'read')
						return check(Bun.deepEquals(json(reply), own), 'the task read is not the model', context)
					check(reply.text === '', 'a 204 with a body', context)
					model.delete(own.id)
					deleted.push(own.id)
					return
				}
				case 'replace':
				case 'complete': {
					const { id, own } = idOf(step.target)
					const method = step.op === 'replace' ? 'PUT' : 'PATCH'
					const reply = await request(method, routePath(step.op, id), bearer, step.body)
					invariants(reply, method)
					const verdict = judgeBody(step.body.raw, api.bodies[step.op])
					const jsonType = JSON_TYPES.includes(step.body.contentType ?? '')
					if (verdict.kind === 'too-large') return expectStatus(reply, [413])
					if (!own) return expectStatus(reply, verdict.kind === 'valid' ? [404] : [404, 422, 415])
					if (verdict.kind === 'invalid') return expectStatus(reply, [422, ...(jsonType ? [] : [415])])
					expectStatus(reply, jsonType ? [200] : [200, 415, 422])
					if (reply.status !== 200) return
					acceptTask(
						reply,
						step.op === 'replace'
							? verdict.value
							: { title: own.title, description: own.description, completed: verdict.value.completed },
						own
					)
					return
				}
				case 'list':
					return listStep(step.query, bearer)
				case 'forged': {
					const { id } = idOf(step.target)
					const [method] = ROUTES[step.route]
					const body = ['create', 'replace'].includes(step.route)
						? { raw: '{"title":"forged"}', contentType: 'application/json' }
						: step.route === 'complete'
							? { raw: '{"completed":true}', contentType: 'application/json' }
							: undefined
					let path = routePath(step.route, id)
					const authorization = await forge(step.forgery)
					if (step.forgery === 'in-query') path += `?access_token=${alice.token}&token=${alice.token}`
					const reply = await request(method.toUpperCase(), path, authorization, body)
					invariants(reply, method)
					return expectStatus(reply, [401])
				}
				case 'odd': {
					const reply = await request(step.method, step.path, bearer, step.body)
					invariants(reply, step.method)
					if (reply.status === 201 && step.method === 'POST') {
						const verdict = step.body ? judgeBody(step.body.raw, api.bodies.create) : { kind: 'invalid' as const }
						check(verdict.kind === 'valid', 'an odd request created a task from an invalid body', context)
						acceptTask(reply, verdict.value)
					} else if (reply.status < 300 && !['GET', 'HEAD', 'OPTIONS'].includes(step.method)) {
						check(false, `an odd ${step.method} succeeded`, context)
					}
					return
				}
			}
		}

		async function forge(forgery: Forgery): Promise<string | undefined> {
			const now = Math.floor(Date.now() / 1000)
			const [header, , signature] = alice.token.split('.')
			switch (forgery) {
				case 'missing':
				case 'in-query':
					return undefined
				case 'empty':
					return 'Bearer '
				case 'garbage':
					return 'Bearer not.a.jwt'
				case 'expired':
					return `Bearer ${await hs({ sub: alice.sub }, secret, 'HS256', { iat: now - 7200, exp: now - 120 })}`
				case 'other-secret':
					return `Bearer ${await hs({ sub: alice.sub }, `${secret}-but-another-one`)}`
				case 'alg-none':
					return `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: alice.sub, exp: now + 3600 })}.`
				case 'spliced':
					return `Bearer ${header}.${b64({ sub: bob.sub, iat: now, exp: now + 3600 })}.${signature}`
				case 'no-sub':
					return `Bearer ${await hs({ name: 'nobody' }, secret)}`
				case 'numeric-sub':
					return `Bearer ${await hs({ sub: 12345 }, secret)}`
				case 'not-before':
					return `Bearer ${await hs({ sub: alice.sub, nbf: now + 3600 }, secret)}`
				case 'hs512':
					return `Bearer ${await hs({ sub: alice.sub }, secret, 'HS512')}`
				case 'basic':
					return `Basic ${Buffer.from(`${alice.sub}:${alice.token}`).toString('base64')}`
				case 'huge':
					return `Bearer ${'a'.repeat(8_000)}.${'b'.repeat(8_000)}.c`
				case 'trailing':
					return `Bearer ${alice.token} ${alice.token}`
			}
		}

		async function listStep(query: [string, string][], bearer: string) {
			const search = new URLSearchParams(query).toString()
			const reply = await request('GET', `/api/tasks${search ? `?${search}` : ''}`, bearer)
			invariants(reply, 'GET')
			// Judged as the server reads them: URL encoding turns a lone surrogate into U+FFFD.
			const values = new Map<string, string[]>()
			for (const [name, value] of new URLSearchParams(search)) values.set(name, [...(values.get(name) ?? []), value])
			const verdicts = api.query
				.filter((p) => values.has(p.name))
				.map((p) => judgeQueryValue(p.schema, values.get(p.name) ?? []))
			if (verdicts.includes('invalid')) return expectStatus(reply, [422])
			expectStatus(reply, verdicts.includes('either') ? [200, 422] : [200])
			if (reply.status !== 200) return
			const got = json(reply)
			check(Array.isArray(got), 'the list is not an array', context)
			const total = Number(reply.headers.get('x-total-count'))
			check(
				Number.isInteger(total) && total >= got.length,
				'X-Total-Count is not a count of at least the page',
				context
			)
			for (const task of got as Task[])
				check(Bun.deepEquals(task, model.get(task.id)), 'a listed task is not the model', context)
			if (verdicts.includes('either')) return
			const one = (name: string) => values.get(name)?.[0]
			const completed = one('completed')?.toLowerCase()
			const q = one('q')
			let expected = [...model.values()].filter((t) => completed === undefined || String(t.completed) === completed)
			const sort = (one('sort') ?? 'created_at') as 'created_at' | 'updated_at' | 'title'
			const exact = (!q || expected.every((t) => ascii(t.title) && ascii(t.description))) && sort !== 'title'
			if (q) {
				const needle = q.toLowerCase()
				expected = expected.filter(
					(t) => t.title.toLowerCase().includes(needle) || (t.description ?? '').toLowerCase().includes(needle)
				)
			}
			if (!exact) return
			const direction = (one('order') ?? 'desc') === 'asc' ? -1 : 1
			expected.sort(
				(a, b) =>
					direction *
					(sort === 'created_at'
						? byNewest(a, b)
						: a.updated_at < b.updated_at
							? 1
							: a.updated_at > b.updated_at
								? -1
								: b.id - a.id)
			)
			check(total === expected.length, `X-Total-Count ${total}, the model has ${expected.length}`, context)
			const offset = Number(one('offset') ?? 0)
			const limit = one('limit') === undefined ? undefined : Number(one('limit'))
			const page = expected.slice(offset, limit === undefined ? undefined : offset + limit)
			check(Bun.deepEquals(got, page), 'the page is not the model', context)
		}

		// alice's whole list equals the model after every step, newest first.
		async function compare() {
			const reply = await request('GET', '/api/tasks?limit=1000', `Bearer ${alice.token}`)
			invariants(reply, 'GET')
			check(reply.status === 200, 'alice cannot list her tasks', context)
			check(Bun.deepEquals(json(reply), [...model.values()].sort(byNewest)), "alice's list is not the model", context)
			check(reply.headers.get('x-total-count') === String(model.size), 'X-Total-Count is not the model size', context)
		}

		for (const step of steps) {
			report.steps++
			try {
				await perform(step)
			} catch (error) {
				if (!(error instanceof RefusedByServer)) throw error
			}
			await compare()
		}
		const bobsList = await request('GET', '/api/tasks', `Bearer ${bob.token}`)
		check(Bun.deepEquals(json(bobsList), [...bobs].sort(byNewest)), "bob's tasks changed", context)
	}

	const result = await fc.check(
		fc.asyncProperty(fc.array(stepArb(api), { minLength: 1, maxLength: maxSteps, size: 'max' }), async (steps) => {
			await run(steps)
		}),
		{ numRuns: runs, seed, endOnFailure: false, maxSkipsPerRun: 0 }
	)
	if (result.failed) {
		const cause = result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance)
		report.failure = `${cause}\n\n${(fc.defaultReportMessage(result) ?? '').slice(0, 4000)}`
	}
	return report
}
