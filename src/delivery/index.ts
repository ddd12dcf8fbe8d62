export { buildBody, type BodyInput } from './body.js';
export { decodeSecret, sign } from './sign.js';
export {
  classifyError,
  classifyResponse,
  errorCode,
  isExhausted,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  retryDelayMs,
  type Outcome,
  type ResponseHeaders,
  type RetryOutcome,
} from './policy.js';
export {
  EndpointHealth,
  type EndpointHealthOptions,
  type HealthState,
  type HealthTransition,
} from './health.js';
export { WebhookClient, type SendInput, type SendResult, type WebhookClientOptions } from './webhook.js';
