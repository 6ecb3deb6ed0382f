// wasm_size: compressed (brotli, quality 11) size of the release front end, wasm + js.
// Usage: node bench/wasm_size.mjs [site/pkg dir]   (after `cargo leptos build --release`)
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';

const dir = process.argv[2] ?? 'target/site/pkg';
const TARGET_KB = 300;
const files = readdirSync(dir).filter((f) => f.endsWith('.wasm') || f.endsWith('.js'));
if (files.length === 0) {
  console.error(`no .wasm or .js in ${dir}; build with \`cargo leptos build --release\` first`);
  process.exit(1);
}
let raw = 0;
let compressed = 0;
for (const f of files) {
  const bytes = readFileSync(join(dir, f));
  const br = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
  console.log(`${f}: ${(bytes.length / 1024).toFixed(1)} KB raw, ${(br.length / 1024).toFixed(1)} KB brotli`);
  raw += bytes.length;
  compressed += br.length;
}
const kb = compressed / 1024;
console.log(`total ${kb.toFixed(1)} KB brotli (target ≤ ${TARGET_KB} KB): ${kb <= TARGET_KB ? 'met' : 'NOT met'}`);
console.log(`BENCH wasm_size brotli_kb=${kb.toFixed(1)} raw_kb=${(raw / 1024).toFixed(1)} target_kb=${TARGET_KB}`);
