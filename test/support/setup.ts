/** Runs in every test file: no spawned daemon outlives its file, whatever failed. */
import { afterAll } from 'vitest';
import { killAllSpawned } from './children.js';

afterAll(() => {
  killAllSpawned();
});
