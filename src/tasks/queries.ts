import { and, eq, ilike, or, sql, type SQL, type SQLWrapper } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import { coalesced } from '../coalesce'
import type { Db, Pools } from '../database'
import { isConnectFailure, isPoolDropped } from '../database/unavailable'
import type { ListQuery, Task, TaskInput } from './model'
import { nextUpdatedAt, taskCounts, tasks } from './table'

// Timestamps leave the database already in the wire format, so rows are sent as they come.
const iso = (column: PgColumn) =>
	sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

// Each key is also the column's name in the list's subquery, which is the name json_agg gives it.
const fields = {
	id: tasks.id,
	user_id: tasks.userId,
	title: tasks.title,
	description: tasks.description,
	completed: tasks.completed,
	created_at: iso(tasks.createdAt).as('created_at'),
	updated_at: iso(tasks.updatedAt).as('updated_at')
}

const param = (name: string) => sql`${sql.placeholder(name)}`

const owned = and(eq(tasks.id, sql.placeholder('id')), eq(tasks.userId, sql.placeholder('userId')))

const built = new WeakMap<Db, Map<string, unknown>>()

// Every statement (and the batcher of reads by id) is built once per database and shape, then
// only executed with new values: no SQL is generated per request, and on Postgres each runs as a
// prepared statement, one round trip.
function once<T>(db: Db, key: string, build: () => T): T {
	let known = built.get(db)
	if (!known) built.set(db, (known = new Map()))
	let value = known.get(key) as T | undefined
	if (value === undefined) known.set(key, (value = build()))
	return value
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

// The columns are never null, so the nulls clause changes no result; it matches the index on
// (user_id, created_at desc nulls last, id desc nulls last), which then yields the first page in
// order, in either direction, without reading and sorting every task of the user.
const ordered = (column: SQLWrapper, order: 'asc' | 'desc') =>
	order === 'asc' ? sql`${column} asc nulls first` : sql`${column} desc nulls last`

// Titles compare in lower case, character by character ("C": by code point), as in PGlite's
// database, whose collation is C: a Postgres database created with another (en_US, ICU) would
// otherwise order them its own way.
const sortColumns = {
	created_at: tasks.createdAt,
	updated_at: tasks.updatedAt,
	title: sql`lower(${tasks.title}) collate "C"`
}

function listFilter(query: ListQuery): SQL | undefined {
	return and(
		eq(tasks.userId, sql.placeholder('userId')),
		query.completed === undefined ? undefined : eq(tasks.completed, sql.placeholder('completed')),
		query.q ? or(ilike(tasks.title, sql.placeholder('pattern')), ilike(tasks.description, sql.placeholder('pattern'))) : undefined
	)
}

// The total is a subquery the planner runs once, never count(*) over (), which would compute
// every row of the caller's list before the page is cut from it. Without a search it is one row
// of task_counts, whatever the number of tasks; a search has to count its matches.
function totalOf(query: ListQuery, filter: SQL | undefined): SQL<number> {
	if (query.q) return sql<number>`(select count(*)::int from ${tasks} where ${filter})`
	const counted =
		query.completed === undefined
			? taskCounts.total
			: query.completed
				? taskCounts.completed
				: sql`${taskCounts.total} - ${taskCounts.completed}`
	return sql<number>`coalesce((select ${counted} from ${taskCounts} where ${taskCounts.userId} = ${sql.placeholder('userId')}), 0)`
}

// A list's sort and order where the query leaves them out: by creation; newest first, but by title A to Z.
function orderOf(query: ListQuery) {
	const sort = query.sort ?? 'created_at'
	return { sort, order: query.order ?? (sort === 'title' ? 'asc' : 'desc') }
}

type Page = { page: string; total: number }
type PageOf = { userId: string; limit?: number; offset?: number }

/**
 * A page of the caller's tasks as the JSON array the API sends, and the total it counts. The
 * database writes the array: the tasks then cross the process as one string rather than as rows
 * that are parsed, mapped to objects, checked and serialised again. Lists in creation order
 * without a search are read on `reads`; any other on `searches`. On PGlite, those newest first
 * with neither search nor filter go in batches (newestFirstOn).
 */
export async function listTasks({ reads, searches, kind }: Pick<Pools, 'reads' | 'searches' | 'kind'>, userId: string, query: ListQuery): Promise<Page> {
	const { sort, order } = orderOf(query)
	if (kind === 'pglite' && sort === 'created_at' && order === 'desc' && !query.q && query.completed === undefined)
		return once(reads, 'lists', () => newestFirstOn(reads))({ userId, limit: query.limit, offset: query.offset })
	return listAlone({ reads, searches }, userId, query)
}

async function listAlone({ reads, searches }: Pick<Pools, 'reads' | 'searches'>, userId: string, query: ListQuery): Promise<Page> {
	const { sort, order } = orderOf(query)
	const db = sort === 'created_at' && !query.q ? reads : searches
	const filters = `${query.completed === undefined ? '' : query.completed ? 't' : 'f'}${query.q ? 'q' : ''}`
	const key = `list_${filters}_${sort}_${order}_${query.limit ? 'l' : ''}${query.offset ? 'o' : ''}`
	const [list] = await once(db, key, () => {
		const filter = listFilter(query)
		let rows = db
			.select(fields)
			.from(tasks)
			.where(filter)
			.orderBy(ordered(sortColumns[sort], order), ordered(tasks.id, order))
			.$dynamic()
		if (query.limit) rows = rows.limit(sql.placeholder('limit'))
		if (query.offset) rows = rows.offset(sql.placeholder('offset'))
		const page = rows.as('page')
		// json_agg takes the rows in the order the subquery yields them; past the last page it has
		// none, and the one row still carries the total.
		return db
			.select({
				page: sql<string>`coalesce(json_agg(${sql.identifier('page')}), '[]')::text`,
				total: totalOf(query, filter)
			})
			.from(page)
			.prepare(key)
	}).execute({
		userId,
		completed: query.completed,
		pattern: query.q ? `%${escapeLike(query.q)}%` : undefined,
		limit: query.limit,
		offset: query.offset
	})
	if (!list) throw new Error('an aggregate without GROUP BY returned no row')
	return list
}

// Reads by id that arrive while two are being answered go to the database together, as one
// statement: under load most of a read's cost, in the database and in the driver, is the
// statement's own, not the row's. A lone read runs the plain statement. With two out at once a
// read seldom waits for a round trip before it is sent, and the database spent as little per read
// as with one. A batch holds at most 100, so that one statement's parameter and answer stay small.
// A connect that fails fails every read waiting: the next batches would wait for connects too. So
// does a pool dropped under a batch (guarded-pool.ts): the reads waiting were its statements as
// much as those queued in it, which fail with it, and a fresh connection over a silent path would
// only fail them at its connect timeout, seconds later.
// PGlite answers a read in the turn of the event loop that asks for it, so there a read waits for
// the end of its turn, and goes with the others of the turn.
const READS = { most: 100, atOnce: 2, failsAll: (error: unknown) => isConnectFailure(error) || isPoolDropped(error) }

type Lookup = { userId: string; id: number }

function lookupsOn(db: Db, kind: Pools['kind']): (lookup: Lookup) => Promise<Task | undefined> {
	const one = db.select(fields).from(tasks).where(owned).prepare('get_task')
	const many = db
		.select(fields)
		.from(tasks)
		.where(
			sql`(${tasks.id}, ${tasks.userId}) in (select id, user_id from json_to_recordset(${sql.placeholder('lookups')}::json) as lookup(id int, user_id text))`
		)
		.prepare('get_tasks')
	return coalesced(async (batch: Lookup[]) => {
		const [first] = batch
		// Its one row, or none: either way the one value for the one lookup.
		if (first && batch.length === 1) return one.execute(first)
		const found = new Map<number, Task>()
		for (const task of await many.execute({ lookups: JSON.stringify(batch.map(({ userId, id }) => ({ id, user_id: userId }))) }))
			found.set(task.id, task)
		// Two callers may ask for the same id: its row goes to its owner only.
		return batch.map(({ userId, id }) => {
			const task = found.get(id)
			return task?.user_id === userId ? task : undefined
		})
	}, { ...READS, wholeTurn: kind === 'pglite' })
}

export function getTask({ lookups, kind }: Pick<Pools, 'lookups' | 'kind'>, userId: string, id: number): Promise<Task | undefined> {
	return once(lookups, 'lookups', () => lookupsOn(lookups, kind))({ userId, id })
}

// PGlite spends most of a list in the statement rather than its rows: about 550 µs a list of 20
// tasks one by one here, 135 µs each in a statement for 40 users. It answers a statement in the
// turn of the event loop that asks for it, so the lists newest first asked for in one turn go
// together (coalesce.ts), each user's page cut by its own limit and offset (a null limit is none);
// a batch that fails is answered list by list, so that each gets its own answer or error.
function newestFirstOn(db: Db): (list: PageOf) => Promise<Page> {
	const alone = (list: PageOf) => listAlone({ reads: db, searches: db }, list.userId, list)
	const page = db
		.select(fields)
		.from(tasks)
		.where(eq(tasks.userId, sql`lookup.user_id`))
		.orderBy(ordered(tasks.createdAt, 'desc'), ordered(tasks.id, 'desc'))
	const many = db
		.select({
			page: sql<string>`coalesce((select json_agg(${sql.identifier('page')}) from (${page} limit lookup.lim offset lookup.off) ${sql.identifier('page')}), '[]')::text`,
			total: sql<number>`coalesce((select ${taskCounts.total} from ${taskCounts} where ${taskCounts.userId} = lookup.user_id), 0)`
		})
		.from(sql`json_to_recordset(${sql.placeholder('lists')}::json) as lookup(n int, user_id text, lim int, off bigint)`)
		.orderBy(sql`lookup.n`)
		.prepare('list_tasks_newest_first')
	const settled = coalesced(
		async (batch: PageOf[]): Promise<PromiseSettledResult<Page>[]> => {
			const [first] = batch
			if (first && batch.length === 1) return Promise.allSettled([alone(first)])
			const lists = JSON.stringify(batch.map((list, n) => ({ n, user_id: list.userId, lim: list.limit ?? null, off: list.offset ?? null })))
			return many.execute({ lists }).then(
				(pages) => pages.map((value) => ({ status: 'fulfilled' as const, value })),
				() => Promise.allSettled(batch.map(alone))
			)
		},
		{ ...READS, wholeTurn: true }
	)
	return async (list) => {
		const result = await settled(list)
		if (result.status === 'rejected') throw result.reason
		return result.value
	}
}

export async function createTask({ writes }: Pick<Pools, 'writes'>, userId: string, input: TaskInput): Promise<Task> {
	const [task] = await once(writes, 'create_task', () =>
		writes
			.insert(tasks)
			.values({ userId: param('userId'), title: param('title'), description: param('description'), completed: param('completed') })
			.returning(fields)
			.prepare('create_task')
	).execute({ userId, title: input.title, description: input.description ?? null, completed: input.completed ?? false })
	if (!task) throw new Error('INSERT … RETURNING returned no row')
	return task
}

export async function updateTask({ writes }: Pick<Pools, 'writes'>, userId: string, id: number, input: TaskInput): Promise<Task | undefined> {
	const setsDescription = input.description !== undefined
	const setsCompleted = input.completed !== undefined
	const key = `update_task_${setsDescription ? 'd' : ''}${setsCompleted ? 'c' : ''}`
	const [task] = await once(writes, key, () =>
		writes
			.update(tasks)
			.set({
				title: param('title'),
				...(setsDescription && { description: param('description') }),
				...(setsCompleted && { completed: param('completed') }),
				updatedAt: nextUpdatedAt
			})
			.where(owned)
			.returning(fields)
			.prepare(key)
	).execute({ userId, id, title: input.title, description: input.description, completed: input.completed })
	return task
}

export async function setCompleted({ writes }: Pick<Pools, 'writes'>, userId: string, id: number, completed: boolean): Promise<Task | undefined> {
	const [task] = await once(writes, 'set_completed', () =>
		writes
			.update(tasks)
			.set({ completed: param('completed'), updatedAt: nextUpdatedAt })
			.where(owned)
			.returning(fields)
			.prepare('set_completed')
	).execute({ userId, id, completed })
	return task
}

export async function deleteTask({ writes }: Pick<Pools, 'writes'>, userId: string, id: number): Promise<boolean> {
	const deleted = await once(writes, 'delete_task', () =>
		writes.delete(tasks).where(owned).returning({ id: tasks.id }).prepare('delete_task')
	).execute({ userId, id })
	return deleted.length > 0
}
