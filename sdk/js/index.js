// @sessionmon/sdk: report pseudonymized session events from a Node.js app
// to sessionmon's HTTP intake. See README.md.
export { Pseudonymizer, KeyError, MIN_KEY_BYTES, PSEUDONYM_PATTERN } from './src/pseudonym.js';
export { RequestInspector, MAX_USER_AGENT_CHARS } from './src/request.js';
export { cutPrefix, addressPrefix, MAX_IPV4_PREFIX_BITS, MAX_IPV6_PREFIX_BITS } from './src/ip.js';
export {
  SCHEMA_VERSION,
  TYPES,
  MAX_EVENT_BYTES,
  ValidationError,
  newEventId,
  formatTime,
  buildEvent,
  validateEvent,
  loginSucceeded,
  loginFailed,
  sessionStarted,
  sessionActivity,
  sessionEnded,
  tokenIssued,
  tokenRefreshed,
  tokenUsed,
  tokenRevoked,
  reauthSucceeded,
  actionPerformed,
  keyRetired,
} from './src/event.js';
export { Client, SessionmonError, MAX_BATCH_EVENTS, MAX_BATCH_BYTES } from './src/client.js';
export { middleware } from './src/middleware.js';
