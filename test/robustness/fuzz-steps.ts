// What a fuzzing run does, as plain data fast-check can generate and shrink: valid and hostile
// bodies, ids, queries, tokens and odd requests, generated from the document's schemas.
import fc from 'fast-check'
import { type Api, MAX_ID, type Parameter, ROUTES, type Route, type Schema, typesOf } from './fuzz-oracle'

export type Target = { kind: 'own' | 'deleted' | 'foreign'; pick: number } | { kind: 'raw'; id: string }
export type Body = { raw: string | Uint8Array; contentType?: string }
export type Step =
	| { op: 'create'; body: Body }
	| { op: 'read' | 'delete'; target: Target }
	| { op: 'replace' | 'complete'; target: Target; body: Body }
	| { op: 'list'; query: [string, string][] }
	| { op: 'forged'; forgery: Forgery; route: Route; target: Target }
	| { op: 'odd'; method: string; path: string; body?: Body }

const FORGERIES = [
	'missing',
	'empty',
	'garbage',
	'expired',
	'other-secret',
	'alg-none',
	'spliced',
	'no-sub',
	'numeric-sub',
	'not-before',
	'hs512',
	'basic',
	'in-query',
	'huge',
	'trailing'
] as const
export type Forgery = (typeof FORGERIES)[number]

const ODD_STRINGS = [
	'',
	' ',
	'\t\n',
	'\u3000',
	'\u200b',
	'\0',
	'a\0b',
	'\ud800',
	'x\udfff',
	'\udc00\ud800',
	'\u202eevil',
	'\ufeff',
	'İı',
	'🏳️‍🌈',
	'e\u0301',
	'%00',
	"'; drop table tasks; --",
	'<script>alert(1)</script>',
	'${jndi:ldap://x}',
	'\\',
	'%',
	'_'
]

const lengths = [254, 255, 256, 9_999, 10_000, 10_001, 70_000]

const hugeString = fc
	.tuple(fc.constantFrom(...lengths), fc.constantFrom('a', '😀', 'é', ' '))
	.map(([length, unit]) => unit.repeat(length))

const anyText = fc.oneof(
	{ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 30, unit: 'grapheme-ascii' }) },
	{ weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 30, unit: 'binary' }) },
	{ weight: 2, arbitrary: fc.string({ maxLength: 20, unit: 'grapheme' }) },
	{ weight: 2, arbitrary: fc.constantFrom(...ODD_STRINGS) },
	{ weight: 1, arbitrary: hugeString }
)

const wrongType = fc.oneof(
	fc.integer(),
	fc.double(),
	fc.boolean(),
	fc.constant(null),
	fc.array(fc.string(), { maxLength: 3 }),
	fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
	fc.constantFrom('true', 'false', '1', '0', 'yes', '')
)

function valueFor(schema: Schema): fc.Arbitrary<unknown> {
	const types = typesOf(schema)
	const options: fc.Arbitrary<unknown>[] = []
	if (types.includes('string')) options.push(anyText)
	if (types.includes('boolean')) options.push(fc.boolean())
	if (types.includes('null')) options.push(fc.constant(null))
	return fc.oneof({ weight: 6, arbitrary: fc.oneof(...options) }, { weight: 1, arbitrary: wrongType })
}

const MASS_ASSIGNMENT = ['id', 'user_id', 'created_at', 'updated_at', '__proto__', 'constructor', 'owner']

function objectFor(schema: Schema): fc.Arbitrary<Record<string, unknown>> {
	const fields = Object.entries(schema.properties ?? {}).map(([name, field]) =>
		fc
			.option(valueFor(field), { freq: schema.required?.includes(name) ? 12 : 2, nil: undefined })
			.map((value) => [name, value] as const)
	)
	const extra = fc.array(fc.tuple(fc.constantFrom(...MASS_ASSIGNMENT), wrongType), { maxLength: 2 })
	return fc.tuple(fc.tuple(...fields), extra).map(([known, more]) => {
		const value: Record<string, unknown> = {}
		for (const [name, field] of more)
			Object.defineProperty(value, name, { value: field, enumerable: true, writable: true })
		for (const [name, field] of known) if (field !== undefined) value[name] = field
		return value
	})
}

