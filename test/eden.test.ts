// The frontend's client: Eden Treaty typed by the server's own `App`, over real HTTP.
import { afterAll, describe, expect, test } from 'bun:test'
import { treaty } from '@elysiajs/eden'
import type { App } from '../src/app'
import { newUser, sign, testApp } from './support/app'

const server = (await testApp()).listen({ port: 0, hostname: '127.0.0.1' })
const url = server.server?.url.href.replace(/\/$/, '') ?? ''
afterAll(() => server.stop())

// As the README tells the frontend: the token on every call, and ISO dates left as strings
// (Eden's default turns any date-like string, even a title, into a Date).
async function client(sub = newUser()) {
	const token = await sign({ sub })
	return treaty<App>(url, { parseDate: false, headers: { authorization: `Bearer ${token}` } })
}

describe('Eden Treaty, as the frontend calls the API', () => {
	test('health and readiness', async () => {
		const api = treaty<App>(url)
		expect((await api.health.get()).data).toEqual({ status: 'ok' })
		expect((await api.ready.get()).data).toEqual({ status: 'ready' })
	})

	test('every task route, with the types the server declares', async () => {
		const sub = newUser()
		const api = await client(sub)

		const created = await api.api.tasks.post({ title: 'Buy milk', description: 'semi-skimmed' })
		expect(created.status).toBe(201)
		if (!created.data) throw new Error(`create failed: ${JSON.stringify(created.error)}`)
		const { id } = created.data
		expect(created.data).toMatchObject({ user_id: sub, title: 'Buy milk', description: 'semi-skimmed', completed: false })
		expect(typeof created.data.created_at).toBe('string')
		expect(created.response.headers.get('location')).toBe(`/api/tasks/${id}`)

		const list = await api.api.tasks.get({ query: { completed: false, sort: 'title', order: 'asc', limit: 10 } })
		expect(list.data).toEqual([created.data])
		expect(list.response.headers.get('x-total-count')).toBe('1')

		expect((await api.api.tasks({ id }).get()).data).toEqual(created.data)

		const replaced = await api.api.tasks({ id }).put({ title: 'Buy oat milk', description: null })
		expect(replaced.data).toMatchObject({ id, title: 'Buy oat milk', description: null, completed: false })

		const done = await api.api.tasks({ id }).complete.patch({ completed: true })
		expect(done.data?.completed).toBe(true)
		expect((await api.api.tasks.get({ query: { completed: true } })).data?.map((task) => task.id)).toEqual([id])

		const deleted = await api.api.tasks({ id }).delete()
		expect(deleted.status).toBe(204)
		expect(deleted.error).toBeNull()

		const gone = await api.api.tasks({ id }).get()
		expect(gone.error?.status).toBe(404)
		expect(gone.error?.value).toMatchObject({ error_code: 'RESOURCE_NOT_FOUND' })
	})

	test('errors arrive typed as {detail, error_code}', async () => {
		const anonymous = await treaty<App>(url).api.tasks.get()
		expect(anonymous.error?.status).toBe(401)
		expect(anonymous.error?.value).toMatchObject({ error_code: 'AUTHENTICATION_REQUIRED' })

		const api = await client()
		const invalid = await api.api.tasks.post({ title: '   ' })
		expect(invalid.error?.status).toBe(422)
		expect(invalid.error?.value).toMatchObject({ error_code: 'VALIDATION_ERROR', detail: expect.stringContaining('title') })
	})

	test("Eden's default parseDate turns a date-like title into a Date, hence parseDate: false", async () => {
		const token = await sign({ sub: newUser() })
		const headers = { authorization: `Bearer ${token}` }
		const title = '2026-01-18T10:00:00.000Z'
		const parsing = await treaty<App>(url, { headers }).api.tasks.post({ title })
		expect(parsing.data?.title).toBeInstanceOf(Date)
		const plain = await treaty<App>(url, { headers, parseDate: false }).api.tasks.post({ title })
		expect(plain.data?.title).toBe(title)
	})
})

describe("the frontend's compiler", () => {
	// test/frontend holds a Next.js app's settings and a file that pins every route's Eden types to
	// the contract: the compiler reaches the API's source from there, as the frontend's does.
	test('takes the App type under a Next.js app\'s settings, and its types are the contract\'s', async () => {
		const tsc = Bun.spawn([process.execPath, 'x', 'tsc', '-p', 'frontend'], {
			cwd: import.meta.dir,
			stdout: 'pipe',
			stderr: 'pipe'
		})
		const output = await new Response(tsc.stdout).text()
		expect({ exit: await tsc.exited, output }).toEqual({ exit: 0, output: '' })
	})
})
