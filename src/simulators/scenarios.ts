/**
 * The one scenario table every simulator follows, keyed by the last two digits of the amount in
 * minor units (so it works for 0-decimal currencies too: 1,051 JPY declines). Documented in
 * docs/simulators.md; a test checks the two agree.
 */
export const SCENARIOS = {
  '51': { name: 'decline', charged: false, summary: 'declined by the issuer' },
  '52': { name: 'cancel', charged: false, summary: 'cancelled by the cardholder' },
  '53': { name: 'busy', charged: false, summary: 'terminal busy: refused before the card step' },
  '54': { name: 'no-answer', charged: true, summary: 'card read and charged, then no answer' },
  '55': {
    name: 'drop-after-card',
    charged: true,
    summary: 'card read and charged, then the link drops',
  },
  '56': {
    name: 'slow-approve',
    charged: true,
    summary: 'approved after a slow answer (5 s, configurable)',
  },
  '57': { name: 'invalid', charged: false, summary: 'request refused as invalid' },
  '58': {
    name: 'partial',
    charged: true,
    summary:
      'partially approved: half the amount (SEMI); approved in full where partial approval does not exist',
  },
} as const;

export type ScenarioName = (typeof SCENARIOS)[keyof typeof SCENARIOS]['name'] | 'approve';

/** What a simulator does for an amount. */
export function scenarioFor(amountMinor: number): ScenarioName {
  const key = String(amountMinor % 100).padStart(2, '0');
  return Object.hasOwn(SCENARIOS, key) ? SCENARIOS[key as keyof typeof SCENARIOS].name : 'approve';
}

/** Default delay of the `slow-approve` scenario. */
export const DEFAULT_SLOW_ANSWER_MS = 5_000;

/** The card every simulator "reads": a Visa test PAN, only ever kept masked. */
export const SIMULATED_CARD = {
  pan: '4761739001010010',
  brand: 'VISA',
  holder: 'TEST CARD',
} as const;
