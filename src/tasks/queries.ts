import { and, asc, count, desc, eq, ilike, or, sql, type SQL } from 'drizzle-orm'
import type { PgColumn } from 'drizzle-orm/pg-core'
import type { Db } from '../database'
import type { ListQuery, Task, TaskInput } from './model'
import { nextUpdatedAt, tasks } from './table'

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

const owned = (userId: string, id: number) => and(eq(tasks.id, id), eq(tasks.userId, userId))

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

const sortColumns = {
	created_at: tasks.createdAt,
	updated_at: tasks.updatedAt,
	title: sql`lower(${tasks.title})`
}

export async function listTasks(db: Db, userId: string, query: ListQuery): Promise<{ tasks: Task[]; total: number }> {
	const pattern = query.q ? `%${escapeLike(query.q)}%` : undefined
	const filter: SQL | undefined = and(
		eq(tasks.userId, userId),
		query.completed === undefined ? undefined : eq(tasks.completed, query.completed),
		pattern ? or(ilike(tasks.title, pattern), ilike(tasks.description, pattern)) : undefined
	)
	const sort = query.sort ?? 'created_at'
	const direction = (query.order ?? (sort === 'title' ? 'asc' : 'desc')) === 'asc' ? asc : desc
	const page = db
		.select({ ...fields, total: sql<number>`(count(*) over ())::int` })
		.from(tasks)
		.where(filter)
		.orderBy(direction(sortColumns[sort]), direction(tasks.id))
		.offset(query.offset ?? 0)
		.$dynamic()
	const rows = await (query.limit ? page.limit(query.limit) : page)
	if (rows.length === 0 && query.offset) {
		const [counted] = await db.select({ total: count() }).from(tasks).where(filter)
		return { tasks: [], total: counted?.total ?? 0 }
	}
	return { tasks: rows.map(({ total: _, ...task }) => task), total: rows[0]?.total ?? 0 }
}

export async function getTask(db: Db, userId: string, id: number): Promise<Task | undefined> {
	const [task] = await db.select(fields).from(tasks).where(owned(userId, id))
	return task
}

export async function createTask(db: Db, userId: string, input: TaskInput): Promise<Task> {
	const [task] = await db
		.insert(tasks)
		.values({ userId, title: input.title, description: input.description ?? null, completed: input.completed ?? false })
		.returning(fields)
	if (!task) throw new Error('INSERT … RETURNING returned no row')
	return task
}

export async function updateTask(db: Db, userId: string, id: number, input: TaskInput): Promise<Task | undefined> {
	const [task] = await db
		.update(tasks)
		.set({
			title: input.title,
			...(input.description !== undefined && { description: input.description }),
			...(input.completed !== undefined && { completed: input.completed }),
			updatedAt: nextUpdatedAt
		})
		.where(owned(userId, id))
		.returning(fields)
	return task
}

export async function setCompleted(db: Db, userId: string, id: number, completed: boolean): Promise<Task | undefined> {
	const [task] = await db
		.update(tasks)
		.set({ completed, updatedAt: nextUpdatedAt })
		.where(owned(userId, id))
		.returning(fields)
	return task
}

export async function deleteTask(db: Db, userId: string, id: number): Promise<boolean> {
	const deleted = await db.delete(tasks).where(owned(userId, id)).returning({ id: tasks.id })
	return deleted.length > 0
}
