// Piscina worker: counts the tokens of a batch of texts with the o200k_base
// encoding (gpt-4o family). Plain JavaScript on purpose: it is loaded by worker
// threads straight from the package, both from the sources and from dist.
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/** @param {{ texts: string[] }} task */
export default function count(task) {
  let n = 0;
  for (const t of task.texts) n += countTokens(t);
  return n;
}
