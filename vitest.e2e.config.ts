import { defineConfig } from 'vitest/config';

// The end-to-end suite (`npm run test:e2e`): the real Alertmanager (Debian's prometheus-alertmanager 0.25) in front
// of changepager. Kept apart from `npm test` because it needs that binary and takes tens of seconds.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    testTimeout: 90_000,
    hookTimeout: 60_000,
    // One Alertmanager group per case and real timers: the cases of a file run one after another.
    fileParallelism: false,
  },
});
