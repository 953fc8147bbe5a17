import { sameSecret } from '../core/secret.js';

/**
 * The connector's own credential check: one login and password from config.txt. The limits on
 * failed sign-ins are shared by both services (`LoginGuard`, src/http/login-guard.ts).
 */

/** Compares credentials in constant time (both fields always compared; see `sameSecret`). */
export function credentialsMatch(
  expected: { readonly login: string; readonly password: string },
  login: string,
  password: string,
): boolean {
  const loginOk = sameSecret(expected.login, login);
  const passwordOk = sameSecret(expected.password, password);
  return loginOk && passwordOk;
}
