// A Vite plugin run after the build: writes a brotli (`.br`) and a gzip (`.gz`) copy next to
// every text file of the output, so the server sends compressed files without compressing
// anything per request, and prints how much JavaScript the first screen costs.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';

const COMPRESSIBLE = /\.(js|mjs|css|html|svg|json|txt|map|webmanifest)$/;
/** Files smaller than this gain nothing from compression. */
const MIN_BYTES = 512;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** The scripts `index.html` loads at once: its entry and the chunks it preloads. */
export function firstScreenScripts(html: string): string[] {
  const found = [
    ...html.matchAll(/<script[^>]*\ssrc="([^"]+\.js)"/g),
    ...html.matchAll(/<link[^>]*rel="modulepreload"[^>]*href="([^"]+\.js)"/g),
  ].map((match) => match[1] ?? '');
  return [...new Set(found.filter(Boolean))];
}

export function precompress(): Plugin {
  let outDir = 'dist';
  return {
    name: 'ledgerdesk-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    closeBundle() {
      for (const path of files(outDir)) {
        if (!COMPRESSIBLE.test(path)) continue;
        const bytes = readFileSync(path);
        if (bytes.length < MIN_BYTES) continue;
        writeFileSync(`${path}.gz`, gzipSync(bytes, { level: 9 }));
        writeFileSync(
          `${path}.br`,
          brotliCompressSync(bytes, {
            params: {
              [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
              [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
            },
          }),
        );
      }
      const html = readFileSync(join(outDir, 'index.html'), 'utf8');
      let gzip = 0;
      let raw = 0;
      for (const src of firstScreenScripts(html)) {
        const bytes = readFileSync(join(outDir, src.replace(/^\//, '')));
        raw += bytes.length;
        gzip += gzipSync(bytes, { level: 9 }).length;
      }
      const kb = (n: number) => (n / 1024).toFixed(1);
      console.log(
        `first screen JavaScript: ${kb(gzip)} KiB gzip (${kb(raw)} KiB raw), ` +
          `from ${relative(process.cwd(), outDir)}/index.html`,
      );
    },
  };
}
