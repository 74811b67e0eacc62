import { defineConfig } from 'drizzle-kit'

export default defineConfig({
	dialect: 'postgresql',
	schema: './src/tasks/table.ts',
	out: './drizzle'
})
