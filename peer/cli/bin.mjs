#!/usr/bin/env node
// Entry point of the `topk-ring` command: loads the TypeScript sources
// through tsx, so the package runs without a build step.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
