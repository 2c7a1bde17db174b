import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';
import { precompress } from './tools/precompress.ts';

// The server (`ledgerdesk serve`) embeds `dist/` and serves it at `/`; in development,
// `npm run dev` proxies the API to a server on 127.0.0.1:8080.
export default defineConfig({
  plugins: [svelte(), precompress()],
  build: {
    target: 'es2022',
    // Hashed names under /assets/ are served as immutable.
    assetsDir: 'assets',
    // No inline scripts anywhere: the Content-Security-Policy allows none.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: {
    proxy: {
      '/graphql': { target: 'http://127.0.0.1:8080', ws: true },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
