#!/usr/bin/env node
'use strict';
// lint.js: the checks that keep the tree's style a tool's job, not a reviewer's (make lint):
//  1. every C file is as clang-format (the repository's .clang-format) would write it;
//  2. every file a C comment names (foo.c, push/sse.c, docs/API.md, ...) exists, so that
//     comments cannot point at files that were renamed or never written.
// Exits non-zero with one line per problem.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.c', '*.h'], { cwd: root, encoding: 'utf8' })
  .split('\n').filter((f) => f && fs.existsSync(path.join(root, f)));
const problems = [];

// 1. Format: clang-format reports each file that differs (one -Werror run per batch of files).
const format = spawnSync('clang-format', ['--dry-run', '-Werror', ...files], { cwd: root, encoding: 'utf8' });
if (format.error) {
  problems.push(`clang-format: ${format.error.message}`);
} else if (format.status !== 0) {
  const differing = new Set([...format.stderr.matchAll(/^([^\s:]+):\d+:\d+: error/gm)].map((m) => m[1]));
  for (const f of differing) problems.push(`${f}: differs from .clang-format (run: clang-format -i ${f})`);
  if (differing.size === 0) problems.push(`clang-format failed: ${format.stderr.slice(0, 500)}`);
}

// 2. File names in comments. A name resolves against the repository root, src/, the file's own
// folder, or (for a bare name) any tracked file of that name.
const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
const basenames = new Set(tracked.map((f) => path.basename(f)));
const named = /(?<![\w./-])((?:[\w-]+\/)*[\w-]+\.(?:c|h|md|js|sh|html|css))(?![\w/])/g;
for (const file of files) {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const comments = text.match(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g) || [];
  for (const comment of comments) {
    for (const m of comment.matchAll(named)) {
      const name = m[1];
      const candidates = [name, path.join('src', name), path.join(path.dirname(file), name)];
      const found = candidates.some((c) => fs.existsSync(path.join(root, c))) ||
        (!name.includes('/') && basenames.has(name));
      if (!found) problems.push(`${file}: a comment names ${name}, which does not exist`);
    }
  }
}

for (const p of problems) console.error(`lint: ${p}`);
if (problems.length > 0) process.exit(1);
console.log(`lint: ${files.length} C files formatted, comment references resolve`);
