// Argument parsing for the field engineer's commands (provision, cert, keys, decommission); edgectl.ts
// only dispatches here. Exit status: 0 done, 1 failed, 2 usage error.
import { parseArgs } from 'node:util';
import { certHelp, certInstall, certStatus } from './cert-command.ts';
import { decommission, decommissionHelp } from './decommission-command.ts';
import { keysHelp, keysReseal, keysRotate } from './keys-command.ts';
import { printReport, promptProfile, provision, provisionHelp, readProfile } from './provision-command.ts';

function parse(
  args: string[],
  options: NonNullable<Parameters<typeof parseArgs>[0]>['options'],
  help: string,
): ReturnType<typeof parseArgs> | number {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`edgectl: ${(err as Error).message}\n${help}`);
    return 2;
  }
}

function usage(message: string, help: string): number {
  console.error(`edgectl: ${message}\n${help}`);
  return 2;
}

export async function provisionCommand(args: string[]): Promise<number> {
  const p = parse(args, { profile: { type: 'string' }, config: { type: 'string' }, json: { type: 'boolean' } }, provisionHelp);
  if (typeof p === 'number') return p;
  if (p.values['help'] === true) return (console.log(provisionHelp), 0);
  const config = p.values['config'];
  if (typeof config !== 'string') return usage('provision needs --config FILE (where the configuration is written)', provisionHelp);
  const profileFile = p.values['profile'];
  const { profile, baseDir } = typeof profileFile === 'string' ? await readProfile(profileFile) : await promptProfile();
  const report = await provision(profile, baseDir, config);
  if (p.values['json'] === true) console.log(JSON.stringify(report, null, 2));
  else printReport(report);
  return report.ok ? 0 : 1;
}

export async function certCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const p = parse(rest, { config: { type: 'string' }, json: { type: 'boolean' } }, certHelp);
  if (typeof p === 'number') return p;
  if (p.values['help'] === true || sub === '--help' || sub === '-h') return (console.log(certHelp), 0);
  const config = p.values['config'];
  if (typeof config !== 'string') return usage('cert needs --config FILE', certHelp);
  if (sub === 'install') {
    const [cert, chain, extra] = p.positionals;
    if (cert === undefined || extra !== undefined) return usage('cert install needs CERT [CHAIN]', certHelp);
    return certInstall(config, cert, chain);
  }
  if (sub === 'status') return certStatus(config, p.values['json'] === true);
  return usage(`unknown cert command "${sub ?? ''}"`, certHelp);
}

export async function keysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const p = parse(
    rest,
    { config: { type: 'string' }, json: { type: 'boolean' }, 'recovery-secret-file': { type: 'string' }, pcrs: { type: 'string' } },
    keysHelp,
  );
  if (typeof p === 'number') return p;
  if (p.values['help'] === true || sub === '--help' || sub === '-h') return (console.log(keysHelp), 0);
  const config = p.values['config'];
  if (typeof config !== 'string') return usage('keys needs --config FILE', keysHelp);
  const str = (k: string): string | undefined => (typeof p.values[k] === 'string' ? (p.values[k] as string) : undefined);
  if (sub === 'reseal') return keysReseal(config, str('recovery-secret-file'), str('pcrs'));
  if (sub === 'rotate-data-key') return keysRotate(config, p.values['json'] === true);
  return usage(`unknown keys command "${sub ?? ''}"`, keysHelp);
}

export async function decommissionCommand(args: string[]): Promise<number> {
  const p = parse(args, { config: { type: 'string' }, confirm: { type: 'string' } }, decommissionHelp);
  if (typeof p === 'number') return p;
  if (p.values['help'] === true) return (console.log(decommissionHelp), 0);
  const config = p.values['config'];
  if (typeof config !== 'string') return usage('decommission needs --config FILE', decommissionHelp);
  return decommission(config, typeof p.values['confirm'] === 'string' ? p.values['confirm'] : undefined);
}
