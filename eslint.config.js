import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    // The journal may answer later (PostgreSQL): a promise nobody awaits is a lost write.
    files: ['src/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    // Only the CLI, benches and the bin talk to a human on stdout/stderr.
    files: ['src/cli/**', 'bench/**', 'bin/**', 'test/**', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // House style: only transports touch sockets and serial ports.
    files: ['src/**'],
    ignores: ['src/transports/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        ...['node:net', 'net', 'ws', 'serialport'].map((name) => ({
          name,
          message: 'Only src/transports may import socket or serial libraries (house style).',
        })),
      ],
    },
  },
);
