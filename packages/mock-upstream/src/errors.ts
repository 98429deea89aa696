// Error envelopes of the two providers the mock imitates, and the one typed error the
// request parsers throw. This file is the only place that renders an error body, so the
// wire shape of every 4xx/5xx the mock sends (OpenAI `{error:{message,type,param,code}}`,
// Anthropic `{type:'error', error:{type,message}}`) is decided here and nowhere else.

export type Provider = 'openai' | 'anthropic';

/** A client mistake found while parsing a request body: always a 400. */
export class InputError extends Error {
  override readonly name = 'InputError';
  constructor(
    message: string,
    /** The offending request field, reported as OpenAI's `param`. */
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export interface ErrorDetail {
  /** Overrides the default message for the status. */
  readonly message?: string | undefined;
  /** OpenAI: the `code` (e.g. `context_length_exceeded`); Anthropic: the `error.type`. */
  readonly errorType?: string | undefined;
  readonly param?: string | null | undefined;
}

const OPENAI_DEFAULTS: Readonly<Record<number, readonly [type: string, code: string | null, message: string]>> = {
  400: ['invalid_request_error', null, 'Invalid request.'],
  401: ['invalid_request_error', 'invalid_api_key', 'Incorrect API key provided.'],
  403: ['invalid_request_error', 'unsupported_country_region_territory', 'Request not allowed.'],
  404: ['invalid_request_error', null, 'Not found.'],
  408: ['server_error', 'timeout', 'Request timed out.'],
  409: ['invalid_request_error', 'conflict', 'Conflict.'],
  413: ['invalid_request_error', 'request_too_large', 'Request too large.'],
  422: ['invalid_request_error', null, 'Unprocessable request.'],
  429: ['requests', 'rate_limit_exceeded', 'Rate limit reached for requests. Please try again later.'],
  500: ['server_error', null, 'The server had an error while processing your request. Sorry about that!'],
  502: ['server_error', null, 'Bad gateway.'],
  503: ['server_error', null, 'The engine is currently overloaded, please try again later.'],
  504: ['server_error', 'timeout', 'Gateway timeout.'],
  529: ['server_error', 'overloaded', 'The server is overloaded.'],
};

const OPENAI_CODE_MESSAGES: Readonly<Record<string, string>> = {
  context_length_exceeded:
    "This model's maximum context length is 8192 tokens. However, your messages resulted in more tokens. Please reduce the length of the messages.",
  content_filter:
    "The response was filtered due to the prompt triggering the content management policy. Please modify your prompt and retry.",
  insufficient_quota: 'You exceeded your current quota, please check your plan and billing details.',
};

const ANTHROPIC_DEFAULTS: Readonly<Record<number, readonly [type: string, message: string]>> = {
  400: ['invalid_request_error', 'Invalid request.'],
  401: ['authentication_error', 'invalid x-api-key'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'Not found.'],
  408: ['timeout_error', 'Request timed out.'],
  409: ['invalid_request_error', 'Conflict.'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  422: ['invalid_request_error', 'Unprocessable request.'],
  429: ['rate_limit_error', 'Number of requests has exceeded your rate limit. Please try again later.'],
  500: ['api_error', 'Internal server error'],
  502: ['api_error', 'Bad gateway.'],
  503: ['api_error', 'Service unavailable.'],
  504: ['timeout_error', 'Gateway timeout.'],
  529: ['overloaded_error', 'Overloaded'],
};

/** The JSON body of an error response in `provider`'s envelope. */
export function renderError(provider: Provider, status: number, detail: ErrorDetail, requestId: string): string {
  switch (provider) {
    case 'openai': {
      const [type, defaultCode, defaultMessage] = OPENAI_DEFAULTS[status] ?? OPENAI_DEFAULTS[status >= 500 ? 500 : 400] ?? ['server_error', null, 'Error.'];
      const code = detail.errorType ?? defaultCode;
      const message = detail.message ?? (detail.errorType !== undefined ? OPENAI_CODE_MESSAGES[detail.errorType] : undefined) ?? defaultMessage;
      return JSON.stringify({ error: { message, type, param: detail.param ?? null, code } });
    }
    case 'anthropic': {
      const [defaultType, defaultMessage] = ANTHROPIC_DEFAULTS[status] ?? ANTHROPIC_DEFAULTS[status >= 500 ? 500 : 400] ?? ['api_error', 'Error.'];
      const type = detail.errorType ?? defaultType;
      return JSON.stringify({ type: 'error', error: { type, message: detail.message ?? defaultMessage }, request_id: requestId });
    }
    default: {
      const never: never = provider;
      throw new Error(`unknown provider ${String(never)}`);
    }
  }
}