const deepJson = (depth: number, where: 'inside' | 'as-title') => {
	const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`
	return where === 'inside' ? `{"title":"deep","extra":${nested}}` : `{"title":${nested}}`
}

export const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON']
const ODD_TYPES = [
	'text/plain',
	'application/x-www-form-urlencoded',
	'multipart/form-data; boundary=x',
	'application/xml',
	''
]

function bodyFor(schema: Schema): fc.Arbitrary<Body> {
	const json = objectFor(schema).map((value) => JSON.stringify(value))
	const raw: fc.Arbitrary<string | Uint8Array> = fc.oneof(
		{ weight: 12, arbitrary: json },
		{ weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify(value) ?? 'null') },
		{
			weight: 1,
			arbitrary: fc.constantFrom('', '{', 'null', '[]', '"x"', '{"title":"x"', '\ufeff{"title":"bom"}', 'title=x')
		},
		{
			weight: 1,
			arbitrary: fc
				.tuple(
					fc.constantFrom(10, 1_000, 20_000),
					fc.constantFrom('inside', 'as-title') as fc.Arbitrary<'inside' | 'as-title'>
				)
				.map(([d, w]) => deepJson(d, w))
		},
		{ weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }) },
		{
			weight: 1,
			arbitrary: json.map((text) => new Uint8Array([...new TextEncoder().encode(text.slice(0, -1)), 0xff, 0x7d]))
		}
	)
	const contentType = fc.oneof(
		{ weight: 8, arbitrary: fc.constantFrom(...JSON_TYPES) },
		{ weight: 1, arbitrary: fc.constantFrom(...ODD_TYPES) }
	)
	return fc.record({ raw, contentType })
}

const BAD_IDS = [
	'0',
	'-1',
	'01',
	'1.5',
	'1e3',
	'0x10',
	' 1',
	'1 ',
	'NaN',
	'abc',
	'%00',
	'1%2F2',
	'%F0%9F%98%80',
	'%E0%A4%A',
	String(MAX_ID + 1),
	'99999999999',
	'9'.repeat(300),
	'1;drop'
]

function targetArb(): fc.Arbitrary<Target> {
	return fc.oneof(
		{ weight: 8, arbitrary: fc.record({ kind: fc.constant('own' as const), pick: fc.nat() }) },
		{ weight: 1, arbitrary: fc.record({ kind: fc.constant('deleted' as const), pick: fc.nat() }) },
		{ weight: 2, arbitrary: fc.record({ kind: fc.constant('foreign' as const), pick: fc.nat() }) },
		{
			weight: 1,
			arbitrary: fc.record({ kind: fc.constant('raw' as const), id: fc.constantFrom(...BAD_IDS, String(MAX_ID)) })
		}
	)
}

function queryArb(parameters: Parameter[]): fc.Arbitrary<[string, string][]> {
	const valueOf = (schema: Schema): fc.Arbitrary<string> => {
		const types = schema.anyOf ? schema.anyOf.flatMap(typesOf) : typesOf(schema)
		const bounds = schema.anyOf?.find((s) => s.type === 'integer') ?? schema
		const good = schema.enum
			? fc.constantFrom(...schema.enum)
			: types.includes('integer')
				? fc.integer({ min: bounds.minimum ?? 0, max: Math.min(bounds.maximum ?? 50, 50) }).map(String)
				: types.includes('boolean')
					? fc.constantFrom('true', 'false')
					: fc.oneof(fc.string({ maxLength: 3, unit: 'grapheme-ascii' }), fc.constantFrom('a', 'e', 'x', '%', '_'))
		const bad = fc.oneof(
			fc.constantFrom('', '-1', '0', '1001', '1.5', '1e3', ' 5', 'yes', 'TRUE', 'id', 'up', '\0', 'a\0'),
			fc.string({ maxLength: 8, unit: 'binary' }),
			hugeString
		)
		return fc.oneof({ weight: 5, arbitrary: good }, { weight: 1, arbitrary: bad })
	}
	const pairs = parameters.map((p) =>
		fc.option(
			valueOf(p.schema).map((v) => [p.name, v] as [string, string]),
			{ freq: 2, nil: undefined }
		)
	)
	const extra = fc.option(fc.tuple(fc.constantFrom('limit', 'unknown', 'user_id', 'q'), fc.string({ maxLength: 4 })), {
		freq: 6,
		nil: undefined
	})
	return fc
		.tuple(fc.tuple(...pairs), extra)
		.map(([known, more]) => [...known, more].filter((p): p is [string, string] => p !== undefined))
}

const ODD_METHODS = [
	'GET',
	'POST',
	'PUT',
	'PATCH',
	'DELETE',
	'HEAD',
	'OPTIONS',
	'TRACE',
	'CONNECT',
	'PROPFIND',
	'M-SEARCH'
]

function oddArb(api: Api): fc.Arbitrary<Step> {
	const path = fc.oneof(
		fc
			.constantFrom(...api.paths.map((p) => p.template))
			.chain((template) => fc.constantFrom(...BAD_IDS, String(MAX_ID)).map((id) => template.replace('{id}', id))),
		fc.constantFrom(
			'/',
			'/api',
			'/api/',
			'/API/TASKS',
			'//api/tasks',
			'/api/tasks/',
			'/api/tasks//',
			`/api/tasks/${MAX_ID}/complete/x`,
			'/api/tasks/%2e%2e/%2e%2e/health',
			'/docs/../api/tasks',
			'/api/tasks;x',
			'/%00',
			'/api/tasks?limit=1#frag',
			`/${'x'.repeat(4000)}`,
			'/health/x',
			'/ready/'
		)
	)
	return fc.record(
		{
			op: fc.constant('odd' as const),
			method: fc.constantFrom(...ODD_METHODS),
			path,
			body: fc.option(bodyFor(api.bodies.create), { nil: undefined })
		},
		{ requiredKeys: ['op', 'method', 'path'] }
	)
}

export function stepArb(api: Api): fc.Arbitrary<Step> {
	return fc.oneof(
		{ weight: 6, arbitrary: fc.record({ op: fc.constant('create' as const), body: bodyFor(api.bodies.create) }) },
		{
			weight: 2,
			arbitrary: fc.record({ op: fc.constantFrom('read' as const, 'delete' as const), target: targetArb() })
		},
		{
			weight: 3,
			arbitrary: fc.record({
				op: fc.constant('replace' as const),
				target: targetArb(),
				body: bodyFor(api.bodies.replace)
			})
		},
		{
			weight: 2,
			arbitrary: fc.record({
				op: fc.constant('complete' as const),
				target: targetArb(),
				body: bodyFor(api.bodies.complete)
			})
		},
		{ weight: 3, arbitrary: fc.record({ op: fc.constant('list' as const), query: queryArb(api.query) }) },
		{
			weight: 2,
			arbitrary: fc.record({
				op: fc.constant('forged' as const),
				forgery: fc.constantFrom(...FORGERIES),
				route: fc.constantFrom(...(Object.keys(ROUTES) as Route[])),
				target: targetArb()
			})
		},
		{ weight: 1, arbitrary: oddArb(api) }
	)
}
