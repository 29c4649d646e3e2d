import test from 'ava';
import { decideSsoAccess, type RoleMappingEntry } from './oidc-role-mapping.ts';
import type { OidcIdentity } from './oidc-relying-party.ts';

const mapping: RoleMappingEntry[] = [
  { group: 'edge-admins', role: 'admin' },
  { group: 'edge-auditors', role: 'auditor' },
  { group: 'radiology-it', role: 'operator' },
];
const mfa = { amrValues: ['mfa', 'hwk'], acrValues: ['urn:hospital:loa:2'] };

function identity(groups: string[], amr: string[] = [], acr?: string): OidcIdentity {
  return { issuer: 'https://idp.test', subject: 's1', username: 'u', displayName: 'U', groups, amr, acr };
}

test('the first listed mapping the user holds gives the role', (t) => {
  t.like(decideSsoAccess(identity(['radiology-it', 'edge-auditors']), mapping, mfa), {
    allowed: true,
    role: 'auditor',
    group: 'edge-auditors',
  });
  t.like(decideSsoAccess(identity(['staff', 'radiology-it']), mapping, mfa), { allowed: true, role: 'operator' });
});

test('a user in no mapped group is refused with a reason that says what to do', (t) => {
  const d = decideSsoAccess(identity(['staff']), mapping, mfa);
  t.like(d, { allowed: false, reason: 'no-mapped-group' });
  t.regex(d.allowed ? '' : d.message, /roleMapping/);
  const none = decideSsoAccess(identity([]), mapping, mfa);
  t.regex(none.allowed ? '' : none.message, /groupsClaim/);
});

test('group names match exactly (no case folding, no prefix)', (t) => {
  t.false(decideSsoAccess(identity(['EDGE-ADMINS', 'edge-admins-old']), mapping, mfa).allowed);
});

test('MFA at the IdP counts from an accepted amr or acr value only', (t) => {
  t.like(decideSsoAccess(identity(['edge-admins'], ['pwd', 'hwk']), mapping, mfa), { mfaAtIdp: true, mfaEvidence: 'amr hwk' });
  t.like(decideSsoAccess(identity(['edge-admins'], ['pwd'], 'urn:hospital:loa:2'), mapping, mfa), {
    mfaAtIdp: true,
    mfaEvidence: 'acr urn:hospital:loa:2',
  });
  t.like(decideSsoAccess(identity(['edge-admins'], ['pwd', 'otp'], 'urn:hospital:loa:1'), mapping, mfa), {
    mfaAtIdp: false,
    mfaEvidence: undefined,
  });
  t.like(decideSsoAccess(identity(['edge-admins'], ['mfa']), mapping, { amrValues: [], acrValues: [] }), { mfaAtIdp: false });
});
