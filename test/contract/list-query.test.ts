import { describe, expect, test } from 'bun:test'
import type { Task } from '../../src/tasks/model'
import { openDatabase } from '../../src/database'
import { migrate } from '../../src/database/migrate'
import { asUser, databaseUrl, emptyDatabase, errorOf, type Reply, taskOf, tasksOf, testApp } from '../support/app'

const app = await testApp()

type User = Awaited<ReturnType<typeof asUser>>

async function create(user: User, ...bodies: Record<string, unknown>[]): Promise<Task[]> {
	const tasks: Task[] = []
	for (const body of bodies) {
		const created = await user.post('/api/tasks', body)
		expect(created.status).toBe(201)
		tasks.push(taskOf(created))
	}
	return tasks
}

const titles = (reply: Reply) => tasksOf(reply).map((task) => task.title)
const ids = (reply: Reply) => tasksOf(reply).map((task) => task.id)

// An en-US collation would put "Éclair" between "banana" and "Zebra".
const BY_CODE_POINT = ['_under', 'a b', 'ab', 'apple', 'banana', 'Zebra', 'Éclair']

async function expectCodePointOrder(on: Parameters<typeof asUser>[0]) {
	const alice = await asUser(on)
	await create(alice, ...['banana', 'Éclair', '_under', 'Zebra', 'ab', 'apple', 'a b'].map((title) => ({ title })))
	expect(titles(await alice.get('/api/tasks?sort=title'))).toEqual(BY_CODE_POINT)
	expect(titles(await alice.get('/api/tasks?sort=title&order=desc'))).toEqual(BY_CODE_POINT.toReversed())
}

function expectPage(reply: Reply, total: number) {
	expect(reply.status).toBe(200)
	expect(Array.isArray(reply.body)).toBe(true)
	expect(reply.headers.get('x-total-count')).toBe(String(total))
}

function expectBadQuery(reply: Reply, parameter: string) {
	expect(reply.status).toBe(422)
	expect(reply.headers.get('content-type')).toBe('application/json')
	expect(errorOf(reply).error_code).toBe('VALIDATION_ERROR')
	expect(errorOf(reply).detail).toContain(parameter)
}

describe('GET /api/tasks items', () => {
	test('each task in the list is exactly what GET /api/tasks/:id answers for it, whatever its text', async () => {
		const alice = await asUser(app)
		await create(
			alice,
			{ title: '<b>bold</b> & "quoted" \\ \'single\' /', description: null },
			{ title: 'Ünïcödé 😀 中文 \u2028\u2029', description: 'tab\there\nnewline\r\u0001\u001f\u007f', completed: true },
			{ title: '\ufeff  spaces  ', description: '' }
		)
		const list = await alice.get('/api/tasks')
		expectPage(list, 3)
		expect(list.headers.get('content-type')).toBe('application/json')
		for (const task of tasksOf(list)) expect(task).toEqual(taskOf(await alice.get(`/api/tasks/${task.id}`)))
		expect(titles(list)).toEqual(['\ufeff  spaces  ', 'Ünïcödé 😀 中文 \u2028\u2029', '<b>bold</b> & "quoted" \\ \'single\' /'])
	})
})

