// @ts-check
/**
 * ESLint flat config: @eslint/js and typescript-eslint recommended rules, plus the type-aware rules
 * that catch real bugs in async code (a promise nobody awaits or catches, a promise passed where a
 * callback's result is ignored). Style is Prettier's business (`npm run format`), not ESLint's.
 */
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    ignores: ['dist/**', 'node_modules/**', 'bench/reference/**', '.cache/**', '.kstreams/**', 'etc/**', 'coverage/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Promises: an un-awaited rejection crashes Node or vanishes; an async callback where the caller
      // ignores the result (EventEmitter listener, setInterval, forEach) loses its errors.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: true, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      // No `throw 'message'`. (The type-aware only-throw-error also flags rethrowing a remembered
      // `unknown` after `!== undefined` narrowing, a pattern the close/flush paths use on purpose.)
      'no-throw-literal': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // Imports: type-only imports are erased, so a module is never loaded for its types alone.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // Unused names: `_`-prefixed parameters, caught errors and rest siblings are deliberate.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // `== null` covers null and undefined on purpose; every other comparison is strict.
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // The DSL plumbs heterogeneous processor graphs (`ProcessorSupplier<any, any, any, any>`,
      // `Serde<any>`): `any` there is deliberate, and the public generics carry the real types.
      '@typescript-eslint/no-explicit-any': 'off',
      // Named single-extends interfaces mirror Kafka Streams' types (`TimestampedKeyValueStore`).
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      // Object-literal contexts whose methods call back into their owner.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['self', 'engine'] }],
      'prefer-const': 'error',
      'no-var': 'error',
      'no-console': 'off',
    },
  },
  {
    // kafkajs is touched only behind the client adapter (lib/app/client/): the runtime and the DSL
    // see the StreamsClient interfaces, so a client change or upgrade stays in one folder.
    files: ['lib/**/*.ts', 'topology/**/*.ts'],
    ignores: ['lib/app/client/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^kafkajs(/.*)?$',
              message:
                'kafkajs is imported only under lib/app/client/ (the client adapter); use the interfaces of lib/app/client/types.ts.',
            },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "CallExpression[callee.name='require'] > Literal[value=/^kafkajs(\\/|$)/], ImportExpression > Literal[value=/^kafkajs(\\/|$)/]",
          message: 'kafkajs is loaded only under lib/app/client/ (the client adapter).',
        },
      ],
    },
  },
  {
    // Findings in files that are being rewritten in parallel (the runtime split, issue 12 items 1-3):
    // switched off here, per file and rule, until those files settle. Remove an entry once fixed.
    files: ['lib/app/global-thread.ts', 'lib/app/runtime-wiring.ts', 'lib/app/state-runtime.ts', 'lib/app/stream-thread.ts'],
    rules: { '@typescript-eslint/consistent-type-imports': 'off' },
  },
  {
    files: ['lib/app/kafka-streams.ts'],
    rules: { 'no-unused-private-class-members': 'off' }, // #topology is assigned but never read
  },
  {
    // Config files outside tsconfig.json's include: no type information.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
)
