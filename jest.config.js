// Two projects: fast unit tests (fakes, no docker) and integration tests that drive
// dist/index.js against a private Docker Engine. `npm test` runs both.
const shared = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: { ignoreCodes: [151002] } }]
  }
}

export default {
  // The failing tests' messages are repeated at the very end of the run: a CI log cut in the
  // middle still shows what failed and why.
  reporters: [['default', { summaryThreshold: 0 }]],
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/__tests__/**/*.test.ts'] },
    { ...shared, displayName: 'integration', testMatch: ['<rootDir>/__tests__/**/*.itg.ts'] }
  ]
}
