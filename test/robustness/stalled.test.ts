import { afterAll, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { type Database, openDatabase } from '../../src/database'
import { migrate } from '../../src/database/migrate'
import { LIST_PIPELINE, POOL_SIZE } from '../../src/database/postgres'
import { silentLog } from '../../src/log'
import { asUser, databaseUrl, emptyDatabase, testApp } from '../support/app'

// A database of its own, so that every backend reading lists on it is this app's.
let own: Awaited<ReturnType<typeof emptyDatabase>> | undefined
let database: Database | undefined

afterAll(async () => {
	await database?.close()
	await own?.drop()
})

// SIGSTOP stands for a backend the kernel leaves off the CPU, or one that hangs: the lists already
// sent to it wait, and no more than LIST_PIPELINE of them.
describe.if(Boolean(databaseUrl))('Lists while the backend of one connection for lists is stopped (Postgres)', () => {
	test(`at most ${LIST_PIPELINE} lists wait for it; the pool's other connections answer the rest`, async () => {
		own = await emptyDatabase('stalled')
		const { name, admin } = own
		database = await openDatabase({ databaseUrl: own.url, dataDir: '' })
		await migrate(database.writes, silentLog)
		const alice = await asUser(await testApp(database))
		await alice.post('/api/tasks', { title: 'Listed' })
		const lists = (count: number) => Array.from({ length: count }, () => alice.get('/api/tasks'))
		// Enough at once to open every connection for lists.
		for (const list of await Promise.all(lists(4 * POOL_SIZE * LIST_PIPELINE))) expect(list.status).toBe(200)

		const backends = await admin`select pid from pg_stat_activity where datname = ${name} and query like '%json_agg%'`
		expect(backends).toHaveLength(POOL_SIZE)
		const pid = Number(backends[0]?.pid)
		// The pid must be this database's backend on this machine before it is sent a signal.
		const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
		expect(command).toStartWith('postgres: ')
		expect(command).toContain(` ${name} `)

		const count = 10 * POOL_SIZE
		let answered = 0
		process.kill(pid, 'SIGSTOP')
		const sent = lists(count).map(async (list) => {
			const reply = await list
			answered += 1
			return reply
		})
		try {
			for (let waited = 0; answered < count - LIST_PIPELINE && waited < 3000; waited += 10) await Bun.sleep(10)
			expect(answered).toBeGreaterThanOrEqual(count - LIST_PIPELINE)
		} finally {
			process.kill(pid, 'SIGCONT')
		}
		for (const list of await Promise.all(sent)) expect(list.status).toBe(200)
	})
})