describe('GET /api/tasks query', () => {
	describe('default order: newest first (created_at desc, then id desc)', () => {
		test('with no query the newest task comes first', async () => {
			const alice = await asUser(app)
			const tasks = await create(alice, { title: 'one' }, { title: 'two' }, { title: 'three' }, { title: 'four' })
			const list = await alice.get('/api/tasks')
			expectPage(list, 4)
			expect(ids(list)).toEqual(tasks.map((t) => t.id).reverse())
		})

		test('an explicit sort=created_at without order is newest first too', async () => {
			const alice = await asUser(app)
			const tasks = await create(alice, { title: 'one' }, { title: 'two' }, { title: 'three' })
			expect(ids(await alice.get('/api/tasks?sort=created_at'))).toEqual(tasks.map((t) => t.id).reverse())
		})

		test('tasks created in the same millisecond: the higher id first', async () => {
			const alice = await asUser(app)
			// Created at once, so some share a created_at (the timestamps keep milliseconds).
			await Promise.all(Array.from({ length: 30 }, (_, i) => alice.post('/api/tasks', { title: `burst ${i}` })))
			const newestFirst = (a: Task, b: Task) => b.created_at.localeCompare(a.created_at) || b.id - a.id
			const list = tasksOf(await alice.get('/api/tasks'))
			expect(list).toEqual([...list].sort(newestFirst))
			const ascending = tasksOf(await alice.get('/api/tasks?order=asc'))
			expect(ascending).toEqual([...list].reverse())
		})

		test('the X-Total-Count header is sent with every list', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'one' }, { title: 'two' })
			expectPage(await alice.get('/api/tasks'), 2)
		})
	})

	describe('completed=true|false', () => {
		test('filters on completed, and X-Total-Count counts the filtered tasks', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'done 1', completed: true }, { title: 'open 1' }, { title: 'done 2', completed: true })
			const done = await alice.get('/api/tasks?completed=true')
			expectPage(done, 2)
			expect(titles(done).sort()).toEqual(['done 1', 'done 2'])
			const open = await alice.get('/api/tasks?completed=false')
			expectPage(open, 1)
			expect(titles(open)).toEqual(['open 1'])
		})

		test('in any case, as Python clients write it (True, FALSE): the same filter', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'done', completed: true }, { title: 'open' })
			for (const value of ['True', 'TRUE']) expect(titles(await alice.get(`/api/tasks?completed=${value}`))).toEqual(['done'])
			for (const value of ['False', 'FALSE']) expect(titles(await alice.get(`/api/tasks?completed=${value}`))).toEqual(['open'])
		})

		test('anything but true or false: 422 naming completed', async () => {
			const alice = await asUser(app)
			for (const value of ['yes', 'no', '1', '0', 'maybe', ''])
				expectBadQuery(await alice.get(`/api/tasks?completed=${value}`), 'completed')
		})
	})

	describe('q: case-insensitive match on title or description', () => {
		test('matches part of the title, whatever the case', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'Buy MILK today' }, { title: 'Walk the dog' })
			for (const q of ['milk', 'MILK', 'Milk', 'y mil'])
				expect(titles(await alice.get(`/api/tasks?q=${encodeURIComponent(q)}`))).toEqual(['Buy MILK today'])
		})

		test('matches part of the description, whatever the case', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'Groceries', description: 'Oat MILK and bread' }, { title: 'Other', description: 'Nothing' })
			for (const q of ['milk', 'oat milk', 'BREAD'])
				expect(titles(await alice.get(`/api/tasks?q=${encodeURIComponent(q)}`))).toEqual(['Groceries'])
		})

		test('case-insensitive beyond ASCII', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'École', description: 'Ünïcode' }, { title: 'Other' })
			for (const q of ['école', 'ÉCOLE', 'ünï', 'ÜNÏ'])
				expect(titles(await alice.get(`/api/tasks?q=${encodeURIComponent(q)}`))).toEqual(['École'])
		})

		test('matches a title or a description, and X-Total-Count counts the matches', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'Pay rent' }, { title: 'Bills', description: 'rent and power' }, { title: 'Sleep' })
			const list = await alice.get('/api/tasks?q=RENT')
			expectPage(list, 2)
			expect(titles(list).sort()).toEqual(['Bills', 'Pay rent'])
		})

		test('% and _ are plain characters, not wildcards', async () => {
			const alice = await asUser(app)
			await create(alice, { title: '100% done' }, { title: 'snake_case' }, { title: 'plain text' }, { title: 'a\\b' })
			expect(titles(await alice.get('/api/tasks?q=%25'))).toEqual(['100% done'])
			expect(titles(await alice.get('/api/tasks?q=_'))).toEqual(['snake_case'])
			expect(titles(await alice.get('/api/tasks?q=e_c'))).toEqual(['snake_case'])
			expect(titles(await alice.get('/api/tasks?q=0%25%20d'))).toEqual(['100% done'])
			expect(titles(await alice.get(`/api/tasks?q=${encodeURIComponent('\\')}`))).toEqual(['a\\b'])
			expect(titles(await alice.get(`/api/tasks?q=${encodeURIComponent('\\b')}`))).toEqual(['a\\b'])
			expectPage(await alice.get('/api/tasks?q=%25%25'), 0)
		})

		test('no match: an empty array and X-Total-Count 0', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'Something' })
			const list = await alice.get('/api/tasks?q=nothing-like-this')
			expectPage(list, 0)
			expect(list.body).toEqual([])
		})

		test('an empty q filters nothing', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'one' }, { title: 'two' })
			expectPage(await alice.get('/api/tasks?q='), 2)
		})

		test('quotes, SQL and other odd text are searched for literally', async () => {
			const alice = await asUser(app)
			await create(alice, { title: "it's \"quoted\"; DROP TABLE tasks; --" }, { title: 'other' })
			for (const q of ["'", '"', "'; DROP TABLE tasks; --", '😀', '中文'])
				expect((await alice.get(`/api/tasks?q=${encodeURIComponent(q)}`)).status).toBe(200)
			expect(titles(await alice.get(`/api/tasks?q=${encodeURIComponent("it's")}`))).toHaveLength(1)
			expectPage(await alice.get('/api/tasks'), 2)
		})

		test('a title of 255 characters can be searched for whole; a longer q, or one with NUL: 422 naming q', async () => {
			const alice = await asUser(app)
			const longest = `${'é'.repeat(254)}😀`
			await create(alice, { title: longest }, { title: 'other' })
			expect(titles(await alice.get(`/api/tasks?q=${encodeURIComponent(longest.toUpperCase())}`))).toEqual([longest])
			expectBadQuery(await alice.get(`/api/tasks?q=${encodeURIComponent(`${longest}x`)}`), 'q')
			expectBadQuery(await alice.get('/api/tasks?q=a%00b'), 'q')
		})

		test('combines with completed', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'milk done', completed: true }, { title: 'milk open' }, { title: 'bread done', completed: true })
			const list = await alice.get('/api/tasks?q=milk&completed=true')
			expectPage(list, 1)
			expect(titles(list)).toEqual(['milk done'])
		})
	})

	describe('sort=created_at|updated_at|title, order=asc|desc', () => {
		test('sort=created_at&order=asc: oldest first; order=desc: newest first', async () => {
			const alice = await asUser(app)
			const tasks = await create(alice, { title: 'one' }, { title: 'two' }, { title: 'three' })
			const oldestFirst = tasks.map((t) => t.id)
			expect(ids(await alice.get('/api/tasks?sort=created_at&order=asc'))).toEqual(oldestFirst)
			expect(ids(await alice.get('/api/tasks?sort=created_at&order=desc'))).toEqual([...oldestFirst].reverse())
			expect(ids(await alice.get('/api/tasks?order=desc'))).toEqual([...oldestFirst].reverse())
			expect(ids(await alice.get('/api/tasks?order=asc'))).toEqual(oldestFirst)
		})

		test('sort=updated_at follows the last change; without order, the latest change first', async () => {
			const alice = await asUser(app)
			const tasks = await create(alice, { title: 'first' }, { title: 'second' }, { title: 'third' })
			const [first, second, third] = tasks.map((t) => t.id)
			await alice.patch(`/api/tasks/${first}/complete`, { completed: true })
			await alice.put(`/api/tasks/${second}`, { title: 'second changed' })
			expect<(number | undefined)[]>(ids(await alice.get('/api/tasks?sort=updated_at&order=desc'))).toEqual([second, first, third])
			expect<(number | undefined)[]>(ids(await alice.get('/api/tasks?sort=updated_at&order=asc'))).toEqual([third, first, second])
			expect<(number | undefined)[]>(ids(await alice.get('/api/tasks?sort=updated_at'))).toEqual([second, first, third])
		})

		test('sort=title with order asc and desc; without order, A to Z', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'banana' }, { title: 'cherry' }, { title: 'apple' })
			expect(titles(await alice.get('/api/tasks?sort=title&order=asc'))).toEqual(['apple', 'banana', 'cherry'])
			expect(titles(await alice.get('/api/tasks?sort=title&order=desc'))).toEqual(['cherry', 'banana', 'apple'])
			expect(titles(await alice.get('/api/tasks?sort=title'))).toEqual(['apple', 'banana', 'cherry'])
		})

		test('sort=title compares the titles in lower case, by code point', () => expectCodePointOrder(app))

		test.if(Boolean(databaseUrl))('sort=title: the same order on a Postgres database created with the en-US collation', async () => {
			const own = await emptyDatabase('en_us', "template template0 locale_provider icu icu_locale 'en-US'")
			const database = await openDatabase({ databaseUrl: own.url, dataDir: '' })
			try {
				await database.settle()
				await migrate(database.writes)
				await expectCodePointOrder(await testApp(database))
			} finally {
				await database.close()
				await own.drop()
			}
		})

		test('an unknown sort or order: 422 naming the parameter', async () => {
			const alice = await asUser(app)
			for (const sort of ['id', 'priority', 'TITLE', '', 'title;drop'])
				expectBadQuery(await alice.get(`/api/tasks?sort=${sort}`), 'sort')
			for (const order of ['up', 'ASC', 'descending', '']) expectBadQuery(await alice.get(`/api/tasks?order=${order}`), 'order')
		})
	})

	describe('limit=1..1000, offset>=0, X-Total-Count is the total before them', () => {
		test('limit takes the first tasks; X-Total-Count is still the total', async () => {
			const alice = await asUser(app)
			const tasks = await create(alice, { title: 'a' }, { title: 'b' }, { title: 'c' }, { title: 'd' }, { title: 'e' })
			const newestFirst = tasks.map((t) => t.id).reverse()
			const one = await alice.get('/api/tasks?limit=1')
			expectPage(one, 5)
			expect(ids(one)).toEqual(newestFirst.slice(0, 1))
			const two = await alice.get('/api/tasks?limit=2')
			expectPage(two, 5)
			expect(ids(two)).toEqual(newestFirst.slice(0, 2))
			expectPage(await alice.get('/api/tasks?limit=1000'), 5)
			expect(ids(await alice.get('/api/tasks?limit=1000'))).toEqual(newestFirst)
		})

		test('offset skips tasks; pages of limit/offset cover the list once', async () => {
			const alice = await asUser(app)
			const tasks = await create(alice, { title: 'a' }, { title: 'b' }, { title: 'c' }, { title: 'd' }, { title: 'e' })
			const newestFirst = tasks.map((t) => t.id).reverse()
			const pages: number[] = []
			for (const offset of [0, 2, 4]) {
				const page = await alice.get(`/api/tasks?limit=2&offset=${offset}`)
				expectPage(page, 5)
				pages.push(...ids(page))
			}
			expect(pages).toEqual(newestFirst)
			const skipped = await alice.get('/api/tasks?offset=3')
			expectPage(skipped, 5)
			expect(ids(skipped)).toEqual(newestFirst.slice(3))
		})

		test('offset past the end: an empty array, X-Total-Count still the total', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'a' }, { title: 'b' }, { title: 'c' })
			const past = ['offset=3', 'offset=100', 'offset=5&limit=2', 'offset=2147483648', `offset=${Number.MAX_SAFE_INTEGER}`]
			for (const query of past) {
				const page = await alice.get(`/api/tasks?${query}`)
				expectPage(page, 3)
				expect(page.body).toEqual([])
			}
		})

		test('X-Total-Count counts the filter, not the page', async () => {
			const alice = await asUser(app)
			const done = { completed: true }
			await create(alice, { title: 'x1', ...done }, { title: 'x2', ...done }, { title: 'x3', ...done }, { title: 'y' })
			const page = await alice.get('/api/tasks?completed=true&limit=1&offset=1')
			expectPage(page, 3)
			expect(page.body).toHaveLength(1)
			expectPage(await alice.get('/api/tasks?completed=true&offset=10'), 3)
		})

		test('a limit outside 1..1000 or not a whole number: 422 naming limit', async () => {
			const alice = await asUser(app)
			for (const limit of ['0', '-1', '1001', '99999999999999999999', '1.5', 'abc', '', 'ten'])
				expectBadQuery(await alice.get(`/api/tasks?limit=${limit}`), 'limit')
		})

		test('a whole number written otherwise than in decimal digits: 422 naming the parameter', async () => {
			const alice = await asUser(app)
			for (const limit of ['0x3', '0b11', '0o3', '1e3', '1.0', '+5', '5.', '%205'])
				expectBadQuery(await alice.get(`/api/tasks?limit=${limit}`), 'limit')
			for (const offset of ['0x1', '1e1', '+1']) expectBadQuery(await alice.get(`/api/tasks?offset=${offset}`), 'offset')
		})

		test('a negative offset or not a whole number: 422 naming offset', async () => {
			const alice = await asUser(app)
			for (const offset of ['-1', '1.5', 'abc', '', 'NaN', 'Infinity'])
				expectBadQuery(await alice.get(`/api/tasks?offset=${offset}`), 'offset')
		})

		test('a huge offset is an empty page or a 422 naming offset, never a server error', async () => {
			const alice = await asUser(app)
			await create(alice, { title: 'a' })
			for (const offset of ['9007199254740993', '99999999999999999999', '1e30']) {
				const reply = await alice.get(`/api/tasks?offset=${offset}`)
				if (reply.status === 422) expectBadQuery(reply, 'offset')
				else {
					expectPage(reply, 1)
					expect(reply.body).toEqual([])
				}
			}
		})
	})

	test('all options together leave a plain array', async () => {
		const alice = await asUser(app)
		await create(
			alice,
			{ title: 'milk b', completed: true },
			{ title: 'milk a', completed: true },
			{ title: 'milk c', completed: true },
			{ title: 'milk open' },
			{ title: 'bread', completed: true }
		)
		const page = await alice.get('/api/tasks?completed=true&q=MILK&sort=title&order=asc&limit=2&offset=1')
		expectPage(page, 3)
		expect(titles(page)).toEqual(['milk b', 'milk c'])
	})

	test('unknown query parameters are ignored', async () => {
		const alice = await asUser(app)
		await create(alice, { title: 'one' })
		expectPage(await alice.get('/api/tasks?page=2&foo=bar'), 1)
	})
})
