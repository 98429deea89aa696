import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { fallbackTemplate, resolveTemplate, TemplateError } from './chatTemplate.js';
import type { NativeChatTemplates } from './native.js';

describe('fallbackTemplate', () => {
  it('puts system content first, then each message on its own line, without role markers', () => {
    const text = fallbackTemplate([
      { role: 'user', content: 'Once upon a time' },
      { role: 'system', content: 'Tell a story.' },
      { role: 'assistant', content: 'there was a cat.' },
      { role: 'user', content: 'The cat' },
    ]);
    expect(text).toBe('Tell a story.\nOnce upon a time\nthere was a cat.\nThe cat');
    expect(text).not.toMatch(/user|assistant|system/i);
  });

  it('skips empty contents', () => {
    expect(fallbackTemplate([{ role: 'system', content: '' }, { role: 'user', content: 'Hi' }])).toBe('Hi');
  });
});

describe('resolveTemplate', () => {
  const made: { source?: string; jinja?: boolean }[] = [];
  const fake = {
    chatTemplates(options?: { source?: string; jinja?: boolean }): NativeChatTemplates {
      made.push(options ?? {});
      if (options?.source === 'broken') throw new Error('parse error at 1:1');
      return { apply: () => { throw new Error('unused'); }, source: () => options?.source ?? 'model', supportsTools: () => options?.jinja !== false };
    },
  };
  const files: Record<string, string> = { [resolve('tmpl/qwen.jinja')]: '{{ messages }}', [resolve('bad.jinja')]: 'broken' };
  const read = (p: string): string => {
    const t = files[p];
    if (t === undefined) throw new Error('ENOENT');
    return t;
  };

  it("uses the model's own template when there is no override, and the fallback only without one", () => {
    expect(resolveTemplate(fake, ['llama3'], undefined, '{{ x }}', read)).toMatchObject({ source: 'model', name: 'tokenizer.chat_template' });
    expect(made.at(-1)).toEqual({});
    const fb = resolveTemplate(fake, ['llama3'], undefined, null, read);
    expect(fb).toEqual({ templates: null, source: 'fallback', name: 'fallback' });
  });

  it('reads an override file as a Jinja template, even when the model has its own', () => {
    const r = resolveTemplate(fake, ['llama3'], 'tmpl/qwen.jinja', '{{ own }}', read);
    expect(r).toMatchObject({ source: 'override', name: 'qwen.jinja' });
    expect(made.at(-1)).toEqual({ source: '{{ messages }}' });
    expect(r.templates?.supportsTools()).toBe(true);
  });

  it('takes a built-in name without Jinja (no tools), chatml with Jinja', () => {
    const r = resolveTemplate(fake, ['llama3', 'chatml'], 'llama3', null, read);
    expect(r).toMatchObject({ source: 'override', name: 'llama3' });
    expect(made.at(-1)).toEqual({ source: 'llama3', jinja: false });
    expect(r.templates?.supportsTools()).toBe(false);
    resolveTemplate(fake, ['llama3', 'chatml'], 'chatml', null, read);
    expect(made.at(-1)).toEqual({ source: 'chatml' });
  });

  it('refuses an override that is neither a file nor a built-in name, and a template that does not parse', () => {
    expect(() => resolveTemplate(fake, ['llama3'], 'nope.jinja', null, read)).toThrow(TemplateError);
    expect(() => resolveTemplate(fake, ['llama3'], 'nope.jinja', null, read)).toThrow(/neither a readable file nor a built-in template/);
    expect(() => resolveTemplate(fake, ['llama3'], 'bad.jinja', null, read)).toThrow(/engine.chatTemplate bad.jinja: parse error/);
  });
});
