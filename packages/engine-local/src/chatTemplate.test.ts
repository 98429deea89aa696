import { describe, expect, it } from 'vitest';
import { detectTemplateSource, fallbackTemplate, renderChat, type ChatTemplateEngine } from './chatTemplate.js';

const noTemplate: ChatTemplateEngine = { applyChatTemplate: () => null };
const chatml: ChatTemplateEngine = {
  applyChatTemplate: (messages, addAssistant) =>
    messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + (addAssistant ? '<|im_start|>assistant\n' : ''),
};

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

describe('renderChat', () => {
  const messages = [{ role: 'user', content: 'Hello' }];

  it('uses the model template when it applies', () => {
    expect(detectTemplateSource(chatml, '{{ chatml }}')).toBe('model');
    expect(renderChat(chatml, 'model', messages)).toEqual({
      text: '<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n',
      source: 'model',
    });
  });

  it('falls back when the model has no template or llama.cpp cannot apply it', () => {
    expect(detectTemplateSource(chatml, null)).toBe('fallback');
    expect(detectTemplateSource(noTemplate, '{% unknown %}')).toBe('fallback');
    expect(renderChat(noTemplate, 'model', messages)).toEqual({ text: 'Hello', source: 'fallback' });
    expect(renderChat(chatml, 'fallback', messages)).toEqual({ text: 'Hello', source: 'fallback' });
  });
});
