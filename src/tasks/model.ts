import { t } from 'elysia'
import { FormatRegistry } from 'elysia/type-system'
import { ResourceNotFound } from '../errors'
import { storableText } from '../text'
import { MAX_TITLE } from './table'

// Lengths count characters (code points) as the contract and Postgres do, not UTF-16 units as
// JSON Schema's maxLength does in TypeBox, and text that Postgres cannot store (NUL, lone
// surrogates) is refused here rather than failing in the database.
const storable = (value: string, max: number) => storableText(value) && [...value].length <= max

const MAX_DESCRIPTION = 10_000
const descriptionLength = MAX_DESCRIPTION.toLocaleString('en-US')

// Whitespace: JavaScript's \s, and U+0085 (next line), which Unicode counts and \s leaves out.
FormatRegistry.Set('task-title', (value) => storable(value, MAX_TITLE) && /[^\s\u0085]/.test(value))
FormatRegistry.Set('task-description', (value) => storable(value, MAX_DESCRIPTION))
// A search costs the database its length times the length of each text it is matched against, and
// PGlite runs it on the thread that serves every request: 10,000 characters searched in 60 tasks
// of 10,000 took 6.9 s there, with every other request waiting. No search is longer than the
// longest title, which can still be searched for whole.
export const MAX_SEARCH = MAX_TITLE
FormatRegistry.Set('search-text', (value) => storable(value, MAX_SEARCH))

// Every task a route answers with is checked against Task, two timestamps each (a list is JSON the
// database wrote, and is sent as it is). Elysia's own date-time check strips quotes, tries four
// unanchored patterns and then parses a Date; one anchored RFC 3339 pattern is stricter and several
// times cheaper.
const RFC_3339 =
	/^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/
FormatRegistry.Set('date-time', (value) => RFC_3339.test(value))

// A whole number in the query is decimal digits: Elysia's own check takes whatever Number() reads
// as one, such as 0x10, 1e3 or 1.0.
FormatRegistry.Set('integer', (value) => /^\d+$/.test(value))

const title = t.String({
	format: 'task-title',
	description: `1 to ${MAX_TITLE} characters, not only whitespace.`,
	error: `"title" must be a string of 1 to ${MAX_TITLE} characters, not only whitespace.`
})
const descriptionRule = `"description" must be a string of at most ${descriptionLength} characters, or null.`
// The rule on the union too: a value that fails both branches is reported against the union.
const description = t.Nullable(
	t.String({ format: 'task-description', description: `Up to ${descriptionLength} characters.`, error: descriptionRule }),
	{ error: descriptionRule }
)
const completed = t.Boolean({ error: '"completed" must be true or false.' })

// Not t.Integer: Elysia's is a string-or-integer Transform, made for query strings, which would run
// every answer through TypeBox's Encode and document an id as possibly a string.
export const Task = t.Object({
	id: t.Number({ minimum: 1, multipleOf: 1 }),
	user_id: t.String(),
	title: t.String(),
	description: t.Nullable(t.String()),
	completed: t.Boolean(),
	created_at: t.String({ format: 'date-time' }),
	updated_at: t.String({ format: 'date-time' })
})

export const TaskInput = t.Object({
	title,
	description: t.Optional(description),
	completed: t.Optional(completed)
})

export const Completion = t.Object({ completed })

const MAX_ID = 2_147_483_647

// Any id that is not a positive 32-bit integer answers 404, exactly like an id that never existed:
// past 32 bits here, and for a failed pattern in app.ts, which maps every params error to a 404.
export const TaskId = t.Object({
	id: t
		.Transform(t.String({ pattern: '^[1-9][0-9]{0,9}$', description: 'A positive 32-bit integer.' }))
		.Decode((id) => {
			if (Number(id) > MAX_ID) throw new ResourceNotFound()
			return Number(id)
		})
		.Encode(String)
})

// t.UnionEnum defaults to its first value unless told otherwise; the defaults here live in queries.ts.
export const ListQuery = t.Object({
	completed: t.Optional(completed),
	q: t.Optional(t.String({ format: 'search-text', error: `"q" must be text of at most ${MAX_SEARCH} characters, without NUL.` })),
	sort: t.Optional(
		t.UnionEnum(['created_at', 'updated_at', 'title'], {
			default: undefined,
			description: 'created_at when left out; title compares the titles in lower case, by code point. Ties go by id.',
			error: '"sort" must be created_at, updated_at or title.'
		})
	),
	order: t.Optional(
		t.UnionEnum(['asc', 'desc'], {
			default: undefined,
			description: 'When left out: asc for sort=title (A to Z), else desc (newest first).',
			error: '"order" must be asc or desc.'
		})
	),
	limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, error: '"limit" must be a whole number from 1 to 1000.' })),
	// Any offset past a user's tasks is an empty page; the cap is the largest whole number a query
	// string can name exactly here.
	offset: t.Optional(
		t.Integer({
			minimum: 0,
			maximum: Number.MAX_SAFE_INTEGER,
			error: `"offset" must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}.`
		})
	)
})

export const ErrorBody = t.Object({ detail: t.String(), error_code: t.String() })

export type TaskInput = typeof TaskInput.static
export type ListQuery = typeof ListQuery.static
export type Task = typeof Task.static
