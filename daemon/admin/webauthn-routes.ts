// The admin listener's WebAuthn routes: register an authenticator (signed in, with step-up), use it as
// the second factor after the password (the session's `mfa` stage) or to step up, remove one; and which
// second factors this box offers at all, which the sign-in page reads signed out. Each ceremony's
// challenge is keyed by the session, so an answer only counts for the session that asked. The
// credential (and its counter after each use) is committed to the user record before the answer.
import { randomBytes } from 'node:crypto';
import { auditEvent, securityAlert } from '../core/audit-event-builders.ts';
import type { AuditParticipant, AuditSink } from '../core/audit.ts';
import type { ControlRequest, ControlRoute } from '../core/control-route.ts';
import { EdgeError, isEdgeError } from '../core/errors.ts';
import type { UserRecord, WebAuthnCredential } from '../core/user-account.ts';
import type { AccessControl } from './access-control.ts';
import { mfaMethodsFor, WEBAUTHN_NEEDS_DNS_NAME, type WebAuthnRelyingParty } from './webauthn-relying-party.ts';

const MAX_CREDENTIALS_PER_USER = 10;

export function webauthnRoutes(
  rp: WebAuthnRelyingParty | undefined,
  access: AccessControl,
  audit: AuditSink,
  hostNames: readonly string[],
): ControlRoute[] {
  const users = access.users;
  const relyingParty = (): WebAuthnRelyingParty => {
    if (rp === undefined) throw new EdgeError('EDGE_WEBAUTHN_UNAVAILABLE', WEBAUTHN_NEEDS_DNS_NAME);
    return rp;
  };
  const userOf = async (req: ControlRequest): Promise<UserRecord> => {
    const user = await users.get(access.sessionOf(req).username);
    if (user === undefined) throw new EdgeError('EDGE_ACCESS_USER_NOT_FOUND', 'the signed-in account no longer exists');
    return user;
  };
  const participant = (req: ControlRequest): AuditParticipant => ({
    kind: 'user',
    id: access.sessionOf(req).username,
    ...(req.caller?.address === undefined ? {} : { address: req.caller.address }),
    requestor: true,
  });
  const credentialsOf = (user: UserRecord): readonly WebAuthnCredential[] => user.webauthn?.credentials ?? [];

  return [
    {
      method: 'GET',
      path: '/v1/session/mfa-methods',
      permission: 'public',
      adminOnly: true,
      background: true,
      handle: () => ({ status: 200, body: { ...mfaMethodsFor(hostNames), ...(rp === undefined ? {} : { rpId: rp.rpId }) } }),
    },
    {
      method: 'POST',
      path: '/v1/session/webauthn/register/options',
      permission: 'signed-in',
      stepUp: true,
      adminOnly: true,
      handle: async (req) => {
        const party = relyingParty();
        const session = access.sessionOf(req);
        let user = await userOf(req);
        if (credentialsOf(user).length >= MAX_CREDENTIALS_PER_USER) {
          throw new EdgeError('EDGE_WEBAUTHN_FAILED', `at most ${MAX_CREDENTIALS_PER_USER} authenticators per user: remove one first`);
        }
        if (user.webauthn === undefined) {
          // The user handle authenticators keep: random, stable, no personal data (WebAuthn §14.6.1).
          const userHandle = randomBytes(32).toString('base64url');
          user =
            (await users.update(user.username, (u) =>
              u.webauthn === undefined ? { ...u, webauthn: { userHandle, credentials: [] } } : undefined,
            )) ?? user;
        }
        const options = await party.registrationOptions(
          session.key,
          { username: user.username, displayName: user.displayName ?? user.username, userHandle: handleOf(user) },
          credentialsOf(user),
        );
        return { status: 200, body: options };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/webauthn/register',
      permission: 'signed-in',
      stepUp: true,
      adminOnly: true,
      handle: async (req) => {
        const party = relyingParty();
        const session = access.sessionOf(req);
        const credential = await party.verifyRegistration(session.key, req.body);
        const updated = await users.update(session.username, (u) =>
          u.webauthn === undefined || u.webauthn.credentials.some((c) => c.id === credential.id)
            ? undefined
            : { ...u, webauthn: { ...u.webauthn, credentials: [...u.webauthn.credentials, credential] } },
        );
        if (updated === undefined || !credentialsOf(updated).some((c) => c.id === credential.id)) {
          throw new EdgeError(
            'EDGE_WEBAUTHN_FAILED',
            'the authenticator could not be added (registered already, or the account changed meanwhile)',
          );
        }
        audit.record(securityAlert('webauthn.credential-registered', [participant(req)], `credential ${credential.id}`));
        return { status: 200, body: { registered: true, id: credential.id, credentials: credentialsOf(updated).length } };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/webauthn/options',
      permission: 'signed-in',
      adminOnly: true,
      handle: async (req) => {
        const party = relyingParty();
        const user = await userOf(req);
        return { status: 200, body: await party.authenticationOptions(access.sessionOf(req).key, credentialsOf(user)) };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/webauthn',
      permission: 'signed-in',
      adminOnly: true,
      handle: async (req) => {
        const party = relyingParty();
        const session = access.sessionOf(req);
        const user = await userOf(req);
        let used: WebAuthnCredential;
        try {
          used = await party.verifyAuthentication(session.key, req.body, credentialsOf(user));
        } catch (err) {
          if (isEdgeError(err)) {
            audit.record(
              auditEvent('webauthn.assertion-failed', {
                at: Date.now(),
                participants: [participant(req)],
                detail: err.message.slice(0, 300),
              }),
            );
          }
          throw err;
        }
        // The new counter is durable before the factor counts: a clone replaying later finds it.
        const updated = await users.update(user.username, (u) =>
          u.webauthn === undefined
            ? undefined
            : { ...u, webauthn: { ...u.webauthn, credentials: u.webauthn.credentials.map((c) => (c.id === used.id ? used : c)) } },
        );
        if (updated === undefined) throw new EdgeError('EDGE_ACCESS_USER_NOT_FOUND', 'the signed-in account no longer exists');
        if (session.stage === 'full') access.verified(session, 'webauthn');
        else access.advance(session, updated, 'hwk');
        return { status: 200, body: { verified: true, stage: session.stage } };
      },
    },
    {
      method: 'POST',
      path: '/v1/session/webauthn/remove',
      permission: 'signed-in',
      stepUp: true,
      adminOnly: true,
      handle: async (req) => {
        const id = (req.body as { id?: unknown } | undefined)?.id;
        if (typeof id !== 'string' || id.length === 0 || id.length > 1024)
          throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'send {"id": "<credential id>"}');
        const session = access.sessionOf(req);
        const updated = await users.update(session.username, (u) =>
          u.webauthn?.credentials.some((c) => c.id === id) === true
            ? { ...u, webauthn: { ...u.webauthn, credentials: u.webauthn.credentials.filter((c) => c.id !== id) } }
            : undefined,
        );
        if (updated === undefined || credentialsOf(updated).some((c) => c.id === id)) {
          throw new EdgeError('EDGE_CONTROL_NOT_FOUND', 'no authenticator with that id is registered to you');
        }
        audit.record(securityAlert('webauthn.credential-removed', [participant(req)], `credential ${id} of ${session.username}`));
        return { status: 200, body: { removed: true, credentials: credentialsOf(updated).length } };
      },
    },
  ];
}

function handleOf(user: UserRecord): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(user.webauthn!.userHandle, 'base64url'));
}
