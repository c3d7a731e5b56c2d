// Lint runs inside `npm test`. Generated protocol code is excluded: it is
// checked for staleness instead.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/generated/**', '.tap/**', '.cache/**', 'bench/results/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error',
        { object: 'process', property: 'exit', message: 'process.exit belongs only in bin/ and daemon.ts' }],
      'no-restricted-syntax': ['error',
        { selector: "CallExpression[callee.property.name='only']", message: 'a .only never lands' },
        { selector: "CallExpression[callee.object.name='t'][callee.property.name='only']", message: 'a .only never lands' }],
    },
  },
  {
    files: ['**/bin/**', '**/src/daemon.ts', '**/src/main.ts', '**/test/**', 'test/**', 'bench/**', 'scripts/**', '**/scripts/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
