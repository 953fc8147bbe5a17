#!/usr/bin/env node
// Runs the TypeScript sources through tsx, so a fresh clone works after `npm ci` with no build.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/run.ts');
