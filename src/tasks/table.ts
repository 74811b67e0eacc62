import { sql } from 'drizzle-orm'
import { boolean, index, pgTable, serial, text, timestamp, varchar } from 'drizzle-orm/pg-core'

const stamp = (name: string) =>
	timestamp(name, { withTimezone: true, precision: 3 }).notNull().defaultNow()

export const tasks = pgTable(
	'tasks',
	{
		id: serial('id').primaryKey(),
		userId: text('user_id').notNull(),
		title: varchar('title', { length: 255 }).notNull(),
		description: text('description'),
		completed: boolean('completed').notNull().default(false),
		createdAt: stamp('created_at'),
		updatedAt: stamp('updated_at')
	},
	(table) => [
		index('tasks_user_id_idx').on(table.userId),
		index('tasks_user_id_created_at_idx').on(table.userId, table.createdAt.desc(), table.id.desc())
	]
)

export type TaskRow = typeof tasks.$inferSelect

// The next updated_at: the current time, but always later than the previous value,
// so two changes within one millisecond still move it.
export const nextUpdatedAt = sql`greatest(clock_timestamp(), ${tasks.updatedAt} + interval '1 millisecond')`
