// Files imported `with { type: 'file' }` resolve to their path (inside the binary once compiled).
// embedded.ts references this file, so that a program reaching it through an import (a frontend
// type-checking the App type for Eden) knows these modules too.
declare module '*.wasm' {
	const path: string
	export default path
}
declare module '*.data' {
	const path: string
	export default path
}
