import { sql } from 'drizzle-orm'
import { boolean, index, integer, pgTable, serial, text, timestamp, varchar } from 'drizzle-orm/pg-core'

/** The longest title, in characters, as the contract has it. */
export const MAX_TITLE = 255

const stamp = (name: string) =>
	timestamp(name, { withTimezone: true, precision: 3 }).notNull().defaultNow()

export const tasks = pgTable(
	'tasks',
	{
		id: serial('id').primaryKey(),
		userId: text('user_id').notNull(),
		title: varchar('title', { length: MAX_TITLE }).notNull(),
		description: text('description'),
		completed: boolean('completed').notNull().default(false),
		createdAt: stamp('created_at'),
		updatedAt: stamp('updated_at')
	},
	// One index serves every read of a user's tasks, filtered by user_id or ordered by creation. A
	// narrower one on user_id alone (dropped by migration 0003) cost every write, and the generic
	// plan of a list, which Postgres may settle on for a prepared statement, read a user's every
	// task through it and sorted them for a first page of 50.
	(table) => [index('tasks_user_id_created_at_idx').on(table.userId, table.createdAt.desc(), table.id.desc())]
)

// How many tasks, and completed tasks, each user has, kept by triggers on tasks (migration
// 0002) in the same transaction as every change, so a list's X-Total-Count is one row's read
// instead of a count over all the user's tasks.
export const taskCounts = pgTable('task_counts', {
	userId: text('user_id').primaryKey(),
	total: integer('total').notNull().default(0),
	completed: integer('completed').notNull().default(0)
})

// The next updated_at: the current time, but always later than the previous value,
// so two changes within one millisecond still move it.
export const nextUpdatedAt = sql`greatest(clock_timestamp(), ${tasks.updatedAt} + interval '1 millisecond')`
