import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Task } from '../../src/tasks/model'
import { databaseUrl, emptyDatabase, newUser, replyOf, SECRET, sign, taskOf } from '../support/app'
import { killLeftovers, readyWithin, type Running, startBinary, temporaryFolder } from '../support/binary'
import { binaryCopy } from './processes'

// A database of its own, empty, made on the run's Postgres server and dropped afterwards.
let own: Awaited<ReturnType<typeof emptyDatabase>> | undefined
const replicas: Running[] = []

afterAll(async () => {
	await Promise.all(replicas.map((replica) => replica.stop('SIGTERM')))
	killLeftovers()
	await own?.drop()
})

function client(replica: Running, token: string) {
	return async (method: string, path: string, body?: unknown) => {
		const response = await fetch(`${replica.url}${path}`, {
			method,
			headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
			body: body === undefined ? undefined : JSON.stringify(body)
		})
		return replyOf(response)
	}
}

const newestFirst = (a: Task, b: Task) =>
	a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : b.id - a.id

describe.if(Boolean(databaseUrl))('Running it: several replicas on one database (Postgres)', () => {
	// That they migrate once when started together is binary/replicas.test.ts's to check.
	beforeAll(async () => {
		own = await emptyDatabase('replicas')
		const binary = await binaryCopy()
		const env = { BETTER_AUTH_SECRET: SECRET, DATABASE_URL: own.url }
		replicas.push(
			...(await Promise.all([1, 2, 3].map(() => startBinary({ binary, cwd: temporaryFolder(), env, timeoutMs: 60_000 }))))
		)
		// A replica that waits for another's migrations listens meanwhile, answering 503 until they are in.
		for (const replica of replicas) expect(await readyWithin(replica, 30_000)).toBe(true)
	}, 90_000)

	test('the same users, their requests spread over the replicas: every replica answers with what the last write left', async () => {
		const users = await Promise.all(
			[1, 2, 3, 4].map(async () => {
				const token = await sign({ sub: newUser() })
				return { via: replicas.map((replica) => client(replica, token)), model: new Map<number, Task>() }
			})
		)
		const pick = <T>(items: T[]) => items[Math.floor(Math.random() * items.length)] as T
		// The users run at once; each one's steps are in order, each step on a replica drawn at random,
		// and what it wrote is read back at once through another replica.
		await Promise.all(
			users.map(async ({ via, model }) => {
				for (let step = 0; step < 40; step++) {
					const write = pick(via)
					const read = pick(via.filter((c) => c !== write))
					const ids = [...model.keys()]
					const id = ids.length ? pick(ids) : undefined
					const roll = Math.random()
					if (id === undefined || roll < 0.35) {
						const created = await write('POST', '/api/tasks', { title: `step ${step}`, description: `d${step}` })
						expect(created.status).toBe(201)
						const task = taskOf(created)
						model.set(task.id, task)
					} else if (roll < 0.6) {
						const changed = await write('PUT', `/api/tasks/${id}`, { title: `changed at ${step}` })
						expect(changed.status).toBe(200)
						model.set(id, taskOf(changed))
					} else if (roll < 0.85) {
						const done = await write('PATCH', `/api/tasks/${id}/complete`, { completed: !model.get(id)?.completed })
						expect(done.status).toBe(200)
						model.set(id, taskOf(done))
					} else {
						expect((await write('DELETE', `/api/tasks/${id}`)).status).toBe(204)
						model.delete(id)
						expect((await read('GET', `/api/tasks/${id}`)).status).toBe(404)
					}
					const listed = await read('GET', '/api/tasks')
					expect(listed.body).toEqual([...model.values()].sort(newestFirst))
				}
			})
		)
		// At the end all three agree, for every user.
		for (const { via, model } of users)
			for (const call of via)
				expect((await call('GET', '/api/tasks')).body).toEqual([...model.values()].sort(newestFirst))
	}, 120_000)

	test('one task changed through all replicas at once: the result is one of the answers, the one with the latest updated_at', async () => {
		const token = await sign({ sub: newUser() })
		const via = replicas.map((replica) => client(replica, token))
		const created = await via[0]!('POST', '/api/tasks', { title: 'contended' })
		for (let round = 0; round < 5; round++) {
			const answers = await Promise.all(
				Array.from({ length: 12 }, (_, n) =>
					n % 2
						? via[n % 3]!('PATCH', `/api/tasks/${taskOf(created).id}/complete`, { completed: n % 4 === 1 })
						: via[n % 3]!('PUT', `/api/tasks/${taskOf(created).id}`, {
								title: `round ${round} writer ${n}`,
								description: `by ${n}`
							})
				)
			)
			expect(answers.map((a) => a.status)).toEqual(Array(12).fill(200))
			const stamps = answers.map((a) => taskOf(a).updated_at)
			// Every change moved updated_at to a time of its own.
			expect(new Set(stamps).size).toBe(stamps.length)
			const last = answers.map(taskOf).reduce((a, b) => (a.updated_at > b.updated_at ? a : b))
			for (const call of via) {
				// Writes to one row are serialised: the last one's answer is the row as it stays.
				expect((await call('GET', `/api/tasks/${taskOf(created).id}`)).body).toEqual(last)
			}
		}
	}, 60_000)
})
