/**
 * Writes deploy.schema.json from the zod schema of the config, so editors can validate and
 * complete `.github/deploy.yml`. Run with `npm run schema`; a unit test fails when the committed
 * file is out of date.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { configJsonSchemaText } from '../src/config/schema.js'

const target = fileURLToPath(new URL('../deploy.schema.json', import.meta.url))
writeFileSync(target, configJsonSchemaText())
console.log(`wrote ${target}`)
