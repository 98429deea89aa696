// Test helpers for code that throws taxonomy errors (not shipped: the package's
// published exports leave `./testing` out). The check is by the error's name, not
// `instanceof`: a test may see InferenceError from core's sources and from its
// built copy, two classes of one shape.

import type { InferenceError } from '../src/errors.js';

/** What a test reads of a thrown InferenceError (its public shape, from whichever copy of the class). */
export type ThrownError = Pick<InferenceError, keyof InferenceError>;

function asInferenceError(e: unknown): ThrownError | undefined {
  return e instanceof Error && e.name === 'InferenceError' ? (e as ThrownError) : undefined;
}

/** The InferenceError `f` throws; fails the test when it throws nothing or something else. */
export function errorOf(f: () => unknown): ThrownError {
  try {
    f();
  } catch (e) {
    const err = asInferenceError(e);
    if (err !== undefined) return err;
    throw e;
  }
  throw new Error('expected an InferenceError, but nothing was thrown');
}

/** The request field (`param`) named by the InferenceError `f` throws. */
export function paramOf(f: () => unknown): string | null {
  return errorOf(f).param;
}

/** The InferenceError `p` rejects with; fails the test when it resolves or rejects with something else. */
export async function rejectionOf(p: Promise<unknown>): Promise<ThrownError> {
  try {
    await p;
  } catch (e) {
    const err = asInferenceError(e);
    if (err !== undefined) return err;
    throw e;
  }
  throw new Error('expected an InferenceError, but the promise resolved');
}
