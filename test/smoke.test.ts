import { describe, expect, test } from 'bun:test'
import { asUser, testApp } from './support/app'

const app = await testApp()

describe('smoke', () => {
	test('create then list', async () => {
		const alice = await asUser(app)
		const created = await alice.post('/api/tasks', { title: 'Buy milk' })
		expect(created.status).toBe(201)
		const list = await alice.get('/api/tasks')
		expect(list.body).toEqual([created.body])
		expect(list.headers.get('x-total-count')).toBe('1')
	})
})
