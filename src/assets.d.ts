// Files imported `with { type: 'file' }` resolve to their path (inside the binary once compiled).
declare module '*.wasm' {
	const path: string
	export default path
}
declare module '*.data' {
	const path: string
	export default path
}
