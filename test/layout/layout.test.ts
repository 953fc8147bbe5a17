import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The layout of docs/architecture.md, checked: which folder of src/ may import which, and how
 * long a file may grow. A new arrow is a design decision: change the table here and the
 * architecture doc together.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');

/**
 * Each folder of src/ and the folders it may import at run time, lowest layer first. `core`
 * owns the interfaces (the driver, the journal port, the clock) and depends on nothing; the two
 * services (`connector`, `gateway`) never import each other; what they share lives below them.
 */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  core: [],
  protocols: ['core'],
  transports: ['core'],
  journal: ['core'],
  drivers: ['core', 'protocols', 'transports'],
  agent: ['core', 'protocols', 'transports', 'drivers'],
  simulators: ['core', 'protocols', 'transports', 'drivers', 'agent'],
  http: ['core'],
  web: ['core', 'http', 'journal'],
  connector: ['core', 'http', 'web', 'journal', 'protocols', 'transports', 'drivers'],
  gateway: ['core', 'http', 'web', 'journal', 'protocols', 'transports', 'drivers'],
  cli: [
    'core',
    'protocols',
    'transports',
    'journal',
    'drivers',
    'agent',
    'simulators',
    'http',
    'web',
    'connector',
    'gateway',
  ],
};

/** Type-only imports a folder may make beyond MAY_IMPORT: they vanish at run time. */
const MAY_IMPORT_TYPES: Readonly<Record<string, readonly string[]>> = {
  core: ['protocols'],
};

const MAX_SRC_LINES = 500;
const MAX_BENCH_LINES = 600;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

interface Import {
  readonly specifier: string;
  readonly typeOnly: boolean;
}

/** Every static import and export-from of a source text, and every `import('…')` with a literal. */
function importsOf(text: string): Import[] {
  const source = ts.createSourceFile('file.ts', text, ts.ScriptTarget.Latest);
  const found: Import[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((element) => element.isTypeOnly)));
      found.push({ specifier: node.moduleSpecifier.text, typeOnly });
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push({ specifier: node.arguments[0].text, typeOnly: false });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The top folder of src/ a path lies in, or undefined for src/index.ts and outside src/. */
function folderOf(path: string): string | undefined {
  const parts = relative(SRC, path).split(sep);
  return parts.length > 1 && parts[0] !== '..' ? parts[0] : undefined;
}

/** Whether a file in folder `from` may import one in folder `to`. */
function mayImport(from: string, to: string, typeOnly: boolean): boolean {
  if (from === to || (MAY_IMPORT[from] ?? []).includes(to)) return true;
  return typeOnly && (MAY_IMPORT_TYPES[from] ?? []).includes(to);
}

/** The files on a run-time import cycle, each cycle once, found by depth-first search. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (file: string): void => {
    const at = path.indexOf(file);
    if (at >= 0) {
      found.push(path.slice(at));
      return;
    }
    if (done.has(file)) return;
    path.push(file);
    for (const next of graph.get(file) ?? []) visit(next);
    path.pop();
    done.add(file);
  };
  for (const file of graph.keys()) visit(file);
  return found;
}

function lineCount(file: string): number {
  return readFileSync(file, 'utf8').split('\n').length - 1;
}

describe('the layout of src/ (docs/architecture.md)', () => {
  const files = tsFiles(SRC);

  it('knows every folder of src/', () => {
    const folders = new Set(files.map(folderOf).filter((f) => f !== undefined));
    expect([...folders].sort()).toEqual(Object.keys(MAY_IMPORT).sort());
  });

  it('every import points down: no arrow the table does not allow', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      if (from === undefined) continue;
      for (const { specifier, typeOnly } of importsOf(readFileSync(file, 'utf8'))) {
        if (!specifier.startsWith('.')) continue;
        const to = folderOf(resolve(dirname(file), specifier));
        if (to !== undefined && !mayImport(from, to, typeOnly)) {
          wrong.push(`${relative(ROOT, file)} → ${specifier}${typeOnly ? ' (types)' : ''}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('no run-time import cycle between files', () => {
    const graph = new Map(
      files.map((file) => [
        file,
        importsOf(readFileSync(file, 'utf8'))
          .filter(({ specifier, typeOnly }) => specifier.startsWith('.') && !typeOnly)
          .map(({ specifier }) => resolve(dirname(file), specifier).replace(/\.js$/, '.ts')),
      ]),
    );
    const loops = cycles(graph).map((loop) => loop.map((f) => relative(ROOT, f)).join(' → '));
    expect(loops).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
    ]);
    expect(cycles(graph)).toEqual([['a', 'b', 'c']]);
    expect(
      cycles(
        new Map([
          ['a', ['b']],
          ['b', []],
        ]),
      ),
    ).toEqual([]);
  });

  it('reads every kind of import, and tells a type-only one apart', () => {
    const found = importsOf(
      [
        "import type { A } from '../protocols/a.js';",
        "import { type B } from '../protocols/b.js';",
        "import { type C, d } from '../journal/c.js';",
        "import * as e from '../journal/e.js';",
        "export { f } from '../gateway/f.js';",
        "const g = await import('../connector/g.js');",
      ].join('\n'),
    );
    expect(found).toEqual([
      { specifier: '../protocols/a.js', typeOnly: true },
      { specifier: '../protocols/b.js', typeOnly: true },
      { specifier: '../journal/c.js', typeOnly: false },
      { specifier: '../journal/e.js', typeOnly: false },
      { specifier: '../gateway/f.js', typeOnly: false },
      { specifier: '../connector/g.js', typeOnly: false },
    ]);
  });

  it('forbids the arrows the architecture rules out', () => {
    expect(mayImport('core', 'journal', true)).toBe(false);
    expect(mayImport('core', 'protocols', false)).toBe(false);
    expect(mayImport('core', 'protocols', true)).toBe(true);
    expect(mayImport('gateway', 'connector', false)).toBe(false);
    expect(mayImport('connector', 'gateway', true)).toBe(false);
    expect(mayImport('simulators', 'gateway', false)).toBe(false);
    expect(mayImport('web', 'connector', false)).toBe(false);
    expect(mayImport('gateway', 'core', false)).toBe(true);
  });

  it(`no file under src/ is over ${MAX_SRC_LINES} lines, none in bench/ over ${MAX_BENCH_LINES}`, () => {
    const long = [
      ...files.filter((file) => lineCount(file) > MAX_SRC_LINES),
      ...tsFiles(join(ROOT, 'bench')).filter((file) => lineCount(file) > MAX_BENCH_LINES),
    ].map((file) => `${relative(ROOT, file)}: ${lineCount(file)}`);
    expect(long).toEqual([]);
  });
});
