import { describe, expect, test } from 'bun:test'
import type { Task } from '../../src/tasks/model'
import { asUser, errorOf, type Reply, taskOf, testApp } from '../support/app'

const app = await testApp()

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/
const TEN_MINUTES = 10 * 60 * 1000

// taskOf has already checked each field's type against Task; this checks what a type cannot say.
function expectTask(task: Task, sub: string) {
	expect(Object.keys(task).sort()).toEqual(
		['completed', 'created_at', 'description', 'id', 'title', 'updated_at', 'user_id'].sort()
	)
	expect(Number.isInteger(task.id)).toBe(true)
	expect(task.id).toBeGreaterThan(0)
	expect(task.user_id).toBe(sub)
	for (const stamp of [task.created_at, task.updated_at]) {
		expect(stamp).toMatch(ISO_UTC)
		expect(Math.abs(Date.parse(stamp) - Date.now())).toBeLessThan(TEN_MINUTES)
	}
}

function expectValidationError(reply: Reply, field: string) {
	expect(reply.status).toBe(422)
	expect(reply.headers.get('content-type')).toBe('application/json')
	expect(Object.keys(errorOf(reply)).sort()).toEqual(['detail', 'error_code'])
	expect(errorOf(reply).error_code).toBe('VALIDATION_ERROR')
	expect(errorOf(reply).detail).toContain(field)
}

const later = (after: string, before: string) => expect(Date.parse(after)).toBeGreaterThan(Date.parse(before))

describe('Task', () => {
	test('a created task has exactly the contract`s fields and types', async () => {
		const alice = await asUser(app)
		const created = await alice.post('/api/tasks', { title: 'Buy milk' })
		expect(created.status).toBe(201)
		expect(created.headers.get('content-type')).toBe('application/json')
		expectTask(taskOf(created), alice.sub)
		expect(created.body).toMatchObject({ title: 'Buy milk', description: null, completed: false })
		expect(taskOf(created).updated_at).toBe(taskOf(created).created_at)
	})

	test('ids are positive integers assigned by the database, one per task', async () => {
		const alice = await asUser(app)
		const first = taskOf(await alice.post('/api/tasks', { title: 'One', id: 1 }))
		const second = taskOf(await alice.post('/api/tasks', { title: 'Two', id: 1 }))
		expect(second.id).not.toBe(first.id)
		expect(second.id).toBeGreaterThan(first.id)
	})

	describe('title: string, 1 to 255 characters, not only whitespace, stored as sent', () => {
		test('stored as sent, surrounding whitespace and all', async () => {
			const alice = await asUser(app)
			for (const title of ['  Buy milk  ', 'x', '<b>bold</b> & "quoted" \\ \'single\'', 'Ünïcödé 😀 中文', 'tab\there\nnewline'])
				expect(taskOf(await alice.post('/api/tasks', { title })).title).toBe(title)
		})

		test('255 characters are accepted, counted as characters rather than bytes', async () => {
			const alice = await asUser(app)
			for (const title of ['a'.repeat(255), 'é'.repeat(255), '😀'.repeat(255)]) {
				const created = await alice.post('/api/tasks', { title })
				expect(created.status).toBe(201)
				expect(taskOf(created).title).toBe(title)
			}
		})

		test('256 characters: 422 naming title', async () => {
			const alice = await asUser(app)
			expectValidationError(await alice.post('/api/tasks', { title: 'a'.repeat(256) }), 'title')
			expectValidationError(await alice.post('/api/tasks', { title: 'é'.repeat(256) }), 'title')
		})

		test('empty, whitespace only, missing, null or not a string: 422 naming title', async () => {
			const alice = await asUser(app)
			for (const title of ['', ' ', '   ', '\t\n', '\u00a0\u2003', '\u0085', '\u2028\u3000', '\ufeff', null, 123, true, ['a'], { text: 'a' }])
				expectValidationError(await alice.post('/api/tasks', { title }), 'title')
			expectValidationError(await alice.post('/api/tasks', {}), 'title')
			expectValidationError(await alice.post('/api/tasks', { description: 'no title' }), 'title')
			expect((await alice.get('/api/tasks')).body).toEqual([])
		})
	})

	describe('description: string up to 10,000 characters, or null', () => {
		test('10,000 characters and null are accepted', async () => {
			const alice = await asUser(app)
			const long = 'd'.repeat(10_000)
			expect(taskOf(await alice.post('/api/tasks', { title: 'Long', description: long })).description).toBe(long)
			expect(taskOf(await alice.post('/api/tasks', { title: 'Null', description: null })).description).toBeNull()
			expect(taskOf(await alice.post('/api/tasks', { title: 'Empty', description: '' })).description).toBe('')
		})

		test('10,001 characters or not a string: 422 naming description', async () => {
			const alice = await asUser(app)
			for (const description of ['d'.repeat(10_001), 5, true, ['a'], { text: 'a' }]) {
				const reply = await alice.post('/api/tasks', { title: 'Bad', description })
				expectValidationError(reply, 'description')
				expect(errorOf(reply).detail).toBe('"description" must be a string of at most 10,000 characters, or null.')
			}
			expect((await alice.get('/api/tasks')).body).toEqual([])
		})
	})

	describe('completed: boolean', () => {
		test('true or false is stored; left out it is false', async () => {
			const alice = await asUser(app)
			expect(taskOf(await alice.post('/api/tasks', { title: 'Done', completed: true })).completed).toBe(true)
			expect(taskOf(await alice.post('/api/tasks', { title: 'Open', completed: false })).completed).toBe(false)
			expect(taskOf(await alice.post('/api/tasks', { title: 'Default' })).completed).toBe(false)
		})

		test('"yes", 1, "true", null: 422 naming completed', async () => {
			const alice = await asUser(app)
			for (const completed of ['yes', 1, 0, 'true', 'false', null, [true]])
				expectValidationError(await alice.post('/api/tasks', { title: 'Bad', completed }), 'completed')
			expect((await alice.get('/api/tasks')).body).toEqual([])
		})
	})

	test('unknown fields in a body are ignored', async () => {
		const alice = await asUser(app)
		const created = await alice.post('/api/tasks', {
			title: 'Extra',
			priority: 5,
			tags: ['a'],
			id: 999_999_999,
			user_id: 'someone-else',
			created_at: '2000-01-01T00:00:00.000Z',
			updated_at: '2000-01-01T00:00:00.000Z'
		})
		expect(created.status).toBe(201)
		expectTask(taskOf(created), alice.sub)
		expect(created.body).not.toHaveProperty('priority')
		expect(taskOf(created).id).not.toBe(999_999_999)
		expect(taskOf(created).created_at).not.toStartWith('2000')

		const put = await alice.put(`/api/tasks/${taskOf(created).id}`, {
			title: 'Extra too',
			priority: 1,
			created_at: '2000-01-01T00:00:00.000Z'
		})
		expect(put.status).toBe(200)
		expect(put.body).not.toHaveProperty('priority')
		expect(taskOf(put).created_at).toBe(taskOf(created).created_at)

		const patch = await alice.patch(`/api/tasks/${taskOf(created).id}/complete`, { completed: true, title: 'Not this', id: 1 })
		expect(patch.status).toBe(200)
		expect(patch.body).toMatchObject({ id: taskOf(created).id, title: 'Extra too', completed: true })
	})
})

