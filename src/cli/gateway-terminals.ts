import type { Command } from 'commander';
import { invalid } from '../core/errors.js';
import { DEFAULT_PAYLOAD } from '../gateway/provisioning.js';
import { validateTenantId, type GatewayTerminal, type TenantStore } from '../gateway/tenants.js';
import {
  generateTerminalSecret,
  TERMINAL_SECRET_RULE,
  validateTerminalSecret,
} from '../gateway/terminal-secret.js';
import { openContext, type Context } from './context.js';
import { shortDate, table } from './output.js';
import type { CommandOutput, CommonOptions } from './main.js';

/**
 * `ecr-bridge gateway terminal add | list | update`. The identity flags of `add` and `update`
 * (issue 17, part 1): a registration secret, given or generated (then printed once), and the
 * client certificate requirement. The secret is never logged, and never printed unless generated.
 */

export interface TerminalIdentityFlags {
  /** `--secret <secret>`: the terminal's registration secret. */
  readonly secret?: string;
  /** `--generate-secret`: a strong random one, printed once. */
  readonly generateSecret?: boolean;
  /** `--clear-secret` (update only). */
  readonly clearSecret?: boolean;
  /** `--require-certificate`, or `--no-require-certificate` (update only): false. */
  readonly requireCertificate?: boolean;
}

/** Adds `--secret`, `--generate-secret` and `--require-certificate` (and, to update, their undoing). */
export function identityFlags(command: Command, update: boolean): Command {
  command
    .option(
      '--secret <secret>',
      `its registration secret, sent in its Register as TerminalSecret (${TERMINAL_SECRET_RULE.replace('must be ', '')}); kept only as a scrypt hash. --generate-secret keeps it out of your shell history`,
    )
    .option('--generate-secret', 'generate a strong random secret and print it, only this once')
    .option(
      '--require-certificate',
      'it must register over TLS with a client certificate naming its id (CN or DNS name), signed by the CA of gateway start --tls-client-ca',
    );
  if (update) {
    command
      .option('--clear-secret', 'remove its secret: it registers with its serial only again')
      .option('--no-require-certificate', 'it no longer needs a client certificate');
  }
  return command;
}

/** The secret the flags ask for: undefined (leave it), null (clear it), or one to set. */
export function chosenSecret(flags: TerminalIdentityFlags): {
  readonly secret: string | null | undefined;
  readonly generated: boolean;
} {
  const chosen = [
    flags.secret !== undefined && '--secret',
    flags.generateSecret === true && '--generate-secret',
    flags.clearSecret === true && '--clear-secret',
  ].filter((flag): flag is string => flag !== false);
  if (chosen.length > 1)
    throw invalid('INVALID_INPUT', chosen[1] as string, `cannot be used with ${chosen[0]}`);
  if (flags.generateSecret === true) return { secret: generateTerminalSecret(), generated: true };
  if (flags.clearSecret === true) return { secret: null, generated: false };
  if (flags.secret !== undefined)
    return { secret: validateTerminalSecret('secret', flags.secret), generated: false };
  return { secret: undefined, generated: false };
}

/** The lines `add` and `update` print about a terminal's identity (a generated secret, once). */
export function identityLines(terminal: GatewayTerminal, generated: string | undefined): string[] {
  const lines: string[] = [];
  if (terminal.hasSecret)
    lines.push(
      `  its Register must carry its secret as "TerminalSecret"; ecr-bridge keeps only a hash`,
    );
  if (terminal.requireCertificate)
    lines.push(
      `  it must register over TLS with a client certificate for ${terminal.terminalId} (CN or DNS name), signed by the gateway's --tls-client-ca`,
    );
  if (generated !== undefined) {
    lines.push(
      `  secret    ${generated}`,
      'The secret is shown only now: store it on the terminal (simulate econduit reads it from',
      'ECR_BRIDGE_TERMINAL_SECRET). A lost secret cannot be recovered: generate a new one with',
      '`ecr-bridge gateway terminal update ID --generate-secret`.',
    );
  }
  return lines;
}

/** A terminal as `--json` shows it: whether it has a secret, never the secret or its hash. */
export const terminalJson = (t: GatewayTerminal) => ({
  terminalId: t.terminalId,
  merchant: t.merchant,
  terminalType: t.terminalType,
  payload: t.payload,
  hasSecret: t.hasSecret,
  requireCertificate: t.requireCertificate,
  createdAt: new Date(t.createdAt).toISOString(),
});

/**
 * `ecr-bridge gateway terminal update ID [--secret S | --generate-secret | --clear-secret]
 * [--require-certificate | --no-require-certificate]`: sets, rotates or clears a provisioned
 * terminal's proof of identity. A terminal already online keeps its connection; the change
 * applies from its next Register.
 */
