import { and, count, eq, ilike, or, sql, type SQL, type SQLWrapper } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import type { Db, Pools } from '../database'
import type { ListQuery, Task, TaskInput } from './model'
import { nextUpdatedAt, taskCounts, tasks } from './table'

// Timestamps leave the database already in the wire format, so rows are sent as they come.
const iso = (column: PgColumn) =>
	sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

const fields = {
	id: tasks.id,
	user_id: tasks.userId,
	title: tasks.title,
	description: tasks.description,
	completed: tasks.completed,
	created_at: iso(tasks.createdAt),
	updated_at: iso(tasks.updatedAt)
}

const param = (name: string) => sql`${sql.placeholder(name)}`

const owned = and(eq(tasks.id, sql.placeholder('id')), eq(tasks.userId, sql.placeholder('userId')))

interface Statement<T> {
	execute(values: Record<string, unknown>): Promise<T>
}

const statements = new WeakMap<Db, Map<string, Statement<unknown>>>()

// Every statement is built once per database and shape, then only executed with new values: no
// SQL is generated per request, and on Postgres each runs as a prepared statement, one round trip.
function prepared<T>(db: Db, key: string, build: () => Statement<T>): Statement<T> {
	let known = statements.get(db)
	if (!known) statements.set(db, (known = new Map()))
	let statement = known.get(key) as Statement<T> | undefined
	if (!statement) known.set(key, (statement = build()))
	return statement
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

// The columns are never null, so the nulls clause changes no result; it matches the index on
// (user_id, created_at desc nulls last, id desc nulls last), which then yields the first page in
// order, in either direction, without reading and sorting every task of the user.
const ordered = (column: SQLWrapper, order: 'asc' | 'desc') =>
	order === 'asc' ? sql`${column} asc nulls first` : sql`${column} desc nulls last`

const sortColumns = {
	created_at: tasks.createdAt,
	updated_at: tasks.updatedAt,
	title: sql`lower(${tasks.title})`
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

/** Where a list is read: in creation order without a search, on `reads`; any other, on `searches`. */
export async function listTasks(
	{ reads, searches }: Pick<Pools, 'reads' | 'searches'>,
	userId: string,
	query: ListQuery
): Promise<{ tasks: Task[]; total: number }> {
	const sort = query.sort ?? 'created_at'
	const db = sort === 'created_at' && !query.q ? reads : searches
	const order = query.order ?? (sort === 'title' ? 'asc' : 'desc')
	const filters = `${query.completed === undefined ? '' : query.completed ? 't' : 'f'}${query.q ? 'q' : ''}`
	const key = `list_${filters}_${sort}_${order}_${query.limit ? 'l' : ''}${query.offset ? 'o' : ''}`
	const values = {
		userId,
		completed: query.completed,
		pattern: query.q ? `%${escapeLike(query.q)}%` : undefined,
		limit: query.limit,
		offset: query.offset
	}
	const rows = await prepared(db, key, () => {
		const filter = listFilter(query)
		const total = totalOf(query, filter)
		let page = db
			.select({ ...fields, total })
			.from(tasks)
			.where(filter)
			.orderBy(ordered(sortColumns[sort], order), ordered(tasks.id, order))
			.$dynamic()
		if (query.limit) page = page.limit(sql.placeholder('limit'))
		if (query.offset) page = page.offset(sql.placeholder('offset'))
		return page.prepare(key)
	}).execute(values)
	if (rows.length === 0 && query.offset) {
		// Past the last page no row carries the total: count on its own.
		const counted = await prepared(searches, `count_${filters}`, () =>
			searches.select({ total: count() }).from(tasks).where(listFilter(query)).prepare(`count_${filters}`)
		).execute(values)
		return { tasks: [], total: counted[0]?.total ?? 0 }
	}
	return { tasks: rows.map(({ total: _, ...task }) => task), total: rows[0]?.total ?? 0 }
}

export async function getTask(db: Db, userId: string, id: number): Promise<Task | undefined> {
	const [task] = await prepared(db, 'get_task', () =>
		db.select(fields).from(tasks).where(owned).prepare('get_task')
	).execute({ userId, id })
	return task
}

export async function createTask(db: Db, userId: string, input: TaskInput): Promise<Task> {
	const [task] = await prepared(db, 'create_task', () =>
		db
			.insert(tasks)
			.values({ userId: param('userId'), title: param('title'), description: param('description'), completed: param('completed') })
			.returning(fields)
			.prepare('create_task')
	).execute({ userId, title: input.title, description: input.description ?? null, completed: input.completed ?? false })
	if (!task) throw new Error('INSERT … RETURNING returned no row')
	return task
}

export async function updateTask(db: Db, userId: string, id: number, input: TaskInput): Promise<Task | undefined> {
	const setsDescription = input.description !== undefined
	const setsCompleted = input.completed !== undefined
	const key = `update_task_${setsDescription ? 'd' : ''}${setsCompleted ? 'c' : ''}`
	const [task] = await prepared(db, key, () =>
		db
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

export async function setCompleted(db: Db, userId: string, id: number, completed: boolean): Promise<Task | undefined> {
	const [task] = await prepared(db, 'set_completed', () =>
		db
			.update(tasks)
			.set({ completed: param('completed'), updatedAt: nextUpdatedAt })
			.where(owned)
			.returning(fields)
			.prepare('set_completed')
	).execute({ userId, id, completed })
	return task
}

export async function deleteTask(db: Db, userId: string, id: number): Promise<boolean> {
	const deleted = await prepared(db, 'delete_task', () =>
		db.delete(tasks).where(owned).returning({ id: tasks.id }).prepare('delete_task')
	).execute({ userId, id })
	return deleted.length > 0
}
