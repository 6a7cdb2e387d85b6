/** Jest: TypeScript tests in test/, compiled by ts-jest. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.tsx?$': ['ts-jest', { isolatedModules: false }] },
  // Synthesizing the stack with cdk-nag takes a few seconds on a small machine.
  testTimeout: 120000,
};