export async function runTerminalUpdate(
  options: CommonOptions & TerminalIdentityFlags,
  terminalId: string,
): Promise<CommandOutput> {
  const { secret, generated } = chosenSecret(options);
  if (secret === undefined && options.requireCertificate === undefined) {
    throw invalid(
      'INVALID_INPUT',
      'options',
      'give one of --secret, --generate-secret, --clear-secret, --require-certificate, --no-require-certificate',
    );
  }
  return withTenants(options, async (tenants, context) => {
    const terminal = await tenants.updateTerminalIdentity(terminalId, {
      ...(secret === undefined ? {} : { secret }),
      ...(options.requireCertificate === undefined
        ? {}
        : { requireCertificate: options.requireCertificate }),
    });
    // Never the secret: what changed, in words.
    context.logger.info(
      {
        terminalId,
        secretChange: secret === undefined ? 'none' : secret === null ? 'cleared' : 'set',
        requireCertificate: terminal.requireCertificate,
      },
      'gateway terminal identity changed',
    );
    return {
      exitCode: 0,
      text: [
        `✔ terminal ${terminalId} updated: ${terminal.hasSecret ? 'registration secret set' : 'no registration secret'}, ${terminal.requireCertificate ? 'client certificate required' : 'no client certificate required'}`,
        ...identityLines(terminal, generated ? (secret as string) : undefined),
        '  a connection it holds now is kept; the change applies from its next Register',
      ].join('\n'),
      json: { ...terminalJson(terminal), ...(generated ? { secret } : {}) },
    };
  });
}

/** Opens the data directory's journal and its tenants; closes both after `fn`. */
export async function withTenants<T>(
  options: CommonOptions,
  fn: (tenants: TenantStore, context: Context) => Promise<T>,
): Promise<T> {
  const context = await openContext(options);
  try {
    return await fn(context.tenants, context);
  } finally {
    await context.close();
  }
}

export async function runTerminalAdd(
  options: CommonOptions &
    TerminalIdentityFlags & { merchant: string; type: string; payload?: string },
  terminalId: string,
): Promise<CommandOutput> {
  const { secret, generated } = chosenSecret(options);
  return withTenants(options, async (tenants, context) => {
    const terminal = await tenants.addTerminal({
      terminalId,
      merchant: options.merchant,
      terminalType: options.type,
      payload: options.payload ?? DEFAULT_PAYLOAD,
      ...(secret === undefined || secret === null ? {} : { secret }),
      ...(options.requireCertificate === true ? { requireCertificate: true } : {}),
    });
    // Never the secret: whether there is one.
    context.logger.info(
      {
        terminalId,
        merchant: terminal.merchant,
        terminalType: terminal.terminalType,
        payload: terminal.payload,
        hasSecret: terminal.hasSecret,
        requireCertificate: terminal.requireCertificate,
      },
      'gateway terminal added',
    );
    return {
      exitCode: 0,
      // What the gateway accepts from it, so that nothing else needs configuring.
      text: [
        `✔ terminal ${terminalId} (${terminal.terminalType}) added to merchant ${terminal.merchant}`,
        `  the gateway accepts its Register with "TerminalID":"${terminalId}","TerminalType":"${terminal.terminalType}"`,
        `  and its transactions as ${terminal.payload} payloads; any other TerminalType gets FAILED-INVALID-TERMINAL-TYPE`,
        ...identityLines(terminal, generated ? (secret as string) : undefined),
      ].join('\n'),
      // A generated secret is printed this once; a given one is never echoed.
      json: { ...terminalJson(terminal), ...(generated ? { secret } : {}) },
    };
  });
}

export async function runTerminalList(
  options: CommonOptions & { merchant?: string },
): Promise<CommandOutput> {
  return withTenants(options, async (tenants) => {
    const only =
      options.merchant === undefined ? undefined : validateTenantId('merchant', options.merchant);
    if (only !== undefined && (await tenants.merchant(only)) === undefined) {
      throw invalid(
        'NOT_FOUND',
        'merchant',
        'must name an existing merchant',
        `no merchant ${only}`,
      );
    }
    const terminals = await (only === undefined
      ? tenants.allTerminals()
      : tenants.terminalsOf(only));
    return {
      exitCode: 0,
      text:
        terminals.length === 0
          ? 'No terminals yet (add one with `ecr-bridge gateway terminal add ID --merchant NAME --type T`).'
          : table(
              ['terminal', 'merchant', 'type', 'payload', 'secret', 'certificate', 'created'],
              terminals.map((t) => [
                t.terminalId,
                t.merchant,
                t.terminalType,
                t.payload,
                t.hasSecret ? 'yes' : 'no',
                t.requireCertificate ? 'required' : 'no',
                shortDate(t.createdAt),
              ]),
            ),
      json: { count: terminals.length, terminals: terminals.map(terminalJson) },
    };
  });
}
