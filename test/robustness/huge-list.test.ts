import { afterAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { asUser, databaseUrl, errorOf, tasksOf, testApp } from '../support/app'

// The longest title and description there are, in characters of four bytes each: about 41 KB of
// JSON a task, past Postgres's 1 GB limit on one value at 27,000 tasks.
const TASKS = 27_000

describe.skipIf(!databaseUrl)('A list past what Postgres can write as one value (Postgres)', () => {
	const other = postgres(databaseUrl ?? '', { max: 1, onnotice: () => {} })
	afterAll(() => other.end())

	test('without a limit: 422 naming "limit", never a 500; its pages are served', async () => {
		const mallory = await asUser(await testApp())
		await other`insert into tasks (user_id, title, description)
			select ${mallory.sub}, repeat('😀', 255), repeat('😀', 10000) from generate_series(1, ${TASKS})`
		try {
			const whole = await mallory.get('/api/tasks')
			expect([whole.status, errorOf(whole).error_code]).toEqual([422, 'VALIDATION_ERROR'])
			expect(errorOf(whole).detail).toContain('"limit"')
			const page = await mallory.get('/api/tasks?limit=1000&offset=26500')
			expect([page.status, tasksOf(page).length, page.headers.get('x-total-count')]).toEqual([200, 500, String(TASKS)])
		} finally {
			await other`delete from tasks where user_id = ${mallory.sub}`
		}
	}, 60_000)
})
