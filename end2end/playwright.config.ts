import { defineConfig } from '@playwright/test';

// The server under test: the freshly built debug binary, on its own port, with its own
// embedded PostgreSQL in a fresh folder (removed before each run).
const port = process.env.E2E_PORT ?? '3100';
const baseURL = `http://127.0.0.1:${port}`;

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL,
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    },
    trace: 'retain-on-failure',
  },
  webServer: {
    command: 'rm -rf target/e2e-data && exec ./target/debug/server',
    cwd: '..',
    url: `${baseURL}/health`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe',
    gracefulShutdown: { signal: 'SIGTERM', timeout: 20_000 },
    env: {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      EVCX_DATA_DIR: 'target/e2e-data',
      EVCX_SEED_DEMO: 'true',
      EVCX_LOG: 'warn',
    },
  },
});
