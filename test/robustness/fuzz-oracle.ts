// The fuzzer's oracle: the OpenAPI document the server serves, read into routes and schemas, and
// what the contract says of a body or a query value judged against them.

export interface Schema {
	type?: string | string[]
	nullable?: boolean
	format?: string
	pattern?: string
	enum?: string[]
	minimum?: number
	maximum?: number
	anyOf?: Schema[]
	required?: string[]
	properties?: Record<string, Schema>
}

export interface Parameter {
	name: string
	in: 'path' | 'query'
	required?: boolean
	schema: Schema
}

interface Operation {
	parameters?: Parameter[]
	requestBody?: { content: Record<string, { schema: Schema }> }
	responses: Record<string, unknown>
}

export interface Document {
	paths: Record<string, Record<string, Operation>>
}

export const ROUTES = {
	list: ['get', '/api/tasks'],
	create: ['post', '/api/tasks'],
	read: ['get', '/api/tasks/{id}'],
	replace: ['put', '/api/tasks/{id}'],
	delete: ['delete', '/api/tasks/{id}'],
	complete: ['patch', '/api/tasks/{id}/complete']
} as const

export type Route = keyof typeof ROUTES

export interface Api {
	bodies: Record<'create' | 'replace' | 'complete', Schema>
	query: Parameter[]
	idPattern: RegExp
	/** Every templated path of the document with its methods, for odd requests. */
	paths: { template: string; methods: string[] }[]
}

export function readDocument(document: Document): Api {
	const operation = (route: Route): Operation => {
		const [method, path] = ROUTES[route]
		const found = document.paths[path]?.[method]
		if (!found) throw new Error(`/docs/json has no ${method.toUpperCase()} ${path}`)
		return found
	}
	const body = (route: Route): Schema => {
		const schema = operation(route).requestBody?.content['application/json']?.schema
		if (!schema?.properties) throw new Error(`/docs/json gives ${route} no JSON body schema`)
		return schema
	}
	const id = operation('read').parameters?.find((p) => p.in === 'path' && p.name === 'id')?.schema.pattern
	if (!id) throw new Error('/docs/json gives the task id no pattern')
	return {
		bodies: { create: body('create'), replace: body('replace'), complete: body('complete') },
		query: (operation('list').parameters ?? []).filter((p) => p.in === 'query'),
		idPattern: new RegExp(id),
		paths: Object.entries(document.paths).map(([template, methods]) => ({
			template,
			methods: Object.keys(methods).map((m) => m.toUpperCase())
		}))
	}
}

// ---------------------------------------------------------------------------------------------
// The oracle: what the contract says of a value, for the formats the document names.

export const MAX_BODY_BYTES = 64 * 1024
export const MAX_ID = 2_147_483_647

// Text Postgres can store: no NUL, no lone surrogate; lengths in characters (code points).
const storable = (text: string, max: number) => text.isWellFormed() && !text.includes('\0') && [...text].length <= max

const FORMATS: Record<string, (text: string) => boolean> = {
	'task-title': (text) => storable(text, 255) && /[^\s\u0085]/.test(text),
	'task-description': (text) => storable(text, 10_000),
	'search-text': (text) => storable(text, 255)
}

export const typesOf = (schema: Schema) => [schema.type ?? []].flat().concat(schema.nullable ? ['null'] : [])

export function accepts(schema: Schema, value: unknown): boolean {
	if (schema.anyOf) return schema.anyOf.some((option) => accepts(option, value))
	const types = typesOf(schema)
	if (value === null) return types.includes('null')
	switch (typeof value) {
		case 'string':
			return (
				types.includes('string') &&
				(!schema.format || FORMATS[schema.format]?.(value) !== false) &&
				(!schema.enum || schema.enum.includes(value))
			)
		case 'boolean':
			return types.includes('boolean')
		case 'number':
			return (
				(types.includes('number') || (types.includes('integer') && Number.isInteger(value))) &&
				value >= (schema.minimum ?? -Infinity) &&
				value <= (schema.maximum ?? Infinity)
			)
		case 'object': {
			if (Array.isArray(value) || !types.includes('object')) return false
			const record = value as Record<string, unknown>
			if (!(schema.required ?? []).every((name) => Object.hasOwn(record, name))) return false
			return Object.entries(schema.properties ?? {}).every(
				([name, field]) => !Object.hasOwn(record, name) || accepts(field, record[name])
			)
		}
		default:
			return false
	}
}

type Verdict = { kind: 'too-large' } | { kind: 'invalid' } | { kind: 'valid'; value: Record<string, unknown> }

export function judgeBody(raw: string | Uint8Array, schema: Schema): Verdict {
	const bytes = typeof raw === 'string' ? new TextEncoder().encode(raw) : raw
	if (bytes.byteLength > MAX_BODY_BYTES) return { kind: 'too-large' }
	let value: unknown
	try {
		value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
	} catch {
		return { kind: 'invalid' }
	}
	return accepts(schema, value) ? { kind: 'valid', value: value as Record<string, unknown> } : { kind: 'invalid' }
}

// A query value as sent in the URL: what the contract surely accepts, surely refuses, or leaves open
// (numbers written as "1e3" or " 5", repeated names), where both 200 and 422 are fine.
type QueryVerdict = 'valid' | 'invalid' | 'either'

export function judgeQueryValue(schema: Schema, values: string[]): QueryVerdict {
	if (values.length > 1) return 'either'
	const text = values[0] ?? ''
	const types = schema.anyOf ? schema.anyOf.flatMap(typesOf) : typesOf(schema)
	const bounds = schema.anyOf?.find((s) => s.type === 'integer') ?? schema
	if (types.includes('integer')) {
		const number = Number(text)
		if (/^(0|[1-9]\d{0,8})$/.test(text)) return accepts(bounds, number) ? 'valid' : 'invalid'
		return text === '' || !Number.isInteger(number) || !accepts(bounds, number) ? 'invalid' : 'either'
	}
	// In any case, as the list reads it (Python's clients write True).
	if (types.includes('boolean')) return ['true', 'false'].includes(text.toLowerCase()) ? 'valid' : 'invalid'
	return accepts(schema, text) ? 'valid' : 'invalid'
}
