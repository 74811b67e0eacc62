import { describe, expect, test } from 'bun:test'
import { asUser, errorOf, type Reply, taskOf, tasksOf, testApp } from '../support/app'

const app = await testApp()

// The reply for an id that never existed: another user's task must be indistinguishable from it.
const NEVER = '/api/tasks/2147483647'

function expectSameAsNeverExisted(reply: Reply, never: Reply) {
	expect(reply.status).toBe(404)
	expect(reply.body).toEqual({ detail: errorOf(never).detail, error_code: 'RESOURCE_NOT_FOUND' })
	expect(reply.headers.get('content-type')).toBe(never.headers.get('content-type'))
}

async function aliceAndBobsTask() {
	const alice = await asUser(app)
	const bob = await asUser(app)
	const task = taskOf(await bob.post('/api/tasks', { title: 'Bob`s secret', description: 'Only Bob', completed: false }))
	return { alice, bob, task, path: `/api/tasks/${task.id}` }
}

describe('A task of another user: 404 RESOURCE_NOT_FOUND, exactly as for an id that never existed', () => {
	test('GET', async () => {
		const { alice, path } = await aliceAndBobsTask()
		expectSameAsNeverExisted(await alice.get(path), await alice.get(NEVER))
	})

	test('PUT, and the task is unchanged', async () => {
		const { alice, bob, task, path } = await aliceAndBobsTask()
		const body = { title: 'Taken over', description: null, completed: true }
		expectSameAsNeverExisted(await alice.put(path, body), await alice.put(NEVER, body))
		expect((await bob.get(path)).body).toEqual(task)
	})

	test('PATCH .../complete, and the task is unchanged', async () => {
		const { alice, bob, task, path } = await aliceAndBobsTask()
		const body = { completed: true }
		expectSameAsNeverExisted(await alice.patch(`${path}/complete`, body), await alice.patch(`${NEVER}/complete`, body))
		expect((await bob.get(path)).body).toEqual(task)
	})

	test('DELETE, and the task is still there', async () => {
		const { alice, bob, task, path } = await aliceAndBobsTask()
		expectSameAsNeverExisted(await alice.delete(path), await alice.delete(NEVER))
		expect((await bob.get(path)).body).toEqual(task)
		expect((await bob.get('/api/tasks')).body).toEqual([task])
	})

	test('a task the other user deleted answers the same', async () => {
		const { alice, bob, path } = await aliceAndBobsTask()
		await bob.delete(path)
		expectSameAsNeverExisted(await alice.get(path), await alice.get(NEVER))
		expectSameAsNeverExisted(await bob.get(path), await alice.get(NEVER))
	})

	test('the owner still has full use of the task afterwards', async () => {
		const { alice, bob, path } = await aliceAndBobsTask()
		await alice.put(path, { title: 'Taken over' })
		const patched = await bob.patch(`${path}/complete`, { completed: true })
		expect(patched.status).toBe(200)
		expect(patched.body).toMatchObject({ title: 'Bob`s secret', completed: true, user_id: bob.sub })
		expect((await bob.delete(path)).status).toBe(204)
	})
})

describe('GET /api/tasks lists the caller`s tasks only', () => {
	test('never another user`s, whatever the query', async () => {
		const { alice, bob, task } = await aliceAndBobsTask()
		const mine = taskOf(await alice.post('/api/tasks', { title: 'Alice`s own', description: 'Only Bob' }))
		const queries = ['', '?q=secret', '?q=Only%20Bob', '?completed=false', '?sort=title&order=asc', '?limit=1000', '?offset=0']
		for (const query of queries) {
			const list = await alice.get(`/api/tasks${query}`)
			expect(list.status).toBe(200)
			expect(tasksOf(list).map((t) => t.id)).not.toContain(task.id)
		}
		const all = await alice.get('/api/tasks')
		expect(all.body).toEqual([mine])
		expect(all.headers.get('x-total-count')).toBe('1')
		const bobs = await bob.get('/api/tasks')
		expect(bobs.body).toEqual([task])
		expect(bobs.headers.get('x-total-count')).toBe('1')
	})

	test('a search that matches only another user`s task: empty, X-Total-Count 0', async () => {
		const { alice } = await aliceAndBobsTask()
		const list = await alice.get('/api/tasks?q=secret')
		expect(list.body).toEqual([])
		expect(list.headers.get('x-total-count')).toBe('0')
	})
})

// Reads by id that arrive while two are being answered are answered together, by one statement.
describe('GET /api/tasks/{id} sent at once by several users', () => {
	test('each answers the caller`s own task, and 404 for another`s or a missing one', async () => {
		const { alice, bob, task: bobs } = await aliceAndBobsTask()
		const alices = taskOf(await alice.post('/api/tasks', { title: 'Alice`s own' }))
		// A user id that only survives the batch's JSON parameter if it is escaped there.
		const carol = await asUser(app, `carol "${crypto.randomUUID()}" \\ ünï 😀 \u2028`)
		const carols = taskOf(await carol.post('/api/tasks', { title: 'Carol`s own' }))
		const never = await alice.get(NEVER)
		const asked = [
			{ as: carol, id: carols.id, expected: carols },
			{ as: carol, id: alices.id, expected: undefined },
			{ as: alice, id: alices.id, expected: alices },
			{ as: alice, id: bobs.id, expected: undefined },
			{ as: bob, id: bobs.id, expected: bobs },
			{ as: bob, id: alices.id, expected: undefined },
			{ as: alice, id: 2147483647, expected: undefined }
		]
		const all = Array.from({ length: 8 }, () => asked).flat()
		const replies = await Promise.all(all.map(({ as, id }) => as.get(`/api/tasks/${id}`)))
		replies.forEach((reply, i) => {
			const { expected } = all[i] ?? {}
			if (expected) expect(reply).toMatchObject({ status: 200, body: expected })
			else expectSameAsNeverExisted(reply, never)
		})
	})
})
