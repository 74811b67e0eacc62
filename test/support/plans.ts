/** A node of an EXPLAIN (FORMAT JSON) plan, with the fields the tests read. */
export interface PlanNode {
	'Node Type': string
	'Index Name'?: string
	'Relation Name'?: string
	'Sort Key'?: string[]
	Plans?: PlanNode[]
}

/** A plan's node and every node under it. */
export const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)]

/** The plan in an EXPLAIN (FORMAT JSON) row's "QUERY PLAN": text on Postgres, parsed on PGlite. */
export function planOf(row: Record<string, unknown> | undefined): PlanNode {
	const json = row?.['QUERY PLAN']
	const [explained] = (typeof json === 'string' ? JSON.parse(json) : json) as { Plan: PlanNode }[]
	if (!explained) throw new Error('EXPLAIN returned no plan')
	return explained.Plan
}
