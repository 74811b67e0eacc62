import { type Context, Elysia, t } from 'elysia'
import { authentication, type Verifier } from '../auth'
import type { Pools } from '../database'
import { ResourceNotFound } from '../errors'
import { Completion, ErrorBody, ListQuery, Task, TaskId, TaskInput } from './model'
import { createTask, deleteTask, getTask, listTasks, setCompleted, updateTask } from './queries'

const found = (task: Task | undefined): Task => {
	if (!task) throw new ResourceNotFound()
	return task
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

const errors = { 401: ErrorBody, 404: ErrorBody, 422: ErrorBody }

// app.ts reads every body itself; naming the parser is what puts application/json in the OpenAPI document.
const json = { parse: 'json' as const }

export const taskRoutes = ({ db, reads, searches, lookups }: Pools, verify: Verifier) =>
	new Elysia({ prefix: '/api/tasks', detail: { tags: ['Tasks'], security: [{ bearer: [] }] } })
		.use(authentication(verify))
		.get(
			'',
			async ({ userId, query, set }) => {
				const { page, total } = await listTasks({ reads, searches }, userId, query)
				set.headers['content-type'] = 'application/json;charset=utf-8'
				set.headers['x-total-count'] = String(total)
				return sentAsIs(set, page)
			},
			{ query: ListQuery, response: { 200: t.Array(Task), ...errors }, detail: { summary: "List the caller's tasks" } }
		)
		.post(
			'',
			async ({ userId, body, set, status }) => {
				const task = await createTask(db, userId, body)
				set.headers.location = `/api/tasks/${task.id}`
				return status(201, task)
			},
			{ ...json, body: TaskInput, response: { 201: Task, ...errors }, detail: { summary: 'Create a task' } }
		)
		.get('/:id', async ({ userId, params }) => found(await getTask(lookups, userId, params.id)), {
			params: TaskId,
			response: { 200: Task, ...errors },
			detail: { summary: 'Get a task' }
		})
		.put('/:id', async ({ userId, params, body }) => found(await updateTask(db, userId, params.id, body)), {
			...json,
			params: TaskId,
			body: TaskInput,
			response: { 200: Task, ...errors },
			detail: { summary: 'Replace a task; fields left out keep their value' }
		})
		.delete(
			'/:id',
			async ({ userId, params, status }) => {
				if (!(await deleteTask(db, userId, params.id))) throw new ResourceNotFound()
				return status(204, undefined)
			},
			{ params: TaskId, response: { 204: t.Void(), ...errors }, detail: { summary: 'Delete a task' } }
		)
		.patch(
			'/:id/complete',
			async ({ userId, params, body }) => found(await setCompleted(db, userId, params.id, body.completed)),
			{
				...json,
				params: TaskId,
				body: Completion,
				response: { 200: Task, ...errors },
				detail: { summary: 'Mark a task complete or not' }
			}
		)
