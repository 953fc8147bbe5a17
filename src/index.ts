// The public surface of ecr-bridge, export by export. Anything not named here is internal.

export {
  ERROR_CODES,
  EcrError,
  isEcrError,
  type EcrErrorOptions,
  type ErrorCode,
} from './core/errors.js';
export {
  CURRENCIES,
  findCurrency,
  findCurrencyByNumeric,
  type Currency,
} from './core/currencies.js';
export {
  DEFAULT_MAX_AMOUNT_MINOR,
  formatAmount,
  formatMoney,
  moneyFromMinor,
  parseAmount,
  requireCurrency,
  type Money,
  type ParseAmountOptions,
} from './core/money.js';
export { containsPan, luhnValid, maskPan, redactPans } from './core/pan.js';
export {
  KINDS_NEEDING_ORIGINAL,
  MAX_REFERENCE_LENGTH,
  MONEY_KINDS,
  OUTCOMES,
  PAYMENT_METHODS,
  STATES,
  TRANSACTION_KINDS,
  validatePaymentRequest,
  validateReference,
  type DriverOutcome,
  type MoneyKind,
  type Outcome,
  type PaymentMethod,
  type PaymentRequest,
  type TransactionKind,
  type TransactionResult,
  type TransactionState,
} from './core/transaction.js';
export {
  requireCapability,
  type BatchTotals,
  type DriverRequest,
  type ExecuteOptions,
  type OriginalTransaction,
  type StatusQueryOptions,
  type StatusTarget,
  type TerminalDriver,
} from './core/driver.js';
export {
  DEFAULT_PORTS,
  parseTerminalAddress,
  PROTOCOL_TRANSPORTS,
  VALID_ADDRESS_FORMS,
  type Protocol,
  type TerminalAddress,
  type Transport,
} from './core/terminal-address.js';
export { createLogger, type Logger, type LoggerOptions } from './core/logger.js';
export { TransactionService, type PayOptions } from './core/transaction-service.js';
export {
  DEFAULT_IN_FLIGHT_WAIT_MS,
  DEFAULT_LOCK_WAIT_MS,
  DEFAULT_MERCHANT_ID,
  type TransactionServiceOptions,
} from './core/transaction-service-options.js';
export { DEFAULT_MAX_QUEUE } from './core/terminal-queue.js';
export type { Journal, JournalRow, ListFilter } from './core/journal-port.js';
export { isPublicId, PUBLIC_ID_PREFIX } from './journal/public-id.js';
export {
  JOURNAL_FILE_NAME,
  SqliteJournal,
  type SqliteJournalOptions,
} from './journal/sqlite-journal.js';
export {
  isPostgresUrl,
  PostgresJournal,
  POSTGRES_CONNECT_TIMEOUT_MS,
  POSTGRES_POOL_SIZE,
  POSTGRES_STATEMENT_TIMEOUT_MS,
  type PostgresJournalOptions,
} from './journal/postgres-journal.js';
export { createDriver, DEFAULT_CURRENCIES, type DriverSettings } from './drivers/index.js';
export {
  PAYABLE_ANSWER_TIMEOUT_MS,
  PAYABLE_CONNECT_TIMEOUT_MS,
  PAYABLE_DEFAULT_CURRENCY,
  PAYABLE_DEFAULT_PORT,
  PayableDriver,
  type PayableDriverOptions,
} from './drivers/payable.js';
export {
  SEMI_ANSWER_TIMEOUT_MS,
  SEMI_CONNECT_TIMEOUT_MS,
  SEMI_DEFAULT_CURRENCY,
  SEMI_DEFAULT_PORT,
  SEMI_RECOVERY_MS,
  SEMI_STATUS_TIMEOUT_MS,
  SemiDriver,
  type SemiDriverOptions,
} from './drivers/semi.js';
export {
  CONCERT_ANSWER_TIMEOUT_MS,
  CONCERT_DEFAULT_CURRENCY,
  CONCERT_DEFAULT_PORT,
  CONCERT_DEFAULT_POS_NUMBER,
  ConcertDriver,
  type ConcertDriverOptions,
} from './drivers/concert.js';
export { PayableSimulator, type PayableSimulatorOptions } from './simulators/payable/simulator.js';
export { ConcertSimulator, type ConcertSimulatorOptions } from './simulators/concert/simulator.js';
export type { ByteStream, StreamClosed } from './transports/byte-stream.js';
export {
  listSerialPorts,
  openSerial,
  SERIAL_DEFAULT_BAUD_RATE,
  type SerialOptions,
  type SerialPortInfo,
} from './transports/serial.js';
export { openPtyPair, type PtyPair } from './transports/pty.js';
export {
  SEMI_WAITING_TEXT,
  SemiSimulator,
  type SemiBatchEntry,
  type SemiSimulatorOptions,
} from './simulators/semi/simulator.js';
export { ChargeLedger, type Charge } from './simulators/ledger.js';
export { SCENARIOS, scenarioFor, type ScenarioName } from './simulators/scenarios.js';
export {
  buildConnector,
  CONNECTOR_HEADERS_TIMEOUT_MS,
  CONNECTOR_MAX_BODY_BYTES,
  CONNECTOR_REQUEST_TIMEOUT_MS,
  type ConnectorNotifier,
  type ConnectorServerOptions,
} from './connector/server.js';
export { LoginGuard, type LoginGuardOptions } from './http/login-guard.js';
export {
  CONNECTOR_LISTEN_HOST,
  CONNECTOR_MAX_ALLOWED_HOSTS,
  CONNECTOR_MAX_HOST_LENGTH,
  LOOPBACK_HOSTS,
} from './connector/host-check.js';
export { sameSecret } from './core/secret.js';
export { systemClock, type Clock, type ClockTimer } from './core/clock.js';
export {
  DEFAULT_READINESS_CACHE_MS,
  DEFAULT_READINESS_TIMEOUT_MS,
  Readiness,
  READINESS_BACKSTOP_MARGIN_MS,
  type ReadinessCheck,
  type ReadinessCheckResult,
  type ReadinessOptions,
  type ReadinessReport,
} from './core/readiness.js';
export {
  loadTlsServer,
  type TlsClientConfig,
  type TlsServerConfig,
  type TlsServerInput,
} from './transports/tls.js';
export type { ConnectorFlavour } from './connector/shapes.js';
export {
  CONNECTOR_DEFAULT_PORT,
  describeConfig,
  loadConfig,
  parseConfigText,
  type ConnectorConfig,
  type ParseConfigOptions,
} from './connector/config.js';
export {
  defaultNotificationPayload,
  Notifier,
  type NotificationPayload,
  type NotifierOptions,
  type NotifyResult,
} from './connector/notifier.js';
export type { NotificationRow } from './core/journal-port.js';
export type { LinkSource, MessageLink, LinkClosed } from './transports/message-link.js';
export {
  EconduitAgent,
  type AgentStatus,
  type EconduitAgentEvents,
} from './agent/econduit-agent.js';
export type { AgentEndpoint, EconduitAgentOptions } from './agent/agent-options.js';
export {
  Gateway,
  GATEWAY_DEFAULT_CURRENCY,
  GATEWAY_HTTP_PORT,
  type GatewayOptions,
} from './gateway/gateway.js';
export {
  TerminalListener,
  type PayloadProtocol,
  type TerminalInfo,
} from './gateway/terminal-listener.js';
export {
  GATEWAY_TERMINAL_PORT,
  type TerminalListenerOptions,
} from './gateway/terminal-listener-options.js';
export {
  SqliteTenantStore,
  type GatewayTerminal,
  type Merchant,
  type NewMerchant,
  type TenantStore,
  type TerminalIdentityChange,
} from './gateway/tenants.js';
export { ECONDUIT_TERMINATOR, EconduitFramer, encodeFrame } from './protocols/econduit/framer.js';
export {
  POS_OFFLINE,
  POS_ONLINE,
  type Registration,
  type RegistrationResult,
} from './protocols/econduit/messages.js';
export {
  EconduitSimulator,
  type EconduitSimulatorOptions,
} from './simulators/econduit/simulator.js';