describe('Routes', () => {
	describe('POST /api/tasks', () => {
		test('201, the task, Location: /api/tasks/{id}', async () => {
			const alice = await asUser(app)
			const created = await alice.post('/api/tasks', { title: 'Buy milk', description: 'Two litres', completed: true })
			expect(created.status).toBe(201)
			expect(created.body).toMatchObject({ title: 'Buy milk', description: 'Two litres', completed: true })
			expect(created.headers.get('location')).toBe(`/api/tasks/${taskOf(created).id}`)
			expect((await alice.get(created.headers.get('location') ?? '')).body).toEqual(created.body)
		})
	})

	describe('GET /api/tasks', () => {
		test('200, an array of the caller`s tasks, newest first', async () => {
			const alice = await asUser(app)
			const tasks = []
			for (const title of ['First', 'Second', 'Third']) tasks.push(taskOf(await alice.post('/api/tasks', { title })))
			const list = await alice.get('/api/tasks')
			expect(list.status).toBe(200)
			expect(list.headers.get('content-type')).toBe('application/json')
			expect(list.body).toEqual(tasks.reverse())
		})

		test('an empty array for a user with no tasks', async () => {
			const nobody = await asUser(app)
			const list = await nobody.get('/api/tasks')
			expect(list.status).toBe(200)
			expect(list.body).toEqual([])
			expect(list.headers.get('x-total-count')).toBe('0')
		})
	})

	describe('GET /api/tasks/{id}', () => {
		test('200, the task', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Read me', description: 'Details' }))
			const got = await alice.get(`/api/tasks/${created.id}`)
			expect(got.status).toBe(200)
			expect(got.headers.get('content-type')).toBe('application/json')
			expect(got.body).toEqual(created)
		})

		test('an id that never existed: 404 RESOURCE_NOT_FOUND', async () => {
			const alice = await asUser(app)
			const got = await alice.get('/api/tasks/2147483647')
			expect(got.status).toBe(404)
			expect(errorOf(got).error_code).toBe('RESOURCE_NOT_FOUND')
		})
	})

	describe('PUT /api/tasks/{id}', () => {
		test('200, the task with the fields sent; updated_at moves, created_at stays', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Old', description: 'Old text' }))
			const put = await alice.put(`/api/tasks/${created.id}`, { title: 'New', description: 'New text', completed: true })
			expect(put.status).toBe(200)
			expect(put.body).toMatchObject({ id: created.id, title: 'New', description: 'New text', completed: true })
			expect(taskOf(put).created_at).toBe(created.created_at)
			later(taskOf(put).updated_at, created.updated_at)
			expect((await alice.get(`/api/tasks/${created.id}`)).body).toEqual(put.body)
		})

		test('fields left out keep their value', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Keep', description: 'Kept', completed: true }))
			const put = await alice.put(`/api/tasks/${created.id}`, { title: 'Renamed' })
			expect(put.status).toBe(200)
			expect(put.body).toMatchObject({ title: 'Renamed', description: 'Kept', completed: true })
			expect((await alice.get(`/api/tasks/${created.id}`)).body).toEqual(put.body)
		})

		test('description: null clears it', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Clear', description: 'Soon gone' }))
			const put = await alice.put(`/api/tasks/${created.id}`, { title: 'Clear', description: null })
			expect(put.status).toBe(200)
			expect(taskOf(put).description).toBeNull()
			expect(taskOf(await alice.get(`/api/tasks/${created.id}`)).description).toBeNull()
		})

		test('completed: false is applied, not taken as left out', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Undo', completed: true }))
			const put = await alice.put(`/api/tasks/${created.id}`, { title: 'Undo', completed: false })
			expect(taskOf(put).completed).toBe(false)
		})

		test('title is required; a bad field is 422 naming it and nothing changes', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Intact', description: 'Same' }))
			const path = `/api/tasks/${created.id}`
			expectValidationError(await alice.put(path, { description: 'No title' }), 'title')
			expectValidationError(await alice.put(path, { title: '   ' }), 'title')
			expectValidationError(await alice.put(path, { title: 'x'.repeat(256) }), 'title')
			expectValidationError(await alice.put(path, { title: 'Ok', description: 7 }), 'description')
			expectValidationError(await alice.put(path, { title: 'Ok', completed: 'yes' }), 'completed')
			expectValidationError(await alice.put(path, { title: 'Ok', completed: null }), 'completed')
			expect((await alice.get(path)).body).toEqual(created)
		})

		test('an id that never existed: 404 RESOURCE_NOT_FOUND', async () => {
			const alice = await asUser(app)
			const put = await alice.put('/api/tasks/2147483647', { title: 'Ghost' })
			expect(put.status).toBe(404)
			expect(errorOf(put).error_code).toBe('RESOURCE_NOT_FOUND')
		})
	})

	describe('PATCH /api/tasks/{id}/complete', () => {
		test('200, the task with completed set; updated_at moves on every change', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Toggle', description: 'Kept' }))
			const done = await alice.patch(`/api/tasks/${created.id}/complete`, { completed: true })
			expect(done.status).toBe(200)
			expect(done.body).toMatchObject({ id: created.id, title: 'Toggle', description: 'Kept', completed: true })
			expect(taskOf(done).created_at).toBe(created.created_at)
			later(taskOf(done).updated_at, created.updated_at)
			const undone = await alice.patch(`/api/tasks/${created.id}/complete`, { completed: false })
			expect(taskOf(undone).completed).toBe(false)
			later(taskOf(undone).updated_at, taskOf(done).updated_at)
			expect((await alice.get(`/api/tasks/${created.id}`)).body).toEqual(undone.body)
		})

		test('completed missing or not a boolean: 422 naming completed, nothing changes', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Stay open' }))
			const path = `/api/tasks/${created.id}/complete`
			for (const body of [{}, { completed: 'yes' }, { completed: 1 }, { completed: null }, { done: true }])
				expectValidationError(await alice.patch(path, body), 'completed')
			expect((await alice.get(`/api/tasks/${created.id}`)).body).toEqual(created)
		})

		test('an id that never existed: 404 RESOURCE_NOT_FOUND', async () => {
			const alice = await asUser(app)
			const patch = await alice.patch('/api/tasks/2147483647/complete', { completed: true })
			expect(patch.status).toBe(404)
			expect(errorOf(patch).error_code).toBe('RESOURCE_NOT_FOUND')
		})
	})

	describe('DELETE /api/tasks/{id}', () => {
		test('204 with an empty body; the task is gone for every route', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Delete me' }))
			const path = `/api/tasks/${created.id}`
			const deleted = await alice.delete(path)
			expect(deleted.status).toBe(204)
			expect(deleted.text).toBe('')
			expect(deleted.headers.get('content-type')).toBeNull()
			for (const reply of [
				await alice.get(path),
				await alice.put(path, { title: 'Back' }),
				await alice.patch(`${path}/complete`, { completed: true }),
				await alice.delete(path)
			]) {
				expect(reply.status).toBe(404)
				expect(errorOf(reply).error_code).toBe('RESOURCE_NOT_FOUND')
			}
			expect((await alice.get('/api/tasks')).body).toEqual([])
		})

		test('a deleted task answers exactly as an id that never existed', async () => {
			const alice = await asUser(app)
			const created = taskOf(await alice.post('/api/tasks', { title: 'Gone' }))
			await alice.delete(`/api/tasks/${created.id}`)
			const deleted = await alice.get(`/api/tasks/${created.id}`)
			const never = await alice.get('/api/tasks/2147483647')
			expect(deleted.body).toEqual(never.body)
		})
	})
})
