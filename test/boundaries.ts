/**
 * The import graph of a source tree and the boundary rules checked over it. Specifiers come from
 * TypeScript's own pre-processor (static `import`, `export ... from`, `import type`, dynamic `import('…')`),
 * so comments and strings that merely look like imports do not count. Relative specifiers are resolved to
 * files; anything else is a package (`node:http`, `express`, `@nats-io/nats-core`).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** A target in the graph: a repository path (`services/ipc/`, a folder when it ends in `/`) or `npm:<name>`. */
export type Target = string;

export type Exception = { path: string; why: string };

export type Rule = {
  /** Short name used in failure messages. */
  name: string;
  /** Folders (ending in `/`) or files whose code the rule constrains. */
  from: string[];
  /** What none of them may reach: repository folders or files, or `npm:<package>` (a trailing `/` is a scope). */
  forbidden: Target[];
  /** Files under `from` the rule does not apply to, each with its reason. */
  except?: Exception[];
  /** Targets that match `forbidden` but are allowed, each with its reason. */
  allowed?: Exception[];
  /** Follow local imports transitively (default) or look only at each file's own imports. */
  direct?: boolean;
  why: string;
};

export type Violation = { rule: string; file: string; target: Target; chain: string[]; why: string };

type Node = { locals: string[]; packages: string[] };
export type ImportGraph = Map<string, Node>;

const SOURCE = /\.(ts|mts|mjs|js)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', 'out', '.kstyles']);

function sourceFiles(root: string, dir = ''): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) files.push(...sourceFiles(root, rel));
    } else if (SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      files.push(rel);
    }
  }
  return files;
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`, `node:fs/promises` → `node:fs/promises`. */
function packageOf(specifier: string): string {
  if (specifier.startsWith('node:')) return specifier;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** Builds the graph of every source file under root; a relative import that names no file is an error. */
export function importGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  const unresolved: string[] = [];
  for (const file of sourceFiles(root)) {
    const info = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true);
    const node: Node = { locals: [], packages: [] };
    for (const { fileName: specifier } of info.importedFiles) {
      if (!specifier.startsWith('.')) {
        node.packages.push(packageOf(specifier));
        continue;
      }
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
      const full = path.join(root, resolved);
      if (existsSync(full) && statSync(full).isFile()) node.locals.push(resolved);
      else unresolved.push(`${file}: '${specifier}'`);
    }
    graph.set(file, node);
  }
  if (unresolved.length > 0) {
    throw new Error(`relative imports that name no file (fix them first):\n  ${unresolved.join('\n  ')}`);
  }
  return graph;
}

function under(file: string, place: string): boolean {
  return place.endsWith('/') ? file.startsWith(place) : file === place;
}

function matches(target: Target, pattern: Target): boolean {
  if (pattern.startsWith('npm:')) {
    if (!target.startsWith('npm:')) return false;
    return pattern.endsWith('/') ? target.startsWith(pattern) : target === pattern;
  }
  return !target.startsWith('npm:') && under(target, pattern);
}

function forbiddenBy(rule: Rule, target: Target): boolean {
  return (
    rule.forbidden.some((pattern) => matches(target, pattern)) &&
    !(rule.allowed ?? []).some((entry) => matches(target, entry.path))
  );
}

/** Every way a file under a rule's `from` reaches something the rule forbids, with the import chain. */
export function checkRules(graph: ImportGraph, rules: Rule[]): Violation[] {
  const violations: Violation[] = [];
  for (const rule of rules) {
    const sources = [...graph.keys()].filter(
      (file) =>
        rule.from.some((place) => under(file, place)) &&
        !(rule.except ?? []).some((entry) => under(file, entry.path)),
    );
    for (const file of sources) {
      // Breadth first, so each reported chain is a shortest one.
      const chains = new Map<string, string[]>([[file, [file]]]);
      const reported = new Set<Target>();
      const queue = [file];
      while (queue.length > 0) {
        const current = queue.shift()!;
        const chain = chains.get(current)!;
        const node = graph.get(current)!;
        const targets: Target[] = [...node.locals, ...node.packages.map((name) => `npm:${name}`)];
        for (const target of targets) {
          if (!reported.has(target) && forbiddenBy(rule, target)) {
            reported.add(target);
            violations.push({ rule: rule.name, file, target, chain: [...chain, target], why: rule.why });
          }
        }
        if (rule.direct) continue;
        for (const next of node.locals) {
          if (chains.has(next)) continue;
          chains.set(next, [...chain, next]);
          queue.push(next);
        }
      }
    }
  }
  return violations;
}

export function formatViolations(violations: Violation[]): string {
  return violations.map((v) => `[${v.rule}] ${v.chain.join(' → ')}\n    ${v.why}`).join('\n');
}
