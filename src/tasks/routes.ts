import { type Context, Elysia, t } from 'elysia'
import { authentication, type Verifier } from '../auth'
import type { Pools } from '../database'
import { codeOf } from '../database/unavailable'
import { ResourceNotFound, ValidationFailed } from '../errors'
import { Completion, ErrorBody, ListQuery, Task, TaskId, TaskInput } from './model'
import { createTask, deleteTask, getTask, listTasks, setCompleted, updateTask } from './queries'

const found = (task: Task | undefined): Task => {
	if (!task) throw new ResourceNotFound()
	return task
}

// Postgres writes a list as one value, of at most 1 GB (54000, program_limit_exceeded): a user with
// that much cannot have every task at once, but can have them page by page.
const tooLargeForOneList = (error: unknown): never => {
	if (codeOf(error) === '54000')
		throw new ValidationFailed('The list is too large to send at once: ask for it in pages, with "limit" and "offset".')
	throw error
}

// JSON the database wrote, sent as it is: not checked against the schema, which documents it.
// Elysia copies a Response returned while set.headers holds any (here always: CORS and security
// headers) into a second one, reading its body back as a stream: about 5 µs, a twentieth of the
// API's CPU for a list. One built with those headers, set.headers then emptied, is sent as it is.
function sentAsIs(set: Context['set'], json: string): Response {
	const headers: Record<string, string> = {}
	for (const name in set.headers) headers[name] = String(set.headers[name])
	set.headers = {}
	return new Response(json, { headers })
}

// The errors each route may answer, as the contract's table has them; any may answer 503 when the
// database cannot be reached. The routes of one task also declare a 422, which only those with a
// body answer (a bad id is a 404): a route whose params are checked and that declares no 422 has
// Eden type its errors as Elysia's validation error too, not only as {detail, error_code}.
const always = { 401: ErrorBody, 503: ErrorBody }
const badQuery = { 422: ErrorBody }
const badBody = { 413: ErrorBody, 422: ErrorBody }
const oneTask = { 404: ErrorBody, 422: ErrorBody }

// app.ts reads every body itself; naming the parser is what puts application/json in the OpenAPI document.
const json = { parse: 'json' as const }

export const taskRoutes = (pools: Pools, verify: Verifier) =>
	new Elysia({ prefix: '/api/tasks', detail: { tags: ['Tasks'], security: [{ bearer: [] }] } })
		.use(authentication(verify))
		.get(
			'',
			async ({ userId, query, set }) => {
				const { page, total } = await listTasks(pools, userId, query).catch(tooLargeForOneList)
				set.headers['x-total-count'] = String(total)
				return sentAsIs(set, page)
			},
			{
				query: ListQuery,
				// Python's HTTP clients write a boolean as True or False. This runs before validation,
				// so the value is still the query string's text, whatever the schema's type says.
				transform: ({ query }: { query: Record<string, unknown> }) => {
					if (typeof query.completed === 'string') query.completed = query.completed.toLowerCase()
				},
				response: { 200: t.Array(Task), ...always, ...badQuery },
				detail: { summary: "List the caller's tasks" }
			}
		)
		.post(
			'',
			async ({ userId, body, set, status }) => {
				const task = await createTask(pools, userId, body)
				set.headers.location = `/api/tasks/${task.id}`
				return status(201, task)
			},
			{ ...json, body: TaskInput, response: { 201: Task, ...always, ...badBody }, detail: { summary: 'Create a task' } }
		)
		.get('/:id', async ({ userId, params }) => found(await getTask(pools, userId, params.id)), {
			params: TaskId,
			response: { 200: Task, ...always, ...oneTask },
			detail: { summary: 'Get a task' }
		})
		.put('/:id', async ({ userId, params, body }) => found(await updateTask(pools, userId, params.id, body)), {
			...json,
			params: TaskId,
			body: TaskInput,
			response: { 200: Task, ...always, ...oneTask, ...badBody },
			detail: { summary: 'Replace a task; fields left out keep their value' }
		})
		.delete(
			'/:id',
			async ({ userId, params, set, status }) => {
				if (!(await deleteTask(pools, userId, params.id))) throw new ResourceNotFound()
				// The one answer without a body: app.ts types every other as JSON.
				delete set.headers['content-type']
				return status(204, undefined)
			},
			{ params: TaskId, response: { 204: t.Void(), ...always, ...oneTask }, detail: { summary: 'Delete a task' } }
		)
		.patch(
			'/:id/complete',
			async ({ userId, params, body }) => found(await setCompleted(pools, userId, params.id, body.completed)),
			{
				...json,
				params: TaskId,
				body: Completion,
				response: { 200: Task, ...always, ...oneTask, ...badBody },
				detail: { summary: 'Mark a task complete or not' }
			}
		)
